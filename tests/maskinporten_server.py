"""Local stand-ins for Maskinporten and SvarUt, real HTTP servers on 127.0.0.1.

:class:`MaskinportenStandIn` checks a JWT bearer grant the way Maskinporten
does: the form, the assertion's header (``alg`` RS256 and ``x5c`` or ``kid``,
nothing else), its signature against the certificate in ``x5c`` (which a
registered CA must have issued) or the key registered for ``kid``, and every
claim. It issues short-lived random tokens, and can be told to fail.

:class:`SvarUtStandIn` accepts sends and status searches only with a live
token from the Maskinporten stand-in and the right ``IntegrasjonId`` and
``IntegrasjonPassord``, and can be told to answer 401 regardless.

Both record what they saw, and keep serving after a bad request, so a test
asserts on the records (``rejections`` must stay empty when the client is right).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REQUIRED_CLAIMS = {"aud", "iss", "scope", "iat", "exp", "jti"}
OPTIONAL_CLAIMS = {"resource", "consumer_org"}
MAX_SKEW = 10


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


def _json(status: int, value: Any) -> Response:
    return Response(status, json.dumps(value).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def do_POST(self) -> None:
        body = self._body()
        app: Any = getattr(self.server, "app")  # noqa: B009
        # Header names are case-insensitive: the apps look them up in lower case.
        self._send(app.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body))


@contextmanager
def serve(app: Any, *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run ``app`` (anything with ``handle(path, headers, body) -> Response``)
    on 127.0.0.1; yields its base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.app = app  # type: ignore[attr-defined]
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- Maskinporten ---------------------------------------------------------------


@dataclass
class Grant:
    """One accepted grant: the assertion's header and claims, and the token issued."""

    header: dict[str, Any]
    claims: dict[str, Any]
    assertion: str
    token: str


@dataclass
class MaskinportenStandIn:
    issuer: str = ""  # set once the server runs: the URL with a trailing slash
    trusted_ca: list[x509.Certificate] = field(default_factory=list)
    clients: dict[str, set[str]] = field(default_factory=dict)  # client_id -> allowed scopes
    kids: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    expires_in: int = 120
    delay: float = 0.0
    failures: list[Response] = field(default_factory=list)

    requests: int = 0
    grants: list[Grant] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> wall-clock expiry
    _jtis: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "token"

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self.tokens.get(token)
        return expiry is not None and time.time() < expiry

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            self.requests += 1
            failure = self.failures.pop(0) if self.failures else None
        if self.delay:
            time.sleep(self.delay)
        if failure is not None:
            return failure
        if path != "/token":
            return _json(404, {"error": "not_found"})
        try:
            grant = self._verify(headers, body)
        except _Rejected as exc:
            with self._lock:
                self.rejections.append(str(exc))
            return _json(400, {"error": exc.error, "error_description": str(exc)})
        with self._lock:
            self.grants.append(grant)
            self.tokens[grant.token] = time.time() + self.expires_in
        return _json(200, {"access_token": grant.token, "expires_in": self.expires_in, "scope": grant.claims["scope"]})

    def _verify(self, headers: dict[str, str], body: bytes) -> Grant:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise _Rejected("invalid_request", f"form expected, got {headers.get('content-type')!r}")
        form = parse_qs(body.decode(), strict_parsing=True, keep_blank_values=True)
        if set(form) != {"grant_type", "assertion"} or any(len(v) != 1 for v in form.values()):
            raise _Rejected("invalid_request", f"form must hold grant_type and assertion once, got {sorted(form)}")
        if form["grant_type"][0] != GRANT_TYPE:
            raise _Rejected("unsupported_grant_type", form["grant_type"][0])
        assertion = form["assertion"][0]
        header = jwt.get_unverified_header(assertion)
        key = self._key(header)
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=self.issuer,
                leeway=MAX_SKEW,
                options={"require": sorted(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidTokenError as exc:
            raise _Rejected("invalid_grant", f"assertion rejected: {type(exc).__name__}: {exc}") from None
        self._check_claims(claims)
        token = f"mp-{len(self.grants)}-{secrets.token_urlsafe(24)}"
        return Grant(header, claims, assertion, token)

    def _key(self, header: dict[str, Any]) -> Any:
        if header.get("alg") != "RS256":
            raise _Rejected("invalid_grant", f"alg must be RS256, got {header.get('alg')!r}")
        if set(header) == {"alg", "kid"}:
            key = self.kids.get(header["kid"])
            if key is None:
                raise _Rejected("invalid_grant", f"unknown kid {header['kid']!r}")
            return key
        if set(header) != {"alg", "x5c"}:
            raise _Rejected("invalid_grant", f"header must be alg + x5c or alg + kid, got {sorted(header)}")
        chain = header["x5c"]
        if not isinstance(chain, list) or not chain:
            raise _Rejected("invalid_grant", "x5c must be a non-empty list")
        try:
            # Standard base64 (RFC 7515 §4.1.6): validate=True refuses the URL-safe alphabet.
            certificates = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
        except (binascii.Error, ValueError, TypeError) as exc:
            raise _Rejected("invalid_grant", f"x5c is not standard-base64 DER certificates: {exc}") from None
        leaf = certificates[0]
        now = datetime.datetime.now(datetime.UTC)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise _Rejected("invalid_grant", "certificate is not valid now")
        for ca in self.trusted_ca:
            try:
                leaf.verify_directly_issued_by(ca)
            except (InvalidSignature, ValueError, TypeError):
                continue
            return leaf.public_key()
        raise _Rejected("invalid_grant", "certificate is not issued by a trusted CA")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        extra = set(claims) - REQUIRED_CLAIMS - OPTIONAL_CLAIMS
        if extra:
            raise _Rejected("invalid_grant", f"unexpected claims {sorted(extra)}")
        allowed = self.clients.get(claims["iss"])
        if allowed is None:
            raise _Rejected("invalid_client", f"unknown client {claims['iss']!r}")
        scopes = claims["scope"].split(" ")
        if not scopes or not set(scopes) <= allowed:
            raise _Rejected("invalid_scope", f"scope {claims['scope']!r} not allowed")
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise _Rejected("invalid_grant", "iat and exp must be integers")
        if abs(iat - time.time()) > MAX_SKEW:
            raise _Rejected("invalid_grant", "iat too far from now")
        if not 0 < exp - iat <= 120:
            raise _Rejected("invalid_grant", f"exp - iat must be 1..120 s, got {exp - iat}")
        jti = claims["jti"]
        if uuid.UUID(jti).version != 4:
            raise _Rejected("invalid_grant", "jti must be a uuid4")
        with self._lock:
            if jti in self._jtis:
                raise _Rejected("invalid_grant", f"jti {jti} reused")
            self._jtis.add(jti)


class _Rejected(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error


# --- SvarUt -----------------------------------------------------------------------


@dataclass
class SvarUtCall:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def token(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


@dataclass
class SvarUtStandIn:
    maskinporten: MaskinportenStandIn
    integrasjon_id: str
    integrasjon_passord: str
    reject_next: int = 0
    calls: list[SvarUtCall] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            self.calls.append(SvarUtCall(path, headers, body))
            forced = self.reject_next > 0
            self.reject_next -= forced
        problem = self._problem(headers)
        if forced or problem:
            if problem:
                with self._lock:
                    self.rejections.append(problem)
            return _json(401, {"errorId": str(uuid.uuid4()), "errorCode": "UNAUTHORIZED", "message": "Unauthorized"})
        if path.endswith("/forsendelser/status/sok"):
            ids = json.loads(body)["id"]
            now = datetime.datetime.now(datetime.UTC).isoformat()
            return _json(200, {"statuser": [{"id": i, "sisteStatusEndring": now, "status": "MOTTATT"} for i in ids]})
        if "/forsendelser/" in path:
            return _json(200, {"id": str(uuid.uuid4())})
        return _json(404, {"message": "no such path"})

    def _problem(self, headers: dict[str, str]) -> str | None:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return "no bearer token"
        if not self.maskinporten.valid(authorization.removeprefix("Bearer ")):
            return "unknown or expired token"
        if headers.get("integrasjonid") != self.integrasjon_id:
            return f"wrong IntegrasjonId {headers.get('integrasjonid')!r}"
        if headers.get("integrasjonpassord") != self.integrasjon_passord:
            return "wrong IntegrasjonPassord"
        return None
