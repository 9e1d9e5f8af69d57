"""CMS encryption for SvarUt (svarut.kryptering): the output decrypts with the
real ``openssl cms`` and in Python, has the structure and size promised, streams
sync and async, and the certificate is loaded, checked and fetched as described.

Keys and certificates are made here: a CA and a leaf it issued (so the
recipient's issuer differs from its subject). The Python decryption for OAEP
reads the DER with the small reader below, independent of the encoder;
PKCS#1 v1.5 is also decrypted by ``cryptography``'s own CMS code.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from svarut import kryptering as k
from svarut.runtime import kryptering as runtime_kryptering
from svarut.runtime import multipart
from svarut.runtime.errors import SourceChangedError, SvarUtError
from svarut.runtime.files import Source

OPENSSL = "/usr/bin/openssl"
MIB = 1024 * 1024
SIZES = [0, 1, 15, 16, 17, MIB]
TRANSPORTS = ["oaep", "pkcs1v15"]

# RSAES-OAEP AlgorithmIdentifier as OpenSSL 3 writes it for
# -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256.
OAEP_SHA256_ALGORITHM = bytes.fromhex(
    "303806092a864886f70d010107302ba00d300b0609608648016503040201"
    "a11a301806092a864886f70d010108300b0609608648016503040201"
)
RSA_ENCRYPTION_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")
AES256_CBC_OID = bytes.fromhex("060960864801650304012a")


# --- keys and certificates ------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_key: rsa.RSAPrivateKey
    ca_name: x509.Name
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    key_pem: Path
    cert_pem: Path
    cert_der: Path


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KS test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def issue(
    ca: tuple[rsa.RSAPrivateKey, x509.Name],
    public_key: Any,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    ca_key, ca_name = ca
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name("svarut-kryptering"))
        .issuer_name(ca_name)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .sign(ca_key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("Test CA")
    # A serial with its top bit set, so its DER INTEGER needs a leading zero.
    cert = issue((ca_key, ca_name), key.public_key(), serial=0x80 << 144 | 0x1234)
    d = tmp_path_factory.mktemp("pki")
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "cert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return Pki(ca_key, ca_name, key, cert, d / "key.pem", d / "cert.pem", d / "cert.der")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    k.clear_sertifikat_cache()
    yield
    k.clear_sertifikat_cache()


# --- an independent reader for the output ---------------------------------


def tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at ``pos``;
    definite, minimal lengths only."""
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, pos, pos + first
    n = first & 0x7F
    assert 0 < n <= 8, "indefinite or oversized length"
    length = int.from_bytes(buf[pos : pos + n], "big")
    assert length >= 0x80 and buf[pos] != 0, "non-minimal length"
    return tag, pos + n, pos + n + length


@dataclass(frozen=True)
class Envelope:
    issuer: bytes
    serial: int
    key_algorithm: bytes
    encrypted_key: bytes
    content_algorithm_oid: bytes
    iv: bytes
    content_start: int
    content_end: int


def parse(head: bytes, total: int) -> Envelope:
    """Walk ContentInfo/EnvelopedData in ``head`` (the first bytes of a
    ``total``-byte output), checking every tag and that every element that
    encloses the ciphertext ends exactly at ``total``."""

    def expect(pos: int, tag: int, *, to_end: bool = False) -> tuple[int, int]:
        got, start, end = tlv(head, pos)
        assert got == tag, f"tag {got:#x} at {pos}, expected {tag:#x}"
        if to_end:
            assert end == total, f"element at {pos} ends at {end}, output at {total}"
        return start, end

    start, _ = expect(0, 0x30, to_end=True)  # ContentInfo
    oid_start, oid_end = expect(start, 0x06)
    assert head[oid_start:oid_end] == bytes.fromhex("2a864886f70d010703")  # id-envelopedData
    start, _ = expect(oid_end, 0xA0, to_end=True)
    start, _ = expect(start, 0x30, to_end=True)  # EnvelopedData
    v_start, v_end = expect(start, 0x02)
    assert head[v_start:v_end] == b"\x00"
    set_start, set_end = expect(v_end, 0x31)
    ktri_start, ktri_end = expect(set_start, 0x30)
    assert ktri_end == set_end, "exactly one recipient"
    v_start, v_end = expect(ktri_start, 0x02)
    assert head[v_start:v_end] == b"\x00"
    rid_start, rid_end = expect(v_end, 0x30)
    _, name_end = expect(rid_start, 0x30)  # the issuer Name
    serial_start, serial_end = expect(name_end, 0x02)
    assert serial_end == rid_end
    _, alg_end = expect(rid_end, 0x30)  # keyEncryptionAlgorithm
    key_start, key_end = expect(alg_end, 0x04)
    assert key_end == ktri_end
    start, _ = expect(set_end, 0x30, to_end=True)  # EncryptedContentInfo
    oid_start, oid_end = expect(start, 0x06)
    assert head[oid_start:oid_end] == bytes.fromhex("2a864886f70d010701")  # id-data
    calg_start, calg_end = expect(oid_end, 0x30)
    coid_start, coid_end = expect(calg_start, 0x06)
    iv_start, iv_end = expect(coid_end, 0x04)
    assert iv_end == calg_end
    content_start, content_end = expect(calg_end, 0x80, to_end=True)  # [0] IMPLICIT, primitive
    return Envelope(
        issuer=head[rid_start:name_end],
        serial=int.from_bytes(head[serial_start:serial_end], "big", signed=True),
        key_algorithm=head[rid_end:alg_end],
        encrypted_key=head[key_start:key_end],
        content_algorithm_oid=head[coid_start - 2 : coid_end],
        iv=head[iv_start:iv_end],
        content_start=content_start,
        content_end=content_end,
    )


def unwrap_key(env: Envelope, key: rsa.RSAPrivateKey) -> bytes:
    if env.key_algorithm == OAEP_SHA256_ALGORITHM:
        pad: asym_padding.AsymmetricPadding = asym_padding.OAEP(
            mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    else:
        assert env.key_algorithm == RSA_ENCRYPTION_ALGORITHM
        pad = asym_padding.PKCS1v15()
    cek = key.decrypt(env.encrypted_key, pad)
    assert len(cek) == 32
    return cek


def decrypt(data: bytes, key: rsa.RSAPrivateKey) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), len(data), key, out)
    return out.getvalue()


def decrypt_stream(src: BinaryIO, total: int, key: rsa.RSAPrivateKey, dst: BinaryIO) -> None:
    head = src.read(4096)
    env = parse(head, total)
    assert env.content_algorithm_oid == AES256_CBC_OID
    assert len(env.iv) == 16
    decryptor = Cipher(algorithms.AES256(unwrap_key(env, key)), modes.CBC(env.iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    src.seek(env.content_start)
    while chunk := src.read(MIB):
        dst.write(unpadder.update(decryptor.update(chunk)))
    dst.write(unpadder.update(decryptor.finalize()) + unpadder.finalize())


def openssl(*args: str, data: bytes | None = None) -> bytes:
    result = subprocess.run([OPENSSL, *args], input=data, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def openssl_decrypt(pki: Pki, src: Path, dst: Path) -> None:
    openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", str(src), "-inkey", str(pki.key_pem),
        "-recip", str(pki.cert_pem), "-binary", "-out", str(dst),
    )  # fmt: skip


def plaintext(n: int) -> bytes:
    return os.urandom(n)


# --- round trips ----------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("size", SIZES)
def test_round_trip_openssl_and_python(pki: Pki, tmp_path: Path, transport: k.KeyTransport, size: int) -> None:
    kryptering = k.Kryptering(pki.cert, key_transport=transport)
    data = plaintext(size)
    # Odd chunk sizes, so padding carries across chunk boundaries.
    chunks = [data[i : i + 7919] for i in range(0, size, 7919)]
    out = b"".join(kryptering.encrypt_chunks(chunks, plaintext_size=size))
    assert len(out) == kryptering.encrypted_size(size)

    (tmp_path / "x.der").write_bytes(out)
    openssl_decrypt(pki, tmp_path / "x.der", tmp_path / "y")
    assert (tmp_path / "y").read_bytes() == data

    assert decrypt(out, pki.key) == data
    if transport == "pkcs1v15":
        assert pkcs7.pkcs7_decrypt_der(out, pki.cert, pki.key, []) == data


def test_100_mb_streamed_file_to_file(pki: Pki, tmp_path: Path) -> None:
    started = time.monotonic()
    src, dst, back = tmp_path / "big.bin", tmp_path / "big.cms", tmp_path / "big.out"
    digest = hashlib.sha256()
    size = 100 * 1000 * 1000
    with src.open("wb") as f:
        for _ in range(size // MIB):
            block = os.urandom(MIB)
            digest.update(block)
            f.write(block)
        tail = os.urandom(size % MIB)
        digest.update(tail)
        f.write(tail)

    written = k.encrypt_path(src, dst, pki.cert)
    kryptering = k.Kryptering(pki.cert)
    assert written == dst.stat().st_size == kryptering.encrypted_size(size)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    openssl_decrypt(pki, dst, back)
    assert _sha256(back) == digest.hexdigest()
    with dst.open("rb") as f, back.open("wb") as out:
        decrypt_stream(f, written, pki.key, out)
    assert _sha256(back) == digest.hexdigest()
    assert time.monotonic() - started < 15


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def test_encrypted_size_across_der_length_boundaries(pki: Pki) -> None:
    kryptering = k.Kryptering(pki.cert)
    # Ciphertexts of 16..2^24+16 bytes: every DER length form from short to 4 bytes.
    sizes = [*range(40), 111, 112, 127, 128, 239, 240, 255, 256, 65519, 65520, 65535, 65536, (1 << 24) - 17, 1 << 24]
    for size in sizes:
        data = bytes(size)
        out = kryptering.encrypt_bytes(data)
        assert len(out) == kryptering.encrypted_size(size), size
        parse(out[:4096], len(out))
        assert decrypt(out, pki.key) == data


# --- structure ------------------------------------------------------------


def test_oaep_structure_as_openssl_prints_it(pki: Pki, tmp_path: Path) -> None:
    out = k.Kryptering(pki.cert).encrypt_bytes(b"hemmelig")
    printed = openssl("cms", "-cmsout", "-print", "-inform", "DER", data=out).decode()
    assert "contentType: pkcs7-envelopedData (1.2.840.113549.1.7.3)" in printed
    assert "d.issuerAndSerialNumber:" in printed
    assert "issuer: O=KS test, CN=Test CA" in printed
    assert f"serialNumber: 0x{pki.cert.serial_number:X}" in printed
    assert "algorithm: rsaesOaep (1.2.840.113549.1.1.7)" in printed
    params = printed.split("algorithm: rsaesOaep", 1)[1].split("encryptedKey:", 1)[0]
    assert "cont [ 0 ]" in params and "cont [ 1 ]" in params
    assert params.count(":sha256") == 2  # the OAEP hash and MGF1's hash
    assert ":mgf1" in params
    assert "pSpecified" not in params and "cont [ 2 ]" not in params  # the default empty label is omitted
    assert "algorithm: aes-256-cbc (2.16.840.1.101.3.4.1.42)" in printed
    assert "contentType: pkcs7-data (1.2.840.113549.1.7.1)" in printed
    assert "unprotectedAttrs:\n      <ABSENT>" in printed


def test_pkcs1v15_structure_as_openssl_prints_it(pki: Pki) -> None:
    out = k.Kryptering(pki.cert, key_transport="pkcs1v15").encrypt_bytes(b"hemmelig")
    printed = openssl("cms", "-cmsout", "-print", "-inform", "DER", data=out).decode()
    assert "algorithm: rsaEncryption (1.2.840.113549.1.1.1)" in printed
    assert "parameter: NULL" in printed
    assert "algorithm: aes-256-cbc (2.16.840.1.101.3.4.1.42)" in printed


def test_recipient_names_the_certificate(pki: Pki) -> None:
    out = k.Kryptering(pki.cert).encrypt_bytes(b"x")
    env = parse(out, len(out))
    assert env.issuer == pki.cert.issuer.public_bytes()
    assert env.issuer != pki.cert.subject.public_bytes()
    assert env.serial == pki.cert.serial_number
    assert env.key_algorithm == OAEP_SHA256_ALGORITHM


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("size", [0, 17, 4096])
def test_same_encoding_and_size_as_openssl(pki: Pki, tmp_path: Path, transport: k.KeyTransport, size: int) -> None:
    data = plaintext(size)
    (tmp_path / "in").write_bytes(data)
    keyopts = (
        ["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"]
        if transport == "oaep"
        else []
    )
    theirs = openssl(
        "cms", "-encrypt", "-binary", "-aes256", "-recip", str(pki.cert_pem), *keyopts,
        "-outform", "DER", "-in", str(tmp_path / "in"),
    )  # fmt: skip
    ours = k.Kryptering(pki.cert, key_transport=transport).encrypt_bytes(data)
    assert len(ours) == len(theirs)
    a, b = parse(ours, len(ours)), parse(theirs, len(theirs))
    assert (a.issuer, a.serial, a.key_algorithm, a.content_start) == (
        b.issuer,
        b.serial,
        b.key_algorithm,
        b.content_start,
    )
    # Everything but the key, the IV and the ciphertext is byte-identical.
    assert _masked(ours, a) == _masked(theirs, b)


def _masked(out: bytes, env: Envelope) -> bytes:
    masked = bytearray(out[: env.content_start])
    key_at = masked.find(env.encrypted_key)
    masked[key_at : key_at + len(env.encrypted_key)] = bytes(len(env.encrypted_key))
    iv_at = masked.rfind(env.iv)
    masked[iv_at : iv_at + 16] = bytes(16)
    return bytes(masked)


def test_is_enveloped_data(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"x" * 1000)
    ber = openssl(
        "cms", "-encrypt", "-binary", "-stream", "-aes256", "-recip", str(pki.cert_pem), "-outform", "DER",
        "-in", str(tmp_path / "in"),
    )  # fmt: skip
    assert ber[:2] == b"\x30\x80"  # indefinite length
    assert k.is_enveloped_data(ber[:64])
    for size in (0, 200, 70_000):
        assert k.is_enveloped_data(k.Kryptering(pki.cert).encrypt_bytes(bytes(size))[:64])
    signed = openssl("cms", "-sign", "-signer", str(pki.cert_pem), "-inkey", str(pki.key_pem), "-outform", "DER",
                     "-in", str(tmp_path / "in"))  # fmt: skip
    for head in (b"", b"\x30", b"%PDF-1.7", pki.cert_der.read_bytes()[:64], signed[:64]):
        assert not k.is_enveloped_data(head)


def test_every_encryption_uses_a_fresh_key_and_iv(pki: Pki) -> None:
    kryptering = k.Kryptering(pki.cert)
    one, two = kryptering.encrypt_bytes(b"samme"), kryptering.encrypt_bytes(b"samme")
    a, b = parse(one, len(one)), parse(two, len(two))
    assert a.iv != b.iv and unwrap_key(a, pki.key) != unwrap_key(b, pki.key)
    assert len(one) == len(two)


# --- streaming ------------------------------------------------------------


class ThreadRecordingFile(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_threads: set[int] = set()

    def read(self, size: int | None = -1, /) -> bytes:
        self.read_threads.add(threading.get_ident())
        return super().read(size)


@pytest.mark.anyio
async def test_async_matches_sync_and_reads_off_the_event_loop(pki: Pki, tmp_path: Path) -> None:
    data = plaintext(3 * MIB + 5)
    kryptering = k.Kryptering(pki.cert)
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)

    file = ThreadRecordingFile(data)
    for source in (Source(path, label="doc.pdf"), Source(file, label="doc.pdf")):
        encrypted = kryptering.wrap(source)
        sync_out = b"".join(encrypted.iter_bytes())
        async_out = b"".join([chunk async for chunk in encrypted.aiter_bytes()])
        assert len(sync_out) == len(async_out) == encrypted.size == kryptering.encrypted_size(len(data))
        assert decrypt(sync_out, pki.key) == decrypt(async_out, pki.key) == data

    loop_thread = threading.get_ident()
    file.read_threads.clear()
    async for _ in kryptering.wrap(Source(file, label="x")).aiter_bytes():
        pass
    assert file.read_threads and loop_thread not in file.read_threads


@pytest.mark.anyio
async def test_aencrypt_chunks(pki: Pki) -> None:
    data = plaintext(100_000)

    async def chunks() -> Any:
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    kryptering = k.Kryptering(pki.cert, key_transport="pkcs1v15")
    out = b"".join([c async for c in kryptering.aencrypt_chunks(chunks(), plaintext_size=len(data))])
    assert len(out) == kryptering.encrypted_size(len(data))
    assert pkcs7.pkcs7_decrypt_der(out, pki.cert, pki.key, []) == data


def test_encrypted_source_interface(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "brev.pdf"
    path.write_bytes(b"%PDF-1.7 hemmelig")
    kryptering = k.Kryptering(pki.cert)
    source = k.EncryptedSource(Source(path, label="brev.pdf"), kryptering=kryptering)
    assert isinstance(source, Source)
    assert source.label == "brev.pdf"
    assert source.size == kryptering.encrypted_size(17)
    assert source.replayable
    assert source.head(64) == b""
    assert source.plaintext.head(4) == b"%PDF"
    first, second = b"".join(source.iter_bytes()), b"".join(source.iter_bytes())
    assert first != second and len(first) == len(second) == source.size
    assert decrypt(first, pki.key) == decrypt(second, pki.key) == b"%PDF-1.7 hemmelig"


def test_encrypted_source_in_a_multipart_body(pki: Pki) -> None:
    kryptering = k.Kryptering(pki.cert)
    data = plaintext(MIB + 3)
    doc = multipart.Document("brev.pdf", "application/pdf", kryptering.wrap(Source(data, label="brev.pdf")))
    body = multipart.encode(
        metadata_part="forsendelse", metadata_json=b'{"kryptert":true}', file_part="filer", documents=[doc]
    )
    raw = b"".join(body)
    assert body.content_length == len(raw)
    assert body.replayable
    part = raw.split(b"Content-Type: application/pdf\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
    assert decrypt(part, pki.key) == data


def test_unknown_size_is_refused(pki: Pki) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe, os.fdopen(write_end, "wb"):
        with pytest.raises(k.KrypteringError, match="size must be known"):
            k.Kryptering(pki.cert).wrap(Source(pipe, label="stdin"))
        with pytest.raises(k.KrypteringError, match="size must be known"):
            k.Kryptering(pki.cert).encrypt_file(pipe, io.BytesIO())


def test_plaintext_not_matching_its_size(pki: Pki) -> None:
    kryptering = k.Kryptering(pki.cert)
    chunks = kryptering.encrypt_chunks([b"a" * 10, b"b" * 10], plaintext_size=15)
    next(chunks)  # the DER header
    with pytest.raises(k.KrypteringError, match="longer than the 15 bytes"):
        list(chunks)
    with pytest.raises(k.KrypteringError, match="ended after 10 of the 15 bytes"):
        list(kryptering.encrypt_chunks([b"a" * 10], plaintext_size=15))
    with pytest.raises(ValueError, match=">= 0"):
        kryptering.encrypted_size(-1)


def test_source_changing_size_while_encrypted(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(b"x" * 100)
    encrypted = k.Kryptering(pki.cert).wrap(Source(path, label="doc.pdf"))
    path.write_bytes(b"x" * 50)
    with pytest.raises(SourceChangedError):
        b"".join(encrypted.iter_bytes())


def test_encrypt_file_from_the_current_position(pki: Pki) -> None:
    src = io.BytesIO(b"skip-me:" + b"the document")
    src.seek(8)
    dst = io.BytesIO()
    kryptering = k.Kryptering(pki.cert)
    written = kryptering.encrypt_file(src, dst)
    assert written == len(dst.getvalue()) == kryptering.encrypted_size(12)
    assert decrypt(dst.getvalue(), pki.key) == b"the document"


def test_encrypt_path_leaves_nothing_on_failure(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in.pdf"
    src.write_bytes(b"x" * (3 * MIB))
    dst = tmp_path / "out.cms"

    def broken(self: object, chunk: bytes) -> bytes:
        raise k.KrypteringError("disk on fire")

    monkeypatch.setattr(runtime_kryptering._Encryption, "update", broken)
    with pytest.raises(k.KrypteringError, match="disk on fire"):
        k.encrypt_path(src, dst, pki.cert)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pdf"]


def test_unknown_key_transport(pki: Pki) -> None:
    with pytest.raises(ValueError, match="'oaep' or 'pkcs1v15'"):
        k.Kryptering(pki.cert, key_transport="rsa-kem")  # type: ignore[arg-type]


# --- the certificate ------------------------------------------------------


def test_load_pem_and_der(pki: Pki) -> None:
    for loaded in (
        k.SvarUtSertifikat.load(pki.cert_pem),
        k.SvarUtSertifikat.load(str(pki.cert_der)),
        k.SvarUtSertifikat.from_bytes(pki.cert_pem.read_bytes()),
        k.SvarUtSertifikat.from_bytes(pki.cert_der.read_bytes()),
    ):
        assert loaded.certificate == pki.cert
        assert loaded.serial_number == pki.cert.serial_number
        assert loaded.issuer_der == pki.cert.issuer.public_bytes()
    assert "serial=" in repr(loaded) and loaded.source == "the certificate"


def test_errors_are_svarut_errors() -> None:
    assert issubclass(k.SertifikatError, k.KrypteringError)
    assert issubclass(k.KrypteringError, SvarUtError)
    assert issubclass(k.SvarUtCertificateExpiryWarning, UserWarning)


def test_ec_certificate_is_refused(pki: Pki) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cert = issue((pki.ca_key, pki.ca_name), ec_key.public_key())
    with pytest.raises(k.SertifikatError, match=r"must have an RSA key, this one has an EC key \(secp256r1\)"):
        k.SvarUtSertifikat.from_bytes(cert.public_bytes(serialization.Encoding.PEM), source="ec.pem")
    with pytest.raises(k.SertifikatError, match="RSA"):
        k.Kryptering(cert)


def test_small_rsa_key_is_refused(pki: Pki) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(k.SertifikatError, match="1024 bits; at least 2048"):
        k.SvarUtSertifikat(issue((pki.ca_key, pki.ca_name), small.public_key()))


def test_expired_certificate(pki: Pki) -> None:
    now = datetime.now(UTC)
    cert = issue((pki.ca_key, pki.ca_name), pki.key.public_key(), not_before=now - timedelta(days=400),
                 not_after=now - timedelta(days=2))  # fmt: skip
    expected = (now - timedelta(days=2)).strftime("%Y-%m-%d")
    with pytest.raises(k.SertifikatError, match=f"expired on {expected}"):
        k.SvarUtSertifikat(cert)
    with pytest.raises(k.SertifikatError, match="expired on"):
        k.Kryptering(cert)


def test_not_yet_valid_certificate(pki: Pki) -> None:
    now = datetime.now(UTC)
    cert = issue((pki.ca_key, pki.ca_name), pki.key.public_key(), not_before=now + timedelta(days=3))
    with pytest.raises(k.SertifikatError, match=f"not valid until {(now + timedelta(days=3)):%Y-%m-%d}"):
        k.SvarUtSertifikat(cert)


def test_expiring_certificate_warns(pki: Pki) -> None:
    cert = issue((pki.ca_key, pki.ca_name), pki.key.public_key(), not_after=datetime.now(UTC) + timedelta(days=10))
    with pytest.warns(k.SvarUtCertificateExpiryWarning, match=r"in (9|10) days"):
        sertifikat = k.SvarUtSertifikat(cert)
    # Still usable until it expires...
    kryptering = k.Kryptering(sertifikat)
    assert decrypt(kryptering.encrypt_bytes(b"ok"), pki.key) == b"ok"
    # ...and checked again at each encryption, so a long-lived one stops then.
    with pytest.raises(k.SertifikatError, match="expired"):
        sertifikat.check_valid(now=datetime.now(UTC) + timedelta(days=11))


def test_not_a_certificate(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(k.SertifikatError, match=r"not a PEM or DER X\.509 certificate"):
        k.SvarUtSertifikat.from_bytes(b"<html>Service Unavailable</html>", source="svarut")
    public_pem = pki.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(k.SertifikatError, match="bare public key, not a certificate"):
        k.SvarUtSertifikat.from_bytes(public_pem)
    with pytest.raises(k.SertifikatError, match="cannot read SvarUt's certificate"):
        k.SvarUtSertifikat.load(tmp_path / "missing.pem")


def test_sertifikat_url() -> None:
    assert k.sertifikat_url("test") == "https://test.svarut.ks.no/forsendelse/publickey/hent"
    assert k.sertifikat_url("prod") == "https://svarut.ks.no/forsendelse/publickey/hent"
    assert k.sertifikat_url("https://test.svarut.ks.no/api") == k.SERTIFIKAT_URL_TEST
    assert k.sertifikat_url("http://127.0.0.1:8080/api/v3") == "http://127.0.0.1:8080/forsendelse/publickey/hent"
    with pytest.raises(ValueError, match="'test', 'prod' or a SvarUt URL"):
        k.sertifikat_url("staging")


class CertificateServer(ThreadingHTTPServer):
    def __init__(self, routes: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _CertificateHandler)
        self.routes = routes
        self.paths: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CertificateHandler(BaseHTTPRequestHandler):
    server: CertificateServer

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        body = self.server.routes.get(self.path)
        self.send_response(200 if body is not None else 404)
        body = body if body is not None else b"not here"
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cert_server(pki: Pki) -> Iterator[CertificateServer]:
    server = CertificateServer(
        {k.PUBLICKEY_PATH: pki.cert_pem.read_bytes(), "/der" + k.PUBLICKEY_PATH: pki.cert_der.read_bytes()}
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_certificate_once(cert_server: CertificateServer, pki: Pki) -> None:
    url = k.sertifikat_url(cert_server.base + "/api")
    with httpx2.Client() as http:
        first = k.hent_sertifikat(http, url)
        second = k.hent_sertifikat(http, url)
        assert first is second and first.certificate == pki.cert and first.source == url
        assert cert_server.paths == [k.PUBLICKEY_PATH]
        k.hent_sertifikat(http, url, max_age=0)
        assert cert_server.paths == [k.PUBLICKEY_PATH] * 2
        der = k.hent_sertifikat(http, cert_server.base + "/der" + k.PUBLICKEY_PATH)
        assert der.certificate == pki.cert


@pytest.mark.anyio
async def test_fetch_certificate_async_shares_the_cache(cert_server: CertificateServer, pki: Pki) -> None:
    url = cert_server.base + k.PUBLICKEY_PATH
    async with httpx2.AsyncClient() as http:
        first = await k.ahent_sertifikat(http, url)
        assert (await k.ahent_sertifikat(http, url)) is first
    with httpx2.Client() as http:
        assert k.hent_sertifikat(http, url) is first
    assert cert_server.paths == [k.PUBLICKEY_PATH]
    assert first.certificate == pki.cert


def test_fetch_errors(cert_server: CertificateServer) -> None:
    with httpx2.Client() as http:
        with pytest.raises(k.SertifikatError, match="404 Not Found: not here"):
            k.hent_sertifikat(http, cert_server.base + "/elsewhere")
        with pytest.raises(k.SertifikatError, match="over HTTPS"):
            k.hent_sertifikat(http, "http://svarut.ks.no/forsendelse/publickey/hent")
        with pytest.raises(
            k.SertifikatError, match=r"could not fetch SvarUt's certificate from http://127\.0\.0\.1:9/"
        ):
            k.hent_sertifikat(http, "http://127.0.0.1:9/forsendelse/publickey/hent")
    assert cert_server.paths == ["/elsewhere"]


def test_public_module_reexports() -> None:
    for name in runtime_kryptering.__all__:
        assert getattr(k, name) is getattr(runtime_kryptering, name)
