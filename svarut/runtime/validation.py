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
``content_mismatch``
    A document of a well-known type (PDF, PNG, JPEG, GIF, ZIP and the OOXML
    formats) starts with that type's signature, sniffed from its first bytes
    only. Skipped for a CMS document of a ``kryptert`` forsendelse and for
    sources that cannot be read ahead (a pipe).

MB is 1024 × 1024 bytes; sizes come from the sources (a pipe's size is unknown
and counts as 0). MIME types compare case-insensitively, without parameters.

The check never imports the generated models: it reads the dict that will be
sent. Every spec name a rule reads (operation, field path, enum value,
multipart part) is declared once, in the binding table below (:data:`BINDINGS`),
and the rule code reads only through it. ``generator.bindings.verify_bindings``
checks the table against the locked spec whenever the client is generated, so
a field renamed upstream fails the build, naming the rule, instead of silently
switching the rule off.

A client built anyway from a spec the table does not match fails closed: each
send operation of the generated client registers what its models have
(:func:`svarut.runtime.operations.shape_of`), and a rule reading a field, an
enum value or a part the operation does not have refuses every send of that
operation with a problem under the rule's own id (``cannot check
her_id_required: this client's NhnForsendelse has no field mottakertype``)
rather than letting through what it exists to stop. ``skip={rule}`` still
switches such a rule off, deliberately. An operation no generated client
registered (a runtime client with endpoints of its own) is checked by the
rules alone.
"""

from __future__ import annotations

import operator
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from typing import Any, ClassVar, Literal

from svarut.runtime import operations
from svarut.runtime.client import PreparedSend
from svarut.runtime.errors import ForsendelseValidationError, Problem
from svarut.runtime.files import Source

# The encoder's own part-header builder: the header sizes the rules count are the
# bytes the client writes, whatever quoting the encoder does.
from svarut.runtime.multipart import _head as _part_head
from svarut.runtime.multipart import quote_param

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
PDF = "application/pdf"

# Tomcat's defaults for a multipart request (Connector maxPartCount and maxPartHeaderSize;
# Spring Boot: server.tomcat.max-part-count and server.tomcat.max-part-header-size).
# Tomcat 10.1.42 shipped maxPartCount 10 and 10.1.43 raised it to 50 (bug 69710), as did
# the Spring Boot releases that set it; the header limit has been 512 bytes throughout.
MAX_PART_COUNT = 50
MAX_PART_HEADER_SIZE = 512
#: What Java's ``String.trim()`` removes from either end: every character up to U+0020.
JAVA_TRIMMED = "".join(map(chr, range(0x21)))
# Any boundary does: the boundary line is not counted (see part_header_size).
_BOUNDARY = "b"
_BOUNDARY_LINE = len(f"--{_BOUNDARY}\r\n")

_ZIP = (b"PK\x03\x04",)
# Declared type -> the prefixes a file of that type starts with.
MAGIC: dict[str, tuple[bytes, ...]] = {
    PDF: (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/zip": (*_ZIP, b"PK\x05\x06"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _ZIP,
}
_SNIFF_BYTES = max(len(m) for prefixes in MAGIC.values() for m in prefixes)

# A CMS ContentInfo is a DER SEQUENCE whose first element is the content type:
# OBJECT IDENTIFIER 1.2.840.113549.1.7.3 (id-envelopedData).
_ENVELOPED_DATA_OID = bytes.fromhex("06092a864886f70d010703")
_CMS_HEAD_BYTES = 2 + 4 + len(_ENVELOPED_DATA_OID)  # SEQUENCE, at most a 4-byte length, the OID

_FNR_WEIGHTS = ((3, 7, 6, 1, 8, 9, 4, 5, 2, 1), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1))
# Remainders of the first weighted sum (9 digits and k1) accepted from 2032; today's numbers have 0.
_FNR_K1_REMAINDERS = frozenset({0, 1, 2, 3})
_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


# --- the binding table: every spec name a rule reads ---------------------------------
#
# Rule code below reads the forsendelse only through these objects, never by a
# string of its own; generator/bindings.py verifies each against the spec.


@dataclass(frozen=True)
class SpecOperation:
    """A send operation, by its operationId.

    ``optional``: a spec without the operation is not an error (an older spec
    before it existed); the rules for it then never run. Every field read
    through an operation the spec does have must exist.
    """

    operation_id: str
    optional: bool = False


@dataclass(frozen=True)
class SpecField:
    """A field of the forsendelse part of ``operations``, by its JSON path from
    that part's root (``svarSendesTil.type``); ``dokumenter[].skalSigneres`` is
    a key of each item of ``dokumenter``. A rule reads it only in sends of
    those operations."""

    path: str
    operations: tuple[SpecOperation, ...]
    since: str = ""
    """The upstream commit that added the field, where older specs lack it:
    generating from a spec the history at hand shows to be older is fine (the
    rule cannot read what that client cannot send); from any other spec its
    absence is a broken binding."""

    @property
    def binding_key(self) -> str:
        """How the generator names this field when the spec predates it (``SendOperation.predated``)."""
        return self.path

    @property
    def key(self) -> str:
        """The last step of the path: the key in its parent object."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def in_documents(self) -> bool:
        return "[]." in self.path

    # Worked out once per field, not on every read of every send (cached in the
    # instance's __dict__, so neither a dataclass field nor part of eq or hash).
    @cached_property
    def steps(self) -> tuple[str, ...]:
        """The keys of ``path`` from the root."""
        return tuple(self.path.split("."))

    @cached_property
    def operation_ids(self) -> frozenset[str]:
        return frozenset(o.operation_id for o in self.operations)

    def applies_to(self, operation_id: str) -> bool:
        return operation_id in self.operation_ids


@dataclass(frozen=True)
class SpecEnum:
    """One value of the enum ``field`` holds."""

    field: SpecField
    value: str


@dataclass(frozen=True)
class SpecPart:
    """The file part of a multipart operation, by its name; ``since`` as for :class:`SpecField`."""

    operation: SpecOperation
    name: str
    since: str = ""

    @property
    def binding_key(self) -> str:
        return f"part {self.name}"


SpecRef = SpecOperation | SpecField | SpecEnum | SpecPart


@dataclass(frozen=True)
class Binding:
    """A rule id and every spec name the rule reads."""

    rule: str
    reads: tuple[SpecRef, ...]

    def operations(self) -> tuple[SpecOperation, ...]:
        """Every operation the rule reads something of, in declaration order."""
        found: dict[SpecOperation, None] = {}
        for ref in self.reads:
            match ref:
                case SpecOperation():
                    found[ref] = None
                case SpecField():
                    found.update(dict.fromkeys(ref.operations))
                case SpecEnum():
                    found.update(dict.fromkeys(ref.field.operations))
                case SpecPart():
                    found[ref.operation] = None
        return tuple(found)


PERSON = SpecOperation("sendTilPerson")
ORGANISASJON = SpecOperation("sendTilOrganisasjon")
NHN = SpecOperation("sendTilNhn")
PRINT = SpecOperation("sendTilPrint", optional=True)  # specs before version 10 have no print
_DIRECT = (PERSON, ORGANISASJON)
_LISTED = (PERSON, ORGANISASJON, PRINT)  # documents described by the metadata's list

DOKUMENTER = SpecField("dokumenter", _LISTED)
FILNAVN = SpecField("dokumenter[].filnavn", _LISTED)
MIME_TYPE = SpecField("dokumenter[].mimeType", _LISTED)
NHN_DOKUMENT = SpecPart(NHN, "dokument", since="fa18973")  # "vedlegg" before upstream version 10
PERSON_DOKUMENTER = SpecPart(PERSON, "dokumenter")
ORGANISASJON_DOKUMENTER = SpecPart(ORGANISASJON, "dokumenter")
PRINT_DOKUMENTER = SpecPart(PRINT, "dokumenter")
PERSON_DIGITAL_ID = SpecField("mottaker.digitalId", (PERSON,))
ORGANISASJON_DIGITAL_ID = SpecField("mottaker.digitalId", (ORGANISASJON,))
PASIENT_FODSELSNUMMER = SpecField("pasient.fodselsnummer", (NHN,))
EKSPONERT_FOR = SpecField("eksponertFor", (PERSON, ORGANISASJON, NHN))
SVAR_TYPE = SpecField("svarSendesTil.type", _LISTED, since="c75eba9")  # required from upstream version 15
SVAR_DIGITAL_ID = SpecField("svarSendesTil.digitalId", _LISTED)
SVAR_TIL_PERSON = SpecEnum(SVAR_TYPE, "PERSON")
SVAR_TIL_ORGANISASJON = SpecEnum(SVAR_TYPE, "ORGANISASJON")
MOTTAKERTYPE = SpecField("mottakertype", (NHN,), since="fa18973")
MOTTAKERTYPE_HER_ID = SpecEnum(MOTTAKERTYPE, "HER_ID")
MOTTAKER_HER_ID = SpecField("mottakerHerId", (NHN,))
KUN_DIGITAL_LEVERING = SpecField("kunDigitalLevering", _DIRECT)
SKAL_EKSKLUDERES = SpecField("dokumenter[].skalEkskluderesFraUtskrift", _DIRECT)
SKAL_SIGNERES = SpecField("dokumenter[].skalSigneres", (PERSON,))
SIGNERING = SpecField("signering", (PERSON,))
SIGNERING_UTLOPER = SpecField("signering.signeringUtloper", (PERSON,))
KAN_SVARE_VIA_EDIALOG = SpecField("kanSvareViaEdialog", _DIRECT, since="8320373")  # renamed in version 14
SIKKERHETSNIVA = SpecField("sikkerhetsniva", _DIRECT)
SIKKERHETSNIVA_HOYESTE = SpecEnum(SIKKERHETSNIVA, "HOYESTE")
KRYPTERT = SpecField("kryptert", (PERSON, ORGANISASJON, PRINT, NHN))

_DOCUMENTS = (DOKUMENTER, FILNAVN, MIME_TYPE, NHN_DOKUMENT)
# The part each document goes in: its name is in the part's header, so its size counts.
_FILE_PARTS = (PERSON_DOKUMENTER, ORGANISASJON_DOKUMENTER, PRINT_DOKUMENTER, NHN_DOKUMENT)
_SVAR = (SVAR_TYPE, SVAR_DIGITAL_ID)

R_FODSELSNUMMER = Binding(
    "fodselsnummer", (PERSON_DIGITAL_ID, PASIENT_FODSELSNUMMER, *_SVAR, SVAR_TIL_PERSON, EKSPONERT_FOR)
)
R_ORGANISASJONSNUMMER = Binding(
    "organisasjonsnummer", (ORGANISASJON_DIGITAL_ID, *_SVAR, SVAR_TIL_ORGANISASJON, EKSPONERT_FOR)
)
R_FILENAME_LENGTH = Binding("filename_length", _DOCUMENTS)
R_FILENAME_CHARS = Binding("filename_chars", _DOCUMENTS)
R_FILENAME_UNIQUE = Binding("filename_unique", _DOCUMENTS)
R_FILENAME_WHITESPACE = Binding("filename_whitespace", _DOCUMENTS)
R_PART_COUNT = Binding("part_count", (DOKUMENTER, *_FILE_PARTS))
R_PART_HEADER_SIZE = Binding("part_header_size", (*_DOCUMENTS, *_FILE_PARTS))
R_NHN_SINGLE_DOCUMENT = Binding("nhn_single_document", (NHN_DOKUMENT,))
R_NHN_PDF = Binding("nhn_pdf", (NHN_DOKUMENT, MIME_TYPE))
R_NHN_SIZE = Binding("nhn_size", (NHN_DOKUMENT,))
R_HER_ID_REQUIRED = Binding("her_id_required", (MOTTAKERTYPE, MOTTAKERTYPE_HER_ID, MOTTAKER_HER_ID))
R_PRINT_PDF = Binding("print_pdf", (PRINT, *_DOCUMENTS))
R_PRINTABLE = Binding("printable", (*_DOCUMENTS, KUN_DIGITAL_LEVERING, SKAL_EKSKLUDERES))
R_TOTAL_SIZE = Binding("total_size", (PRINT, *_DOCUMENTS, KUN_DIGITAL_LEVERING))
R_SINGLE_SIGNATURE = Binding("single_signature", (*_DOCUMENTS, SKAL_SIGNERES))
R_SIGNATURE_PDF = Binding("signature_pdf", (*_DOCUMENTS, SKAL_SIGNERES))
R_SIGNERING_REQUIRED = Binding("signering_required", (*_DOCUMENTS, SKAL_SIGNERES, SIGNERING))
R_SIGNERING_EXPIRY = Binding("signering_expiry", (SIGNERING, SIGNERING_UTLOPER))
R_EDIALOG_REQUIRES_ORG = Binding("edialog_requires_org", (KAN_SVARE_VIA_EDIALOG, SVAR_TYPE, SVAR_TIL_ORGANISASJON))
R_HOYESTE_REQUIRES_KRYPTERT = Binding("hoyeste_requires_kryptert", (SIKKERHETSNIVA, SIKKERHETSNIVA_HOYESTE, KRYPTERT))
R_KRYPTERT_REQUIRES_CMS = Binding("kryptert_requires_cms", (KRYPTERT, *_DOCUMENTS))
R_CONTENT_MISMATCH = Binding("content_mismatch", (KRYPTERT, *_DOCUMENTS))

BINDINGS: tuple[Binding, ...] = (
    R_FODSELSNUMMER,
    R_ORGANISASJONSNUMMER,
    R_FILENAME_LENGTH,
    R_FILENAME_CHARS,
    R_FILENAME_UNIQUE,
    R_FILENAME_WHITESPACE,
    R_PART_COUNT,
    R_PART_HEADER_SIZE,
    R_NHN_SINGLE_DOCUMENT,
    R_NHN_PDF,
    R_NHN_SIZE,
    R_HER_ID_REQUIRED,
    R_PRINT_PDF,
    R_PRINTABLE,
    R_TOTAL_SIZE,
    R_SINGLE_SIGNATURE,
    R_SIGNATURE_PDF,
    R_SIGNERING_REQUIRED,
    R_SIGNERING_EXPIRY,
    R_EDIALOG_REQUIRES_ORG,
    R_HOYESTE_REQUIRES_KRYPTERT,
    R_KRYPTERT_REQUIRES_CMS,
    R_CONTENT_MISMATCH,
)
RULE_IDS: tuple[str, ...] = tuple(b.rule for b in BINDINGS)
_FILE_PART_OF = {part.operation.operation_id: part for part in _FILE_PARTS}


# --- identifiers ---------------------------------------------------------------


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 control digit for ``digits``, or None where none exists."""
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return None if remainder == 1 else (11 - remainder) % 11


def _digits(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and value.isascii() and value.isdigit()


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    # Callers pass as many digits as weights (checked by _digits).
    total: int = sum(map(operator.mul, map(int, digits), weights))
    return total % 11


def fodselsnummer_problem(value: object, *, synthetic: bool = False) -> str | None:
    """Why ``value`` is not a fødselsnummer or d-nummer, or None if it is one.

    ``synthetic`` also accepts Skatteetaten's synthetic test numbers (Tenor),
    whose month has 80 added.

    The control digits k1 and k2 (digits 10 and 11), with the weights
    ``w1 = 3 7 6 1 8 9 4 5 2`` and ``w2 = 5 4 3 2 7 6 5 4 3 2``:

    - k1: ``(Σ w1·d[1..9] + k1) mod 11`` is 0 for numbers issued until 2031,
      and may also be 1, 2 or 3 for numbers issued from 1 January 2032
      (Skatteetaten: Nytt fødselsnummer fra 2032). The new rule includes the
      old one, so a number passes if either holds.
    - k2: ``(Σ w2·d[1..10] + k2) mod 11`` is 0, as before.

    The date part (DDMM) is still checked; nothing else (such as gender or
    age) is read from the number.
    """
    if not _digits(value, 11):
        return "must be 11 digits"
    assert isinstance(value, str)
    day, month = int(value[:2]), int(value[2:4])
    if 41 <= day <= 71:
        day -= 40  # d-nummer
    if synthetic and 81 <= month <= 92:
        month -= 80
    if not (1 <= day <= 31 and 1 <= month <= 12):
        hint = "" if synthetic or not 81 <= month <= 92 else "; a synthetic test number is accepted only in test"
        return f"does not start with a valid date (DDMMYY; day +40 for a d-nummer){hint}"
    k1_ok = _weighted(value[:10], _FNR_WEIGHTS[0]) in _FNR_K1_REMAINDERS
    if not k1_ok or _weighted(value, _FNR_WEIGHTS[1]) != 0:
        return "has wrong control digits (check for a typo)"
    return None


def organisasjonsnummer_problem(value: object) -> str | None:
    """Why ``value`` is not an organisasjonsnummer, or None if it is one."""
    if not _digits(value, 9):
        return "must be 9 digits"
    assert isinstance(value, str)
    if _mod11(value[:8], _ORGNR_WEIGHTS) != int(value[8]):
        return "has a wrong control digit (check for a typo)"
    return None


def valid_fodselsnummer(value: str, *, synthetic: bool = False) -> bool:
    """True if ``value`` is a well-formed fødselsnummer or d-nummer."""
    return fodselsnummer_problem(value, synthetic=synthetic) is None


def valid_organisasjonsnummer(value: str) -> bool:
    """True if ``value`` is a well-formed organisasjonsnummer."""
    return organisasjonsnummer_problem(value) is None


def is_cms_enveloped_data(head: bytes) -> bool:
    """Whether ``head``, a document's first bytes, starts a CMS EnvelopedData:
    a SEQUENCE (any DER length form, or BER's indefinite ``30 80``) whose first
    element is the OID 1.2.840.113549.1.7.3."""
    if len(head) < 2 or head[0] != 0x30:
        return False
    length = head[1]
    start = 2 if length <= 0x80 else 2 + (length & 0x7F)
    return head[start : start + len(_ENVELOPED_DATA_OID)] == _ENVELOPED_DATA_OID


def part_header_size(part: str, filnavn: str, mime_type: str) -> int:
    """The bytes Tomcat counts against ``maxPartHeaderSize`` for the document
    part the client writes for ``filnavn`` of ``mime_type`` in part ``part``.

    Tomcat's copy of Commons FileUpload (``MultipartStream.readHeaders``, as
    in FileUpload 1.6 / 2.0.0-M4, merged into Tomcat for CVE-2025-48988) reads
    the header section byte by byte after ``readBoundary`` has consumed the
    boundary line and its CRLF, counts every byte it reads, the CRLF ending
    each header line and the CRLF of the blank line included (it stops after
    the ``CRLFCRLF``), and throws a size-limit exception as soon as the count
    passes the limit (``++size > partHeaderSizeMax``): a header section of
    exactly the limit passes, one byte more is refused. So the size is the
    encoder's part head minus its boundary line.
    """
    return len(_part_head(_BOUNDARY, part, mime_type, filnavn)) - _BOUNDARY_LINE


@cache
def _empty_header_size(part: str) -> int:
    return part_header_size(part, "", "")


def tomcat_filename(filnavn: str) -> str:
    """The name Tomcat's ``Part.getSubmittedFileName()`` reports for the part
    the client writes for ``filnavn``: the filename as the encoder quotes it
    (Tomcat percent-decodes nothing), trimmed as Java's ``String.trim()`` trims."""
    return quote_param(filnavn).strip(JAVA_TRIMMED)


# --- the forsendelse as the rules see it -----------------------------------------


@dataclass(slots=True)  # built per send: a frozen init costs a call per field
class _Doc:
    path: str  # "dokumenter[2]", or "dokument" for NHN
    filnavn: str
    mime_type: str  # as given
    meta: Mapping[str, Any]  # its item of the metadata's document list; empty for NHN
    source: Source | None

    @property
    def kind(self) -> str:
        """The MIME type in lower case, without parameters."""
        return self.mime_type.split(";")[0].strip().lower()

    @property
    def is_pdf(self) -> bool:
        return self.kind == PDF

    def field(self, field: SpecField) -> str:
        """The problem path of ``field`` (``dokumenter[].x``) in this document."""
        return f"{self.path}.{field.key}"


@dataclass(slots=True)
class _Send:
    operation: str
    meta: Mapping[str, Any]
    docs: tuple[_Doc, ...]
    synthetic: bool
    encrypting: bool
    clock: Callable[[], datetime]
    max_parts: int
    max_part_header: int

    def now(self) -> datetime:
        """The current time, aware; asked only by a rule that needs it (few sends do)."""
        return _aware(self.clock())

    def is_(self, *operations: SpecOperation) -> bool:
        return self.operation in [o.operation_id for o in operations]  # no generator: called per rule

    def get(self, field: SpecField) -> Any:
        """The value at ``field``, or None if absent or not a field of this operation."""
        if self.operation not in field.operation_ids:
            return None
        value: Any = self.meta
        for key in field.steps:
            # The metadata is plain dicts (model_dump); the ABC check is the slow fallback.
            if value is None or not isinstance(value, (dict, Mapping)):
                return None
            value = value.get(key)
        return value

    def flag(self, field: SpecField) -> bool:
        return self.get(field) is True

    def equals(self, enum: SpecEnum) -> bool:
        return bool(self.get(enum.field) == enum.value)

    def doc(self, d: _Doc, field: SpecField) -> Any:
        """The value of ``field`` (``dokumenter[].x``) in document ``d``."""
        return d.meta.get(field.steps[-1]) if self.operation in field.operation_ids else None

    @property
    def total_size(self) -> int:
        return sum(d.source.size or 0 for d in self.docs if d.source is not None)


def _docs(send: PreparedSend) -> tuple[_Doc, ...]:
    if send.operation_id == NHN.operation_id:
        return tuple(_Doc(NHN_DOKUMENT.name, d.filnavn, d.mime_type, {}, d.source) for d in send.documents)
    listed = DOKUMENTER.applies_to(send.operation_id)
    items = (send.metadata.get(DOKUMENTER.key) if listed else None) or []
    docs = []
    for i in range(max(len(items), len(send.documents))):
        meta = items[i] if i < len(items) and isinstance(items[i], (dict, Mapping)) else {}
        doc = send.documents[i] if i < len(send.documents) else None
        filnavn = doc.filnavn if doc else str(meta.get(FILNAVN.key, ""))
        mime = doc.mime_type if doc else str(meta.get(MIME_TYPE.key, ""))
        docs.append(_Doc(f"{DOKUMENTER.path}[{i}]", filnavn, mime, meta, doc.source if doc else None))
    return tuple(docs)


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
    part = _FILE_PART_OF.get(s.operation)
    if part is None:
        return  # an operation the table does not know: its part's name, and so its header, is unknown
    for d in sent:
        # Quoted and in UTF-8, no character takes more than 4 bytes: most names are clear of the
        # limit by that bound alone, and the exact count (building the header) is left for the rest.
        if _empty_header_size(part.name) + 4 * (len(d.filnavn) + len(d.mime_type)) <= s.max_part_header:
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
    digital_only = s.flag(KUN_DIGITAL_LEVERING)
    if s.is_(PRINT):
        for d in s.docs:
            if not d.is_pdf:
                yield Problem(
                    d.field(MIME_TYPE), R_PRINT_PDF.rule, f"{d.filnavn!r} is {d.mime_type!r}; print takes only {PDF}"
                )
    elif s.is_(*_DIRECT) and not digital_only:
        for d in s.docs:
            if not d.is_pdf and s.doc(d, SKAL_EKSKLUDERES) is not True:
                yield Problem(
                    d.field(MIME_TYPE),
                    R_PRINTABLE.rule,
                    f"{d.filnavn!r} is {d.mime_type!r} and only {PDF} can be printed; set {SKAL_EKSKLUDERES.key} "
                    f"on the document or {KUN_DIGITAL_LEVERING.path} on the forsendelse",
                )
    if s.is_(PRINT) or (s.is_(*_DIRECT) and not digital_only):
        total = s.total_size
        if total > TOTAL_MAX_BYTES:
            fix = (
                "split it into several forsendelser"
                if s.is_(PRINT)
                else f"set {KUN_DIGITAL_LEVERING.path}, or split it"
            )
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
        head = d.source.head(_CMS_HEAD_BYTES)
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
        head = d.source.head(_CMS_HEAD_BYTES if kryptert else _SNIFF_BYTES)
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


_RULES: tuple[Rule, ...] = (
    _identifiers,
    _filenames,
    _multipart,
    _nhn,
    _printing,
    _signing,
    _combinations,
    _encryption,
    _content,
)


# --- a rule that cannot read what it checks refuses the send ---------------------------

# Worked out once per operation's shape; the shape is kept here too, so its id is never reused.
_UNREADABLE: dict[int, tuple[operations.ModelShape, tuple[Problem, ...]]] = {}


def binding_problems(shape: operations.ModelShape, operation_id: str) -> tuple[Problem, ...]:
    """A problem (under the rule's id) for every field, enum value or part a
    rule reads in sends of ``operation_id`` that ``shape`` does not have:
    such a rule would read nothing and pass every send, so the send is
    refused instead. Empty when every binding holds."""
    cached = _UNREADABLE.get(id(shape))
    if cached is not None and cached[0] is shape:
        return cached[1]
    found: dict[tuple[str, str], Problem] = {}  # (rule, field): one problem each
    for binding in BINDINGS:
        for ref in binding.reads:
            problem = _unreadable(binding.rule, ref, shape, operation_id)
            if problem is not None:
                found.setdefault((problem.rule, problem.field), problem)
    problems = tuple(found.values())
    _UNREADABLE[id(shape)] = (shape, problems)
    return problems


def _unreadable(rule: str, ref: SpecRef, shape: operations.ModelShape, operation_id: str) -> Problem | None:
    advice = (
        "the spec it was generated from no longer matches the rule's binding (make generate says so); update "
        f"svarut.runtime.validation.BINDINGS and the rule to the spec, or pass ForsendelseRules(skip={{{rule!r}}}) "
        "to send without this rule"
    )
    match ref:
        case SpecField() | SpecEnum():
            field = ref if isinstance(ref, SpecField) else ref.field
            if not field.applies_to(operation_id):
                return None
            if field.since and field.binding_key in shape.predated:
                return None  # generated from a spec older than the field: it cannot be sent, so nothing to check
            if field.path not in shape.paths:
                message = f"cannot check {rule}: this client's {shape.model} has no field {field.path}; {advice}"
                return Problem(field.path, rule, message)
            values = shape.enums.get(field.path)
            if isinstance(ref, SpecEnum) and values is not None and ref.value not in values:
                message = (
                    f"cannot check {rule}: this client's {shape.model}.{field.path} has no value {ref.value} "
                    f"(only {', '.join(sorted(values))}); {advice}"
                )
                return Problem(field.path, rule, message)
        case SpecPart():
            if ref.since and ref.binding_key in shape.predated:
                return None
            if ref.operation.operation_id == operation_id and ref.name not in shape.parts:
                message = f"cannot check {rule}: this client's {operation_id} has no part {ref.name}; {advice}"
                return Problem(ref.name, rule, message)
        case SpecOperation():
            pass  # the send is of the operation it is: nothing to be missing
    return None


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


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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
        """Every problem with ``send``; empty if it may be sent."""
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
        )
        found = [problem for rule in _RULES for problem in rule(view) if problem.rule not in self.skip]
        if unreadable:  # first: what makes a rule unable to check anything at all
            found[:0] = [problem for problem in unreadable if problem.rule not in self.skip]
        return found

    def __call__(self, send: PreparedSend) -> None:
        problems = self.problems(send)
        if problems:
            raise ForsendelseValidationError(problems)
