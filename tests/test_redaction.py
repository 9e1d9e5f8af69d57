"""The client's secrets are taken out of what a server echoes, as whole tokens:
a short password must neither garble the message nor spell itself out in it."""

from __future__ import annotations

import json
import uuid

import pytest

import svarut
from svarut import errors
from svarut.auth import StaticToken, SvarUtAuth
from svarut.runtime.redaction import REDACTED, redact

KONTO = uuid.uuid4()
INTEGRASJON_ID = "5f0e8a4c-1111-4222-8333-444455556666"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c3ZhcnV0.c2lnbmF0dXJl"


def forms(*secrets: str) -> tuple[bytes, ...]:
    return tuple(sorted((s.encode() for s in secrets), key=lambda f: (-len(f), f)))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # prose: the words that hold the letter stay whole
        ("wrong IntegrasjonId or password", "wrong IntegrasjonId or password"),
        # the value the client sent, echoed in every way a gateway puts it
        ("IntegrasjonPassord: o\n", f"IntegrasjonPassord: {REDACTED}\n"),
        ('{"IntegrasjonPassord": "o"}', f'{{"IntegrasjonPassord": "{REDACTED}"}}'),
        ("password o was wrong", f"password {REDACTED} was wrong"),
        ("<td>o</td>", f"<td>{REDACTED}</td>"),
        ("passord=o&id=1", f"passord={REDACTED}&id=1"),
        ("o", REDACTED),
        # after a JSON escape the letter before it is not part of the token
        ('{"v": "x\\no"}', f'{{"v": "x\\n{REDACTED}"}}'),
        ('{"v": "\\u00e6o"}', f'{{"v": "\\u00e6{REDACTED}"}}'),
    ],
)
def test_a_one_letter_password_is_redacted_as_a_token_not_as_a_letter(body, expected):
    assert redact(body.encode(), forms("o")).decode() == expected


def test_a_secret_in_a_longer_string_is_redacted_where_it_stands_alone():
    secrets = forms("hemmelig-42")
    body = json.dumps({"message": "rejected hemmelig-42, try again", "errorJson": {"p": "hemmelig-42"}}).encode()
    assert b"hemmelig-42" not in redact(body, secrets)
    # glued to other letters it is part of another word, not an echo
    assert redact(b"xhemmelig-42y", secrets) == b"xhemmelig-42y"


def test_a_secret_that_starts_or_ends_with_punctuation_is_redacted_wherever_it_is():
    assert redact(b"ab!!cd", forms("!!")) == f"ab{REDACTED}cd".encode()
    assert redact(b"abc-", forms("-")) == f"abc{REDACTED}".encode()


def test_redacting_twice_changes_nothing_more_and_other_bytes_pass_through():
    secrets = forms("redacted", "o")
    once = redact(b"o redacted \xff\xfe o", secrets)
    assert once == f"{REDACTED} {REDACTED} ".encode() + b"\xff\xfe " + REDACTED.encode()
    assert redact(once, secrets) == once
    assert redact(b"\xff o", ()) == b"\xff o"


def test_non_ascii_letters_are_letters():
    assert redact("kjære".encode(), forms("re")) == "kjære".encode()
    assert redact("ære".encode(), forms("æ")) == "ære".encode()
    assert redact("passord: æ.".encode(), forms("æ")) == f"passord: {REDACTED}.".encode()


def test_a_403_from_svarut_with_a_one_letter_password_reads_as_sent_with_the_echo_redacted(server):
    message = "wrong IntegrasjonId or IntegrasjonPassord for konto"
    server.reply(
        403,
        {
            "status": 403,
            "error": "Forbidden",
            "message": message,
            "errorCode": "ACCESS_DENIED",
            "errorJson": {"IntegrasjonId": INTEGRASJON_ID, "IntegrasjonPassord": "o", "detail": "password o rejected"},
        },
    )
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord="o", token_provider=StaticToken(TOKEN))
    with (
        svarut.SvarUtClient(base_url=server.base_url, auth=auth) as client,
        pytest.raises(errors.PermissionDeniedError) as caught,
    ):
        client.hent_statuser(konto_id=KONTO, ids=[KONTO])

    exc = caught.value
    assert server.requests[0].headers["IntegrasjonPassord"] == "o"  # it was sent
    assert message in str(exc)
    assert exc.message == message
    assert exc.error_code == "ACCESS_DENIED"
    assert isinstance(exc.error_json, dict)
    assert exc.error_json["IntegrasjonPassord"] == REDACTED
    assert exc.error_json["detail"] == f"password {REDACTED} rejected"
    assert exc.error_json["IntegrasjonId"] == INTEGRASJON_ID
    assert "[redacted]ng" not in exc.raw_body and "Integrasj[redacted]" not in exc.raw_body
    assert '"IntegrasjonPassord": "o"' not in exc.response.text
    assert exc.request.headers["IntegrasjonPassord"] == REDACTED
