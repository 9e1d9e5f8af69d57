"""The simulator's HTTP plumbing: the threaded server on 127.0.0.1, its
request handler (routing, body reading, replies, simulated faults and
resets), and nothing of SvarUt's rules, which the handler leaves to the
:class:`~svarut.simulator.intake.FakeSvarUt` it serves.

Routes (``ROOT`` is ``http://127.0.0.1:<port>``):

- ``POST /api/v3/kontoer/{kontoId}/forsendelser/{person|organisasjon|nhn|print}``:
  a send: one route per entry of the generated ``SEND_OPERATIONS``, whose
  path, model, metadata and file part names and ``described_by`` it follows,
  so a send endpoint new in the specs is served after ``make generate``.
- ``POST /api/v3/kontoer/{kontoId}/forsendelser/status/sok``: the status search,
  if the specs have it (``ENDPOINTS["hentStatuser"]``; the first v3 spec did not).
- ``GET`` the eksternRef lookups (ids, and with metadata), if the specs have them.
- ``POST /maskinporten/token``: the JWT bearer grant (:mod:`.maskinporten`).
- ``GET /forsendelse/publickey/hent``: SvarUt's encryption certificate (PEM).
- ``GET /`` and ``GET /simulator``: the HTML page; ``GET /simulator/forsendelser``: the same as JSON.

An error is answered with an ``ErrorMessage`` JSON (``errorJson`` an object,
as the live server sends it) only after the whole body was read, so the
client always sees the answer. Every request is logged in the fake SvarUt's
request log before its answer goes out.

:class:`Server` tracks its connections, so :meth:`Simulator.stop
<svarut.simulator.facade.Simulator.stop>` can shut down idle keep-alive
connections and join every handler thread. Imports go one way: this module
imports :mod:`.intake`, never the facade.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from svarut import utfall
from svarut.runtime.client import Endpoint
from svarut.runtime.kryptering import PUBLICKEY_PATH
from svarut.simulator.intake import (
    API_PREFIX,
    CHANNELS,
    CODE_INTERNAL,
    CODE_INVALID,
    CODE_NOT_FOUND,
    CODE_SIMULATED,
    LOOKUP_PATTERNS,
    MAX_JSON_BYTES,
    STATUS_PATTERN,
    FakeSvarUt,
    Reply,
)
from svarut.simulator.page import document_at, render_page, send_document
from svarut.simulator.scenarios import Operation, RequestFaults
from svarut.simulator.wire import BodyError, BodyReader

__all__ = ["JSON_PATH", "PAGE_PATHS", "Handler", "Server", "read_limited"]

log = logging.getLogger("svarut.simulator")

PAGE_PATHS = ("/", "/simulator", "/simulator/")
JSON_PATH = "/simulator/forsendelser"


class Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    allow_reuse_address = True

    def __init__(self, svarut: FakeSvarUt, port: int) -> None:
        self.svarut = svarut
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-request is routine here; never print to stderr.
        log.debug("error while handling a request from %s", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "svarut-simulator"
    # A client that stalls mid-request cannot hold a handler thread forever.
    timeout = 60
    server: Server

    # --- plumbing -----------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the Maskinporten stand-in's clock, which a test may set off
        # this machine's: clients measure their clock skew against it.
        if timestamp is None:
            timestamp = self.svarut.settings.maskinporten.now()
        return super().date_time_string(timestamp)

    @property
    def svarut(self) -> FakeSvarUt:
        return self.server.svarut

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        *,
        operation: str | None = None,
        error: str | None = None,
    ) -> None:
        # Logged before the answer goes out: a test that has the answer must find it in the log.
        self.svarut.log_request(self.command, self._path(), status, operation, error)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client stopped waiting
            self.close_connection = True

    def _json(
        self,
        status: int,
        value: Any,
        headers: Mapping[str, str] | None = None,
        *,
        operation: str | None = None,
        error: str | None = None,
    ) -> None:
        body = json.dumps(value, ensure_ascii=False).encode()
        self._send(status, body, "application/json", headers, operation=operation, error=error)

    def _error(self, reply: Reply, *, operation: str | None = None) -> None:
        path = self._path()
        body = {
            "timestamp": int(time.time() * 1000),
            "status": reply.status,
            "error": HTTPStatus(reply.status).phrase,
            "errorId": str(uuid.uuid4()),
            "path": path.removeprefix(API_PREFIX),
            "originalPath": path,
            "message": reply.message,
            "errorCode": reply.code,
            "errorJson": reply.details,
        }
        self._json(reply.status, body, reply.headers, operation=operation, error=f"{reply.code}: {reply.message}")

    def _reset(self, operation: str | None) -> None:
        """Drop the connection with a TCP RST, as a crashed server or proxy would."""
        self.close_connection = True
        self.svarut.log_request(self.command, self._path(), None, operation)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _body(self) -> BodyReader:
        return BodyReader.from_headers(
            self.rfile,
            content_length=self.headers.get("Content-Length"),
            transfer_encoding=self.headers.get("Transfer-Encoding"),
        )

    def _drain(self, body: BodyReader) -> bool:
        """Read the rest of the body, so the client can read our answer; False if it went away."""
        try:
            body.drain()
        except BodyError:
            self.close_connection = True
            return False
        return True

    # --- methods ------------------------------------------------------------

    def do_GET(self) -> None:
        path = self._path()
        try:
            if path in PAGE_PATHS:
                page = render_page(
                    records=self.svarut.received, base_url=self.svarut.settings.base_url, requests=self.svarut.requests
                )
                self._send(200, page, "text/html; charset=utf-8")
            elif (document := document_at(path, self.svarut.received)) is not None:
                self.svarut.log_request(self.command, path, 200, None)
                send_document(self, document)
            elif path == JSON_PATH:
                self._send(
                    200,
                    json.dumps([r.to_json() for r in self.svarut.received], ensure_ascii=False).encode(),
                    "application/json",
                )
            elif path == PUBLICKEY_PATH:
                self._send(200, self.svarut.settings.keys.svarut.certificate_pem, "application/x-pem-file")
            elif lookup := next(((m, e) for p, e in LOOKUP_PATTERNS if (m := p.match(path))), None):
                self._lookup(path, *lookup)
            else:
                self._error(Reply(404, CODE_NOT_FOUND, f"no such page: {path}"))
        except Exception:
            log.exception("GET %s failed", path)
            self.close_connection = True

    def do_POST(self) -> None:
        path = self._path()
        try:
            body = self._body()
        except BodyError as exc:
            self.close_connection = True
            self._error(Reply(400, CODE_INVALID, str(exc)))
            return
        try:
            if path == self.svarut.settings.token_path:
                self._token(body)
            elif path.startswith(API_PREFIX + "/"):
                self._api(path, body)
            else:
                if self._drain(body):
                    self._error(Reply(404, CODE_NOT_FOUND, f"no such endpoint: POST {path}"))
        except Exception:
            log.exception("POST %s failed", path)
            self.close_connection = True
            with contextlib.suppress(Exception):
                self._error(Reply(500, CODE_INTERNAL, "the simulator failed; see its log"))

    def _other(self) -> None:
        self.close_connection = True
        self._error(Reply(405, CODE_INVALID, f"{self.command} is not supported here"))

    do_PUT = do_DELETE = do_PATCH = _other

    # --- Maskinporten -------------------------------------------------------

    def _token(self, body: BodyReader) -> None:
        try:
            data = read_limited(body, MAX_JSON_BYTES)
        except BodyError:
            self.close_connection = True
            return
        except Reply as reply:
            self.close_connection = True
            self._error(reply)
            return
        status, payload = self.svarut.settings.maskinporten.token_response(
            content_type=self.headers.get("Content-Type"), body=data
        )
        self._json(status, payload, {"Cache-Control": "no-store"}, operation="token")

    # --- SvarUt -------------------------------------------------------------

    def _api(self, path: str, body: BodyReader) -> None:
        channel = next((c for c in CHANNELS if c.pattern.match(path)), None)
        if channel is not None:
            match = channel.pattern.match(path)
        else:
            match = STATUS_PATTERN.match(path) if STATUS_PATTERN is not None else None
        if match is None:
            if self._drain(body):
                self._error(Reply(404, CODE_NOT_FOUND, f"no such endpoint: POST {path}"))
            return
        operation: Operation = "send" if channel else "status"
        faults = self.svarut.settings.scenarios.take_faults(operation)
        if faults.reset is not None and faults.reset.when == "before_body":
            self._reset(operation)
            return
        if faults.error is not None or (faults.reset is not None and not faults.reset.accept):
            # A failing gateway or backend: the request is read and lost.
            if not self._drain(body) or not self._pause(faults):
                return
            if faults.reset is not None:
                self._reset(operation)
                return
            assert faults.error is not None
            headers = {} if faults.error.retry_after is None else {"Retry-After": str(faults.error.retry_after)}
            self._error(
                Reply(faults.error.status, CODE_SIMULATED, "simulated server error", headers=headers),
                operation=operation,
            )
            return
        try:
            konto_id = self.svarut.authorize(self.headers, match.group("kontoId"))
            if channel is not None:
                result: Any = {
                    "id": str(self.svarut.receive(channel, konto_id, body, self.headers.get("Content-Type")))
                }
            else:
                result = self.svarut.status_search(konto_id, read_limited(body, MAX_JSON_BYTES))
        except BodyError:
            self.close_connection = True  # the client went away mid-body
            self.svarut.log_request("POST", path, None, operation)
            return
        except Reply as reply:
            if self._drain(body) and self._pause(faults):
                self._error(reply, operation=operation)
            return
        if not self._pause(faults):
            return
        if faults.reset is not None:  # accept=True: kept, but the answer is lost
            self._reset(operation)
            return
        self._json(200, result, operation=operation)

    def _lookup(self, path: str, match: re.Match[str], endpoint: Endpoint[Any]) -> None:
        """An eksternRef lookup: the konto's forsendelser that carry the reference, as sent."""
        operation: Operation = "lookup"
        faults = self.svarut.settings.scenarios.take_faults(operation)
        if faults.reset is not None:
            self._reset(operation)
            return
        if not self._pause(faults):
            return
        if faults.error is not None:
            headers = {} if faults.error.retry_after is None else {"Retry-After": str(faults.error.retry_after)}
            reply = Reply(faults.error.status, CODE_SIMULATED, "simulated server error", headers=headers)
            self._error(reply, operation=operation)
            return
        try:
            konto_id = self.svarut.authorize(self.headers, match.group(utfall.KONTO_PARAMETER))
            values = parse_qs(urlsplit(self.path).query, keep_blank_values=True).get(utfall.REFERANSE_PARAMETER, [])
            if len(values) != 1 or not values[0]:
                raise Reply(400, CODE_INVALID, f"the query parameter {utfall.REFERANSE_PARAMETER} is required, once")
            result = self.svarut.lookup(endpoint, konto_id, values[0])
        except Reply as reply:
            self._error(reply, operation=operation)
            return
        self._json(200, result, operation=operation)

    def _pause(self, faults: RequestFaults) -> bool:
        """Wait out a slow fault; False if the simulator is stopping meanwhile."""
        if faults.slow is None:
            return True
        if self.server.stopping.wait(faults.slow.seconds):
            self.close_connection = True
            return False
        return True


def read_limited(body: BodyReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := body.read(64 * 1024):
        data += chunk
        if len(data) > limit:
            body.drain()
            raise Reply(413, CODE_INVALID, f"the body is larger than {limit} bytes")
    return bytes(data)
