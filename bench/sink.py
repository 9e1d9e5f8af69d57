"""A discard-everything HTTP/1.1 server that answers like SvarUt, for the benchmarks.

    python bench/sink.py [--port 0]

Prints ``PORT <n>`` once it listens, then serves until its stdin closes (so it
dies with the benchmark that started it) or it is killed.

One thread per connection, keep-alive, ``Content-Length`` and chunked bodies,
``Expect: 100-continue`` (curl sends it for big uploads). Bodies are read with
``recv_into`` into one reusable 1 MiB buffer per connection and discarded, so
the server does no per-byte Python work and allocates nothing per chunk.

Answers:

- ``POST .../status/sok``: ``{"statuser": [...]}`` with one ``MOTTATT`` status
  per id in the request (the only body it keeps; it is small);
- any other ``POST``: ``200 {"id": "<uuid4>"}`` as a send does;
- ``GET /_stats``: ``{"requests": n, "body_bytes": n, "bodies": [[first, last, bytes], ...]}``
  since the last ``POST /_reset`` (the benchmark checks that every byte
  arrived). ``first`` is when the request's first body byte arrived (for a
  body that came with its headers: when those arrived), ``last`` when its last
  one did, in seconds of this process's ``perf_counter``: the sink-side clock
  the benchmark compares clients by, as well as the sender's own.

With ``--delay SECONDS`` it waits that long after a send's last body byte
before answering (status searches and ``/_`` paths answer at once): SvarUt
takes from a fraction of a second to minutes to answer a send, which is what
concurrency is bought for. Each connection has its own thread, so the waits
overlap.

With ``--tls CERT KEY`` it serves HTTPS (TLS 1.2+, the certificate made for the
run by ``svarut.simulator.keys.tls_certificates``).

Every response carries ``X-Body-Bytes``: the body length the server read.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import threading
import time
import uuid

BUF_SIZE = 1024 * 1024
MAX_HEAD = 64 * 1024
KEEP_LIMIT = 1024 * 1024  # status/sok bodies are kept (and parsed) up to this size

_lock = threading.Lock()
_stats: dict[str, int] = {"requests": 0, "body_bytes": 0}
_bodies: list[tuple[float, float, int]] = []
_delay = 0.0


class _Closed(Exception):
    pass


class Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray(BUF_SIZE)
        self.view = memoryview(self.buf)
        self.pending = bytearray()  # received but not yet consumed
        self.filled_at = 0.0  # when the bytes in pending arrived
        self.first_body_byte = 0.0

    def _fill(self) -> None:
        n = self.sock.recv_into(self.view, BUF_SIZE)
        if n == 0:
            raise _Closed
        self.filled_at = time.perf_counter()
        self.pending += self.view[:n]

    def _first(self) -> None:
        if not self.first_body_byte:
            self.first_body_byte = self.filled_at if self.pending else time.perf_counter()

    def read_until(self, marker: bytes, limit: int = MAX_HEAD) -> bytes:
        start = 0
        while True:
            i = self.pending.find(marker, start)
            if i >= 0:
                out = bytes(self.pending[:i])
                del self.pending[: i + len(marker)]
                return out
            if len(self.pending) > limit:
                raise _Closed
            start = max(0, len(self.pending) - len(marker) + 1)
            self._fill()

    def skip(self, n: int, keep: bytearray | None) -> None:
        """Consume ``n`` body bytes, keeping them only if ``keep`` is given."""
        if n and self.pending:
            self._first()
            k = min(n, len(self.pending))
            if keep is not None:
                keep += self.pending[:k]
            del self.pending[:k]
            n -= k
        view, recv_into = self.view, self.sock.recv_into
        while n > 0:
            k = recv_into(view, min(n, BUF_SIZE))
            if k == 0:
                raise _Closed
            if not self.first_body_byte:
                self.first_body_byte = time.perf_counter()
            if keep is not None and len(keep) < KEEP_LIMIT:
                keep += view[:k]
            n -= k

    def read_body(self, headers: dict[str, str], keep: bytearray | None) -> int:
        self.first_body_byte = 0.0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            total = 0
            while True:
                line = self.read_until(b"\r\n")
                self._first()
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n"):  # trailers, up to the empty line
                        pass
                    return total
                self.skip(size, keep)
                self.skip(2, None)
                total += size
        length = int(headers.get("content-length", "0") or 0)
        self.skip(length, keep)
        return length


def _reply(path: str, method: str, body: bytearray | None) -> tuple[int, bytes]:
    if method == "GET" and path == "/_stats":
        with _lock:
            return 200, json.dumps({**_stats, "bodies": _bodies}).encode()
    if path == "/_reset":
        with _lock:
            _stats.update(requests=0, body_bytes=0)
            _bodies.clear()
        return 200, b"{}"
    if path.endswith("/status/sok"):
        try:
            ids = json.loads(bytes(body or b"{}")).get("id", [])
        except ValueError:
            ids = []
        statuser = [{"id": i, "sisteStatusEndring": "2026-01-01T11:33:55.008+01:00", "status": "MOTTATT"} for i in ids]
        return 200, json.dumps({"statuser": statuser}).encode()
    return 200, b'{"id": "' + str(uuid.uuid4()).encode() + b'"}'


def serve(sock: socket.socket) -> None:
    conn = Conn(sock)
    try:
        while True:
            head = conn.read_until(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("expect", "").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            path = target.split("?", 1)[0]
            keep = bytearray() if path.endswith("/status/sok") else None
            n = conn.read_body(headers, keep)
            last = time.perf_counter()
            if not path.startswith("/_"):
                with _lock:
                    _stats["requests"] += 1
                    _stats["body_bytes"] += n
                    _bodies.append((conn.first_body_byte or last, last, n))
            if _delay and method == "POST" and keep is None and not path.startswith("/_"):
                time.sleep(_delay)
            status, payload = _reply(path, method, keep)
            close = headers.get("connection", "").lower() == "close"
            sock.sendall(
                b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"X-Body-Bytes: %d\r\n%s\r\n"
                % (status, len(payload), n, b"Connection: close\r\n" if close else b"")
                + payload
            )
            if close:
                return
    except (_Closed, ConnectionError, OSError, ValueError):
        pass
    finally:
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering a send")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS with this certificate and key")
    args = parser.parse_args()
    global _delay
    _delay = args.delay
    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(*args.tls)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(1024)
    print(f"PORT {listener.getsockname()[1]}", flush=True)

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            import os

            os._exit(0)

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_serve, args=(sock, tls), daemon=True).start()


def _serve(sock: socket.socket, tls: ssl.SSLContext | None) -> None:
    if tls is not None:
        try:  # the handshake in the connection's own thread, not the accept loop
            sock = tls.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError):
            sock.close()
            return
    serve(sock)


if __name__ == "__main__":
    main()
