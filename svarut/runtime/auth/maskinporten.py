"""Access tokens from Maskinporten's JWT bearer grant, cached until shortly before they expire.

The grant: sign an assertion (RS256; header ``alg`` plus ``x5c`` or ``kid``;
claims ``aud``, ``iss``, ``scope``, ``iat``, ``exp``, ``jti`` and, when
configured, ``resource`` and ``consumer_org``), POST it as
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...`` to
the token endpoint, and read ``access_token``, ``expires_in`` and ``scope``.

:class:`MaskinportenTokenProvider` caches one token per (scopes, resource,
consumer_org). Any number of threads, tasks and event loops asking at once
with nothing cached cause one token request; the rest wait for it. One provider
may serve clients on successive event loops (``asyncio.run`` per batch) and in
several threads at once: the token request always goes through the provider's
one sync HTTP client, from a worker thread when the caller is async, so no
connection is tied to an event loop that may since have closed. A token request
is rare (once per token lifetime), so the thread hop costs nothing that
matters; a cached token is returned without one.
:meth:`~MaskinportenTokenProvider.close` / ``aclose`` release the HTTP client.
Each token request (not a cached token) is reported to the instrumentation
(:mod:`svarut.runtime.instrumentation`): a child span of the send that needed it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import anyio.to_thread
import httpx2

from svarut.runtime import instrumentation
from svarut.runtime.auth.environments import environment, normalize_issuer, require_secure_url, token_endpoint_of
from svarut.runtime.auth.keystore import Keystore
from svarut.runtime.errors import MaskinportenConnectionError, MaskinportenTokenError, json_fields
from svarut.runtime.errors import excerpt as errors_excerpt
from svarut.runtime.http_clients import require_http_client

log = logging.getLogger("svarut.auth")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_SCOPES = ("ks:fiks",)
#: Maskinporten refuses assertions that live longer than this (seconds).
MAX_ASSERTION_LIFETIME = 120
DEFAULT_REFRESH_MARGIN = 30.0
DEFAULT_TOKEN_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
_ERROR_EXCERPT = 500

CacheKey = tuple[tuple[str, ...], str | None, str | None]


@dataclass(frozen=True, kw_only=True)
class MaskinportenConfig:
    """Who asks Maskinporten for tokens, for what, and where.

    ``issuer`` (the assertion's ``aud``) and ``token_endpoint`` default to the
    Maskinporten of the SvarUt environment in use; override them for a local
    stand-in. The token endpoint defaults to the issuer's ``/token``.
    ``scopes`` may be a list or one space-separated string.

    ``refresh_margin``: a cached token is replaced this many seconds before it
    expires (at most half its lifetime, so short-lived tokens are still reused).
    ``insecure_disable_tls_verification`` turns off certificate checks for the
    token requests only.

    Args:
        client_id: The Maskinporten client (integration) id.
        keystore: The :class:`Keystore` whose key signs the assertions.
        scopes: The scopes to ask for (default ``ks:fiks``).
        resource: The optional ``resource`` claim (audience-restricted tokens).
        consumer_org: The optional ``consumer_org`` claim (acting for another
            organisation, when delegated).
        issuer: Maskinporten's issuer URL (default: the environment's).
        token_endpoint: Its token endpoint (default: the issuer's ``/token``).
        assertion_lifetime: Seconds each signed assertion is valid (at most 120).
        refresh_margin: See above.
        timeout: The token requests' timeout.
        insecure_disable_tls_verification: See above.

    Raises:
        ValueError: An empty ``client_id`` or ``scopes``, an out-of-range
            lifetime or margin, or an issuer that is not https.
        TypeError: ``keystore`` is not a :class:`Keystore`.

    >>> config = MaskinportenConfig(  # doctest: +SKIP
    ...     client_id="...", keystore=Keystore.load("virksomhet.p12", password="...")
    ... )
    """

    client_id: str
    keystore: Keystore
    scopes: Sequence[str] = DEFAULT_SCOPES
    resource: str | None = None
    consumer_org: str | None = None
    issuer: str | None = None
    token_endpoint: str | None = None
    assertion_lifetime: int = MAX_ASSERTION_LIFETIME
    refresh_margin: float = DEFAULT_REFRESH_MARGIN
    timeout: float | httpx2.Timeout = field(default_factory=lambda: DEFAULT_TOKEN_TIMEOUT, repr=False, hash=False)
    insecure_disable_tls_verification: bool = False

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("MaskinportenConfig.client_id must not be empty")
        if not isinstance(self.keystore, Keystore):
            raise TypeError(
                "MaskinportenConfig.keystore must be a svarut.auth.Keystore, e.g. "
                "Keystore.load('virksomhet.p12', password=...)"
            )
        scopes = tuple(self.scopes.split() if isinstance(self.scopes, str) else self.scopes)
        if not scopes or not all(isinstance(s, str) and s and not any(c.isspace() for c in s) for s in scopes):
            raise ValueError(f"MaskinportenConfig.scopes must be non-empty scope names, got {self.scopes!r}")
        object.__setattr__(self, "scopes", scopes)
        if not 0 < self.assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ValueError(
                f"MaskinportenConfig.assertion_lifetime must be 1..{MAX_ASSERTION_LIFETIME} seconds, "
                f"got {self.assertion_lifetime}"
            )
        if self.refresh_margin < 0:
            raise ValueError("MaskinportenConfig.refresh_margin must not be negative")
        if self.issuer is not None:
            require_secure_url(self.issuer, what="the Maskinporten issuer")
            object.__setattr__(self, "issuer", normalize_issuer(self.issuer))
        if self.token_endpoint is not None:
            require_secure_url(self.token_endpoint, what="the Maskinporten token endpoint")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MaskinportenConfig:
        """The configuration the ``MASKINPORTEN_*`` variables describe.

        ``MASKINPORTEN_CLIENT_ID`` and ``MASKINPORTEN_KEYSTORE`` are required;
        the others are optional. See :meth:`svarut.SvarUtClient.from_env` for
        the list.

        Args:
            environ: The variables, such as ``os.environ``.

        Returns:
            The configuration.

        Raises:
            ValueError: A required variable is missing, or a value is invalid.
            KeystoreError: The keystore cannot be read.
        """
        missing = [name for name in ("MASKINPORTEN_CLIENT_ID", "MASKINPORTEN_KEYSTORE") if not environ.get(name)]
        if missing:
            raise ValueError(f"missing environment variable{'s' * (len(missing) > 1)}: {', '.join(missing)}")
        keystore_path = environ["MASKINPORTEN_KEYSTORE"]
        password = environ.get("MASKINPORTEN_KEYSTORE_PASSWORD") or None
        kid = environ.get("MASKINPORTEN_KID")
        certificate = environ.get("MASKINPORTEN_CERTIFICATE")
        if kid:
            keystore = Keystore.from_kid(key=keystore_path, kid=kid, password=password)
        elif certificate:
            keystore = Keystore.from_pem(key=keystore_path, certificate=certificate, password=password)
        else:
            keystore = Keystore.load(keystore_path, password=password)
        optional: dict[str, Any] = {}
        if environ.get("MASKINPORTEN_SCOPES"):
            optional["scopes"] = environ["MASKINPORTEN_SCOPES"]
        for variable, name in (
            ("MASKINPORTEN_RESOURCE", "resource"),
            ("MASKINPORTEN_CONSUMER_ORG", "consumer_org"),
            ("MASKINPORTEN_ISSUER", "issuer"),
            ("MASKINPORTEN_TOKEN_ENDPOINT", "token_endpoint"),
        ):
            if environ.get(variable):
                optional[name] = environ[variable]
        return cls(client_id=environ["MASKINPORTEN_CLIENT_ID"], keystore=keystore, **optional)

    def for_environment(self, name: str) -> MaskinportenConfig:
        """This configuration with the issuer and token endpoint of environment
        ``name`` filled in where they were not given.

        Args:
            name: ``"test"`` or ``"prod"``.

        Returns:
            A new configuration; this one is unchanged.

        Raises:
            ValueError: An unknown environment.
        """
        issuer = self.issuer or environment(name).maskinporten_issuer
        return replace(self, issuer=issuer, token_endpoint=self.token_endpoint or token_endpoint_of(issuer))


@dataclass(frozen=True)
class AccessToken:
    """A Maskinporten access token; its repr leaves the token out."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str | None = None


@dataclass
class _Entry:
    token: AccessToken
    refresh_at: float


class _Flight:
    """The token requests for one cache key: one at a time, under ``lock``.

    Callers that queued behind a request that failed get its error rather than
    trying again one after another: with Maskinporten down, a hundred waiting
    sends would otherwise each wait out their own timeout in turn.
    ``done`` and ``error`` change only while ``lock`` is held.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = 0
        self.error: Exception | None = None

    def raise_failure_since(self, seen: int) -> None:
        if self.done != seen and self.error is not None:
            raise self.error

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        # A cancelled request leaves no error behind: the next waiter tries itself.
        self.error = None
        try:
            yield
        except Exception as exc:
            self.error = exc
            raise
        finally:
            self.done += 1


class MaskinportenTokenProvider:
    """A :class:`~svarut.runtime.auth.tokens.TokenProvider` backed by Maskinporten.

    >>> provider = MaskinportenTokenProvider(config, environment="test")  # doctest: +SKIP
    >>> provider.get_token()  # doctest: +SKIP

    ``environment`` supplies the issuer when ``config`` does not name one.
    ``http_client`` replaces the client the provider would create for its
    token requests, sync and async alike (it is then not closed by it).
    ``clock`` is the monotonic clock the cache runs on.

    Args:
        config: The :class:`MaskinportenConfig`.
        environment: ``"test"`` or ``"prod"``, for the issuer.
        http_client: Your own ``httpx2.Client`` for the token requests.
        clock: The clock (for tests).

    Raises:
        ValueError: No issuer: neither in ``config`` nor by ``environment``.
    """

    def __init__(
        self,
        config: MaskinportenConfig,
        *,
        environment: str | None = None,
        http_client: httpx2.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_http_client(http_client, httpx2.Client, owner=type(self).__name__)
        if environment is not None:
            config = config.for_environment(environment)
        if config.issuer is None:
            raise ValueError("give MaskinportenConfig(issuer=...) or environment='test'/'prod'")
        self.config = config
        self.issuer: str = config.issuer
        self.token_endpoint: str = config.token_endpoint or token_endpoint_of(config.issuer)
        self._clock = clock
        self._verify = not config.insecure_disable_tls_verification
        self._timeout = config.timeout if isinstance(config.timeout, httpx2.Timeout) else httpx2.Timeout(config.timeout)
        self._http = http_client
        self._owns_http = http_client is None
        # _state guards the dicts below; it is never held across I/O.
        self._state = threading.Lock()
        self._cache: dict[CacheKey, _Entry] = {}
        self._flights: dict[CacheKey, _Flight] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self.config.client_id!r}, token_endpoint={self.token_endpoint!r}, "
            f"scopes={' '.join(self.config.scopes)!r})"
        )

    # --- the TokenProvider interface ---------------------------------------

    def get_token(self) -> str:
        """The bearer token for the configured scopes (see :meth:`get_access_token`)."""
        return self.get_access_token().access_token

    async def aget_token(self) -> str:
        """The async :meth:`get_token`."""
        return (await self.aget_access_token()).access_token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (SvarUt rejected it), so the next request fetches a fresh one.

        Args:
            token: The rejected access token.
        """
        with self._state:
            for key, entry in list(self._cache.items()):
                if entry.token.access_token == token:
                    del self._cache[key]

    # --- tokens ---------------------------------------------------------------

    def get_access_token(
        self, *, scopes: Sequence[str] | None = None, resource: str | None = None, consumer_org: str | None = None
    ) -> AccessToken:
        """A token for ``scopes`` (default: the configured ones), from the cache when it is fresh.

        Threads asking at once share one token request.

        Args:
            scopes: The scopes (default: the configuration's).
            resource: The ``resource`` claim (default: the configuration's).
            consumer_org: The ``consumer_org`` claim (default: the configuration's).

        Returns:
            The :class:`AccessToken`, with its scope and expiry.

        Raises:
            MaskinportenConnectionError: Maskinporten could not be reached.
            MaskinportenTokenError: Maskinporten refused (``invalid_client``,
                ``invalid_scope``, ...) or answered with no usable token.
        """
        key = self._key(scopes, resource, consumer_org)
        if (cached := self._cached(key)) is not None:
            return cached
        flight = self._flight(key)
        seen = flight.done
        with flight.lock:
            if (cached := self._cached(key)) is not None:
                return cached
            flight.raise_failure_since(seen)
            # The instrumentation sees real token requests only: a token from the cache costs nothing to report.
            with flight.recording(), instrumentation.current().token_fetch():
                started = self._clock()
                try:
                    response = self._sync_http().post(self.token_endpoint, data=self._form(key))
                except httpx2.TransportError as exc:
                    raise self._connection_error(exc) from exc
                return self._store(key, self._parse(response, key), started)

    async def aget_access_token(
        self, *, scopes: Sequence[str] | None = None, resource: str | None = None, consumer_org: str | None = None
    ) -> AccessToken:
        """The async :meth:`get_access_token`: the same cache, and the same one
        token request for every thread and event loop, run in a worker thread.
        The arguments, result and errors are :meth:`get_access_token`'s."""
        if (cached := self._cached(self._key(scopes, resource, consumer_org))) is not None:
            return cached
        fetch = functools.partial(self.get_access_token, scopes=scopes, resource=resource, consumer_org=consumer_org)
        return await anyio.to_thread.run_sync(fetch)

    def assertion(
        self, *, scopes: Sequence[str] | None = None, resource: str | None = None, consumer_org: str | None = None
    ) -> str:
        """A fresh signed assertion, as the token request would send it (for
        debugging a refused token request: decode it at a JWT debugger).

        Args:
            scopes: The scopes (default: the configuration's).
            resource: The ``resource`` claim.
            consumer_org: The ``consumer_org`` claim.

        Returns:
            The signed JWT.
        """
        return self._sign(self._key(scopes, resource, consumer_org))

    # --- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        """Close the sync HTTP client the provider created, if any."""
        if self._owns_http and self._http is not None:
            self._http.close()

    async def aclose(self) -> None:
        """The same as :meth:`close`, for ``async with``."""
        self.close()

    def __enter__(self) -> MaskinportenTokenProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MaskinportenTokenProvider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- internals ----------------------------------------------------------------

    def _key(self, scopes: Sequence[str] | None, resource: str | None, consumer_org: str | None) -> CacheKey:
        wanted = tuple(scopes.split() if isinstance(scopes, str) else scopes) if scopes is not None else None
        return (
            wanted or tuple(self.config.scopes),
            resource if resource is not None else self.config.resource,
            consumer_org if consumer_org is not None else self.config.consumer_org,
        )

    def _cached(self, key: CacheKey) -> AccessToken | None:
        with self._state:
            entry = self._cache.get(key)
            if entry is not None and self._clock() < entry.refresh_at:
                return entry.token
            return None

    def _store(self, key: CacheKey, token: AccessToken, started: float) -> AccessToken:
        # The clock was read before the request, so the token's expiry is never overestimated.
        margin = min(self.config.refresh_margin, token.expires_in / 2)
        with self._state:
            self._cache[key] = _Entry(token, started + token.expires_in - margin)
        log.debug(
            "Maskinporten token for scope %r from %s, expires in %s s",
            token.scope or " ".join(key[0]),
            self.token_endpoint,
            token.expires_in,
        )
        return token

    def _flight(self, key: CacheKey) -> _Flight:
        with self._state:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
            return flight

    def _sign(self, key: CacheKey) -> str:
        scopes, resource, consumer_org = key
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": self.issuer,
            "iss": self.config.client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + self.config.assertion_lifetime,
            "jti": str(uuid.uuid4()),
        }
        if resource is not None:
            claims["resource"] = resource
        if consumer_org is not None:
            claims["consumer_org"] = consumer_org
        return self.config.keystore.sign(claims)

    def _form(self, key: CacheKey) -> dict[str, str]:
        return {"grant_type": GRANT_TYPE, "assertion": self._sign(key)}

    def _client_options(self) -> dict[str, Any]:
        if not self._verify:
            log.warning("TLS certificate verification is DISABLED for Maskinporten at %s", self.token_endpoint)
        return {
            "timeout": self._timeout,
            "verify": self._verify,
            "follow_redirects": False,
            "headers": {"Accept": "application/json", "User-Agent": "fiks-svarut-python"},
        }

    def _sync_http(self) -> httpx2.Client:
        with self._state:
            if self._http is None:
                self._http = httpx2.Client(**self._client_options())
            return self._http

    def _connection_error(self, exc: httpx2.TransportError) -> MaskinportenConnectionError:
        what = "timed out" if isinstance(exc, httpx2.TimeoutException) else f"failed: {type(exc).__name__}: {exc}"
        return MaskinportenConnectionError(f"the token request to Maskinporten at {self.token_endpoint} {what}")

    def _parse(self, response: httpx2.Response, key: CacheKey) -> AccessToken:
        status = f"{response.status_code} {response.reason_phrase}".rstrip()
        asked = f"client_id {self.config.client_id!r}, scope {' '.join(key[0])!r}"
        fields = json_fields(response.content)
        if not response.is_success:
            error = fields.get("error") if isinstance(fields.get("error"), str) else None
            description = fields.get("error_description")
            description = description if isinstance(description, str) else None
            excerpt = errors_excerpt(response.content, _ERROR_EXCERPT, one_line=True, count=False)
            if error:
                reason = f"{error}" + (f": {description}" if description else "")
                message = f"Maskinporten refused the token request ({status}, {asked}): {reason}"
            else:
                body = excerpt or "(empty body)"
                message = f"Maskinporten answered the token request with {status} ({asked}): {body}"
            raise MaskinportenTokenError(
                message,
                status_code=response.status_code,
                error=error,
                error_description=description,
                raw_body=excerpt,
            )
        # A 2xx body may hold a token: never quote it.
        token = fields.get("access_token")
        expires_in = fields.get("expires_in")
        if not isinstance(token, str) or not token:
            problem = "is not a JSON object" if not fields else "has no access_token"
            raise MaskinportenTokenError(
                f"Maskinporten's token response ({status}) {problem}", status_code=response.status_code
            )
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
            raise MaskinportenTokenError(
                f"Maskinporten's token response ({status}) has no valid expires_in", status_code=response.status_code
            )
        scope = fields.get("scope")
        scope = scope if isinstance(scope, str) else None
        return AccessToken(access_token=token, expires_in=int(expires_in), scope=scope)
