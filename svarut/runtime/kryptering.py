"""Encrypting documents for SvarUt: CMS EnvelopedData, streamed.

A forsendelse with ``kryptert: true`` (required for ``sikkerhetsniva:
HOYESTE``) carries each document as a DER-encoded CMS ``EnvelopedData``
(RFC 5652) addressed to SvarUt's certificate: a fresh 32-byte content key
encrypted with the certificate's RSA key (RSAES-OAEP with SHA-256 and
MGF1-SHA-256 by default, RSA PKCS#1 v1.5 as an option), and the document
encrypted with AES-256-CBC under that key.

What lives here:

- :class:`Kryptering`: the encoder. :meth:`~Kryptering.encrypted_size` gives
  the exact output size for a plaintext size, so the output uses definite DER
  lengths throughout and a request carrying it keeps an exact
  ``Content-Length``; :meth:`~Kryptering.encrypt_chunks` and
  :meth:`~Kryptering.aencrypt_chunks` stream, holding one chunk at a time.
- :class:`EncryptedSource`: a :class:`~svarut.runtime.files.Source` that reads
  another one and yields its ciphertext, for the multipart sender.
- :func:`encrypt_path`: file to file, for the command line.
- :func:`is_enveloped_data`: whether a document is CMS-encrypted already.

SvarUt's certificate (:class:`SvarUtSertifikat`: loaded, fetched with
:func:`hent_sertifikat` / :func:`ahent_sertifikat`, cached and checked) is
:mod:`svarut.runtime.sertifikat`'s; its names are importable from here too.

The ASN.1 is written by hand (a few dozen lines of DER) rather than with
``cryptography``'s PKCS#7 builder, which holds the whole document in memory
and offers no OAEP key transport.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from svarut.runtime.errors import KrypteringError, SertifikatError
from svarut.runtime.files import Source

# SvarUt's certificate has a module of its own; its names are this module's public face too.
from svarut.runtime.sertifikat import (
    EXPIRY_WARNING_DAYS,
    PUBLICKEY_PATH,
    SERTIFIKAT_URL_PROD,
    SERTIFIKAT_URL_TEST,
    SvarUtCertificateExpiryWarning,
    SvarUtSertifikat,
    ahent_sertifikat,
    clear_sertifikat_cache,
    hent_sertifikat,
    sertifikat_url,
)
from svarut.runtime.sniff import is_cms_enveloped_data

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "PUBLICKEY_PATH",
    "SERTIFIKAT_URL_PROD",
    "SERTIFIKAT_URL_TEST",
    "EncryptedSource",
    "KeyTransport",
    "Kryptering",
    "KrypteringError",
    "SertifikatError",
    "SvarUtCertificateExpiryWarning",
    "SvarUtSertifikat",
    "ahent_sertifikat",
    "clear_sertifikat_cache",
    "encrypt_path",
    "hent_sertifikat",
    "is_enveloped_data",
    "sertifikat_url",
]

KeyTransport = Literal["oaep", "pkcs1v15"]

_AES_BLOCK = 16


# --- DER ------------------------------------------------------------------
# Only what EnvelopedData needs. Every length is definite: for the streamed
# tail (the ciphertext) the length is known before a byte of it exists.

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OCTET_STRING = 0x04
_NULL = b"\x05\x00"
_CONTEXT_0 = 0xA0  # [0] constructed (EXPLICIT)
_CONTEXT_1 = 0xA1
_CONTEXT_0_PRIMITIVE = 0x80  # [0] IMPLICIT OCTET STRING

OID_DATA = "1.2.840.113549.1.7.1"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _header(tag: int, length: int) -> bytes:
    return bytes([tag]) + _der_length(length)


def _tlv(tag: int, *contents: bytes) -> bytes:
    body = b"".join(contents)
    return _header(tag, len(body)) + body


def _open(tag: int, fixed: bytes, tail: int) -> bytes:
    """The header and leading bytes of an element whose last ``tail`` bytes
    follow later (streamed)."""
    return _header(tag, len(fixed) + tail) + fixed


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        group = [arc & 0x7F]
        arc >>= 7
        while arc:
            group.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(group))
    return _tlv(0x06, bytes(body))


def _integer(n: int) -> bytes:
    # Two's complement, minimal: one byte more than the magnitude needs keeps
    # the sign bit right (a serial of 0x80 is 00 80, not 80).
    size = (n if n >= 0 else -n - 1).bit_length() // 8 + 1
    return _tlv(_INTEGER, n.to_bytes(size, "big", signed=True))


def _algorithm(oid: str, params: bytes = b"") -> bytes:
    return _tlv(_SEQUENCE, _oid(oid), params)


# RFC 5754 §2: SHA-2 AlgorithmIdentifiers are generated with absent
# parameters (OpenSSL does the same; readers must accept NULL too).
_SHA256 = _algorithm(OID_SHA256)
_KEY_ALGORITHMS: dict[str, bytes] = {
    # RFC 4055 §4.1 RSAES-OAEP-params; pSourceAlgorithm is the default (empty
    # label), which DER omits.
    "oaep": _algorithm(
        OID_RSAES_OAEP,
        _tlv(
            _SEQUENCE,
            _tlv(_CONTEXT_0, _SHA256),
            _tlv(_CONTEXT_1, _algorithm(OID_MGF1, _SHA256)),
        ),
    ),
    # RFC 3370 §4.2.1: rsaEncryption with NULL parameters.
    "pkcs1v15": _algorithm(OID_RSA_ENCRYPTION, _NULL),
}


def _ciphertext_size(plaintext_size: int) -> int:
    # PKCS#7 padding always adds 1-16 bytes, a whole block when aligned.
    return plaintext_size + _AES_BLOCK - plaintext_size % _AES_BLOCK


#: Whether ``head``, the first bytes of a document, start a CMS EnvelopedData
#: (DER, or BER with an indefinite length as ``openssl cms -stream`` writes): a
#: document that is encrypted already. One sniff, shared with the pre-send rules.
is_enveloped_data = is_cms_enveloped_data


# --- encryption -----------------------------------------------------------


class Kryptering:
    """Encrypts documents for one certificate as CMS EnvelopedData (DER).

    Every encryption draws a new content key and IV, so the same document
    never encrypts to the same bytes twice; only the size is fixed
    (:meth:`encrypted_size`). The certificate's validity is checked again at
    the start of each encryption. An instance holds no per-encryption state,
    so threads and tasks can share one.

    Args:
        certificate: SvarUt's certificate (:func:`~svarut.kryptering.hent_sertifikat`,
            :meth:`SvarUtSertifikat.load`), or an ``x509.Certificate`` with an RSA key.
        key_transport: How the content key is encrypted for the certificate:
            ``"oaep"`` (RSA-OAEP with SHA-256, the default) or ``"pkcs1v15"``.

    Raises:
        ValueError: An unknown ``key_transport``.
        SertifikatError: The certificate has no RSA key.

    >>> with httpx2.Client() as http:  # doctest: +SKIP
    ...     kryptering = Kryptering(hent_sertifikat(http, sertifikat_url("test")))
    >>> der = kryptering.encrypt_bytes(b"%PDF-1.7 ...")  # doctest: +SKIP
    >>> client = SvarUtClient.from_env(kryptering=kryptering)  # doctest: +SKIP
    """

    def __init__(
        self,
        certificate: SvarUtSertifikat | x509.Certificate,
        *,
        key_transport: KeyTransport = "oaep",
    ) -> None:
        if key_transport not in get_args(KeyTransport):
            raise ValueError(f"key_transport must be 'oaep' or 'pkcs1v15', got {key_transport!r}")
        self.sertifikat = certificate if isinstance(certificate, SvarUtSertifikat) else SvarUtSertifikat(certificate)
        self.key_transport: KeyTransport = key_transport
        self._padding: asym_padding.AsymmetricPadding = (
            asym_padding.OAEP(mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
            if key_transport == "oaep"
            else asym_padding.PKCS1v15()
        )
        # KeyTransRecipientInfo up to its encryptedKey: version 0, as the
        # recipient is named by issuer and serial number.
        self._recipient = (
            _integer(0)
            + _tlv(_SEQUENCE, self.sertifikat.issuer_der, _integer(self.sertifikat.serial_number))
            + _KEY_ALGORITHMS[key_transport]
        )
        self._key_size = (self.sertifikat.public_key.key_size + 7) // 8

    def __repr__(self) -> str:
        return f"Kryptering({self.sertifikat!r}, key_transport={self.key_transport!r})"

    def encrypted_size(self, plaintext_size: int) -> int:
        """The exact size of the DER output for ``plaintext_size`` bytes.

        Args:
            plaintext_size: The size of the document before encryption.

        Returns:
            The size in bytes of its encryption (every encryption has it).

        Raises:
            ValueError: ``plaintext_size`` is negative.
        """
        if plaintext_size < 0:
            raise ValueError(f"plaintext_size must be >= 0, got {plaintext_size}")
        tail = _ciphertext_size(plaintext_size)
        return len(self._prefix(bytes(self._key_size), bytes(_AES_BLOCK), tail)) + tail

    def _prefix(self, encrypted_key: bytes, iv: bytes, tail: int) -> bytes:
        """Everything before the ciphertext, which ends the structure."""
        recipient_infos = _tlv(_SET, _tlv(_SEQUENCE, self._recipient, _tlv(_OCTET_STRING, encrypted_key)))
        content = _open(
            _SEQUENCE,
            _oid(OID_DATA) + _algorithm(OID_AES256_CBC, _tlv(_OCTET_STRING, iv)) + _header(_CONTEXT_0_PRIMITIVE, tail),
            tail,
        )
        # EnvelopedData version 0: no originatorInfo or unprotectedAttrs and
        # only version-0 recipients (RFC 5652 §6.1).
        enveloped = _open(_SEQUENCE, _integer(0) + recipient_infos + content, tail)
        return _open(_SEQUENCE, _oid(OID_ENVELOPED_DATA) + _open(_CONTEXT_0, enveloped, tail), tail)

    def _start(self, plaintext_size: int) -> _Encryption:
        self.sertifikat.check_valid()
        return _Encryption(self, plaintext_size)

    def encrypt_chunks(self, chunks: Iterable[bytes], *, plaintext_size: int) -> Iterator[bytes]:
        """Encrypt ``chunks``, which must total exactly ``plaintext_size``
        bytes, yielding the DER output in pieces about as big as the input
        chunks.

        Args:
            chunks: The document's bytes, in pieces.
            plaintext_size: Their total size, announced at the start of the output.

        Yields:
            The DER bytes; :meth:`encrypted_size` of them in all.

        Raises:
            KrypteringError: The chunks total anything but ``plaintext_size``
                (raised having yielded only part of the output).
            SertifikatError: The certificate is not valid now.
        """
        encryption = self._start(plaintext_size)
        yield encryption.header
        for chunk in chunks:
            if out := encryption.update(chunk):
                yield out
        yield encryption.finish()

    async def aencrypt_chunks(self, chunks: AsyncIterable[bytes], *, plaintext_size: int) -> AsyncIterator[bytes]:
        """:meth:`encrypt_chunks` over an async iterable. The encryption runs
        on the event loop (about a millisecond per MiB); reading is the
        iterable's business, e.g. :meth:`Source.aiter_bytes
        <svarut.runtime.files.Source.aiter_bytes>` reads in a worker thread.

        The arguments, output and errors are :meth:`encrypt_chunks`'.
        """
        encryption = self._start(plaintext_size)
        yield encryption.header
        async for chunk in chunks:
            if out := encryption.update(chunk):
                yield out
        yield encryption.finish()

    def encrypt_bytes(self, data: bytes) -> bytes:
        """The DER encryption of ``data``, all in memory.

        Args:
            data: The document.

        Returns:
            The CMS EnvelopedData (DER), as SvarUt takes it with ``kryptert``.

        Raises:
            SertifikatError: The certificate is not valid now.
        """
        return b"".join(self.encrypt_chunks([data], plaintext_size=len(data)))

    def encrypt_file(self, src: BinaryIO, dst: BinaryIO) -> int:
        """Encrypt ``src`` from its current position to its end into ``dst``;
        returns the number of bytes written. ``src`` must be seekable, since
        the size goes at the start of the output.

        Args:
            src: A seekable binary file to read.
            dst: A binary file to write the DER output to.

        Returns:
            The number of bytes written.

        Raises:
            KrypteringError: ``src``'s size cannot be told (not seekable), or
                it changed while being read.
            SertifikatError: The certificate is not valid now.
        """
        written = 0
        for chunk in self.wrap(Source(src, label=str(getattr(src, "name", "src")))).iter_bytes():
            dst.write(chunk)
            written += len(chunk)
        return written

    def wrap(self, source: Source) -> EncryptedSource:
        """``source``, read as ciphertext.

        Args:
            source: A document source of known size.

        Returns:
            An :class:`EncryptedSource` that encrypts ``source`` anew at each read.

        Raises:
            KrypteringError: ``source``'s size is not known.
            SertifikatError: The certificate is not valid now.
        """
        return EncryptedSource(source, kryptering=self)


class _Encryption:
    """One encryption in progress: a fresh key and IV, the padder and cipher,
    and the byte counts that keep the output to its announced size."""

    def __init__(self, kryptering: Kryptering, plaintext_size: int) -> None:
        if plaintext_size < 0:
            raise ValueError(f"plaintext_size must be >= 0, got {plaintext_size}")
        key = secrets.token_bytes(32)
        iv = secrets.token_bytes(_AES_BLOCK)
        encrypted_key = kryptering.sertifikat.public_key.encrypt(key, kryptering._padding)
        self._expected = plaintext_size
        self._seen = 0
        self._cipher = Cipher(algorithms.AES256(key), modes.CBC(iv)).encryptor()
        self._padder = padding.PKCS7(algorithms.AES256.block_size).padder()
        self.header = kryptering._prefix(encrypted_key, iv, _ciphertext_size(plaintext_size))

    def update(self, chunk: bytes) -> bytes:
        self._seen += len(chunk)
        if self._seen > self._expected:
            raise KrypteringError(
                f"the plaintext is longer than the {self._expected} bytes announced; the output would not match "
                "its size"
            )
        return self._cipher.update(self._padder.update(chunk))

    def finish(self) -> bytes:
        if self._seen != self._expected:
            raise KrypteringError(
                f"the plaintext ended after {self._seen} of the {self._expected} bytes announced; "
                "the output would not match its size"
            )
        return self._cipher.update(self._padder.finalize()) + self._cipher.finalize()


class EncryptedSource(Source):
    """A :class:`~svarut.runtime.files.Source` read as CMS ciphertext.

    It has ``Source``'s interface (``label``, ``size``, ``replayable``,
    ``head``, ``iter_bytes``, ``aiter_bytes``), so the multipart sender takes
    it as it is, but none of its implementation. ``size`` is the encrypted
    size, known before reading. Each read is a new encryption with a new key
    and IV: a replay (after a fresh token, say) sends different bytes of the
    same size, which SvarUt decrypts to the same document. The plaintext stays
    available as ``plaintext``.
    """

    def __init__(self, source: Source, *, kryptering: Kryptering) -> None:
        # Source.__init__ is deliberately not called: this class reads through
        # ``source`` and has none of Source's own state.
        if source.size is None:
            raise KrypteringError(
                f"document {source.label!r}: its size must be known to encrypt it (CMS output uses definite "
                "lengths); give a Path, bytes or a seekable file instead of a pipe"
            )
        # Fail while nothing is sent yet rather than in the middle of a body.
        kryptering.sertifikat.check_valid()
        self.label = source.label
        self.plaintext = source
        self.plaintext_size: int = source.size
        self.kryptering = kryptering
        self.size: int | None = kryptering.encrypted_size(source.size)

    @property
    def replayable(self) -> bool:
        """Whether it can be read again (as its plaintext can)."""
        return self.plaintext.replayable

    def head(self, n: int) -> bytes:
        """Always ``b""``, as for a source that cannot be read ahead: every
        read encrypts anew, so there are no first bytes to show in advance.
        Sniff ``plaintext.head(n)`` instead."""
        return b""

    def iter_bytes(self) -> Iterator[bytes]:
        """A new encryption of the plaintext, in pieces (:meth:`Kryptering.encrypt_chunks`)."""
        return self.kryptering.encrypt_chunks(self.plaintext.iter_bytes(), plaintext_size=self.plaintext_size)

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """:meth:`iter_bytes` for async senders (:meth:`Kryptering.aencrypt_chunks`)."""
        return self.kryptering.aencrypt_chunks(self.plaintext.aiter_bytes(), plaintext_size=self.plaintext_size)

    def __repr__(self) -> str:
        return f"EncryptedSource({self.label!r}, plaintext_size={self.plaintext_size}, size={self.size})"


def encrypt_path(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    certificate: SvarUtSertifikat | x509.Certificate,
    *,
    key_transport: KeyTransport = "oaep",
) -> int:
    """Encrypt the file ``src`` into ``dst`` for ``certificate``; returns the
    size written. ``dst`` appears only when complete (written beside it under
    a temporary name, then renamed), so a failure never leaves half a file.

    Args:
        src: The file to encrypt.
        dst: Where to write the encryption (replaced if it exists).
        certificate: The certificate to encrypt for.
        key_transport: As for :class:`Kryptering`.

    Returns:
        The number of bytes written.

    Raises:
        OSError: ``src`` cannot be read or ``dst`` written.
        SertifikatError: The certificate is not valid now.

    >>> encrypt_path("vedtak.pdf", "vedtak.pdf.cms", SvarUtSertifikat.load("svarut.pem"))  # doctest: +SKIP
    """
    kryptering = Kryptering(certificate, key_transport=key_transport)
    source = Source(Path(src), label=str(src))
    target = Path(dst)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    # An error names the file asked for, not the temporary one beside it, which the caller never named.
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "its directory does not exist", str(target))
    try:
        out_file = temporary.open("xb")
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None
    try:
        with out_file as out:
            written = 0
            for chunk in kryptering.wrap(source).iter_bytes():
                out.write(chunk)
                written += len(chunk)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return written
