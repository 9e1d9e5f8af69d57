"""Document sources: where the bytes of each document come from.

A document may be given as a :class:`~pathlib.Path`, as ``bytes`` (or any
bytes-like object), or as a binary file object opened by the caller, or wrapped
in :class:`File` to name it. Each source is turned into a :class:`Source` that
knows its size (when it can be known without reading it) and can be read from
the start again, so a request body can be replayed (for example after a fresh
token) without holding the document in memory.
"""

from __future__ import annotations

import io
import mimetypes
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeAlias

from svarut.runtime.errors import SourceChangedError

# The sync client reads, and hands to the transport, pieces of this size.
# With 1 MiB pieces glibc's malloc gave the heap back to the kernel at the end
# of every document and faulted it in again for the next (~500 page faults,
# ~1 ms, a document: a third of the throughput on 5 MB documents); 512 KiB
# pieces avoid most of that and still keep the per-piece cost of httpcore2 and
# h11 small (256 KiB lost a fifth of the throughput on 50 MB documents).
CHUNK_SIZE = 512 * 1024

# The async client reads bigger pieces: each trip to a worker thread and each
# write through httpcore2, anyio and asyncio costs tens of microseconds of
# event-loop time however big the piece (512 KiB pieces were 10-40 % slower).
ASYNC_CHUNK_SIZE = 1024 * 1024

FileSource: TypeAlias = "os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO"


@dataclass(frozen=True)
class File:
    """A document with its name and content type spelled out.

    Needed where the metadata does not describe the file (the NHN endpoint takes
    one unnamed document); a ``Path`` alone also works there, its name then
    being the ``filnavn``.
    """

    filnavn: str
    content: FileSource
    mime_type: str = "application/pdf"


class Source:
    """One document's bytes, readable from the start as often as needed."""

    def __init__(self, source: FileSource, *, label: str) -> None:
        self.label = label
        self._path: Path | None = None
        self._data: memoryview | None = None
        self._file: BinaryIO | None = None
        self._start = 0
        # A small file read whole by preload(), and the stat it was read under.
        self._whole: bytes | None = None
        self._whole_stat: tuple[int, int, int, int] | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._data = memoryview(source).cast("B")
            self.size: int | None = self._data.nbytes
        elif isinstance(source, (Path, os.PathLike)):  # a Path first: os.PathLike is a slower ABC check
            self._path = source if isinstance(source, Path) else Path(source)
            try:
                st = os.stat(self._path)  # one system call for the size and the type
            except OSError as exc:
                raise FileNotFoundError(f"document {label!r}: cannot read {self._path}: {exc.strerror}") from None
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(f"document {label!r}: {self._path} is not a regular file")
            self.size = st.st_size
        elif isinstance(source, io.TextIOBase):
            raise TypeError(f"document {label!r}: open the file in binary mode ('rb'), not text mode")
        elif hasattr(source, "read"):
            self._file = source
            self.size = None
            if _seekable(source):
                self._start = source.tell()
                end = source.seek(0, io.SEEK_END)
                source.seek(self._start)
                self.size = end - self._start
        else:
            raise TypeError(
                f"document {label!r}: expected a Path, bytes or a binary file object, got {type(source).__name__}"
            )

    @property
    def replayable(self) -> bool:
        return self._file is None or _seekable(self._file)

    def preload(self) -> None:
        """Read a file source whole, now, so that the content sniff (:meth:`head`)
        and the body's first read share one open and read. For small documents
        only (the caller bounds the total): the bytes stay held. A later read
        uses them only if the file's stat (size, times, inode) is still the one
        they were read under; otherwise it reads the file again, and notices a
        new size. A same-size rewrite within the file system's timestamp
        granularity (a few milliseconds) is not seen: the bytes the checks
        looked at are the ones sent."""
        if self._path is None or self._whole is not None or self.size is None:
            return
        # A bare descriptor: no file object or buffer to set up for one read.
        fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            pieces: list[bytes] = []
            want = self.size + 1  # one byte more than expected shows a file that grew
            while want > 0 and (piece := os.read(fd, want)):
                pieces.append(piece)
                if len(piece) < want:
                    break  # short: the end (a short read elsewhere only leaves the file unpreloaded)
                want -= len(piece)
        finally:
            os.close(fd)
        data = b"".join(pieces)
        if len(data) == self.size:
            self._whole, self._whole_stat = data, _stat_key(st)

    def _preloaded(self) -> bytes | None:
        if self._whole is None or self._path is None:
            return None
        try:
            same = _stat_key(os.stat(self._path)) == self._whole_stat
        except OSError:
            same = False
        if not same:
            self._whole = self._whole_stat = None
        return self._whole

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes (for content sniffing), leaving the source unread."""
        if self._data is not None:
            return bytes(self._data[:n])
        if self._whole is not None:
            return self._whole[:n]
        if self._path is not None:
            # A bare descriptor: a batch check reads the heads of many small files.
            fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                return os.read(fd, n)
            finally:
                os.close(fd)
        assert self._file is not None
        if not _seekable(self._file):
            return b""
        self._file.seek(self._start)
        data = self._file.read(n)
        self._file.seek(self._start)
        return bytes(data)

    # The sync and async readers share _open/_read_chunk/_check_end; only the
    # async one moves the blocking calls to a worker thread.

    def _open(self) -> BinaryIO | None:
        if self._path is not None:
            return self._path.open("rb", buffering=0)
        if self._file is not None:
            if _seekable(self._file):
                self._file.seek(self._start)
            return self._file
        return None

    def _close(self, handle: BinaryIO | None) -> None:
        if handle is not None and self._path is not None:
            handle.close()

    def _check(self, sent: int) -> None:
        if self.size is not None and sent != self.size:
            raise SourceChangedError(
                f"document {self.label!r} changed while being sent: expected {self.size} bytes, read {sent}"
            )

    def _want(self, sent: int, piece: int) -> int:
        return piece if self.size is None else min(piece, self.size - sent)

    def iter_bytes(self) -> Iterator[bytes]:
        if self._data is not None:
            for i in range(0, self._data.nbytes, CHUNK_SIZE):
                yield self._data[i : i + CHUNK_SIZE].tobytes()
            return
        if (whole := self._preloaded()) is not None:
            if whole:  # as a read of an empty file: no chunk at all
                yield whole
            return
        handle = self._open()
        assert handle is not None
        sent = 0
        try:
            while want := self._want(sent, CHUNK_SIZE):
                chunk = handle.read(want)
                if not chunk:
                    break
                sent += len(chunk)
                yield chunk
            if self.size is not None:
                sent += len(handle.read(1))
        finally:
            self._close(handle)
        self._check(sent)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        import anyio.to_thread  # here, not at the top: the sync client never needs anyio

        if self._data is not None:
            for i in range(0, self._data.nbytes, CHUNK_SIZE):
                yield self._data[i : i + CHUNK_SIZE].tobytes()
            return
        handle = await anyio.to_thread.run_sync(self._open)
        assert handle is not None
        sent = 0
        try:
            while want := self._want(sent, ASYNC_CHUNK_SIZE):
                chunk = await anyio.to_thread.run_sync(handle.read, want)
                if not chunk:
                    break
                sent += len(chunk)
                yield chunk
            if self.size is not None:
                sent += len(await anyio.to_thread.run_sync(handle.read, 1))
        finally:
            await anyio.to_thread.run_sync(self._close, handle)
        self._check(sent)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    # Size, modification and change time, inode: a rewrite, a replacement or a touch changes one.
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, ValueError):
        return False


def describe_file(value: File | FileSource, *, label: str) -> tuple[str, str, FileSource]:
    """(filnavn, mime type, source) for a file the metadata does not describe."""
    if isinstance(value, File):
        return value.filnavn, value.mime_type, value.content
    if isinstance(value, os.PathLike):
        name = Path(value).name
        return name, mimetypes.guess_type(name)[0] or "application/octet-stream", value
    raise TypeError(
        f"{label}: give a Path or wrap the content in svarut.File(filnavn=..., content=..., mime_type=...) "
        "so the document has a name"
    )
