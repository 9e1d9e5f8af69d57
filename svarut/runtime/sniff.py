"""What a document is, by its first bytes: the signatures of the well-known
content types (:data:`MAGIC`) and the CMS EnvelopedData sniff
(:func:`is_cms_enveloped_data`).

A leaf: the pre-send rules (:mod:`svarut.runtime.validation`) and the
encryption (:mod:`svarut.runtime.kryptering`) share it without importing each
other.
"""

from __future__ import annotations

__all__ = ["CMS_HEAD_BYTES", "MAGIC", "PDF", "SNIFF_BYTES", "is_cms_enveloped_data"]

PDF = "application/pdf"

_ZIP = (b"PK\x03\x04",)
#: Declared type -> the prefixes a file of that type starts with.
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
#: The bytes a :data:`MAGIC` sniff reads.
SNIFF_BYTES = max(len(m) for prefixes in MAGIC.values() for m in prefixes)

# A CMS ContentInfo is a DER SEQUENCE whose first element is the content type:
# OBJECT IDENTIFIER 1.2.840.113549.1.7.3 (id-envelopedData).
_ENVELOPED_DATA_OID = bytes.fromhex("06092a864886f70d010703")
#: The bytes :func:`is_cms_enveloped_data` reads: SEQUENCE, at most a 4-byte length, the OID.
CMS_HEAD_BYTES = 2 + 4 + len(_ENVELOPED_DATA_OID)


def is_cms_enveloped_data(head: bytes) -> bool:
    """Whether ``head``, a document's first bytes, starts a CMS EnvelopedData:
    a SEQUENCE (any DER length form, or BER's indefinite ``30 80``) whose first
    element is the OID 1.2.840.113549.1.7.3."""
    if len(head) < 2 or head[0] != 0x30:
        return False
    length = head[1]
    start = 2 if length <= 0x80 else 2 + (length & 0x7F)
    return head[start : start + len(_ENVELOPED_DATA_OID)] == _ENVELOPED_DATA_OID
