"""The batch manifest: JSON Lines, one letter a line, read as a stream.

Each line is ``{"ref": ..., "kind": ..., "forsendelse": {...}, "dokumenter":
{filnavn: path}}`` (the file argument's name and shape come from the
generated send operation of that kind: NHN takes ``"dokument": path``),
optionally ``"kryptering": true``. Paths are relative to the manifest.

:func:`check_letters` reads every line and checks it the way a send would
(the operation's model, then the client's own pre-send rules through the
client's request builder), without sending; it yields each letter with its
problems, so a million lines go by in flat memory. Ref uniqueness is kept in a
temporary on-disk SQLite table rather than in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

from annotated_types import MaxLen
from pydantic import BaseModel, ValidationError

from svarut.runtime.client import EKSTERN_REFERANSE_KEY, BaseClient
from svarut.runtime.errors import ForsendelseValidationError, Problem
from svarut.runtime.operations import SendOperation

REF_KEY = "ref"
KIND_KEY = "kind"
FORSENDELSE_KEY = "forsendelse"
KRYPTERING_KEY = "kryptering"
UNIQUE_RULE = "unique"
# A stand-in run id for checking without a journal: eksternReferanse has the same length as in a run.
CHECK_RUN_ID = "0" * 12


@dataclass(frozen=True)
class BatchProblem:
    """One reason a manifest line cannot be sent."""

    line: int
    ref: str | None
    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        ref = f" (ref {self.ref!r})" if self.ref is not None else ""
        # A problem of the whole line (not JSON, not UTF-8) has no key to name.
        where = "" if self.field == "line" else f"{self.field}: "
        return f"line {self.line}{ref}: {where}{self.message} [{self.rule}]"


@dataclass
class Letter:
    """One manifest line, parsed; ``problems`` is empty when it can be sent."""

    line: int
    raw: str
    ref: str | None = None
    kind: str | None = None
    ekstern_referanse: str | None = None
    problems: list[BatchProblem] = field(default_factory=list)

    def problem(self, field_name: str, rule: str, message: str) -> None:
        self.problems.append(BatchProblem(self.line, self.ref, field_name, rule, message))


@cache
def operations() -> Mapping[str, SendOperation]:
    """The generated send operations, by kind."""
    from svarut.generated import SEND_OPERATIONS

    return SEND_OPERATIONS


@cache
def ekstern_referanse_max_length(model: type[BaseModel]) -> int | None:
    """eksternReferanse's maxLength, as the generated model declares it."""
    for info in model.model_fields.values():
        if EKSTERN_REFERANSE_KEY in (info.alias, info.validation_alias, info.serialization_alias):
            lengths = [m.max_length for m in info.metadata if isinstance(m, MaxLen)]
            return min(lengths) if lengths else None
    return None


def ekstern_referanse(run_id: str, ref: str, *, model: type[BaseModel]) -> str:
    """The deterministic eksternReferanse of letter ``ref`` in run ``run_id``:
    ``<run id>:<ref>``, or ``<run id>:<sha256 of ref>`` when that is too long,
    truncated to the spec's maxLength."""
    value = f"{run_id}:{ref}"
    limit = ekstern_referanse_max_length(model)
    if limit is not None and len(value) > limit:
        value = f"{run_id}:{hashlib.sha256(ref.encode()).hexdigest()}"[:limit]
    return value


def read_letter(
    line: int,
    raw: str,
    *,
    base_dir: Path,
    run_id: str,
    open_files: bool = True,
    fingerprint: Fingerprint | None = None,
) -> tuple[Letter, dict[str, Any] | None]:
    """Parse one line: the letter and its arguments (forsendelse model,
    files, kryptering) for the operation, or None when it has problems.
    ``open_files=False`` leaves out the check that each document can be read
    (a send reads them anyway, and fails before the body is complete).
    ``fingerprint`` takes each document opened, as :func:`documents_fingerprint` would."""
    letter = Letter(line=line, raw=raw)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        letter.problem("line", "json", f"not JSON: {exc}")
        return letter, None
    if not isinstance(data, dict):
        letter.problem("line", "json_object", "must be a JSON object")
        return letter, None
    ref = data.get(REF_KEY)
    if isinstance(ref, str) and ref:
        letter.ref = ref
    else:
        letter.problem(REF_KEY, "required", "must be a non-empty string, unique in the manifest")
    kind = data.get(KIND_KEY)
    op = operations().get(kind) if isinstance(kind, str) else None
    if op is None:
        letter.problem(KIND_KEY, "enum", f"must be one of {', '.join(operations())}, got {kind!r}")
        return letter, None
    letter.kind = op.kind
    allowed = _allowed_keys(op.file_argument)
    if unknown := data.keys() - allowed:
        for key in sorted(unknown):
            letter.problem(
                key, "unknown_key", f"not a manifest key for kind {op.kind!r}; allowed: {', '.join(sorted(allowed))}"
            )
    kryptering = data.get(KRYPTERING_KEY, False)
    if not isinstance(kryptering, bool):
        letter.problem(KRYPTERING_KEY, "bool", "must be true or false")
    files = _files(
        letter, op, data.get(op.file_argument), base_dir=base_dir, open_files=open_files, fingerprint=fingerprint
    )
    metadata = data.get(FORSENDELSE_KEY)
    if not isinstance(metadata, dict):
        letter.problem(FORSENDELSE_KEY, "json_object", f"must be a JSON object ({op.model.__name__})")
        return letter, None
    # The line's own parse: completed in place, no copy needed.
    if letter.ref is not None and not metadata.get(EKSTERN_REFERANSE_KEY):
        metadata[EKSTERN_REFERANSE_KEY] = ekstern_referanse(run_id, letter.ref, model=op.model)
    letter.ekstern_referanse = metadata.get(EKSTERN_REFERANSE_KEY)
    try:
        forsendelse = op.model.model_validate(metadata)
    except ValidationError as exc:
        for e in exc.errors():
            path = _key_path((FORSENDELSE_KEY, *e["loc"]))
            letter.problem(path, e["type"], plain_message(e, path=path))
        return letter, None
    if letter.problems or files is None:
        return letter, None
    return letter, {"forsendelse": forsendelse, "files": files, "kryptering": kryptering}


@cache
def _allowed_keys(file_argument: str) -> frozenset[str]:
    """The keys a manifest line may have, for a kind whose documents are under ``file_argument``."""
    return frozenset({REF_KEY, KIND_KEY, FORSENDELSE_KEY, KRYPTERING_KEY, file_argument})


def _files(
    letter: Letter, op: SendOperation, value: Any, *, base_dir: Path, open_files: bool, fingerprint: Fingerprint | None
) -> Any:
    """The document paths of a line (a mapping filnavn -> Path, or one Path),
    or None after recording why not."""
    key = op.file_argument
    if op.described_by is not None:
        if not isinstance(value, dict) or not value:
            letter.problem(key, "required", 'must map each filnavn to a path, e.g. {"brev.pdf": "brev.pdf"}')
            return None
        paths = {
            name: _path(
                letter,
                f"{key}.{name}",
                rel,
                base_dir=base_dir,
                open_files=open_files,
                fingerprint=fingerprint,
                name=name,
            )
            for name, rel in value.items()
        }
        return None if any(p is None for p in paths.values()) else paths
    if not isinstance(value, str):
        letter.problem(key, "required", 'must be the path of the one document, e.g. "epikrise.pdf"')
        return None
    return _path(letter, key, value, base_dir=base_dir, open_files=open_files, fingerprint=fingerprint, name="")


def _path(
    letter: Letter,
    field_name: str,
    rel: Any,
    *,
    base_dir: Path,
    open_files: bool,
    fingerprint: Fingerprint | None = None,
    name: str = "",
) -> Path | None:
    if not isinstance(rel, str) or not rel:
        letter.problem(field_name, "path", "must be a path relative to the manifest")
        return None
    path = base_dir / rel
    if not open_files:
        return path
    try:
        # Opened, not just looked at: a file the runner may not read fails here. A bare descriptor is
        # enough, and costs far less than a file object over a million lines.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        letter.problem(field_name, "readable", f"cannot read {path}: {exc.strerror or exc}")
        return None
    try:
        found = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(found.st_mode):
        letter.problem(field_name, "file", f"{path} is not a regular file")
        return None
    if fingerprint is not None:
        # Taken as the check opens the document, before the rules read it: a write after this changes it.
        fingerprint.add(letter.line, name, rel, found)
    return path


def _key_path(loc: Iterable[int | str]) -> str:
    """A key's path on a manifest line as the line writes it: ``forsendelse.dokumenter[0].filnavn``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# Pydantic's words for a value of the wrong JSON type, as a manifest's author thinks of them.
_JSON_TYPES = {
    "string_type": "a string (text in quotes)",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a JSON array ([...])",
    "tuple_type": "a JSON array ([...])",
    "dict_type": "a JSON object ({...})",
    "model_type": "a JSON object ({...})",
    "model_attributes_type": "a JSON object ({...})",
    "uuid_type": "a UUID",
    "uuid_parsing": "a UUID (like 0b6e1d44-8c6a-4d2a-9f5e-3c1f7a2b9e10)",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "datetime_type": "a date and time (ISO 8601, like 2026-05-17T12:00:00+02:00)",
    "datetime_parsing": "a date and time (ISO 8601, like 2026-05-17T12:00:00+02:00)",
    "datetime_from_date_parsing": "a date and time (ISO 8601, like 2026-05-17T12:00:00+02:00)",
}


def plain_message(error: Any, *, path: str) -> str:
    """A pydantic error on a manifest line, in the line's words: the key is
    ``path``; no Python types, no pydantic phrasing."""
    kind, message = str(error.get("type", "")), str(error.get("msg", ""))
    parent, _, key = path.rpartition(".")
    if kind == "missing":
        return f'required: add "{key}" to {parent}' if parent else "required"
    if kind == "extra_forbidden":
        return f'"{key}" is not a key of {parent}: remove it or check its spelling' if parent else "not a known key"
    if kind in _JSON_TYPES:
        return f"must be {_JSON_TYPES[kind]}"
    if kind in ("enum", "literal_error") and "expected" in (error.get("ctx") or {}):
        return f"must be one of {error['ctx']['expected']}"
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    for said, plain in (("Input should", "must"), ("String should", "must"), ("List should", "must")):
        if message.startswith(said):
            return plain + message[len(said) :]
    return message


def check_send(
    client: BaseClient, op: SendOperation, *, konto_id: UUID | str, arguments: Mapping[str, Any]
) -> list[tuple[str, str, str]]:
    """The client's pre-send checks on one letter, as a send runs them (its
    rules and yours), without sending: (key on the manifest line, rule,
    message) per problem."""
    try:
        op.check(
            client,
            konto_id=konto_id,
            forsendelse=arguments["forsendelse"],
            dokumenter=arguments["files"],
            kryptering=arguments["kryptering"],
        )
    except ForsendelseValidationError as exc:
        return [_on_the_line(op, p, arguments) for p in exc.problems]
    except (TypeError, ValueError, OSError) as exc:
        return [(op.file_argument, "documents", str(exc))]
    return []


def _on_the_line(op: SendOperation, problem: Problem, arguments: Mapping[str, Any]) -> tuple[str, str, str]:
    """A pre-send problem as the manifest line has it: the client speaks of
    its own arguments (``dokumenter={...}``); a line has keys. The documents'
    problems are rephrased from the line's own values (the filnavn at the
    problem's place in forsendelse, the names in the file key)."""
    files_key, described_by = op.file_argument, op.described_by
    field_name = f"{FORSENDELSE_KEY}.{problem.field}"
    if problem.rule == "document_missing" and described_by is not None:
        name = _filnavn_at(arguments["forsendelse"], problem.field, described_by=described_by)
        if name is not None:
            return (
                field_name,
                problem.rule,
                f'no file for {json.dumps(name, ensure_ascii=False)}: add it to "{files_key}" on this line, '
                f'e.g. "{files_key}": {{{json.dumps(name, ensure_ascii=False)}: "path/to/the/file"}}',
            )
    if problem.rule == "document_not_described" and described_by is not None:
        files = arguments["files"]
        described = _described(arguments["forsendelse"], described_by)
        names = [n for n in (files if isinstance(files, dict) else {}) if n not in described]
        name = next((n for n in names if repr(n) in problem.message), names[0] if names else None)
        if name is not None:
            quoted = json.dumps(name, ensure_ascii=False)
            return (
                f"{files_key}.{name}",
                problem.rule,
                f"{quoted} is not described in {FORSENDELSE_KEY}.{described_by}: add an entry with filnavn "
                f'{quoted} there, or remove it from "{files_key}"',
            )
    return field_name, problem.rule, problem.message


def _described(forsendelse: BaseModel, described_by: str) -> list[str]:
    items = forsendelse.model_dump(by_alias=True, mode="json").get(described_by) or []
    return [str(item.get("filnavn", "")) for item in items if isinstance(item, dict)]


def _filnavn_at(forsendelse: BaseModel, field_name: str, *, described_by: str) -> str | None:
    """The filnavn a problem's field (``dokumenter[2].filnavn``) points at."""
    prefix = f"{described_by}["
    if not field_name.startswith(prefix) or "]" not in field_name:
        return None
    index = field_name[len(prefix) : field_name.index("]")]
    names = _described(forsendelse, described_by)
    return names[int(index)] if index.isdigit() and int(index) < len(names) else None


class RefSet:
    """The refs seen so far and their lines, in a temporary on-disk SQLite
    database (so a million refs do not sit in memory)."""

    def __init__(self) -> None:
        # "" opens a private temporary database on disk, removed on close.
        self._db = sqlite3.connect("")
        self._db.execute("PRAGMA cache_size=-2048")
        self._db.execute("CREATE TABLE ref (ref TEXT PRIMARY KEY, line INTEGER NOT NULL)")

    def add(self, ref: str, line: int) -> int | None:
        """Record ``ref``; the line it was first seen on if it was seen already."""
        try:
            self._db.execute("INSERT INTO ref VALUES (?, ?)", (ref, line))
        except sqlite3.IntegrityError:
            row = self._db.execute("SELECT line FROM ref WHERE ref = ?", (ref,)).fetchone()
            return int(row[0])
        return None

    def close(self) -> None:
        self._db.close()


BOM = b"\xef\xbb\xbf"
ENCODING_RULE = "utf8"


def lines(manifest: Path) -> Iterator[tuple[int, str]]:
    """The manifest's non-blank lines with their numbers (from 1). A UTF-8
    BOM (as Windows editors write) is skipped; a line that is not UTF-8 comes
    with U+FFFD for its bad bytes (:func:`encoding_problem` says where)."""
    for number, text, _ in _decoded(manifest):
        yield number, text


def _decoded(manifest: Path) -> Iterator[tuple[int, str, str | None]]:
    """Each non-blank line, its number, and why it is not UTF-8 (None if it is)."""
    with manifest.open("rb") as f:
        for number, data in enumerate(f, start=1):
            if number == 1 and data.startswith(BOM):
                data = data[len(BOM) :]
            problem = None
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = encoding_problem(data, exc, first=number == 1)
                text = data.decode("utf-8", errors="replace")
            if raw := text.strip():
                yield number, raw, problem


def encoding_problem(data: bytes, exc: UnicodeDecodeError, *, first: bool = False) -> str:
    """Where a line is not UTF-8, for a person: the first bad byte and its
    column (counted in bytes from 1), and what to do."""
    if first and data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the manifest is UTF-16, not UTF-8: save it as UTF-8"
    return f"not UTF-8 (byte 0x{data[exc.start]:02x} at column {exc.start + 1}): save the manifest as UTF-8"


def identify(raw: str, *, run_id: str) -> tuple[str, str, str | None] | None:
    """A line's ref, kind and eksternReferanse, read without the checks
    (None when it has no usable ref or kind)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    ref, kind = data.get(REF_KEY), data.get(KIND_KEY)
    op = operations().get(kind) if isinstance(kind, str) else None
    if not isinstance(ref, str) or not ref or op is None:
        return None
    metadata = data.get(FORSENDELSE_KEY)
    given = metadata.get(EKSTERN_REFERANSE_KEY) if isinstance(metadata, dict) else None
    return ref, op.kind, given or ekstern_referanse(run_id, ref, model=op.model)


def manifest_sha256(manifest: Path) -> str:
    """The SHA-256 of the manifest's bytes, as hex: which manifest a journal
    holds (:meth:`svarut.batch.journal.Journal.checked_manifest`)."""
    digest = hashlib.sha256()
    with manifest.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Fingerprint:
    """The documents a manifest's lines name, as they are now: the SHA-256
    over each one's line, key, path (as the line writes it), size and
    modification time (:func:`documents_fingerprint`)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, line: int, name: str, rel: str, found: os.stat_result) -> None:
        entry = f"{line}\0{name}\0{rel}\0{found.st_size}\0{found.st_mtime_ns}\n"
        self._digest.update(entry.encode("utf-8", "surrogatepass"))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def documents_fingerprint(manifest: Path) -> str | None:
    """A fingerprint of the documents the manifest's lines name, as they are
    now (:class:`Fingerprint`), read with one ``stat`` each (no document is
    opened). None when a document is missing or not a regular file. A line
    that cannot be read is left out: the check finds it. Cheap beside
    :func:`check_letters`, which takes the same fingerprint as it opens the
    documents: a document written since changes it."""
    base = os.fspath(manifest.parent)
    fingerprint = Fingerprint()
    for number, raw in lines(manifest):
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        kind = data.get(KIND_KEY) if isinstance(data, dict) else None
        op = operations().get(kind) if isinstance(kind, str) else None
        if op is None:
            continue
        value = data.get(op.file_argument)
        named = value.items() if isinstance(value, dict) else [("", value)]
        for name, rel in named:
            if not isinstance(rel, str) or not rel:
                continue
            try:
                # A plain string: a Path per document would cost more than its stat.
                found = os.stat(os.path.join(base, rel))
            except (OSError, ValueError):
                return None
            if not stat.S_ISREG(found.st_mode):
                return None
            fingerprint.add(number, name, rel, found)
    return fingerprint.hexdigest()


def check_letters(
    manifest: Path,
    *,
    client: BaseClient,
    konto_id: UUID | str,
    run_id: str = CHECK_RUN_ID,
    fingerprint: Fingerprint | None = None,
) -> Iterator[tuple[Letter, dict[str, Any] | None]]:
    """Every line of ``manifest`` (blank lines skipped) with its problems, and
    its send arguments when it has none. ``fingerprint`` takes the documents
    as the check opens them: once every line checks, it is
    :func:`documents_fingerprint` as of the check, with no pass of its own."""
    base_dir = manifest.parent
    refs = RefSet()
    try:
        for number, raw, not_utf8 in _decoded(manifest):
            if not_utf8 is not None:
                letter = Letter(line=number, raw=raw)
                letter.problem("line", ENCODING_RULE, not_utf8)
                yield letter, None
                continue
            letter, arguments = read_letter(number, raw, base_dir=base_dir, run_id=run_id, fingerprint=fingerprint)
            if letter.ref is not None and (first := refs.add(letter.ref, number)) is not None:
                letter.problem(REF_KEY, UNIQUE_RULE, f"ref {letter.ref!r} is already used on line {first}")
            if arguments is not None and letter.kind is not None:
                op = operations()[letter.kind]
                for field_name, rule, message in check_send(client, op, konto_id=konto_id, arguments=arguments):
                    letter.problem(field_name, rule, message)
            yield letter, (arguments if not letter.problems else None)
    finally:
        refs.close()
