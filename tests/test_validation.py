"""ForsendelseRules: every rule with a case that passes and one that breaks
exactly that rule, all problems collected into one error, and the check wired
into a client so a bad forsendelse never reaches the server.

The fødselsnumre are computed here, from a date and an individual number, by
an implementation of the control-digit algorithm that shares no code with the
one under test.
"""

from __future__ import annotations

import io
import os
import subprocess
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import svarut
from svarut import File, models
from svarut.errors import ForsendelseValidationError
from svarut.kryptering import SvarUtSertifikat, encrypt_path
from svarut.runtime import validation
from svarut.runtime.client import PreparedSend
from svarut.runtime.files import FileSource, Source
from svarut.runtime.multipart import Document
from svarut.runtime.validation import (
    FILENAME_MAX_LENGTH,
    NHN_MAX_BYTES,
    TOTAL_MAX_BYTES,
    ForsendelseRules,
    fodselsnummer_problem,
    valid_fodselsnummer,
    valid_organisasjonsnummer,
)
from svarut.simulator.keys import generate_key_pair

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
RULES = ForsendelseRules(now=lambda: NOW)
TEST_RULES = ForsendelseRules(environment="test", now=lambda: NOW)

PDF = "application/pdf"
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\ntrailer\n<< >>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(13)
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
DOCX_BYTES = b"PK\x03\x04\x14\x00\x06\x00" + bytes(20)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# The start of a CMS ContentInfo: SEQUENCE (2-byte length), OID 1.2.840.113549.1.7.3 (envelopedData).
CMS_HEAD = b"\x30\x82\x01\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x82" + bytes(16)

SAMPLES = {PDF: PDF_BYTES, "image/png": PNG_BYTES, "image/jpeg": JPEG_BYTES, DOCX: DOCX_BYTES}

ORGNR = "974760673"  # Brønnøysundregistrene
ORGNR_NAV = "889640782"  # NAV


# --- fødselsnumre, computed independently ------------------------------------


def control_digits(first9: str) -> str | None:
    """k1 and k2 for the first nine digits, or None when either would be 10."""
    out = ""
    for weights in ((3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)):
        digits = first9 + out
        k = 11 - sum(int(c) * w for c, w in zip(digits, weights, strict=False)) % 11
        if k == 10:
            return None
        out += str(0 if k == 11 else k)
    return out


def make_fnr(born: date, individ: int, *, d_nummer: bool = False, synthetic: bool = False) -> str:
    """The fødselsnummer for ``born`` with the first usable individual number from ``individ`` on."""
    day = born.day + (40 if d_nummer else 0)
    month = born.month + (80 if synthetic else 0)
    for i in range(individ, individ + 1000):
        first9 = f"{day:02d}{month:02d}{born.year % 100:02d}{i % 1000:03d}"
        if (k := control_digits(first9)) is not None:
            return first9 + k
    raise AssertionError("unreachable")


FNR = make_fnr(date(1985, 3, 17), 123)
FNR_2 = make_fnr(date(2004, 12, 31), 567)
DNR = make_fnr(date(1990, 7, 1), 234, d_nummer=True)
TENOR = make_fnr(date(1970, 1, 15), 401, synthetic=True)
# Skatteetaten's synthetic (Tenor) test persons, as published in NAV's open-source tests
# (navikt/bidrag: PersonIdentTest): a fødselsnummer and a d-nummer, month + 80.
PUBLISHED_TENOR = ("21883649874", "61883600222", "17912099997", "29822099635")
# The worked example of fnrinfo.no ("Beregning av kontrollsiffer"): 311299567 -> 15.
WORKED_EXAMPLE = "31129956715"


def corrupt(number: str, position: int = -1) -> str:
    digits = list(number)
    digits[position] = str((int(digits[position]) + 1) % 10)
    return "".join(digits)


def test_computed_numbers_have_the_expected_shape():
    assert FNR.startswith("170385") and DNR.startswith("410790") and TENOR.startswith("158170")
    assert control_digits("311299567") == "15"


@pytest.mark.parametrize("number", [FNR, FNR_2, DNR, WORKED_EXAMPLE])
def test_fodselsnummer_and_d_nummer_are_valid(number):
    assert valid_fodselsnummer(number)
    assert valid_fodselsnummer(number, synthetic=True)


@pytest.mark.parametrize("number", [TENOR, *PUBLISHED_TENOR])
def test_synthetic_tenor_numbers_are_valid_only_when_asked_for(number):
    assert valid_fodselsnummer(number, synthetic=True)
    assert not valid_fodselsnummer(number)
    assert "synthetic" in (fodselsnummer_problem(number) or "")


@pytest.mark.parametrize("number", [FNR, DNR, TENOR, WORKED_EXAMPLE, ORGNR, ORGNR_NAV])
def test_every_single_digit_change_is_caught(number):
    check = valid_organisasjonsnummer if len(number) == 9 else lambda n: valid_fodselsnummer(n, synthetic=True)
    assert check(number)
    for position in range(len(number)):
        for delta in range(1, 10):
            digits = list(number)
            digits[position] = str((int(digits[position]) + delta) % 10)
            assert not check("".join(digits)), (position, delta)


def _orgnr_remainder(first8: str) -> int:
    return sum(int(c) * w for c, w in zip(first8, (3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11


def test_no_orgnr_control_digit_exists_when_the_remainder_is_1():
    first8 = next(s for s in (str(n) for n in range(97476000, 97477000)) if _orgnr_remainder(s) == 1)
    assert not any(valid_organisasjonsnummer(first8 + str(k)) for k in range(10))


# --- fødselsnumre issued from 2032 (Skatteetaten: Nytt fødselsnummer fra 2032) ---------------

W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def valid_until_2031(number: str) -> bool:
    return control_digits(number[:9]) == number[9:]


def valid_from_2032(number: str) -> bool:
    """k1: the weighted sum of the first 9 digits plus k1 has remainder 0-3; k2 as before."""
    r1 = (sum(int(c) * w for c, w in zip(number[:9], W1, strict=True)) + int(number[9])) % 11
    r2 = (sum(int(c) * w for c, w in zip(number[:10], W2, strict=True)) + int(number[10])) % 11
    return r1 in (0, 1, 2, 3) and r2 == 0


def every_ending(first6: str, individuals: range = range(100)) -> list[str]:
    """Every number with this date part, individual numbers and control digits: brute force."""
    return [f"{first6}{i:03d}{k1}{k2}" for i in individuals for k1 in range(10) for k2 in range(10)]


@pytest.mark.parametrize("first6", ["170385", "311232", "410790", "290232"], ids=["fnr", "2032", "d-nummer", "leap"])
def test_fodselsnummer_accepts_the_old_rule_or_the_2032_rule_and_nothing_else(first6):
    numbers = every_ending(first6)
    old = {n for n in numbers if valid_until_2031(n)}
    new_only = {n for n in numbers if valid_from_2032(n)} - old
    neither = set(numbers) - old - new_only
    assert old and new_only and neither  # each kind exists, so the loop below checks all three
    for number in numbers:
        assert valid_fodselsnummer(number) is (number in old or number in new_only), number
    assert all("control digits" in (fodselsnummer_problem(n) or "") for n in sorted(neither)[:50])


def test_a_number_valid_only_under_the_2032_rule_has_a_k1_the_old_rule_refuses():
    number = next(n for n in every_ending("010132") if valid_from_2032(n) and not valid_until_2031(n))
    assert control_digits(number[:9]) != number[9:]
    assert valid_fodselsnummer(number)
    assert not valid_fodselsnummer(corrupt(number))


NEW_ONLY_FNR = next(n for n in every_ending("150632") if valid_from_2032(n) and not valid_until_2031(n))
NEITHER_FNR = next(n for n in every_ending("150632") if not valid_from_2032(n) and not valid_until_2031(n))


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("", "11 digits"),
        ("1703851234", "11 digits"),
        ("170385123456", "11 digits"),
        ("17038512a45", "11 digits"),
        ("١٧٠٣٨٥١٢٣٤٥", "11 digits"),  # Arabic-Indic digits are digits to str.isdigit, not to SvarUt
        ("00" + FNR[2:], "date"),
        ("32" + FNR[2:], "date"),
        ("72" + FNR[2:], "date"),
        (FNR[:2] + "13" + FNR[4:], "date"),
        (FNR[:2] + "00" + FNR[4:], "date"),
        (FNR[:2] + "43" + FNR[4:], "date"),  # H-nummer / NAV synthetic: month + 40
        ("15507600333", "date"),  # NAV (Dolly) synthetic, month + 40
        (corrupt(FNR), "control"),
        (corrupt(FNR, 9), "control"),
    ],
)
def test_invalid_fodselsnummer_says_why(number, why):
    assert not valid_fodselsnummer(number, synthetic=True)
    assert why in (fodselsnummer_problem(number, synthetic=True) or "")


@pytest.mark.parametrize("number", ["", "97476067", "9747606730", "97476067a", corrupt(ORGNR), corrupt(ORGNR_NAV, 0)])
def test_invalid_organisasjonsnummer(number):
    assert not valid_organisasjonsnummer(number)


def test_helpers_reject_non_strings():
    assert not valid_fodselsnummer(17038512345)  # type: ignore[arg-type]
    assert not valid_organisasjonsnummer(None)  # type: ignore[arg-type]


# --- building sends -------------------------------------------------------------

OPERATIONS = {
    models.PersonForsendelse: "sendTilPerson",
    models.OrganisasjonForsendelse: "sendTilOrganisasjon",
    models.PrintForsendelse: "sendTilPrint",
    models.NhnForsendelse: "sendTilNhn",
}


def prepared(forsendelse: BaseModel, contents: dict[str, FileSource] | None = None) -> PreparedSend:
    """The send a client would prepare: metadata as serialized, documents in metadata order."""
    metadata = forsendelse.model_dump(mode="json", by_alias=True, exclude_unset=True)
    contents = contents or {}
    documents = tuple(
        Document(name, mime, Source(contents.get(name, SAMPLES.get(mime.split(";")[0].lower(), b"data")), label=name))
        for name, mime in ((item["filnavn"], item["mimeType"]) for item in metadata.get("dokumenter") or [])
    )
    return PreparedSend(OPERATIONS[type(forsendelse)], metadata, documents)


def raw(operation: str, metadata: dict[str, Any], *documents: tuple[str, str, FileSource]) -> PreparedSend:
    """A send built by hand, for what the models themselves would not let through."""
    return PreparedSend(operation, metadata, tuple(Document(n, m, Source(c, label=n)) for n, m, c in documents))


def pdoc(filnavn: str = "brev.pdf", mime_type: str = PDF, **fields: Any) -> models.PersonDokument:
    return models.PersonDokument(filnavn=filnavn, mime_type=mime_type, **fields)


def person(*dokumenter: models.PersonDokument, **fields: Any) -> models.PersonForsendelse:
    values = {"tittel": "Vedtak", "mottaker": models.Mottaker(navn="Kari Nordmann", digital_id=FNR)}
    return models.PersonForsendelse(**{**values, "dokumenter": list(dokumenter) or [pdoc()], **fields})


def organisasjon(*dokumenter: models.OrganisasjonDokument, **fields: Any) -> models.OrganisasjonForsendelse:
    values = {"tittel": "Melding", "mottaker": models.Mottaker(navn="Brreg", digital_id=ORGNR)}
    docs = list(dokumenter) or [models.OrganisasjonDokument(filnavn="brev.pdf", mime_type=PDF)]
    return models.OrganisasjonForsendelse(**{**values, "dokumenter": docs, **fields})


def print_(*mime_types: str, names: list[str] | None = None, **fields: Any) -> models.PrintForsendelse:
    mime_types = mime_types or (PDF,) * len(names or ["side0"])
    names = names or [f"side{i}" for i in range(len(mime_types))]
    docs = [models.PrintDokument(filnavn=n, mime_type=m) for n, m in zip(names, mime_types, strict=True)]
    adresse = models.Adresse(adresselinje1="Storgata 1", postnummer="0155", poststed="Oslo")
    mottaker = models.Postadresse(navn="Kari Nordmann", adresse=adresse)
    return models.PrintForsendelse(**{"tittel": "Brev", "mottaker": mottaker, "dokumenter": docs, **fields})


def nhn_forsendelse(**fields: Any) -> models.NhnForsendelse:
    values = {
        "tittel": "Epikrise",
        "mottakertype": models.NhnMottakertype.FASTLEGE,
        "avsender_kontakt": models.NhnAvsenderKontakt(fornavn="Ola", etternavn="Lege", telefonnummer="12345678"),
        "pasient": models.NhnPasient(fodselsnummer=FNR, fornavn="Kari", etternavn="Nordmann"),
    }
    return models.NhnForsendelse(**{**values, **fields})


def nhn(*documents: tuple[str, str, FileSource], **fields: Any) -> PreparedSend:
    metadata = nhn_forsendelse(**fields).model_dump(mode="json", by_alias=True, exclude_unset=True)
    return raw("sendTilNhn", metadata, *(documents or [("epikrise.pdf", PDF, PDF_BYTES)]))


def svar(type_: str, digital_id: str, adresse: models.Adresse | None = None) -> models.SvarSendesTil:
    adresse = adresse or models.Adresse(adresselinje1="Rådhuset", poststed="Oslo")
    return models.SvarSendesTil(navn="Svar", type=type_, digital_id=digital_id, adresse=adresse)


def adresse(postnummer: str, landkode: str | None = None) -> models.Adresse:
    extra = {"landkode": landkode} if landkode is not None else {}
    return models.Adresse(adresselinje1="Storgata 1", postnummer=postnummer, poststed="Oslo", **extra)


def postadresse(postnummer: str, landkode: str | None = None) -> models.Postadresse:
    return models.Postadresse(navn="Kari Nordmann", adresse=adresse(postnummer, landkode))


def signering(expires: datetime) -> models.PersonSignering:
    return models.PersonSignering(signering_utloper=expires, signatur_type=models.PersonSignaturType.AVANSERT_SIGNATUR)


def sparse(path: Path, size: int, head: bytes = PDF_BYTES) -> Path:
    """A file of ``size`` bytes that takes no disk space (only its size is looked at)."""
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def found(send: PreparedSend, rules: ForsendelseRules = RULES) -> list[tuple[str, str]]:
    return [(p.field, p.rule) for p in rules.problems(send)]


# --- each rule: a send that passes, and one that breaks only that rule -------------

SIGNED = pdoc(skal_signeres=True)
IN_A_DAY = signering(NOW + timedelta(days=1))

RULE_CASES = [
    # fødselsnummer / d-nummer
    pytest.param(
        person(),
        person(mottaker=models.Mottaker(navn="Kari", digital_id=corrupt(FNR))),
        [("mottaker.digitalId", "fodselsnummer")],
        id="person-mottaker",
    ),
    pytest.param(
        person(mottaker=models.Mottaker(navn="Kari", digital_id=DNR)),
        person(mottaker=models.Mottaker(navn="Kari", digital_id=ORGNR)),
        [("mottaker.digitalId", "fodselsnummer")],
        id="person-mottaker-d-nummer-not-orgnr",
    ),
    pytest.param(
        nhn(),
        nhn(pasient=models.NhnPasient(fodselsnummer=corrupt(FNR, 0), fornavn="Kari", etternavn="N")),
        [("pasient.fodselsnummer", "fodselsnummer")],
        id="nhn-pasient",
    ),
    pytest.param(
        person(svar_sendes_til=svar("PERSON", FNR_2)),
        person(svar_sendes_til=svar("PERSON", corrupt(FNR_2))),
        [("svarSendesTil.digitalId", "fodselsnummer")],
        id="svar-person",
    ),
    pytest.param(
        print_(svar_sendes_til=svar("ORGANISASJON", ORGNR_NAV)),
        print_(svar_sendes_til=svar("ORGANISASJON", corrupt(ORGNR_NAV))),
        [("svarSendesTil.digitalId", "organisasjonsnummer")],
        id="svar-organisasjon",
    ),
    pytest.param(
        organisasjon(svar_sendes_til=svar("NHN_MOTTAKER", "8142519")),
        organisasjon(svar_sendes_til=svar("ORGANISASJON", "8142519")),
        [("svarSendesTil.digitalId", "organisasjonsnummer")],
        id="svar-her-id-only-for-nhn-mottaker",
    ),
    pytest.param(
        person(eksponert_for=[FNR_2, ORGNR, DNR]),
        person(eksponert_for=[FNR_2, corrupt(ORGNR), DNR]),
        [("eksponertFor[1]", "organisasjonsnummer")],
        id="eksponert-for-orgnr",
    ),
    pytest.param(
        nhn(eksponert_for=[ORGNR_NAV]),
        nhn(eksponert_for=[ORGNR_NAV, corrupt(DNR)]),
        [("eksponertFor[1]", "fodselsnummer")],
        id="eksponert-for-fnr",
    ),
    pytest.param(
        organisasjon(eksponert_for=[FNR]),
        organisasjon(eksponert_for=["12345"]),
        [("eksponertFor[0]", "organisasjonsnummer")],
        id="eksponert-for-neither",
    ),
    # organisasjonsnummer
    pytest.param(
        organisasjon(mottaker=models.Mottaker(navn="NAV", digital_id=ORGNR_NAV)),
        organisasjon(mottaker=models.Mottaker(navn="NAV", digital_id=corrupt(ORGNR_NAV))),
        [("mottaker.digitalId", "organisasjonsnummer")],
        id="organisasjon-mottaker",
    ),
    pytest.param(
        organisasjon(),
        organisasjon(mottaker=models.Mottaker(navn="Kari", digital_id=FNR)),
        [("mottaker.digitalId", "organisasjonsnummer")],
        id="organisasjon-mottaker-not-fnr",
    ),
    # filenames
    pytest.param(
        person(pdoc("a.pdf"), pdoc("A.pdf"), pdoc("a.pdf.pdf")),
        person(pdoc("a.pdf"), pdoc("a.pdf")),
        [("dokumenter[1].filnavn", "filename_unique")],
        id="filename-unique",
    ),
    pytest.param(
        person(pdoc("x" * FILENAME_MAX_LENGTH)),
        raw("sendTilPrint", {"dokumenter": [{"filnavn": "x" * 227, "mimeType": PDF}]}, ("x" * 227, PDF, PDF_BYTES)),
        [("dokumenter[0].filnavn", "filename_length")],
        id="filename-length",
    ),
    pytest.param(
        nhn(("e" * FILENAME_MAX_LENGTH, PDF, PDF_BYTES)),
        nhn(("e" * 227, PDF, PDF_BYTES)),
        [("dokument.filnavn", "filename_length")],
        id="filename-length-nhn",
    ),
    pytest.param(
        nhn(("Vedtak (endelig) – Ærlig Øst.pdf", PDF, PDF_BYTES)),
        nhn(("vedtak?.pdf", PDF, PDF_BYTES)),
        [("dokument.filnavn", "filename_chars")],
        id="filename-chars-nhn",
    ),
    # NHN
    pytest.param(
        nhn(),
        nhn(("a.pdf", PDF, PDF_BYTES), ("b.pdf", PDF, PDF_BYTES)),
        [("dokument", "nhn_single_document")],
        id="nhn-single-document",
    ),
    pytest.param(
        nhn(("epikrise.pdf", "Application/PDF", PDF_BYTES)),
        nhn(("bilde.png", "image/png", PNG_BYTES)),
        [("dokument.mimeType", "nhn_pdf")],
        id="nhn-pdf",
    ),
    pytest.param(
        nhn(mottakertype=models.NhnMottakertype.HER_ID, mottaker_her_id=8142519),
        nhn(mottakertype=models.NhnMottakertype.HER_ID),
        [("mottakerHerId", "her_id_required")],
        id="her-id-required",
    ),
    # print and printability
    pytest.param(
        print_(PDF, PDF),
        print_(PDF, "image/png"),
        [("dokumenter[1].mimeType", "print_pdf")],
        id="print-pdf",
    ),
    pytest.param(
        person(pdoc(), pdoc("kart.png", "image/png", skal_ekskluderes_fra_utskrift=True)),
        person(pdoc(), pdoc("kart.png", "image/png")),
        [("dokumenter[1].mimeType", "printable")],
        id="printable-excluded",
    ),
    pytest.param(
        organisasjon(models.OrganisasjonDokument(filnavn="data.zip", mime_type="text/csv"), kun_digital_levering=True),
        organisasjon(models.OrganisasjonDokument(filnavn="data.zip", mime_type="text/csv"), kun_digital_levering=False),
        [("dokumenter[0].mimeType", "printable")],
        id="printable-digital-only",
    ),
    # signing
    pytest.param(
        person(SIGNED, pdoc("vedlegg.pdf"), signering=IN_A_DAY),
        person(SIGNED, pdoc("vedlegg.pdf", skal_signeres=True), signering=IN_A_DAY),
        [("dokumenter[1].skalSigneres", "single_signature")],
        id="single-signature",
    ),
    pytest.param(
        person(SIGNED, pdoc("kart.png", "image/png", skal_ekskluderes_fra_utskrift=True), signering=IN_A_DAY),
        person(
            pdoc(),
            pdoc("kart.png", "image/png", skal_ekskluderes_fra_utskrift=True, skal_signeres=True),
            signering=IN_A_DAY,
        ),
        [("dokumenter[1].skalSigneres", "signature_pdf")],
        id="signature-pdf",
    ),
    pytest.param(
        person(SIGNED, signering=IN_A_DAY),
        person(SIGNED),
        [("signering", "signering_required")],
        id="signering-required",
    ),
    pytest.param(
        person(SIGNED, signering=signering(NOW + timedelta(days=30))),
        person(SIGNED, signering=signering(NOW + timedelta(days=1) - timedelta(seconds=1))),
        [("signering.signeringUtloper", "signering_expiry")],
        id="signering-expiry",
    ),
    pytest.param(
        person(signering=signering((NOW + timedelta(days=1)).astimezone(tz=None))),
        person(SIGNED, signering=signering(NOW - timedelta(days=3))),
        [("signering.signeringUtloper", "signering_expiry")],
        id="signering-expiry-past",
    ),
    # combinations of fields
    pytest.param(
        person(kan_svare_via_edialog=True, svar_sendes_til=svar("ORGANISASJON", ORGNR)),
        person(kan_svare_via_edialog=True),
        [("kanSvareViaEdialog", "edialog_requires_org")],
        id="edialog-without-svar",
    ),
    pytest.param(
        organisasjon(kan_svare_via_edialog=False, svar_sendes_til=svar("PERSON", FNR)),
        organisasjon(kan_svare_via_edialog=True, svar_sendes_til=svar("PERSON", FNR)),
        [("kanSvareViaEdialog", "edialog_requires_org")],
        id="edialog-svar-person",
    ),
    pytest.param(
        prepared(person(sikkerhetsniva=models.Sikkerhetsniva.HOYESTE, kryptert=True), {"brev.pdf": CMS_HEAD}),
        person(sikkerhetsniva=models.Sikkerhetsniva.HOYESTE),
        [("sikkerhetsniva", "hoyeste_requires_kryptert")],
        id="hoyeste-requires-kryptert",
    ),
    pytest.param(
        organisasjon(sikkerhetsniva=models.Sikkerhetsniva.BETYDELIG),
        organisasjon(sikkerhetsniva=models.Sikkerhetsniva.HOYESTE, kryptert=False),
        [("sikkerhetsniva", "hoyeste_requires_kryptert")],
        id="hoyeste-kryptert-false",
    ),
    pytest.param(
        prepared(person(kryptert=True), {"brev.pdf": CMS_HEAD}),
        prepared(person(kryptert=True), {"brev.pdf": PDF_BYTES}),
        [("dokumenter[0]", "kryptert_requires_cms")],
        id="kryptert-requires-cms",
    ),
    pytest.param(
        nhn(("epikrise.pdf", PDF, CMS_HEAD), kryptert=True),
        nhn(("epikrise.pdf", PDF, PNG_BYTES), kryptert=True),
        [("dokument", "kryptert_requires_cms"), ("dokument.mimeType", "content_mismatch")],
        id="kryptert-requires-cms-nhn",
    ),
    pytest.param(
        person(mottaker=models.Mottaker(navn="Kari", digital_id=NEW_ONLY_FNR)),
        person(mottaker=models.Mottaker(navn="Kari", digital_id=NEITHER_FNR)),
        [("mottaker.digitalId", "fodselsnummer")],
        id="fodselsnummer-from-2032",
    ),
    pytest.param(
        person(pdoc("Påklage.pdf"), pdoc("Paklage.pdf")),
        person(pdoc(unicodedata.normalize("NFC", "Påklage.pdf")), pdoc(unicodedata.normalize("NFD", "Påklage.pdf"))),
        [("dokumenter[1].filnavn", "filename_unique")],
        id="filename-unique-nfc",
    ),
    # Tomcat's multipart limits and trimming (edge cases of each kind: tests/test_tomcat_limits.py)
    pytest.param(
        person(pdoc("brev 1.pdf")),
        person(pdoc(" brev 1.pdf")),
        [("dokumenter[0].filnavn", "filename_whitespace")],
        id="filename-whitespace",
    ),
    pytest.param(
        person(*(pdoc(f"brev{i}.pdf") for i in range(49))),
        person(*(pdoc(f"brev{i}.pdf") for i in range(50))),
        [("dokumenter", "part_count")],
        id="part-count",
    ),
    pytest.param(
        person(pdoc("ø" * 207 + "a")),  # a part header of 512 bytes
        person(pdoc("ø" * 208)),  # 513
        [("dokumenter[0].filnavn", "part_header_size")],
        id="part-header-size",
    ),
    # A Norwegian postnummer that lost its leading zero, in every address a forsendelse has
    pytest.param(
        print_(mottaker=postadresse("0150")),
        print_(mottaker=postadresse("150")),
        [("mottaker.adresse.postnummer", "postnummer")],
        id="postnummer-print",
    ),
    pytest.param(
        person(mottaker=models.Mottaker(navn="Kari", digital_id=FNR, adresse=adresse("0150", "NO"))),
        person(mottaker=models.Mottaker(navn="Kari", digital_id=FNR, adresse=adresse("150", "NO"))),
        [("mottaker.adresse.postnummer", "postnummer")],
        id="postnummer-person-landkode-no",
    ),
    pytest.param(
        organisasjon(svar_sendes_til=svar("ORGANISASJON", ORGNR, adresse("0150"))),
        organisasjon(svar_sendes_til=svar("ORGANISASJON", ORGNR, adresse("150"))),
        [("svarSendesTil.adresse.postnummer", "postnummer")],
        id="postnummer-svar-sendes-til",
    ),
    pytest.param(
        print_(svar_sendes_til=svar("ORGANISASJON", ORGNR, adresse("0150"))),
        print_(svar_sendes_til=svar("ORGANISASJON", ORGNR, adresse("015O"))),  # a letter O
        [("svarSendesTil.adresse.postnummer", "postnummer")],
        id="postnummer-print-svar",
    ),
]


@pytest.mark.parametrize(("valid", "invalid", "expected"), RULE_CASES)
def test_rule(valid, invalid, expected):
    valid = valid if isinstance(valid, PreparedSend) else prepared(valid)
    invalid = invalid if isinstance(invalid, PreparedSend) else prepared(invalid)
    assert found(valid) == []
    RULES(valid)  # does not raise
    assert found(invalid) == expected
    with pytest.raises(ForsendelseValidationError) as info:
        RULES(invalid)
    assert [(p.field, p.rule) for p in info.value.problems] == expected


@pytest.mark.parametrize("char", [*'*:"\\/<>|?', "\x00", "\t", "\n", "\x1f", "\x7f", "\x85"])
def test_filename_chars(char):
    good = prepared(person(pdoc("vedtak 2026-05.pdf"), pdoc("ærlig_øst.pdf")))
    bad = prepared(person(pdoc("vedtak 2026-05.pdf"), pdoc(f"ærlig{char}øst.pdf")))
    assert found(good) == []
    assert found(bad) == [("dokumenter[1].filnavn", "filename_chars")]
    assert repr(char) in RULES.problems(bad)[0].message


def test_empty_filename_is_too_short():
    send = raw("sendTilPrint", {"dokumenter": [{"filnavn": "", "mimeType": PDF}]}, ("", PDF, PDF_BYTES))
    assert found(send) == [("dokumenter[0].filnavn", "filename_length")]


def test_mime_types_compare_without_case_or_parameters():
    send = prepared(print_("Application/PDF", "application/pdf; version=1.7"))
    assert found(send) == []


# --- sizes, from the sources' sizes (sparse files, nothing is read) -----------------


def test_nhn_size(tmp_path):
    at_limit = sparse(tmp_path / "at.pdf", NHN_MAX_BYTES)
    over = sparse(tmp_path / "over.pdf", NHN_MAX_BYTES + 1)
    assert found(nhn(("at.pdf", PDF, at_limit))) == []
    problems = RULES.problems(nhn(("over.pdf", PDF, over)))
    assert [(p.field, p.rule) for p in problems] == [("dokument", "nhn_size")]
    assert "18.0 MB" in problems[0].message


@pytest.mark.parametrize("what", ["person", "organisasjon", "print"])
def test_total_size_when_it_can_go_to_print(tmp_path, what):
    half = TOTAL_MAX_BYTES // 2
    files = {"a.pdf": sparse(tmp_path / "a.pdf", half), "b.pdf": sparse(tmp_path / "b.pdf", half)}
    build = {
        "person": lambda **kw: person(pdoc("a.pdf"), pdoc("b.pdf"), **kw),
        "organisasjon": lambda **kw: organisasjon(
            *(models.OrganisasjonDokument(filnavn=n, mime_type=PDF) for n in files), **kw
        ),
        "print": lambda **kw: print_(names=list(files), **kw),
    }[what]
    assert found(prepared(build(), files)) == []
    sparse(files["b.pdf"], half + 1)
    assert found(prepared(build(), files)) == [("dokumenter", "total_size")]
    if what != "print":  # a forsendelse that is never printed may be bigger
        assert found(prepared(build(kun_digital_levering=True), files)) == []


# --- content sniffing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime_type", "content"),
    [
        (PDF, PDF_BYTES),
        ("image/png", PNG_BYTES),
        ("image/jpeg", JPEG_BYTES),
        ("image/gif", b"GIF89a\x01\x00"),
        (DOCX, DOCX_BYTES),
        ("application/zip", b"PK\x05\x06" + bytes(18)),
        ("text/plain", b"anything at all"),  # not sniffed
        ("application/x-unknown", b""),
    ],
)
def test_content_that_matches_its_type_passes(mime_type, content):
    send = prepared(person(pdoc("f", mime_type, skal_ekskluderes_fra_utskrift=mime_type != PDF)), {"f": content})
    assert found(send) == []


@pytest.mark.parametrize(
    ("mime_type", "content", "says"),
    [
        (PDF, PNG_BYTES, "looks like image/png"),
        (PDF, b"%PDX-1.7 not quite", "does not start like application/pdf"),
        (PDF, b"%PD", "does not start like"),
        (PDF, b"", "is empty"),
        ("image/png", JPEG_BYTES, "looks like image/jpeg"),
        ("image/jpeg", PDF_BYTES, "looks like application/pdf"),
        (DOCX, PDF_BYTES, "looks like application/pdf"),
    ],
)
def test_content_that_is_not_its_type_is_rejected(mime_type, content, says):
    send = prepared(person(pdoc("f", mime_type, skal_ekskluderes_fra_utskrift=True)), {"f": content})
    problems = RULES.problems(send)
    assert [(p.field, p.rule) for p in problems] == [("dokumenter[0].mimeType", "content_mismatch")]
    assert says in problems[0].message


def test_encrypted_content_is_not_sniffed():
    send = prepared(person(kryptert=True, sikkerhetsniva=models.Sikkerhetsniva.HOYESTE), {"brev.pdf": CMS_HEAD})
    assert found(send) == []
    # Without kryptert, ciphertext declared as a PDF would reach the recipient as a broken PDF.
    assert found(prepared(person(), {"brev.pdf": CMS_HEAD})) == [("dokumenter[0].mimeType", "content_mismatch")]


def test_sniffing_reads_only_the_head_and_leaves_a_file_where_it_was(tmp_path):
    path = tmp_path / "brev.pdf"
    path.write_bytes(b"junk" + PDF_BYTES)
    with path.open("rb") as f:
        f.seek(4)
        send = prepared(person(), {"brev.pdf": f})
        assert found(send) == []
        assert f.tell() == 4

    class Counting(io.BytesIO):
        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.asked: list[int] = []

        def read(self, n: int | None = -1) -> bytes:
            self.asked.append(-1 if n is None else n)
            return super().read(n)

    big = Counting(PDF_BYTES + bytes(1024 * 1024))
    assert found(prepared(person(), {"brev.pdf": big})) == []
    assert 0 < max(big.asked) <= 16


def test_a_source_that_cannot_be_read_ahead_is_not_flagged():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"not a pdf")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        assert found(prepared(person(), {"brev.pdf": pipe})) == []


# --- the check as a whole --------------------------------------------------------


def test_all_problems_are_collected_into_one_error():
    send = prepared(
        person(
            pdoc("brev.pdf"),
            pdoc("brev.pdf"),
            mottaker=models.Mottaker(navn="Kari", digital_id=corrupt(FNR)),
            sikkerhetsniva=models.Sikkerhetsniva.HOYESTE,
        )
    )
    with pytest.raises(ForsendelseValidationError) as info:
        RULES(send)
    assert [(p.field, p.rule) for p in info.value.problems] == [
        ("mottaker.digitalId", "fodselsnummer"),
        ("dokumenter[1].filnavn", "filename_unique"),
        ("sikkerhetsniva", "hoyeste_requires_kryptert"),
    ]
    assert "3 problems" in str(info.value)
    for problem in info.value.problems:
        assert problem.message and str(problem) in str(info.value)


def test_messages_leave_out_contents_and_personal_numbers():
    secret = b"%PDX CONFIDENTIAL PATIENT RECORD"
    bad_fnr = corrupt(FNR)
    send = prepared(
        person(pdoc("journal.pdf"), mottaker=models.Mottaker(navn="Kari", digital_id=bad_fnr), eksponert_for=[bad_fnr]),
        {"journal.pdf": secret},
    )
    with pytest.raises(ForsendelseValidationError) as info:
        RULES(send)
    assert len(info.value.problems) == 3
    text = str(info.value)
    assert "CONFIDENTIAL" not in text and "PDX" not in text
    assert bad_fnr not in text and bad_fnr[:6] not in text
    assert "'journal.pdf'" in text


def test_synthetic_numbers_pass_in_test_and_fail_in_prod():
    send = prepared(
        person(
            mottaker=models.Mottaker(navn="Syntetisk", digital_id=PUBLISHED_TENOR[0]),
            eksponert_for=[PUBLISHED_TENOR[1]],
        )
    )
    assert found(send, TEST_RULES) == []
    problems = RULES.problems(send)
    assert [(p.field, p.rule) for p in problems] == [
        ("mottaker.digitalId", "fodselsnummer"),
        ("eksponertFor[0]", "fodselsnummer"),
    ]
    assert "only in test" in problems[0].message


def test_environment_must_be_known():
    with pytest.raises(ValueError, match="'test' or 'prod'"):
        ForsendelseRules(environment="staging")  # type: ignore[arg-type]
    assert repr(ForsendelseRules(environment="test")) == "ForsendelseRules(environment='test')"


def test_the_clock_defaults_to_now_and_may_be_naive():
    tomorrow = datetime.now(UTC) + timedelta(days=1, minutes=5)
    assert found(prepared(person(SIGNED, signering=signering(tomorrow))), ForsendelseRules()) == []
    naive = ForsendelseRules(now=lambda: NOW.replace(tzinfo=None))
    assert found(prepared(person(SIGNED, signering=IN_A_DAY)), naive) == []


def test_unknown_operations_get_the_general_rules():
    send = raw("sendTilNoeNytt", {"dokumenter": [{"filnavn": "a?.pdf", "mimeType": PDF}]}, ("a?.pdf", PDF, b"x"))
    assert found(send) == [("dokumenter[0].filnavn", "filename_chars"), ("dokumenter[0].mimeType", "content_mismatch")]


# --- postnummer: four digits in Norway, whatever a spreadsheet made of it -------------------


@pytest.mark.parametrize(
    ("postnummer", "advice"),
    [
        ("150", "did you mean '0150'?"),
        ("1", "did you mean '0001'?"),
        ("0 150", "remove the spaces: '0150'"),
        (" 0150", "remove the spaces: '0150'"),
        ("01500", "it has 5"),
        ("O150", "it has other characters than digits"),
        ("١٥٠٠", "it has other characters than digits"),  # digits, but not the ones a postnummer is written in
    ],
)
def test_a_norwegian_postnummer_of_anything_but_four_digits_is_refused_with_the_fix(postnummer, advice):
    forsendelse = print_(mottaker=postadresse(postnummer))
    (problem,) = RULES.problems(prepared(forsendelse))
    assert (problem.field, problem.rule) == ("mottaker.adresse.postnummer", "postnummer")
    assert f"{postnummer!r} is not a Norwegian postnummer, which is 4 digits" in problem.message
    assert advice in problem.message
    assert "set landkode to its country code" in problem.message  # no landkode: said why it counts as Norway
    # Suggested, not made: what would have been sent is what the caller gave.
    assert prepared(forsendelse).metadata["mottaker"]["adresse"]["postnummer"] == postnummer


def test_a_postnummer_abroad_is_not_a_norwegian_one():
    for landkode in ("SE", "DK", "GB"):
        assert found(prepared(print_(mottaker=postadresse("150", landkode)))) == []
        assert found(prepared(print_(mottaker=postadresse("SW1A 1AA", landkode)))) == []
    assert found(prepared(print_(mottaker=postadresse("150", "NO")))) == [("mottaker.adresse.postnummer", "postnummer")]


def test_a_postnummer_sent_as_a_number_is_refused_even_with_four_digits():
    metadata = prepared(print_()).metadata
    for number, advice in ((150, "did you mean '0150'?"), (1234, "give it as text, '1234'")):
        metadata["mottaker"]["adresse"]["postnummer"] = number
        (problem,) = RULES.problems(raw("sendTilPrint", metadata, ("side0", PDF, PDF_BYTES)))
        assert problem.rule == "postnummer" and advice in problem.message


def test_an_address_without_a_postnummer_is_left_to_svarut():
    forsendelse = print_(
        mottaker=models.Postadresse(navn="Kari", adresse=models.Adresse(adresselinje1="G", poststed="O"))
    )
    assert found(prepared(forsendelse)) == []


def test_both_addresses_are_checked_in_one_send():
    forsendelse = print_(mottaker=postadresse("150"), svar_sendes_til=svar("ORGANISASJON", ORGNR, adresse("475")))
    assert found(prepared(forsendelse)) == [
        ("mottaker.adresse.postnummer", "postnummer"),
        ("svarSendesTil.adresse.postnummer", "postnummer"),
    ]
    assert found(prepared(forsendelse), ForsendelseRules(skip={"postnummer"})) == []


def test_a_client_generated_before_landkode_does_not_guess_the_country(register_shape):
    # A spec before upstream version 08 had a free-text "land" instead: a Swedish address
    # there has no landkode to read, so the rule cannot tell it from a Norwegian one.
    register_shape("sendTilPrint", predated={"mottaker.adresse.landkode", "svarSendesTil.adresse.landkode"})
    assert found(prepared(print_(mottaker=postadresse("150")))) == []


@pytest.fixture
def register_shape(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Registers a copy of a generated send operation that predates the given fields, for this test only."""
    import dataclasses

    from svarut.generated import SEND_OPERATIONS
    from svarut.runtime import operations

    def register(operation_id: str, *, predated: set[str]) -> None:
        (op,) = [op for op in SEND_OPERATIONS.values() if op.endpoint.operation_id == operation_id]
        changed = dataclasses.replace(op, predated=tuple(sorted(predated)))
        monkeypatch.setitem(operations._REGISTERED, operation_id, changed)

    return register


def test_every_rule_id_is_documented_in_the_module_docstring():
    rules = {rule for case in RULE_CASES for _, rule in case.values[2]} | {"total_size", "nhn_size", "content_mismatch"}
    assert rules == set(validation.RULE_IDS)
    for rule in rules:
        assert f"``{rule}``" in (validation.__doc__ or ""), rule


# --- wired into a client: nothing reaches the server ----------------------------------


@pytest.mark.anyio
async def test_a_bad_forsendelse_is_stopped_before_any_request(api, server, tmp_path):
    png = tmp_path / "vedtak.pdf"
    png.write_bytes(PNG_BYTES)
    forsendelse = person(pdoc("vedtak.pdf"), mottaker=models.Mottaker(navn="Kari", digital_id=corrupt(FNR)))
    with pytest.raises(ForsendelseValidationError) as info:
        await api(
            "send_til_person",
            client_options={"checks": [RULES]},
            konto_id="0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11",
            forsendelse=forsendelse,
            dokumenter={"vedtak.pdf": png},
        )
    assert [p.rule for p in info.value.problems] == ["fodselsnummer", "content_mismatch"]
    assert server.requests == []


@pytest.mark.anyio
async def test_a_bad_nhn_document_is_stopped_before_any_request(api, server):
    with pytest.raises(ForsendelseValidationError) as info:
        await api(
            "send_til_nhn",
            client_options={"checks": [RULES]},
            konto_id="0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11",
            forsendelse=nhn_forsendelse(),
            dokument=File(filnavn="epi|krise.pdf", content=b"<html>not a pdf</html>"),
        )
    assert [(p.field, p.rule) for p in info.value.problems] == [
        ("dokument.filnavn", "filename_chars"),
        ("dokument.mimeType", "content_mismatch"),
    ]
    assert server.requests == []


@pytest.mark.anyio
async def test_a_good_forsendelse_is_sent(api, server, tmp_path):
    brev = tmp_path / "vedtak.pdf"
    brev.write_bytes(PDF_BYTES)
    forsendelse = person(pdoc("vedtak.pdf"), pdoc("kart.png", "image/png", skal_ekskluderes_fra_utskrift=True))
    await api(
        "send_til_person",
        client_options={"checks": [ForsendelseRules()]},
        konto_id="0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11",
        forsendelse=forsendelse,
        dokumenter={"kart.png": PNG_BYTES, "vedtak.pdf": brev},
    )
    assert len(server.requests) == 1
    assert PDF_BYTES in server.requests[0].body


def test_sync_client_with_checks(server):
    with svarut.SvarUtClient(base_url=server.base_url, checks=[ForsendelseRules()]) as client:
        with pytest.raises(ForsendelseValidationError):
            client.send_til_print(
                konto_id="0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11",
                forsendelse=print_("image/png"),
                dokumenter={"side0": PNG_BYTES},
            )
        assert server.requests == []
        client.send_til_print(
            konto_id="0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11", forsendelse=print_(), dokumenter={"side0": PDF_BYTES}
        )
    assert len(server.requests) == 1


# --- issue #11 through the public API: refused before a byte is sent, or sent ---------------

KONTO = "0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11"


@pytest.mark.anyio
async def test_a_2032_fodselsnummer_is_sent_and_one_invalid_under_both_rules_is_not(api, server):
    options = {"checks": [RULES]}
    for digital_id in (NEITHER_FNR, corrupt(NEW_ONLY_FNR, 10)):
        forsendelse = person(mottaker=models.Mottaker(navn="Kari", digital_id=digital_id))
        with pytest.raises(ForsendelseValidationError) as info:
            await api(
                "send_til_person",
                client_options=options,
                konto_id=KONTO,
                forsendelse=forsendelse,
                dokumenter={"brev.pdf": PDF_BYTES},
            )
        assert [(p.field, p.rule) for p in info.value.problems] == [("mottaker.digitalId", "fodselsnummer")]
    assert server.requests == []
    forsendelse = person(mottaker=models.Mottaker(navn="Kari", digital_id=NEW_ONLY_FNR))
    await api(
        "send_til_person",
        client_options=options,
        konto_id=KONTO,
        forsendelse=forsendelse,
        dokumenter={"brev.pdf": PDF_BYTES},
    )
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_filenames_equal_in_nfc_are_refused_and_different_ones_sent(api, server):
    nfc, nfd = unicodedata.normalize("NFC", "Påklage.pdf"), unicodedata.normalize("NFD", "Påklage.pdf")
    assert nfc != nfd
    with pytest.raises(ForsendelseValidationError) as info:
        await api(
            "send_til_person",
            client_options={"checks": [RULES]},
            konto_id=KONTO,
            forsendelse=person(pdoc(nfc), pdoc(nfd)),
            dokumenter={nfc: PDF_BYTES, nfd: PDF_BYTES},
        )
    (problem,) = info.value.problems
    assert (problem.field, problem.rule) == ("dokumenter[1].filnavn", "filename_unique")
    assert "NFC" in problem.message
    assert server.requests == []
    await api(
        "send_til_person",
        client_options={"checks": [RULES]},
        konto_id=KONTO,
        forsendelse=person(pdoc(nfc), pdoc("Paklage.pdf")),
        dokumenter={nfc: PDF_BYTES, "Paklage.pdf": PDF_BYTES},
    )
    assert len(server.requests) == 1


def test_filename_unique_message_names_both_spellings():
    nfc, nfd = unicodedata.normalize("NFC", "Påklage.pdf"), unicodedata.normalize("NFD", "Påklage.pdf")
    (problem,) = RULES.problems(prepared(person(pdoc(nfc), pdoc(nfd))))
    assert f"is the same name as {nfc!r} in Unicode NFC" in problem.message
    (problem,) = RULES.problems(prepared(person(pdoc(nfc), pdoc(nfc))))
    assert "appears more than once" in problem.message


# --- skip ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_skip_switches_off_the_named_rules_only(api, server):
    rules = ForsendelseRules(skip={"fodselsnummer", "signering_expiry"}, now=lambda: NOW)
    bad_fnr = person(mottaker=models.Mottaker(navn="Kari", digital_id=corrupt(FNR)))
    with pytest.raises(ForsendelseValidationError) as info:
        await api(
            "send_til_person",
            client_options={"checks": [rules]},
            konto_id=KONTO,
            forsendelse=bad_fnr,
            dokumenter={"brev.pdf": PNG_BYTES},
        )
    assert [p.rule for p in info.value.problems] == ["content_mismatch"]
    assert server.requests == []
    await api(
        "send_til_person",
        client_options={"checks": [rules]},
        konto_id=KONTO,
        forsendelse=bad_fnr,
        dokumenter={"brev.pdf": PDF_BYTES},
    )
    assert len(server.requests) == 1


def test_skip_with_an_unknown_rule_id_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown rule id") as info:
        ForsendelseRules(skip={"fodselsnumer"})
    message = str(info.value)
    assert "fodselsnumer" in message
    assert all(rule in message for rule in ForsendelseRules.RULES)
    with pytest.raises(TypeError, match="collection of rule ids"):
        ForsendelseRules(skip="fodselsnummer")
    assert repr(ForsendelseRules(skip={"nhn_pdf"})) == "ForsendelseRules(environment='prod', skip=['nhn_pdf'])"


def test_every_rule_can_be_skipped_and_only_it_is():
    send = prepared(
        person(
            pdoc("brev.pdf"),
            pdoc("brev.pdf"),
            mottaker=models.Mottaker(navn="Kari", digital_id=corrupt(FNR)),
            sikkerhetsniva=models.Sikkerhetsniva.HOYESTE,
        )
    )
    all_rules = [r for _, r in found(send)]
    assert all_rules == ["fodselsnummer", "filename_unique", "hoyeste_requires_kryptert"]
    for rule in all_rules:
        skipping = ForsendelseRules(skip={rule}, now=lambda: NOW)
        assert [r for _, r in found(send, skipping)] == [r for r in all_rules if r != rule]


# --- HOYESTE and kryptert, through the simulator -------------------------------------------


def hoyeste(**fields: Any) -> models.PersonForsendelse:
    return person(pdoc("vedtak.pdf"), sikkerhetsniva=models.Sikkerhetsniva.HOYESTE, **fields)


def test_hoyeste_advice_names_the_send_argument_and_the_cli_flag(svarut_simulator):
    with pytest.raises(ForsendelseValidationError) as info:
        svarut_simulator.client.send_til_person(
            konto_id=svarut_simulator.konto_id, forsendelse=hoyeste(), dokumenter={"vedtak.pdf": PDF_BYTES}
        )
    (problem,) = info.value.problems
    assert problem.rule == "hoyeste_requires_kryptert"
    assert "kryptering=True" in problem.message and "--kryptert" in problem.message
    assert "set kryptert" not in problem.message
    assert svarut_simulator.received == []
    forsendelse_id = svarut_simulator.client.send_til_person(
        konto_id=svarut_simulator.konto_id, forsendelse=hoyeste(), dokumenter={"vedtak.pdf": PDF_BYTES}, kryptering=True
    )
    assert svarut_simulator.get(forsendelse_id).metadata["kryptert"] is True


def test_kryptert_with_plaintext_is_refused_before_sending(svarut_simulator):
    with pytest.raises(ForsendelseValidationError) as info:
        svarut_simulator.client.send_til_person(
            konto_id=svarut_simulator.konto_id,
            forsendelse=hoyeste(kryptert=True),
            dokumenter={"vedtak.pdf": PDF_BYTES},
        )
    (problem,) = info.value.problems
    assert (problem.field, problem.rule) == ("dokumenter[0]", "kryptert_requires_cms")
    assert "kryptering=True" in problem.message and "DEKRYPTERING_FEILET" in problem.message
    assert svarut_simulator.received == []
    assert not [r for r in svarut_simulator.requests if r.method == "POST" and "/forsendelser/" in r.path]


def test_kryptert_with_documents_the_caller_encrypted_is_sent(svarut_simulator, tmp_path):
    sertifikat = SvarUtSertifikat.from_bytes(svarut_simulator.simulator.keys.svarut.certificate_pem)
    plain, encrypted = tmp_path / "vedtak.pdf", tmp_path / "vedtak.pdf.cms"
    plain.write_bytes(PDF_BYTES)
    encrypt_path(plain, encrypted, sertifikat)
    forsendelse_id = svarut_simulator.client.send_til_person(
        konto_id=svarut_simulator.konto_id, forsendelse=hoyeste(kryptert=True), dokumenter={"vedtak.pdf": encrypted}
    )
    received = svarut_simulator.get(forsendelse_id)
    assert received.metadata["kryptert"] is True
    assert [d.filnavn for d in received.documents] == ["vedtak.pdf"]


def test_the_client_encrypting_does_not_trip_kryptert_requires_cms():
    plaintext = prepared(person(kryptert=True))
    assert found(plaintext) == [("dokumenter[0]", "kryptert_requires_cms")]
    encrypting = PreparedSend(plaintext.operation_id, plaintext.metadata, plaintext.documents, encrypting=True)
    assert found(encrypting) == []
    # The client sniffs the plaintext it is about to encrypt.
    wrong = prepared(person(kryptert=True), {"brev.pdf": PNG_BYTES})
    wrong = PreparedSend(wrong.operation_id, wrong.metadata, wrong.documents, encrypting=True)
    assert found(wrong) == [("dokumenter[0].mimeType", "content_mismatch")]


def test_kryptert_requires_cms_leaves_a_pipe_alone():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"plaintext")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        assert found(prepared(person(kryptert=True), {"brev.pdf": pipe})) == []


@pytest.fixture(scope="module")
def openssl_cms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """CMS files the real openssl writes: EnvelopedData in DER and streamed BER, and SignedData."""
    d = tmp_path_factory.mktemp("cms")
    pair = generate_key_pair("cms test")
    (d / "cert.pem").write_bytes(pair.certificate_pem)
    (d / "key.pem").write_bytes(pair.private_key_pem)
    (d / "plain.pdf").write_bytes(PDF_BYTES * 4000)  # big enough for a 3-byte DER length
    (d / "small.pdf").write_bytes(PDF_BYTES)
    out = {}
    common = ["-binary", "-outform", "DER"]
    runs = {
        "der": ["-encrypt", "-aes-256-cbc", *common, "-in", d / "plain.pdf", d / "cert.pem"],
        "der-small": ["-encrypt", "-aes-256-cbc", *common, "-in", d / "small.pdf", d / "cert.pem"],
        "ber-stream": ["-encrypt", "-aes-256-cbc", "-stream", *common, "-in", d / "plain.pdf", d / "cert.pem"],
        "signed": ["-sign", *common, "-in", d / "small.pdf", "-signer", d / "cert.pem", "-inkey", d / "key.pem"],
    }
    for name, args in runs.items():
        # Recipient certificates come last on openssl's command line.
        subprocess.run(["openssl", "cms", "-out", d / name, *args], check=True, capture_output=True)
        out[name] = (d / name).read_bytes()
    return out


def test_cms_enveloped_data_is_recognised_in_what_openssl_writes(openssl_cms):
    assert openssl_cms["der"][:2] == b"\x30\x83"
    assert openssl_cms["der-small"][:2] == b"\x30\x82"
    assert openssl_cms["ber-stream"][:2] == b"\x30\x80"
    for name in ("der", "der-small", "ber-stream"):
        assert validation.is_cms_enveloped_data(openssl_cms[name][:32]), name
    assert not validation.is_cms_enveloped_data(openssl_cms["signed"][:32])
    for other in (PDF_BYTES, PNG_BYTES, b"", b"\x30", CMS_HEAD[:10]):
        assert not validation.is_cms_enveloped_data(other)
    send = prepared(person(kryptert=True), {"brev.pdf": openssl_cms["ber-stream"]})
    assert found(send) == []
