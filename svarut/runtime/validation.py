"""Pre-send checks for the rules the SvarUt spec states only in prose.

:class:`ForsendelseRules` is a pre-send check (``checks=[ForsendelseRules()]``
on a client): it looks at the serialized forsendelse (the spec's camelCase
names) and its documents in wire order, collects every broken rule, and raises
one :class:`~svarut.runtime.errors.ForsendelseValidationError` before any
connection is opened. Each problem names the field (``mottaker.digitalId``,
``dokumenter[1].filnavn``; the NHN document is ``dokument``), a rule id and
what to do about it. Messages never contain document contents or personal
identifiers. ``ForsendelseRules(skip={...})`` switches named rules off.

Rule ids (:data:`RULE_IDS`, also ``ForsendelseRules.RULES``):

``fodselsnummer``
    ``mottaker.digitalId`` (person), ``pasient.fodselsnummer`` (NHN),
    ``svarSendesTil.digitalId`` (type PERSON) and 11-character entries of
    ``eksponertFor`` must be a fødselsnummer or d-nummer: 11 digits, day 1-31
    (41-71 for a d-nummer), month 1-12 (81-92 for a synthetic Tenor number,
    only with ``environment="test"``), valid control digits, by today's rule
    or the one for numbers issued from 2032 (see :func:`fodselsnummer_problem`).
``organisasjonsnummer``
    ``mottaker.digitalId`` (organisasjon), ``svarSendesTil.digitalId`` (type
    ORGANISASJON) and other entries of ``eksponertFor`` must be an
    organisasjonsnummer: 9 digits, valid mod-11 control digit.
``filename_length``, ``filename_chars``, ``filename_unique``
    Each filnavn has 1-226 characters, none of ``* : " \\ / < > | ?`` or a
    control character, and appears once in the forsendelse, compared in
    Unicode NFC (``"Påklage.pdf"`` with ``å`` as one character or as ``a`` and a combining ring is one name).
``filename_whitespace``
    SvarUt's multipart parser (Tomcat's ``Part.getSubmittedFileName()``)
    trims the part's filename as Java's ``String.trim()`` does: every
    character up to U+0020 at either end (not U+00A0 or other Unicode
    spaces), so a filnavn starting or ending with a space would arrive under
    another name. Checked on the filename as the client writes it: a tab or
    other control character goes percent-encoded (``%09``), which Tomcat
    neither decodes nor trims, and ``filename_chars`` refuses it.
``part_count``, ``part_header_size``
    SvarUt's multipart parser is Tomcat's, which (since Tomcat 10.1.42,
    CVE-2025-48988) refuses a whole request of more than ``maxPartCount``
    parts, or with a part whose headers are more than ``maxPartHeaderSize``
    bytes. A send is one part for the metadata and one per document, so with
    Tomcat's default of 50 parts a forsendelse takes at most 49 documents. A
    document's part headers are exactly what the client writes for it
    (``Content-Disposition`` with the RFC 7578 quoted filename in UTF-8, and
    ``Content-Type``), counted as Tomcat counts them: every byte after the
    boundary line up to and including the blank line that ends the headers;
    with Tomcat's default of 512 bytes a PDF's filename has at most 415 bytes
    in UTF-8 (417 for NHN's ``dokument``): 415 ASCII letters, but 207 ``ø``.
    ``ForsendelseRules(max_part_count=..., max_part_header_size=...)`` sets
    other limits, for a SvarUt configured otherwise.
``nhn_single_document``, ``nhn_pdf``, ``nhn_size``, ``her_id_required``
    NHN takes exactly one ``application/pdf`` document of at most 18 MB, and
    ``mottakerHerId`` when ``mottakertype`` is HER_ID.
``print_pdf``
    Every document of a print forsendelse is ``application/pdf``.
``printable``
    Person/organisasjon: a non-PDF document needs ``kunDigitalLevering`` on the
    forsendelse or ``skalEkskluderesFraUtskrift`` on the document.
``total_size``
    All documents together at most 350 MB, for print always, for
    person/organisasjon unless ``kunDigitalLevering``.
``single_signature``, ``signature_pdf``, ``signering_required``, ``signering_expiry``
    At most one document has ``skalSigneres``, and it is a PDF; a signed
    document needs ``signering``, whose ``signeringUtloper`` is at least one
    day after now.
``edialog_requires_org``
    ``kanSvareViaEdialog`` needs ``svarSendesTil`` of type ORGANISASJON.
``hoyeste_requires_kryptert``
    ``sikkerhetsniva`` HOYESTE needs encrypted documents: ``kryptering=True``
    on the send method (``--kryptert`` on the CLI).
``kryptert_requires_cms``
    A forsendelse the caller marks ``kryptert`` has documents that are CMS
    EnvelopedData already (SvarUt answers 400 DEKRYPTERING_FEILET to
    plaintext). Not checked when the client encrypts (``kryptering=True``),
    which sets ``kryptert`` itself.
``postnummer``
    A Norwegian address (``landkode`` unset, or ``NO``: the spec takes an
    address without it as Norwegian) has a ``postnummer`` of exactly four
    digits, in ``mottaker.adresse`` and ``svarSendesTil.adresse``. A
    spreadsheet that read ``0150`` as a number writes ``150``; the problem
    suggests ``0150`` but the client does not change what it was given.
    Skipped for a client generated from a spec older than ``landkode``, which
    cannot tell a Norwegian address from another.
``content_mismatch``
    A document of a well-known type (PDF, PNG, JPEG, GIF, ZIP and the OOXML
    formats) starts with that type's signature, sniffed from its first bytes
    only. Skipped for a CMS document of a ``kryptert`` forsendelse and for
    sources that cannot be read ahead (a pipe).

MB is 1024 × 1024 bytes; sizes come from the sources (a pipe's size is unknown
and counts as 0). MIME types compare case-insensitively, without parameters.

The check never imports the generated models: it reads the dict that will be
sent. Every spec name a rule reads (operation, field path, enum value,
multipart part) is declared once, in the binding table (:data:`BINDINGS`, in
:mod:`svarut.runtime.rule_bindings`), and the rule code reads only through it. ``generator.check_rules.verify_bindings``
checks the table against the locked spec whenever the client is generated, so
a field renamed upstream fails the build, naming the rule, instead of silently
switching the rule off.

A client built anyway from a spec the table does not match fails closed: each
send operation of the generated client registers what its models have
(:func:`svarut.runtime.operations.shape_of`), and a rule reading a field, an
enum value or a part the operation does not have refuses every send of that
operation with a problem under the rule's own id (``cannot check
her_id_required: this client's NhnForsendelse has no field mottakertype``)
rather than letting through what it exists to stop (:func:`binding_problems`). ``skip={rule}`` still
switches such a rule off, deliberately. An operation no generated client
registered (a runtime client with endpoints of its own) is checked by the
rules alone.

This module is the rules and :class:`ForsendelseRules`. What they read from
lives beside it, and every name of it is importable from here too: the
binding table (:mod:`svarut.runtime.rule_bindings`), the identifier checks
(:mod:`svarut.runtime.identifiers`), Tomcat's multipart limits
(:mod:`svarut.runtime.tomcat`) and the byte sniff (:mod:`svarut.runtime.sniff`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from svarut.runtime import operations
from svarut.runtime.errors import ForsendelseValidationError, Problem
from svarut.runtime.identifiers import fodselsnummer_problem, organisasjonsnummer_problem
from svarut.runtime.identifiers import valid_fodselsnummer as valid_fodselsnummer
from svarut.runtime.identifiers import valid_organisasjonsnummer as valid_organisasjonsnummer
from svarut.runtime.multipart import quote_param
from svarut.runtime.request_types import PreparedSend

# The public names of the modules the rules read from, importable from here as before.
from svarut.runtime.rule_bindings import BINDINGS as BINDINGS
from svarut.runtime.rule_bindings import (
    DIRECT,
    DOKUMENTER,
    EKSPONERT_FOR,
    FILE_PART_OF,
    FILNAVN,
    KAN_SVARE_VIA_EDIALOG,
    KRYPTERT,
    KUN_DIGITAL_LEVERING,
    MIME_TYPE,
    MOTTAKER_HER_ID,
    MOTTAKERTYPE,
    MOTTAKERTYPE_HER_ID,
    NHN,
    NHN_DOKUMENT,
    ORGANISASJON_DIGITAL_ID,
    PASIENT_FODSELSNUMMER,
    PERSON_DIGITAL_ID,
    POSTAL_ADDRESSES,
    PRINT,
    R_CONTENT_MISMATCH,
    R_EDIALOG_REQUIRES_ORG,
    R_FILENAME_CHARS,
    R_FILENAME_LENGTH,
    R_FILENAME_UNIQUE,
    R_FILENAME_WHITESPACE,
    R_FODSELSNUMMER,
    R_HER_ID_REQUIRED,
    R_HOYESTE_REQUIRES_KRYPTERT,
    R_KRYPTERT_REQUIRES_CMS,
    R_NHN_PDF,
    R_NHN_SINGLE_DOCUMENT,
    R_NHN_SIZE,
    R_ORGANISASJONSNUMMER,
    R_PART_COUNT,
    R_PART_HEADER_SIZE,
    R_POSTNUMMER,
    R_PRINT_PDF,
    R_PRINTABLE,
    R_SIGNATURE_PDF,
    R_SIGNERING_EXPIRY,
    R_SIGNERING_REQUIRED,
    R_SINGLE_SIGNATURE,
    R_TOTAL_SIZE,
    SIGNERING,
    SIGNERING_UTLOPER,
    SIKKERHETSNIVA,
    SIKKERHETSNIVA_HOYESTE,
    SKAL_EKSKLUDERES,
    SKAL_SIGNERES,
    SVAR_DIGITAL_ID,
    SVAR_TIL_ORGANISASJON,
    SVAR_TIL_PERSON,
    SVAR_TYPE,
)
from svarut.runtime.rule_bindings import RULE_IDS as RULE_IDS
from svarut.runtime.rule_bindings import Binding as Binding
from svarut.runtime.rule_bindings import SpecEnum as SpecEnum
from svarut.runtime.rule_bindings import SpecField as SpecField
from svarut.runtime.rule_bindings import SpecOperation as SpecOperation
from svarut.runtime.rule_bindings import SpecPart as SpecPart
from svarut.runtime.rule_bindings import SpecRef as SpecRef
from svarut.runtime.rule_bindings import binding_problems as binding_problems
from svarut.runtime.rule_view import RuleSend as _Send
from svarut.runtime.rule_view import aware as _aware
from svarut.runtime.rule_view import rule_docs as _docs
from svarut.runtime.sniff import CMS_HEAD_BYTES, MAGIC, PDF, SNIFF_BYTES, is_cms_enveloped_data
from svarut.runtime.tomcat import (
    JAVA_TRIMMED,
    MAX_PART_COUNT,
    MAX_PART_HEADER_SIZE,
    empty_header_size,
    part_header_size,
    tomcat_filename,
)

__all__ = [
    "BINDINGS",
    "FILENAME_MAX_LENGTH",
    "JAVA_TRIMMED",
    "MAGIC",
    "MAX_PART_COUNT",
    "MAX_PART_HEADER_SIZE",
    "NHN_MAX_BYTES",
    "RULE_IDS",
    "TOTAL_MAX_BYTES",
    "Binding",
    "ForsendelseRules",
    "SpecEnum",
    "SpecField",
    "SpecOperation",
    "SpecPart",
    "binding_problems",
    "fodselsnummer_problem",
    "is_cms_enveloped_data",
    "organisasjonsnummer_problem",
    "part_header_size",
    "tomcat_filename",
    "valid_fodselsnummer",
    "valid_organisasjonsnummer",
]

MB = 1024 * 1024
NHN_MAX_BYTES = 18 * MB
TOTAL_MAX_BYTES = 350 * MB
FILENAME_MAX_LENGTH = 226
FORBIDDEN_FILENAME_CHARS = frozenset('*:"\\/<>|?')


# The forsendelse as the rules see it: svarut.runtime.rule_view.

# --- the rules: each yields the problems it finds ---------------------------------

Rule = Callable[[_Send], Iterator[Problem]]


def _fnr(value: object, synthetic: bool) -> str | None:
    return fodselsnummer_problem(value, synthetic=synthetic)


def _orgnr(value: object, _synthetic: bool) -> str | None:
    return organisasjonsnummer_problem(value)


# Keyed by rule id: hashing a Binding hashes every spec reference it holds.
_NUMBER_KINDS: dict[str, tuple[str, Callable[[object, bool], str | None]]] = {
    R_FODSELSNUMMER.rule: ("a fødselsnummer or d-nummer", _fnr),
    R_ORGANISASJONSNUMMER.rule: ("an organisasjonsnummer", _orgnr),
}


_IDENTIFIER_FIELDS = (
    (PERSON_DIGITAL_ID, R_FODSELSNUMMER),
    (ORGANISASJON_DIGITAL_ID, R_ORGANISASJONSNUMMER),
    (PASIENT_FODSELSNUMMER, R_FODSELSNUMMER),
)
_SVAR_KINDS = ((SVAR_TIL_PERSON, R_FODSELSNUMMER), (SVAR_TIL_ORGANISASJON, R_ORGANISASJONSNUMMER))


def _identifiers(s: _Send) -> Iterator[Problem]:
    wanted: list[tuple[str, object, Binding, str]] = []  # (field, value, rule, extra hint)
    for field, rule in _IDENTIFIER_FIELDS:
        if s.operation in field.operation_ids:
            wanted.append((field.path, s.get(field), rule, ""))
    for svar, rule in _SVAR_KINDS:
        if s.equals(svar):
            wanted.append((SVAR_DIGITAL_ID.path, s.get(SVAR_DIGITAL_ID), rule, ""))
    for i, entry in enumerate(s.get(EKSPONERT_FOR) or []):
        is_fnr = isinstance(entry, str) and len(entry) == 11
        hint = "" if is_fnr else " (nor an 11-digit fødselsnummer)"
        rule = R_FODSELSNUMMER if is_fnr else R_ORGANISASJONSNUMMER
        wanted.append((f"{EKSPONERT_FOR.path}[{i}]", entry, rule, hint))
    for field_path, value, rule, hint in wanted:
        what, check = _NUMBER_KINDS[rule.rule]
        why = check(value, s.synthetic)
        if why is not None:
            yield Problem(field_path, rule.rule, f"is not {what}{hint}: it {why}")


def _filenames(s: _Send) -> Iterator[Problem]:
    seen: dict[str, str] = {}  # NFC form -> the name as first given
    for d in s.docs:
        field = d.field(FILNAVN)
        if not 1 <= len(d.filnavn) <= FILENAME_MAX_LENGTH:
            yield Problem(
                field,
                R_FILENAME_LENGTH.rule,
                f"{d.filnavn!r} has {len(d.filnavn)} characters; use 1-{FILENAME_MAX_LENGTH}",
            )
        # A printable name has no control character (category Cc); most names then need no per-character look.
        bad = (
            sorted(FORBIDDEN_FILENAME_CHARS.intersection(d.filnavn))
            if d.filnavn.isprintable()
            else sorted({ch for ch in d.filnavn if ch in FORBIDDEN_FILENAME_CHARS or unicodedata.category(ch) == "Cc"})
        )
        if bad:
            shown = " ".join(repr(ch) for ch in bad)
            yield Problem(field, R_FILENAME_CHARS.rule, f"{d.filnavn!r} contains {shown}; rename the file without them")
        nfc = unicodedata.normalize("NFC", d.filnavn)
        if nfc in seen:
            first = seen[nfc]
            same = "appears more than once" if first == d.filnavn else f"is the same name as {first!r} in Unicode NFC"
            yield Problem(
                field,
                R_FILENAME_UNIQUE.rule,
                f"{d.filnavn!r} {same} (names are compared in Unicode NFC, so a letter such as 'å' typed two "
                "ways is one name); give each document its own name",
            )
        seen.setdefault(nfc, d.filnavn)
        # Quoting never puts a character up to U+0020 at an end that was not there: look only then.
        if d.filnavn and (d.filnavn[0] <= " " or d.filnavn[-1] <= " "):
            wire = quote_param(d.filnavn)
            trimmed = wire.strip(JAVA_TRIMMED)
            if trimmed != wire:
                where = " and ".join(
                    end for end, trims in (("starts", wire[0] <= " "), ("ends", wire[-1] <= " ")) if trims
                )
                yield Problem(
                    field,
                    R_FILENAME_WHITESPACE.rule,
                    f"{d.filnavn!r} {where} with whitespace, which SvarUt's multipart parser (Tomcat) trims from a "
                    f"part's filename: the document would arrive as {trimmed!r}, not under its {FILNAVN.key}; "
                    "remove it from the name",
                )


def _multipart(s: _Send) -> Iterator[Problem]:
    """Tomcat's limits on a multipart request, which refuse the whole send."""
    sent = [d for d in s.docs if d.source is not None]
    parts = 1 + len(sent)  # the metadata, then one part per document
    if parts > s.max_parts:
        yield Problem(
            NHN_DOKUMENT.name if s.is_(NHN) else DOKUMENTER.path,
            R_PART_COUNT.rule,
            f"the metadata and {len(sent)} document{'s' * (len(sent) != 1)} are {parts} multipart parts, and "
            f"SvarUt's multipart parser (Tomcat) refuses a request of more than {s.max_parts} parts: send at most "
            f"{s.max_parts - 1} documents per forsendelse (or, if your SvarUt accepts more parts, say so with "
            "ForsendelseRules(max_part_count=...))",
        )
    part = FILE_PART_OF.get(s.operation)
    if part is None:
        return  # an operation the table does not know: its part's name, and so its header, is unknown
    for d in sent:
        # Quoted and in UTF-8, no character takes more than 4 bytes: most names are clear of the
        # limit by that bound alone, and the exact count (building the header) is left for the rest.
        if empty_header_size(part.name) + 4 * (len(d.filnavn) + len(d.mime_type)) <= s.max_part_header:
            continue
        size = part_header_size(part.name, d.filnavn, d.mime_type)
        if size > s.max_part_header:
            over = size - s.max_part_header
            yield Problem(
                d.field(FILNAVN),
                R_PART_HEADER_SIZE.rule,
                f"SvarUt's multipart parser (Tomcat) refuses a part header over {s.max_part_header} bytes; this "
                f"one is {size} bytes, {len(d.filnavn.encode())} of them the filename in UTF-8 (where 'ø' is 2 "
                f"bytes): shorten the filename by at least {over} byte{'s' * (over != 1)}",
            )


def _nhn(s: _Send) -> Iterator[Problem]:
    if not s.is_(NHN):
        return
    if len(s.docs) != 1:
        yield Problem(
            NHN_DOKUMENT.name, R_NHN_SINGLE_DOCUMENT.rule, f"NHN takes exactly one document, got {len(s.docs)}"
        )
    for d in s.docs:
        if not d.is_pdf:
            yield Problem(d.field(MIME_TYPE), R_NHN_PDF.rule, f"{d.filnavn!r} is {d.mime_type!r}; NHN takes only {PDF}")
        size = d.source.size if d.source else None
        if size is not None and size > NHN_MAX_BYTES:
            yield Problem(
                d.path, R_NHN_SIZE.rule, f"{d.filnavn!r} is {_mb(size)}; NHN takes at most {_mb(NHN_MAX_BYTES)}"
            )
    if s.equals(MOTTAKERTYPE_HER_ID) and s.get(MOTTAKER_HER_ID) is None:
        yield Problem(
            MOTTAKER_HER_ID.path,
            R_HER_ID_REQUIRED.rule,
            f"is required when {MOTTAKERTYPE.path} is {MOTTAKERTYPE_HER_ID.value}; give the HER-id",
        )


def _printing(s: _Send) -> Iterator[Problem]:
    printing, direct = s.is_(PRINT), s.is_(*DIRECT)
    if not (printing or direct):
        return
    digital_only = s.flag(KUN_DIGITAL_LEVERING)
    if printing:
        for d in s.docs:
            if not d.is_pdf:
                yield Problem(
                    d.field(MIME_TYPE), R_PRINT_PDF.rule, f"{d.filnavn!r} is {d.mime_type!r}; print takes only {PDF}"
                )
    elif not digital_only:
        for d in s.docs:
            if not d.is_pdf and s.doc(d, SKAL_EKSKLUDERES) is not True:
                yield Problem(
                    d.field(MIME_TYPE),
                    R_PRINTABLE.rule,
                    f"{d.filnavn!r} is {d.mime_type!r} and only {PDF} can be printed; set {SKAL_EKSKLUDERES.key} "
                    f"on the document or {KUN_DIGITAL_LEVERING.path} on the forsendelse",
                )
    if printing or not digital_only:
        total = s.total_size
        if total > TOTAL_MAX_BYTES:
            fix = "split it into several forsendelser" if printing else f"set {KUN_DIGITAL_LEVERING.path}, or split it"
            yield Problem(
                DOKUMENTER.path,
                R_TOTAL_SIZE.rule,
                f"the documents total {_mb(total)}; a forsendelse that can go to print takes at most "
                f"{_mb(TOTAL_MAX_BYTES)}: {fix}",
            )


def _signing(s: _Send) -> Iterator[Problem]:
    signed = [d for d in s.docs if s.doc(d, SKAL_SIGNERES) is True]
    for d in signed[1:]:
        yield Problem(
            d.field(SKAL_SIGNERES),
            R_SINGLE_SIGNATURE.rule,
            f"only one document can be signed, and {signed[0].filnavn!r} already is",
        )
    for d in signed:
        if not d.is_pdf:
            yield Problem(
                d.field(SKAL_SIGNERES),
                R_SIGNATURE_PDF.rule,
                f"{d.filnavn!r} is {d.mime_type!r}; only a PDF can be signed",
            )
    signering = s.get(SIGNERING)
    has_signering = signering is not None and isinstance(signering, (dict, Mapping))
    if signed and not has_signering:
        yield Problem(
            SIGNERING.path,
            R_SIGNERING_REQUIRED.rule,
            f"is required when a document has {SKAL_SIGNERES.key}; set it",
        )
    if has_signering:
        earliest = s.now() + timedelta(days=1)
        expiry = _parse_datetime(s.get(SIGNERING_UTLOPER))
        if expiry is None or expiry < earliest:
            yield Problem(
                SIGNERING_UTLOPER.path,
                R_SIGNERING_EXPIRY.rule,
                f"must be at least one day ahead, at or after {earliest.isoformat(timespec='seconds')}",
            )


def _combinations(s: _Send) -> Iterator[Problem]:
    if s.flag(KAN_SVARE_VIA_EDIALOG) and not s.equals(SVAR_TIL_ORGANISASJON):
        yield Problem(
            KAN_SVARE_VIA_EDIALOG.path,
            R_EDIALOG_REQUIRES_ORG.rule,
            f"requires {SVAR_TYPE.path} {SVAR_TIL_ORGANISASJON.value} and its organisasjonsnummer",
        )
    if s.equals(SIKKERHETSNIVA_HOYESTE) and not s.flag(KRYPTERT):
        yield Problem(
            SIKKERHETSNIVA.path,
            R_HOYESTE_REQUIRES_KRYPTERT.rule,
            f"{SIKKERHETSNIVA_HOYESTE.value} requires encrypted documents: pass kryptering=True to the send "
            f"method (--kryptert on the command line), which encrypts them and sets {KRYPTERT.key}",
        )


def _encryption(s: _Send) -> Iterator[Problem]:
    # The client encrypts after the checks and sets kryptert itself; the checks then see plaintext.
    if not s.flag(KRYPTERT) or s.encrypting:
        return
    for d in s.docs:
        if d.source is None:
            continue
        head = d.source.head(CMS_HEAD_BYTES)
        if not head and d.source.size != 0:
            continue  # cannot be read ahead (a pipe)
        if not is_cms_enveloped_data(head):
            yield Problem(
                d.path,
                R_KRYPTERT_REQUIRES_CMS.rule,
                f"{d.filnavn!r} is not CMS EnvelopedData, but the forsendelse is marked {KRYPTERT.key} (SvarUt "
                f"would answer DEKRYPTERING_FEILET); pass kryptering=True to the send method to have the client "
                f"encrypt it, and leave {KRYPTERT.key} unset",
            )


def _content(s: _Send) -> Iterator[Problem]:
    kryptert = s.flag(KRYPTERT)
    for d in s.docs:
        prefixes = MAGIC.get(d.kind)
        if prefixes is None or d.source is None:
            continue
        head = d.source.head(CMS_HEAD_BYTES if kryptert else SNIFF_BYTES)
        if not head and d.source.size != 0:
            continue  # cannot be read ahead (a pipe)
        if kryptert and is_cms_enveloped_data(head):
            continue  # encrypted already: the type is the plaintext's
        if not head.startswith(prefixes):
            looks = next((t for t, p in MAGIC.items() if head and head.startswith(p)), None)
            what = "is empty" if not head else f"looks like {looks}" if looks else f"does not start like {d.kind}"
            yield Problem(
                d.field(MIME_TYPE),
                R_CONTENT_MISMATCH.rule,
                f"{d.filnavn!r} is declared {d.mime_type!r} but {what}; send the right file or fix its {MIME_TYPE.key}",
            )


# landkode as the spec has it (ISO 3166-1 alpha-2; alpha-3 too, should it ever change):
# these, or none, mean Norway.
NORWAY = frozenset({"NO", "NOR"})
POSTNUMMER_DIGITS = 4


def _postnummer(s: _Send) -> Iterator[Problem]:
    """A Norwegian postnummer is four digits. The usual way to lose one is a
    spreadsheet reading ``0150`` as the number 150; only the sender knows the
    address, so the fix is suggested, never made."""
    for postnummer_field, landkode_field in POSTAL_ADDRESSES:
        value = s.get(postnummer_field)
        if value is None:
            continue
        if landkode_field.binding_key in s.predated:
            continue  # no landkode in this client's spec: a foreign address cannot be told apart
        landkode = s.get(landkode_field)
        if landkode and str(landkode).strip().upper() not in NORWAY:
            continue
        why = _postnummer_problem(value)
        if why is not None:
            abroad = (
                ""
                if landkode
                else f". An address without {landkode_field.key} is in Norway; for one abroad, set "
                f"{landkode_field.key} to its country code"
            )
            yield Problem(
                postnummer_field.path,
                R_POSTNUMMER.rule,
                f"{value!r} is not a Norwegian postnummer, which is {POSTNUMMER_DIGITS} digits: {why}{abroad}",
            )


def _postnummer_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a postnummer, and the fix; None if nothing."""
    text = value if isinstance(value, str) else str(value)
    digits = text.isascii() and text.isdigit()
    if digits and len(text) == POSTNUMMER_DIGITS:
        return None if isinstance(value, str) else f"give it as text, {text!r}, not as a number"
    squeezed = "".join(text.split())
    if squeezed != text and squeezed.isascii() and squeezed.isdigit() and len(squeezed) == POSTNUMMER_DIGITS:
        return f"remove the spaces: {squeezed!r}"
    if digits and len(text) < POSTNUMMER_DIGITS:
        return (
            f"it has {len(text)}; did you mean {text.zfill(POSTNUMMER_DIGITS)!r}? (A spreadsheet that reads a "
            "postnummer as a number drops its leading zeros: format that column as text.)"
        )
    return f"it has {len(text)}" if digits else "it has other characters than digits"


_RULES: tuple[Rule, ...] = (
    _identifiers,
    _filenames,
    _multipart,
    _nhn,
    _printing,
    _postnummer,
    _signing,
    _combinations,
    _encryption,
    _content,
)


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB ({size} bytes)"


def _parse_datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return _aware(parsed)


class ForsendelseRules:
    """A pre-send check for the rules in this module's docstring.

    >>> client = SvarUtClient(base_url=..., checks=[ForsendelseRules(environment="test")])  # doctest: +SKIP

    ``environment="test"`` also accepts synthetic (Tenor) fødselsnumre, which
    production rejects. ``now`` returns the current time (for the signing
    deadline); it defaults to the system clock. ``skip`` names rules (ids from
    :attr:`RULES`) to switch off; the others still run.
    ``max_part_count`` and ``max_part_header_size`` are the limits of SvarUt's
    multipart parser (``part_count``, ``part_header_size``); the defaults are
    Tomcat's (50 parts, 512 bytes). Raise them only for a SvarUt you know
    accepts more.

    The clients add one for their environment unless ``validate=False``; make
    your own only to change these settings (and pass ``validate=False`` with it).

    Args:
        environment: ``"test"`` or ``"prod"``.
        now: The clock (for tests).
        skip: Rule ids to switch off.
        max_part_count: The most multipart parts a send may have.
        max_part_header_size: The largest multipart part header, in bytes.

    Raises:
        ValueError: An unknown environment or rule id, or a limit below 1.
        TypeError: A limit that is not an int, or ``skip`` given as one string.
    """

    RULES: ClassVar[tuple[str, ...]] = RULE_IDS

    def __init__(
        self,
        *,
        environment: Literal["test", "prod"] = "prod",
        now: Callable[[], datetime] | None = None,
        skip: Collection[str] = (),
        max_part_count: int = MAX_PART_COUNT,
        max_part_header_size: int = MAX_PART_HEADER_SIZE,
    ) -> None:
        if environment not in ("test", "prod"):
            raise ValueError(f"environment must be 'test' or 'prod', got {environment!r}")
        for name, value in (("max_part_count", max_part_count), ("max_part_header_size", max_part_header_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if isinstance(skip, str):
            raise TypeError(f"skip takes a collection of rule ids, e.g. {{{skip!r}}}, not a string")
        unknown = sorted(set(skip) - set(RULE_IDS))
        if unknown:
            raise ValueError(f"unknown rule id(s) in skip: {', '.join(unknown)}; the rules are: {', '.join(RULE_IDS)}")
        self.environment = environment
        self.skip = frozenset(skip)
        self.max_part_count = max_part_count
        self.max_part_header_size = max_part_header_size
        self._now = now or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        skip = f", skip={sorted(self.skip)!r}" if self.skip else ""
        limits = "".join(
            f", {name}={value}"
            for name, value, default in (
                ("max_part_count", self.max_part_count, MAX_PART_COUNT),
                ("max_part_header_size", self.max_part_header_size, MAX_PART_HEADER_SIZE),
            )
            if value != default
        )
        return f"ForsendelseRules(environment={self.environment!r}{skip}{limits})"

    def problems(self, send: PreparedSend) -> list[Problem]:
        """Every problem with ``send``; empty if it may be sent.

        Args:
            send: The send as the client is about to make it: operation,
                metadata and documents.

        Returns:
            Each broken rule as a :class:`~svarut.errors.Problem`; the client
            raises :class:`~svarut.errors.ForsendelseValidationError` with them.
        """
        shape = operations.shape_of(send.operation_id)
        unreadable = binding_problems(shape, send.operation_id) if shape is not None else ()
        view = _Send(
            send.operation_id,
            send.metadata,
            _docs(send),
            self.environment == "test",
            send.encrypting,
            self._now,
            self.max_part_count,
            self.max_part_header_size,
            shape.predated if shape is not None else frozenset(),
        )
        found = [problem for rule in _RULES for problem in rule(view) if problem.rule not in self.skip]
        if unreadable:  # first: what makes a rule unable to check anything at all
            found[:0] = [problem for problem in unreadable if problem.rule not in self.skip]
        return found

    def __call__(self, send: PreparedSend) -> None:
        problems = self.problems(send)
        if problems:
            raise ForsendelseValidationError(problems)
