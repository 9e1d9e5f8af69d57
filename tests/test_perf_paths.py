"""The fast paths, checked for doing the same job as the plain ones.

The async client sends through a sync twin of its ``httpx2.AsyncClient`` in a
worker thread (svarut/runtime/transport.py). These tests check, against real
servers on 127.0.0.1, that the twin keeps the caller's auth (sync flow, same
token provider, the 401 retry), the caller's TLS trust (a CA made in the test),
stops an upload when its task is cancelled, and steps aside for transports it
cannot copy. Also: the INFO log line of every send and of every retry
decision, and the clients' httpx2 client being made at first use.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import astuple
from typing import Any

import anyio
import httpx2
import pytest
from requests_toolbelt.multipart.decoder import MultipartDecoder

import svarut
from svarut import models
from svarut.auth import StaticToken, SvarUtAuth
from svarut.errors import APIConnectionError, BadRequestError
from svarut.runtime.retry import RetryPolicy
from svarut.simulator.keys import tls_certificates

pytestmark = pytest.mark.anyio

KONTO = uuid.UUID("0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11")
INTEGRASJON_ID = uuid.UUID("5d7b6a4e-1f3c-4b2a-9e8d-7c6b5a4f3e2d")
PASSORD = "hemmelig-passord-123"


def person(*filnavn: str) -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn=name, mime_type="application/pdf") for name in filnavn],
        ekstern_referanse="sak-42",
    )


def document_of(request: Any) -> bytes:
    return MultipartDecoder(request.body, request.headers["Content-Type"]).parts[1].content


class RecordingTokens:
    """A token provider that notes which of its methods ran, and on which thread;
    after ``invalidate`` it hands out the next token."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.generation = 1

    def get_token(self) -> str:
        self.calls.append(("get_token", threading.get_ident()))
        return f"token-{self.generation}"

    async def aget_token(self) -> str:
        self.calls.append(("aget_token", threading.get_ident()))
        return f"token-{self.generation}"

    def invalidate(self, token: str) -> None:
        self.calls.append(("invalidate", threading.get_ident()))
        if token == f"token-{self.generation}":
            self.generation += 1


# --- auth in the worker thread -------------------------------------------------


async def test_async_send_goes_through_the_sync_twin_with_the_clients_auth(server):
    tokens = RecordingTokens()
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=tokens)
    data = b"%PDF-1.7\n" + bytes(range(256)) * 40
    loop_thread = threading.get_ident()
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, auth=auth, validate=False) as client:
        sent = await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": data})
        assert client._twin is not None and client._twin.http is not None

    [request] = server.requests
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["IntegrasjonId"] == str(INTEGRASJON_ID)
    assert request.headers["IntegrasjonPassord"] == PASSORD
    assert document_of(request) == data
    assert isinstance(sent, uuid.UUID)
    # The sync flow of the same provider ran, in a worker thread.
    assert [name for name, _ in tokens.calls] == ["get_token"]
    assert tokens.calls[0][1] != loop_thread


async def test_async_send_is_repeated_once_with_a_fresh_token_after_401(server, tmp_path):
    tokens = RecordingTokens()
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=tokens)
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4000)
    server.reply(401, {"errorMessage": "token expired"})
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, auth=auth, validate=False) as client:
        await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": path})

    first, second = server.requests
    assert first.headers["Authorization"] == "Bearer token-1"
    assert second.headers["Authorization"] == "Bearer token-2"
    assert first.body == second.body
    assert document_of(second) == path.read_bytes()
    assert [name for name, _ in tokens.calls] == ["get_token", "invalidate", "get_token"]


class AsyncOnlyAuth(httpx2.Auth):
    """An auth with only an async flow (its sync one would send the request
    unsigned): the twin cannot run it, so the async client keeps its own path."""

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["Authorization"] = "Bearer async-only"
        yield request


async def test_an_auth_with_only_an_async_flow_keeps_the_async_path(server):
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, auth=AsyncOnlyAuth(), validate=False) as client:
        await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": b"%PDF-1.7"})
    [request] = server.requests
    assert request.headers["Authorization"] == "Bearer async-only"


async def test_a_transport_the_twin_cannot_copy_keeps_the_async_path():
    seen: list[bytes] = []

    async def handler(request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        seen.append(b"".join([chunk async for chunk in request.stream]))
        return httpx2.Response(200, json={"id": str(uuid.uuid4())})

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    async with svarut.AsyncSvarUtClient(base_url="http://svarut.test/api", http_client=http, validate=False) as client:
        await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": b"%PDF-1.7"})
        assert client._twin is not None and client._twin.http is None
    await http.aclose()
    [body] = seen
    assert b"%PDF-1.7" in body


# --- TLS --------------------------------------------------------------------------


@pytest.fixture
def tls_server(server, tmp_path):
    """The recording server, speaking TLS with a certificate from a CA made for the test."""
    ca, cert, key = astuple(tls_certificates(tmp_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.ca = ca
    server.https_url = server.base_url.replace("http://", "https://")
    return server


async def test_async_send_over_tls_trusts_what_the_callers_client_trusts(tls_server, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4096)  # 1 MiB: several TLS records and writes
    verify = ssl.create_default_context(cafile=str(tls_server.ca))
    http = httpx2.AsyncClient(verify=verify)
    async with svarut.AsyncSvarUtClient(base_url=tls_server.https_url, http_client=http, validate=False) as client:
        await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": path})
        assert client._twin is not None and client._twin.http is not None
    await http.aclose()
    [request] = tls_server.requests
    assert int(request.headers["Content-Length"]) == len(request.body)
    assert document_of(request) == path.read_bytes()


async def test_the_twin_does_not_trust_what_the_callers_client_does_not(tls_server):
    # The default client trusts the public CAs only, not the test's: the send fails, and is not retried.
    retry = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.02)
    async with svarut.AsyncSvarUtClient(base_url=tls_server.https_url, retry=retry, validate=False) as client:
        with pytest.raises(APIConnectionError, match="ConnectError"):
            await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": b"%PDF-1.7"})
    assert tls_server.requests == []


# --- cancellation -------------------------------------------------------------------


class SlowReader:
    """A server that reads one request's body slowly and never answers; notes
    how many body bytes came before the client closed the connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = 0
        self.started = threading.Event()
        self.closed = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        conn.settimeout(0.05)
        with conn:
            while not self.stop.is_set():
                try:
                    chunk = conn.recv(16 * 1024)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                self.received += len(chunk)
                self.started.set()
                self.stop.wait(0.005)
        self.closed.set()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(10)


@pytest.fixture
def slow_reader() -> Iterator[SlowReader]:
    reader = SlowReader()
    try:
        yield reader
    finally:
        reader.close()


async def test_cancelling_an_async_send_stops_its_upload_midway(slow_reader, tmp_path):
    path = tmp_path / "big.pdf"
    size = 64 * 1024 * 1024
    with path.open("wb") as f:
        f.write(b"%PDF-1.7\n")
        f.truncate(size)
    base_url = f"http://127.0.0.1:{slow_reader.port}/api"
    async with svarut.AsyncSvarUtClient(base_url=base_url, validate=False) as client:
        with anyio.fail_after(15):  # a guard against a hang, not a measurement
            async with anyio.create_task_group() as tg:

                async def send() -> None:
                    await client.send_til_person(
                        konto_id=KONTO, forsendelse=person("big.pdf"), dokumenter={"big.pdf": path}
                    )

                tg.start_soon(send)
                await anyio.to_thread.run_sync(slow_reader.started.wait, abandon_on_cancel=True)
                tg.cancel_scope.cancel()
            # The cancelled task returned; its worker thread stops before the next
            # write and drops the connection, with most of the body never sent.
            await anyio.to_thread.run_sync(slow_reader.closed.wait, abandon_on_cancel=True)
    assert 0 < slow_reader.received < size


# --- logging ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_each_send_is_logged_at_info_without_secrets(server, caplog, kind):
    caplog.set_level(logging.INFO, logger="svarut")
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=StaticToken("tok-x1"))
    data = b"%PDF-1.7\n" + bytes(1000)
    options: dict[str, Any] = {"base_url": server.base_url, "auth": auth, "validate": False}
    forsendelse = person("a.pdf")
    if kind == "sync":
        with svarut.SvarUtClient(**options) as client:
            sent = client.send_til_person(konto_id=KONTO, forsendelse=forsendelse, dokumenter={"a.pdf": data})
    else:
        async with svarut.AsyncSvarUtClient(**options) as client:
            sent = await client.send_til_person(konto_id=KONTO, forsendelse=forsendelse, dokumenter={"a.pdf": data})

    [request] = server.requests
    [record] = [r for r in caplog.records if r.name == "svarut" and r.levelno == logging.INFO]
    assert record.svarut_operation == "sendTilPerson"
    assert record.svarut_konto == str(KONTO)
    assert record.svarut_forsendelse_id == sent
    assert record.svarut_ekstern_referanse == "sak-42"
    assert record.svarut_bytes == int(request.headers["Content-Length"])
    assert record.svarut_duration >= 0
    message = record.getMessage()
    for expected in ("sendTilPerson", str(KONTO), str(sent), "sak-42", f"bytes={len(request.body)}"):
        assert expected in message
    everything = " ".join([message, *(str(v) for v in vars(record).values())])
    assert PASSORD not in everything and "tok-x1" not in everything


async def test_a_failed_send_and_the_retry_decisions_are_logged_at_info(server, caplog):
    caplog.set_level(logging.INFO, logger="svarut")
    server.reply(503, {"errorMessage": "busy"}, headers={"Retry-After": "0"})
    server.reply(400, {"errorMessage": "nei"})
    retry = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.02)
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, retry=retry, validate=False) as client:
        with pytest.raises(BadRequestError):
            await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": b"%PDF"})
    assert len(server.requests) == 2
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("status 503; retrying" in m for m in infos), infos
    assert any("status 400 is not retried" in m for m in infos), infos
    [send] = [r for r in caplog.records if getattr(r, "svarut_operation", None) == "sendTilPerson"]
    assert send.svarut_error == "BadRequestError"
    assert send.svarut_forsendelse_id is None
    assert "failed: BadRequestError" in send.getMessage()


# --- the httpx2 client is made at first use -----------------------------------------


def test_a_client_that_never_sends_makes_no_httpx_client():
    client = svarut.SvarUtClient(base_url="http://127.0.0.1:9/api")
    assert client._lazy_http.close() is None
    client.close()


async def test_a_closed_client_refuses_to_send(server):
    client = svarut.AsyncSvarUtClient(base_url=server.base_url, validate=False)
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.hent_statuser(konto_id=KONTO, ids=[uuid.uuid4()])
    assert server.requests == []


async def test_a_send_cancelled_while_it_waits_to_retry_is_not_sent_again(server):
    # 503 with Retry-After: SvarUt turned the send away and a retry is due in a second.
    server.reply(503, {"errorMessage": "busy"}, headers={"Retry-After": "1"})
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, validate=False) as client:
        with anyio.fail_after(15):  # a guard against a hang, not a measurement
            async with anyio.create_task_group() as tg:

                async def send() -> None:
                    await client.send_til_person(
                        konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": b"%PDF-1.7"}
                    )

                tg.start_soon(send)
                while not server.requests:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        # Past the time the retry was due: the worker thread woke, saw the cancellation and stopped.
        await anyio.sleep(2)
    assert len(server.requests) == 1


# --- a small send's documents are read once, for the checks and the body ---------


class Documents:
    """A pre-send check that keeps the documents it was shown (and may change a file after)."""

    def __init__(self, then: Any = None) -> None:
        self.seen: list[Any] = []
        self.then = then

    def __call__(self, prepared: Any) -> None:
        self.seen += prepared.documents
        if self.then is not None:
            self.then()


async def test_a_small_document_is_preloaded_and_sent_whole(api, server, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.7 small")
    check = Documents()
    await api("send_til_person", client_options={"checks": [check]}, konto_id=KONTO, forsendelse=person("a.pdf"),
              dokumenter={"a.pdf": path})  # fmt: skip
    assert [d.source.head(5) for d in check.seen] == [b"%PDF-"]
    assert check.seen[0].source._whole == b"%PDF-1.7 small"
    assert document_of(server.requests[0]) == b"%PDF-1.7 small"


async def test_a_big_send_is_not_preloaded(api, server, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-" + bytes(100_000))
    check = Documents()
    await api("send_til_person", client_options={"checks": [check]}, konto_id=KONTO, forsendelse=person("a.pdf"),
              dokumenter={"a.pdf": path})  # fmt: skip
    assert check.seen[0].source._whole is None
    assert document_of(server.requests[0]) == path.read_bytes()


async def test_an_empty_document_is_preloaded_and_sent_empty(api, server, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"")
    check = Documents()
    await api("send_til_person", client_options={"checks": [check]}, konto_id=KONTO, forsendelse=person("a.pdf"),
              dokumenter={"a.pdf": path})  # fmt: skip
    assert check.seen[0].source._whole == b""
    assert document_of(server.requests[0]) == b""
    assert server.requests[0].body.count(b"\r\n\r\n\r\n") == 1  # the empty document part: headers, then CRLF


async def test_a_document_rewritten_after_the_checks_is_read_again(api, server, tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.7 old")

    def rewrite() -> None:  # the same size; a later modification time, as a later write has
        before = path.stat().st_mtime_ns
        path.write_bytes(b"%PDF-1.7 new")
        os.utime(path, ns=(before + 10**9, before + 10**9))

    await api("send_til_person", client_options={"checks": [Documents(then=rewrite)]}, konto_id=KONTO,
              forsendelse=person("a.pdf"), dokumenter={"a.pdf": path})  # fmt: skip
    assert document_of(server.requests[0]) == b"%PDF-1.7 new"
