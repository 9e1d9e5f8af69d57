"""SvarUt's multipart parser is Tomcat's: at most 50 parts to a request, at most
512 bytes of headers to a part, and a part's filename trimmed as Java's
``String.trim()`` trims. The pre-send rules ``part_count``,
``part_header_size`` and ``filename_whitespace`` refuse what that parser would
refuse or rename, at the exact edges, for every kind of send; the sync and the
async client refuse it before a byte goes on the wire; raised limits let it
through; and the simulator, given bodies built here by hand, refuses the same
requests at the same edges as Spring Boot on Tomcat answers them.

The byte counts here are worked out independently of the client's encoder:
Tomcat counts a part's header section from after its boundary line up to and
including the blank line that ends it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel

from svarut import File, models
from svarut.errors import ForsendelseValidationError, PayloadTooLargeError, SendOutcomeUnknownError
from svarut.runtime.auth import MaskinportenTokenProvider
from svarut.runtime.client import PreparedSend
from svarut.runtime.files import Source
from svarut.runtime.multipart import Document
from svarut.runtime.validation import MAX_PART_COUNT, MAX_PART_HEADER_SIZE, ForsendelseRules
from svarut.simulator import Simulator
from svarut.simulator.wire import BodyReader, MultipartReader, PartLimitError

PDF = "application/pdf"
PDF_BYTES = b"%PDF-1.7\n% tomcat\n%%EOF\n"
KONTO = "0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11"
FNR = "21883649874"  # a synthetic (Tenor) test person: valid with environment="test"
ORGNR = "974760673"
RULES = ForsendelseRules(environment="test")
BOUNDARY = "grense"


# --- names of an exact size in bytes ------------------------------------------------------

PART_OF = {"person": "dokumenter", "organisasjon": "dokumenter", "print": "dokumenter", "nhn": "dokument"}
OPERATION_OF = {
    "person": "sendTilPerson",
    "organisasjon": "sendTilOrganisasjon",
    "print": "sendTilPrint",
    "nhn": "sendTilNhn",
}
KINDS = list(PART_OF)
LISTED = ["person", "organisasjon", "print"]


def head_block(part: str, filename: str, mime_type: str = PDF) -> bytes:
    """A document part's header section as Tomcat counts it: after the boundary
    line, through the blank line (written out here, not by the client)."""
    disposition = f'Content-Disposition: form-data; name="{part}"; filename="{filename}"'
    return f"{disposition}\r\nContent-Type: {mime_type}\r\n\r\n".encode()


def name_for(header_bytes: int, kind: str, *, form: str) -> str:
    """A filename whose part header is exactly ``header_bytes`` bytes, at most
    226 characters long. ``nfc``: 'ø' (2 bytes) and ASCII; ``nfd``: 'å' in NFD
    (a + U+030A: 2 code points, 3 bytes) and '€' (3 bytes), then ASCII."""
    room = header_bytes - len(head_block(PART_OF[kind], ""))
    stem = "ø" * 200 if form == "nfc" else unicodedata.normalize("NFD", "å") * 60 + "€" * 78
    name = stem + "a" * (room - len(stem.encode()))
    assert len(head_block(PART_OF[kind], name)) == header_bytes and len(name) <= 226
    assert unicodedata.is_normalized(form.upper(), name)
    return name


# --- forsendelser of each kind -------------------------------------------------------------


def forsendelse(kind: str, names: list[str]) -> BaseModel:
    if kind == "person":
        return models.PersonForsendelse(
            tittel="Vedtak",
            mottaker=models.Mottaker(navn="Kari Nordmann", digital_id=FNR),
            dokumenter=[models.PersonDokument(filnavn=n, mime_type=PDF) for n in names],
        )
    if kind == "organisasjon":
        return models.OrganisasjonForsendelse(
            tittel="Melding",
            mottaker=models.Mottaker(navn="Brreg", digital_id=ORGNR),
            dokumenter=[models.OrganisasjonDokument(filnavn=n, mime_type=PDF) for n in names],
        )
    if kind == "print":
        adresse = models.Adresse(adresselinje1="Storgata 1", postnummer="0155", poststed="Oslo")
        return models.PrintForsendelse(
            tittel="Brev",
            mottaker=models.Postadresse(navn="Kari Nordmann", adresse=adresse),
            dokumenter=[models.PrintDokument(filnavn=n, mime_type=PDF) for n in names],
        )
    return models.NhnForsendelse(
        tittel="Epikrise",
        mottakertype=models.NhnMottakertype.FASTLEGE,
        avsender_kontakt=models.NhnAvsenderKontakt(fornavn="Ola", etternavn="Lege", telefonnummer="12345678"),
        pasient=models.NhnPasient(fodselsnummer=FNR, fornavn="Kari", etternavn="Nordmann"),
    )


def prepared(kind: str, names: list[str]) -> PreparedSend:
    """The send a client would prepare (NHN: its one document, named by the first name)."""
    metadata = forsendelse(kind, names).model_dump(mode="json", by_alias=True, exclude_unset=True)
    docs = tuple(Document(n, PDF, Source(PDF_BYTES, label=n)) for n in (names[:1] if kind == "nhn" else names))
    return PreparedSend(OPERATION_OF[kind], metadata, docs)


def found(send: PreparedSend, rules: ForsendelseRules = RULES) -> list[tuple[str, str]]:
    return [(p.field, p.rule) for p in rules.problems(send)]


def filnavn_field(kind: str, index: int = 0) -> str:
    return "dokument.filnavn" if kind == "nhn" else f"dokumenter[{index}].filnavn"


def many(count: int) -> list[str]:
    return [f"brev{i:02d}.pdf" for i in range(count)]


# --- the rules at the edges ----------------------------------------------------------------


def test_the_defaults_are_tomcats():
    assert (MAX_PART_COUNT, MAX_PART_HEADER_SIZE) == (50, 512)
    assert "part_count" in ForsendelseRules.RULES and "part_header_size" in ForsendelseRules.RULES
    assert "filename_whitespace" in ForsendelseRules.RULES


@pytest.mark.parametrize("kind", LISTED)
def test_49_documents_pass_and_50_are_51_parts_refused(kind):
    assert found(prepared(kind, many(49))) == []
    problems = RULES.problems(prepared(kind, many(50)))
    assert [(p.field, p.rule) for p in problems] == [("dokumenter", "part_count")]
    assert "51 multipart parts" in problems[0].message and "at most 49 documents" in problems[0].message


def test_nhn_is_two_parts_against_the_same_limit():
    send = prepared("nhn", ["epikrise.pdf"])
    assert found(send, ForsendelseRules(environment="test", max_part_count=2)) == []
    assert found(send, ForsendelseRules(environment="test", max_part_count=1)) == [("dokument", "part_count")]


@pytest.mark.parametrize("form", ["nfc", "nfd"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_part_header_of_512_bytes_passes_and_513_is_refused(kind, form):
    at_limit, over = name_for(512, kind, form=form), name_for(513, kind, form=form)
    assert found(prepared(kind, [at_limit])) == []
    (problem,) = RULES.problems(prepared(kind, [over]))
    assert (problem.field, problem.rule) == (filnavn_field(kind), "part_header_size")
    assert "refuses a part header over 512 bytes; this one is 513 bytes" in problem.message
    assert "shorten the filename by at least 1 byte" in problem.message


def test_the_header_is_counted_in_utf8_bytes_so_nfd_can_break_it_where_nfc_does_not():
    # 'å' is 2 bytes in NFC and 3 in NFD: the same name, 506 bytes of header or 566.
    name = "å" * 60 + "€" * 95 + ".pdf"
    nfc, nfd = unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name)
    assert len(nfd) <= 226 and len(head_block("dokumenter", nfc)) == 506 and len(head_block("dokumenter", nfd)) == 566
    assert found(prepared("person", [nfc])) == []
    (problem,) = RULES.problems(prepared("person", [nfd]))
    assert (
        problem.rule == "part_header_size"
        and "566 bytes" in problem.message
        and "by at least 54 bytes" in problem.message
    )


def test_the_brief_s_examples_226_oe_are_refused_and_210_ascii_pass():
    assert found(prepared("person", ["ø" * 226])) == [("dokumenter[0].filnavn", "part_header_size")]
    assert found(prepared("person", ["x" * 210])) == []


def test_the_header_counts_what_the_encoder_writes_quoted_characters_included():
    # '"' goes as %22: 412 bytes of name in UTF-8 (a 509-byte header), but 416 on the wire (513).
    name = "ø" * 205 + '""'
    assert len(head_block("dokumenter", name)) == 509
    assert len(head_block("dokumenter", name.replace('"', "%22"))) == 513
    problems = RULES.problems(prepared("person", [name]))
    assert [(p.field, p.rule) for p in problems] == [
        ("dokumenter[0].filnavn", "filename_chars"),
        ("dokumenter[0].filnavn", "part_header_size"),
    ]
    assert "this one is 513 bytes" in problems[1].message


def test_a_long_mime_type_counts_too():
    send = prepared("person", ["brev.pdf"])
    long_type = "application/pdf; " + "x=" + "y" * 420
    send = PreparedSend(
        send.operation_id, send.metadata, (Document("brev.pdf", long_type, Source(PDF_BYTES, label="b")),)
    )
    assert ("dokumenter[0].filnavn", "part_header_size") in found(send)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", [" brev.pdf", "brev.pdf ", "  brev.pdf  "])
def test_a_filename_starting_or_ending_with_a_space_is_refused(kind, name):
    problems = RULES.problems(prepared(kind, [name]))
    assert [(p.field, p.rule) for p in problems] == [(filnavn_field(kind), "filename_whitespace")]
    assert "would arrive as 'brev.pdf'" in problems[0].message


@pytest.mark.parametrize("name", ["\tbrev.pdf", "brev.pdf\t", "brev.pdf\n"])
def test_a_tab_at_an_end_is_refused_as_a_control_character_which_tomcat_does_not_trim(name):
    # The client sends it percent-encoded (%09), which Tomcat neither decodes nor trims.
    assert found(prepared("person", [name])) == [("dokumenter[0].filnavn", "filename_chars")]
    assert found(prepared("person", [" " + name + " "])) == [
        ("dokumenter[0].filnavn", "filename_chars"),
        ("dokumenter[0].filnavn", "filename_whitespace"),
    ]


@pytest.mark.parametrize("space", ["\u00a0", "\u2003", "\u3000"])
def test_unicode_spaces_are_not_what_java_trims(space):
    assert found(prepared("person", [space + "brev.pdf" + space])) == []


def test_spaces_inside_a_name_are_fine():
    assert found(prepared("person", ["vedtak om byggesak 2026.pdf"])) == []


def test_raised_limits_let_it_through():
    raised = ForsendelseRules(environment="test", max_part_count=51, max_part_header_size=513)
    assert found(prepared("person", many(50)), raised) == []
    assert found(prepared("nhn", [name_for(513, "nhn", form="nfc")]), raised) == []
    assert found(prepared("person", many(51)), raised) == [("dokumenter", "part_count")]
    lowered = ForsendelseRules(environment="test", max_part_count=10)  # as some Spring Boot releases had it
    assert found(prepared("person", many(9)), lowered) == []
    assert found(prepared("person", many(10)), lowered) == [("dokumenter", "part_count")]


def test_each_new_rule_can_be_skipped():
    send = prepared("person", [" " + "ø" * 220, *many(49)])
    assert [r for _, r in found(send)] == ["filename_whitespace", "part_count", "part_header_size"]
    for rule in ("filename_whitespace", "part_count", "part_header_size"):
        others = [r for r in ("filename_whitespace", "part_count", "part_header_size") if r != rule]
        assert [r for _, r in found(send, ForsendelseRules(environment="test", skip={rule}))] == others


@pytest.mark.parametrize("value", ["50", 50.0, True, None])
def test_limits_must_be_ints(value):
    with pytest.raises(TypeError, match="max_part_count must be an int"):
        ForsendelseRules(max_part_count=value)
    with pytest.raises(TypeError, match="max_part_header_size must be an int"):
        ForsendelseRules(max_part_header_size=value)


@pytest.mark.parametrize("value", [0, -1])
def test_limits_must_be_positive(value):
    with pytest.raises(ValueError, match="max_part_count must be at least 1"):
        ForsendelseRules(max_part_count=value)
    with pytest.raises(ValueError, match="max_part_header_size must be at least 1"):
        ForsendelseRules(max_part_header_size=value)


def test_repr_shows_limits_other_than_tomcats():
    assert repr(ForsendelseRules()) == "ForsendelseRules(environment='prod')"
    assert repr(ForsendelseRules(max_part_count=100, max_part_header_size=1024)) == (
        "ForsendelseRules(environment='prod', max_part_count=100, max_part_header_size=1024)"
    )


# --- through the clients: refused before a byte is sent -------------------------------------


def send_kwargs(kind: str, names: list[str]) -> dict[str, Any]:
    if kind == "nhn":
        return {"forsendelse": forsendelse(kind, names), "dokument": File(filnavn=names[0], content=PDF_BYTES)}
    return {"forsendelse": forsendelse(kind, names), "dokumenter": dict.fromkeys(names, PDF_BYTES)}


def header_sections(body: bytes, content_type: str) -> list[bytes]:
    """Each part's header section as it arrived, split on the boundary by hand."""
    boundary = content_type.split("boundary=")[1].encode()
    sections = body.split(b"--" + boundary)
    assert sections[0] == b"" and sections[-1] == b"--\r\n"
    heads = []
    for section in sections[1:-1]:
        assert section.startswith(b"\r\n")
        end = section.index(b"\r\n\r\n", 2) + 4
        heads.append(section[2:end])
    return heads


@pytest.mark.anyio
@pytest.mark.parametrize("kind", LISTED)
async def test_the_clients_refuse_50_documents_and_send_49(api, server, kind):
    with pytest.raises(ForsendelseValidationError) as info:
        await api(f"send_til_{kind}", client_options={"checks": [RULES]}, konto_id=KONTO, **send_kwargs(kind, many(50)))
    assert [(p.field, p.rule) for p in info.value.problems] == [("dokumenter", "part_count")]
    assert server.requests == []

    await api(f"send_til_{kind}", client_options={"checks": [RULES]}, konto_id=KONTO, **send_kwargs(kind, many(49)))
    [request] = server.requests
    assert len(header_sections(request.body, request.headers["Content-Type"])) == 50


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_the_clients_refuse_a_513_byte_part_header_and_send_512_exactly(api, server, kind):
    method = f"send_til_{kind}"
    with pytest.raises(ForsendelseValidationError) as info:
        await api(
            method,
            client_options={"checks": [RULES]},
            konto_id=KONTO,
            **send_kwargs(kind, [name_for(513, kind, form="nfc")]),
        )
    assert [(p.field, p.rule) for p in info.value.problems] == [(filnavn_field(kind), "part_header_size")]
    assert server.requests == []

    name = name_for(512, kind, form="nfd")
    await api(method, client_options={"checks": [RULES]}, konto_id=KONTO, **send_kwargs(kind, [name]))
    [request] = server.requests
    heads = header_sections(request.body, request.headers["Content-Type"])
    assert heads[1] == head_block(PART_OF[kind], name) and len(heads[1]) == 512


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_the_default_rules_refuse_a_name_tomcat_would_trim(api, server, kind):
    options = {"validate": True, "environment": "test"}  # no checks of our own: the client's default rules
    with pytest.raises(ForsendelseValidationError) as info:
        await api(f"send_til_{kind}", client_options=options, konto_id=KONTO, **send_kwargs(kind, ["brev.pdf "]))
    assert [(p.field, p.rule) for p in info.value.problems] == [(filnavn_field(kind), "filename_whitespace")]
    assert server.requests == []


@pytest.mark.anyio
async def test_raised_limits_let_the_client_send_what_tomcats_defaults_refuse(api, server):
    raised = ForsendelseRules(environment="test", max_part_count=51, max_part_header_size=513)
    names = [name_for(513, "person", form="nfc"), *many(49)]
    await api("send_til_person", client_options={"checks": [raised]}, konto_id=KONTO, **send_kwargs("person", names))
    [request] = server.requests
    heads = header_sections(request.body, request.headers["Content-Type"])
    assert len(heads) == 51 and len(heads[1]) == 513


# --- the simulator: bodies built by hand, refused at the same edges -------------------------


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(step_seconds=0.05, storage_dir=tmp_path / "sim") as simulator:
        yield simulator


@pytest.fixture
def auth(sim: Simulator) -> dict[str, str]:
    with MaskinportenTokenProvider(sim.maskinporten_config()) as provider:
        token = provider.get_token()
    return {
        "Authorization": f"Bearer {token}",
        "IntegrasjonId": sim.integrasjon_id,
        "IntegrasjonPassord": sim.integrasjon_passord,
    }


def hand_made(kind: str, names: list[str], filenames: list[str] | None = None) -> bytes:
    """The body of a send of ``kind`` written here, byte by byte: the metadata
    describing ``names``, then one document part per filename (default: the names)."""
    metadata = forsendelse(kind, names).model_dump(mode="json", by_alias=True, exclude_unset=True)
    body = f"--{BOUNDARY}\r\n".encode()
    body += b'Content-Disposition: form-data; name="forsendelse"\r\nContent-Type: application/json\r\n\r\n'
    body += json.dumps(metadata).encode() + b"\r\n"
    for filename in filenames if filenames is not None else names:
        body += (
            f"--{BOUNDARY}\r\n".encode() + head_block(PART_OF[kind], filename) + PDF_BYTES + filename.encode() + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


def post(sim: Simulator, auth: dict[str, str], kind: str, body: bytes) -> httpx2.Response:
    url = f"{sim.base_url}/v3/kontoer/{sim.konto_id}/forsendelser/{kind}"
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **auth}
    return httpx2.post(url, content=body, headers=headers, timeout=30)


def error_of(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()
    assert error["status"] == status and error["errorCode"] == code and error["errorId"]
    return error


@pytest.mark.parametrize("kind", LISTED)
def test_the_simulator_takes_50_parts_and_refuses_51_as_spring_boot_does(sim, auth, kind):
    assert post(sim, auth, kind, hand_made(kind, many(49))).status_code == 200
    error = error_of(post(sim, auth, kind, hand_made(kind, many(50))), 500, "FOR_MANGE_DELER")
    assert "more than 50 parts" in error["message"] and error["errorJson"] == {"grense": 50, "faktisk": 51}
    assert len(sim.received) == 1


def test_the_simulator_counts_nhn_parts_too(sim, auth):
    one = hand_made("nhn", ["epikrise.pdf"])
    two = hand_made("nhn", ["epikrise.pdf"], ["epikrise.pdf", "vedlegg.pdf"])
    error_of(post(sim, auth, "nhn", two), 400, "DOKUMENTER_STEMMER_IKKE")  # three parts: NHN's own rule
    sim.max_part_count = 2
    assert post(sim, auth, "nhn", one).status_code == 200
    error_of(post(sim, auth, "nhn", two), 500, "FOR_MANGE_DELER")  # the parser's limit comes first


@pytest.mark.parametrize("form", ["nfc", "nfd"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_simulator_takes_a_512_byte_part_header_and_refuses_513_with_413(sim, auth, kind, form):
    at_limit, over = name_for(512, kind, form=form), name_for(513, kind, form=form)
    ok = post(sim, auth, kind, hand_made(kind, [at_limit]))
    assert ok.status_code == 200, ok.text
    assert sim.get(ok.json()["id"]).documents[0].filnavn == at_limit
    error = error_of(post(sim, auth, kind, hand_made(kind, [over])), 413, "FOR_STORT_DELHODE")
    assert "more than 512 bytes (513 bytes)" in error["message"] and error["errorJson"] == {
        "grense": 512,
        "faktisk": 513,
    }


def test_the_simulator_s_limits_can_be_raised_or_removed(tmp_path, auth_for):
    with Simulator(step_seconds=0.05, storage_dir=tmp_path, max_part_count=None, max_part_header_size=513) as simulator:
        headers = auth_for(simulator)
        assert post(simulator, headers, "person", hand_made("person", many(60))).status_code == 200
        name = name_for(513, "person", form="nfc")
        assert post(simulator, headers, "person", hand_made("person", [name])).status_code == 200
        simulator.max_part_header_size = 512
        error_of(post(simulator, headers, "person", hand_made("person", [name])), 413, "FOR_STORT_DELHODE")


@pytest.fixture
def auth_for():
    def make(simulator: Simulator) -> dict[str, str]:
        with MaskinportenTokenProvider(simulator.maskinporten_config()) as provider:
            token = provider.get_token()
        return {
            "Authorization": f"Bearer {token}",
            "IntegrasjonId": simulator.integrasjon_id,
            "IntegrasjonPassord": simulator.integrasjon_passord,
        }

    return make


@pytest.mark.parametrize(("value", "error"), [("50", TypeError), (True, TypeError), (0, ValueError), (-1, ValueError)])
def test_the_simulator_s_limits_are_checked(value, error):
    with pytest.raises(error, match="max_part_count"):
        Simulator(max_part_count=value)
    with pytest.raises(error, match="max_part_header_size"):
        Simulator(max_part_header_size=value)


@pytest.mark.parametrize("sent", [" a.pdf", "a.pdf ", "\ta.pdf", "a.pdf\t", " \t a.pdf \r"])
def test_the_simulator_trims_filenames_as_tomcat_and_then_they_no_longer_match(sim, auth, sent):
    # The metadata says the name as sent; the file part, trimmed, says "a.pdf".
    error = error_of(post(sim, auth, "person", hand_made("person", [sent], [sent])), 400, "DOKUMENTER_STEMMER_IKKE")
    assert "file part 1 is 'a.pdf'" in error["message"] and error["errorJson"]["filer"] == ["a.pdf"]


def test_a_trimmed_filename_that_then_matches_is_accepted(sim, auth):
    response = post(sim, auth, "person", hand_made("person", ["a.pdf"], [" a.pdf\t"]))
    assert response.status_code == 200, response.text
    assert [d.filnavn for d in sim.get(response.json()["id"]).documents] == ["a.pdf"]


def test_nhn_keeps_the_trimmed_name(sim, auth):
    response = post(sim, auth, "nhn", hand_made("nhn", ["epikrise.pdf"], ["  epikrise.pdf "]))
    assert response.status_code == 200, response.text
    assert [d.filnavn for d in sim.get(response.json()["id"]).documents] == ["epikrise.pdf"]


def test_unicode_spaces_are_not_trimmed_by_the_simulator(sim, auth):
    error = error_of(
        post(sim, auth, "person", hand_made("person", ["a.pdf"], ["a.pdf\u00a0"])), 400, "DOKUMENTER_STEMMER_IKKE"
    )
    assert error["errorJson"]["filer"] == ["a.pdf\u00a0"]


def test_a_request_over_a_limit_is_read_to_its_end_so_the_answer_arrives(sim, auth):
    # The parser stops at the first part over the limit; the rest of the body is drained.
    body = hand_made("person", [name_for(513, "person", form="nfc"), *many(30)])
    error_of(post(sim, auth, "person", body), 413, "FOR_STORT_DELHODE")
    assert post(sim, auth, "person", hand_made("person", many(2))).status_code == 200  # the connection pool is fine


# --- the simulator through the client, without the pre-send rules ---------------------------


@pytest.mark.svarut_simulator(max_part_count=MAX_PART_COUNT)
def test_without_the_rules_the_client_hears_what_spring_boot_answers(svarut_simulator):
    with svarut_simulator.simulator.client(validate=False) as client:
        with pytest.raises(PayloadTooLargeError) as too_big:
            client.send_til_person(
                konto_id=svarut_simulator.konto_id, **send_kwargs("person", [name_for(513, "person", form="nfc")])
            )
        assert too_big.value.status_code == 413 and too_big.value.error_code == "FOR_STORT_DELHODE"
        # A 500 after the whole body: the client cannot know SvarUt refused it, which is why the rule exists.
        with pytest.raises(SendOutcomeUnknownError):
            client.send_til_person(konto_id=svarut_simulator.konto_id, **send_kwargs("person", many(50)))
    assert svarut_simulator.received == []


@pytest.mark.anyio
async def test_the_async_client_with_the_rules_sends_nothing_the_simulator_would_refuse(svarut_simulator):
    async with svarut_simulator.async_client() as client:
        for names in (many(50), [name_for(513, "person", form="nfd")], [" brev.pdf"]):
            with pytest.raises(ForsendelseValidationError):
                await client.send_til_person(konto_id=svarut_simulator.konto_id, **send_kwargs("person", names))
        await client.send_til_person(konto_id=svarut_simulator.konto_id, **send_kwargs("person", many(49)))
    assert [r.operation for r in svarut_simulator.requests if r.operation == "send"] == ["send"]
    assert len(svarut_simulator.received) == 1


# --- the reader on its own -------------------------------------------------------------------


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._at = 0

    def read(self, n: int = -1, /) -> bytes:
        chunk = bytes(self._data[self._at : self._at + n])
        self._at += len(chunk)
        return chunk

    def readline(self, limit: int = -1, /) -> bytes:
        raise AssertionError("not chunked")


def read_all(body: bytes, **limits: int | None) -> list[str | None]:
    reader = MultipartReader(
        BodyReader(_Bytes(body), content_length=len(body), chunked=False), BOUNDARY, chunk_size=7, **limits
    )
    names = []
    while (part := reader.next_part()) is not None:
        names.append(part.filename)
    return names


def test_the_reader_counts_parts_and_header_bytes_exactly():
    body = hand_made("person", [name_for(512, "person", form="nfc"), *many(48)])
    assert len(read_all(body, max_part_count=50, max_part_header_size=512)) == 50
    with pytest.raises(PartLimitError) as info:
        read_all(body, max_part_count=49)
    assert (info.value.limit, info.value.permitted, info.value.actual) == ("part_count", 49, 50)
    with pytest.raises(PartLimitError) as info:
        read_all(body, max_part_header_size=511)
    assert (info.value.limit, info.value.permitted, info.value.actual) == ("part_header_size", 511, 512)
    # A header section that does not end within the limit is refused without waiting for its end.
    with pytest.raises(PartLimitError) as info:
        read_all(body, max_part_header_size=100)
    assert info.value.limit == "part_header_size" and info.value.actual is None
