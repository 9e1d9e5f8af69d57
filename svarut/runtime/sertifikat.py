"""SvarUt's encryption certificate: loaded, fetched, cached and checked.

- :class:`SvarUtSertifikat`: SvarUt's certificate, loaded from PEM or DER
  (:meth:`~SvarUtSertifikat.load`, :meth:`~SvarUtSertifikat.from_bytes`) and
  checked: an RSA key of at least 2048 bits, inside its validity period, with
  a :class:`SvarUtCertificateExpiryWarning` in its last 30 days.
- :func:`hent_sertifikat`, :func:`ahent_sertifikat`: fetched from
  ``<SvarUt host>/forsendelse/publickey/hent`` (:func:`sertifikat_url`) over
  HTTPS, the body read to at most :data:`MAX_CERTIFICATE_BYTES`, and cached
  per URL for :data:`CACHE_SECONDS` (:func:`clear_sertifikat_cache`).

What is encrypted for it, and how, is :mod:`svarut.runtime.kryptering`'s
business; :mod:`svarut.kryptering` is the public face of both.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from svarut.runtime.bounded import aread_bounded, read_bounded
from svarut.runtime.errors import CertificateExpiryWarning, SertifikatError
from svarut.runtime.keys import describe_key

__all__ = [
    "CACHE_SECONDS",
    "EXPIRY_WARNING_DAYS",
    "MAX_CERTIFICATE_BYTES",
    "MIN_RSA_BITS",
    "PUBLICKEY_PATH",
    "SERTIFIKAT_URL_PROD",
    "SERTIFIKAT_URL_TEST",
    "SertifikatError",
    "SvarUtCertificateExpiryWarning",
    "SvarUtSertifikat",
    "ahent_sertifikat",
    "clear_sertifikat_cache",
    "hent_sertifikat",
    "sertifikat_url",
]

PUBLICKEY_PATH = "/forsendelse/publickey/hent"
SERTIFIKAT_URL_TEST = "https://test.svarut.ks.no" + PUBLICKEY_PATH
SERTIFIKAT_URL_PROD = "https://svarut.ks.no" + PUBLICKEY_PATH

EXPIRY_WARNING_DAYS = 30
# A fetched certificate is asked for again after this long, so a long-running
# process picks up SvarUt's next certificate without a restart.
CACHE_SECONDS = 24 * 3600.0
MIN_RSA_BITS = 2048
# A certificate is a few kilobytes; anything much bigger is not one.
MAX_CERTIFICATE_BYTES = 256 * 1024


class SvarUtCertificateExpiryWarning(CertificateExpiryWarning):
    """SvarUt's certificate expires within :data:`EXPIRY_WARNING_DAYS` days."""


class SvarUtSertifikat:
    """SvarUt's encryption certificate, checked for use.

    Construction fails with :class:`SertifikatError` unless the key is RSA of
    at least 2048 bits and now is inside the validity period, and warns with
    :class:`SvarUtCertificateExpiryWarning` when fewer than
    :data:`EXPIRY_WARNING_DAYS` days remain. The certificate is not checked
    against a trust store: it is trusted for coming from the user or over
    HTTPS from SvarUt.

    Args:
        certificate: The X.509 certificate.
        source: Where it came from, for messages (a path or URL).

    Raises:
        SertifikatError: Not an RSA key of at least 2048 bits, or not valid now.

    >>> sertifikat = SvarUtSertifikat.load("svarut-test.pem")  # doctest: +SKIP
    >>> sertifikat.not_valid_after, sertifikat.sha256_fingerprint  # doctest: +SKIP
    """

    def __init__(self, certificate: x509.Certificate, *, source: str = "the certificate") -> None:
        self.certificate = certificate
        self.source = source
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SertifikatError(
                f"{source}: SvarUt's certificate must have an RSA key, this one has {describe_key(key)} "
                f"(subject {certificate.subject.rfc4514_string()!r})"
            )
        if key.key_size < MIN_RSA_BITS:
            raise SertifikatError(
                f"{source}: the certificate's RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required"
            )
        self.public_key: rsa.RSAPublicKey = key
        self.check_valid()
        left = self.not_valid_after - datetime.now(UTC)
        if left < timedelta(days=EXPIRY_WARNING_DAYS):
            warnings.warn(
                f"SvarUt's certificate ({source}, serial {self.serial_hex}) expires on {_date(self.not_valid_after)}, "
                f"in {_days(left)}; get the new one from SvarUt before then",
                SvarUtCertificateExpiryWarning,
                stacklevel=2,
            )

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "the certificate") -> SvarUtSertifikat:
        """A certificate in PEM (the first one, if there are several) or DER.

        Args:
            data: The certificate's bytes.
            source: Where they came from, for messages.

        Returns:
            The checked certificate.

        Raises:
            SertifikatError: Not a certificate (a bare public key, say), or
                one that does not pass the checks of the constructor.
        """
        data = bytes(data)
        if b"PUBLIC KEY-----" in data and b"-----BEGIN CERTIFICATE" not in data:
            raise SertifikatError(
                f"{source}: this is a bare public key, not a certificate; CMS names the recipient by the "
                "certificate's issuer and serial number, so the certificate is needed"
            )
        try:
            if b"-----BEGIN" in data:
                certificate = x509.load_pem_x509_certificates(data)[0]
            else:
                certificate = x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise SertifikatError(f"{source}: not a PEM or DER X.509 certificate ({exc})") from None
        return cls(certificate, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SvarUtSertifikat:
        """A certificate from a PEM or DER file.

        Args:
            path: The file.

        Returns:
            The checked certificate.

        Raises:
            SertifikatError: The file cannot be read, or does not hold a
                usable certificate (see :meth:`from_bytes`).
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SertifikatError(f"cannot read SvarUt's certificate from {path}: {exc.strerror}") from None
        return cls.from_bytes(data, source=str(path))

    @property
    def not_valid_before(self) -> datetime:
        """The start of the validity period (UTC)."""
        return self.certificate.not_valid_before_utc

    @property
    def not_valid_after(self) -> datetime:
        """The end of the validity period (UTC): when to have the next certificate."""
        return self.certificate.not_valid_after_utc

    @property
    def serial_number(self) -> int:
        """The serial number, which with the issuer names the CMS recipient."""
        return self.certificate.serial_number

    @property
    def serial_hex(self) -> str:
        """The serial number in upper-case hex, as messages show it."""
        return format(self.serial_number, "X")

    @property
    def issuer_der(self) -> bytes:
        """The issuer Name as DER, as the recipient is identified by it."""
        return self.certificate.issuer.public_bytes()

    @property
    def sha256_fingerprint(self) -> str:
        """The SHA-256 fingerprint of the DER certificate, in lower-case hex."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def check_valid(self, *, now: datetime | None = None) -> None:
        """Raise :class:`SertifikatError` unless ``now`` (default: the current
        time) is inside the validity period.

        Args:
            now: The time to check (default: now).

        Raises:
            SertifikatError: Expired, or not yet valid.
        """
        now = now or datetime.now(UTC)
        if now > self.not_valid_after:
            raise SertifikatError(
                f"{self.source}: SvarUt's certificate (serial {self.serial_hex}) expired on "
                f"{_date(self.not_valid_after)} (valid from {_date(self.not_valid_before)}); "
                "get the current one from SvarUt"
            )
        if now < self.not_valid_before:
            raise SertifikatError(
                f"{self.source}: SvarUt's certificate (serial {self.serial_hex}) is not valid until "
                f"{_date(self.not_valid_before)} (expires {_date(self.not_valid_after)}); check the clock, or use "
                "the certificate SvarUt publishes now"
            )

    def __repr__(self) -> str:
        return (
            f"SvarUtSertifikat(subject={self.certificate.subject.rfc4514_string()!r}, serial={self.serial_hex}, "
            f"not_valid_after={_date(self.not_valid_after)}, source={self.source!r})"
        )


def _days(left: timedelta) -> str:
    if left < timedelta(days=1):
        return "less than a day"
    return f"{left.days} day{'s' * (left.days != 1)}"


def _date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- fetching the certificate ---------------------------------------------

_cache: dict[str, tuple[float, SvarUtSertifikat]] = {}
_cache_lock = threading.Lock()


def sertifikat_url(svarut: str) -> str:
    """Where SvarUt publishes its certificate: for ``"test"``, ``"prod"``, or
    any URL on a SvarUt host (``https://test.svarut.ks.no/api`` →
    ``https://test.svarut.ks.no/forsendelse/publickey/hent``).

    Args:
        svarut: ``"test"``, ``"prod"`` or a URL on the SvarUt host.

    Returns:
        The certificate's URL.

    Raises:
        ValueError: Neither a name nor an http(s) URL.

    >>> sertifikat_url("https://test.svarut.ks.no/api")
    'https://test.svarut.ks.no/forsendelse/publickey/hent'
    """
    named = {"test": SERTIFIKAT_URL_TEST, "prod": SERTIFIKAT_URL_PROD}
    if svarut in named:
        return named[svarut]
    parts = urlsplit(svarut)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected 'test', 'prod' or a SvarUt URL, got {svarut!r}")
    return f"{parts.scheme}://{parts.netloc}{PUBLICKEY_PATH}"


def clear_sertifikat_cache() -> None:
    """Forget every fetched certificate, so the next :func:`hent_sertifikat` fetches anew."""
    with _cache_lock:
        _cache.clear()


def hent_sertifikat(http: httpx2.Client, url: str, *, max_age: float = CACHE_SECONDS) -> SvarUtSertifikat:
    """SvarUt's certificate from ``url`` (see :func:`sertifikat_url`), fetched
    with ``http`` unless one fetched from the same URL less than ``max_age``
    seconds ago is still valid.

    Args:
        http: The client to fetch with (its proxies and TLS settings apply).
        url: The certificate's URL (https; plain http only to localhost).
        max_age: Seconds a fetched certificate is reused.

    Returns:
        The checked certificate.

    Raises:
        SertifikatError: It could not be fetched over HTTPS, or is not a
            usable certificate.

    >>> with httpx2.Client() as http:  # doctest: +SKIP
    ...     sertifikat = hent_sertifikat(http, sertifikat_url("prod"))
    """
    _require_secure(url)
    cached = _cached(url, max_age)
    if cached is not None:
        return cached
    try:
        with http.stream("GET", url, headers=_ACCEPT, follow_redirects=True) as response:
            _require_secure(str(response.url))
            body, over = read_bounded(response.iter_bytes(), MAX_CERTIFICATE_BYTES)
    except httpx2.HTTPError as exc:
        raise SertifikatError(f"could not fetch SvarUt's certificate from {url}: {type(exc).__name__}: {exc}") from exc
    return _store(url, _parse_response(url, response, body, over=over))


async def ahent_sertifikat(http: httpx2.AsyncClient, url: str, *, max_age: float = CACHE_SECONDS) -> SvarUtSertifikat:
    """:func:`hent_sertifikat` for an async client (sharing its cache); the
    arguments, result and errors are the same."""
    _require_secure(url)
    cached = _cached(url, max_age)
    if cached is not None:
        return cached
    try:
        async with http.stream("GET", url, headers=_ACCEPT, follow_redirects=True) as response:
            _require_secure(str(response.url))
            body, over = await aread_bounded(response.aiter_bytes(), MAX_CERTIFICATE_BYTES)
    except httpx2.HTTPError as exc:
        raise SertifikatError(f"could not fetch SvarUt's certificate from {url}: {type(exc).__name__}: {exc}") from exc
    return _store(url, _parse_response(url, response, body, over=over))


_ACCEPT = {"Accept": "application/x-pem-file, application/pkix-cert, application/x-x509-ca-cert, */*"}


def _require_secure(url: str) -> None:
    # Whoever can replace this certificate can read every document encrypted
    # for it, so it travels over HTTPS unless the server is this machine.
    from svarut.runtime.auth.environments import require_secure_url  # not the whole auth package at import

    try:
        require_secure_url(url, what="SvarUt's certificate URL")
    except ValueError:
        raise SertifikatError(f"SvarUt's certificate must be fetched over HTTPS, not from {url!r}") from None


def _cached(url: str, max_age: float) -> SvarUtSertifikat | None:
    with _cache_lock:
        entry = _cache.get(url)
    if entry is None:
        return None
    fetched_at, sertifikat = entry
    if time.monotonic() - fetched_at > max_age or datetime.now(UTC) > sertifikat.not_valid_after:
        return None
    return sertifikat


def _store(url: str, sertifikat: SvarUtSertifikat) -> SvarUtSertifikat:
    with _cache_lock:
        _cache[url] = (time.monotonic(), sertifikat)
    return sertifikat


def _parse_response(url: str, response: httpx2.Response, body: bytes, *, over: bool) -> SvarUtSertifikat:
    if response.status_code != 200:
        excerpt = body[:200].decode("utf-8", errors="replace")
        raise SertifikatError(
            f"could not fetch SvarUt's certificate from {url}: {response.status_code} {response.reason_phrase}"
            + (f": {excerpt}" if excerpt else "")
        )
    if over:
        raise SertifikatError(f"{url}: the response is over {MAX_CERTIFICATE_BYTES} bytes; not a certificate")
    return SvarUtSertifikat.from_bytes(body, source=url)
