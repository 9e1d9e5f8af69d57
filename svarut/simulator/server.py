"""The simulator's HTTP server: SvarUt's v3 send and status endpoints,
Maskinporten's token endpoint and SvarUt's certificate, on 127.0.0.1.

Routes (``ROOT`` is ``http://127.0.0.1:<port>``):

- ``POST /api/v3/kontoer/{kontoId}/forsendelser/{person|organisasjon|nhn|print}``:
  a send: one route per entry of the generated ``SEND_OPERATIONS``, whose
  path, model, metadata and file part names and ``described_by`` it follows,
  so a send endpoint new in the specs is served after ``make generate``.
- ``POST /api/v3/kontoer/{kontoId}/forsendelser/status/sok``: the status search,
  if the specs have it (``ENDPOINTS["hentStatuser"]``; the first v3 spec did not).
- ``POST /maskinporten/token``: the JWT bearer grant (:mod:`.maskinporten`).
- ``GET /forsendelse/publickey/hent``: SvarUt's encryption certificate (PEM).
- ``GET /`` and ``GET /simulator``: the HTML page; ``GET /simulator/forsendelser``: the same as JSON.

A send is checked as SvarUt checks it, in this order: the three auth headers
(401 without a live token or integration headers, 403 for wrong integration
credentials or a konto the integration does not have), the multipart body
against the limits of SvarUt's parser, Tomcat (more than ``max_part_count``
parts, default 50, is answered 500; a part's header section over
``max_part_header_size`` bytes, default 512, 413: ``_limit_reply`` says why),
the parts themselves (the metadata part first, ``forsendelse``, read by the
generated model; then the document parts (their names ignored, as the spec
says SvarUt ignores them), whose count, order and filenames, trimmed as Tomcat
trims them, must match the metadata's ``dokumenter``, or exactly one where the
metadata describes none, as for NHN), decryption of a ``kryptert``
forsendelse's documents, and SvarUt's duplicate rule. Documents stream to
files under ``storage_dir`` with their SHA-256; an error is answered with an
``ErrorMessage`` JSON (``errorJson`` an object, as the live server sends it)
only after the whole body was read, so the client always sees the answer.
Error codes other than ``GJENTAGENDE_FORSENDELSE`` (SvarUt's own) are the
simulator's.

Handler threads are joined on :meth:`Simulator.stop`, which also shuts down
idle keep-alive connections, so a test that stops the simulator leaves no
thread or socket behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import typing
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from pydantic import BaseModel, ValidationError

from svarut import statuses, utfall
from svarut._client import AsyncSvarUtClient, SvarUtClient
from svarut.generated import ENDPOINTS, SEND_OPERATIONS, models
from svarut.runtime.auth import Keystore, MaskinportenConfig
from svarut.runtime.client import Endpoint
from svarut.runtime.errors import DUPLICATE_ERROR_CODE
from svarut.runtime.kryptering import PUBLICKEY_PATH, SvarUtSertifikat
from svarut.runtime.operations import SendOperation
from svarut.runtime.validation import MAX_PART_COUNT, MAX_PART_HEADER_SIZE
from svarut.simulator import cms
from svarut.simulator.keys import SimulatorKeys, throwaway_keys
from svarut.simulator.maskinporten import MaskinportenStandIn
from svarut.simulator.page import document_at, render_page, send_document
from svarut.simulator.records import ReceivedDocument, ReceivedForsendelse, forced_path, journey, path_for_kind
from svarut.simulator.scenarios import Operation, RequestFaults, Scenarios
from svarut.simulator.wire import BodyError, BodyReader, MultipartError, MultipartReader, PartLimitError, boundary_of

__all__ = ["API_PREFIX", "CHANNELS", "Channel", "RequestRecord", "Simulator"]

log = logging.getLogger("svarut.simulator")

API_PREFIX = "/api"
MASKINPORTEN_PREFIX = "/maskinporten/"
PAGE_PATHS = ("/", "/simulator", "/simulator/")
JSON_PATH = "/simulator/forsendelser"
MAX_JSON_BYTES = 1024 * 1024
DUPLICATE_MESSAGE = "Forsendelse med samme mottaker, tittel, avsender og filer er forsøkt sendt tidligere"
DEFAULT_CLIENT_ID = "svarut-simulator"

# The simulator's own error codes (SvarUt's live codes are not documented,
# except the duplicate one, which is real).
CODE_UNAUTHENTICATED = "UAUTENTISERT"
CODE_FORBIDDEN = "INGEN_TILGANG"
CODE_NOT_FOUND = "IKKE_FUNNET"
CODE_INVALID = "UGYLDIG_FORESPORSEL"
CODE_DOCUMENTS = "DOKUMENTER_STEMMER_IKKE"
CODE_DECRYPTION = "DEKRYPTERING_FEILET"
CODE_SIMULATED = "SIMULERT_FEIL"
CODE_INTERNAL = "INTERN_FEIL"
CODE_TOO_MANY_PARTS = "FOR_MANGE_DELER"
CODE_PART_HEADER_TOO_BIG = "FOR_STORT_DELHODE"


@dataclass(frozen=True)
class Channel:
    """One send endpoint, as the generated :class:`SendOperation` describes it."""

    operation: SendOperation
    pattern: re.Pattern[str]

    @property
    def name(self) -> str:
        """The send kind: ``person``, ``nhn``, ..."""
        return self.operation.kind

    @property
    def endpoint(self) -> Endpoint[Any]:
        return self.operation.endpoint

    @property
    def model(self) -> type[BaseModel]:
        return self.operation.model

    @property
    def documents_field(self) -> str | None:
        """The model's list of document metadata (``dokumenter``); None for NHN's single document."""
        return self.operation.described_by


def _pattern(path: str) -> re.Pattern[str]:
    # "/v3/kontoer/{kontoId}/..." -> "^/api/v3/kontoer/(?P<kontoId>[^/]+)/...$"
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(API_PREFIX + path)) + "$")


#: The send endpoints: one per generated send operation.
CHANNELS: tuple[Channel, ...] = tuple(Channel(op, _pattern(op.endpoint.path)) for op in SEND_OPERATIONS.values())
#: The status search, if the specs have one.
STATUS_ENDPOINT: Endpoint[Any] | None = ENDPOINTS.get(statuses.STATUS_OPERATION)
STATUS_PATTERN: re.Pattern[str] | None = _pattern(STATUS_ENDPOINT.path) if STATUS_ENDPOINT else None
#: The eksternRef lookups (ids, and with metadata), if the specs have them.
LOOKUP_ENDPOINTS: tuple[Endpoint[Any], ...] = tuple(
    e for op in (utfall.LOOKUP_OPERATION, utfall.METADATA_OPERATION) if (e := ENDPOINTS.get(op)) is not None
)
LOOKUP_PATTERNS: tuple[tuple[re.Pattern[str], Endpoint[Any]], ...] = tuple(
    (_pattern(e.path), e) for e in LOOKUP_ENDPOINTS
)


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (``status`` None: the connection was reset)."""

    method: str
    path: str
    status: int | None
    operation: str | None
    at: datetime
    error: str | None = None
    """For an error answer: its errorCode and message."""


class _Reply(Exception):
    """An error answer: status, ErrorMessage fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


@dataclass
class _StoredFile:
    filnavn: str
    mime_type: str | None
    size: int
    sha256: str
    path: Path


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    allow_reuse_address = True

    def __init__(self, simulator: Simulator, port: int) -> None:
        self.simulator = simulator
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-request is routine here; never print to stderr.
        log.debug("error while handling a request from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "svarut-simulator"
    # A client that stalls mid-request cannot hold a handler thread forever.
    timeout = 60
    server: _Server

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

    @property
    def sim(self) -> Simulator:
        return self.server.simulator

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
        self.sim._log_request(self.command, self._path(), status, operation, error)
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

    def _error(self, reply: _Reply, *, operation: str | None = None) -> None:
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
        self.sim._log_request(self.command, self._path(), None, operation)
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
                page = render_page(records=self.sim.received, base_url=self.sim.base_url, requests=self.sim.requests)
                self._send(200, page, "text/html; charset=utf-8")
            elif (document := document_at(path, self.sim.received)) is not None:
                self.sim._log_request(self.command, path, 200, None)
                send_document(self, document)
            elif path == JSON_PATH:
                self._send(
                    200,
                    json.dumps([r.to_json() for r in self.sim.received], ensure_ascii=False).encode(),
                    "application/json",
                )
            elif path == PUBLICKEY_PATH:
                self._send(200, self.sim.keys.svarut.certificate_pem, "application/x-pem-file")
            elif lookup := next(((m, e) for p, e in LOOKUP_PATTERNS if (m := p.match(path))), None):
                self._lookup(path, *lookup)
            else:
                self._error(_Reply(404, CODE_NOT_FOUND, f"no such page: {path}"))
        except Exception:
            log.exception("GET %s failed", path)
            self.close_connection = True

    def do_POST(self) -> None:
        path = self._path()
        try:
            body = self._body()
        except BodyError as exc:
            self.close_connection = True
            self._error(_Reply(400, CODE_INVALID, str(exc)))
            return
        try:
            if path == self.sim.token_path:
                self._token(body)
            elif path.startswith(API_PREFIX + "/"):
                self._api(path, body)
            else:
                if self._drain(body):
                    self._error(_Reply(404, CODE_NOT_FOUND, f"no such endpoint: POST {path}"))
        except Exception:
            log.exception("POST %s failed", path)
            self.close_connection = True
            with contextlib.suppress(Exception):
                self._error(_Reply(500, CODE_INTERNAL, "the simulator failed; see its log"))

    def _other(self) -> None:
        self.close_connection = True
        self._error(_Reply(405, CODE_INVALID, f"{self.command} is not supported here"))

    do_PUT = do_DELETE = do_PATCH = _other

    # --- Maskinporten -------------------------------------------------------

    def _token(self, body: BodyReader) -> None:
        try:
            data = _read_limited(body, MAX_JSON_BYTES)
        except BodyError:
            self.close_connection = True
            return
        except _Reply as reply:
            self.close_connection = True
            self._error(reply)
            return
        status, payload = self.sim.maskinporten.token_response(content_type=self.headers.get("Content-Type"), body=data)
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
                self._error(_Reply(404, CODE_NOT_FOUND, f"no such endpoint: POST {path}"))
            return
        operation: Operation = "send" if channel else "status"
        faults = self.sim.scenarios.take_faults(operation)
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
                _Reply(faults.error.status, CODE_SIMULATED, "simulated server error", headers=headers),
                operation=operation,
            )
            return
        try:
            konto_id = self.sim._authorize(self.headers, match.group("kontoId"))
            if channel is not None:
                result: Any = {"id": str(self.sim._receive(channel, konto_id, body, self.headers.get("Content-Type")))}
            else:
                result = self.sim._statuses(konto_id, _read_limited(body, MAX_JSON_BYTES))
        except BodyError:
            self.close_connection = True  # the client went away mid-body
            self.sim._log_request("POST", path, None, operation)
            return
        except _Reply as reply:
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
        faults = self.sim.scenarios.take_faults(operation)
        if faults.reset is not None:
            self._reset(operation)
            return
        if not self._pause(faults):
            return
        if faults.error is not None:
            headers = {} if faults.error.retry_after is None else {"Retry-After": str(faults.error.retry_after)}
            reply = _Reply(faults.error.status, CODE_SIMULATED, "simulated server error", headers=headers)
            self._error(reply, operation=operation)
            return
        try:
            konto_id = self.sim._authorize(self.headers, match.group(utfall.KONTO_PARAMETER))
            values = parse_qs(urlsplit(self.path).query, keep_blank_values=True).get(utfall.REFERANSE_PARAMETER, [])
            if len(values) != 1 or not values[0]:
                raise _Reply(400, CODE_INVALID, f"the query parameter {utfall.REFERANSE_PARAMETER} is required, once")
            result = self.sim._lookup(endpoint, konto_id, values[0])
        except _Reply as reply:
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


def _lookup_item(model: type[BaseModel], record: ReceivedForsendelse) -> dict[str, Any]:
    """One forsendelse as the lookup with metadata describes it, from what the
    spec's item model has: a date-time is when it arrived, a field the
    forsendelse part carried is that value, and the one other required string
    is its id."""
    item: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        kinds = set(typing.get_args(info.annotation)) | {info.annotation}
        if datetime in kinds or any(getattr(k, "__name__", "") == "AwareDatetime" for k in kinds):
            item[key] = record.received_at.isoformat()
        elif key in record.metadata:
            item[key] = record.metadata[key]
        elif info.is_required():
            item[key] = str(record.id)
    return item


def _read_limited(body: BodyReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := body.read(64 * 1024):
        data += chunk
        if len(data) > limit:
            body.drain()
            raise _Reply(413, CODE_INVALID, f"the body is larger than {limit} bytes")
    return bytes(data)


def _limit_reply(exc: PartLimitError) -> _Reply:
    """What a Spring Boot service on Tomcat answers a request Tomcat's parser refuses.

    Tomcat's Request.parseParts wraps the size exception in an IllegalStateException
    whose message is the exception's own text, class name first, and Spring's
    StandardMultipartHttpServletRequest.handleParseFailure turns a message containing
    "exceed" and "size" into MaxUploadSizeExceededException, which Spring MVC answers
    413: the header limit (SizeLimitExceededException, "Header section has more than
    512 bytes"). The part limit (FileCountLimitExceededException, message "attachment")
    has no "size" in it, becomes a plain MultipartException that nothing maps, and goes
    out as 500 (spring-framework#36317). SvarUt's own error handler is not known; the
    body is an ErrorMessage, as for every other error here.
    """
    details = {"grense": exc.permitted, "faktisk": exc.actual}
    if exc.limit == "part_count":
        message = (
            f"{exc}: SvarUt's multipart parser (Tomcat, maxPartCount) refuses a request of more than "
            f"{exc.permitted} parts"
        )
        return _Reply(500, CODE_TOO_MANY_PARTS, message, details=details)
    message = f"{exc}: SvarUt's multipart parser (Tomcat, maxPartHeaderSize) refuses it"
    return _Reply(413, CODE_PART_HEADER_TOO_BIG, message, details=details)


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [{"felt": ".".join(str(p) for p in e["loc"]) or "(body)", "feil": e["msg"]} for e in exc.errors()]


def _mottakere(metadata: Mapping[str, Any]) -> set[str]:
    """Everything a scenario may name a forsendelse's mottaker by."""
    found: set[str] = set()
    mottaker = metadata.get("mottaker")
    if isinstance(mottaker, dict):
        found |= {str(mottaker[k]) for k in ("digitalId", "navn") if mottaker.get(k)}
    pasient = metadata.get("pasient")
    if isinstance(pasient, dict) and pasient.get("fodselsnummer"):
        found.add(str(pasient["fodselsnummer"]))
    if metadata.get("mottakerHerId"):
        found.add(str(metadata["mottakerHerId"]))
    return found


class Simulator:
    """SvarUt and Maskinporten on 127.0.0.1, for tests and demos.

    >>> with Simulator(step_seconds=0.05) as sim:  # doctest: +SKIP
    ...     with sim.client() as client:
    ...         forsendelse_id = client.send_til_person(konto_id=sim.konto_id, ...)
    ...     sim.get(forsendelse_id).documents

    ``port`` 0 picks a free port. ``step_seconds`` is how long each status
    lasts before the next (0: straight to the end). ``storage_dir`` receives
    the documents (default: a temporary directory removed by :meth:`stop`).
    ``konto_ids`` are the kontoer the integration may use (default: one
    fresh id, :attr:`konto_id`). ``integrasjon_id``/``integrasjon_passord``
    default to fresh random values. ``maskinporten_client_id`` is the one
    client id the Maskinporten stand-in accepts (None: any);
    ``trusted_certificates`` limits the certificates it accepts (default:
    any valid one). ``not_digital``: fødselsnumre without a digital mailbox,
    whose letters go to print. ``reject_duplicates`` turns SvarUt's duplicate
    rule on or off. ``keys``: the key pairs to use (default: the process's
    throwaway keys). ``max_part_count`` and ``max_part_header_size`` are the
    limits of SvarUt's multipart parser (Tomcat's ``maxPartCount`` and
    ``maxPartHeaderSize``; default Tomcat's 50 parts and 512 bytes, None for
    no limit); like ``reject_duplicates`` they may be changed on a running
    simulator.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        step_seconds: float = 1.0,
        storage_dir: str | Path | None = None,
        konto_ids: Iterable[uuid.UUID | str] | None = None,
        integrasjon_id: uuid.UUID | str | None = None,
        integrasjon_passord: str | None = None,
        maskinporten_client_id: str | None = DEFAULT_CLIENT_ID,
        token_lifetime: int = 120,
        trusted_certificates: Iterable[x509.Certificate] | None = None,
        not_digital: Iterable[str] = (),
        reject_duplicates: bool = True,
        keys: SimulatorKeys | None = None,
        max_part_count: int | None = MAX_PART_COUNT,
        max_part_header_size: int | None = MAX_PART_HEADER_SIZE,
    ) -> None:
        for name, value in (("max_part_count", max_part_count), ("max_part_header_size", max_part_header_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int or None, got {value!r}")
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no limit), got {value}")
        self.max_part_count = max_part_count
        self.max_part_header_size = max_part_header_size
        self.port_requested = port
        self.step_seconds = step_seconds
        self.konto_ids: tuple[uuid.UUID, ...] = tuple(
            k if isinstance(k, uuid.UUID) else uuid.UUID(str(k)) for k in (konto_ids or [uuid.uuid4()])
        )
        if not self.konto_ids:
            raise ValueError("konto_ids must name at least one konto")
        self.integrasjon_id = str(uuid.UUID(str(integrasjon_id)) if integrasjon_id else uuid.uuid4())
        self.integrasjon_passord = integrasjon_passord or secrets.token_urlsafe(24)
        self.maskinporten_client_id = maskinporten_client_id
        self.not_digital: set[str] = set(not_digital)
        self.reject_duplicates = reject_duplicates
        self.keys = keys or throwaway_keys()
        self.scenarios = Scenarios()
        self._token_lifetime = token_lifetime
        self._trusted = None if trusted_certificates is None else list(trusted_certificates)
        self._storage_arg = Path(storage_dir) if storage_dir is not None else None
        self._owned_storage: Path | None = None
        self._storage: Path | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._maskinporten: MaskinportenStandIn | None = None
        self._lock = threading.Lock()
        self._records: dict[uuid.UUID, ReceivedForsendelse] = {}
        self._duplicates: set[tuple[Any, ...]] = set()
        self._requests: list[RequestRecord] = []
        self._offset = 0.0

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("the simulator is running already")
        if self._storage_arg is None:
            self._owned_storage = self._storage = Path(tempfile.mkdtemp(prefix="svarut-simulator-"))
        else:
            self._storage = self._storage_arg
            self._storage.mkdir(parents=True, exist_ok=True)
        server = _Server(self, self.port_requested)
        self._server = server
        self._maskinporten = MaskinportenStandIn(
            issuer=self.maskinporten_issuer,
            client_id=self.maskinporten_client_id,
            token_lifetime=self._token_lifetime,
            trusted_certificates=self._trusted,
        )
        self.keys.client.write_pem(self._storage / "client-keystore.pem")
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="svarut-simulator", daemon=True
        )
        self._thread.start()
        log.info("SvarUt simulator at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, join every thread, and remove
        the storage directory if the simulator made it."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            # Wakes handler threads waiting on an idle keep-alive connection.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        server.server_close()
        if self._owned_storage is not None:
            shutil.rmtree(self._owned_storage, ignore_errors=True)
            self._owned_storage = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # --- where it is ------------------------------------------------------------

    def _require(self) -> _Server:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() or use it as a context manager")
        return self._server

    @property
    def port(self) -> int:
        return int(self._require().server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the server's root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """SvarUt's API root: the client's ``base_url``."""
        return self.url + API_PREFIX

    @property
    def maskinporten_issuer(self) -> str:
        return self.url + MASKINPORTEN_PREFIX

    @property
    def token_path(self) -> str:
        return MASKINPORTEN_PREFIX + "token"

    @property
    def token_endpoint(self) -> str:
        return self.url + self.token_path

    @property
    def sertifikat_url(self) -> str:
        return self.url + PUBLICKEY_PATH

    @property
    def page_url(self) -> str:
        return self.url + "/simulator"

    @property
    def storage_dir(self) -> Path:
        if self._storage is None:
            raise RuntimeError("the simulator is not running")
        return self._storage

    @property
    def keystore_path(self) -> Path:
        """A PEM file with the client keystore's key and certificate (for ``MASKINPORTEN_KEYSTORE``)."""
        return self.storage_dir / "client-keystore.pem"

    @property
    def konto_id(self) -> uuid.UUID:
        """The first (by default the only) konto."""
        return self.konto_ids[0]

    @property
    def keystore(self) -> Keystore:
        return self.keys.client.keystore()

    @property
    def sertifikat(self) -> SvarUtSertifikat:
        """SvarUt's certificate, as served at :attr:`sertifikat_url`."""
        return self.keys.sertifikat

    @property
    def maskinporten(self) -> MaskinportenStandIn:
        if self._maskinporten is None:
            raise RuntimeError("the simulator is not running")
        return self._maskinporten

    # --- clients ----------------------------------------------------------------

    def maskinporten_config(self, **options: Any) -> MaskinportenConfig:
        """A MaskinportenConfig for the stand-in (``options`` override fields)."""
        settings: dict[str, Any] = {
            "client_id": self.maskinporten_client_id or DEFAULT_CLIENT_ID,
            "keystore": self.keystore,
            "issuer": self.maskinporten_issuer,
            "token_endpoint": self.token_endpoint,
            **options,
        }
        return MaskinportenConfig(**settings)

    def _client_settings(self, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "integrasjon_id": self.integrasjon_id,
            "integrasjon_passord": self.integrasjon_passord,
            "maskinporten": self.maskinporten_config(),
            **options,
        }

    def client(self, *, environment: str = "test", **options: Any) -> SvarUtClient:
        """A new :class:`~svarut.SvarUtClient` for the simulator, through the
        whole auth path (Maskinporten stand-in, integration headers). Other
        keyword arguments go to ``for_environment``; close the client when done."""
        return SvarUtClient.for_environment(environment, **self._client_settings(options))

    def async_client(self, *, environment: str = "test", **options: Any) -> AsyncSvarUtClient:
        """The async :meth:`client`; use it with ``async with``."""
        return AsyncSvarUtClient.for_environment(environment, **self._client_settings(options))

    def environ(self, *, environment: str = "test") -> dict[str, str]:
        """The environment variables ``SvarUtClient.from_env`` and the
        ``svarut`` command read, pointing at this simulator (with ``SVARUT_KONTO_ID``)."""
        return {
            "SVARUT_ENVIRONMENT": environment,
            "SVARUT_BASE_URL": self.base_url,
            "SVARUT_INTEGRASJON_ID": self.integrasjon_id,
            "SVARUT_INTEGRASJON_PASSORD": self.integrasjon_passord,
            "SVARUT_KONTO_ID": str(self.konto_id),
            "MASKINPORTEN_CLIENT_ID": self.maskinporten_client_id or DEFAULT_CLIENT_ID,
            "MASKINPORTEN_KEYSTORE": str(self.keystore_path),
            "MASKINPORTEN_ISSUER": self.maskinporten_issuer,
            "MASKINPORTEN_TOKEN_ENDPOINT": self.token_endpoint,
        }

    # --- what it saw --------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedForsendelse]:
        """Every forsendelse accepted so far, oldest first."""
        with self._lock:
            return list(self._records.values())

    def get(self, forsendelse_id: uuid.UUID | str) -> ReceivedForsendelse:
        """The forsendelse with that id; KeyError if the simulator has none."""
        key = forsendelse_id if isinstance(forsendelse_id, uuid.UUID) else uuid.UUID(str(forsendelse_id))
        with self._lock:
            return self._records[key]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered (or reset) so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued (the next call gets 401 and
        the client fetches a fresh one)."""
        self.maskinporten.revoke_all()

    def advance(self, seconds: float) -> None:
        """Move the status clock forward, as if ``seconds`` had passed."""
        with self._lock:
            self._offset += seconds

    def clear(self) -> None:
        """Forget every forsendelse, request and scenario rule (documents on disk stay)."""
        with self._lock:
            self._records.clear()
            self._duplicates.clear()
            self._requests.clear()
        self.scenarios.clear()

    def _clock(self) -> float:
        return time.monotonic() + self._offset

    def _log_request(
        self, method: str, path: str, status: int | None, operation: str | None, error: str | None = None
    ) -> None:
        with self._lock:
            self._requests.append(RequestRecord(method, path, status, operation, datetime.now(UTC), error))

    # --- the endpoints' logic ----------------------------------------------------------

    def _authorize(self, headers: Message[str, str], konto: str) -> uuid.UUID:
        authorization = headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="svarut"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise _Reply(
                401,
                CODE_UNAUTHENTICATED,
                "missing bearer token (Authorization: Bearer <Maskinporten token>)",
                headers=challenge,
            )
        issued = self.maskinporten.check(token.strip())
        if issued is None:
            raise _Reply(
                401,
                CODE_UNAUTHENTICATED,
                "the bearer token is not one the Maskinporten stand-in issued, or has expired",
                headers={"WWW-Authenticate": 'Bearer realm="svarut", error="invalid_token"'},
            )
        integrasjon_id = headers.get("IntegrasjonId")
        passord = headers.get("IntegrasjonPassord")
        if not integrasjon_id or not passord:
            raise _Reply(
                401, CODE_UNAUTHENTICATED, "missing IntegrasjonId or IntegrasjonPassord header", headers=challenge
            )
        if integrasjon_id != self.integrasjon_id or not secrets.compare_digest(
            passord.encode(), self.integrasjon_passord.encode()
        ):
            raise _Reply(403, CODE_FORBIDDEN, "wrong IntegrasjonId or IntegrasjonPassord")
        try:
            konto_id = uuid.UUID(konto)
        except ValueError:
            raise _Reply(400, CODE_INVALID, f"kontoId is not a UUID: {konto[:60]!r}") from None
        if konto_id not in self.konto_ids:
            raise _Reply(403, CODE_FORBIDDEN, f"the integration has no access to konto {konto_id}")
        return konto_id

    def _statuses(self, konto_id: uuid.UUID, data: bytes) -> dict[str, Any]:
        assert STATUS_ENDPOINT is not None and STATUS_ENDPOINT.unwrap is not None  # routed only then
        try:
            wanted = models.Forsendelser.model_validate_json(data, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise _Reply(
                400, CODE_INVALID, "the body is not a valid Forsendelser", details={"problemer": _problems(exc)}
            ) from None
        with self._lock:
            found = [self._records.get(i) for i in wanted.id]
        statuser = [
            r.forsendelse_status().model_dump(mode="json", by_alias=True)
            for r in found
            if r is not None and r.konto_id == konto_id
        ]
        answer = STATUS_ENDPOINT.response_model.model_validate({STATUS_ENDPOINT.unwrap: statuser})
        result: dict[str, Any] = answer.model_dump(mode="json", by_alias=True)
        return result

    def _lookup(self, endpoint: Endpoint[Any], konto_id: uuid.UUID, referanse: str) -> dict[str, Any]:
        """The answer of an eksternRef lookup: the konto's forsendelser whose
        eksternReferanse is exactly ``referanse``, oldest first."""
        assert endpoint.unwrap is not None  # routed only then (the binding checks the answer's shape)
        with self._lock:
            found = sorted(
                (r for r in self._records.values() if r.konto_id == konto_id and r.ekstern_referanse == referanse),
                key=lambda r: r.received_at,
            )
        field = endpoint.response_model.model_fields[endpoint.unwrap]
        item = next(iter(typing.get_args(field.annotation)), str)
        if isinstance(item, type) and issubclass(item, BaseModel):
            items: list[Any] = [_lookup_item(item, r) for r in found]
        else:
            items = [str(r.id) for r in found]
        answer = endpoint.response_model.model_validate({field.alias or endpoint.unwrap: items})
        result: dict[str, Any] = answer.model_dump(mode="json", by_alias=True, exclude_none=True)
        return result

    def _receive(self, channel: Channel, konto_id: uuid.UUID, body: BodyReader, content_type: str | None) -> uuid.UUID:
        boundary = boundary_of(content_type)
        if boundary is None:
            raise _Reply(415, CODE_INVALID, f"expected multipart/form-data with a boundary, got {content_type!r}")
        incoming = self.storage_dir / f"incoming-{uuid.uuid4()}"
        incoming.mkdir()
        try:
            reader = MultipartReader(
                body, boundary, max_part_count=self.max_part_count, max_part_header_size=self.max_part_header_size
            )
            metadata, model, files = self._read_send(channel, reader, incoming)
            self._check_documents(channel, metadata, files)
            documents = self._decrypt(metadata, files)
            return self._accept(channel, konto_id, metadata, model, documents, incoming)
        finally:
            # Accepted documents were moved out; whatever is left was rejected.
            shutil.rmtree(incoming, ignore_errors=True)

    def _read_send(
        self, channel: Channel, reader: MultipartReader, incoming: Path
    ) -> tuple[dict[str, Any], BaseModel, list[_StoredFile]]:
        metadata: dict[str, Any] | None = None
        model: BaseModel | None = None
        files: list[_StoredFile] = []
        rejection: _Reply | None = None
        try:
            while (part := reader.next_part()) is not None:
                if rejection is not None:
                    continue  # read on to the end, so the client hears the answer
                if metadata is None:
                    name = channel.operation.metadata_part
                    if part.name != name or part.filename is not None:
                        rejection = _Reply(400, CODE_INVALID, f"the first part must be the {name} JSON, named {name!r}")
                        continue
                    raw = reader.read_content(limit=MAX_JSON_BYTES)
                    try:
                        # By the spec's names only, as SvarUt reads JSON: digital_id is not digitalId.
                        model = channel.model.model_validate_json(raw, by_alias=True, by_name=False)
                    except ValidationError as exc:
                        rejection = _Reply(
                            400,
                            CODE_INVALID,
                            f"forsendelse is not a valid {channel.model.__name__}",
                            details={"problemer": _problems(exc)},
                        )
                        continue
                    metadata = json.loads(raw)
                    continue
                if part.filename is None:
                    rejection = _Reply(400, CODE_DOCUMENTS, f"document part {len(files) + 1} has no filename")
                    continue
                files.append(self._store(reader, part.filename, part.content_type, incoming / f"{len(files):03d}.bin"))
        except PartLimitError as exc:
            # Tomcat parses every part before the service sees any: its limits come first.
            raise _limit_reply(exc) from None
        except MultipartError as exc:
            raise _Reply(400, CODE_INVALID, f"the multipart body is malformed: {exc}") from None
        if rejection is not None:
            raise rejection
        if metadata is None or model is None:
            raise _Reply(400, CODE_INVALID, "the body has no forsendelse part")
        return metadata, model, files

    @staticmethod
    def _store(reader: MultipartReader, filnavn: str, mime_type: str | None, path: Path) -> _StoredFile:
        digest = hashlib.sha256()
        size = 0
        with path.open("xb") as out:
            for chunk in reader.iter_content():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return _StoredFile(filnavn, mime_type, size, digest.hexdigest(), path)

    @staticmethod
    def _check_documents(channel: Channel, metadata: Mapping[str, Any], files: list[_StoredFile]) -> None:
        got = [f.filnavn for f in files]
        if channel.documents_field is None:
            if len(files) != 1:
                raise _Reply(
                    400,
                    CODE_DOCUMENTS,
                    f"{channel.name} takes exactly one document part, got {len(files)}",
                    details={"filer": got},
                )
            return
        described = metadata.get(channel.documents_field) or []
        expected = [str(d.get("filnavn")) for d in described if isinstance(d, dict)]
        details = {"dokumenter": expected, "filer": got}
        if not expected:
            raise _Reply(
                400,
                CODE_DOCUMENTS,
                f"the forsendelse lists no {channel.documents_field}; at least one document is required",
                details=details,
            )
        if len(got) != len(expected):
            raise _Reply(
                400,
                CODE_DOCUMENTS,
                f"{channel.documents_field} lists {len(expected)} document(s), but {len(got)} file part(s) were sent",
                details=details,
            )
        if got != expected:
            order = (
                " (the same names in another order: the parts must follow dokumenter)"
                if sorted(got) == sorted(expected)
                else ""
            )
            first = next(i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
            raise _Reply(
                400,
                CODE_DOCUMENTS,
                f"file part {first + 1} is {got[first]!r}, but {channel.documents_field}[{first}].filnavn "
                f"is {expected[first]!r}{order}",
                details=details,
            )

    def _decrypt(self, metadata: Mapping[str, Any], files: list[_StoredFile]) -> list[ReceivedDocument]:
        documents = []
        for stored in files:
            plain_size: int | None = None
            plain_sha: str | None = None
            if metadata.get("kryptert"):
                try:
                    result = cms.decrypt_file(
                        stored.path, private_key=self.keys.svarut.private_key, certificate=self.keys.svarut.certificate
                    )
                except cms.DecryptError as exc:
                    raise _Reply(
                        400,
                        CODE_DECRYPTION,
                        f"document {stored.filnavn!r} cannot be decrypted: {exc}",
                        details={"filnavn": stored.filnavn},
                    ) from None
                plain_size, plain_sha = result.size, result.sha256
            documents.append(
                ReceivedDocument(
                    stored.filnavn, stored.mime_type, stored.size, stored.sha256, stored.path, plain_size, plain_sha
                )
            )
        return documents

    def _accept(
        self,
        channel: Channel,
        konto_id: uuid.UUID,
        metadata: dict[str, Any],
        model: BaseModel,
        documents: list[ReceivedDocument],
        incoming: Path,
    ) -> uuid.UUID:
        key = (
            konto_id,
            json.dumps(metadata.get("mottaker") or metadata.get("pasient"), sort_keys=True),
            metadata.get("tittel"),
            tuple(d.content_sha256 for d in documents),
        )
        mottakere = _mottakere(metadata)
        forsendelse_id = uuid.uuid4()
        target = self.storage_dir / str(forsendelse_id)
        with self._lock:
            if self.reject_duplicates and key in self._duplicates:
                raise _Reply(400, DUPLICATE_ERROR_CODE, DUPLICATE_MESSAGE)
            self._duplicates.add(key)
        forced = self.scenarios.take_outcome(mottakere)
        status_path = forced_path(forced) if forced is not None else self._status_path(channel, metadata)
        incoming.rename(target)
        documents = [
            ReceivedDocument(
                d.filnavn, d.mime_type, d.size, d.sha256, target / d.path.name, d.plaintext_size, d.plaintext_sha256
            )
            for d in documents
        ]
        record = ReceivedForsendelse(
            id=forsendelse_id,
            konto_id=konto_id,
            channel=channel.name,
            operation_id=channel.endpoint.operation_id,
            metadata=metadata,
            model=model,
            documents=tuple(documents),
            received_at=datetime.now(UTC),
            status_path=status_path,
            step_seconds=self.step_seconds,
            started=self._clock(),
            clock=self._clock,
        )
        with self._lock:
            self._records[forsendelse_id] = record
        log.info(
            "received %s forsendelse %s (%d document(s)) on konto %s",
            channel.name,
            forsendelse_id,
            len(documents),
            konto_id,
        )
        return forsendelse_id

    def _status_path(self, channel: Channel, metadata: Mapping[str, Any]) -> tuple[str, ...]:
        mottaker = metadata.get("mottaker")
        digital_id = str(mottaker.get("digitalId")) if isinstance(mottaker, dict) else None
        if channel.name == "person" and digital_id in self.not_digital:
            # No digital mailbox: to print, unless the avsender wants digital delivery only.
            if metadata.get("kunDigitalLevering"):
                return forced_path("IKKE_LEVERT")
            return journey("person_print") or path_for_kind(channel.name)
        return path_for_kind(channel.name)


def connection_info(sim: Simulator) -> str:
    """Where ``sim`` is, for a person to read (the exports are :func:`exports`)."""
    return "\n".join(
        [
            f"SvarUt simulator running at {sim.url}",
            f"  page:                {sim.page_url}",
            f"  SvarUt API:          {sim.base_url}",
            f"  Maskinporten issuer: {sim.maskinporten_issuer}",
            f"  token endpoint:      {sim.token_endpoint}",
            f"  SvarUt certificate:  {sim.sertifikat_url}",
            "",
            "The export lines on stdout point a client (or the svarut command) at it:",
            '  eval "$(python -m svarut.simulator &)"   # then: kill "$SVARUT_SIMULATOR_PID"',
        ]
    )


def exports(sim: Simulator) -> str:
    """What a client needs to reach ``sim``, as shell ``export`` lines, and
    ``SVARUT_SIMULATOR_PID`` to stop it."""
    settings = {**sim.environ(), "SVARUT_SIMULATOR_PID": str(os.getpid())}
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in settings.items())


def _detach(out: Any) -> None:
    """Close ``out`` (after the connection details) unless it is a terminal, so a
    reader of the pipe, such as the shell's ``$(...)``, sees its end while the simulator runs on."""
    out.flush()
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        return
    if os.isatty(fd):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_until_interrupted(
    sim: Simulator, *, out: Any, ready: Literal["text", "json"] = "text", err: Any = None
) -> None:
    """Start ``sim``, print how to reach it to ``out`` (``export`` lines, or
    with ``ready="json"`` one JSON line) and nothing else, then close ``out``
    unless it is a terminal; the prose for a person goes to ``err`` (default
    stderr). Serve until Ctrl-C or SIGTERM, then stop."""
    err = sys.stderr if err is None else err
    if threading.current_thread() is threading.main_thread():
        # A service manager's SIGTERM stops it as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
    with sim:
        if ready == "json":
            print(json.dumps({"url": sim.url, **sim.environ()}), file=out, flush=True)
        else:
            print(exports(sim), file=out, flush=True)
            print(connection_info(sim) + "\n\nCtrl-C stops it.", file=err, flush=True)
        _detach(out)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
