"""Throwaway keys for the simulator: SvarUt's encryption certificate and a
client keystore for the Maskinporten stand-in.

Both are RSA-2048 with self-signed certificates valid for a year, so neither
the client's expiry warnings nor its validity checks fire; the client's carries
an organisation number (:data:`SIMULATED_ORGNR`) in its subject, where a
virksomhetssertifikat has it. :func:`generate_key_pair` makes others, such as
an expired certificate for a test. Generating an RSA
key takes a noticeable fraction of a second, so :func:`throwaway_keys` makes
one set per process and every simulator in it shares that set (they are
throwaway keys; sharing them also means the client's per-URL certificate
cache can never hold a certificate another simulator on a reused port does
not have).
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from svarut.runtime.auth import Keystore
from svarut.runtime.kryptering import SvarUtSertifikat

__all__ = [
    "SIMULATED_ORGNR",
    "KeyPair",
    "SimulatorKeys",
    "TlsCertificates",
    "generate_key_pair",
    "throwaway_keys",
    "tls_certificates",
]

VALID_DAYS = 365
#: The simulated virksomhet's organisation number (a made-up one that passes the MOD11 check).
SIMULATED_ORGNR = "910000004"


@dataclass(frozen=True)
class KeyPair:
    """An RSA private key and its self-signed certificate."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def keystore(self, *, source: str = "svarut simulator keystore") -> Keystore:
        """The pair as a Maskinporten :class:`~svarut.auth.Keystore` (signs with x5c)."""
        return Keystore(private_key=self.private_key, certificates=[self.certificate], source=source)

    def write_pem(self, path: Path) -> Path:
        """Write key and certificate into one PEM file (what ``Keystore.load``
        and ``MASKINPORTEN_KEYSTORE`` take), readable by the owner only."""
        path.touch(mode=0o600, exist_ok=True)
        path.write_bytes(self.private_key_pem + self.certificate_pem)
        return path


def generate_key_pair(
    common_name: str,
    *,
    organization: str = "fiks-svarut simulator",
    organization_number: str | None = None,
    not_valid_before: datetime | None = None,
    not_valid_after: datetime | None = None,
) -> KeyPair:
    """A fresh RSA-2048 key with a self-signed certificate for ``common_name``.

    ``organization_number`` goes in the subject's ``serialNumber``, as in a
    virksomhetssertifikat. The certificate is valid from a minute ago for
    :data:`VALID_DAYS` days unless ``not_valid_before``/``not_valid_after``
    say otherwise (in the past, for an expired one)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if organization_number is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, organization_number))
    name = x509.Name(attributes)
    now = datetime.now(UTC)
    # A minute back: the client checks not-valid-before against its own clock.
    start = not_valid_before if not_valid_before is not None else now - timedelta(minutes=1)
    end = not_valid_after if not_valid_after is not None else start + timedelta(days=VALID_DAYS)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, certificate)


@dataclass(frozen=True)
class SimulatorKeys:
    """The two key pairs a simulator uses."""

    svarut: KeyPair
    """SvarUt's encryption key: its certificate is served at ``/forsendelse/publickey/hent``."""
    client: KeyPair
    """The client's virksomhetssertifikat stand-in, for Maskinporten assertions."""

    @property
    def sertifikat(self) -> SvarUtSertifikat:
        return SvarUtSertifikat(self.svarut.certificate, source="svarut simulator")


_keys: SimulatorKeys | None = None
_keys_lock = threading.Lock()


def throwaway_keys() -> SimulatorKeys:
    """The process's simulator keys, generated on first use."""
    global _keys
    with _keys_lock:
        if _keys is None:
            _keys = SimulatorKeys(
                svarut=generate_key_pair("SvarUt simulator"),
                client=generate_key_pair("Simulert virksomhet", organization_number=SIMULATED_ORGNR),
            )
        return _keys


@dataclass(frozen=True)
class TlsCertificates:
    ca: Path
    cert: Path
    key: Path


def tls_certificates(directory: Path) -> TlsCertificates:
    """A throwaway CA and a certificate it signed for 127.0.0.1 and localhost
    (P-256, valid for a day), written to ``directory`` as ``ca.pem``,
    ``server.pem`` and ``server.key``: for a local HTTPS server in tests and
    benchmarks, which a client trusts with ``verify=ssl.create_default_context(cafile=ca)``."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fiks-svarut throwaway CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certs = TlsCertificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    certs.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certs
