"""Decrypting the documents of a ``kryptert`` forsendelse, as SvarUt would.

A document is a CMS ``EnvelopedData`` (RFC 5652) for SvarUt's certificate.
:func:`decrypt_file` reads one from disk with a minimal DER/BER reader (only
the structure EnvelopedData needs; definite lengths as this client writes, or
the indefinite ones ``openssl cms -stream`` writes), unwraps the content key
with the simulator's private key (RSAES-OAEP with any SHA-1/SHA-2 hash, or
RSA PKCS#1 v1.5), and streams the content through AES-CBC, hashing the
plaintext as it goes, so a large document is never in memory.

``cryptography``'s own ``pkcs7_decrypt_der`` is not used: it reads the whole
document into memory and does not take OAEP key transport, this client's
default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["DecryptError", "Decrypted", "decrypt_file"]

OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
OID_MGF1 = "1.2.840.113549.1.1.8"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
}
_AES_CBC = {
    "2.16.840.1.101.3.4.1.2": ("aes-128-cbc", 16),
    "2.16.840.1.101.3.4.1.22": ("aes-192-cbc", 24),
    "2.16.840.1.101.3.4.1.42": ("aes-256-cbc", 32),
}
_CHUNK = 256 * 1024
# Everything before the content (recipients, algorithms) is small.
_MAX_SMALL = 1024 * 1024


class DecryptError(Exception):
    """The document is not CMS EnvelopedData that the simulator's key opens."""


@dataclass(frozen=True)
class Decrypted:
    """What decrypting a document found."""

    size: int
    sha256: str
    key_transport: str
    content_encryption: str


@dataclass(frozen=True)
class _Tlv:
    tag: int
    content: bytes


class _Reader:
    """DER/BER headers and small elements read from a file, tracking the position."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def _exact(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise DecryptError("the document ends inside its CMS structure")
        return data

    def header(self) -> tuple[int, int | None]:
        """The next tag and length (None: indefinite)."""
        tag, first = self._exact(2)
        if tag & 0x1F == 0x1F:
            raise DecryptError("high tag numbers do not occur in EnvelopedData")
        if first < 0x80:
            return tag, first
        if first == 0x80:
            return tag, None
        count = first & 0x7F
        if count > 8:
            raise DecryptError("a DER length field is implausibly long")
        return tag, int.from_bytes(self._exact(count), "big")

    def expect(self, tag: int, what: str) -> int | None:
        found, length = self.header()
        if found != tag:
            raise DecryptError(f"expected {what} (tag 0x{tag:02x}), found tag 0x{found:02x}")
        return length

    def element(self, tag: int, what: str) -> bytes:
        """A whole element of definite length; its content."""
        length = self.expect(tag, what)
        if length is None or length > _MAX_SMALL:
            raise DecryptError(f"{what} must have a definite length under {_MAX_SMALL} bytes")
        return self._exact(length)

    def peek_header(self) -> tuple[int, int | None, int]:
        start = self._f.tell()
        tag, length = self.header()
        size = self._f.tell() - start
        self._f.seek(start)
        return tag, length, size

    def skip(self, length: int) -> None:
        self._f.seek(length, 1)

    def read(self, n: int) -> bytes:
        return self._exact(n)


def _tlvs(data: bytes) -> list[_Tlv]:
    """The elements of a definite-length constructed value's content."""
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise DecryptError("a DER element is cut short")
        tag, first = data[i], data[i + 1]
        i += 2
        if first < 0x80:
            length = first
        elif first == 0x80:
            raise DecryptError("indefinite lengths are not expected inside RecipientInfos")
        else:
            count = first & 0x7F
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        if i + length > len(data):
            raise DecryptError("a DER element is longer than what contains it")
        out.append(_Tlv(tag, data[i : i + length]))
        i += length
    return out


def _oid(content: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise DecryptError("an empty OBJECT IDENTIFIER")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def _algorithm(content: bytes) -> tuple[str, list[_Tlv]]:
    """An AlgorithmIdentifier's OID and parameters."""
    elements = _tlvs(content)
    if not elements or elements[0].tag != 0x06:
        raise DecryptError("an AlgorithmIdentifier without an OID")
    return _oid(elements[0].content), elements[1:]


def _hash(oid: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[oid]()
    except KeyError:
        raise DecryptError(f"unsupported hash algorithm {oid} in the OAEP parameters") from None


def _key_transport(content: bytes) -> tuple[str, asym_padding.AsymmetricPadding]:
    oid, params = _algorithm(content)
    if oid == OID_RSA_ENCRYPTION:
        return "pkcs1v15", asym_padding.PKCS1v15()
    if oid != OID_RSAES_OAEP:
        raise DecryptError(f"unsupported key transport algorithm {oid}")
    # RFC 4055 §4.1: every field has a default (SHA-1, MGF1 with SHA-1, empty
    # label). Decrypting what a sender chose is not choosing a weak hash.
    digest: hashes.HashAlgorithm = hashes.SHA1()  # noqa: S303
    mgf_digest: hashes.HashAlgorithm = hashes.SHA1()  # noqa: S303
    if params and params[0].tag == 0x30:
        for field in _tlvs(params[0].content):
            if field.tag == 0xA0:
                digest = _hash(_algorithm(_tlvs(field.content)[0].content)[0])
            elif field.tag == 0xA1:
                mgf, mgf_params = _algorithm(_tlvs(field.content)[0].content)
                if mgf != OID_MGF1 or not mgf_params:
                    raise DecryptError(f"unsupported OAEP mask generation function {mgf}")
                mgf_digest = _hash(_algorithm(mgf_params[0].content)[0])
            elif field.tag == 0xA2:
                raise DecryptError("OAEP labels (pSourceAlgorithm) are not supported")
    name = f"oaep-{digest.name}"
    return name, asym_padding.OAEP(mgf=asym_padding.MGF1(mgf_digest), algorithm=digest, label=None)


def _content_key(
    recipient_infos: bytes, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate
) -> tuple[bytes, str]:
    issuer = certificate.issuer.public_bytes()
    serial = certificate.serial_number
    for info in _tlvs(recipient_infos):
        if info.tag != 0x30:
            continue  # not a KeyTransRecipientInfo (key agreement, KEK, password, ...)
        fields = _tlvs(info.content)
        if len(fields) != 4 or fields[1].tag != 0x30:
            continue  # identified by subjectKeyIdentifier: the simulator's certificate has none
        rid = _tlvs(fields[1].content)
        if len(rid) != 2 or rid[0].content != issuer[_header_size(issuer) :]:
            continue
        if int.from_bytes(rid[1].content, "big", signed=True) != serial:
            continue
        name, key_padding = _key_transport(fields[2].content)
        try:
            return private_key.decrypt(fields[3].content, key_padding), name
        except ValueError:
            raise DecryptError(f"the content key does not decrypt with SvarUt's key ({name})") from None
    raise DecryptError("the document is not encrypted for SvarUt's certificate (no matching recipient)")


def _header_size(der: bytes) -> int:
    first = der[1]
    return 2 if first < 0x80 else 2 + (first & 0x7F)


def _ciphertext(reader: _Reader) -> Iterator[bytes]:
    """The encryptedContent: [0] IMPLICIT OCTET STRING, primitive (DER) or
    constructed from OCTET STRING segments (BER, ``openssl cms -stream``)."""
    tag, length = reader.header()
    if tag == 0x80:
        if length is None:
            raise DecryptError("a primitive encryptedContent needs a definite length")
        while length:
            piece = reader.read(min(_CHUNK, length))
            length -= len(piece)
            yield piece
        return
    if tag != 0xA0:
        raise DecryptError("the EnvelopedData has no encryptedContent")
    remaining = length
    while remaining is None or remaining > 0:
        segment_tag, segment_length, header_size = reader.peek_header()
        if segment_tag == 0 and segment_length == 0:
            reader.skip(header_size)
            return  # end-of-contents of an indefinite length
        reader.skip(header_size)
        if segment_tag != 0x04 or segment_length is None:
            raise DecryptError("an encryptedContent segment is not a definite OCTET STRING")
        left = segment_length
        while left:
            piece = reader.read(min(_CHUNK, left))
            left -= len(piece)
            yield piece
        if remaining is not None:
            remaining -= header_size + segment_length


def decrypt_file(
    path: Path,
    *,
    private_key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    sink: BinaryIO | None = None,
) -> Decrypted:
    """Decrypt the EnvelopedData in ``path``; the plaintext's size and SHA-256.

    ``sink``, if given, receives the plaintext. Raises :class:`DecryptError`
    for anything that is not EnvelopedData for ``certificate`` or does not
    decrypt.
    """
    with path.open("rb") as f:
        reader = _Reader(f)
        reader.expect(0x30, "ContentInfo")
        if _oid(reader.element(0x06, "the content type")) != OID_ENVELOPED_DATA:
            raise DecryptError("the document is CMS, but not EnvelopedData")
        reader.expect(0xA0, "the EnvelopedData content")
        reader.expect(0x30, "EnvelopedData")
        reader.element(0x02, "the EnvelopedData version")
        tag, _, _ = reader.peek_header()
        if tag == 0xA0:  # originatorInfo
            reader.element(0xA0, "originatorInfo")
        recipient_infos = reader.element(0x31, "RecipientInfos")
        reader.expect(0x30, "EncryptedContentInfo")
        reader.element(0x06, "the encrypted content type")
        algorithm, params = _algorithm(reader.element(0x30, "the content encryption algorithm"))
        if algorithm not in _AES_CBC:
            raise DecryptError(f"unsupported content encryption algorithm {algorithm}")
        cipher_name, key_size = _AES_CBC[algorithm]
        if not params or params[0].tag != 0x04 or len(params[0].content) != 16:
            raise DecryptError("the AES-CBC parameters are not a 16-byte IV")
        key, key_transport = _content_key(recipient_infos, private_key, certificate)
        if len(key) != key_size:
            raise DecryptError(f"the content key has {len(key)} bytes; {cipher_name} needs {key_size}")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(params[0].content)).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        digest = hashlib.sha256()
        size = 0

        def emit(data: bytes) -> None:
            nonlocal size
            if data:
                digest.update(data)
                size += len(data)
                if sink is not None:
                    sink.write(data)

        for piece in _ciphertext(reader):
            emit(unpadder.update(decryptor.update(piece)))
        try:
            emit(unpadder.update(decryptor.finalize()))
            emit(unpadder.finalize())
        except ValueError:
            raise DecryptError("the content does not decrypt (wrong key, or damaged ciphertext)") from None
    return Decrypted(size=size, sha256=digest.hexdigest(), key_transport=key_transport, content_encryption=cipher_name)
