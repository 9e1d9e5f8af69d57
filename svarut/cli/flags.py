"""The flag table of ``svarut send``: each convenience flag sets
one spec JSON path (``--mottaker-navn`` -> ``mottaker.navn``) of the
forsendelse, or of a named document.

A flag is offered on a ``send`` subcommand exactly when that operation's
model has the path (found by walking the generated pydantic models by the
spec's names), so a field that comes or goes upstream takes its flag with it,
and :func:`unused_flags` (run by the tests against the locked spec) fails
for a flag that no model has any more. The option's type comes from the
model: a ``bool`` is an on/off flag, an enum a choice of its values, an
``int`` an integer. Every other field is reached with ``--metadata`` or
``--felt PATH=JSON``. The same table, reversed, names the flag in validation
messages.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    # pydantic is imported when a send command is built, not by ``svarut --help``.
    from pydantic import BaseModel

__all__ = [
    "DOCUMENT_NAME_FIELD",
    "DOCUMENT_TYPE_FIELD",
    "FLAGS",
    "Flag",
    "field_alias",
    "leaf_type",
    "resolve",
    "unused_flags",
]

#: The Python names of the document model fields a file fills in: its name and its MIME type.
DOCUMENT_NAME_FIELD = "filnavn"
DOCUMENT_TYPE_FIELD = "mime_type"


@dataclass(frozen=True)
class Flag:
    """A row of the flag table: ``flag`` sets ``path`` (the spec's JSON names, dotted).

    ``target="dokument"``: the path is in each document's metadata, and the
    flag takes a filnavn (repeatable) whose document gets ``true`` there.
    ``repeat=n``: the flag may be given up to n times, filling
    ``path.format(1)``, ``path.format(2)``, ... ``kinds`` restricts it to
    these send operations (otherwise: every operation whose model has the path).
    """

    flag: str
    path: str
    help: str
    aliases: tuple[str, ...] = ()
    kinds: frozenset[str] | None = None
    target: Literal["forsendelse", "dokument"] = "forsendelse"
    repeat: int = 1

    @property
    def name(self) -> str:
        """The click parameter name."""
        return "flag_" + self.flag.lstrip("-").replace("-", "_")

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self.path.format(i) for i in range(1, self.repeat + 1)) if self.repeat > 1 else (self.path,)


FLAGS: tuple[Flag, ...] = (
    Flag("--tittel", "tittel", "The title."),
    Flag("--ekstern-referanse", "eksternReferanse", "Your reference; one is generated if not given."),
    Flag("--korrelasjonsid", "korrelasjonsid", "Groups forsendelser."),
    Flag("--avgivende-system", "avgivendeSystem", "The sending system."),
    Flag("--mottaker-navn", "mottaker.navn", "The mottaker's name."),
    Flag(
        "--fodselsnummer",
        "mottaker.digitalId",
        "The person's fødselsnummer or d-nummer.",
        aliases=("--mottaker-id",),
        kinds=frozenset({"person"}),
    ),
    Flag(
        "--orgnr",
        "mottaker.digitalId",
        "The organisasjonsnummer.",
        aliases=("--mottaker-id",),
        kinds=frozenset({"organisasjon"}),
    ),
    Flag("--adresselinje", "mottaker.adresse.adresselinje{}", "An address line (repeat, up to three).", repeat=3),
    Flag("--postnummer", "mottaker.adresse.postnummer", "Postnummer."),
    Flag("--poststed", "mottaker.adresse.poststed", "Poststed."),
    Flag("--landkode", "mottaker.adresse.landkode", "ISO 3166-1 alpha-2 country code (default: Norway)."),
    Flag("--kun-digital", "kunDigitalLevering", "Never print."),
    Flag("--sikkerhetsniva", "sikkerhetsniva", "The security level."),
    Flag("--forsendelsestype", "forsendelsestype", "The type of forsendelse, for the receiving system."),
    Flag(
        "--ekskluder-fra-utskrift",
        "skalEkskluderesFraUtskrift",
        "Leave the document FILNAVN out of print (repeatable).",
        target="dokument",
    ),
    Flag("--mottakertype", "mottakertype", "FASTLEGE, or HER_ID with --her-id."),
    Flag("--her-id", "mottakerHerId", "The mottaker's HER-id."),
    Flag("--beskrivelse", "beskrivelse", "What the forsendelse is about, beyond the title."),
    Flag("--pasient-fodselsnummer", "pasient.fodselsnummer", "The patient's fødselsnummer."),
    Flag("--pasient-fornavn", "pasient.fornavn", "The patient's first name."),
    Flag("--pasient-mellomnavn", "pasient.mellomnavn", "The patient's middle name."),
    Flag("--pasient-etternavn", "pasient.etternavn", "The patient's last name."),
    Flag("--avsender-fornavn", "avsenderKontakt.fornavn", "Contact person at the sender: first name."),
    Flag("--avsender-mellomnavn", "avsenderKontakt.mellomnavn", "Contact person at the sender: middle name."),
    Flag("--avsender-etternavn", "avsenderKontakt.etternavn", "Contact person at the sender: last name."),
    Flag("--avsender-telefon", "avsenderKontakt.telefonnummer", "Contact person at the sender: phone."),
)


# --- walking the models by the spec's names ------------------------------------------------


def field_alias(model: type[BaseModel], name: str) -> str:
    """The spec's name of the Python field ``name`` of ``model``."""
    info = model.model_fields[name]
    alias = info.serialization_alias or info.alias
    return alias if isinstance(alias, str) else name


def _by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, info in model.model_fields.items():
        if field_alias(model, name) == alias:
            return info.annotation
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation admits, without None, ``Annotated`` and unions."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [] if annotation is type(None) else [annotation]


_SEGMENT = re.compile(r"^(?P<name>[^.\[\]]+)(?P<index>\[\d+\])?$")


def resolve(model: type[BaseModel], path: str) -> Any:
    """The annotation of ``path`` (``mottaker.adresse.postnummer``, or with list
    indexes: ``dokumenter[0].dokumentType``) in ``model``, or None if the model
    has no such field."""
    from pydantic import BaseModel

    current: Any = model
    for segment in path.split("."):
        match = _SEGMENT.match(segment)
        if match is None or not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        annotation = _by_alias(current, match["name"])
        if annotation is None:
            return None
        if match["index"]:
            items = [typing.get_args(t)[0] for t in _unwrap(annotation) if typing.get_origin(t) is list]
            if not items:
                return None
            annotation = items[0]
        models = [t for t in _unwrap(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        current = models[0] if models else annotation
    return current


def leaf_type(annotation: Any) -> type[bool] | type[int] | type[enum.Enum] | type[str]:
    """What a flag for a field of this annotation takes: on/off, an int, one of an enum's values, or text."""
    for t in _unwrap(annotation):
        if t is bool:
            return bool
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return t
        if t is int:
            return int
    return str


def applies(entry: Flag, kind: str, model: type[BaseModel], document_model: type[BaseModel] | None) -> bool:
    """Whether ``entry`` of the flag table is a flag of the send operation ``kind``."""
    if entry.kinds is not None and kind not in entry.kinds:
        return False
    root = model if entry.target == "forsendelse" else document_model
    return root is not None and all(resolve(root, p) is not None for p in entry.paths)


def unused_flags(operations: Mapping[str, Any], table: Iterable[Flag] = FLAGS) -> list[str]:
    """The flags of ``table`` no send operation has the path of (each named
    with its flag and path); empty when every flag applies somewhere."""
    problems = []
    for entry in table:
        if entry.kinds is not None and (unknown := sorted(entry.kinds - set(operations))):
            problems.append(f"{entry.flag}: restricted to {', '.join(unknown)}, which is no send operation")
        if not any(applies(entry, kind, op.model, op.document_model) for kind, op in operations.items()):
            where = "document" if entry.target == "dokument" else "forsendelse"
            problems.append(f"{entry.flag}: the {where} path {entry.path} is in no send operation's model")
    return problems
