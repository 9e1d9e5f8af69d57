"""SvarUt's multipart parser, Tomcat's, as the pre-send rules count it: its
default limits (:data:`MAX_PART_COUNT`, :data:`MAX_PART_HEADER_SIZE`), the
bytes it counts against the header limit for a part the client writes
(:func:`part_header_size`), and the filename it reports for one
(:func:`tomcat_filename`, trimmed as Java's ``String.trim()`` trims)."""

from __future__ import annotations

from functools import cache

# The encoder's own part-header builder: the header sizes counted are the
# bytes the client writes, whatever quoting the encoder does.
from svarut.runtime.multipart import _head as _part_head
from svarut.runtime.multipart import quote_param

__all__ = ["JAVA_TRIMMED", "MAX_PART_COUNT", "MAX_PART_HEADER_SIZE", "part_header_size", "tomcat_filename"]

# Tomcat's defaults for a multipart request (Connector maxPartCount and maxPartHeaderSize;
# Spring Boot: server.tomcat.max-part-count and server.tomcat.max-part-header-size).
# Tomcat 10.1.42 shipped maxPartCount 10 and 10.1.43 raised it to 50 (bug 69710), as did
# the Spring Boot releases that set it; the header limit has been 512 bytes throughout.
MAX_PART_COUNT = 50
MAX_PART_HEADER_SIZE = 512
#: What Java's ``String.trim()`` removes from either end: every character up to U+0020.
JAVA_TRIMMED = "".join(map(chr, range(0x21)))
# Any boundary does: the boundary line is not counted (see part_header_size).
_BOUNDARY = "b"
_BOUNDARY_LINE = len(f"--{_BOUNDARY}\r\n")


def part_header_size(part: str, filnavn: str, mime_type: str) -> int:
    """The bytes Tomcat counts against ``maxPartHeaderSize`` for the document
    part the client writes for ``filnavn`` of ``mime_type`` in part ``part``.

    Tomcat's copy of Commons FileUpload (``MultipartStream.readHeaders``, as
    in FileUpload 1.6 / 2.0.0-M4, merged into Tomcat for CVE-2025-48988) reads
    the header section byte by byte after ``readBoundary`` has consumed the
    boundary line and its CRLF, counts every byte it reads, the CRLF ending
    each header line and the CRLF of the blank line included (it stops after
    the ``CRLFCRLF``), and throws a size-limit exception as soon as the count
    passes the limit (``++size > partHeaderSizeMax``): a header section of
    exactly the limit passes, one byte more is refused. So the size is the
    encoder's part head minus its boundary line.
    """
    return len(_part_head(_BOUNDARY, part, mime_type, filnavn)) - _BOUNDARY_LINE


@cache
def empty_header_size(part: str) -> int:
    return part_header_size(part, "", "")


def tomcat_filename(filnavn: str) -> str:
    """The name Tomcat's ``Part.getSubmittedFileName()`` reports for the part
    the client writes for ``filnavn``: the filename as the encoder quotes it
    (Tomcat percent-decodes nothing), trimmed as Java's ``String.trim()`` trims."""
    return quote_param(filnavn).strip(JAVA_TRIMMED)
