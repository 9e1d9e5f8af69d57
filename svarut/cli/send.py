"""``svarut send KIND``: one subcommand per send operation in the specs
(``svarut.generated.SEND_OPERATIONS``: person, organisasjon, nhn, print, and
whatever comes next), named by its kind and described by the spec's summary.

The forsendelse is built as the spec's JSON, so the pieces mix freely, later
ones overriding earlier ones: a ``--metadata`` JSON file, then ``--felt
PATH=JSON`` (any field, e.g. ``--felt konteringskode='"K-1"'``), then the
convenience flags of :mod:`svarut.cli.flags` (the flag table). The operation's model reads
it: a field it refuses is a validation error (exit 3) before anything is
sent. Documents are described in the order given (``filnavn`` from each
file's name, ``mimeType`` guessed unless ``--mime-type FILNAVN=TYPE``), unless
the metadata lists them itself; then the files must match that list.

An eksternReferanse is generated when none is given, and printed with the id
(``--json``) and in the outcome-unknown error, with the ``svarut avklar``
command that settles it, so a person or a script can ask SvarUt whether the
forsendelse arrived. Progress goes to stderr (:mod:`svarut.cli.progress`).
"""

from __future__ import annotations

import enum
import io
import json
import mimetypes
import os
import re
import sys
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from svarut.cli import flags
from svarut.cli.common import (
    CliError,
    DuplicateFailure,
    OutcomeUnknown,
    State,
    ValidationFailure,
    avklar_command,
    describe_problems,
    format_time,
    usage_error,
)
from svarut.cli.progress import ProgressLine, ProgressReader, wanted

if TYPE_CHECKING:
    from pydantic import BaseModel

    from svarut.runtime.operations import SendOperation

__all__ = ["build_metadata", "send"]

_MIME_OVERRIDE = re.compile(r"^(?P<name>.+?)=(?P<type>[\w.+-]+/.+)$")
_FELT = re.compile(r"^(?P<path>[A-Za-z_][\w.\[\]]*)=(?P<value>.*)$", re.S)
_INDEXED = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<index>\d+)\]$")
_EKSTERN_REFERANSE = next(b for b in flags.FLAGS if b.flag == "--ekstern-referanse").path


def _operations() -> Mapping[str, SendOperation]:
    from svarut.generated import SEND_OPERATIONS

    return SEND_OPERATIONS


class SendGroup(click.Group):
    """The subcommands come from the specs' send operations, built when asked
    for (so ``svarut --help`` does not import the models)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_operations())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        operation = _operations().get(cmd_name)
        return None if operation is None else _command(operation)


@click.group(cls=SendGroup)
def send() -> None:
    """Send a forsendelse; prints its id.

    \b
    svarut send person --tittel "Vedtak" --mottaker-navn "Kari Nordmann" \\
        --fodselsnummer 21883649874 vedtak.pdf
    """


def _flags(operation: SendOperation) -> list[flags.Flag]:
    return [b for b in flags.FLAGS if flags.applies(b, operation.kind, operation.model, operation.document_model)]


def _option(entry: flags.Flag, operation: SendOperation) -> click.Option:
    names = [entry.flag, *entry.aliases, entry.name]
    if entry.target == "dokument":
        return click.Option(names, multiple=True, metavar="FILNAVN", help=entry.help)
    if entry.repeat > 1:
        return click.Option(names, multiple=True, help=entry.help)
    kind = flags.leaf_type(flags.resolve(operation.model, entry.path))
    if kind is bool:
        return click.Option(names, is_flag=True, default=None, help=entry.help)
    if kind is int:
        return click.Option(names, type=click.INT, help=entry.help)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        values = [str(member.value) for member in kind]
        return click.Option(names, type=click.Choice(values), help=entry.help)
    return click.Option(names, help=entry.help)


def _command(operation: SendOperation) -> click.Command:
    single = operation.described_by is None
    params: list[click.Parameter] = [
        click.Option(["--konto"], type=click.UUID, help="The konto (account) to send from [SVARUT_KONTO_ID]."),
        click.Option(
            ["--metadata"],
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A forsendelse as JSON (the spec's names); --felt and flags override its fields.",
        ),
        click.Option(
            ["--felt"],
            multiple=True,
            metavar="PATH=JSON",
            help="Set any field by the spec's path, e.g. --felt 'konteringskode=\"K-1\"' "
            "(a value that is not JSON is taken as text; repeatable).",
        ),
        *(_option(b, operation) for b in _flags(operation)),
        click.Option(
            ["--mime-type", "mime_types"],
            multiple=True,
            metavar="FILNAVN=TYPE",
            help="The MIME type of a document, instead of guessing it (repeatable).",
        ),
        click.Option(["--kryptert"], is_flag=True, help="Encrypt the documents for SvarUt's certificate."),
        click.Option(["--no-validate"], is_flag=True, help="Skip the client's pre-send rules (SvarUt still checks)."),
        click.Option(["--json", "as_json"], is_flag=True, help='Print {"id": ..., "eksternReferanse": ...} as JSON.'),
        click.Argument(
            [operation.file_argument],
            nargs=1 if single else -1,
            required=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
        ),
    ]

    def callback(**options: Any) -> None:
        state = click.get_current_context().find_object(State)
        assert state is not None
        _send(state, operation, options)

    return click.Command(
        operation.kind,
        params=params,
        callback=callback,
        help=operation.summary,
        short_help=operation.summary.split(". ")[0].rstrip("."),
        epilog=f"{operation.file_argument.upper()}: "
        + ("the document (its file name is its filnavn)." if single else "the documents, in order."),
    )


# --- building the forsendelse ------------------------------------------------------


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


def _put(target: dict[str, Any], path: str, value: Any, *, what: str) -> None:
    """Set ``path`` (dotted, with ``[i]`` list indexes) in the JSON ``target``."""
    *parents, last = path.split(".")
    node: Any = target
    for segment in [*parents, last]:
        indexed = _INDEXED.match(segment)
        name = indexed["name"] if indexed else segment
        if segment is last and not indexed:
            node[name] = value
            return
        child = node.setdefault(name, [] if indexed else {})
        if indexed:
            index = int(indexed["index"])
            if not isinstance(child, list) or index >= len(child):
                raise usage_error(f"{what}: {path} has no element {name}[{index}]")
            if segment is last:
                child[index] = value
                return
            child = child[index]
        if not isinstance(child, dict):
            raise usage_error(f"{what}: {path} goes through {name}, which is not a JSON object")
        node = child


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


def _felt(operation: SendOperation, value: str) -> tuple[str, Any]:
    match = _FELT.match(value)
    if match is None:
        raise usage_error(f"--felt {value!r}: expected PATH=JSON, e.g. --felt 'konteringskode=\"K-1\"'")
    path = match["path"]
    if flags.resolve(operation.model, path) is None:
        raise usage_error(f"--felt {path}: the {operation.kind} forsendelse has no such field")
    try:
        parsed = json.loads(match["value"])
    except ValueError:
        parsed = match["value"]
    return path, parsed


def _document_keys(operation: SendOperation) -> tuple[str, str]:
    assert operation.document_model is not None
    return (
        flags.field_alias(operation.document_model, flags.DOCUMENT_NAME_FIELD),
        flags.field_alias(operation.document_model, flags.DOCUMENT_TYPE_FIELD),
    )


def build_metadata(operation: SendOperation, options: Mapping[str, Any], paths: list[Path]) -> dict[str, Any]:
    """The forsendelse JSON from ``--metadata``, ``--felt``, the flags and the documents."""
    meta = _load_metadata(options.get("metadata"))
    mime_types = _mime_types(options.get("mime_types") or ())
    entries: list[dict[str, Any]] = []
    if operation.described_by is not None:
        name_key, type_key = _document_keys(operation)
        if meta.get(operation.described_by) is None:
            meta[operation.described_by] = [{name_key: p.name, type_key: _guess(p.name)} for p in paths]
        entries = meta[operation.described_by]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise usage_error(f"--metadata: {operation.described_by} must be a list of objects")
        names = [e.get(name_key) for e in entries]
        for name, kind in mime_types.items():
            if name not in names:
                raise usage_error(f"--mime-type {name}: no document has that filnavn")
            entries[names.index(name)][type_key] = kind
    elif unknown := sorted(set(mime_types) - {p.name for p in paths}):
        raise usage_error(f"--mime-type {', '.join(unknown)}: no document has that filnavn")
    for value in options.get("felt") or ():
        path, parsed = _felt(operation, value)
        _put(meta, path, parsed, what="--felt")
    for entry in _flags(operation):
        value = options.get(entry.name)
        if value is None or value == () or value is False:
            continue
        if entry.target == "dokument":
            name_key, _ = _document_keys(operation)
            names = [e.get(name_key) for e in entries]
            for name in value:
                if name not in names:
                    raise usage_error(f"{entry.flag} {name}: no document has that filnavn")
                _put(entries[names.index(name)], entry.path, True, what=entry.flag)
        elif entry.repeat > 1:
            if len(value) > entry.repeat:
                raise usage_error(f"at most {entry.repeat} {entry.flag}")
            for path, item in zip(entry.paths, value, strict=False):
                _put(meta, path, item, what=entry.flag)
        else:
            _put(meta, entry.path, value, what=entry.flag)
    if not meta.get(_EKSTERN_REFERANSE):
        # Known here, so it can be printed: what to look the forsendelse up by if the outcome is unknown.
        meta[_EKSTERN_REFERANSE] = f"fiks-svarut-{uuid.uuid4()}"
    return meta


# --- validation messages that name the flags ------------------------------------------


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def flag_for(operation: SendOperation, field: str, entries: list[Any]) -> str:
    """The flag that sets ``field`` (a spec path from a validation problem),
    or the field itself when no flag does."""
    offered = _flags(operation)
    for entry in offered:
        if entry.target == "forsendelse" and field in entry.paths:
            return entry.flag
    if operation.described_by is not None:
        match = re.match(rf"^{re.escape(operation.described_by)}\[(\d+)\]\.(.+)$", field)
        if match:
            index, rest = int(match[1]), match[2]
            name_key, type_key = _document_keys(operation)
            document = entries[index] if index < len(entries) and isinstance(entries[index], dict) else {}
            filnavn = document.get(name_key, f"#{index + 1}")
            if rest == type_key:
                return f"--mime-type {filnavn}"
            for entry in offered:
                if entry.target == "dokument" and rest == entry.path:
                    return f"{entry.flag} {filnavn}"
    return field


def _message(operation: SendOperation, message: str) -> str:
    """``message`` with the spec's names the user sets by flag replaced by those flags."""
    for entry in _flags(operation):
        if "." not in entry.path and entry.repeat == 1:
            message = re.sub(rf"\b{re.escape(entry.path)}\b", entry.flag, message)
    return message


def _validation_failure(operation: SendOperation, exc: Exception, meta: Mapping[str, Any]) -> ValidationFailure:
    from pydantic import ValidationError

    from svarut import errors

    if isinstance(exc, ValidationError):
        problems = [errors.Problem(_field_path(e["loc"]) or "forsendelse", e["type"], e["msg"]) for e in exc.errors()]
    else:
        assert isinstance(exc, errors.ForsendelseValidationError)
        problems = list(exc.problems)
    entries = meta.get(operation.described_by or "", [])
    entries = entries if isinstance(entries, list) else []
    return ValidationFailure(
        describe_problems(
            [
                errors.Problem(flag_for(operation, p.field, entries), p.rule, _message(operation, p.message))
                for p in problems
            ]
        )
    )


# --- documents and progress ----------------------------------------------------------


def _sources(paths: list[Path], stack: ExitStack) -> dict[str, Path | BinaryIO]:
    total = sum(p.stat().st_size for p in paths)
    if not wanted(total, sys.stderr, os.environ):
        return {p.name: p for p in paths}
    line = ProgressLine(total, sys.stderr)
    stack.callback(line.close)
    sources: dict[str, Path | BinaryIO] = {}
    for path in paths:
        raw = ProgressReader(io.FileIO(path, "rb"), line)
        sources[path.name] = stack.enter_context(io.BufferedReader(raw, buffer_size=1024 * 1024))
    return sources


def _files(operation: SendOperation, paths: list[Path], sources: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
    if operation.described_by is not None:
        return dict(sources)
    from svarut import File

    (path,) = paths
    mime = _mime_types(options.get("mime_types") or ()).get(path.name) or _guess(path.name)
    return File(filnavn=path.name, content=sources[path.name], mime_type=mime)


# --- sending --------------------------------------------------------------------------


def _outcome_unknown(exc: Any, *, state: State, as_json: bool) -> CliError:
    from svarut.utfall import AVKLARING_VINDU

    hashes = ", ".join(f"{name} sha256 {digest}" for name, digest in exc.dokumenter_sha256.items())
    command = (
        avklar_command(state, konto_id=exc.konto_id, ekstern_referanse=exc.ekstern_referanse, sendt=exc.sendt)
        if exc.ekstern_referanse
        else None
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": None,
                    _EKSTERN_REFERANSE: exc.ekstern_referanse,
                    "outcome": "unknown",
                    "sha256": exc.dokumenter_sha256,
                    "sendt": None if exc.sendt is None else format_time(exc.sendt),
                    "avklar": command,
                },
                ensure_ascii=False,
            )
        )
    footer = None
    if command is not None:
        # SvarUt may take 15 minutes to answer a send: before the window is over it can only
        # confirm that the forsendelse arrived, not that it did not.
        when = (
            f" (it can tell that the forsendelse arrived at once, that it did not from "
            f"{format_time(exc.sendt + AVKLARING_VINDU)})"
            if exc.sendt is not None
            else ""
        )
        footer = f"Settle it with the command below{when}:\n  {command}"
    return OutcomeUnknown(
        f"outcome unknown: SvarUt may have accepted the forsendelse ({_EKSTERN_REFERANSE} "
        f"{exc.ekstern_referanse!r}; documents: {hashes}); settle it before sending it again. Cause: {exc.cause}",
        footer=footer,
    )


def _send(state: State, operation: SendOperation, options: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from svarut import errors

    documents = options[operation.file_argument]
    paths: list[Path] = [documents] if isinstance(documents, Path) else list(documents)
    names = [p.name for p in paths]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise ValidationFailure(
            describe_problems(
                [
                    errors.Problem(
                        operation.file_argument.upper(), "filename_unique", f"more than one document is named {n!r}"
                    )
                    for n in duplicates
                ]
            )
        )
    meta = build_metadata(operation, options, paths)
    model: BaseModel
    try:
        model = operation.model.model_validate(meta)
    except ValidationError as exc:
        raise _validation_failure(operation, exc, meta) from None
    konto_id: uuid.UUID = state.konto_id(options.get("konto"))
    as_json = bool(options.get("as_json"))
    with state.client(validate=not options.get("no_validate")) as client, ExitStack() as stack:
        sources = _sources(paths, stack)
        files = _files(operation, paths, sources, options)
        try:
            # The batch runner's route too: the send checked and built, then sent.
            prepared = operation.prepare(
                client, konto_id=konto_id, forsendelse=model, files=files, kryptering=bool(options.get("kryptert"))
            )
            forsendelse_id = client.send_prepared(prepared)
        except errors.ForsendelseValidationError as exc:
            raise _validation_failure(operation, exc, meta) from None
        except errors.SendOutcomeUnknownError as exc:
            stack.close()  # end the progress line before the message
            raise _outcome_unknown(exc, state=state, as_json=as_json) from exc
        except errors.DuplicateForsendelseError as exc:
            raise DuplicateFailure(
                f"SvarUt already has this forsendelse (same mottaker, tittel and documents): {exc}"
            ) from exc
    if as_json:
        click.echo(json.dumps({"id": str(forsendelse_id), _EKSTERN_REFERANSE: meta[_EKSTERN_REFERANSE]}))
    else:
        click.echo(str(forsendelse_id))
