"""The binding table of the pre-send rules: every spec name a rule reads.

The rules (:mod:`svarut.runtime.validation`) read the forsendelse only through
the objects declared here (:class:`SpecOperation`, :class:`SpecField`,
:class:`SpecEnum`, :class:`SpecPart`, one :class:`Binding` per rule in
:data:`BINDINGS`), never by a string of their own. ``generator.check_rules``
verifies each against the locked spec whenever the client is generated, and
:func:`binding_problems` checks them against what a generated client's models
have, so a rule that could not read its field refuses the send instead of
passing it unchecked.

All of these names are importable from :mod:`svarut.runtime.validation` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from svarut.runtime.errors import Problem

if TYPE_CHECKING:
    from svarut.runtime.operations import ModelShape

__all__ = [
    "BINDINGS",
    "RULE_IDS",
    "Binding",
    "SpecEnum",
    "SpecField",
    "SpecOperation",
    "SpecPart",
    "SpecRef",
    "binding_problems",
]


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
DIRECT = (PERSON, ORGANISASJON)
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
KUN_DIGITAL_LEVERING = SpecField("kunDigitalLevering", DIRECT)
SKAL_EKSKLUDERES = SpecField("dokumenter[].skalEkskluderesFraUtskrift", DIRECT)
SKAL_SIGNERES = SpecField("dokumenter[].skalSigneres", (PERSON,))
SIGNERING = SpecField("signering", (PERSON,))
SIGNERING_UTLOPER = SpecField("signering.signeringUtloper", (PERSON,))
KAN_SVARE_VIA_EDIALOG = SpecField("kanSvareViaEdialog", DIRECT, since="8320373")  # renamed in version 14
SIKKERHETSNIVA = SpecField("sikkerhetsniva", DIRECT)
SIKKERHETSNIVA_HOYESTE = SpecEnum(SIKKERHETSNIVA, "HOYESTE")
KRYPTERT = SpecField("kryptert", (PERSON, ORGANISASJON, PRINT, NHN))
# Every postal address a forsendelse has: the recipient's (for print) and the return address.
# Specs before upstream version 08 called landkode "land" (free text).
MOTTAKER_POSTNUMMER = SpecField("mottaker.adresse.postnummer", _LISTED)
MOTTAKER_LANDKODE = SpecField("mottaker.adresse.landkode", _LISTED, since="cb6fdd0")
SVAR_POSTNUMMER = SpecField("svarSendesTil.adresse.postnummer", _LISTED)
SVAR_LANDKODE = SpecField("svarSendesTil.adresse.landkode", _LISTED, since="cb6fdd0")
#: (postnummer, landkode) of each address.
POSTAL_ADDRESSES = ((MOTTAKER_POSTNUMMER, MOTTAKER_LANDKODE), (SVAR_POSTNUMMER, SVAR_LANDKODE))

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
R_POSTNUMMER = Binding("postnummer", tuple(field for address in POSTAL_ADDRESSES for field in address))

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
    R_POSTNUMMER,
)
RULE_IDS: tuple[str, ...] = tuple(b.rule for b in BINDINGS)
FILE_PART_OF = {part.operation.operation_id: part for part in _FILE_PARTS}


# --- a rule that cannot read what it checks refuses the send ---------------------------

# Worked out once per operation's shape; the shape is kept here too, so its id is never reused.
_UNREADABLE: dict[int, tuple[ModelShape, tuple[Problem, ...]]] = {}


def binding_problems(shape: ModelShape, operation_id: str) -> tuple[Problem, ...]:
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


def _unreadable(rule: str, ref: SpecRef, shape: ModelShape, operation_id: str) -> Problem | None:
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
