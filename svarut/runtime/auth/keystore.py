"""The key that signs Maskinporten assertions, and how Maskinporten knows it.

A :class:`Keystore` holds an RSA private key and either the certificate chain
of a virksomhetssertifikat (sent in the assertion's ``x5c`` header) or the
``kid`` of a key registered with Maskinporten in advance. It loads the formats
people actually have: PKCS#12 (``.p12``/``.pfx``, modern AES or legacy
RC2/3DES encryption) and PEM key plus certificate (chain), and says clearly
what is wrong with one that cannot be used: a wrong password, a Java keystore,
a key that does not belong to the certificate, a non-RSA key, an expired
certificate.

The private key never leaves this module: the keystore signs, and its repr
names the source and the certificate, nothing secret.
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from svarut.runtime.errors import CertificateExpiryWarning, KeystoreError
from svarut.runtime.keys import describe_key

#: A certificate expiring within this many days gives a CertificateExpiryWarning.
EXPIRY_WARNING_DAYS = 30

KeySource = os.PathLike[str] | str | bytes
"""A path to a file, or the file's content as ``bytes`` (or PEM text as ``str``)."""

Password = str | bytes | None

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCEKS_MAGIC = b"\xce\xce\xce\xce"
_PEM_KEY = re.compile(rb"-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?-----END \1-----", re.DOTALL)
# A certificate valid from a moment ago is fine: clocks differ.
_NOT_YET_VALID_GRACE = datetime.timedelta(minutes=5)


class Keystore:
    """An RSA private key plus a certificate chain (leaf first), or a ``kid``.

    Build one with :meth:`load` (sniffs the format), :meth:`from_pkcs12`,
    :meth:`from_pem` or :meth:`from_kid`. Loading checks the key and the
    certificate and warns (:class:`CertificateExpiryWarning`) when the
    certificate expires within :data:`EXPIRY_WARNING_DAYS` days.
    """

    def __init__(
        self,
        *,
        private_key: PrivateKeyTypes,
        certificates: Sequence[x509.Certificate] = (),
        kid: str | None = None,
        source: str = "<memory>",
    ) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise KeystoreError(
                f"{source}: the private key is {describe_key(private_key)}, but Maskinporten assertions are "
                "signed with RS256 and need an RSA key; use the RSA key of your virksomhetssertifikat"
            )
        if (kid is None) == (not certificates):
            raise KeystoreError(
                f"{source}: give either the certificate (chain) of the key or the kid it is registered with "
                "in Maskinporten" + (", not both" if kid is not None else "")
            )
        self.source = source
        self.kid = kid
        self._private_key = private_key
        self._certificates = _leaf_first(private_key, certificates, source) if certificates else ()
        if self.certificate is not None:
            _check_validity(self.certificate, source, datetime.datetime.now(datetime.UTC))
            _warn_if_expiring(self.certificate, source)
        # Standard base64 (not URL-safe) DER, leaf first: RFC 7515 §4.1.6.
        self._x5c = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in self._certificates]

    # --- loading ----------------------------------------------------------

    @classmethod
    def load(cls, path: os.PathLike[str] | str, *, password: Password = None) -> Keystore:
        """Load a PKCS#12 file (``.p12``/``.pfx``) or a PEM file holding the
        private key and its certificate chain, whichever ``path`` is.

        Args:
            path: The file.
            password: The keystore's (or the PEM key's) password, if it has one.

        Returns:
            The checked keystore.

        Raises:
            KeystoreError: The file cannot be read or opened (wrong password),
                holds no RSA key or no certificate for it, or is a Java keystore.

        >>> keystore = Keystore.load("virksomhet.p12", password="...")  # doctest: +SKIP
        """
        data, source = _read(path)
        if b"-----BEGIN" in data:
            return cls.from_pem(key=data, password=password, source=source)
        return cls.from_pkcs12(data, password=password, source=source)

    @classmethod
    def from_pkcs12(cls, keystore: KeySource, *, password: Password, source: str | None = None) -> Keystore:
        """A PKCS#12 keystore (``.p12``/``.pfx``): the key, its certificate and any chain.

        Args:
            keystore: A path, or the keystore's bytes.
            password: Its password (None if it has none).
            source: A name for it in messages (default: the path).

        Returns:
            The checked keystore.

        Raises:
            KeystoreError: Not PKCS#12, a wrong password, or no key or certificate in it.
        """
        data, name = _read(keystore)
        name = source or name
        _reject_java_keystore(data, name)
        try:
            key, certificate, extra = pkcs12.load_key_and_certificates(data, _password(password))
        except ValueError as exc:
            if "password" in str(exc).lower():
                what = "no password was given" if password is None else "the password is wrong"
                raise KeystoreError(
                    f"{name}: cannot open the PKCS#12 keystore: {what} (or the file is damaged)"
                ) from None
            raise KeystoreError(f"{name}: not a PKCS#12 keystore (.p12/.pfx) or PEM file") from None
        if key is None:
            raise KeystoreError(f"{name}: the PKCS#12 keystore holds no private key, only certificates")
        certificates = ([certificate] if certificate is not None else []) + list(extra)
        if not certificates:
            raise KeystoreError(f"{name}: the PKCS#12 keystore holds no certificate for its key")
        return cls(private_key=key, certificates=certificates, source=name)

    @classmethod
    def from_pem(
        cls,
        *,
        key: KeySource,
        certificate: KeySource | None = None,
        password: Password = None,
        source: str | None = None,
    ) -> Keystore:
        """A PEM private key and its PEM certificate (chain, any order).

        ``certificate`` may be left out when the key's file also holds the
        certificates.

        Args:
            key: The PEM private key (a path, bytes or PEM text).
            certificate: The PEM certificate (chain) of the key.
            password: The key's password, if it is encrypted.
            source: A name for it in messages (default: the path).

        Returns:
            The checked keystore.

        Raises:
            KeystoreError: The key cannot be read (or is not RSA), no
                certificate is found, or the certificate is not the key's.
        """
        key_data, name = _read(key)
        name = source or name
        private_key = _load_pem_key(key_data, password, name)
        cert_data, cert_name = _read(certificate) if certificate is not None else (key_data, name)
        try:
            certificates = x509.load_pem_x509_certificates(cert_data)
        except ValueError:
            certificates = []
        if not certificates:
            raise KeystoreError(
                f"{cert_name}: no PEM certificate found; give the certificate (chain) of the key, "
                "or use Keystore.from_kid for a key registered in Maskinporten without a certificate"
            )
        return cls(private_key=private_key, certificates=certificates, source=name)

    @classmethod
    def from_kid(cls, *, key: KeySource, kid: str, password: Password = None, source: str | None = None) -> Keystore:
        """A PEM private key registered in Maskinporten as ``kid`` (no certificate).

        Args:
            key: The PEM private key (a path, bytes or PEM text).
            kid: The key id it is registered with.
            password: The key's password, if it is encrypted.
            source: A name for it in messages (default: the path).

        Returns:
            The keystore, signing with ``kid`` in the JWT header.

        Raises:
            KeystoreError: An empty ``kid``, or a key that cannot be read or is not RSA.
        """
        key_data, name = _read(key)
        name = source or name
        if not kid:
            raise KeystoreError(f"{name}: the kid must not be empty")
        return cls(private_key=_load_pem_key(key_data, password, name), kid=kid, source=name)

    # --- use --------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate | None:
        """The leaf certificate (the virksomhetssertifikat), or None in kid mode."""
        return self._certificates[0] if self._certificates else None

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The certificates after the leaf, as they go in ``x5c``."""
        return self._certificates[1:]

    def jwt_headers(self) -> dict[str, Any]:
        """The header fields that tell Maskinporten which key signed: ``x5c`` or ``kid``."""
        return {"kid": self.kid} if self.kid is not None else {"x5c": list(self._x5c)}

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWT of ``claims`` whose header holds ``alg`` and ``x5c``/``kid``, nothing else.

        Args:
            claims: The JWT's claims.

        Returns:
            The signed, compact-serialised JWT.
        """
        if self.certificate is not None:
            _check_validity(self.certificate, self.source, datetime.datetime.now(datetime.UTC))
        # pyjwt adds "typ": "JWT" unless told not to; Maskinporten's format has no typ.
        headers = {"typ": None, **self.jwt_headers()}
        return jwt.encode(dict(claims), self._private_key, algorithm="RS256", headers=headers)

    def __repr__(self) -> str:
        if self.certificate is None:
            return f"Keystore(source={self.source!r}, kid={self.kid!r})"
        return (
            f"Keystore(source={self.source!r}, subject={self.certificate.subject.rfc4514_string()!r}, "
            f"not_valid_after={self.certificate.not_valid_after_utc.isoformat()!r})"
        )

    def __reduce__(self) -> Any:
        # Pickling would write the private key out in the clear.
        raise TypeError("a Keystore cannot be pickled: it holds a private key")


def _read(source: KeySource) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, "<bytes>"
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        # PEM text, say from a secret in an environment variable, rather than a path.
        return source.encode(), "<PEM text>"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        # Key material mistaken for a path must not end up in the message.
        shown = str(path) if len(str(path)) < 256 and "\n" not in str(path) else "<the key source given>"
        raise KeystoreError(f"{shown}: cannot read the file: {exc.strerror}") from None


def _password(password: Password) -> bytes | None:
    return password.encode() if isinstance(password, str) else password


def _reject_java_keystore(data: bytes, name: str) -> None:
    if data[:4] in (_JKS_MAGIC, _JCEKS_MAGIC):
        kind = "a Java keystore (JKS)" if data[:4] == _JKS_MAGIC else "a Java JCEKS keystore"
        target = re.sub(r"\.(jks|jceks|keystore)$", "", name, flags=re.IGNORECASE) + ".p12"
        raise KeystoreError(
            f"{name} is {kind}, which Python cannot read. Convert it to PKCS#12 with:\n"
            f"  keytool -importkeystore -srckeystore {name} -destkeystore {target} -deststoretype PKCS12\n"
            "and load the .p12 file instead"
        )


def _load_pem_key(data: bytes, password: Password, name: str) -> PrivateKeyTypes:
    _reject_java_keystore(data, name)
    found = _PEM_KEY.search(data)
    if found is None:
        raise KeystoreError(f"{name}: no PEM private key (-----BEGIN ... PRIVATE KEY-----) found")
    block = found.group(0)
    try:
        return serialization.load_pem_private_key(block, _password(password))
    except TypeError as exc:
        if "not encrypted" in str(exc):
            return serialization.load_pem_private_key(block, None)
        raise KeystoreError(f"{name}: the private key is encrypted; give its password") from None
    except ValueError as exc:
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise KeystoreError(f"{name}: cannot decrypt the private key: the password is wrong") from None
        raise KeystoreError(f"{name}: the PEM private key cannot be read") from None
    except UnsupportedAlgorithm:
        raise KeystoreError(f"{name}: the PEM private key cannot be read") from None


def _same_key(key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> bool:
    public = certificate.public_key()
    return isinstance(public, rsa.RSAPublicKey) and public.public_numbers() == key.public_key().public_numbers()


def _leaf_first(
    key: rsa.RSAPrivateKey, certificates: Sequence[x509.Certificate], source: str
) -> tuple[x509.Certificate, ...]:
    for i, certificate in enumerate(certificates):
        if _same_key(key, certificate):
            return (certificate, *certificates[:i], *certificates[i + 1 :])
    subjects = ", ".join(repr(c.subject.rfc4514_string()) for c in certificates)
    raise KeystoreError(
        f"{source}: the private key does not belong to the certificate ({subjects}); "
        "the key and the certificate must come from the same keystore or certificate order"
    )


def _check_validity(certificate: x509.Certificate, source: str, now: datetime.datetime) -> None:
    subject = certificate.subject.rfc4514_string()
    if certificate.not_valid_after_utc < now:
        raise KeystoreError(
            f"{source}: the certificate {subject!r} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; "
            "Maskinporten will refuse it. Renew the virksomhetssertifikat"
        )
    if certificate.not_valid_before_utc > now + _NOT_YET_VALID_GRACE:
        raise KeystoreError(
            f"{source}: the certificate {subject!r} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def _warn_if_expiring(certificate: x509.Certificate, source: str) -> None:
    left = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    if left < datetime.timedelta(days=EXPIRY_WARNING_DAYS):
        warnings.warn(
            f"{source}: the certificate {certificate.subject.rfc4514_string()!r} expires on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d} ({left.days} days from now); "
            "renew the virksomhetssertifikat before then, or Maskinporten will refuse it",
            CertificateExpiryWarning,
            stacklevel=3,
        )
