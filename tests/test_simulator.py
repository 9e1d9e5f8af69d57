"""The SvarUt simulator: a real server that the real client talks to through
the whole auth path. What SvarUt would refuse (bad JSON, documents that do
not match their metadata, bad credentials, a repeated forsendelse) it refuses
with the right status and an ErrorMessage; statuses move along each channel's
path; scenario hooks make it fail the ways the client must survive; uploads
stream to disk; encrypted documents decrypt; the page and the pytest fixture work."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx2
import jwt
import pytest

import svarut
from svarut import errors, kryptering, models
from svarut.generated import client as generated
from svarut.runtime.auth import MaskinportenTokenProvider
from svarut.runtime.retry import RetryPolicy
from svarut.simulator import Simulator, generate_key_pair, runner
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture
from svarut.simulator.records import journey
from svarut.simulator.server import CHANNELS, DUPLICATE_MESSAGE
from svarut.simulator.wire import BodyReader, MultipartError, MultipartReader

S = models.Status
# A person's digital letter: its statuses differ between spec versions (VARSLET until
# version 15; SENDT_ALTINN and LEVERT_ALTINN from 16), so they come from the binding.
PERSON_DIGITAL = list(journey("person") or ())
FNR = "21883649874"  # synthetic (Tenor) test person
ORGNR = "974760673"
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.02)
PDF = b"%PDF-1.7\n% simulator test\n%%EOF\n"


def pdf(text: str) -> bytes:
    return PDF + text.encode()


def person(tittel: str = "Vedtak", *names: str, digital_id: str = FNR, **fields: Any) -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel=tittel,
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id=digital_id),
        dokumenter=[models.PersonDokument(filnavn=n, mime_type="application/pdf") for n in names or ("a.pdf",)],
        **fields,
    )


def send_person(
    client: svarut.SvarUtClient, konto: uuid.UUID, tittel: str = "Vedtak", *, digital_id: str = FNR, **kwargs: Any
) -> uuid.UUID:
    forsendelse = person(tittel, digital_id=digital_id)
    return client.send_til_person(konto_id=konto, forsendelse=forsendelse, dokumenter={"a.pdf": pdf(tittel)}, **kwargs)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(step_seconds=0.05, storage_dir=tmp_path / "sim") as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Iterator[svarut.SvarUtClient]:
    with sim.client(retry=FAST, timeout=10.0) as c:
        yield c


# --- raw HTTP helpers (for requests the client would never send) -------------------


def auth_headers(sim: Simulator) -> dict[str, str]:
    with MaskinportenTokenProvider(sim.maskinporten_config()) as provider:
        token = provider.get_token()
    return {
        "Authorization": f"Bearer {token}",
        "IntegrasjonId": sim.integrasjon_id,
        "IntegrasjonPassord": sim.integrasjon_passord,
    }


def multipart(parts: list[tuple[str, str | None, str, bytes]], boundary: str = "grense") -> tuple[bytes, str]:
    """(name, filename, content type, content) parts → body, Content-Type."""
    body = b""
    for name, filename, kind, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n".encode()
        body += content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def metadata(**overrides: Any) -> bytes:
    value = person("Rå", "a.pdf", "b.pdf").model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json.dumps({**value, **overrides}).encode()


def post(
    sim: Simulator, channel: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> httpx2.Response:
    url = f"{sim.base_url}/v3/kontoer/{sim.konto_id}/forsendelser/{channel}"
    return httpx2.post(url, content=body, headers={"Content-Type": content_type, **(headers or auth_headers(sim))})


def assert_error_message(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {
        "timestamp",
        "status",
        "error",
        "errorId",
        "path",
        "originalPath",
        "message",
        "errorCode",
        "errorJson",
    }
    assert body["status"] == status and body["errorCode"] == code
    assert isinstance(body["errorJson"], dict)  # an object, as the live server sends it
    assert body["originalPath"] == response.request.url.path
    uuid.UUID(body["errorId"])
    return body


# --- derived from the generated code ------------------------------------------------


def test_channels_come_from_the_generated_endpoints() -> None:
    endpoints = {
        generated.SEND_TIL_PERSON,
        generated.SEND_TIL_ORGANISASJON,
        generated.SEND_TIL_NHN,
        generated.SEND_TIL_PRINT,
    }
    assert {c.endpoint for c in CHANNELS} == endpoints
    for channel in CHANNELS:
        snake = re.sub(
            r"(?<!^)(?=[A-Z])", "_", channel.endpoint.operation_id
        ).lower()  # sendTilPerson -> send_til_person
        method = getattr(generated.SyncOperations, snake)
        annotation = inspect.signature(method).parameters["forsendelse"].annotation
        assert annotation == f"models.{channel.model.__name__}"
        assert channel.name == channel.endpoint.path.rsplit("/", 1)[-1]
        single = "dokument" in inspect.signature(method).parameters
        assert (channel.documents_field is None) == single


# --- the happy path and what is recorded ---------------------------------------------


def test_send_is_recorded_with_hashes_and_goes_through_maskinporten(
    sim: Simulator, client: svarut.SvarUtClient
) -> None:
    docs = {"a.pdf": pdf("første"), "b.pdf": pdf("andre")}
    forsendelse_id = client.send_til_person(
        konto_id=sim.konto_id, forsendelse=person("Vedtak", "a.pdf", "b.pdf"), dokumenter=docs
    )
    record = sim.get(forsendelse_id)
    assert record.channel == "person" and record.konto_id == sim.konto_id and record.tittel == "Vedtak"
    assert isinstance(record.model, models.PersonForsendelse)
    assert [(d.filnavn, d.size, d.sha256) for d in record.documents] == [
        (name, len(data), hashlib.sha256(data).hexdigest()) for name, data in docs.items()
    ]
    assert [d.read_bytes() for d in record.documents] == list(docs.values())
    assert record.history[0].status == S.MOTTATT
    (token,) = sim.maskinporten.issued
    assert token.client_id == sim.maskinporten_client_id and token.scope == "ks:fiks"
    assert [(r.operation, r.status) for r in sim.requests] == [("token", 200), ("send", 200)]


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("person", PERSON_DIGITAL),
        ("person_not_digital", [S.MOTTATT, S.AKSEPTERT, S.SENDT_PRINT, S.PRINTET]),
        ("person_kun_digital_not_digital", [S.MOTTATT, S.AKSEPTERT, S.IKKE_LEVERT]),
        ("organisasjon", [S.MOTTATT, S.AKSEPTERT, S.KLAR_FOR_MOTTAK, S.LEST]),
        ("nhn", [S.MOTTATT, S.AKSEPTERT, S.SENDT_NHN_MOTTAKER, S.LEVERT_NHN_MOTTAKER]),
        ("print", [S.MOTTATT, S.AKSEPTERT, S.SENDT_PRINT, S.PRINTET]),
    ],
)
def test_status_follows_the_channels_path(
    sim: Simulator, client: svarut.SvarUtClient, channel: str, expected: list[S]
) -> None:
    sim.not_digital.add(FNR)
    konto = sim.konto_id
    doc = {"a.pdf": PDF}
    if channel == "person":
        sim.not_digital.clear()
        forsendelse_id = client.send_til_person(konto_id=konto, forsendelse=person(), dokumenter=doc)
    elif channel == "person_not_digital":
        forsendelse_id = client.send_til_person(konto_id=konto, forsendelse=person(), dokumenter=doc)
    elif channel == "person_kun_digital_not_digital":
        forsendelse_id = client.send_til_person(
            konto_id=konto, forsendelse=person(kun_digital_levering=True), dokumenter=doc
        )
    elif channel == "organisasjon":
        org = models.OrganisasjonForsendelse(
            tittel="Melding",
            mottaker=models.Mottaker(navn="Kommunen", digital_id=ORGNR),
            dokumenter=[models.OrganisasjonDokument(filnavn="a.pdf", mime_type="application/pdf")],
        )
        forsendelse_id = client.send_til_organisasjon(konto_id=konto, forsendelse=org, dokumenter=doc)
    elif channel == "nhn":
        forsendelse_id = client.send_til_nhn(
            konto_id=konto,
            forsendelse=models.NhnForsendelse(
                tittel="Epikrise",
                mottakertype=models.NhnMottakertype.HER_ID,
                mottaker_her_id=8142519,
                avsender_kontakt=models.NhnAvsenderKontakt(fornavn="Ola", etternavn="Lege", telefonnummer="12345678"),
                pasient=models.NhnPasient(fodselsnummer=FNR, fornavn="Kari", etternavn="Nordmann"),
            ),
            dokument=svarut.File(filnavn="epikrise.pdf", content=PDF),
        )
    else:
        forsendelse_id = client.send_til_print(
            konto_id=konto,
            forsendelse=models.PrintForsendelse(
                tittel="Brev",
                mottaker=models.Postadresse(
                    navn="Kari", adresse=models.Adresse(adresselinje1="Gata 1", poststed="Oslo")
                ),
                dokumenter=[models.PrintDokument(filnavn="a.pdf", mime_type="application/pdf")],
            ),
            dokumenter=doc,
        )
    assert client.hent_status(konto_id=konto, forsendelse_id=forsendelse_id).status == S.MOTTATT
    # until=: the client does not count LEVERT_NHN_MOTTAKER as terminal.
    final = client.vent_pa_status(konto_id=konto, ids=[forsendelse_id], until={expected[-1]}, timeout=5, interval=0.02)[
        forsendelse_id
    ]
    assert final.status == expected[-1]
    history = sim.get(forsendelse_id).history
    assert [c.status for c in history] == expected
    assert expected[:2] == [S.MOTTATT, S.AKSEPTERT] and len(expected) >= 3  # whichever version: a whole journey
    assert [c.at for c in history] == sorted(c.at for c in history)
    assert final.siste_status_endring == history[-1].at


@pytest.mark.parametrize("status", [S.AVVIST, S.FEILET_UNDER_MOTTAK, S.IKKE_LEVERT])
def test_forced_outcome_for_the_next_send(sim: Simulator, client: svarut.SvarUtClient, status: S) -> None:
    sim.scenarios.force_status(status)
    forced = send_person(client, sim.konto_id, "først")
    normal = send_person(client, sim.konto_id, "så")
    sim.advance(60)
    result = client.vent_pa_status(konto_id=sim.konto_id, ids=[forced, normal], timeout=5, interval=0.01)
    assert result[forced].status == status and result[normal].status == S.LEST
    assert sim.get(forced).status_path[0] == S.MOTTATT


def test_forced_outcome_for_one_mottaker(sim: Simulator, client: svarut.SvarUtClient) -> None:
    other = "13097248022"
    sim.scenarios.force_status(S.AVVIST, mottaker=other)
    ids = [send_person(client, sim.konto_id, f"brev {i}", digital_id=d) for i, d in enumerate([other, FNR, other])]
    sim.advance(60)
    statuses = [client.hent_status(konto_id=sim.konto_id, forsendelse_id=i).status for i in ids]
    assert statuses == [S.AVVIST, S.LEST, S.AVVIST]


def test_advance_moves_the_clock(tmp_path: Path) -> None:
    with Simulator(step_seconds=3600, storage_dir=tmp_path) as simulator, simulator.client() as c:
        forsendelse_id = send_person(c, simulator.konto_id)
        assert c.hent_status(konto_id=simulator.konto_id, forsendelse_id=forsendelse_id).status == S.MOTTATT
        simulator.advance(2 * 3600)
        assert c.hent_status(konto_id=simulator.konto_id, forsendelse_id=forsendelse_id).status == PERSON_DIGITAL[2]


def test_status_search_only_sees_its_own_konto(tmp_path: Path) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    with Simulator(step_seconds=0, konto_ids=[a, b], storage_dir=tmp_path) as simulator, simulator.client() as c:
        forsendelse_id = send_person(c, a)
        assert [s.id for s in c.hent_statuser(konto_id=a, ids=[forsendelse_id])] == [forsendelse_id]
        assert c.hent_statuser(konto_id=b, ids=[forsendelse_id]).mangler == [forsendelse_id]
        with pytest.raises(errors.PermissionDeniedError, match="no access to konto"):
            c.hent_statuser(konto_id=uuid.uuid4(), ids=[forsendelse_id])


# --- validation against the spec -------------------------------------------------------


def test_bad_json_is_400(sim: Simulator) -> None:
    body, kind = multipart(
        [("forsendelse", None, "application/json", b"{not json"), ("dokumenter", "a.pdf", "application/pdf", PDF)]
    )
    error = assert_error_message(post(sim, "person", body, kind), 400, "UGYLDIG_FORESPORSEL")
    assert error["path"] == f"/v3/kontoer/{sim.konto_id}/forsendelser/person"
    assert error["errorJson"]["problemer"]
    assert sim.received == []


def test_json_the_model_refuses_is_400_naming_the_fields(sim: Simulator) -> None:
    raw = json.loads(metadata())
    del raw["tittel"]
    raw["ukjentFelt"] = 1
    raw["mottaker"]["digital_id"] = raw["mottaker"].pop("digitalId")  # Python's name, not the spec's
    body, kind = multipart(
        [("forsendelse", None, "application/json", json.dumps(raw).encode()), ("f", "a.pdf", "application/pdf", PDF)]
    )
    error = assert_error_message(post(sim, "person", body, kind), 400, "UGYLDIG_FORESPORSEL")
    assert {p["felt"] for p in error["errorJson"]["problemer"]} == {
        "tittel",
        "ukjentFelt",
        "mottaker.digitalId",
        "mottaker.digital_id",
    }


def test_the_nhn_model_is_used_for_nhn(sim: Simulator) -> None:
    body, kind = multipart(
        [("forsendelse", None, "application/json", metadata()), ("dokument", "a.pdf", "application/pdf", PDF)]
    )
    error = assert_error_message(post(sim, "nhn", body, kind), 400, "UGYLDIG_FORESPORSEL")
    assert "NhnForsendelse" in error["message"]


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        (["a.pdf"], "lists 2 document(s), but 1 file part(s)"),
        (["a.pdf", "b.pdf", "c.pdf"], "lists 2 document(s), but 3 file part(s)"),
        (["b.pdf", "a.pdf"], "another order"),
        (["a.pdf", "x.pdf"], "file part 2 is 'x.pdf'"),
    ],
)
def test_files_must_match_dokumenter_by_count_order_and_name(sim: Simulator, files: list[str], needle: str) -> None:
    parts = [("forsendelse", None, "application/json", metadata())]
    parts += [("dokumenter", name, "application/pdf", pdf(name)) for name in files]
    error = assert_error_message(post(sim, "person", *multipart(parts)), 400, "DOKUMENTER_STEMMER_IKKE")
    assert needle in error["message"]
    assert error["errorJson"]["filer"] == files
    assert sim.received == []
    assert not [p for p in sim.storage_dir.iterdir() if p.name.startswith("incoming-")]  # rejected files removed


def test_nhn_takes_exactly_one_file(sim: Simulator) -> None:
    nhn = (
        models.NhnForsendelse(
            tittel="Epikrise",
            mottakertype=models.NhnMottakertype.FASTLEGE,
            avsender_kontakt=models.NhnAvsenderKontakt(fornavn="Ola", etternavn="Lege", telefonnummer="1"),
            pasient=models.NhnPasient(fodselsnummer=FNR, fornavn="Kari", etternavn="Nordmann"),
        )
        .model_dump_json(by_alias=True, exclude_unset=True)
        .encode()
    )
    two = [
        ("forsendelse", None, "application/json", nhn),
        ("d", "a.pdf", "application/pdf", PDF),
        ("d", "b.pdf", "application/pdf", PDF),
    ]
    assert (
        "exactly one"
        in assert_error_message(post(sim, "nhn", *multipart(two)), 400, "DOKUMENTER_STEMMER_IKKE")["message"]
    )
    one = two[:2]
    response = post(sim, "nhn", *multipart(one))
    assert response.status_code == 200
    assert sim.get(response.json()["id"]).documents[0].filnavn == "a.pdf"


def test_forsendelse_part_must_come_first_and_body_must_be_multipart(sim: Simulator) -> None:
    parts = [("dokumenter", "a.pdf", "application/pdf", PDF), ("forsendelse", None, "application/json", metadata())]
    assert_error_message(post(sim, "person", *multipart(parts)), 400, "UGYLDIG_FORESPORSEL")
    assert_error_message(post(sim, "person", metadata(), "application/json"), 415, "UGYLDIG_FORESPORSEL")
    broken = multipart([("forsendelse", None, "application/json", metadata())])[0][:-20]
    assert_error_message(
        post(sim, "person", broken, "multipart/form-data; boundary=grense"), 400, "UGYLDIG_FORESPORSEL"
    )


def test_chunked_upload_with_quoted_filename(sim: Simulator) -> None:
    name = 'brev "endelig".pdf'
    meta = person("Chunked", name).model_dump_json(by_alias=True, exclude_unset=True).encode()
    content = os.urandom(300_000)
    # The client's encoding of a quote in a filename (RFC 7578 §4.2); the part's name
    # is not the spec's: "Multipart 'name' ignoreres".
    body, kind = multipart(
        [("forsendelse", None, "application/json", meta), ("f", name.replace('"', "%22"), "application/pdf", content)]
    )

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 7919):  # chunk edges fall anywhere, boundaries included
            yield body[i : i + 7919]

    url = f"{sim.base_url}/v3/kontoer/{sim.konto_id}/forsendelser/person"
    response = httpx2.post(url, content=pieces(), headers={"Content-Type": kind, **auth_headers(sim)})
    assert response.status_code == 200, response.text
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    (document,) = sim.get(response.json()["id"]).documents
    assert document.filnavn == name and document.sha256 == hashlib.sha256(content).hexdigest()


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"Authorization": None}, 401),
        ({"Authorization": "Bearer not-a-token-it-issued"}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"IntegrasjonId": None}, 401),
        ({"IntegrasjonPassord": None}, 401),
        ({"IntegrasjonPassord": "feil"}, 403),
        ({"IntegrasjonId": str(uuid.uuid4())}, 403),
    ],
)
def test_auth_headers_are_required(sim: Simulator, change: dict[str, str | None], status: int) -> None:
    headers = {k: v for k, v in {**auth_headers(sim), **change}.items() if v is not None}
    body, kind = multipart(
        [("forsendelse", None, "application/json", metadata()), ("f", "a.pdf", "application/pdf", PDF)]
    )
    response = post(sim, "person", body, kind, headers)
    code = "UAUTENTISERT" if status == 401 else "INGEN_TILGANG"
    assert_error_message(response, status, code)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert sim.received == []


def test_client_sees_typed_auth_errors(sim: Simulator) -> None:
    with sim.client(integrasjon_passord="feil", retry=FAST) as wrong, pytest.raises(errors.PermissionDeniedError):
        send_person(wrong, sim.konto_id)
    with sim.client(integrasjon_id=str(uuid.uuid4())) as wrong, pytest.raises(errors.PermissionDeniedError):
        wrong.hent_statuser(konto_id=sim.konto_id, ids=[uuid.uuid4()])


def test_revoked_token_is_refreshed_by_the_client(sim: Simulator, client: svarut.SvarUtClient) -> None:
    send_person(client, sim.konto_id, "før")
    sim.revoke_tokens()
    send_person(client, sim.konto_id, "etter")
    assert len(sim.maskinporten.issued) == 2
    assert [r.status for r in sim.requests if r.operation == "send"] == [200, 401, 200]


# --- the Maskinporten stand-in ---------------------------------------------------------------


def grant(
    sim: Simulator, *, key_pair: Any = None, header: dict[str, Any] | None = None, **claims: Any
) -> httpx2.Response:
    pair = key_pair or sim.keys.client
    now = int(time.time())
    body = {
        "aud": sim.maskinporten_issuer,
        "iss": sim.maskinporten_client_id,
        "scope": "ks:fiks",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    headers = header if header is not None else pair.keystore().jwt_headers()
    assertion = jwt.encode(body, pair.private_key, algorithm="RS256", headers={"typ": None, **headers})
    return httpx2.post(
        sim.token_endpoint, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    )


def test_maskinporten_issues_a_token_for_a_good_assertion(sim: Simulator) -> None:
    response = grant(sim)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 120 and body["scope"] == "ks:fiks"
    assert sim.maskinporten.check(body["access_token"]) is not None


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"aud": "https://test.maskinporten.no/"}, "invalid_grant"),
        ({"exp": 300}, "invalid_grant"),
        ({"scope": "ks:annet"}, "invalid_scope"),
        ({"iss": "someone-else"}, "invalid_client"),
        ({"jti": None}, "invalid_grant"),
        ({"exp": -60, "iat": -120}, "invalid_grant"),
    ],
)
def test_maskinporten_refuses_bad_claims(sim: Simulator, claims: dict[str, Any], error: str) -> None:
    # exp and iat are seconds from now, computed when the test runs (not when it is collected).
    now = int(time.time())
    response = grant(sim, **{k: now + v if k in ("exp", "iat") else v for k, v in claims.items()})
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_maskinporten_refuses_a_reused_jti_a_bad_signature_and_no_x5c(sim: Simulator) -> None:
    jti = str(uuid.uuid4())
    assert grant(sim, jti=jti).status_code == 200
    assert grant(sim, jti=jti).json()["error_description"].endswith("was used before")
    stranger = generate_key_pair("Someone else")
    # Signed by one key, carrying another's certificate.
    forged = grant(sim, key_pair=stranger, header=sim.keys.client.keystore().jwt_headers())
    assert forged.status_code == 400 and "not valid" in forged.json()["error_description"]
    assert grant(sim, header={"kid": "abc"}).json()["error"] == "invalid_grant"


def test_maskinporten_with_trusted_certificates_only(tmp_path: Path) -> None:
    with Simulator(storage_dir=tmp_path, trusted_certificates=[generate_key_pair("Annen").certificate]) as simulator:
        with simulator.client() as c, pytest.raises(errors.MaskinportenTokenError, match="invalid_client"):
            send_person(c, simulator.konto_id)
        assert simulator.received == []


# --- duplicates -------------------------------------------------------------------------------


def test_identical_forsendelse_is_rejected_as_duplicate(sim: Simulator, client: svarut.SvarUtClient) -> None:
    send_person(client, sim.konto_id, "Vedtak")
    with pytest.raises(errors.DuplicateForsendelseError) as caught:
        send_person(client, sim.konto_id, "Vedtak")
    assert caught.value.status_code == 400
    assert caught.value.error_code == "GJENTAGENDE_FORSENDELSE" and caught.value.message == DUPLICATE_MESSAGE
    send_person(client, sim.konto_id, "Vedtak", digital_id="13097248022")  # another mottaker
    send_person(client, sim.konto_id, "Vedtak 2")  # another tittel
    assert len(sim.received) == 3


def test_duplicate_rule_sees_through_encryption_and_can_be_off(tmp_path: Path) -> None:
    with Simulator(storage_dir=tmp_path / "on") as on, on.client() as c:
        send_person(c, on.konto_id, kryptering=True)
        with pytest.raises(errors.DuplicateForsendelseError):
            send_person(c, on.konto_id, kryptering=True)  # other ciphertext, same plaintext
    with Simulator(storage_dir=tmp_path / "off", reject_duplicates=False) as off, off.client() as c:
        send_person(c, off.konto_id)
        send_person(c, off.konto_id)
        assert len(off.received) == 2


# --- scenarios seen by the client ---------------------------------------------------------


def test_5xx_with_retry_after_is_retried_by_the_client(sim: Simulator, client: svarut.SvarUtClient) -> None:
    sim.scenarios.fail(503, retry_after=0, only="send")
    forsendelse_id = send_person(client, sim.konto_id)
    assert [r.status for r in sim.requests if r.operation == "send"] == [503, 200]
    assert [r.id for r in sim.received] == [forsendelse_id]


def test_5xx_after_a_send_is_an_unknown_outcome(sim: Simulator, client: svarut.SvarUtClient) -> None:
    sim.scenarios.fail(500)
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        send_person(client, sim.konto_id)
    assert isinstance(caught.value.cause, errors.InternalServerError)
    assert caught.value.cause.error_code == "SIMULERT_FEIL"
    assert sim.received == []


def test_5xx_on_status_is_a_typed_error_after_retries(sim: Simulator, client: svarut.SvarUtClient) -> None:
    sim.scenarios.fail(502, count=10, only="status")
    with pytest.raises(errors.InternalServerError):
        client.hent_statuser(konto_id=sim.konto_id, ids=[uuid.uuid4()])
    assert [r.status for r in sim.requests if r.operation == "status"] == [502] * 4  # first try + 3 retries


def test_reset_after_body_with_accept_loses_only_the_answer(sim: Simulator, client: svarut.SvarUtClient) -> None:
    sim.scenarios.reset(accept=True, only="send")
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        send_person(client, sim.konto_id)
    assert isinstance(caught.value.cause, errors.APIConnectionError)
    assert len(sim.received) == 1  # SvarUt has it; sending again is a duplicate
    with pytest.raises(errors.DuplicateForsendelseError):
        send_person(client, sim.konto_id)
    assert sim.requests[-2].status is None, sim.requests


def test_reset_on_status_is_retried(sim: Simulator, client: svarut.SvarUtClient) -> None:
    forsendelse_id = send_person(client, sim.konto_id)
    sim.scenarios.reset(count=2, only="status")
    assert client.hent_status(konto_id=sim.konto_id, forsendelse_id=forsendelse_id).id == forsendelse_id


def test_reset_before_body_of_a_large_upload_is_a_connection_error(sim: Simulator, client: svarut.SvarUtClient) -> None:
    sim.scenarios.reset(when="before_body")
    big = PDF + bytes(16 * 1024 * 1024)
    with pytest.raises(errors.APIConnectionError) as caught:
        client.send_til_person(konto_id=sim.konto_id, forsendelse=person(), dokumenter={"a.pdf": big})
    assert not isinstance(caught.value, errors.SendOutcomeUnknownError)
    assert sim.received == []


def test_slow_answer_times_the_client_out_but_the_send_is_kept(sim: Simulator) -> None:
    sim.scenarios.slow(2.0, only="send")
    with sim.client(timeout=0.3) as impatient, pytest.raises(errors.SendOutcomeUnknownError) as caught:
        send_person(impatient, sim.konto_id)
    assert isinstance(caught.value.cause, errors.APITimeoutError)
    assert len(sim.received) == 1


@pytest.mark.anyio
async def test_async_client_against_the_simulator(sim: Simulator) -> None:
    async with sim.async_client() as c:
        forsendelse_id = await c.send_til_person(konto_id=sim.konto_id, forsendelse=person(), dokumenter={"a.pdf": PDF})
        result = await c.vent_pa_status(konto_id=sim.konto_id, ids=[forsendelse_id], timeout=10, interval=0.02)
    assert result[forsendelse_id].status == S.LEST


# --- large uploads and encryption -------------------------------------------------------------


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak RSS from /proc")
def test_64_mb_upload_streams_to_disk_with_bounded_memory(tmp_path: Path) -> None:
    big = tmp_path / "stor.pdf"
    with big.open("wb") as f:
        f.write(PDF)
        block = os.urandom(1024 * 1024)
        for i in range(64):
            f.write(block[i:] + block[:i])
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    process = subprocess.Popen(
        [sys.executable, "-m", "svarut.simulator", "--json", "--step-seconds", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        before = _peak_rss_kib(process.pid)
        with svarut.SvarUtClient.from_env(environ=info) as c:
            forsendelse_id = c.send_til_person(
                konto_id=info["SVARUT_KONTO_ID"], forsendelse=person("Stor", "stor.pdf"), dokumenter={"stor.pdf": big}
            )
        growth_mib = (_peak_rss_kib(process.pid) - before) / 1024
        listing = httpx2.get(info["url"] + "/simulator/forsendelser").json()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
    (record,) = listing
    assert record["id"] == str(forsendelse_id)
    (document,) = record["documents"]
    assert document["size"] == big.stat().st_size and document["sha256"] == expected
    assert growth_mib < 24, f"the server's peak RSS grew {growth_mib:.0f} MiB for a 64 MiB upload"


def test_encrypted_forsendelse_is_decrypted_and_hashed(sim: Simulator, client: svarut.SvarUtClient) -> None:
    docs = {"a.pdf": pdf("hemmelig"), "b.pdf": pdf("også hemmelig") * 1000}
    forsendelse_id = client.send_til_person(
        konto_id=sim.konto_id, forsendelse=person("Kryptert", "a.pdf", "b.pdf"), dokumenter=docs, kryptering=True
    )
    record = sim.get(forsendelse_id)
    assert record.kryptert
    for document, plain in zip(record.documents, docs.values(), strict=True):
        assert document.plaintext_sha256 == hashlib.sha256(plain).hexdigest() and document.plaintext_size == len(plain)
        assert document.sha256 != document.plaintext_sha256 and document.read_bytes()[:1] == b"\x30"
    assert any(r.path.endswith("/forsendelse/publickey/hent") for r in sim.requests)


def test_document_that_does_not_decrypt_is_400(sim: Simulator, client: svarut.SvarUtClient) -> None:
    with pytest.raises(errors.BadRequestError) as caught:
        # It starts like CMS EnvelopedData (so the client's kryptert_requires_cms lets it through) but is not.
        not_cms = bytes.fromhex("308006092a864886f70d010703") + PDF
        client.send_til_person(konto_id=sim.konto_id, forsendelse=person(kryptert=True), dokumenter={"a.pdf": not_cms})
    assert caught.value.error_code == "DEKRYPTERING_FEILET" and "a.pdf" in str(caught.value)
    assert sim.received == []


def test_publickey_is_the_simulators_certificate(sim: Simulator) -> None:
    response = httpx2.get(sim.sertifikat_url)
    assert response.status_code == 200
    assert kryptering.SvarUtSertifikat.from_bytes(response.content).serial_number == sim.sertifikat.serial_number


# --- inspection -------------------------------------------------------------------------------


def test_html_page_lists_forsendelser_escaped(sim: Simulator, client: svarut.SvarUtClient) -> None:
    forsendelse_id = send_person(client, sim.konto_id, "<script>alert('x')</script> & vedtak")
    sim.advance(1)
    for path in ("/", "/simulator"):
        response = httpx2.get(sim.url + path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        page = response.text
        assert str(forsendelse_id) in page and "a.pdf" in page and "MOTTATT" in page and "LEST" in page
        assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; vedtak" in page
    listing = httpx2.get(sim.url + "/simulator/forsendelser").json()
    assert listing[0]["tittel"].startswith("<script>") and listing[0]["status"] == "LEST"


def test_stop_closes_idle_keep_alive_connections_and_joins_threads(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    simulator = Simulator(storage_dir=tmp_path).start()
    idle = socket.create_connection(("127.0.0.1", simulator.port))
    with simulator.client() as c:
        send_person(c, simulator.konto_id)  # leaves its pooled connection open
        started = time.monotonic()
        simulator.stop()
    assert time.monotonic() - started < 2
    assert set(threading.enumerate()) - before == set()
    idle.close()


def test_owned_storage_is_removed_on_stop() -> None:
    with Simulator() as simulator:
        storage = simulator.storage_dir
        assert simulator.keystore_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    assert not storage.exists()
    with pytest.raises(RuntimeError, match="not running"):
        _ = simulator.base_url


# --- the multipart parser on its own --------------------------------------------------------------


def parse(body: bytes, boundary: str = "grense", chunk_size: int = 3) -> list[tuple[str | None, str | None, bytes]]:
    reader = MultipartReader(
        BodyReader(io.BytesIO(body), content_length=len(body), chunked=False), boundary, chunk_size=chunk_size
    )
    parts = []
    while (part := reader.next_part()) is not None:
        parts.append((part.name, part.filename, b"".join(reader.iter_content())))
    return parts


def test_parser_handles_preamble_epilogue_tiny_chunks_and_lookalike_boundaries() -> None:
    tricky = b"--grense\n\r\n--grensX\r\n-grense\r\n--grens"  # almost-delimiters, one cut off by the real one
    body = (
        b'preamble\r\n--grense\r\nContent-Disposition: form-data; name="a"\r\n\r\nfirst\r\n'
        b'--grense  \r\nContent-Disposition: form-data; name="b"; filename="x;y.pdf"\r\n\r\n' + tricky + b"\r\n"
        b"--grense\r\nContent-Disposition: form-data; name=\"c\"; filename*=UTF-8''%C3%A6%C3%B8%C3%A5.pdf\r\n\r\n\r\n"
        b"--grense--\r\nepilogue"
    )
    for size in (1, 2, 3, 5, 64, 4096):
        assert parse(body, chunk_size=size) == [("a", None, b"first"), ("b", "x;y.pdf", tricky), ("c", "æøå.pdf", b"")]


@pytest.mark.parametrize(
    "body",
    [
        b'--grense\r\nContent-Disposition: form-data; name="a"\r\n\r\nno end',
        b"--grense\r\nno-colon-here\r\n\r\nx\r\n--grense--",
        b"--grense\r\nContent-Type: text/plain\r\n\r\nx\r\n--grense--",
        b"--grense\r\nContent-Disposition: attachment\r\n\r\nx\r\n--grense--",
        b"--grensefoo",
    ],
)
def test_parser_rejects_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MultipartError):
        parse(body)


# --- the pytest fixture ---------------------------------------------------------------------------


def test_fixture_hands_a_client_and_the_record(svarut_simulator: SvarUtSimulatorFixture) -> None:
    forsendelse_id = send_person(svarut_simulator.client, svarut_simulator.konto_id)
    assert svarut_simulator.get(forsendelse_id).documents[0].filnavn == "a.pdf"
    assert [r.id for r in svarut_simulator.received] == [forsendelse_id]
    assert svarut_simulator.simulator.storage_dir.parent.name.startswith("test_fixture")  # under tmp_path
    assert svarut_simulator.environ()["SVARUT_BASE_URL"] == svarut_simulator.base_url


@pytest.mark.svarut_simulator(step_seconds=0, not_digital={FNR})
def test_fixture_takes_simulator_options_from_the_marker(svarut_simulator: SvarUtSimulatorFixture) -> None:
    forsendelse_id = send_person(svarut_simulator.client, svarut_simulator.konto_id)
    status = svarut_simulator.client.hent_status(konto_id=svarut_simulator.konto_id, forsendelse_id=forsendelse_id)
    assert status.status == S.PRINTET


@pytest.mark.anyio
async def test_fixture_async_client(svarut_simulator: SvarUtSimulatorFixture) -> None:
    async with svarut_simulator.async_client() as c:
        statuser = await c.hent_statuser(konto_id=svarut_simulator.konto_id, ids=[uuid.uuid4()])
    assert statuser == [] and len(statuser.mangler) == 1


def test_a_consumer_suite_gets_the_fixture_from_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "test_consumer_side.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from svarut import models

            @pytest.mark.svarut_simulator(step_seconds=0)
            def test_send(svarut_simulator):
                forsendelse = models.PersonForsendelse(
                    tittel="Vedtak",
                    mottaker=models.Mottaker(navn="Kari", digital_id="21883649874"),
                    dokumenter=[models.PersonDokument(filnavn="v.pdf", mime_type="application/pdf")],
                )
                forsendelse_id = svarut_simulator.client.send_til_person(
                    konto_id=svarut_simulator.konto_id, forsendelse=forsendelse, dokumenter={"v.pdf": b"%PDF-1.7"}
                )
                assert svarut_simulator.get(forsendelse_id).status == models.Status.LEST
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--strict-markers",
            "-W",
            "error",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


# --- by hand: python -m svarut.simulator -------------------------------------------------------


def test_eval_of_the_printed_exports_points_a_client_at_the_running_simulator(tmp_path: Path) -> None:
    # The usage python -m svarut.simulator documents: stdout holds only export lines and then
    # ends, so $(...) returns while the simulator runs on in the background.
    script = f"""
eval "$({shlex.quote(sys.executable)} -m svarut.simulator --step-seconds 0 2>{tmp_path}/prose.txt &)"
echo "pid=$SVARUT_SIMULATOR_PID"
{shlex.quote(sys.executable)} -c '
import os, uuid, svarut
with svarut.SvarUtClient.from_env() as client:
    print("mangler", len(client.hent_statuser(konto_id=os.environ["SVARUT_KONTO_ID"], ids=[uuid.uuid4()]).mangler))
'
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    pids = [int(line.removeprefix("pid=")) for line in result.stdout.splitlines() if line.startswith("pid=")]
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[1:] == ["mangler 1"]
        assert "SvarUt simulator running at http://127.0.0.1:" in (tmp_path / "prose.txt").read_text()
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)


def test_the_printed_output_is_export_lines_only() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "svarut.simulator", "--step-seconds", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        lines = process.stdout.read().splitlines()  # returns: stdout is closed after the exports
        assert lines and all(re.fullmatch(r"export [A-Z_]+=\S+", line) for line in lines)
        names = {line.split("=", 1)[0].removeprefix("export ") for line in lines}
        assert names >= {"SVARUT_BASE_URL", "SVARUT_KONTO_ID", "MASKINPORTEN_KEYSTORE", "SVARUT_SIMULATOR_PID"}
        assert process.poll() is None  # still serving
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


# --- the settings for the user's shell: posix, PowerShell, cmd ----------------------------------

# Values a setting may hold on a user's machine: a temp path under a name with a space or an
# apostrophe, a password with shell syntax in it.
AWKWARD = [
    "plain",
    "C:\\Users\\Ola Nordmann\\AppData\\Local\\Temp\\svarut-simulator-x\\client-keystore.pem",
    "/home/o'brien/it's here",
    'a "quoted" word',
    "$HOME `id` $(id) ${x} ; & | < > ( ) ^ ! *",
    "100% sure %PATH% %%",
    "typographic ‘quotes’ ‚low‛",
    "",
]


def read_powershell_single_quoted(line: str) -> tuple[str, str]:
    """``$env:NAME = '...'`` as PowerShell reads it (about_Quoting_Rules: in a single-quoted
    string nothing is expanded, and a quote, ASCII or U+2018-U+201B, doubled stands for itself)."""
    quotes = "'\u2018\u2019\u201a\u201b"
    match = re.fullmatch(r"\$env:([A-Z_]+) = (.*)", line, flags=re.S)
    assert match, line
    name, literal = match[1], match[2]
    assert literal[0] in quotes and literal[-1] in quotes, line
    value, i, body = [], 0, literal[1:-1]
    while i < len(body):
        if body[i] in quotes:
            assert i + 1 < len(body) and body[i + 1] in quotes, f"an undoubled quote ends the string early: {line}"
            i += 1
        value.append(body[i])
        i += 1
    return name, "".join(value)


def read_cmd_set(line: str) -> tuple[str, str]:
    """``set "NAME=value"`` as a batch file runs it: the quotes keep & | < > ^ ( ) plain, and the
    batch file's %% is one %; a single % would start a variable."""
    match = re.fullmatch(r'set "([A-Z_]+)=(.*)"', line)
    assert match, line
    value = match[2]
    assert '"' not in value, "a quote inside would end the quoting, and what follows would be commands"
    assert re.fullmatch(r"(?:[^%]|%%)*", value), f"a single % would expand a variable: {line}"
    return match[1], value.replace("%%", "%")


@pytest.mark.parametrize("value", AWKWARD)
def test_a_posix_export_line_gives_bash_the_value_back_exactly(value: str) -> None:
    line = runner.export_line("SVARUT_X", value, "posix")
    result = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$SVARUT_X"'], capture_output=True, text=True, timeout=10, check=True
    )
    assert result.stdout == value


@pytest.mark.parametrize("value", AWKWARD)
def test_a_powershell_line_is_a_single_quoted_string_with_quotes_doubled(value: str) -> None:
    line = runner.export_line("SVARUT_X", value, "powershell")
    assert line.startswith("$env:SVARUT_X = '") and line.endswith("'")
    assert read_powershell_single_quoted(line) == ("SVARUT_X", value)


@pytest.mark.parametrize("value", [v for v in AWKWARD if '"' not in v])
def test_a_cmd_line_is_a_quoted_set_with_percent_doubled(value: str) -> None:
    line = runner.export_line("SVARUT_X", value, "cmd")
    assert read_cmd_set(line) == ("SVARUT_X", value)


@pytest.mark.parametrize(("value", "what"), [('a "quoted" word', "a double quote"), ("two\nlines", "a line break")])
def test_a_value_cmd_cannot_carry_is_refused_naming_the_variable(value: str, what: str) -> None:
    with pytest.raises(ValueError, match=f"SVARUT_X holds {what}.*--shell powershell or --json"):
        runner.export_line("SVARUT_X", value, "cmd")


def test_the_default_shell_is_powershell_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.default_shell() == "posix"
    with monkeypatch.context() as patch:
        patch.setattr(runner.os, "name", "nt")
        windows = runner.default_shell()
    assert windows == "powershell"


def test_the_cli_offers_the_runners_shells() -> None:
    from svarut.cli.app import cli

    (shell,) = [p for p in cli.commands["simulator"].params if p.name == "shell"]
    assert isinstance(shell.type, click.Choice)
    assert tuple(shell.type.choices) == runner.SHELLS


@contextlib.contextmanager
def _started(argv: list[str], env: dict[str, str]) -> Iterator[tuple[list[str], str]]:
    """stdout's lines (it closes once the settings are out) and the first line of the prose on
    stderr, while the simulator serves; stopped after."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        lines = process.stdout.read().splitlines()
        prose = ""
        while process.poll() is None and "The lines on stdout" not in prose and "{" not in "".join(lines):
            prose += process.stderr.readline()
        assert process.poll() is None, prose + process.stderr.read()  # still serving
        yield lines, prose
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


@pytest.fixture
def awkward_tmp(tmp_path: Path) -> dict[str, str]:
    """An environment whose temp directory (where the simulator keeps its keystore) has a space
    and an apostrophe in its name, as a Windows user's profile may."""
    folder = tmp_path / "Ola O'Brien" / "Temp"
    folder.mkdir(parents=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**environ, "TMPDIR": str(folder)}


@pytest.mark.parametrize(
    ("shell", "read"), [("powershell", read_powershell_single_quoted), ("cmd", read_cmd_set)], ids=["powershell", "cmd"]
)
@pytest.mark.parametrize("command", [["-m", "svarut.simulator"], ["-m", "svarut.cli", "simulator"]], ids=["m", "cli"])
def test_the_simulator_prints_lines_for_the_shell_asked_for(
    shell: str, read: Any, command: list[str], awkward_tmp: dict[str, str]
) -> None:
    argv = [sys.executable, *command, "--step-seconds", "0", "--shell", shell]
    with _started(argv, awkward_tmp) as (lines, prose):
        settings = dict(read(line) for line in lines)
        assert set(settings) >= {"SVARUT_BASE_URL", "SVARUT_KONTO_ID", "MASKINPORTEN_KEYSTORE", "SVARUT_SIMULATOR_PID"}
        assert "O'Brien" in settings["MASKINPORTEN_KEYSTORE"]
        assert Path(settings["MASKINPORTEN_KEYSTORE"]).is_file()  # read back exactly, space, apostrophe and all
        assert f"The lines on stdout ({shell})" in prose


def test_the_posix_lines_give_a_shell_a_path_with_a_space_and_a_quote(awkward_tmp: dict[str, str]) -> None:
    with _started([sys.executable, "-m", "svarut.cli", "simulator", "--step-seconds", "0"], awkward_tmp) as (lines, _):
        script = "\n".join([*lines, 'test -f "$MASKINPORTEN_KEYSTORE" && printf %s "$MASKINPORTEN_KEYSTORE"'])
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert "Ola O'Brien" in result.stdout


def test_svarut_simulator_json_prints_one_json_object_a_client_can_use(awkward_tmp: dict[str, str]) -> None:
    argv = [sys.executable, "-m", "svarut.cli", "simulator", "--json", "--step-seconds", "0"]
    with _started(argv, awkward_tmp) as (lines, _):
        (line,) = lines
        info = json.loads(line)
        assert info["SVARUT_SIMULATOR_PID"].isdigit()  # to stop it, as the shell lines have it
        with svarut.SvarUtClient.from_env(environ=info) as client:
            assert client.hent_statuser(konto_id=info["SVARUT_KONTO_ID"], ids=[uuid.uuid4()]).mangler


@pytest.mark.parametrize("command", [["-m", "svarut.simulator"], ["-m", "svarut.cli", "simulator"]], ids=["m", "cli"])
def test_shell_and_json_together_is_a_usage_error(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *command, "--shell", "cmd", "--json"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--json" in result.stderr and "--shell" in result.stderr
    assert "Traceback" not in result.stderr
