"""The streaming ``multipart/form-data`` encoder for the send endpoints.

SvarUt reads the parts in order: first the JSON metadata, then one part per
document in the order of the metadata's document list, matched by filename.
httpx2's own multipart encoder cannot promise that order, reads files on the
event loop in the async client, and buffers non-file fields; this one writes
the parts in the order given, streams each document in chunks from its
:class:`~svarut.runtime.files.Source`, and knows the exact ``Content-Length``
whenever every source knows its size.

It works on the serialized metadata (a ``dict``), never on generated models.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from svarut.runtime.errors import ForsendelseValidationError, Problem
from svarut.runtime.files import File, FileSource, Source, describe_file

if TYPE_CHECKING:
    from svarut.runtime.streams import AsyncStream, SyncStream

# The keys of a document-metadata item that name the file and its content type.
FILENAME_KEY = "filnavn"
CONTENT_TYPE_KEY = "mimeType"

_CRLF = b"\r\n"
# Pieces smaller than this (part headers, the metadata, small documents, the
# CRLFs and the closing boundary) are joined into writes of about this size:
# each write is a trip through httpcore2, h11 and a send() system call, and a
# 20 KB letter otherwise took six of them.
GATHER_SIZE = 64 * 1024
# A body up to this size is read whole just before its request goes out
# (SyncStream), so the headers and the body leave back to back. Streamed, the
# file was opened and read between the two writes, and the server, woken by the
# headers, went back to sleep waiting for the body: ~100 us a small send.
PREFETCH_SIZE = GATHER_SIZE


def quote_param(value: str) -> str:
    """Quote a Content-Disposition parameter value as RFC 7578 §4.2 and the
    WHATWG HTML form encoding do: ``"``, CR and LF (and other control
    characters) are percent-encoded, other characters go as UTF-8. A filename
    can therefore never end the quoted string or start a new header line."""
    if value.isprintable() and '"' not in value:
        return value  # no control character (all are unprintable) and no quote: nothing to encode, the usual case
    return value.translate(_PERCENT_ENCODED)


_PERCENT_ENCODED = {c: f"%{c:02X}" for c in (*range(0x20), ord('"'), 0x7F)}


def _valid_content_type(value: str) -> bool:
    # Printable ASCII (space to tilde) with a slash.
    return value.isascii() and value.isprintable() and "/" in value


@dataclass(slots=True)  # made twice a send; a frozen init costs a call per field
class Part:
    """One part: its headers, and either inline bytes or a streamed source."""

    head: bytes
    data: bytes | Source

    @property
    def size(self) -> int | None:
        body = len(self.data) if isinstance(self.data, bytes) else self.data.size
        return None if body is None else len(self.head) + body + len(_CRLF)


def _head(boundary: str, name: str, content_type: str, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{quote_param(name)}"'
    if filename is not None:
        disposition += f'; filename="{quote_param(filename)}"'
    return (f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n").encode()


class MultipartBody:
    """An ordered multipart body that can be streamed (sync or async) any
    number of times, provided its sources can be rewound."""

    def __init__(self, parts: Sequence[Part], boundary: str) -> None:
        self.parts = tuple(parts)
        self.boundary = boundary
        self._tail = f"--{boundary}--\r\n".encode()
        # Fixed once the parts are: each source measured its size when it was made.
        sizes = [p.size for p in self.parts]
        self._length = None if None in sizes else sum(s for s in sizes if s is not None) + len(self._tail)
        # How far the latest attempt's stream got: where a caller interrupted mid-send learns it. The
        # stream's counters, not the stream, which holds this body: no cycle for the garbage collector.
        self._latest: Progress | None = None

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int | None:
        return self._length

    @property
    def replayable(self) -> bool:
        return all(isinstance(p.data, bytes) or p.data.replayable for p in self.parts)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        length = self.content_length
        if length is not None:
            headers["Content-Length"] = str(length)
        return headers

    def __iter__(self) -> Iterator[bytes]:
        return _gather(self._pieces())

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _agather(self._apieces())

    def join(self) -> bytes:
        """The whole body at once (a small one: see PREFETCH_SIZE)."""
        return b"".join(self._pieces())

    def _pieces(self) -> Iterator[bytes]:
        for part in self.parts:
            yield part.head
            if isinstance(part.data, bytes):
                yield part.data
            else:
                yield from part.data.iter_bytes()
            yield _CRLF
        yield self._tail

    async def _apieces(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part.head
            if isinstance(part.data, bytes):
                yield part.data
            else:
                async for chunk in part.data.aiter_bytes():
                    yield chunk
            yield _CRLF
        yield self._tail

    @property
    def started(self) -> bool:
        """Whether the latest attempt handed a byte of this body to the
        transport. Until then SvarUt cannot have the forsendelse (a request
        head without its body is not a send); from then on it may get all of
        it, so a send stopped there (Ctrl-C) has an unknown outcome. Counted
        before the write, so it errs on the side of "may have it"."""
        return self._latest is not None and self._latest.sent > 0

    @property
    def completed(self) -> bool:
        """Whether the transport took the last byte of the latest attempt's body."""
        return self._latest is not None and self._latest.completed

    def sync_stream(self, abort: threading.Event | None = None) -> SyncStream:
        from svarut.runtime.streams import SyncStream

        stream = SyncStream(self, abort)
        self._latest = stream.progress
        return stream

    def async_stream(self) -> AsyncStream:
        from svarut.runtime.streams import AsyncStream

        stream = AsyncStream(self)
        self._latest = stream.progress
        return stream


class _Gatherer:
    """Joins runs of small pieces (see GATHER_SIZE); a big piece passes
    through as it is, uncopied. Shared by the sync and async bodies."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._size = 0

    def push(self, piece: bytes) -> list[bytes]:
        """What to write now that ``piece`` has come."""
        if len(piece) < GATHER_SIZE:
            self._pending.append(piece)
            self._size += len(piece)
            return self.flush() if self._size >= GATHER_SIZE else []
        return [*self.flush(), piece]

    def flush(self) -> list[bytes]:
        if not self._pending:
            return []
        joined = b"".join(self._pending)
        self._pending, self._size = [], 0
        return [joined]


def _gather(pieces: Iterable[bytes]) -> Iterator[bytes]:
    gatherer = _Gatherer()
    for piece in pieces:
        yield from gatherer.push(piece)
    yield from gatherer.flush()


async def _agather(pieces: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    gatherer = _Gatherer()
    async for piece in pieces:
        for out in gatherer.push(piece):
            yield out
    for out in gatherer.flush():
        yield out


@dataclass(frozen=True)
class DocumentProblem(Problem):
    """A :class:`~svarut.runtime.errors.Problem` with the documents of a send,
    with what a caller needs to say it in its own terms (the message speaks
    the Python API's: ``dokumenter={...}``): ``filnavn``, the document's name;
    ``parameter``, the argument (and multipart part) that takes the documents,
    such as ``dokumenter``; ``described_by``, the metadata list that describes
    them, and ``index``, the entry of that list the problem is at (None for a
    document the list lacks). The CLI names its DOKUMENTER argument and
    ``--mime-type`` with them, a batch manifest its keys."""

    filnavn: str | None = None
    parameter: str | None = None
    described_by: str | None = None
    index: int | None = None


class StreamAborted(Exception):
    """The caller gave up on a send (its task was cancelled) while a worker
    thread was writing the body; the connection is dropped mid-body, so SvarUt
    cannot have the forsendelse."""


class Progress:
    """How far one attempt's stream got (see :class:`BodyStream`)."""

    __slots__ = ("completed", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.completed = False


class BodyStream:
    """What the client reads of a body's stream after an attempt: ``sent``,
    the bytes handed to the transport, and ``completed``, whether it took the
    last one. The streams themselves (:class:`~svarut.runtime.streams.SyncStream`,
    :class:`~svarut.runtime.streams.AsyncStream`) are httpx2 byte streams, so
    they live in :mod:`svarut.runtime.streams`, imported with httpx2 when the
    first request is made; ``multipart.SyncStream`` and
    ``multipart.AsyncStream`` still name them."""

    _body: MultipartBody
    progress: Progress

    @property
    def sent(self) -> int:
        return self.progress.sent

    @property
    def completed(self) -> bool:
        return self.progress.completed

    @property
    def replayable(self) -> bool:
        """Whether the body can be streamed again (SvarUtAuth resends it after a 401 only then)."""
        return self._body.replayable


def __getattr__(name: str) -> Any:
    """``SyncStream`` and ``AsyncStream``, from :mod:`svarut.runtime.streams` (PEP 562)."""
    if name in ("SyncStream", "AsyncStream"):
        from svarut.runtime import streams

        return getattr(streams, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Document:
    """A document ready to be sent: its name, type and bytes."""

    filnavn: str
    mime_type: str
    source: Source

    def sha256(self) -> str | None:
        """The hex SHA-256 of the content, or None if it cannot be read again."""
        if not self.source.replayable:
            return None
        import hashlib  # only for an unknown outcome: not on every start-up

        digest = hashlib.sha256()
        for chunk in self.source.iter_bytes():
            digest.update(chunk)
        return digest.hexdigest()


def match_documents(
    metadata: Mapping[str, Any],
    described_by: str,
    files: Mapping[str, File | FileSource],
    *,
    part_name: str,
) -> list[Document]:
    """Pair each document described in ``metadata[described_by]`` with its
    source from ``files`` (keyed by filnavn), in the metadata's order.

    Every metadata entry needs exactly one source and every source an entry;
    all mismatches are reported together, before anything is sent.
    """
    items = metadata.get(described_by) or []
    names = [str(item.get(FILENAME_KEY, "")) for item in items]
    if len(names) == len(files) == len(set(names)) and all(name in files for name in names):
        return _documents(items, names, files)  # the usual case: every name once, on both sides
    problems: list[Problem] = []
    for i, name in enumerate(names):
        if name not in files:
            problems.append(
                DocumentProblem(
                    f"{described_by}[{i}].{FILENAME_KEY}",
                    "document_missing",
                    f"no document given for {name!r} (pass it in {part_name}={{{name!r}: ...}})",
                    filnavn=name,
                    parameter=part_name,
                    described_by=described_by,
                    index=i,
                )
            )
    for name in files:
        if name not in names:
            problems.append(
                DocumentProblem(
                    part_name,
                    "document_not_described",
                    f"document {name!r} is not described in {described_by}; add it to the metadata or remove it",
                    filnavn=name,
                    parameter=part_name,
                    described_by=described_by,
                )
            )
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            problems.append(
                DocumentProblem(
                    f"{described_by}[{i}].{FILENAME_KEY}",
                    "filename_unique",
                    f"filnavn {name!r} appears more than once",
                    filnavn=name,
                    parameter=part_name,
                    described_by=described_by,
                    index=i,
                )
            )
        seen.add(name)
    if problems:
        raise ForsendelseValidationError(problems)
    return _documents(items, names, files)


def _documents(items: Sequence[Any], names: list[str], files: Mapping[str, File | FileSource]) -> list[Document]:
    documents = []
    for item, name in zip(items, names, strict=True):
        value = files[name]
        source = value.content if isinstance(value, File) else value
        documents.append(Document(name, str(item.get(CONTENT_TYPE_KEY, "")), Source(source, label=name)))
    return documents


def preload_small(documents: Sequence[Document]) -> None:
    """Read the documents of a small send (PREFETCH_SIZE in all) whole, once,
    before the pre-send checks sniff them: see :meth:`Source.preload`."""
    total = 0
    for d in documents:
        if d.source.size is None:
            return
        total += d.source.size
    if total <= PREFETCH_SIZE:
        for d in documents:
            d.source.preload()


def single_document(value: File | FileSource, *, part_name: str) -> Document:
    """The document of a part whose file the metadata does not describe."""
    filnavn, mime_type, source = describe_file(value, label=part_name)
    return Document(filnavn, mime_type, Source(source, label=filnavn))


def content_type_problems(documents: Sequence[Document], *, file_part: str) -> list[Problem]:
    """The documents whose MIME type cannot go in a part header."""
    return [
        DocumentProblem(
            f"{file_part}[{i}].{CONTENT_TYPE_KEY}",
            "content_type",
            f"{doc.mime_type!r} is not a valid MIME type for {doc.filnavn!r}",
            filnavn=doc.filnavn,
            parameter=file_part,
            index=i,
        )
        for i, doc in enumerate(documents)
        if not _valid_content_type(doc.mime_type)
    ]


def encode(
    *,
    metadata_part: str,
    metadata_json: bytes,
    file_part: str,
    documents: Sequence[Document],
    boundary: str | None = None,
) -> MultipartBody:
    """Build the body: the JSON part first, then each document in order
    (whose content types the caller checked: :func:`content_type_problems`)."""
    # secrets.token_hex(16), which is this, without importing secrets (hmac, hashlib, random) at start-up.
    boundary = boundary or os.urandom(16).hex()
    parts = [Part(_head(boundary, metadata_part, "application/json"), metadata_json)]
    parts += [Part(_head(boundary, file_part, d.mime_type, d.filnavn), d.source) for d in documents]
    return MultipartBody(parts, boundary)
