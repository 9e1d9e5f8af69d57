"""A small HTTP forward proxy on 127.0.0.1, for the benchmarks.

    python bench/proxy.py [--port 0]

Prints ``PORT <n>`` once it listens, then serves until its stdin closes (so it
dies with the benchmark that started it) or it is killed.

It is what ``HTTP_PROXY``/``HTTPS_PROXY`` point at in ``bench_latency.py``'s
proxy variant, so the figures show what a corporate proxy setting costs the
client, and its counters prove the sends really went through it:

- an absolute-form request (``POST http://host:port/path HTTP/1.1``) is sent on
  in origin form over a keep-alive connection to that host, its body relayed
  (``Content-Length`` or chunked), then the answer relayed back; the
  ``Proxy-*`` hop headers are dropped, and ``Expect: 100-continue`` is
  answered here (the upstream then gets the body without waiting);
- ``CONNECT host:port`` opens a tunnel (for https://) and relays bytes both
  ways until either side closes;
- an origin-form request is for the proxy itself: ``GET /_proxy/stats`` answers
  ``{"forwarded": n, "tunnels": n, "connections": n, "peak_connections": n}``
  (since the last ``POST /_proxy/reset``; ``connections`` is the client
  connections open now).

One thread per client connection (and one more per tunnel, for the other
direction); bytes go through one reusable buffer per direction. Only
127.0.0.1 is forwarded to: this is a benchmark tool, not a proxy for anything else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import threading
from typing import Protocol

BUF_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024
HOP_HEADERS = {"proxy-connection", "proxy-authorization", "keep-alive", "expect"}
ALLOWED_HOSTS = {"127.0.0.1", "localhost"}

_lock = threading.Lock()
_stats = {"forwarded": 0, "tunnels": 0, "connections": 0, "peak_connections": 0}


class _Closed(Exception):
    pass


class _Out(Protocol):
    """Where relayed bytes go: a socket, or :class:`_Discard`."""

    def sendall(self, data: bytes | bytearray | memoryview, /) -> None: ...


class Stream:
    """A socket with a read-ahead buffer: heads are parsed from ``pending``,
    bodies relayed through one reusable buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()
        self.buf = bytearray(BUF_SIZE)
        self.view = memoryview(self.buf)

    def _fill(self) -> None:
        n = self.sock.recv_into(self.view, BUF_SIZE)
        if n == 0:
            raise _Closed
        self.pending += self.view[:n]

    def read_until(self, marker: bytes) -> bytes:
        start = 0
        while True:
            i = self.pending.find(marker, start)
            if i >= 0:
                out = bytes(self.pending[:i])
                del self.pending[: i + len(marker)]
                return out
            if len(self.pending) > MAX_HEAD:
                raise _Closed
            start = max(0, len(self.pending) - len(marker) + 1)
            self._fill()

    def relay(self, n: int, out: _Out) -> None:
        """Copy exactly ``n`` bytes from here to ``out``."""
        if n and self.pending:
            k = min(n, len(self.pending))
            out.sendall(self.pending[:k])
            del self.pending[:k]
            n -= k
        while n > 0:
            k = self.sock.recv_into(self.view, min(n, BUF_SIZE))
            if k == 0:
                raise _Closed
            out.sendall(self.view[:k])
            n -= k

    def relay_chunked(self, out: _Out) -> None:
        while True:
            line = self.read_until(b"\r\n")
            out.sendall(line + b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = self.read_until(b"\r\n")
                    out.sendall(trailer + b"\r\n")
                    if not trailer:
                        return
            self.relay(size + 2, out)  # the chunk and its CRLF

    def relay_to_close(self, out: _Out) -> None:
        if self.pending:
            out.sendall(self.pending)
            self.pending.clear()
        while k := self.sock.recv_into(self.view, BUF_SIZE):
            out.sendall(self.view[:k])


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _get(headers: list[tuple[str, str]], name: str) -> str:
    for k, v in headers:
        if k.lower() == name:
            return v
    return ""


def _relay_body(src: Stream, headers: list[tuple[str, str]], out: _Out) -> None:
    if "chunked" in _get(headers, "transfer-encoding").lower():
        src.relay_chunked(out)
    else:
        src.relay(int(_get(headers, "content-length") or 0), out)


def _split_target(target: str) -> tuple[str, int, str]:
    """``http://host:port/path`` -> (host, port, ``/path``)."""
    rest = target[len("http://") :]
    authority, slash, path = rest.partition("/")
    host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
    return host.strip("[]"), int(port), slash + path


def _answer(client: socket.socket, status: str, payload: bytes, close: bool = False) -> None:
    extra = b"Connection: close\r\n" if close else b""
    client.sendall(
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n".encode()
        + extra
        + b"\r\n"
        + payload
    )


def _own(client: socket.socket, method: str, path: str, src: Stream, headers: list[tuple[str, str]]) -> None:
    """A request for the proxy itself."""
    _relay_body(src, headers, _Discard())
    if path == "/_proxy/stats":
        with _lock:
            payload = json.dumps(_stats).encode()
        _answer(client, "200 OK", payload)
    elif path == "/_proxy/reset" and method == "POST":
        with _lock:
            _stats.update(forwarded=0, tunnels=0, peak_connections=_stats["connections"])
        _answer(client, "200 OK", b"{}")
    else:
        _answer(client, "404 Not Found", b'{"error": "not a proxy request"}')


class _Discard:
    """Stands in for a socket where a body is to be read and dropped."""

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        pass


def _tunnel(client: Stream, upstream: socket.socket) -> None:
    def back() -> None:
        try:
            buf = bytearray(BUF_SIZE)
            while k := upstream.recv_into(buf):
                client.sock.sendall(memoryview(buf)[:k])
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=back, daemon=True)
    other.start()
    try:
        client.relay_to_close(upstream)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)
    other.join()


def serve(sock: socket.socket) -> None:
    client = Stream(sock)
    upstream: Stream | None = None
    upstream_addr: tuple[str, int] | None = None
    try:
        while True:
            request_line, headers = _parse_head(client.read_until(b"\r\n\r\n"))
            method, target, version = request_line.split(" ", 2)
            if method == "CONNECT":
                tunnel_host, _, tunnel_port = target.rpartition(":")
                if tunnel_host.strip("[]") not in ALLOWED_HOSTS:
                    _answer(sock, "403 Forbidden", b"{}", close=True)
                    return
                tunnel = socket.create_connection((tunnel_host.strip("[]"), int(tunnel_port)), timeout=120)
                tunnel.settimeout(None)
                with _lock:
                    _stats["tunnels"] += 1
                sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with tunnel:
                    _tunnel(client, tunnel)
                return
            if not target.startswith("http://"):
                _own(sock, method, target.split("?", 1)[0], client, headers)
                continue
            host, port, path = _split_target(target)
            if host not in ALLOWED_HOSTS:
                _relay_body(client, headers, _Discard())
                _answer(sock, "403 Forbidden", b"{}", close=True)
                return
            if upstream is None or upstream_addr != (host, port):
                if upstream is not None:
                    upstream.sock.close()
                conn = socket.create_connection((host, port), timeout=120)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                upstream, upstream_addr = Stream(conn), (host, port)
            if _get(headers, "expect").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            kept = [(k, v) for k, v in headers if k.lower() not in HOP_HEADERS]
            head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept) + "\r\n"
            upstream.sock.sendall(head.encode("latin-1"))
            _relay_body(client, headers, upstream.sock)
            with _lock:
                _stats["forwarded"] += 1
            status_line, answer_headers = _parse_head(upstream.read_until(b"\r\n\r\n"))
            while status_line.split(" ", 2)[1].startswith("1"):  # interim answers go through as they are
                sock.sendall(status_line.encode("latin-1") + b"\r\n" + _head_bytes(answer_headers))
                status_line, answer_headers = _parse_head(upstream.read_until(b"\r\n\r\n"))
            sock.sendall(status_line.encode("latin-1") + b"\r\n" + _head_bytes(answer_headers))
            status = status_line.split(" ", 2)[1]
            framed = _get(answer_headers, "content-length") or "chunked" in _get(answer_headers, "transfer-encoding")
            if method == "HEAD" or status in ("204", "304"):
                pass
            elif framed:
                _relay_body(upstream, answer_headers, sock)
            else:  # the body runs to the upstream's close: so does this connection
                upstream.relay_to_close(sock)
                return
            closing = "close" in (_get(headers, "connection") + _get(answer_headers, "connection")).lower()
            if closing:
                return
    except (_Closed, OSError, ValueError, IndexError):
        pass
    finally:
        if upstream is not None:
            upstream.sock.close()
        sock.close()
        with _lock:
            _stats["connections"] -= 1


def _head_bytes(headers: list[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    # 200+ connections, each a thread or two: small stacks keep the proxy's own memory modest.
    threading.stack_size(512 * 1024)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(1024)
    print(f"PORT {listener.getsockname()[1]}", flush=True)

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with _lock:
            _stats["connections"] += 1
            _stats["peak_connections"] = max(_stats["peak_connections"], _stats["connections"])
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
