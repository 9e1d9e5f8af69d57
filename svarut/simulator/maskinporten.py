"""The simulator's Maskinporten: the JWT bearer grant, checked as Maskinporten
checks it, and the access tokens SvarUt's endpoints then accept.

A token request is a form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
with an ``assertion``: a JWT whose header holds ``alg: RS256`` and the client's
certificate chain in ``x5c``, signed by the certificate's key, with the claims
``aud`` (the issuer, exactly), ``iss`` (the client id), ``scope`` (must
include ``ks:fiks``), ``iat``, ``exp`` (at most 120 s after ``iat``) and a
``jti`` never seen before. Anything else is refused with Maskinporten's OAuth
error body (``{"error": "invalid_grant", "error_description": ...}``).

The stand-in trusts any certificate that is valid now, or, given
``trusted_certificates``, only those; a certificate outside its validity
period is refused with ``invalid_client``, as Maskinporten refuses it.
``allowed_scopes`` are the scopes the client has been granted (None: any):
asking for another is ``invalid_scope``. ``clock_offset`` puts the stand-in's
clock that many seconds ahead of this machine's (negative: behind), for its
checks of ``iat``/``exp`` and the certificate, its tokens' expiry, and the
``Date`` header the simulator sends: a client whose clock is off, seen from
the other side. Tokens are random strings that live ``token_lifetime`` seconds.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["GRANT_TYPE", "REQUIRED_SCOPE", "IssuedToken", "MaskinportenStandIn", "TokenRefused"]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REQUIRED_SCOPE = "ks:fiks"
MAX_ASSERTION_LIFETIME = 120
# Clocks differ a little; Maskinporten allows some skew too.
CLOCK_SKEW = 10
_REQUIRED_CLAIMS = ("aud", "iss", "scope", "iat", "exp", "jti")


class TokenRefused(Exception):
    """A token request the stand-in turns down, with its OAuth error code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class IssuedToken:
    """An access token the stand-in issued, and to whom."""

    token: str = field(repr=False)
    client_id: str
    scope: str
    expires_at: float
    """Wall-clock expiry, on the stand-in's clock (:meth:`MaskinportenStandIn.now`)."""
    jti: str


class MaskinportenStandIn:
    """Checks assertions and issues tokens; thread-safe.

    ``issuer`` is the URL with its trailing slash (every assertion's ``aud``).
    ``client_id``, if given, is the only ``iss`` accepted.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str | None,
        token_lifetime: int = 120,
        trusted_certificates: Iterable[x509.Certificate] | None = None,
        allowed_scopes: Iterable[str] | None = None,
        clock_offset: float = 0.0,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.token_lifetime = token_lifetime
        self.allowed_scopes: frozenset[str] | None = None if allowed_scopes is None else frozenset(allowed_scopes)
        self.clock_offset = clock_offset
        self._trusted = (
            None if trusted_certificates is None else {c.fingerprint(hashes.SHA256()) for c in trusted_certificates}
        )
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}
        self._jtis: set[str] = set()
        self.refusals: list[str] = []

    def now(self) -> float:
        """The stand-in's clock (``time.time()`` plus ``clock_offset``)."""
        return time.time() + self.clock_offset

    @property
    def issued(self) -> list[IssuedToken]:
        """Every token issued so far (revoked ones included)."""
        with self._lock:
            return list(self._tokens.values())

    def token_response(self, *, content_type: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        """The token endpoint: (status, JSON body)."""
        try:
            issued = self._grant(content_type, body)
        except TokenRefused as exc:
            with self._lock:
                self.refusals.append(f"{exc.error}: {exc.description}")
            return 400, exc.body()
        return 200, {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": issued.scope,
        }

    def check(self, token: str) -> IssuedToken | None:
        """The issued token ``token`` if it is live, else None."""
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or self.now() >= issued.expires_at:
            return None
        return issued

    def revoke_all(self) -> None:
        """Make every issued token invalid (clients must fetch new ones)."""
        with self._lock:
            self._tokens = {t: IssuedToken(i.token, i.client_id, i.scope, 0.0, i.jti) for t, i in self._tokens.items()}

    def _grant(self, content_type: str | None, body: bytes) -> IssuedToken:
        if not (content_type or "").lower().startswith("application/x-www-form-urlencoded"):
            raise TokenRefused(
                "invalid_request", f"expected a form (application/x-www-form-urlencoded), got {content_type!r}"
            )
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True, keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            raise TokenRefused("invalid_request", "the body is not a valid form") from None
        if form.get("grant_type") != [GRANT_TYPE]:
            raise TokenRefused("unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
        assertions = form.get("assertion", [])
        if len(assertions) != 1:
            raise TokenRefused("invalid_request", "give exactly one assertion")
        claims = self._verify(assertions[0])
        token = secrets.token_urlsafe(32)
        issued = IssuedToken(
            token=token,
            client_id=str(claims["iss"]),
            scope=str(claims["scope"]),
            expires_at=self.now() + self.token_lifetime,
            jti=str(claims["jti"]),
        )
        with self._lock:
            self._tokens[token] = issued
        return issued

    def _verify(self, assertion: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError as exc:
            raise TokenRefused("invalid_grant", f"the assertion is not a JWT: {exc}") from None
        if header.get("alg") != "RS256":
            raise TokenRefused("invalid_grant", f"alg must be RS256, got {header.get('alg')!r}")
        key = self._certificate(header.get("x5c")).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise TokenRefused("invalid_grant", "the certificate in x5c must have an RSA key for RS256")
        try:
            # exp and iat are checked below against the stand-in's clock, which may be set off this machine's.
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=self.issuer,
                options={"require": list(_REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            raise TokenRefused("invalid_grant", f"aud must be the issuer {self.issuer!r}") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRefused("invalid_grant", f"the assertion is not valid: {exc}") from None
        if self.client_id is not None and claims["iss"] != self.client_id:
            raise TokenRefused("invalid_client", f"unknown client {claims['iss']!r}")
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise TokenRefused("invalid_grant", "iat and exp must be whole seconds")
        now = self.now()
        if iat > now + CLOCK_SKEW:
            raise TokenRefused(
                "invalid_grant", f"iat is in the future ({iat - now:.0f} s ahead of Maskinporten's clock)"
            )
        if exp <= now - CLOCK_SKEW:
            raise TokenRefused(
                "invalid_grant", f"the assertion expired ({now - exp:.0f} s ago by Maskinporten's clock)"
            )
        if not 0 < exp - iat <= MAX_ASSERTION_LIFETIME:
            raise TokenRefused("invalid_grant", f"exp - iat must be 1..{MAX_ASSERTION_LIFETIME} s, got {exp - iat}")
        scopes = str(claims["scope"]).split()
        if self.allowed_scopes is not None and (lacking := [s for s in scopes if s not in self.allowed_scopes]):
            raise TokenRefused("invalid_scope", f"the client has not been granted the scope {' '.join(lacking)!r}")
        if REQUIRED_SCOPE not in scopes:
            raise TokenRefused("invalid_scope", f"scope must include {REQUIRED_SCOPE!r}, got {claims['scope']!r}")
        jti = str(claims["jti"])
        with self._lock:
            if jti in self._jtis:
                raise TokenRefused("invalid_grant", f"jti {jti!r} was used before")
            self._jtis.add(jti)
        return claims

    def _certificate(self, x5c: object) -> x509.Certificate:
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise TokenRefused("invalid_grant", "the header must carry the certificate chain in x5c")
        try:
            # Standard base64 (RFC 7515 §4.1.6); validate=True refuses the URL-safe alphabet.
            certificate = x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
        except (binascii.Error, ValueError):
            raise TokenRefused("invalid_grant", "x5c[0] is not a standard-base64 DER certificate") from None
        now = datetime.fromtimestamp(self.now(), UTC)
        if now > certificate.not_valid_after_utc:
            raise TokenRefused(
                "invalid_client",
                f"the certificate in x5c expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            )
        if now < certificate.not_valid_before_utc:
            raise TokenRefused(
                "invalid_client",
                f"the certificate in x5c is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            )
        if self._trusted is not None and certificate.fingerprint(hashes.SHA256()) not in self._trusted:
            raise TokenRefused("invalid_client", "the certificate in x5c is not registered for this client")
        return certificate
