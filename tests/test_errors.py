"""How failures reach the caller: non-2xx answers as typed errors with the
fields SvarUt sends, unreadable 2xx answers, and connections that fail, for
the sync and the async client, against a real HTTP server."""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from collections.abc import Iterator

import pytest

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
    return api("hent_statuser", client_options={"retry": NO_RETRIES}, konto_id=KONTO, id=[uuid.uuid4()])


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
    ("body", "method"),
    [
        ({"id": "ikke-en-uuid"}, "send"),
        (b"<html>OK</html>", "send"),
        ({"statuser": [{"id": str(uuid.uuid4()), "status": "LEST"}]}, "hent_statuser"),
        (b"", "hent_statuser"),
    ],
    ids=["bad-id", "html", "status-missing-field", "empty"],
)
async def test_success_with_an_unreadable_body_is_a_response_validation_error(api, server, body, method):
    server.reply(200, body)

    with pytest.raises(errors.APIResponseValidationError) as caught:
        if method == "send":
            await send(api)
        else:
            await status_search(api)

    assert caught.value.status_code == 200
    assert caught.value.raw_body == (body.decode() if isinstance(body, bytes) else json.dumps(body))


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
