"""How failures reach the caller: non-2xx answers as typed errors with the
fields SvarUt sends, unreadable 2xx answers, and connections that fail, for
the sync and the async client, against a real HTTP server."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import Api

import svarut
from svarut import errors, models
from svarut.runtime.retry import NO_RETRIES

pytestmark = pytest.mark.anyio

KONTO = uuid.uuid4()
ERROR_ID = uuid.UUID("5e0b5d2c-3c1a-4a8e-9d7f-2f4b6c8a1e90")
SECRET = "s3cret-value"


def spec_error(status: int) -> dict[str, object]:
    return {
        "timestamp": 1714640000000,
        "status": status,
        "error": "Feil",
        "errorId": str(ERROR_ID),
        "path": f"/api/v3/kontoer/{KONTO}/forsendelser/person",
        "originalPath": f"/api/v3/kontoer/{KONTO}/forsendelser/person",
        "message": "Forsendelsen er ugyldig",
        "errorCode": "FORSENDELSE_UGYLDIG",
        "errorJson": '{"felt": "tittel"}',
    }


def send(api, **options):
    forsendelse = models.PersonForsendelse(
        tittel="T",
        mottaker=models.Mottaker(navn="Kari", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
    )
    return api(
        "send_til_person",
        client_options=options,
        konto_id=KONTO,
        forsendelse=forsendelse,
        dokumenter={"a.pdf": b"%PDF"},
    )


def status_search(api):
    # The status search is retried on 5xx; these tests look at one answer.
    return api("hent_statuser", client_options={"retry": NO_RETRIES}, konto_id=KONTO, ids=[uuid.uuid4()])


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (413, errors.PayloadTooLargeError),
        (429, errors.RateLimitError),
        (500, errors.InternalServerError),
        (502, errors.InternalServerError),
        (503, errors.InternalServerError),
    ],
)
async def test_status_becomes_its_error_with_the_spec_fields(api, server, status, cls):
    body = json.dumps(spec_error(status))
    server.reply(status, body.encode())

    with pytest.raises(errors.APIError) as caught:
        await send(api)

    exc = caught.value
    if status >= 500:
        # SvarUt had the whole forsendelse when it failed: it may have accepted it.
        assert isinstance(exc, errors.SendOutcomeUnknownError)
        assert exc.dokumenter_sha256 == {"a.pdf": hashlib.sha256(b"%PDF").hexdigest()}
        assert exc.__cause__ is exc.cause
        exc = exc.cause
    assert type(exc) is cls
    assert isinstance(exc, errors.APIStatusError)
    assert exc.status_code == status
    assert exc.raw_body == body
    assert exc.error_id == str(ERROR_ID)
    assert exc.error_code == "FORSENDELSE_UGYLDIG"
    assert exc.message == "Forsendelsen er ugyldig"
    assert isinstance(exc.error_message, models.ErrorMessage)
    assert exc.error_message.error_id == ERROR_ID
    assert exc.error_message.error_json == '{"felt": "tittel"}'
    assert str(status) in str(exc)
    assert "Forsendelsen er ugyldig" in str(exc)
    assert "FORSENDELSE_UGYLDIG" in str(exc)


async def test_unlisted_status_is_a_plain_status_error(api, server):
    server.reply(418, b"")

    with pytest.raises(errors.APIStatusError) as caught:
        await status_search(api)

    assert type(caught.value) is errors.APIStatusError
    assert caught.value.status_code == 418


async def test_error_json_as_an_object_still_gives_the_fields(api, server):
    body = {
        "errorId": str(ERROR_ID),
        "errorCode": "VALIDERING",
        "message": "Ugyldig tittel",
        "errorJson": {"felt": "tittel", "feil": ["for lang"]},
    }
    server.reply(400, body)

    with pytest.raises(errors.BadRequestError) as caught:
        await status_search(api)

    exc = caught.value
    # errorJson is a string in the spec; the model keeps every other field and
    # the object stays readable in raw_body.
    assert isinstance(exc.error_message, models.ErrorMessage)
    assert exc.error_message.error_code == "VALIDERING"
    assert exc.error_message.error_json is None
    assert (exc.error_id, exc.error_code, exc.message) == (str(ERROR_ID), "VALIDERING", "Ugyldig tittel")
    assert exc.error_json == {"felt": "tittel", "feil": ["for lang"]}
    assert json.loads(exc.raw_body) == body


# --- errorJson and timestamp: what the spec says, what the server sends ----------------------
#
# fiks-common.json (the spec's ErrorMessage from version 17) types errorJson as a string and
# timestamp as epoch milliseconds; the live service sends errorJson as an object. Each body
# goes through a real HTTP server, read with the generated ErrorMessage model.

WHEN = datetime(2026, 6, 3, 10, 15, 30, tzinfo=UTC)
WHEN_MS = int(WHEN.timestamp() * 1000)


@pytest.mark.parametrize(
    ("error_json", "expected", "in_model"),
    [
        ("ugyldig tittel", "ugyldig tittel", "ugyldig tittel"),
        ({"felt": "tittel", "feil": ["for lang"]}, {"felt": "tittel", "feil": ["for lang"]}, None),
        ('{"felt": "tittel", "grense": 200}', {"felt": "tittel", "grense": 200}, '{"felt": "tittel", "grense": 200}'),
        ('["a", "b"]', '["a", "b"]', '["a", "b"]'),
        ("{not json", "{not json", "{not json"),
        (["tittel", "mottaker"], '["tittel", "mottaker"]', None),
        (17, "17", None),
    ],
    ids=["string", "object", "json-string-of-an-object", "json-string-of-an-array", "broken-json", "array", "number"],
)
async def test_error_json_as_the_spec_says_or_as_the_server_sends_it(api, server, error_json, expected, in_model):
    body = {**spec_error(400), "errorJson": error_json}
    server.reply(400, body)

    with pytest.raises(errors.BadRequestError) as caught:
        await status_search(api)

    exc = caught.value
    assert exc.error_json == expected
    # The model keeps the spec's type, or leaves the field out; the rest of it is read all the same.
    assert isinstance(exc.error_message, models.ErrorMessage)
    assert exc.error_message.error_json == in_model
    assert exc.error_message.error_code == exc.error_code == "FORSENDELSE_UGYLDIG"
    assert exc.error_message.error_id == ERROR_ID and exc.error_id == str(ERROR_ID)
    assert json.loads(exc.raw_body) == body


async def test_error_json_and_timestamp_missing_are_none(api, server):
    server.reply(403, {"message": "Mangler tilgang", "errorId": str(ERROR_ID), "status": 403})

    with pytest.raises(errors.PermissionDeniedError) as caught:
        await status_search(api)

    exc = caught.value
    assert (exc.error_json, exc.timestamp) == (None, None)
    assert isinstance(exc.error_message, models.ErrorMessage)
    assert (exc.error_message.error_json, exc.error_message.timestamp) == (None, None)
    assert exc.message == "Mangler tilgang" and "Mangler tilgang" in str(exc)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (WHEN_MS, WHEN),
        (str(WHEN_MS), WHEN),
        ("2026-06-03T10:15:30Z", WHEN),
        ("2026-06-03T12:15:30.000+02:00", WHEN),
        ("2026-06-03T10:15:30", WHEN.replace(tzinfo=None)),
        ("i går", None),
        ("٣٣٣", None),
        ("9" * 5000, None),
        (10**30, None),
        (True, None),
        ({"epoch": WHEN_MS}, None),
    ],
    ids=[
        "epoch-ms",
        "epoch-ms-string",
        "iso-z",
        "iso-offset",
        "iso-naive",
        "words",
        "non-ascii-digits",
        "too-many-digits",
        "out-of-range",
        "bool",
        "object",
    ],
)
async def test_timestamp_as_epoch_ms_or_iso_string(api, server, timestamp, expected):
    body = {**spec_error(400), "timestamp": timestamp}
    server.reply(400, body)

    with pytest.raises(errors.BadRequestError) as caught:
        await status_search(api)

    exc = caught.value
    assert exc.timestamp == expected
    # A timestamp the model cannot read is left out of it; the typed error is intact.
    assert isinstance(exc.error_message, models.ErrorMessage)
    if isinstance(timestamp, str) and "T" in timestamp:
        assert exc.error_message.timestamp is None
    assert exc.error_message.message == exc.message == "Forsendelsen er ugyldig"
    assert exc.error_json == {"felt": "tittel"}


async def test_fields_of_the_wrong_type_still_give_the_typed_error(api, server):
    body = {
        "timestamp": "igår",
        "status": "fire hundre",
        "errorId": "ikke-en-uuid",
        "errorCode": 4711,
        "message": "Ugyldig",
        "errorJson": {"felt": "tittel"},
    }
    server.reply(400, body)

    with pytest.raises(errors.BadRequestError) as caught:
        await status_search(api)

    exc = caught.value
    assert exc.status_code == 400
    assert (exc.error_id, exc.error_code, exc.message) == ("ikke-en-uuid", "4711", "Ugyldig")
    assert (exc.error_json, exc.timestamp) == ({"felt": "tittel"}, None)
    assert isinstance(exc.error_message, models.ErrorMessage)
    assert exc.error_message.model_dump(exclude_none=True) == {"message": "Ugyldig"}
    assert json.loads(exc.raw_body) == body


HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"


@pytest.mark.parametrize(
    ("status", "cls", "body", "content_type"),
    [
        (502, errors.InternalServerError, HTML, "text/html"),
        (503, errors.InternalServerError, b"", "text/plain"),
        (400, errors.BadRequestError, json.dumps(spec_error(400)).encode()[:60], "application/json"),
    ],
    ids=["html", "empty", "truncated-json"],
)
async def test_non_json_bodies_give_the_raw_body_and_no_fields(api, server, status, cls, body, content_type):
    server.reply(status, body, headers={"Content-Type": content_type})

    with pytest.raises(cls) as caught:
        await status_search(api)

    exc = caught.value
    assert exc.status_code == status
    assert exc.raw_body == body.decode()
    assert (exc.error_message, exc.error_id, exc.error_code, exc.message) == (None, None, None, None)
    assert str(status) in str(exc)


async def test_an_html_error_body_has_no_error_json_or_timestamp(api, server):
    server.reply(502, HTML, headers={"Content-Type": "text/html"})

    with pytest.raises(errors.InternalServerError) as caught:
        await status_search(api)

    exc = caught.value
    assert exc.status_code == 502 and exc.raw_body == HTML.decode()
    assert (exc.error_message, exc.error_json, exc.timestamp) == (None, None, None)


@pytest.mark.parametrize(
    "body",
    [b"<p>" + b"x" * 5_000_000 + b"</p>", json.dumps({"message": "x" * 5_000_000, "errorCode": "STOR"}).encode()],
    ids=["text", "json-message"],
)
async def test_huge_error_body_stays_bounded(api, server, body):
    server.reply(500, body)

    with pytest.raises(errors.InternalServerError) as caught:
        await status_search(api)

    exc = caught.value
    assert len(exc.raw_body) < 10_000
    assert str(len(body)) in exc.raw_body  # says how much there was
    assert len(str(exc)) < 10_000


@pytest.mark.parametrize(
    "body",
    [({"statuser": [{"id": str(uuid.uuid4()), "status": "LEST"}]}), b"", b"<html>OK</html>", b'{"statuser": ['],
    ids=["status-missing-field", "empty", "html", "truncated"],
)
async def test_status_search_answered_with_an_unreadable_body_is_a_response_validation_error(api, server, body):
    server.reply(200, body)

    with pytest.raises(errors.APIResponseValidationError) as caught:
        await status_search(api)

    assert caught.value.status_code == 200
    assert caught.value.raw_body == (body.decode() if isinstance(body, bytes) else json.dumps(body))


@pytest.mark.parametrize(
    "body",
    [{"id": "ikke-en-uuid"}, b"<html>OK</html>", b'{"id": "5e0b5d2c-3c1a', {}, b""],
    ids=["bad-id", "html-from-a-proxy", "truncated", "no-id", "empty"],
)
async def test_send_answered_2xx_with_an_unreadable_body_has_an_unknown_outcome(api, server, body):
    server.reply(200, body)
    forsendelse = models.PersonForsendelse(
        tittel="T",
        mottaker=models.Mottaker(navn="Kari", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
        ekstern_referanse="sak-42",
    )

    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        await api("send_til_person", konto_id=KONTO, forsendelse=forsendelse, dokumenter={"a.pdf": b"%PDF"})

    exc = caught.value
    assert len(server.requests) == 1  # not sent again
    assert (exc.konto_id, exc.ekstern_referanse) == (str(KONTO), "sak-42")
    assert exc.dokumenter_sha256 == {"a.pdf": hashlib.sha256(b"%PDF").hexdigest()}
    assert isinstance(exc.cause, errors.APIResponseValidationError) and exc.__cause__ is exc.cause
    assert exc.cause.status_code == 200
    assert exc.cause.raw_body == (body.decode() if isinstance(body, bytes) else json.dumps(body))


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL whose port is bound but not listening, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/api"


async def test_refused_connection_is_a_connection_error(api, refused_url):
    with pytest.raises(errors.APIConnectionError) as caught:
        await send(api, base_url=refused_url)

    assert not isinstance(caught.value, errors.APITimeoutError)


async def test_error_messages_do_not_contain_request_headers(api, server, refused_url):
    server.reply(401, spec_error(401))
    with pytest.raises(errors.AuthenticationError) as answered:
        await send(api, headers={"IntegrasjonPassord": SECRET})
    with pytest.raises(errors.APIConnectionError) as refused:
        await send(api, base_url=refused_url, headers={"IntegrasjonPassord": SECRET})

    assert server.requests[0].headers["IntegrasjonPassord"] == SECRET  # it was sent
    for caught in (answered, refused):
        for exc in chain(caught.value):
            assert SECRET not in str(exc)
            assert SECRET not in repr(exc)


# --- secrets a gateway echoes back ---------------------------------------------------------------

TOKEN = "eyJ0b2tlbi1hdi1tYXNraW5wb3J0ZW4.hemmelig-token-7c1e"
PASSORD = 'hemmelig"pass\\ord-42'  # a quote and a backslash: JSON escapes them
INTEGRASJON_ID = "5f0e8a4c-1111-4222-8333-444455556666"


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with ``server.status`` and a body that repeats its headers, as
    some gateways do: JSON (``server.as_json``) or an HTML page."""

    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while size := int(self.rfile.readline().split(b";")[0], 16):
                self.rfile.read(size + 2)
            self.rfile.readline()
        else:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = dict(self.headers.items())
        if self.server.as_json:
            body = json.dumps(
                {
                    "message": f"rejected: {headers}",
                    "errorCode": self.headers["IntegrasjonPassord"],
                    # As an object, as the live service sends it; or as a string holding
                    # one, as the spec types it, where every secret is escaped twice.
                    "errorJson": json.dumps(headers) if self.server.error_json_as_string else headers,
                }
            ).encode()
        else:
            body = ("<html><pre>" + "\n".join(f"{k}: {v}" for k, v in headers.items()) + "</pre></html>").encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json" if self.server.as_json else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.block_on_close = True
    srv.error_json_as_string = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        thread.join()
        srv.server_close()


def _secret_forms() -> list[str]:
    return [TOKEN, PASSORD, json.dumps(PASSORD)[1:-1], "hemmelig-token-7c1e"]


def _texts(exc: BaseException) -> Iterator[str]:
    """Everything a caller may print or log of an error and what it holds."""
    for one in chain(exc):
        yield str(one)
        yield repr(one)
        request = getattr(one, "request", None)
        if request is not None:
            yield repr(request.headers)
            yield repr(list(request.headers.items()))
        for name in ("raw_body", "message", "error_code", "error_id", "error_json"):
            yield str(getattr(one, name, ""))
        if getattr(one, "error_message", None) is not None:
            yield repr(one.error_message)
        response = getattr(one, "response", None)
        if response is not None:
            yield response.text
            yield repr(list(response.request.headers.items()))


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "html"])
@pytest.mark.parametrize(
    ("status", "call", "expected"),
    [
        (401, "send", errors.AuthenticationError),
        (400, "send", errors.BadRequestError),
        (500, "send", errors.SendOutcomeUnknownError),
        (200, "send", errors.SendOutcomeUnknownError),
        (502, "status", errors.InternalServerError),
        (200, "status", errors.APIResponseValidationError),
    ],
)
async def test_secrets_echoed_by_a_gateway_never_reach_the_error_or_the_logs(
    echo, caplog, kind, status, call, expected, as_json
):
    from svarut.auth import StaticToken, SvarUtAuth

    echo.status, echo.as_json = status, as_json
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=StaticToken(TOKEN))
    api = Api(kind, f"http://127.0.0.1:{echo.server_address[1]}/api")
    caplog.set_level(logging.DEBUG)  # every logger: svarut, httpx2, httpcore2

    with pytest.raises(expected) as caught:
        if call == "send":
            await send(api, auth=auth)
        else:
            await api("hent_statuser", client_options={"auth": auth, "retry": NO_RETRIES}, konto_id=KONTO, ids=[KONTO])

    texts = list(_texts(caught.value))
    assert any("[redacted]" in t for t in texts)  # the echo was there, and was cleaned
    assert any(r.levelname == "DEBUG" and r.name == "svarut" for r in caplog.records)
    for secret in _secret_forms():
        for text in texts:
            assert secret not in text
        assert secret not in caplog.text
        assert all(secret not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("as_string", [False, True], ids=["object", "json-string"])
def test_secrets_echoed_in_error_json_never_reach_the_error(echo, as_string):
    from svarut.auth import StaticToken, SvarUtAuth

    echo.status, echo.as_json, echo.error_json_as_string = 400, True, as_string
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=StaticToken(TOKEN))
    url = f"http://127.0.0.1:{echo.server_address[1]}/api"
    with svarut.SvarUtClient(base_url=url, auth=auth) as client, pytest.raises(errors.BadRequestError) as caught:
        client.hent_statuser(konto_id=KONTO, ids=[KONTO])

    exc = caught.value
    assert isinstance(exc.error_json, dict)  # the headers, read back from object or string
    assert exc.error_json["IntegrasjonPassord"] == "[redacted]"
    assert exc.error_json["IntegrasjonId"] == INTEGRASJON_ID
    texts = [*_texts(exc), repr(exc.error_json)]
    for secret in _secret_forms():
        assert all(secret not in text for text in texts), secret


def test_a_client_error_names_the_request_with_its_secret_headers_masked(echo):
    from svarut.auth import StaticToken, SvarUtAuth

    echo.status, echo.as_json = 400, False
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=StaticToken(TOKEN))
    url = f"http://127.0.0.1:{echo.server_address[1]}/api"
    with svarut.SvarUtClient(base_url=url, auth=auth) as client, pytest.raises(errors.BadRequestError) as caught:
        client.hent_statuser(konto_id=KONTO, ids=[KONTO])

    headers = caught.value.request.headers
    assert headers["IntegrasjonPassord"] == headers["Authorization"] == "[redacted]"
    assert headers["IntegrasjonId"] == INTEGRASJON_ID
    assert caught.value.request.url.path.endswith("/forsendelser/status/sok")


def test_swapped_integrasjon_id_and_passord_do_not_quote_the_password():
    from svarut.auth import StaticToken, SvarUtAuth

    with pytest.raises(ValueError, match="integrasjon_id must be a UUID") as caught:
        SvarUtAuth(integrasjon_id=PASSORD, integrasjon_passord=INTEGRASJON_ID, token_provider=StaticToken(TOKEN))
    assert PASSORD not in str(caught.value) and "hemmelig" not in repr(caught.value)


# --- logging -----------------------------------------------------------------------------------------

_WARN = "logging.getLogger('svarut.runtime').warning('en advarsel fra svarut')"


@pytest.mark.parametrize(("setup", "printed"), [("", False), ("logging.basicConfig(); ", True)])
def test_library_warnings_reach_stderr_only_when_the_app_configures_logging(setup, printed):
    run = subprocess.run(
        [sys.executable, "-c", "import logging, svarut; " + setup + _WARN], capture_output=True, text=True, check=True
    )
    assert ("en advarsel fra svarut" in run.stderr) is printed, run.stderr
