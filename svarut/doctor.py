"""Check a SvarUt setup link by link, as ``svarut doctor`` does, from Python.

The chain a send depends on, in order:

1. ``configuration``: every setting is there (and where each came from);
2. ``keystore``: it opens, and its certificate is valid (expiring within 30
   days is a warning) and names an organisation number;
3. ``maskinporten``: Maskinporten gives a token (its error codes explained);
4. ``clock``: this machine's clock against the token endpoint's ``Date``
   (over :data:`CLOCK_WARN_SECONDS` a warning, over
   :data:`CLOCK_FAIL_SECONDS` broken);
5. ``svarut``: SvarUt accepts the integration's credentials and lets it use
   the konto (a status search for an id that does not exist: harmless);
6. ``sertifikat``: SvarUt's encryption certificate, fetched as the client
   fetches it for an encrypted send, and its validity;
7. ``tls``: for https URLs, whether the certificate chain verifies with the
   trust in use, and if not, who issued the certificate presented.

:func:`diagnose` runs them in order and stops at the first broken link (the
rest are ``skipped``), except that the clock, measured by the token request
itself, is reported whenever that request got an answer: a clock far off is
why Maskinporten refuses an assertion (``invalid_grant``). Each link is a
:class:`LinkResult` whose ``summary`` and ``fix`` never hold a secret (the
integration password, keystore password, token or key).

>>> report = diagnose(os.environ)  # doctest: +SKIP
>>> report.ok, report.broken  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import ssl
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx2
from cryptography import x509
from cryptography.x509.oid import NameOID

from svarut.runtime import errors
from svarut.runtime.auth import environments
from svarut.runtime.auth.keystore import EXPIRY_WARNING_DAYS

if TYPE_CHECKING:
    from svarut._client import SvarUtClient
    from svarut.runtime.auth import MaskinportenConfig, MaskinportenTokenProvider

__all__ = [
    "CLOCK_FAIL_SECONDS",
    "CLOCK_WARN_SECONDS",
    "LINKS",
    "SECRET_SETTINGS",
    "ClockSample",
    "LinkResult",
    "Report",
    "check_clock",
    "check_configuration",
    "check_keystore",
    "check_konto",
    "check_sertifikat",
    "check_tls",
    "check_token",
    "configuration_broken",
    "diagnose",
    "explain_maskinporten_error",
]

Status = Literal["ok", "warn", "fail", "skipped"]

#: The links, in the order they are checked.
LINKS = ("configuration", "keystore", "maskinporten", "clock", "svarut", "sertifikat", "tls")

#: A clock further off than this from the token endpoint's is a warning.
CLOCK_WARN_SECONDS = 10.0
#: Further off than this and Maskinporten refuses the assertions: an
#: assertion lives at most 120 s, and Maskinporten allows its ``iat`` only a
#: few seconds into the future.
CLOCK_FAIL_SECONDS = 60.0

#: Settings whose values are never shown, only whether and where they are set.
SECRET_SETTINGS = frozenset({"SVARUT_INTEGRASJON_PASSORD", "MASKINPORTEN_KEYSTORE_PASSWORD"})
# Settings that may hold PEM text instead of a path: a private key is a secret too.
_MAYBE_PEM = frozenset({"MASKINPORTEN_KEYSTORE", "MASKINPORTEN_CERTIFICATE"})
_REQUIRED = (
    "SVARUT_ENVIRONMENT",
    "SVARUT_INTEGRASJON_ID",
    "SVARUT_INTEGRASJON_PASSORD",
    "MASKINPORTEN_CLIENT_ID",
    "MASKINPORTEN_KEYSTORE",
    "SVARUT_KONTO_ID",
)
_TLS_FIX = (
    "a TLS-inspecting proxy? set SSL_CERT_FILE to a CA bundle that includes its CA (in Python: "
    "http_client=httpx2.Client(verify=ssl.create_default_context(cafile=...))); otherwise check the URL"
)
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class LinkResult:
    """How one link of the chain holds: ``status`` ``ok``, ``warn``, ``fail``
    or ``skipped`` (an earlier link is broken); ``summary`` says what was
    found, ``fix`` what to do (for ``warn`` and ``fail``); ``details`` the
    findings for scripts (JSON values, no secrets)."""

    link: str
    status: Status
    summary: str
    fix: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        return self.status == "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "status": self.status,
            "summary": self.summary,
            "fix": self.fix,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Report:
    """Every link's :class:`LinkResult`, in :data:`LINKS` order."""

    links: tuple[LinkResult, ...]

    @property
    def ok(self) -> bool:
        """Every link holds (warnings allowed)."""
        return all(r.status in ("ok", "warn") for r in self.links)

    @property
    def broken(self) -> LinkResult | None:
        """The first broken link, if any."""
        return next((r for r in self.links if r.broken), None)

    def __getitem__(self, link: str) -> LinkResult:
        for result in self.links:
            if result.link == link:
                return result
        raise KeyError(link)

    def to_json(self) -> dict[str, Any]:
        broken = self.broken
        return {
            "ok": self.ok,
            "broken": broken.link if broken is not None else None,
            "links": [r.to_json() for r in self.links],
        }


# --- 1. configuration --------------------------------------------------------------------------


def _shown(name: str, value: str) -> str | None:
    """What may be shown of a setting's value: nothing of a secret or of PEM text."""
    if name in SECRET_SETTINGS or (name in _MAYBE_PEM and value.lstrip().startswith("-----BEGIN")):
        return None
    return value


def check_configuration(
    values: Mapping[str, str], *, sources: Mapping[str, str] | None = None, konto_id: uuid.UUID | str | None = None
) -> LinkResult:
    """Link 1: the settings a client needs are there and well-formed.

    Args:
        values: The settings by environment variable name (``os.environ``, or
            the ``svarut`` command's merged settings).
        sources: Where each setting came from (``flag``, ``environment``,
            ``config file PATH``); default: all from the environment.
        konto_id: The konto, overriding ``SVARUT_KONTO_ID``.

    Returns:
        The result; ``details["settings"]`` has each setting's source, and
        its value unless it is a secret.
    """
    values = {k: v for k, v in values.items() if v}
    if konto_id is not None:
        values["SVARUT_KONTO_ID"] = str(konto_id)
    where = dict(sources or {})
    if konto_id is not None:
        where["SVARUT_KONTO_ID"] = "flag"
    from svarut.cli.config import KEYS  # the names of every setting (a module without click)

    known = {*KEYS.values(), *_REQUIRED}
    names = [n for n in (*_REQUIRED, *sorted(values)) if n in values and n in known]
    settings: dict[str, dict[str, str | None]] = {
        name: {"source": where.get(name, "environment"), "value": _shown(name, values[name])}
        for name in dict.fromkeys(names)
    }
    by_source: dict[str, list[str]] = {}
    for name in settings:
        by_source.setdefault(where.get(name, "environment"), []).append(name)
    found = "; ".join(f"{source}: {', '.join(names)}" for source, names in by_source.items()) or "no settings"
    details = {"settings": settings}
    missing = [n for n in _REQUIRED if n not in values]
    problems = []
    env = None
    if "SVARUT_ENVIRONMENT" in values:
        try:
            env = environments.environment(values["SVARUT_ENVIRONMENT"])
        except ValueError as exc:
            problems.append(f"SVARUT_ENVIRONMENT: {exc}")
    base_url = values.get("SVARUT_BASE_URL") or (env.svarut_base_url if env else None)
    if base_url is not None:
        try:
            environments.require_secure_url(base_url, what="SVARUT_BASE_URL")
        except ValueError as exc:
            problems.append(str(exc))
    for name in ("SVARUT_INTEGRASJON_ID", "SVARUT_KONTO_ID"):
        if name not in values:
            continue
        try:
            uuid.UUID(values[name])
        except ValueError:
            problems.append(f"{name} (from the {settings[name]['source']}) is not a UUID")
    for name in ("MASKINPORTEN_ISSUER", "MASKINPORTEN_TOKEN_ENDPOINT"):
        if name in values:
            try:
                environments.require_secure_url(values[name], what=name)
            except ValueError as exc:
                problems.append(str(exc))
    if missing or problems:
        said = "; ".join(([f"missing {', '.join(missing)}"] if missing else []) + problems)
        fixes = [_how_to_set(n) for n in missing] + (
            ["correct the settings named where they are set"] if problems else []
        )
        return LinkResult("configuration", "fail", f"{said} (found {found})", "; ".join(fixes), details)
    summary = f"environment {values['SVARUT_ENVIRONMENT']}, SvarUt at {base_url}, konto {values['SVARUT_KONTO_ID']}"
    return LinkResult("configuration", "ok", f"{summary} (from {found})", None, {**details, "base_url": base_url})


def _how_to_set(name: str) -> str:
    if name == "SVARUT_KONTO_ID":
        return "give --konto, or set SVARUT_KONTO_ID (environment, or 'konto_id' in the config file)"
    # The CLI's own wording, where the config file's keys are known.
    from svarut.cli.config import Settings

    return "set " + Settings.how_to_set(name)


def configuration_broken(message: str) -> Report:
    """The report when the settings cannot even be read (a broken config file)."""
    first = LinkResult("configuration", "fail", message, "correct or remove the config file (or give --config)")
    return _finish([first])


# --- 2. keystore -----------------------------------------------------------------------------

# Names cryptography leaves as dotted OIDs, where a virksomhetssertifikat has its organisation number.
_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber", NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier"}


def _name(name: x509.Name) -> str:
    return name.rfc4514_string(_NAMES)


def _organisation_number(certificate: x509.Certificate) -> str | None:
    """The organisation number in a virksomhetssertifikat's subject: in
    ``organizationIdentifier`` (``NTRNO-123456789``, SEID 2) or ``serialNumber`` (SEID 1)."""
    for oid in (NameOID.ORGANIZATION_IDENTIFIER, NameOID.SERIAL_NUMBER):
        for attribute in certificate.subject.get_attributes_for_oid(oid):
            value = str(attribute.value)
            digits = value.removeprefix("NTRNO-")
            if len(digits) == 9 and digits.isdigit():
                return digits
    return None


def check_keystore(
    values: Mapping[str, str], *, now: datetime | None = None
) -> tuple[LinkResult, MaskinportenConfig | None]:
    """Link 2: the keystore opens, and its certificate is valid and names an organisation.

    Args:
        values: The settings (``MASKINPORTEN_*``), as :meth:`MaskinportenConfig.from_env` reads them.
        now: The time to check validity at (default: now).

    Returns:
        The result, and the Maskinporten configuration when the keystore opened.
    """
    from svarut.runtime.auth import MaskinportenConfig

    with warnings.catch_warnings():
        # The expiry warning is this link's own finding, not a warning for the caller.
        warnings.simplefilter("ignore", errors.CertificateExpiryWarning)
        try:
            config = MaskinportenConfig.from_env(values)
        except errors.KeystoreError as exc:
            return LinkResult("keystore", "fail", str(exc), _keystore_fix(str(exc))), None
        except ValueError as exc:
            return LinkResult("keystore", "fail", str(exc), "correct the MASKINPORTEN_* settings"), None
    keystore = config.keystore
    certificate = keystore.certificate
    if certificate is None:
        summary = f"{keystore.source}: a key registered in Maskinporten as kid {keystore.kid!r} (no certificate)"
        return LinkResult("keystore", "ok", summary, None, {"source": keystore.source, "kid": keystore.kid}), config
    now = now or datetime.now(UTC)
    orgnr = _organisation_number(certificate)
    left = certificate.not_valid_after_utc - now
    details = {
        "source": keystore.source,
        "subject": _name(certificate.subject),
        "issuer": _name(certificate.issuer),
        "organisasjonsnummer": orgnr,
        "not_valid_before": certificate.not_valid_before_utc.isoformat(),
        "not_valid_after": certificate.not_valid_after_utc.isoformat(),
        "days_left": left.days,
    }
    who = f"organisation number {orgnr}" if orgnr else "no organisation number in the subject"
    summary = (
        f"{keystore.source}: {_name(certificate.subject)} ({who}), valid "
        f"{certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d}"
    )
    if left < timedelta(days=EXPIRY_WARNING_DAYS):
        fix = "renew the virksomhetssertifikat and register the new one before the old one expires"
        return LinkResult("keystore", "warn", f"{summary}: expires in {left.days} days", fix, details), config
    if orgnr is None:
        fix = "a virksomhetssertifikat names its organisation (serialNumber or organizationIdentifier); is it one?"
        return LinkResult("keystore", "warn", summary, fix, details), config
    return LinkResult("keystore", "ok", f"{summary} ({left.days} days left)", None, details), config


def _keystore_fix(message: str) -> str:
    if "password" in message:
        return "set MASKINPORTEN_KEYSTORE_PASSWORD to the keystore's password (environment or config file)"
    if "expired" in message or "not valid before" in message:
        return "renew the virksomhetssertifikat (Buypass or Commfides) and register it with the Maskinporten client"
    if "Java" in message:
        return "convert the keystore to PKCS#12 with keytool, as the message says"
    if "cannot read" in message:
        return "point MASKINPORTEN_KEYSTORE at the keystore file (.p12/.pfx or PEM)"
    return "give the keystore of the virksomhetssertifikat (its RSA key and certificate) in MASKINPORTEN_KEYSTORE"


# --- 3. the Maskinporten token, and 4. the clock ---------------------------------------------

#: What each of Maskinporten's error codes means, and what to do about it.
MASKINPORTEN_ERRORS: Mapping[str, tuple[str, str]] = {
    "invalid_client": (
        "Maskinporten does not accept this client and key",
        "check MASKINPORTEN_CLIENT_ID against the integration in Samarbeidsportalen, and that the "
        "virksomhetssertifikat (or the kid's key) in the keystore is the one registered for it and not "
        "expired or revoked",
    ),
    "invalid_scope": (
        "the client has not been granted a scope it asked for",
        "give the integration the scope ks:fiks in Samarbeidsportalen (KS grants your organisation access "
        "to it), or correct MASKINPORTEN_SCOPES",
    ),
    "invalid_grant": (
        "Maskinporten refused the signed assertion, for its time, audience or signature",
        "sync this machine's clock (NTP); check that MASKINPORTEN_ISSUER is the Maskinporten of "
        "SVARUT_ENVIRONMENT (test: https://test.maskinporten.no/, prod: https://maskinporten.no/)",
    ),
    "unauthorized_client": (
        "the client may not use this grant or act for this organisation",
        "check the integration's settings in Samarbeidsportalen, and MASKINPORTEN_CONSUMER_ORG "
        "(a delegation in Altinn is needed to act for another organisation)",
    ),
    "access_denied": (
        "access was denied, perhaps for a missing delegation",
        "check MASKINPORTEN_CONSUMER_ORG and the delegation in Altinn",
    ),
    "invalid_request": (
        "Maskinporten could not read the token request",
        "check MASKINPORTEN_TOKEN_ENDPOINT; if it is right, report it as a bug of fiks-svarut",
    ),
    "unsupported_grant_type": (
        "the token endpoint does not take the JWT bearer grant",
        "check MASKINPORTEN_TOKEN_ENDPOINT: it must be Maskinporten's /token",
    ),
    "server_error": ("Maskinporten failed", "try again later; see https://status.digdir.no"),
    "temporarily_unavailable": ("Maskinporten is unavailable", "try again later; see https://status.digdir.no"),
}


def explain_maskinporten_error(code: str | None) -> tuple[str, str]:
    """What Maskinporten's OAuth error ``code`` means, and what to do about it."""
    if code is not None and code in MASKINPORTEN_ERRORS:
        return MASKINPORTEN_ERRORS[code]
    return (
        f"Maskinporten refused the token request ({code or 'no error code'})",
        "read Maskinporten's description above; check MASKINPORTEN_CLIENT_ID, the keystore and MASKINPORTEN_ISSUER",
    )


@dataclass(frozen=True)
class ClockSample:
    """A server's ``Date`` and this machine's clock before and after the request it answered."""

    url: str
    server_date: datetime
    sent: float
    received: float

    @property
    def skew(self) -> float:
        """Seconds the server's clock is ahead of this machine's (negative: behind).
        ``Date`` is cut to the second, so its middle is the best guess."""
        return self.server_date.timestamp() + 0.5 - (self.sent + self.received) / 2

    @property
    def uncertainty(self) -> float:
        return 0.5 + (self.received - self.sent) / 2


class _Recorder:
    """Event hooks on the doctor's HTTP client: a clock sample from the latest answer with a ``Date``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[int, float] = {}
        self.latest: ClockSample | None = None

    def request(self, request: httpx2.Request) -> None:
        with self._lock:
            self._sent[id(request)] = time.time()

    def response(self, response: httpx2.Response) -> None:
        received = time.time()
        with self._lock:
            sent = self._sent.pop(id(response.request), received)
        url = str(response.request.url)
        date = response.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                parsed = email.utils.parsedate_to_datetime(date)
                if parsed.tzinfo is not None:
                    with self._lock:
                        self.latest = ClockSample(url, parsed, sent, received)


def _peer_certificate(response: httpx2.Response) -> x509.Certificate | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    der = ssl_object.getpeercert(True) if ssl_object is not None else None
    return x509.load_der_x509_certificate(der) if der else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_token(provider: MaskinportenTokenProvider) -> LinkResult:
    """Link 3: Maskinporten gives ``provider`` a token for its scopes.

    Args:
        provider: The token provider (its HTTP client's hooks may measure the clock).

    Returns:
        The result; the token itself is never in it.
    """
    scopes = " ".join(provider.config.scopes)
    asked = {"token_endpoint": provider.token_endpoint, "client_id": provider.config.client_id, "scopes": scopes}
    try:
        token = provider.get_access_token()
    except errors.MaskinportenTokenError as exc:
        meaning, fix = explain_maskinporten_error(exc.error)
        said = f"; Maskinporten says: {exc.error_description}" if exc.error_description else ""
        details = {
            **asked,
            "status_code": exc.status_code,
            "error": exc.error,
            "error_description": exc.error_description,
        }
        summary = (
            f"{exc.error}: {meaning}{said}" if exc.error else f"{exc} (is MASKINPORTEN_TOKEN_ENDPOINT Maskinporten?)"
        )
        return LinkResult("maskinporten", "fail", summary, fix, details)
    except errors.MaskinportenConnectionError as exc:
        return _unreachable("maskinporten", provider.token_endpoint, exc, asked)
    granted = token.scope or scopes
    summary = f"a token for {granted!r} from {provider.token_endpoint} (client {provider.config.client_id})"
    return LinkResult(
        "maskinporten", "ok", f"{summary}, valid {token.expires_in} s", None, {**asked, "granted": granted}
    )


def check_clock(sample: ClockSample | None) -> LinkResult:
    """Link 4: this machine's clock against a server's ``Date`` (the token endpoint's).

    Args:
        sample: The measurement, or None when no ``Date`` was had.

    Returns:
        The result: ``warn`` over :data:`CLOCK_WARN_SECONDS`, ``fail`` over :data:`CLOCK_FAIL_SECONDS`.
    """
    if sample is None:
        fix = "compare this machine's clock with an NTP server (timedatectl status)"
        return LinkResult("clock", "warn", "the token endpoint sent no Date header; the clock was not checked", fix)
    skew = sample.skew
    off = max(0.0, abs(skew) - sample.uncertainty)
    way = "behind" if skew > 0 else "ahead of"
    # skew_seconds: this machine's clock minus the server's (positive: this machine is ahead).
    details = {"url": sample.url, "skew_seconds": round(-skew, 1), "uncertainty_seconds": round(sample.uncertainty, 1)}
    summary = f"this machine's clock is {abs(skew):.1f} s {way} the token endpoint's (±{sample.uncertainty:.1f} s)"
    fix = "sync this machine's clock with NTP (timedatectl set-ntp true, or w32tm /resync on Windows)"
    if off > CLOCK_FAIL_SECONDS:
        said = f"{summary}: more than {CLOCK_FAIL_SECONDS:.0f} s, so Maskinporten refuses its assertions"
        return LinkResult("clock", "fail", said, fix, details)
    if off > CLOCK_WARN_SECONDS:
        said = f"{summary}: more than {CLOCK_WARN_SECONDS:.0f} s (Maskinporten refuses a clock much further off)"
        return LinkResult("clock", "warn", said, fix, details)
    return LinkResult("clock", "ok", f"{summary}: within {CLOCK_WARN_SECONDS:.0f} s", None, details)


# --- 5. the integration and the konto --------------------------------------------------------


def check_konto(client: SvarUtClient, konto_id: uuid.UUID | str) -> LinkResult:
    """Link 5: SvarUt accepts the integration's credentials and lets it use
    ``konto_id``: a status search for a made-up forsendelse id (it finds
    nothing, changes nothing), through the generated operation.

    Args:
        client: The client, built from the settings checked.
        konto_id: The konto.

    Returns:
        The result: 401 and 403 tell the credentials from the konto where SvarUt says which.
    """
    probe = uuid.uuid4()
    details: dict[str, Any] = {"konto_id": str(konto_id), "base_url": client.base_url}
    try:
        client.hent_statuser(konto_id=konto_id, ids=[probe])
    except errors.AuthenticationError as exc:
        details |= {"status_code": 401, "error_code": exc.error_code, "message": exc.message}
        return LinkResult(
            "svarut",
            "fail",
            f"SvarUt answered 401: it did not accept the integration's credentials or the token ({exc.message})",
            "check SVARUT_INTEGRASJON_ID and SVARUT_INTEGRASJON_PASSORD against the integration in Fiks "
            "Forvaltning (a new password replaces the old one), and that the integration is set up for this "
            "Maskinporten client",
            details,
        )
    except errors.PermissionDeniedError as exc:
        details |= {"status_code": 403, "error_code": exc.error_code, "message": exc.message}
        said = (exc.message or "").lower()
        if "konto" in said and "integrasjonpassord" not in said:
            return LinkResult(
                "svarut",
                "fail",
                f"SvarUt answered 403: the integration has no access to konto {konto_id} ({exc.message})",
                "check the konto id (SVARUT_KONTO_ID or --konto), and give the integration access to the konto "
                "in Fiks Forvaltning (SvarUt, the konto's integrations)",
                details,
            )
        if "integrasjon" in said:
            return LinkResult(
                "svarut",
                "fail",
                f"SvarUt answered 403: wrong integration credentials ({exc.message})",
                "check SVARUT_INTEGRASJON_ID and SVARUT_INTEGRASJON_PASSORD against the integration in Fiks "
                "Forvaltning (a new password replaces the old one)",
                details,
            )
        return LinkResult(
            "svarut",
            "fail",
            f"SvarUt answered 403 ({exc.message or 'no message'}): the integration's credentials are wrong, or it "
            f"has no access to konto {konto_id}",
            "check SVARUT_INTEGRASJON_ID and SVARUT_INTEGRASJON_PASSORD, and the integration's access to the konto, "
            "in Fiks Forvaltning",
            details,
        )
    except errors.NotFoundError as exc:
        details |= {"status_code": 404, "message": exc.message}
        return LinkResult(
            "svarut",
            "fail",
            f"SvarUt answered 404 at {client.base_url}: no such endpoint",
            "check SVARUT_BASE_URL: SvarUt's API root ends in /api (or leave it out to use SVARUT_ENVIRONMENT's)",
            details,
        )
    except errors.APIStatusError as exc:
        details |= {"status_code": exc.status_code, "message": exc.message}
        return LinkResult("svarut", "fail", str(exc), "see the message; a 5xx: try again later", details)
    except errors.APIConnectionError as exc:
        return _unreachable("svarut", client.base_url, exc, details)
    except errors.MaskinportenError as exc:
        # A fresh token after a 401 may fail where the first did not.
        return LinkResult("svarut", "fail", str(exc), "see the maskinporten link", details)
    except errors.SvarUtError as exc:
        return LinkResult("svarut", "fail", str(exc), "see the message", details)
    summary = f"SvarUt at {client.base_url} accepts the integration and its access to konto {konto_id}"
    return LinkResult("svarut", "ok", summary, None, details)


# --- 6. SvarUt's encryption certificate ------------------------------------------------------


def check_sertifikat(http: httpx2.Client, base_url: str, *, now: datetime | None = None) -> LinkResult:
    """Link 6: SvarUt's encryption certificate, fetched from where the client
    fetches it for an encrypted send, and its validity.

    Args:
        http: The HTTP client to fetch with.
        base_url: SvarUt's API root.
        now: The time to check validity at (default: now).

    Returns:
        The result: ``warn`` when it expires within 30 days.
    """
    from svarut.runtime.sertifikat import EXPIRY_WARNING_DAYS as SVARUT_WARNING_DAYS
    from svarut.runtime.sertifikat import hent_sertifikat, sertifikat_url

    url = sertifikat_url(base_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", errors.CertificateExpiryWarning)
        try:
            sertifikat = hent_sertifikat(http, url, max_age=0)
        except errors.SertifikatError as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx2.TransportError):
                return _unreachable("sertifikat", url, cause, {"url": url})
            fix = "encrypted sends (kryptert, sikkerhetsniva HOYESTE) fail until SvarUt serves a valid certificate"
            return LinkResult("sertifikat", "fail", str(exc), fix, {"url": url})
    left = sertifikat.not_valid_after - (now or datetime.now(UTC))
    details = {
        "url": url,
        "serial": sertifikat.serial_hex,
        "sha256": sertifikat.sha256_fingerprint,
        "not_valid_after": sertifikat.not_valid_after.isoformat(),
        "days_left": left.days,
    }
    summary = (
        f"SvarUt's encryption certificate from {url}: serial {sertifikat.serial_hex}, valid until "
        f"{sertifikat.not_valid_after:%Y-%m-%d}"
    )
    if left < timedelta(days=SVARUT_WARNING_DAYS):
        fix = "SvarUt replaces it before then; a certificate you saved (--sertifikat) must be fetched anew"
        return LinkResult("sertifikat", "warn", f"{summary}: expires in {left.days} days", fix, details)
    return LinkResult("sertifikat", "ok", f"{summary} ({left.days} days left)", None, details)


# --- 7. TLS ----------------------------------------------------------------------------------


def _certificate_refused(error: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _trust() -> str:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if value := os.environ.get(name):
            return f"{name}={value}"
    return "the default trust store"


def _presented(url: str, timeout: float) -> x509.Certificate | None:
    """The certificate the server at ``url`` presents, unverified: only to name
    its issuer. Nothing is sent but a GET of the origin's root."""
    try:
        # verify=False on purpose: this request only reads the certificate, and carries no credentials.
        with (
            httpx2.Client(verify=False, timeout=timeout) as http,
            http.stream("GET", _origin(url) + "/") as response,
        ):
            return _peer_certificate(response)
    except httpx2.HTTPError:
        return None


def _tls_failure(link: str, url: str, refused: ssl.SSLCertVerificationError, timeout: float) -> LinkResult:
    presented = _presented(url, timeout)
    reason = refused.verify_message or str(refused)
    details: dict[str, Any] = {"url": url, "trust": _trust(), "verify_message": reason}
    if presented is not None:
        issuer = presented.issuer.rfc4514_string()
        details |= {"issuer": issuer, "subject": presented.subject.rfc4514_string()}
        shown = f"the certificate presented for {_origin(url)} (issuer {issuer}) does not verify"
    else:
        shown = f"the certificate of {_origin(url)} does not verify"
    summary = f"TLS: {shown} with {_trust()}: {reason}"
    return LinkResult(link, "fail", summary, _TLS_FIX, details)


def _unreachable(
    link: str, url: str, exc: BaseException, details: Mapping[str, Any], timeout: float = DEFAULT_TIMEOUT
) -> LinkResult:
    if (refused := _certificate_refused(exc)) is not None:
        return _tls_failure(link, url, refused, timeout)
    return LinkResult(
        link,
        "fail",
        f"cannot reach {url}: {exc}",
        "check the URL, the network, and the proxy settings (HTTPS_PROXY, NO_PROXY)",
        dict(details),
    )


def check_tls(urls: list[str], *, timeout: float = DEFAULT_TIMEOUT) -> LinkResult:
    """Link 7: for each https URL, whether the server's certificate chain
    verifies with the trust the client uses (``SSL_CERT_FILE``/``SSL_CERT_DIR``
    or the default); if not, the issuer of the certificate presented.

    Args:
        urls: The URLs the client talks to (SvarUt, Maskinporten).
        timeout: Seconds for each connection.

    Returns:
        The result; plain http (only allowed to this machine) has nothing to verify.
    """
    origins = list(dict.fromkeys(_origin(u) for u in urls))
    secure = [o for o in origins if o.startswith("https://")]
    if not secure:
        return LinkResult("tls", "ok", f"plain HTTP to this machine ({', '.join(origins)}): no TLS to verify")
    verified = []
    details: dict[str, Any] = {"trust": _trust(), "servers": {}}
    with httpx2.Client(timeout=timeout) as http:
        for origin in secure:
            try:
                with http.stream("GET", origin + "/") as response:
                    peer = _peer_certificate(response)
            except httpx2.HTTPError as exc:
                return _unreachable("tls", origin, exc, details, timeout)
            issuer = peer.issuer.rfc4514_string() if peer is not None else "unknown"
            details["servers"][origin] = {"issuer": issuer}
            verified.append(f"{origin} (issuer {issuer})")
    return LinkResult("tls", "ok", f"verified with {_trust()}: {'; '.join(verified)}", None, details)


# --- the chain -------------------------------------------------------------------------------


def _finish(results: list[LinkResult]) -> Report:
    done = {r.link for r in results}
    skipped = [
        LinkResult(link, "skipped", "not checked: an earlier link is broken") for link in LINKS if link not in done
    ]
    ordered = sorted([*results, *skipped], key=lambda r: LINKS.index(r.link))
    return Report(tuple(ordered))


@contextlib.contextmanager
def _http(timeout: float) -> Iterator[tuple[httpx2.Client, _Recorder]]:
    recorder = _Recorder()
    with httpx2.Client(
        timeout=httpx2.Timeout(timeout),
        follow_redirects=False,
        event_hooks={"request": [recorder.request], "response": [recorder.response]},
    ) as http:
        yield http, recorder


def diagnose(
    values: Mapping[str, str],
    *,
    sources: Mapping[str, str] | None = None,
    konto_id: uuid.UUID | str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Report:
    """Check the chain link by link (see the module), stopping at the first broken one.

    Args:
        values: The settings by environment variable name (such as ``os.environ``).
        sources: Where each came from, for the configuration link.
        konto_id: The konto to check, overriding ``SVARUT_KONTO_ID``.
        timeout: Seconds for each request.

    Returns:
        The :class:`Report`: a result for every link of :data:`LINKS`.
    """
    from svarut._client import SvarUtClient
    from svarut.runtime.auth import MaskinportenTokenProvider
    from svarut.runtime.retry import RetryPolicy

    results = [check_configuration(values, sources=sources, konto_id=konto_id)]
    if results[-1].broken:
        return _finish(results)
    settings = {k: v for k, v in values.items() if v}
    konto = str(konto_id) if konto_id is not None else settings["SVARUT_KONTO_ID"]
    keystore, config = check_keystore(settings)
    results.append(keystore)
    if config is None:
        return _finish(results)
    with _http(timeout) as (http, recorder):
        # The doctor's own HTTP client carries every request, so its hooks see the Date
        # headers; its TLS settings are the client's defaults.
        provider = MaskinportenTokenProvider(config, environment=settings["SVARUT_ENVIRONMENT"], http_client=http)
        token = check_token(provider)
        # Only the token request has gone through this client so far: the latest Date is the token endpoint's.
        sample = recorder.latest
        clock = check_clock(sample) if sample is not None or not token.broken else None
        if token.broken and clock is not None and clock.broken:
            summary = f"{token.summary} (this machine's clock is off: see the clock link)"
            token = LinkResult(token.link, "fail", summary, f"{clock.fix}, then run the doctor again", token.details)
        results += [token] + ([clock] if clock is not None else [])
        if token.broken or (clock is not None and clock.broken):
            return _finish(results)
        # One try: a doctor that retries a broken link only takes longer to say so.
        with SvarUtClient.for_environment(
            "test" if settings["SVARUT_ENVIRONMENT"] == "test" else "prod",  # the configuration link checked it
            integrasjon_id=settings["SVARUT_INTEGRASJON_ID"],
            integrasjon_passord=settings["SVARUT_INTEGRASJON_PASSORD"],
            token_provider=provider,
            base_url=settings.get("SVARUT_BASE_URL"),
            timeout=timeout,
            retry=RetryPolicy(max_retries=0),
            http_client=http,
        ) as client:
            results.append(check_konto(client, konto))
            if results[-1].broken:
                return _finish(results)
            results.append(check_sertifikat(http, client.base_url))
            if results[-1].broken:
                return _finish(results)
            base_url = client.base_url
    results.append(check_tls([base_url, provider.token_endpoint], timeout=timeout))
    return _finish(results)
