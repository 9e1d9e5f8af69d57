"""nginx (Debian's ``nginx-light``) as an HTTPS sink that answers like SvarUt,
for ``bench_tls.py``: a receiver in C, so that it is not what bounds a TLS upload.

    from nginx_sink import NginxSink
    with NginxSink(certs, Path(tmp)) as sink: ...

Everything nginx writes (configuration, pid, logs, the request bodies' temp
files) lives in one directory of the caller's; nginx runs in the foreground
(``daemon off``) as our child and is stopped with its master's pid.

A send is answered ``200 {"id": "<uuid>"}`` only once nginx has read the
whole body, as SvarUt does. ``return 200`` alone would not wait: nginx would
answer at once and discard the body afterwards, and curl, which sends
``Expect: 100-continue``, then sometimes sends no body at all. So the front
server proxies each request to a second server block on another port with
``proxy_pass_request_body off``: the proxy module reads the complete body
first, into one buffer as big as the body (up to ``BODY_BUFFER``; a bigger one
would go to a temp file in ``root``), passes the headers alone on, and relays
the inner server's answer. The buffer is freed after the answer and the log
line (a temp file would be freed before the answer, delaying it by about 0.1 s
per 350 MB). Nothing is written to disk.

Each request of the front server is logged as one JSON line with its
``$request_length`` (request line, headers and body as read), ``$request_time``
(first byte read to the log write, after the body and the answer: the sink's
clock) and ``$status``; :meth:`NginxSink.requests` reads them back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

INSTALL_HINT = "nginx is not installed: apt-get install -y nginx-light (Debian/Ubuntu), or put nginx on PATH"
# A request body up to this size is read into memory (a buffer of its own size); a bigger one
# goes to a temp file.
BODY_BUFFER = "1024m"

CONFIG = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    default_type application/json;
    keepalive_requests 100000;
    keepalive_timeout 300s;
    # $request_id is 32 hex digits; the client expects a UUID with dashes.
    map $request_id $uuid {{
        "~^(?<a>.{{8}})(?<b>.{{4}})(?<c>.{{4}})(?<d>.{{4}})(?<e>.{{12}})$" "$a-$b-$c-$d-$e";
    }}
    log_format sink escape=json
        '{{"length": $request_length, "time": $request_time, "status": $status, "msec": $msec, "uri": "$uri"}}';
    upstream answer {{
        server 127.0.0.1:{inner_port};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log {root}/access.log sink;
        client_max_body_size 0;
        client_body_buffer_size {body_buffer};
        client_body_timeout 300s;
{front}
    }}
    server {{
        listen 127.0.0.1:{inner_port};
        location / {{
            return 200 '{{"id": "$uuid"}}';
        }}
    }}
}}
"""
FRONT = """\
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Content-Type "";
            proxy_set_header Transfer-Encoding "";
            proxy_set_header Expect "";
            proxy_pass http://answer;
        }"""


def nginx_binary() -> str | None:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NginxSink:
    """nginx serving HTTPS on 127.0.0.1 with ``certs`` (``cert``, ``key``), all its files under ``root``."""

    def __init__(self, certs: Any, root: Path, binary: str | None = None) -> None:
        self.binary = binary or nginx_binary()
        if self.binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.root = root
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.api = self.url + "/api"
        self.log = root / "access.log"
        self._read = 0
        # Root's workers would run as nobody, who cannot write the temp paths in our directory.
        user = "user root;" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(
            CONFIG.format(
                root=root,
                user=user,
                port=self.port,
                inner_port=free_port(),
                cert=certs.cert,
                key=certs.key,
                body_buffer=BODY_BUFFER,
                front=FRONT,
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.binary is not None
        self.proc = subprocess.Popen(
            [
                self.binary,
                "-p",
                str(self.root),
                "-c",
                str(self.root / "nginx.conf"),
                "-e",
                str(self.root / "error.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"nginx did not start: {err}{self._error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.port} within 10 s: {self._error_log()}")

    def _error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text() if path.exists() else ""

    def requests(self) -> list[dict[str, Any]]:
        """The requests logged since the last call (nginx writes each line when the request ends)."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as f:
            f.seek(self._read)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._read += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGQUIT would wait for open keep-alive connections; SIGTERM is nginx's fast shutdown.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> NginxSink:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
