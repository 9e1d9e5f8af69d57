"""A server that misbehaves on purpose: resets mid-upload and after the body,
5xx with and without Retry-After, answers too slowly. For every case the test
asserts how many requests reached the server (a send is never duplicated) and
which exception the caller gets."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

import svarut
from svarut import errors, models
from svarut.runtime.retry import RetryPolicy

pytestmark = pytest.mark.anyio

KONTO = uuid.uuid4()
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.02)
DOC = b"%PDF-1.7\n" + bytes(range(256)) * 8192  # 2 MiB: bigger than the socket buffers


# --- the misbehaving server ---------------------------------------------------------


@dataclass
class Conn:
    """What one connection delivered before the server acted."""

    head: bytes = b""
    body: bytes = b""


Behaviour = Callable[[socket.socket, Conn], None]


def _read_head(sock: socket.socket, conn: Conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.head, _, rest = data.partition(b"\r\n\r\n")
    return rest


def _header(conn: Conn, wanted: bytes) -> bytes | None:
    for line in conn.head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == wanted:
            return value.strip()
    return None


def read_all(sock: socket.socket, conn: Conn) -> None:
    """Read the whole body: by Content-Length, or to the last chunk (kept raw)."""
    body = _read_head(sock, conn)
    length = _header(conn, b"content-length")
    while (len(body) < int(length)) if length is not None else not body.endswith(b"0\r\n\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    conn.body = body


def reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST, as a crashed process or proxy would.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def reset_mid_upload(sock: socket.socket, conn: Conn) -> None:
    conn.body = _read_head(sock, conn)
    conn.body += sock.recv(4096)
    reset(sock)


def reset_after_body(sock: socket.socket, conn: Conn) -> None:
    read_all(sock, conn)
    reset(sock)


def answer(
    status: int,
    body: object | Callable[[Conn], object] = b"",
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Behaviour:
    """Read the whole request, then answer; ``body`` may depend on the request."""

    def behave(sock: socket.socket, conn: Conn) -> None:
        read_all(sock, conn)
        value = body(conn) if callable(body) else body
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        if delay:
            threading.Event().wait(delay)
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(raw)}", "Content-Type: application/json"]
        lines.append("Connection: close")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        with contextlib.suppress(OSError):
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + raw)
        sock.close()

    return behave


def ok_send() -> Behaviour:
    return answer(200, {"id": str(uuid.uuid4())})


def _statuser(conn: Conn) -> object:
    ids = json.loads(conn.body)["id"]
    return {"statuser": [{"id": i, "sisteStatusEndring": "2024-05-02T10:00:00+02:00", "status": "LEST"} for i in ids]}


ok_status = answer(200, _statuser)


@dataclass
class FaultServer:
    behaviours: list[Behaviour]
    connections: list[Conn] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            client.settimeout(5)
            conn = Conn()
            self.connections.append(conn)
            behave = self.behaviours.pop(0) if self.behaviours else answer(599, b"no more behaviours")
            try:
                behave(client, conn)
            except OSError:
                client.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def faults() -> Iterator[Callable[..., FaultServer]]:
    servers: list[FaultServer] = []

    def start(*behaviours: Behaviour) -> FaultServer:
        servers.append(FaultServer(list(behaviours)))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


# --- calling it ---------------------------------------------------------------------


def forsendelse(**extra: object) -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
        **extra,
    )


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest):
    async def run(base_url: str, method: str, /, client: dict[str, object] | None = None, **kwargs: object) -> object:
        options = {"base_url": base_url, "retry": FAST, "environment": "test", **(client or {})}
        if request.param == "sync":
            with svarut.SvarUtClient(**options) as c:
                return getattr(c, method)(**kwargs)
        async with svarut.AsyncSvarUtClient(**options) as c:
            return await getattr(c, method)(**kwargs)

    return run


def send(call, srv: FaultServer, **client: object):
    return call(
        srv.base_url,
        "send_til_person",
        client=client,
        konto_id=KONTO,
        forsendelse=forsendelse(ekstern_referanse="sak-1"),
        dokumenter={"vedtak.pdf": DOC},
    )


# --- sends --------------------------------------------------------------------------


async def test_reset_mid_upload_is_not_retried_and_not_ambiguous(call, faults):
    # Far bigger than the kernel's socket buffers, so the reset lands while the
    # client is still writing and it knows the body never arrived whole.
    big = DOC * 16
    srv = faults(reset_mid_upload, ok_send())
    with pytest.raises(errors.APIConnectionError) as caught:
        await call(
            srv.base_url, "send_til_person", konto_id=KONTO, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": big}
        )
    assert not isinstance(caught.value, errors.SendOutcomeUnknownError)
    assert len(srv.connections) == 1
    assert len(srv.connections[0].body) < len(big)


async def test_reset_after_the_full_body_is_an_unknown_outcome(call, faults):
    srv = faults(reset_after_body, ok_send())
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        await send(call, srv)
    exc = caught.value
    assert len(srv.connections) == 1
    assert DOC in srv.connections[0].body
    assert (exc.operation_id, exc.konto_id, exc.ekstern_referanse) == ("sendTilPerson", str(KONTO), "sak-1")
    assert exc.dokumenter_sha256 == {"vedtak.pdf": hashlib.sha256(DOC).hexdigest()}
    assert isinstance(exc.cause, errors.APIConnectionError)


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_5xx_after_the_body_is_an_unknown_outcome(call, faults, status):
    srv = faults(answer(status, {"message": "feil", "errorId": str(uuid.uuid4())}), ok_send())
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        await send(call, srv)
    assert len(srv.connections) == 1
    assert isinstance(caught.value.cause, errors.InternalServerError)
    assert caught.value.cause.status_code == status


async def test_503_without_retry_after_is_not_retried(call, faults):
    srv = faults(answer(503, b"<html>busy</html>"), ok_send())
    with pytest.raises(errors.SendOutcomeUnknownError):
        await send(call, srv)
    assert len(srv.connections) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_rejection_with_retry_after_is_retried(call, faults, status):
    srv = faults(answer(status, b"", {"Retry-After": "0"}), ok_send())
    forsendelse_id = await send(call, srv)
    assert isinstance(forsendelse_id, uuid.UUID)
    assert len(srv.connections) == 2
    assert srv.connections[0].body == srv.connections[1].body.replace(
        _boundary(srv.connections[1]), _boundary(srv.connections[0])
    )


async def test_429_without_retry_after_is_a_rate_limit_error(call, faults):
    srv = faults(answer(429, {"message": "for mange"}), ok_send())
    with pytest.raises(errors.RateLimitError):
        await send(call, srv)
    assert len(srv.connections) == 1


async def test_retry_after_rejections_stop_after_max_retries(call, faults):
    srv = faults(*[answer(503, b"", {"Retry-After": "0"})] * 5)
    with pytest.raises(errors.InternalServerError) as caught:
        await send(call, srv)
    assert not isinstance(caught.value, errors.SendOutcomeUnknownError)
    assert len(srv.connections) == FAST.max_retries + 1


async def test_a_non_replayable_body_is_never_retried(call, faults):
    import io

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(DOC)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            chunk = self._data.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    srv = faults(answer(503, b"", {"Retry-After": "0"}), ok_send())
    with pytest.raises(errors.APIStatusError):
        await call(
            srv.base_url,
            "send_til_person",
            konto_id=KONTO,
            forsendelse=forsendelse(),
            dokumenter={"vedtak.pdf": Pipe()},
        )
    assert len(srv.connections) == 1


async def test_slow_answer_after_the_body_is_an_unknown_outcome(call, faults):
    srv = faults(answer(200, {"id": str(uuid.uuid4())}, delay=1.0))
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        await call(
            srv.base_url,
            "send_til_person",
            konto_id=KONTO,
            forsendelse=forsendelse(),
            dokumenter={"vedtak.pdf": DOC},
            timeout=0.3,
        )
    assert isinstance(caught.value.cause, errors.APITimeoutError)
    assert len(srv.connections) == 1


async def test_refused_connection_is_retried_then_reported(call, caplog):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    caplog.set_level(logging.DEBUG, logger="svarut")
    with pytest.raises(errors.APIConnectionError) as caught:
        await call(
            f"http://127.0.0.1:{port}/api",
            "send_til_person",
            konto_id=KONTO,
            forsendelse=forsendelse(),
            dokumenter={"vedtak.pdf": b"%PDF-1.7"},
        )
    assert not isinstance(caught.value, errors.SendOutcomeUnknownError)
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == FAST.max_retries


async def test_generated_ekstern_referanse_is_sent_and_reported(call, faults):
    srv = faults(reset_after_body)
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        await call(
            srv.base_url,
            "send_til_person",
            client={"generate_ekstern_referanse": True},
            konto_id=KONTO,
            forsendelse=forsendelse(),
            dokumenter={"vedtak.pdf": DOC},
        )
    reference = caught.value.ekstern_referanse
    assert reference and reference.startswith("fiks-svarut-")
    assert f'"eksternReferanse":"{reference}"'.encode() in srv.connections[0].body


@pytest.mark.parametrize(
    "body",
    [
        {"errorCode": "GJENTAGENDE_FORSENDELSE", "message": "Duplikat"},
        {"message": "Forsendelse med samme mottaker, tittel, avsender og filer er forsøkt sendt tidligere"},
    ],
)
async def test_duplicate_rejection_is_its_own_error(call, faults, body):
    srv = faults(answer(400, body))
    with pytest.raises(errors.DuplicateForsendelseError) as caught:
        await send(call, srv)
    assert caught.value.status_code == 400
    assert len(srv.connections) == 1


# --- status calls are safe to repeat --------------------------------------------------


async def test_status_search_retries_5xx_and_resets(call, faults):
    srv = faults(
        answer(502, b"<html>bad gateway</html>"),
        answer(503, b""),
        reset_after_body,
        answer(504, b""),
        ok_status,
    )
    ids = [uuid.uuid4(), uuid.uuid4()]
    with pytest.raises(errors.APIError):
        # 4 failures, 3 retries allowed
        await call(srv.base_url, "hent_statuser", konto_id=KONTO, ids=ids)
    assert len(srv.connections) == FAST.max_retries + 1

    srv = faults(answer(502, b""), reset_after_body, answer(429, b""), ok_status)
    statuser = await call(srv.base_url, "hent_statuser", konto_id=KONTO, ids=ids)
    assert [s.id for s in statuser] == ids
    assert len(srv.connections) == 4


def _boundary(conn: Conn) -> bytes:
    for line in conn.head.split(b"\r\n"):
        if line.lower().startswith(b"content-type:"):
            return line.split(b"boundary=")[1].strip()
    raise AssertionError("no boundary")
