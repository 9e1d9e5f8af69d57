"""Reading request bodies off the socket a chunk at a time.

:class:`BodyReader` undoes the HTTP/1.1 framing (``Content-Length`` or
``Transfer-Encoding: chunked``) and hands out the body in pieces.
:class:`MultipartReader` parses ``multipart/form-data`` from it, yielding each
part's headers and then its content as a stream of chunks, so a 350 MB
document goes from the socket to a file without ever being in memory whole.
At most one read chunk plus a boundary's length is buffered.

Both raise :class:`WireError`: ``BodyError`` when the body itself is broken
or cut off (the client went away; nothing to answer), ``MultipartError`` when
it arrived but is not well-formed multipart (answer 400), and its subclass
``PartLimitError`` when it is over one of the limits Tomcat, SvarUt's parser,
puts on a multipart request (``maxPartCount``, ``maxPartHeaderSize``).

Filenames are read as Tomcat's ``Part.getSubmittedFileName()`` reports them:
trimmed as Java's ``String.trim()`` trims (every character up to U+0020).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote

from svarut.runtime.validation import JAVA_TRIMMED

__all__ = [
    "BodyError",
    "BodyReader",
    "MultipartError",
    "MultipartReader",
    "PartHeaders",
    "PartLimitError",
    "WireError",
    "boundary_of",
]

CHUNK_SIZE = 256 * 1024
MAX_LINE = 8 * 1024
MAX_PART_HEADERS = 16 * 1024


class Readable(Protocol):
    """What the body is read from: the request handler's ``rfile``."""

    def read(self, n: int = ..., /) -> bytes: ...

    def readline(self, limit: int = ..., /) -> bytes: ...


class WireError(Exception):
    """The request body cannot be read as what it claims to be."""


class BodyError(WireError):
    """The body's framing is broken, or the connection ended before the body did."""


class MultipartError(WireError):
    """The body is not well-formed multipart/form-data."""


class PartLimitError(MultipartError):
    """The body has more parts, or a part with more header bytes, than the
    reader allows: Tomcat refuses such a request whole.

    ``limit`` names which; ``permitted`` is the limit, ``actual`` what the
    body had when the reader stopped (for a header section it did not find
    the end of within the limit, None)."""

    def __init__(
        self, message: str, *, limit: Literal["part_count", "part_header_size"], permitted: int, actual: int | None
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.permitted = permitted
        self.actual = actual


class BodyReader:
    """The request body, read from ``rfile`` as its headers frame it.

    ``content_length`` and ``chunked`` come from the request headers; with
    neither, the body is empty.
    """

    def __init__(self, rfile: Readable, *, content_length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._chunked = chunked
        self._left = 0 if chunked else (content_length or 0)
        self._done = not chunked and self._left == 0
        self.bytes_read = 0

    @classmethod
    def from_headers(cls, rfile: Readable, *, content_length: str | None, transfer_encoding: str | None) -> BodyReader:
        chunked = "chunked" in (transfer_encoding or "").lower()
        length: int | None = None
        if not chunked and content_length is not None:
            if not content_length.strip().isdigit():
                raise BodyError(f"Content-Length is not a number: {content_length[:40]!r}")
            length = int(content_length)
        return cls(rfile, content_length=length, chunked=chunked)

    @property
    def done(self) -> bool:
        return self._done

    def read(self, n: int = CHUNK_SIZE) -> bytes:
        """Up to ``n`` bytes of the body; ``b""`` once it has all been read."""
        if self._done:
            return b""
        if self._chunked and self._left == 0:
            self._left = self._next_chunk_size()
            if self._left == 0:
                self._read_trailers()
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._left))
        if not data:
            raise BodyError(f"the connection ended {self._left} bytes before the end of the body")
        self._left -= len(data)
        self.bytes_read += len(data)
        if self._left == 0:
            if self._chunked:
                if self._rfile.read(2) != b"\r\n":
                    raise BodyError("a chunk of the chunked body does not end in CRLF")
            else:
                self._done = True
        return data

    def drain(self) -> int:
        """Read and discard the rest of the body; returns how many bytes that was."""
        skipped = 0
        while chunk := self.read(CHUNK_SIZE):
            skipped += len(chunk)
        return skipped

    def _line(self) -> bytes:
        line = self._rfile.readline(MAX_LINE + 1)
        if not line:
            raise BodyError("the connection ended inside the chunked body")
        if len(line) > MAX_LINE or not line.endswith(b"\n"):
            raise BodyError("a line of the chunked body is too long")
        return line

    def _next_chunk_size(self) -> int:
        text = self._line().split(b";", 1)[0].strip()
        try:
            return int(text, 16)
        except ValueError:
            raise BodyError(f"bad chunk size {text[:20]!r} in the chunked body") from None

    def _read_trailers(self) -> None:
        while self._line() not in (b"\r\n", b"\n"):
            pass


def boundary_of(content_type: str | None) -> str | None:
    """The boundary of a ``multipart/form-data`` Content-Type, or None."""
    if not content_type:
        return None
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    value = _params(params).get("boundary")
    if not value or len(value) > 70:
        return None
    return value


_PARAM = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+\*?)\s*=\s*("[^"]*"|[^;]*)')


def _params(text: str) -> dict[str, str]:
    """``; name=value; other="quoted"`` → dict (names in lower case)."""
    found: dict[str, str] = {}
    for name, raw in _PARAM.findall(";" + text if not text.lstrip().startswith(";") else text):
        value = raw.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        found.setdefault(name.lower(), value)
    return found


# Browsers and this project's client (RFC 7578 §4.2, WHATWG) percent-encode
# exactly these inside a quoted filename; everything else is literal UTF-8.
_FORM_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n", "%0d": "\r", "%0a": "\n"}
_FORM_ESCAPE = re.compile("|".join(_FORM_ESCAPES))


@dataclass(frozen=True)
class PartHeaders:
    """One part's headers: its form field name, filename and content type."""

    name: str | None
    filename: str | None
    content_type: str | None
    raw: dict[str, str]


def _parse_part_headers(block: bytes) -> PartHeaders:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    headers: dict[str, str] = {}
    for line in text.split("\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MultipartError(f"malformed part header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise MultipartError("a part has no Content-Disposition header")
    kind, _, rest = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise MultipartError(f"a part's Content-Disposition is {kind.strip()!r}, not form-data")
    params = _params(rest)
    filename: str | None = None
    # Trimmed as Tomcat's Part.getSubmittedFileName() trims (String.trim()): the
    # RFC 5987 form once decoded, the quoted form as it stands (Tomcat decodes no
    # percent-escapes, so a "%09" stays; the simulator's decoding comes after).
    if "filename*" in params:
        # RFC 5987: charset'language'percent-encoded
        charset, _, encoded = params["filename*"].partition("'")
        _, _, encoded = encoded.partition("'")
        filename = unquote(encoded, encoding=charset or "utf-8", errors="replace").strip(JAVA_TRIMMED)
    elif "filename" in params:
        filename = _FORM_ESCAPE.sub(lambda m: _FORM_ESCAPES[m.group(0)], params["filename"].strip(JAVA_TRIMMED))
    return PartHeaders(
        name=params.get("name"), filename=filename, content_type=headers.get("content-type"), raw=headers
    )


class MultipartReader:
    """The parts of a ``multipart/form-data`` body, streamed.

    >>> reader = MultipartReader(body, boundary)  # doctest: +SKIP
    >>> while (part := reader.next_part()) is not None:  # doctest: +SKIP
    ...     for chunk in reader.iter_content(): ...

    Each part's content must be read (or skipped by calling ``next_part``
    again) before the next part's headers.

    ``max_part_count`` and ``max_part_header_size`` (None: no limit) are
    Tomcat's ``maxPartCount`` and ``maxPartHeaderSize``, counted as Tomcat
    counts them: every part, and of each part the bytes after its boundary
    line up to and including the blank line that ends its headers. Past
    either, :class:`PartLimitError`.
    """

    def __init__(
        self,
        body: BodyReader,
        boundary: str,
        *,
        chunk_size: int = CHUNK_SIZE,
        max_part_count: int | None = None,
        max_part_header_size: int | None = None,
    ) -> None:
        self._body = body
        self._chunk_size = chunk_size
        self._max_part_count = max_part_count
        self._max_header = max_part_header_size
        self._parts = 0
        # Every delimiter, the first included, is CRLF + "--" + boundary: the
        # CRLF before the first one is supplied here (RFC 2046 §5.1.1).
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = bytearray(b"\r\n")
        self._in_part = False
        self._finished = False
        self._started = False

    def _fill(self) -> bool:
        data = self._body.read(self._chunk_size)
        if not data:
            return False
        self._buffer += data
        return True

    def _need(self, n: int) -> None:
        while len(self._buffer) < n:
            if not self._fill():
                raise MultipartError("the body ended inside the multipart structure (no closing boundary)")

    def _skip_to_delimiter(self) -> None:
        """Discard everything up to and including the next delimiter."""
        for _ in self._content():
            pass

    def _content(self) -> Iterator[bytes]:
        keep = len(self._delimiter) - 1
        searched = 0
        while True:
            at = self._buffer.find(self._delimiter, max(0, searched - keep))
            if at >= 0:
                if at:
                    yield bytes(self._buffer[:at])
                del self._buffer[: at + len(self._delimiter)]
                return
            searched = len(self._buffer)
            if searched > keep:
                # Hand out all but a possible delimiter's start.
                out = bytes(self._buffer[: searched - keep])
                del self._buffer[: searched - keep]
                searched = keep
                yield out
            if not self._fill():
                raise MultipartError("the body ended inside a part (no closing boundary)")

    def next_part(self) -> PartHeaders | None:
        """The next part's headers, or None after the closing boundary."""
        if self._finished:
            return None
        if not self._started or self._in_part:
            self._skip_to_delimiter()  # the preamble, or the rest of the current part
            self._started = True
        self._in_part = False
        self._need(2)
        if self._buffer[:2] == b"--":
            self._finished = True
            del self._buffer[:]
            self._body.drain()  # the epilogue
            return None
        # Transport padding (RFC 2046) may follow the boundary before its CRLF.
        while True:
            self._need(2)
            if self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
                break
            if self._buffer[0] in b" \t":
                del self._buffer[:1]
                continue
            raise MultipartError("a boundary line is followed by something other than CRLF")
        self._need(2)
        limit = self._max_header
        if self._buffer[:2] == b"\r\n":  # a part without headers
            block_end, skip = 0, 2
        else:
            while (at := self._buffer.find(b"\r\n\r\n")) < 0:
                if limit is not None and len(self._buffer) > limit:
                    # No header section ends within the limit: Tomcat gives up at byte limit + 1.
                    raise self._header_too_big(limit, None)
                if len(self._buffer) > MAX_PART_HEADERS:
                    raise MultipartError(f"a part's headers are longer than {MAX_PART_HEADERS} bytes")
                if not self._fill():
                    raise MultipartError("the body ended inside a part's headers")
            block_end, skip = at, 4
        if limit is not None and block_end + skip > limit:
            raise self._header_too_big(limit, block_end + skip)
        headers = _parse_part_headers(bytes(self._buffer[:block_end]))
        del self._buffer[: block_end + skip]
        self._parts += 1
        # Counted once the part's headers are read, as Tomcat does: its iterator reads the
        # next part's headers before the count check, so an oversized header is found first.
        if self._max_part_count is not None and self._parts > self._max_part_count:
            raise PartLimitError(
                f"the body has more than {self._max_part_count} parts",
                limit="part_count",
                permitted=self._max_part_count,
                actual=self._parts,
            )
        self._in_part = True
        return headers

    def _header_too_big(self, limit: int, size: int | None) -> PartLimitError:
        found = f" ({size} bytes)" if size is not None else ""
        return PartLimitError(
            f"part {self._parts + 1}'s header section has more than {limit} bytes{found}",
            limit="part_header_size",
            permitted=limit,
            actual=size,
        )

    def iter_content(self) -> Iterator[bytes]:
        """The current part's content, in chunks of at most about the read size."""
        if not self._in_part:
            return
        yield from self._content()
        self._in_part = False

    def read_content(self, *, limit: int) -> bytes:
        """The current part's content as bytes; MultipartError past ``limit`` bytes."""
        data = bytearray()
        for chunk in self.iter_content():
            data += chunk
            if len(data) > limit:
                raise MultipartError(f"the part is larger than {limit} bytes")
        return bytes(data)
