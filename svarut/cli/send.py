"""``svarut send person|organisasjon|nhn|print``: a forsendelse from flags
(or a JSON file the flags amend) and documents from paths; prints the id.

The forsendelse is built as the spec's JSON (camelCase names), so
``--metadata`` files and flags mix freely, and read by the generated model:
a field the model refuses is a validation error (exit 3) before anything is
sent. Documents are described in the order given, ``filnavn`` from the file's
name and ``mimeType`` guessed by :mod:`mimetypes` unless ``--mime-type
NAME=TYPE`` says otherwise; a ``--metadata`` file that lists ``dokumenter``
itself keeps its list, and the files must match it.

Uploads over :data:`PROGRESS_THRESHOLD` bytes show a progress bar on stderr
when stderr is a terminal, by reading each file through :class:`_Progress`;
otherwise the files go to the client as paths and nothing extra is printed.
"""

from __future__ import annotations

import io
import json
import mimetypes
import re
import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar
from uuid import UUID

import click

from svarut.cli.common import State, konto_option, usage_error

if TYPE_CHECKING:
    from svarut.runtime.models import RequestModel

__all__ = ["PROGRESS_THRESHOLD", "send"]

PROGRESS_THRESHOLD = 4 * 1024 * 1024
_MIME_OVERRIDE = re.compile(r"^(?P<name>.+?)=(?P<type>[\w.+-]+/.+)$")

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def send() -> None:
    """Send a forsendelse; prints its id.

    \b
    svarut send person --konto ID --tittel "Vedtak" --mottaker-navn "Kari Nordmann" \\
        --fodselsnummer 21883649874 vedtak.pdf kart.png
    """


def _common(command: F) -> F:
    options = [
        konto_option,
        click.option(
            "--metadata",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A forsendelse as JSON (the spec's names); flags override its fields.",
        ),
        click.option("--tittel", help="The title."),
        click.option("--ekstern-referanse", help="Your reference (eksternReferanse); one is generated if not given."),
        click.option("--korrelasjonsid", help="Groups forsendelser (korrelasjonsid)."),
        click.option("--avgivende-system", help="The sending system (avgivendeSystem)."),
        click.option("--kryptert", is_flag=True, help="Encrypt the documents for SvarUt's certificate."),
        click.option(
            "--mime-type",
            "mime_types",
            multiple=True,
            metavar="FILNAVN=TYPE",
            help="The MIME type of a document, instead of guessing it (repeatable).",
        ),
        click.option("--no-validate", is_flag=True, help="Skip the client's pre-send rules (SvarUt still checks)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _address(command: F) -> F:
    options = [
        click.option("--adresselinje", multiple=True, help="An address line (up to three; repeat the flag)."),
        click.option("--postnummer", help="Postnummer."),
        click.option("--poststed", help="Poststed."),
        click.option("--landkode", help="ISO 3166-1 alpha-2 country code (default: Norway)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _documents_argument(*, single: bool) -> Callable[[F], F]:
    return click.argument(
        "dokumenter",
        nargs=1 if single else -1,
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )


@send.command()
@_common
@click.option("--mottaker-navn", help="The person's name.")
@click.option("--mottaker-id", "--fodselsnummer", "mottaker_id", help="Fødselsnummer or d-nummer.")
@click.option("--kun-digital", is_flag=True, help="Never print (kunDigitalLevering).")
@click.option(
    "--ekskluder-fra-utskrift", multiple=True, metavar="FILNAVN", help="Leave this document out of print (repeatable)."
)
@_address
@_documents_argument(single=False)
@click.pass_obj
def person(state: State, /, **options: Any) -> None:
    """Send DOKUMENTER to a person (digital mailbox, else print)."""
    _send(state, "person", options)


@send.command()
@_common
@click.option("--mottaker-navn", help="The organisation's name.")
@click.option("--mottaker-id", "--orgnr", "mottaker_id", help="Organisasjonsnummer.")
@click.option("--kun-digital", is_flag=True, help="Never print (kunDigitalLevering).")
@click.option(
    "--ekskluder-fra-utskrift", multiple=True, metavar="FILNAVN", help="Leave this document out of print (repeatable)."
)
@_address
@_documents_argument(single=False)
@click.pass_obj
def organisasjon(state: State, /, **options: Any) -> None:
    """Send DOKUMENTER to an organisation."""
    _send(state, "organisasjon", options)


@send.command(name="print")
@_common
@click.option("--mottaker-navn", help="The addressee's name.")
@_address
@_documents_argument(single=False)
@click.pass_obj
def print_(state: State, /, **options: Any) -> None:
    """Send DOKUMENTER (PDF) straight to print and post."""
    _send(state, "print", options)


@send.command()
@_common
@click.option("--mottakertype", type=click.Choice(["FASTLEGE", "HER_ID"]), help="FASTLEGE, or HER_ID with --her-id.")
@click.option("--her-id", type=click.IntRange(min=1), help="The mottaker's HER-id.")
@click.option("--beskrivelse", help="What the forsendelse is about, beyond the title.")
@click.option("--pasient-fodselsnummer", help="The patient's fødselsnummer.")
@click.option("--pasient-fornavn", help="The patient's first name.")
@click.option("--pasient-mellomnavn", help="The patient's middle name.")
@click.option("--pasient-etternavn", help="The patient's last name.")
@click.option("--avsender-fornavn", help="Contact person at the sender: first name.")
@click.option("--avsender-etternavn", help="Contact person at the sender: last name.")
@click.option("--avsender-telefon", help="Contact person at the sender: phone.")
@_documents_argument(single=True)
@click.pass_obj
def nhn(state: State, /, **options: Any) -> None:
    """Send one PDF DOKUMENT to a health actor in Norsk Helsenett."""
    _send(state, "nhn", options)


# --- building the forsendelse ------------------------------------------------------


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != ():
        target[key] = value


def _object(target: dict[str, Any], key: str) -> dict[str, Any]:
    value = target.setdefault(key, {})
    if not isinstance(value, dict):
        raise usage_error(f"--metadata: {key} must be a JSON object")
    return value


def _load_metadata(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise usage_error(f"--metadata {path}: not a readable JSON file ({exc})") from None
    if not isinstance(value, dict):
        raise usage_error(f"--metadata {path}: must hold a JSON object (a forsendelse)")
    return value


def _apply_address(target: dict[str, Any], options: Mapping[str, Any]) -> None:
    lines = options.get("adresselinje") or ()
    if len(lines) > 3:
        raise usage_error("at most three --adresselinje")
    fields = {f"adresselinje{i}": line for i, line in enumerate(lines, start=1)}
    for key in ("postnummer", "poststed", "landkode"):
        _set(fields, key, options.get(key))
    if fields:
        _object(target, "adresse").update(fields)


def _mime_types(values: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for value in values:
        match = _MIME_OVERRIDE.match(value)
        if match is None:
            raise usage_error(f"--mime-type {value!r}: expected FILNAVN=TYPE, e.g. kart.png=image/png")
        found[match["name"]] = match["type"]
    return found


def _guess(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def build_metadata(channel: str, options: Mapping[str, Any], paths: list[Path]) -> dict[str, Any]:
    """The forsendelse JSON for ``channel`` from ``--metadata`` and the flags."""
    meta = _load_metadata(options.get("metadata"))
    _set(meta, "tittel", options.get("tittel"))
    _set(meta, "eksternReferanse", options.get("ekstern_referanse"))
    _set(meta, "korrelasjonsid", options.get("korrelasjonsid"))
    _set(meta, "avgivendeSystem", options.get("avgivende_system"))
    if channel == "nhn":
        _set(meta, "mottakertype", options.get("mottakertype"))
        _set(meta, "mottakerHerId", options.get("her_id"))
        _set(meta, "beskrivelse", options.get("beskrivelse"))
        pasient = {k: options.get(f"pasient_{k}") for k in ("fodselsnummer", "fornavn", "mellomnavn", "etternavn")}
        if any(v is not None for v in pasient.values()):
            _object(meta, "pasient").update({k: v for k, v in pasient.items() if v is not None})
        kontakt = {
            "fornavn": options.get("avsender_fornavn"),
            "etternavn": options.get("avsender_etternavn"),
            "telefonnummer": options.get("avsender_telefon"),
        }
        if any(v is not None for v in kontakt.values()):
            _object(meta, "avsenderKontakt").update({k: v for k, v in kontakt.items() if v is not None})
        return meta
    if options.get("mottaker_navn") is not None or options.get("mottaker_id") is not None or channel == "print":
        mottaker = _object(meta, "mottaker")
        _set(mottaker, "navn", options.get("mottaker_navn"))
        _set(mottaker, "digitalId", options.get("mottaker_id"))
    if any(options.get(k) for k in ("adresselinje", "postnummer", "poststed", "landkode")):
        _apply_address(_object(meta, "mottaker"), options)
    if options.get("kun_digital"):
        meta["kunDigitalLevering"] = True
    mime_types = _mime_types(options.get("mime_types") or ())
    if meta.get("dokumenter") is None:
        meta["dokumenter"] = [{"filnavn": p.name, "mimeType": _guess(p.name)} for p in paths]
    entries = meta["dokumenter"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise usage_error("--metadata: dokumenter must be a list of objects")
    names = [e.get("filnavn") for e in entries]
    for name, kind in mime_types.items():
        if name not in names:
            raise usage_error(f"--mime-type {name}: no document has that filnavn")
        entries[names.index(name)]["mimeType"] = kind
    for name in options.get("ekskluder_fra_utskrift") or ():
        if name not in names:
            raise usage_error(f"--ekskluder-fra-utskrift {name}: no document has that filnavn")
        entries[names.index(name)]["skalEkskluderesFraUtskrift"] = True
    return meta


def _model(channel: str) -> type[RequestModel]:
    from svarut import models

    by_channel: dict[str, type[RequestModel]] = {
        "person": models.PersonForsendelse,
        "organisasjon": models.OrganisasjonForsendelse,
        "nhn": models.NhnForsendelse,
        "print": models.PrintForsendelse,
    }
    return by_channel[channel]


# --- progress ---------------------------------------------------------------------


class _Bar(Protocol):
    def update(self, n_steps: int) -> None: ...


class _Progress(io.RawIOBase):
    """A file that advances a progress bar as it is read, by the furthest
    position reached (sniffing the first bytes, or reading it again after a
    token refresh, does not count twice)."""

    def __init__(self, raw: io.FileIO, bar: _Bar) -> None:
        super().__init__()
        self._raw = raw
        self._bar = bar
        self._furthest = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        n = self._raw.readinto(buffer)
        position = self._raw.tell()
        if position > self._furthest:
            self._bar.update(position - self._furthest)
            self._furthest = position
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()
        super().close()


def _sources(paths: list[Path], stack: ExitStack) -> dict[str, Path | BinaryIO]:
    total = sum(p.stat().st_size for p in paths)
    if total <= PROGRESS_THRESHOLD or not sys.stderr.isatty():
        return {p.name: p for p in paths}
    bar: _Bar = stack.enter_context(
        click.progressbar(length=total, label="uploading", file=sys.stderr, show_pos=False, show_percent=True)
    )
    sources: dict[str, Path | BinaryIO] = {}
    for path in paths:
        raw = _Progress(io.FileIO(path, "rb"), bar)
        sources[path.name] = stack.enter_context(io.BufferedReader(raw, buffer_size=1024 * 1024))
    return sources


# --- sending --------------------------------------------------------------------------


def _send(state: State, channel: str, options: dict[str, Any]) -> None:
    from svarut import File, errors, models

    documents = options["dokumenter"]
    paths: list[Path] = [documents] if isinstance(documents, Path) else list(documents)
    names = [p.name for p in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise errors.ForsendelseValidationError(
            [
                errors.Problem("dokumenter", "filename_unique", f"more than one document is named {n!r}")
                for n in duplicates
            ]
        )
    model = _model(channel).model_validate(build_metadata(channel, options, paths))
    konto_id: UUID = state.konto_id(options.get("konto"))
    kryptering = bool(options.get("kryptert"))
    client_options = {"generate_ekstern_referanse": True, "validate": not options.get("no_validate")}
    with state.client(**client_options) as client, ExitStack() as stack:
        sources = _sources(paths, stack)
        if isinstance(model, models.NhnForsendelse):
            (path,) = paths
            mime = _mime_types(options.get("mime_types") or ()).get(path.name) or _guess(path.name)
            document = File(filnavn=path.name, content=sources[path.name], mime_type=mime)
            forsendelse_id = client.send_til_nhn(
                konto_id=konto_id, forsendelse=model, dokument=document, kryptering=kryptering
            )
        elif isinstance(model, models.PersonForsendelse):
            forsendelse_id = client.send_til_person(
                konto_id=konto_id, forsendelse=model, dokumenter=sources, kryptering=kryptering
            )
        elif isinstance(model, models.OrganisasjonForsendelse):
            forsendelse_id = client.send_til_organisasjon(
                konto_id=konto_id, forsendelse=model, dokumenter=sources, kryptering=kryptering
            )
        else:
            assert isinstance(model, models.PrintForsendelse)
            forsendelse_id = client.send_til_print(
                konto_id=konto_id, forsendelse=model, dokumenter=sources, kryptering=kryptering
            )
    click.echo(str(forsendelse_id))
