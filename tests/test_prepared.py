"""Checking a send without sending it, and sending one prepared earlier
(``check_send``, ``prepare_send`` / ``send_prepared`` and their
``SendOperation`` forms), against a real HTTP server that records every request."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import RecordingServer

import svarut
from svarut import errors, models
from svarut.errors import ForsendelseValidationError
from svarut.generated import SEND_OPERATIONS
from svarut.runtime.client import PreparedSend
from svarut.runtime.errors import Problem

pytestmark = pytest.mark.anyio

KONTO = uuid.UUID("0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11")
PDF = b"%PDF-1.7\n% brev\n%%EOF"


def person(
    *filnavn: str, mime_type: str = "application/pdf", digital_id: str = "21883649874"
) -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id=digital_id),
        dokumenter=[models.PersonDokument(filnavn=name, mime_type=mime_type) for name in filnavn],
    )


def test_check_send_runs_every_check_and_sends_nothing(server: RecordingServer, tmp_path: Path) -> None:
    (tmp_path / "brev.pdf").write_bytes(PDF)
    (tmp_path / "notat.txt").write_bytes(b"plain text")
    op = SEND_OPERATIONS["person"]
    with svarut.SvarUtClient(base_url=server.base_url, environment="test") as client:
        op.check(client, konto_id=KONTO, forsendelse=person("brev.pdf"), dokumenter={"brev.pdf": tmp_path / "brev.pdf"})
        # A bad content type and a rule's problems come back together, in one error.
        with pytest.raises(ForsendelseValidationError) as caught:
            op.check(
                client,
                konto_id=KONTO,
                forsendelse=person("brev.pdf", mime_type="not a type", digital_id="12345678901"),
                dokumenter={"brev.pdf": tmp_path / "brev.pdf"},
            )
        rules = {p.rule for p in caught.value.problems}
        assert {"content_type", "fodselsnummer"} <= rules, rules
        # A document described but not given, and a konto id that is no UUID.
        with pytest.raises(ForsendelseValidationError, match="no document given"):
            op.check(
                client, konto_id=KONTO, forsendelse=person("brev.pdf", "vedlegg.pdf"), dokumenter={"brev.pdf": PDF}
            )
        with pytest.raises(ForsendelseValidationError, match="must be a UUID"):
            op.check(client, konto_id="konto-1", forsendelse=person("brev.pdf"), dokumenter={"brev.pdf": PDF})
        with pytest.raises(FileNotFoundError, match=r"gone\.pdf"):
            op.check(
                client, konto_id=KONTO, forsendelse=person("gone.pdf"), dokumenter={"gone.pdf": tmp_path / "gone.pdf"}
            )
        # kryptering=True: the rules see kryptert set, as on the wire, and the plaintext (no certificate fetched).
        op.check(
            client,
            konto_id=KONTO,
            forsendelse=person("brev.pdf"),
            dokumenter={"brev.pdf": tmp_path / "brev.pdf"},
            kryptering=True,
        )
    assert server.requests == []


def test_a_single_checks_error_is_raised_as_the_check_raised_it(server: RecordingServer) -> None:
    class Refused(ForsendelseValidationError):
        pass

    def house_rule(send: PreparedSend) -> None:
        raise Refused([Problem("tittel", "house", "not on Fridays")])

    op = SEND_OPERATIONS["person"]
    with (
        svarut.SvarUtClient(base_url=server.base_url, checks=[house_rule], validate=False) as client,
        pytest.raises(Refused, match="not on Fridays"),
    ):
        op.check(client, konto_id=KONTO, forsendelse=person("brev.pdf"), dokumenter={"brev.pdf": PDF})
    assert server.requests == []


async def test_prepare_then_send_prepared_sends_once(server: RecordingServer, tmp_path: Path) -> None:
    (tmp_path / "brev.pdf").write_bytes(PDF)
    op = SEND_OPERATIONS["person"]
    files = {"brev.pdf": tmp_path / "brev.pdf"}
    with svarut.SvarUtClient(base_url=server.base_url, environment="test") as client:
        prepared = op.prepare(client, konto_id=KONTO, forsendelse=person("brev.pdf"), dokumenter=files)
        assert server.requests == []  # built, checked, not sent
        sent_id = client.send_prepared(prepared)
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, environment="test") as aclient:
        aprepared = op.prepare(aclient, konto_id=KONTO, forsendelse=person("brev.pdf"), dokumenter=files)
        assert len(server.requests) == 1
        async_id = await aclient.send_prepared(aprepared)
    assert isinstance(sent_id, uuid.UUID) and isinstance(async_id, uuid.UUID)
    assert len(server.requests) == 2
    for request in server.requests:
        assert request.path == f"/api/v3/kontoer/{KONTO}/forsendelser/person"
        assert PDF in request.body


def test_prepare_raises_what_the_send_would_before_its_first_byte(server: RecordingServer) -> None:
    op = SEND_OPERATIONS["person"]
    with (
        svarut.SvarUtClient(base_url=server.base_url, environment="test") as client,
        pytest.raises(ForsendelseValidationError, match="fødselsnummer"),
    ):
        forsendelse = person("brev.pdf", digital_id="12345678901")
        op.prepare(client, konto_id=KONTO, forsendelse=forsendelse, dokumenter={"brev.pdf": PDF})
    assert server.requests == []


# --- issue 22, item 7: a prepared send goes out once --------------------------------


async def test_send_prepared_refuses_the_same_prepared_send_twice(server: RecordingServer) -> None:
    op = SEND_OPERATIONS["person"]
    with svarut.SvarUtClient(base_url=server.base_url, environment="test") as client:
        prepared = op.prepare(client, konto_id=KONTO, forsendelse=person("brev.pdf"), dokumenter={"brev.pdf": PDF})
        assert not prepared.sent
        client.send_prepared(prepared)
        assert prepared.sent
        with pytest.raises(errors.PreparedAlreadySentError, match="same letter") as caught:
            client.send_prepared(prepared)
    assert isinstance(caught.value, errors.SvarUtError)
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, environment="test") as aclient:
        aprepared = op.prepare(aclient, konto_id=KONTO, forsendelse=person("brev.pdf"), dokumenter={"brev.pdf": PDF})
        await aclient.send_prepared(aprepared)
        with pytest.raises(errors.PreparedAlreadySentError):
            await aclient.send_prepared(aprepared)
        with pytest.raises(errors.PreparedAlreadySentError):
            await aclient.send_prepared(prepared)  # spent on the other client: still the same letter
    assert len(server.requests) == 2  # one letter each, not four


def test_send_prepared_after_a_failed_send_still_refuses(tmp_path: Path) -> None:
    # Nothing listens on the port: the send fails, and the prepared send is spent all the same
    # (what to do after a failure is avklar_utfall's question, not a second send of it).
    op = SEND_OPERATIONS["person"]
    options = {"base_url": "http://127.0.0.1:9/api", "environment": "test", "retry": svarut.NO_RETRIES}
    with svarut.SvarUtClient(**options) as client:  # type: ignore[arg-type]
        prepared = op.prepare(client, konto_id=KONTO, forsendelse=person("brev.pdf"), dokumenter={"brev.pdf": PDF})
        with pytest.raises(errors.APIConnectionError):
            client.send_prepared(prepared)
        with pytest.raises(errors.PreparedAlreadySentError):
            client.send_prepared(prepared)


# --- issue 22, item 6: dokumenter= as the send methods take it ----------------------


def test_files_is_a_deprecated_alias_of_dokumenter(server: RecordingServer) -> None:
    op = SEND_OPERATIONS["person"]
    forsendelse = person("brev.pdf")
    with svarut.SvarUtClient(base_url=server.base_url, environment="test") as client:
        with pytest.warns(
            DeprecationWarning, match=r"SendOperation.check\(files=...\) is deprecated: pass dokumenter="
        ):
            op.check(client, konto_id=KONTO, forsendelse=forsendelse, files={"brev.pdf": PDF})
        with pytest.warns(DeprecationWarning, match=r"SendOperation.prepare\(files=...\) is deprecated"):
            prepared = op.prepare(client, konto_id=KONTO, forsendelse=forsendelse, files={"brev.pdf": PDF})
        assert prepared.request.send is not None and [d.filnavn for d in prepared.request.send.documents] == [
            "brev.pdf"
        ]
        with pytest.raises(TypeError, match="give dokumenter= only"):
            op.check(client, konto_id=KONTO, forsendelse=forsendelse, dokumenter={}, files={})
        with pytest.raises(TypeError, match="missing the keyword argument dokumenter="):
            op.prepare(client, konto_id=KONTO, forsendelse=forsendelse)
    assert server.requests == []
