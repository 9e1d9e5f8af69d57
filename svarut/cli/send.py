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
forsendelse arrived. Ctrl-C is settled the same way once a byte of the
forsendelse went out (exit 4: SvarUt may have it); before that, nothing was
sent (exit 130). Validation problems are one a line, each naming the flag or
the DOKUMENT argument to fix. Progress goes to stderr (:mod:`svarut.cli.progress`).
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from svarut.cli import flags
from svarut.cli.common import (
    CliError,
    DuplicateFailure,
    Interrupted,
    OutcomeUnknown,
    State,
    ValidationFailure,
    after_ctrl_c,
    avklar_command,
    format_time,
    pydantic_message,
    rejected,
    usage_error,
)
from svarut.cli.progress import ProgressLine, ProgressReader, wanted

if TYPE_CHECKING:
    from pydantic import BaseModel

    from svarut.runtime.errors import Problem
    from svarut.runtime.multipart import DocumentProblem
    from svarut.runtime.operations import SendOperation
    from svarut.runtime.request_types import Prepared

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
    except OSError as exc:
        raise usage_error(f"--metadata {path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise usage_error(f"--metadata {path}: not UTF-8 text (byte {exc.start + 1} is not UTF-8)") from None
    except ValueError as exc:
        raise usage_error(f"--metadata {path}: not JSON ({exc})") from None
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
    # A missing or malformed object (mottaker.adresse): the flags that fill it in.
    within = [
        entry.flag
        for entry in offered
        if entry.target == "forsendelse" and any(p.startswith(f"{field}.") for p in entry.paths)
    ]
    return f"{field} ({', '.join(within)})" if within else field


def _message(operation: SendOperation, message: str) -> str:
    """``message`` with the spec's names the user sets by flag replaced by those flags."""
    for entry in _flags(operation):
        if "." not in entry.path and entry.repeat == 1:
            message = re.sub(rf"\b{re.escape(entry.path)}\b", entry.flag, message)
    return message


# The flags that take a Norwegian identifier: a malformed one gets the identifier's own
# words ("remove the spaces"), not the model's string length.
_IDENTIFIER_FLAGS = {
    "--fodselsnummer": "fodselsnummer",
    "--pasient-fodselsnummer": "fodselsnummer",
    "--orgnr": "organisasjonsnummer",
}


def _identifier_problem(flag: str, value: object) -> str | None:
    from svarut.runtime import identifiers

    kind = _IDENTIFIER_FLAGS.get(flag)
    if not isinstance(value, str):  # missing, or not text: the model's words say it
        return None
    if kind == "fodselsnummer":
        return identifiers.fodselsnummer_problem(value, synthetic=True)
    if kind == "organisasjonsnummer":
        return identifiers.organisasjonsnummer_problem(value)
    return None


def _document_problem(operation: SendOperation, problem: DocumentProblem) -> Problem | None:
    """A problem with the documents, in the CLI's terms: the DOKUMENT
    argument, ``--metadata`` and ``--mime-type`` rather than the Python API's
    ``dokumenter={...}``; None for one the CLI has no words of its own for."""
    from svarut import errors

    argument = operation.file_argument.upper()
    listing = problem.described_by or operation.described_by or "dokumenter"
    name = problem.filnavn
    if problem.rule == "document_missing":
        return errors.Problem(
            argument,
            problem.rule,
            f"the forsendelse lists {name} in {listing} (--metadata or --felt), but no file of that name was "
            f"given: give the file {name} as a {argument} argument, or take it out of {listing}",
        )
    if problem.rule == "document_not_described":
        return errors.Problem(
            f"{argument} {name}",
            problem.rule,
            f"the forsendelse's {listing} (--metadata or --felt) does not list {name}: add it there, or leave "
            "the file out",
        )
    if problem.rule == "filename_unique":
        return errors.Problem("--metadata", problem.rule, f"{listing} lists {name} more than once")
    if problem.rule == "content_type":
        return errors.Problem(f"--mime-type {name}", problem.rule, "not a valid MIME type (give TYPE/SUBTYPE)")
    return None


def _validation_failure(operation: SendOperation, exc: Exception, meta: Mapping[str, Any]) -> ValidationFailure:
    from pydantic import ValidationError

    from svarut import errors
    from svarut.runtime.multipart import DocumentProblem

    entries = meta.get(operation.described_by or "", [])
    entries = entries if isinstance(entries, list) else []
    problems: list[Problem] = []
    if isinstance(exc, ValidationError):
        for e in exc.errors():
            flag = flag_for(operation, _field_path(e["loc"]) or "forsendelse", entries)
            message = _identifier_problem(flag, e.get("input")) or _message(operation, pydantic_message(e))
            problems.append(errors.Problem(flag, e["type"], message))
        return rejected(problems)
    assert isinstance(exc, errors.ForsendelseValidationError)
    for p in exc.problems:
        phrased = _document_problem(operation, p) if isinstance(p, DocumentProblem) else None
        problems.append(
            phrased or errors.Problem(flag_for(operation, p.field, entries), p.rule, _message(operation, p.message))
        )
    return rejected(problems)


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
    return _unknown(
        state=state,
        as_json=as_json,
        konto_id=exc.konto_id,
        ekstern_referanse=exc.ekstern_referanse,
        sendt=exc.sendt,
        sha256=exc.dokumenter_sha256,
        what="SvarUt may have accepted the forsendelse",
        cause=exc.cause,
    )


def _unknown(
    *,
    state: State,
    as_json: bool,
    konto_id: object,
    ekstern_referanse: str | None,
    sendt: datetime | None,
    sha256: Mapping[str, str | None] | None,
    what: str,
    cause: object = None,
) -> CliError:
    """The error (and with ``--json`` the JSON line) of a send whose outcome
    is unknown, with the ``svarut avklar`` command that settles it."""
    from svarut.utfall import AVKLARING_VINDU

    command = (
        avklar_command(state, konto_id=konto_id, ekstern_referanse=ekstern_referanse, sendt=sendt)
        if ekstern_referanse
        else None
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": None,
                    _EKSTERN_REFERANSE: ekstern_referanse,
                    "outcome": "unknown",
                    "sha256": dict(sha256) if sha256 is not None else None,
                    "sendt": None if sendt is None else format_time(sendt),
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
            f"{format_time(sendt + AVKLARING_VINDU)})"
            if sendt is not None
            else ""
        )
        footer = f"Settle it with the command below{when}:\n  {command}"
    documents = (
        f"; documents: {', '.join(f'{name} sha256 {digest}' for name, digest in sha256.items())}" if sha256 else ""
    )
    because = "" if cause is None else f" Cause: {cause}"
    return OutcomeUnknown(
        f"outcome unknown ({_EKSTERN_REFERANSE} {ekstern_referanse!r}{documents}): {what}; settle it before "
        f"sending it again.{because}",
        footer=footer,
    )


@dataclass
class _Sending:
    """How far a send got, for what a Ctrl-C means."""

    konto_id: uuid.UUID | None = None
    prepared: Prepared[Any] | None = None


def _interrupted(sending: _Sending, *, state: State, as_json: bool) -> CliError:
    """What a Ctrl-C during ``send`` means: nothing sent while no byte of the
    body had gone out; an unknown outcome from the first byte on."""
    after_ctrl_c()
    prepared = sending.prepared
    body = None if prepared is None else prepared.request.body
    if prepared is None or body is None or not body.started:
        return Interrupted("interrupted before the forsendelse went out: nothing was sent")
    send = prepared.request.send
    ekstern_referanse = None if send is None else send.metadata.get(_EKSTERN_REFERANSE)
    how_far = (
        "after SvarUt had the whole forsendelse, before it answered"
        if body.completed
        else "while the forsendelse was going out"
    )
    # No document hashes here: reading big files again would keep a user who pressed Ctrl-C waiting.
    return _unknown(
        state=state,
        as_json=as_json,
        konto_id=sending.konto_id,
        ekstern_referanse=ekstern_referanse,
        sendt=prepared.request.attempt_started,
        sha256=None,
        what=f"interrupted (Ctrl-C) {how_far}, so SvarUt may have it",
    )


def _send(state: State, operation: SendOperation, options: dict[str, Any]) -> None:
    sending = _Sending()
    try:
        _check_and_send(state, operation, options, sending)
    except KeyboardInterrupt:
        raise _interrupted(sending, state=state, as_json=bool(options.get("as_json"))) from None


def _check_and_send(state: State, operation: SendOperation, options: dict[str, Any], sending: _Sending) -> None:
    from pydantic import ValidationError

    from svarut import errors

    documents = options[operation.file_argument]
    paths: list[Path] = [documents] if isinstance(documents, Path) else list(documents)
    names = [p.name for p in paths]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise rejected(
            [
                errors.Problem(
                    operation.file_argument.upper(),
                    "filename_unique",
                    f"more than one file is named {n}: SvarUt tells the documents apart by their names",
                )
                for n in duplicates
            ]
        )
    meta = build_metadata(operation, options, paths)
    model: BaseModel
    try:
        model = operation.model.model_validate(meta)
    except ValidationError as exc:
        raise _validation_failure(operation, exc, meta) from None
    konto_id = sending.konto_id = state.konto_id(options.get("konto"))
    as_json = bool(options.get("as_json"))
    with state.client(validate=not options.get("no_validate")) as client, ExitStack() as stack:
        sources = _sources(paths, stack)
        files = _files(operation, paths, sources, options)
        try:
            # The batch runner's route too: the send checked and built, then sent.
            prepared = sending.prepared = operation.prepare(
                client, konto_id=konto_id, forsendelse=model, dokumenter=files, kryptering=bool(options.get("kryptert"))
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
