"""Properties of ForsendelseRules: every valid forsendelse passes, and breaking
one rule of a valid forsendelse is always reported under that rule's id.

Valid forsendelser are built from the models (person, organisasjon, print,
NHN) with valid identifiers, 1-5 PDF documents with unique safe filenames and
any of the optional fields, then serialized as a client would send them.
"""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svarut import models
from svarut.errors import ForsendelseValidationError
from svarut.runtime.client import PreparedSend
from svarut.runtime.files import Source
from svarut.runtime.multipart import Document
from svarut.runtime.validation import FILENAME_MAX_LENGTH, ForsendelseRules, valid_fodselsnummer

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
RULES = {env: ForsendelseRules(environment=env, now=lambda: NOW) for env in ("test", "prod")}
PDF = "application/pdf"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
FORBIDDEN = '*:"\\/<>|?\x00\x1f\x7f'

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)


# --- identifiers, computed independently of the code under test --------------------


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    k = 11 - sum(int(c) * w for c, w in zip(digits, weights, strict=True)) % 11
    return None if k == 10 else k % 11


def _fnr_from(born: date, individ: int, d_nummer: bool, synthetic: bool) -> str:
    day = born.day + 40 * d_nummer
    month = born.month + 80 * synthetic
    for i in range(individ, individ + 1000):
        first9 = f"{day:02d}{month:02d}{born.year % 100:02d}{i % 1000:03d}"
        k1 = _mod11(first9, (3, 7, 6, 1, 8, 9, 4, 5, 2))
        k2 = None if k1 is None else _mod11(f"{first9}{k1}", (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
        if k1 is not None and k2 is not None:
            return f"{first9}{k1}{k2}"
    raise AssertionError("unreachable")


def _orgnr_from(n: int) -> str:
    while (k := _mod11(str(n), (3, 2, 7, 6, 5, 4, 3, 2))) is None:
        n += 1
    return f"{n}{k}"


def fnrs(synthetic: bool) -> st.SearchStrategy[str]:
    return st.builds(
        _fnr_from,
        st.dates(date(1900, 1, 1), date(2039, 12, 31)),
        st.integers(0, 999),
        st.booleans(),
        st.just(False) if not synthetic else st.booleans(),
    )


orgnrs = st.integers(80_000_000, 99_999_998).map(_orgnr_from)


@given(st.one_of(st.text("0123456789", min_size=11, max_size=11), fnrs(True), fnrs(False)), st.booleans())
@SETTINGS
def test_fodselsnummer_agrees_with_an_independent_implementation(number, synthetic):
    day, month = int(number[:2]), int(number[2:4])
    day -= 40 * (day > 40)
    month -= 80 * (synthetic and month > 80)
    # k1: until 2031 the control digit itself; from 2032 (Skatteetaten: Nytt fødselsnummer fra 2032)
    # any digit that leaves the weighted sum with remainder 0-3. k2: as always.
    r1 = (sum(int(c) * w for c, w in zip(number[:9], (3, 7, 6, 1, 8, 9, 4, 5, 2), strict=True)) + int(number[9])) % 11
    expected = (
        1 <= day <= 31
        and 1 <= month <= 12
        and (_mod11(number[:9], (3, 7, 6, 1, 8, 9, 4, 5, 2)) == int(number[9]) or r1 in (0, 1, 2, 3))
        and _mod11(number[:10], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)) == int(number[10])
    )
    assert valid_fodselsnummer(number, synthetic=synthetic) is expected


# --- valid forsendelser -----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A send before it is prepared: the serialized metadata and (filnavn, mime, content) per document."""

    operation: str
    metadata: dict[str, Any]
    documents: tuple[tuple[str, str, bytes], ...]
    environment: str

    def prepared(self) -> PreparedSend:
        docs = tuple(Document(n, m, Source(c, label=n)) for n, m, c in self.documents)
        return PreparedSend(self.operation, self.metadata, docs)

    def problems(self) -> list[tuple[str, str]]:
        return [(p.field, p.rule) for p in RULES[self.environment].problems(self.prepared())]


safe_names = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=FORBIDDEN),
    min_size=1,
    max_size=FILENAME_MAX_LENGTH - 4,
).map(lambda stem: stem + ".pdf")
pdf_contents = st.binary(max_size=64).map(lambda tail: b"%PDF-1." + tail)
# Encrypted: a CMS EnvelopedData header (SEQUENCE, OID 1.2.840.113549.1.7.3), then anything.
CMS_HEAD = b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03"
cms_contents = st.binary(max_size=64).map(lambda tail: CMS_HEAD + tail)
adresse = models.Adresse(adresselinje1="Storgata 1", postnummer="0155", poststed="Oslo")


@st.composite
def svar_sendes_til(draw: st.DrawFn, environment: str) -> models.SvarSendesTil:
    type_, digital_id = draw(
        st.one_of(
            st.tuples(st.just("PERSON"), fnrs(environment == "test")),
            st.tuples(st.just("ORGANISASJON"), orgnrs),
            st.tuples(st.just("NHN_MOTTAKER"), st.integers(1, 99_999_999).map(str)),
        )
    )
    return models.SvarSendesTil(navn="Svar", type=type_, digital_id=digital_id, adresse=adresse)


ALL_OPERATIONS = ("sendTilPerson", "sendTilOrganisasjon", "sendTilPrint", "sendTilNhn")


@st.composite
def valid_cases(draw: st.DrawFn, operations: tuple[str, ...] = ALL_OPERATIONS, may_encrypt: bool = True) -> Case:
    environment = draw(st.sampled_from(["test", "prod"]))
    operation = draw(st.sampled_from(operations))
    kryptert = may_encrypt and draw(st.booleans())
    contents = cms_contents if kryptert else pdf_contents
    synthetic = environment == "test"
    count = 1 if operation == "sendTilNhn" else draw(st.integers(1, 5))
    names = draw(
        st.lists(safe_names, min_size=count, max_size=count, unique_by=lambda n: unicodedata.normalize("NFC", n))
    )
    documents = [(name, PDF, draw(contents)) for name in names]
    fields: dict[str, Any] = {"tittel": "Tittel", "kryptert": kryptert}

    if operation in ("sendTilPerson", "sendTilOrganisasjon", "sendTilNhn"):
        if draw(st.booleans()):
            fields["eksponert_for"] = draw(st.lists(st.one_of(fnrs(synthetic), orgnrs), max_size=3, unique=True))
        if draw(st.booleans()):
            fields["kun_digital_levering"] = draw(st.booleans())
    if operation != "sendTilNhn" and draw(st.booleans()):
        fields["svar_sendes_til"] = draw(svar_sendes_til(environment))

    if operation == "sendTilNhn":
        her_id = draw(st.booleans())
        fields |= {
            "mottakertype": "HER_ID" if her_id else "FASTLEGE",
            "avsender_kontakt": models.NhnAvsenderKontakt(fornavn="Ola", etternavn="Lege", telefonnummer="12345678"),
            "pasient": models.NhnPasient(fodselsnummer=draw(fnrs(synthetic)), fornavn="Kari", etternavn="N"),
        }
        if her_id:
            fields["mottaker_her_id"] = draw(st.integers(1, 99_999_999))
        forsendelse: Any = models.NhnForsendelse(**fields)
    elif operation == "sendTilPrint":
        fields["dokumenter"] = [models.PrintDokument(filnavn=n, mime_type=m) for n, m, _ in documents]
        forsendelse = models.PrintForsendelse(mottaker=models.Postadresse(navn="Kari", adresse=adresse), **fields)
    else:
        person = operation == "sendTilPerson"
        digital_id = draw(fnrs(synthetic) if person else orgnrs)
        fields["mottaker"] = models.Mottaker(navn="Mottaker", digital_id=digital_id)
        if fields.get("svar_sendes_til") and fields["svar_sendes_til"].type == "ORGANISASJON":
            fields["kan_svare_via_edialog"] = draw(st.booleans())
        fields["sikkerhetsniva"] = draw(st.sampled_from([None, "BETYDELIG", *(["HOYESTE"] * kryptert)]))
        dokument = models.PersonDokument if person else models.OrganisasjonDokument
        dokumenter = [dokument(filnavn=n, mime_type=m) for n, m, _ in documents]
        if draw(st.booleans()):  # a non-PDF attachment, kept out of print
            dokumenter.append(dokument(filnavn="kart.png", mime_type="image/png", skal_ekskluderes_fra_utskrift=True))
            documents.append(("kart.png", "image/png", draw(cms_contents) if kryptert else PNG_BYTES))
        if person and draw(st.booleans()):
            dokumenter[draw(st.integers(0, count - 1))].skal_signeres = True
            expires = NOW + timedelta(days=1, seconds=draw(st.integers(0, 400 * 86400)))
            fields["signering"] = models.PersonSignering(
                signering_utloper=expires, signatur_type="AUTENTISERT_SIGNATUR"
            )
        fields["dokumenter"] = dokumenter
        forsendelse = (models.PersonForsendelse if person else models.OrganisasjonForsendelse)(**fields)

    metadata = forsendelse.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if operation == "sendTilNhn":
        names_in_order = [name for name, _, _ in documents]
    else:
        names_in_order = [item["filnavn"] for item in metadata["dokumenter"]]
    by_name = {name: (name, mime, content) for name, mime, content in documents}
    return Case(operation, metadata, tuple(by_name[name] for name in names_in_order), environment)


@given(valid_cases())
@SETTINGS
def test_valid_forsendelser_pass(case):
    assert case.problems() == []


# --- one rule broken -----------------------------------------------------------------


def _set_doc(
    case: Case,
    index: int,
    *,
    name: str | None = None,
    mime: str | None = None,
    content: bytes | None = None,
    **meta: Any,
) -> Case:
    """``case`` with document ``index`` changed, in the metadata and on the wire alike."""
    metadata = copy.deepcopy(case.metadata)
    old_name, old_mime, old_content = case.documents[index]
    documents = list(case.documents)
    documents[index] = (name or old_name, mime or old_mime, old_content if content is None else content)
    if case.operation != "sendTilNhn":
        item = metadata["dokumenter"][index]
        item.update({"filnavn": documents[index][0], "mimeType": documents[index][1]})
        for key, value in meta.items():
            if value is None:
                item.pop(key, None)
            else:
                item[key] = value
    return replace(case, metadata=metadata, documents=tuple(documents))


def _with(case: Case, **fields: Any) -> Case:
    metadata = {k: v for k, v in {**copy.deepcopy(case.metadata), **fields}.items() if v is not None}
    return replace(case, metadata=metadata)


def _identifiers(case: Case) -> list[tuple[str, Any]]:
    """Where ``case`` has a fødselsnummer or organisasjonsnummer: (parent, key) in the metadata."""
    targets: list[tuple[str, Any]] = []
    if case.operation in ("sendTilPerson", "sendTilOrganisasjon"):
        targets.append(("mottaker", "digitalId"))
    if case.operation == "sendTilNhn":
        targets.append(("pasient", "fodselsnummer"))
    if case.metadata.get("svarSendesTil", {}).get("type") in ("PERSON", "ORGANISASJON"):
        targets.append(("svarSendesTil", "digitalId"))
    return targets + [("eksponertFor", i) for i in range(len(case.metadata.get("eksponertFor", [])))]


def corrupt_digit(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    parent, key = draw(st.sampled_from(_identifiers(case)))
    metadata = copy.deepcopy(case.metadata)
    number: str = metadata[parent][key]
    position, delta = draw(st.integers(0, len(number) - 1)), draw(st.integers(1, 9))
    metadata[parent][key] = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    return replace(case, metadata=metadata), "fodselsnummer" if len(number) == 11 else "organisasjonsnummer"


def duplicate_filename(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    if len(case.documents) == 1:
        metadata = copy.deepcopy(case.metadata)
        metadata["dokumenter"].append(copy.deepcopy(metadata["dokumenter"][0]))
        return replace(case, metadata=metadata, documents=case.documents * 2), "filename_unique"
    i, j = draw(st.lists(st.integers(0, len(case.documents) - 1), min_size=2, max_size=2, unique=True))
    return _set_doc(case, j, name=case.documents[i][0]), "filename_unique"


def forbidden_char(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    index = draw(st.integers(0, len(case.documents) - 1))
    name = case.documents[index][0]
    at = draw(st.integers(0, len(name)))
    return _set_doc(case, index, name=name[:at] + draw(st.sampled_from(FORBIDDEN)) + name[at:]), "filename_chars"


def non_pdf(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    index = draw(st.integers(0, len(case.documents) - 1))
    broken = _set_doc(case, index, mime="image/png", content=PNG_BYTES, skalEkskluderesFraUtskrift=None)
    rule = {"sendTilPrint": "print_pdf", "sendTilNhn": "nhn_pdf"}.get(case.operation, "printable")
    return (_with(broken, kunDigitalLevering=None) if rule == "printable" else broken), rule


def two_signed(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    signering = {"signeringUtloper": (NOW + timedelta(days=2)).isoformat(), "signaturType": "AVANSERT_SIGNATUR"}
    case = _with(case, signering=signering)
    if len(case.documents) == 1:
        case = duplicate_filename(case, draw)[0]
        case = _set_doc(case, 1, name="x" + case.documents[0][0][: FILENAME_MAX_LENGTH - 1])
    i, j = draw(st.lists(st.integers(0, len(case.documents) - 1), min_size=2, max_size=2, unique=True))
    return _set_doc(_set_doc(case, i, skalSigneres=True), j, skalSigneres=True), "single_signature"


def hoyeste_without_kryptert(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    return _with(
        case, sikkerhetsniva="HOYESTE", kryptert=draw(st.sampled_from([False, None]))
    ), "hoyeste_requires_kryptert"


def edialog_without_org(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    svar = case.metadata.get("svarSendesTil")
    if svar is not None and draw(st.booleans()):
        changed = {**svar, "type": draw(st.sampled_from(["PERSON", "NHN_MOTTAKER"])), "digitalId": "8142519"}
        if changed["type"] == "PERSON":
            changed["digitalId"] = _fnr_from(date(1980, 1, 1), 1, False, False)
        return _with(case, kanSvareViaEdialog=True, svarSendesTil=changed), "edialog_requires_org"
    return _with(case, kanSvareViaEdialog=True, svarSendesTil=None), "edialog_requires_org"


def nfc_twin(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    """Two documents whose names differ only in Unicode normalisation."""
    stem = draw(st.sampled_from(["Påklage", "Vedtak é", "Ærlig Åse", "Cafe\u0301"]))
    case = _set_doc(case, 0, name=unicodedata.normalize("NFC", stem) + ".pdf")
    if len(case.documents) == 1:
        metadata = copy.deepcopy(case.metadata)
        metadata["dokumenter"].append(copy.deepcopy(metadata["dokumenter"][0]))
        case = replace(case, metadata=metadata, documents=case.documents * 2)
    index = draw(st.integers(1, len(case.documents) - 1))
    return _set_doc(case, index, name=unicodedata.normalize("NFD", stem) + ".pdf"), "filename_unique"


def plaintext_marked_kryptert(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    index = draw(st.integers(0, len(case.documents) - 1))
    return _set_doc(_with(case, kryptert=True), index, content=b"%PDF-1.7 plain"), "kryptert_requires_cms"


def wrong_magic(case: Case, draw: st.DrawFn) -> tuple[Case, str]:
    index = draw(st.integers(0, len(case.documents) - 1))
    content = draw(st.one_of(st.just(PNG_BYTES), st.binary(max_size=32).filter(lambda b: not b.startswith(b"%PDF-"))))
    wanted = b"%PDF-" if case.documents[index][1] == PDF else b"\x89PNG\r\n\x1a\n"
    if content.startswith(wanted):
        content = b"\x00" + content
    return _set_doc(case, index, content=content), "content_mismatch"


DIRECT = ("sendTilPerson", "sendTilOrganisasjon")
# Each mutation, and the valid forsendelser it applies to: (operations, whether they may be kryptert).
MUTATIONS = {
    corrupt_digit: ((*DIRECT, "sendTilNhn"), True),
    duplicate_filename: ((*DIRECT, "sendTilPrint"), True),
    nfc_twin: ((*DIRECT, "sendTilPrint"), True),
    plaintext_marked_kryptert: (ALL_OPERATIONS, True),
    forbidden_char: (ALL_OPERATIONS, True),
    non_pdf: (ALL_OPERATIONS, True),
    two_signed: (("sendTilPerson",), True),
    hoyeste_without_kryptert: (DIRECT, True),
    edialog_without_org: (DIRECT, True),
    wrong_magic: (ALL_OPERATIONS, False),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=lambda mutation: mutation.__name__)
@given(data=st.data())
@settings(SETTINGS, max_examples=40)
def test_breaking_one_rule_is_reported_under_its_id(mutation, data):
    operations, may_encrypt = MUTATIONS[mutation]
    case, rule = mutation(data.draw(valid_cases(operations, may_encrypt)), data.draw)
    problems = case.problems()
    assert rule in [r for _, r in problems], problems
    with pytest.raises(ForsendelseValidationError) as info:
        RULES[case.environment](case.prepared())
    assert [(p.field, p.rule) for p in info.value.problems] == problems
