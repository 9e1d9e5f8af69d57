"""Issue 22, item 9: each operation has a timeout that fits it. A send waits
16 minutes (KS's advice: SvarUt may take 15 to answer one); the status search
and the eksternRef lookups, which only read, a minute. Each is the client's
(``timeout=``, ``lookup_timeout=``) and each call's own (``timeout=``), tried
against a real server on 127.0.0.1 that stops answering."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx2
import pytest
from conftest import RecordingServer

import svarut
from svarut import errors, models

pytestmark = pytest.mark.anyio

KONTO = uuid.uuid4()


class Silent:
    """Accepts connections and reads what comes, but never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.05)
            self.held.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.close()


def _recording(timeouts: list[dict[str, float | None]]) -> httpx2.Client:
    return httpx2.Client(event_hooks={"request": [lambda r: timeouts.append(r.extensions["timeout"])]})


def _forsendelse() -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="brev.pdf", mime_type="application/pdf")],
    )


PDF = b"%PDF-1.7\n% brev\n%%EOF"


def test_the_defaults_are_16_minutes_for_a_send_and_1_minute_for_a_lookup(server: RecordingServer) -> None:
    assert svarut.DEFAULT_TIMEOUT.read == 16 * 60 and svarut.DEFAULT_LOOKUP_TIMEOUT.read == 60
    timeouts: list[dict[str, float | None]] = []
    with svarut.SvarUtClient(base_url=server.base_url, environment="test", http_client=_recording(timeouts)) as client:
        client.send_til_person(konto_id=KONTO, forsendelse=_forsendelse(), dokumenter={"brev.pdf": PDF})
        client.hent_statuser(konto_id=KONTO, ids=[uuid.uuid4()])
        client.avklar_utfall(konto_id=KONTO, ekstern_referanse="ref-1", sendt=datetime.now(UTC))
    assert [t["read"] for t in timeouts] == [16 * 60, 60, 60]
    assert all(t["connect"] == 10 for t in timeouts)


def test_a_silent_server_ends_a_status_search_at_the_clients_lookup_timeout(silent: Silent) -> None:
    timeouts: list[dict[str, float | None]] = []
    options = {"retry": svarut.NO_RETRIES, "http_client": _recording(timeouts)}
    with svarut.SvarUtClient(base_url=silent.base_url, lookup_timeout=0.3, **options) as client:  # type: ignore[arg-type]
        with pytest.raises(errors.APITimeoutError):
            client.hent_statuser(konto_id=KONTO, ids=[uuid.uuid4()])
        with pytest.raises(errors.APITimeoutError):
            client.avklar_utfall(konto_id=KONTO, ekstern_referanse="ref-1", sendt=None)
        # A call's own timeout overrides the client's.
        with pytest.raises(errors.APITimeoutError):
            client.hent_status(konto_id=KONTO, forsendelse_id=uuid.uuid4(), timeout=0.2)
    assert [t["read"] for t in timeouts] == [0.3, 0.3, 0.2]


async def test_a_silent_server_ends_an_async_status_search_at_the_lookup_timeout(silent: Silent) -> None:
    timeouts: list[dict[str, float | None]] = []

    async def record(request: httpx2.Request) -> None:
        timeouts.append(request.extensions["timeout"])

    http = httpx2.AsyncClient(event_hooks={"request": [record]})
    async with svarut.AsyncSvarUtClient(
        base_url=silent.base_url, lookup_timeout=0.3, retry=svarut.NO_RETRIES, http_client=http
    ) as client:
        with pytest.raises(errors.APITimeoutError):
            await client.hent_statuser(konto_id=KONTO, ids=[uuid.uuid4()])
    await http.aclose()
    assert [t["read"] for t in timeouts] == [0.3]


def test_a_silent_server_ends_a_send_at_the_clients_send_timeout(silent: Silent) -> None:
    timeouts: list[dict[str, float | None]] = []
    options = {"retry": svarut.NO_RETRIES, "http_client": _recording(timeouts), "environment": "test"}
    with svarut.SvarUtClient(base_url=silent.base_url, timeout=0.3, **options) as client:  # type: ignore[arg-type]
        # The whole body went out and no answer came: SvarUt may have the letter.
        with pytest.raises(errors.SendOutcomeUnknownError) as caught:
            client.send_til_person(konto_id=KONTO, forsendelse=_forsendelse(), dokumenter={"brev.pdf": PDF})
        assert isinstance(caught.value.cause, errors.APITimeoutError)
        # The lookup keeps its own default: the send's timeout is not the status search's.
        assert client.lookup_timeout.read == 60
    assert [t["read"] for t in timeouts] == [0.3]
