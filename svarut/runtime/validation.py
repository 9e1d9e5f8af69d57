"""Pre-send checks for the rules the SvarUt spec states only in prose.

:class:`ForsendelseRules` is a pre-send check (``checks=[ForsendelseRules()]``
on a client): it looks at the serialized forsendelse (the spec's camelCase
names) and its documents in wire order, collects every broken rule, and raises
one :class:`~svarut.runtime.errors.ForsendelseValidationError` before any
connection is opened. Each problem names the field (``mottaker.digitalId``,
``dokumenter[1].filnavn``; the NHN document is ``dokument``), a rule id and
what to do about it. Messages never contain document contents or personal
identifiers.

Rule ids:

``fodselsnummer``
    ``mottaker.digitalId`` (person), ``pasient.fodselsnummer`` (NHN),
    ``svarSendesTil.digitalId`` (type PERSON) and 11-character entries of
    ``eksponertFor`` must be a fødselsnummer or d-nummer: 11 digits, day 1-31
    (41-71 for a d-nummer), month 1-12 (81-92 for a synthetic Tenor number,
    only with ``environment="test"``), valid mod-11 control digits.
``organisasjonsnummer``
    ``mottaker.digitalId`` (organisasjon), ``svarSendesTil.digitalId`` (type
    ORGANISASJON) and other entries of ``eksponertFor`` must be an
    organisasjonsnummer: 9 digits, valid mod-11 control digit.
``filename_length``, ``filename_chars``, ``filename_unique``
    Each filnavn has 1-226 characters, none of ``* : " \\ / < > | ?`` or a
    control character, and appears once in the forsendelse.
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
    ``sikkerhetsniva`` HOYESTE needs ``kryptert``.
``content_mismatch``
    A document of a well-known type (PDF, PNG, JPEG, GIF, ZIP and the OOXML
    formats) starts with that type's signature, sniffed from its first bytes
    only. Skipped for ``kryptert`` forsendelser (the content is then CMS) and
    for sources that cannot be read ahead (a pipe).

MB is 1024 × 1024 bytes; sizes come from the sources (a pipe's size is unknown
and counts as 0). MIME types compare case-insensitively, without parameters.
The check never imports the generated models: it reads the dict that will be
sent, so it holds for any version of the spec that keeps these field names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from svarut.runtime.client import PreparedSend
from svarut.runtime.errors import ForsendelseValidationError, Problem
from svarut.runtime.files import Source

__all__ = [
    "FILENAME_MAX_LENGTH",
    "MAGIC",
    "NHN_MAX_BYTES",
    "TOTAL_MAX_BYTES",
    "ForsendelseRules",
    "fodselsnummer_problem",
    "organisasjonsnummer_problem",
    "valid_fodselsnummer",
    "valid_organisasjonsnummer",
]

MB = 1024 * 1024
NHN_MAX_BYTES = 18 * MB
TOTAL_MAX_BYTES = 350 * MB
FILENAME_MAX_LENGTH = 226
FORBIDDEN_FILENAME_CHARS = frozenset('*:"\\/<>|?')
PDF = "application/pdf"

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

_FNR_WEIGHTS = ((3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)

PERSON, ORGANISASJON, NHN, PRINT = "sendTilPerson", "sendTilOrganisasjon", "sendTilNhn", "sendTilPrint"


# --- identifiers ---------------------------------------------------------------


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 control digit for ``digits``, or None where none exists."""
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return None if remainder == 1 else (11 - remainder) % 11


def _digits(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and value.isascii() and value.isdigit()


def fodselsnummer_problem(value: object, *, synthetic: bool = False) -> str | None:
    """Why ``value`` is not a fødselsnummer or d-nummer, or None if it is one.

    ``synthetic`` also accepts Skatteetaten's synthetic test numbers (Tenor),
    whose month has 80 added.
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
    k1 = _mod11(value[:9], _FNR_WEIGHTS[0])
    k2 = _mod11(value[:10], _FNR_WEIGHTS[1])
    if k1 is None or k2 is None or value[9:] != f"{k1}{k2}":
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


# --- the forsendelse as the rules see it -----------------------------------------


@dataclass(frozen=True)
class _Doc:
    path: str  # "dokumenter[2]", or "dokument" for NHN
    filnavn: str
    mime_type: str  # as given
    meta: Mapping[str, Any]
    source: Source | None

    @property
    def kind(self) -> str:
        """The MIME type in lower case, without parameters."""
        return self.mime_type.split(";")[0].strip().lower()

    @property
    def is_pdf(self) -> bool:
        return self.kind == PDF


@dataclass(frozen=True)
class _Send:
    operation: str
    meta: Mapping[str, Any]
    docs: tuple[_Doc, ...]
    synthetic: bool
    now: datetime

    def get(self, dotted: str) -> Any:
        value: Any = self.meta
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    def flag(self, dotted: str) -> bool:
        return self.get(dotted) is True

    @property
    def total_size(self) -> int:
        return sum(d.source.size or 0 for d in self.docs if d.source is not None)


def _docs(send: PreparedSend) -> tuple[_Doc, ...]:
    if send.operation_id == NHN:
        return tuple(_Doc("dokument", d.filnavn, d.mime_type, {}, d.source) for d in send.documents)
    items = send.metadata.get("dokumenter") or []
    docs = []
    for i in range(max(len(items), len(send.documents))):
        meta = items[i] if i < len(items) and isinstance(items[i], Mapping) else {}
        doc = send.documents[i] if i < len(send.documents) else None
        filnavn = doc.filnavn if doc else str(meta.get("filnavn", ""))
        mime = doc.mime_type if doc else str(meta.get("mimeType", ""))
        docs.append(_Doc(f"dokumenter[{i}]", filnavn, mime, meta, doc.source if doc else None))
    return tuple(docs)


# --- the rules: each yields the problems it finds ---------------------------------

Rule = Callable[[_Send], Iterator[Problem]]


# Whose digitalId is which kind of number, by operation and by svarSendesTil.type.
_MOTTAKER_ID = {
    PERSON: ("mottaker.digitalId", "fodselsnummer"),
    ORGANISASJON: ("mottaker.digitalId", "organisasjonsnummer"),
    NHN: ("pasient.fodselsnummer", "fodselsnummer"),
}
_SVAR_ID = {"PERSON": "fodselsnummer", "ORGANISASJON": "organisasjonsnummer"}
_ID_CHECKS: dict[str, tuple[str, Callable[[object, bool], str | None]]] = {
    "fodselsnummer": (
        "a fødselsnummer or d-nummer",
        lambda v, synthetic: fodselsnummer_problem(v, synthetic=synthetic),
    ),
    "organisasjonsnummer": ("an organisasjonsnummer", lambda v, _: organisasjonsnummer_problem(v)),
}


def _identifiers(s: _Send) -> Iterator[Problem]:
    wanted: list[tuple[str, object, str, str]] = []  # (field, value, rule, extra hint)
    if s.operation in _MOTTAKER_ID:
        field, rule = _MOTTAKER_ID[s.operation]
        wanted.append((field, s.get(field), rule, ""))
    svar_rule = _SVAR_ID.get(s.get("svarSendesTil.type"))
    if svar_rule:
        wanted.append(("svarSendesTil.digitalId", s.get("svarSendesTil.digitalId"), svar_rule, ""))
    for i, entry in enumerate(s.get("eksponertFor") or []):
        is_fnr = isinstance(entry, str) and len(entry) == 11
        hint = "" if is_fnr else " (nor an 11-digit fødselsnummer)"
        wanted.append((f"eksponertFor[{i}]", entry, "fodselsnummer" if is_fnr else "organisasjonsnummer", hint))
    for field, value, rule, hint in wanted:
        what, check = _ID_CHECKS[rule]
        why = check(value, s.synthetic)
        if why is not None:
            yield Problem(field, rule, f"is not {what}{hint}: it {why}")


def _filenames(s: _Send) -> Iterator[Problem]:
    seen: set[str] = set()
    for d in s.docs:
        field = f"{d.path}.filnavn"
        if not 1 <= len(d.filnavn) <= FILENAME_MAX_LENGTH:
            yield Problem(
                field, "filename_length", f"{d.filnavn!r} has {len(d.filnavn)} characters; use 1-{FILENAME_MAX_LENGTH}"
            )
        bad = sorted({ch for ch in d.filnavn if ch in FORBIDDEN_FILENAME_CHARS or unicodedata.category(ch) == "Cc"})
        if bad:
            shown = " ".join(repr(ch) for ch in bad)
            yield Problem(field, "filename_chars", f"{d.filnavn!r} contains {shown}; rename the file without them")
        if d.filnavn in seen:
            yield Problem(
                field, "filename_unique", f"{d.filnavn!r} appears more than once; give each document its own name"
            )
        seen.add(d.filnavn)


def _nhn(s: _Send) -> Iterator[Problem]:
    if s.operation != NHN:
        return
    if len(s.docs) != 1:
        yield Problem("dokument", "nhn_single_document", f"NHN takes exactly one document, got {len(s.docs)}")
    for d in s.docs:
        if not d.is_pdf:
            yield Problem(f"{d.path}.mimeType", "nhn_pdf", f"{d.filnavn!r} is {d.mime_type!r}; NHN takes only {PDF}")
        size = d.source.size if d.source else None
        if size is not None and size > NHN_MAX_BYTES:
            yield Problem(d.path, "nhn_size", f"{d.filnavn!r} is {_mb(size)}; NHN takes at most {_mb(NHN_MAX_BYTES)}")
    if s.get("mottakertype") == "HER_ID" and s.get("mottakerHerId") is None:
        yield Problem("mottakerHerId", "her_id_required", "is required when mottakertype is HER_ID; give the HER-id")


def _printing(s: _Send) -> Iterator[Problem]:
    digital_only = s.flag("kunDigitalLevering")
    if s.operation == PRINT:
        for d in s.docs:
            if not d.is_pdf:
                yield Problem(
                    f"{d.path}.mimeType", "print_pdf", f"{d.filnavn!r} is {d.mime_type!r}; print takes only {PDF}"
                )
    elif s.operation in (PERSON, ORGANISASJON) and not digital_only:
        for d in s.docs:
            if not d.is_pdf and d.meta.get("skalEkskluderesFraUtskrift") is not True:
                yield Problem(
                    f"{d.path}.mimeType",
                    "printable",
                    f"{d.filnavn!r} is {d.mime_type!r} and only {PDF} can be printed; set skalEkskluderesFraUtskrift "
                    "on the document or kunDigitalLevering on the forsendelse",
                )
    if s.operation == PRINT or (s.operation in (PERSON, ORGANISASJON) and not digital_only):
        total = s.total_size
        if total > TOTAL_MAX_BYTES:
            fix = (
                "split it into several forsendelser" if s.operation == PRINT else "set kunDigitalLevering, or split it"
            )
            yield Problem(
                "dokumenter",
                "total_size",
                f"the documents total {_mb(total)}; a forsendelse that can go to print takes at most "
                f"{_mb(TOTAL_MAX_BYTES)}: {fix}",
            )


def _signing(s: _Send) -> Iterator[Problem]:
    signed = [d for d in s.docs if d.meta.get("skalSigneres") is True]
    for d in signed[1:]:
        yield Problem(
            f"{d.path}.skalSigneres",
            "single_signature",
            f"only one document can be signed, and {signed[0].filnavn!r} already is",
        )
    for d in signed:
        if not d.is_pdf:
            yield Problem(
                f"{d.path}.skalSigneres", "signature_pdf", f"{d.filnavn!r} is {d.mime_type!r}; only a PDF can be signed"
            )
    signering = s.get("signering")
    if signed and not isinstance(signering, Mapping):
        yield Problem("signering", "signering_required", "is required when a document has skalSigneres; set it")
    if isinstance(signering, Mapping):
        earliest = s.now + timedelta(days=1)
        expiry = _parse_datetime(signering.get("signeringUtloper"))
        if expiry is None or expiry < earliest:
            yield Problem(
                "signering.signeringUtloper",
                "signering_expiry",
                f"must be at least one day ahead, at or after {earliest.isoformat(timespec='seconds')}",
            )


def _combinations(s: _Send) -> Iterator[Problem]:
    if s.flag("kanSvareViaEdialog") and s.get("svarSendesTil.type") != "ORGANISASJON":
        yield Problem(
            "kanSvareViaEdialog",
            "edialog_requires_org",
            "requires svarSendesTil with type ORGANISASJON and its organisasjonsnummer",
        )
    if s.get("sikkerhetsniva") == "HOYESTE" and not s.flag("kryptert"):
        yield Problem(
            "sikkerhetsniva", "hoyeste_requires_kryptert", "HOYESTE requires encrypted documents: set kryptert"
        )


def _content(s: _Send) -> Iterator[Problem]:
    if s.flag("kryptert"):
        return
    for d in s.docs:
        prefixes = MAGIC.get(d.kind)
        if prefixes is None or d.source is None:
            continue
        head = d.source.head(_SNIFF_BYTES)
        if not head and d.source.size != 0:
            continue  # cannot be read ahead (a pipe)
        if not head.startswith(prefixes):
            looks = next((t for t, p in MAGIC.items() if head and head.startswith(p)), None)
            what = "is empty" if not head else f"looks like {looks}" if looks else f"does not start like {d.kind}"
            yield Problem(
                f"{d.path}.mimeType",
                "content_mismatch",
                f"{d.filnavn!r} is declared {d.mime_type!r} but {what}; send the right file or fix its mimeType",
            )


_RULES: tuple[Rule, ...] = (_identifiers, _filenames, _nhn, _printing, _signing, _combinations, _content)


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
    deadline); it defaults to the system clock.
    """

    def __init__(
        self, *, environment: Literal["test", "prod"] = "prod", now: Callable[[], datetime] | None = None
    ) -> None:
        if environment not in ("test", "prod"):
            raise ValueError(f"environment must be 'test' or 'prod', got {environment!r}")
        self.environment = environment
        self._now = now or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"ForsendelseRules(environment={self.environment!r})"

    def problems(self, send: PreparedSend) -> list[Problem]:
        """Every problem with ``send``; empty if it may be sent."""
        view = _Send(send.operation_id, send.metadata, _docs(send), self.environment == "test", _aware(self._now()))
        return [problem for rule in _RULES for problem in rule(view)]

    def __call__(self, send: PreparedSend) -> None:
        problems = self.problems(send)
        if problems:
            raise ForsendelseValidationError(problems)
