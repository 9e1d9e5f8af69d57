"""The public clients: the generated operations plus the hand-written layer
that knows SvarUt's domain, which the generator does not: the pre-send rules,
which operation is safe to repeat, status lookups in bulk and waiting for a
status, and the constructors that wire up authentication for an environment."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeAlias, TypeGuard, TypeVar
from uuid import UUID

from pydantic import BaseModel

from svarut import statuses, utfall
from svarut._status_search import STATUS_CHUNK as STATUS_CHUNK
from svarut._status_search import TERMINAL_STATUSES as TERMINAL_STATUSES
from svarut._status_search import Statuser as Statuser
from svarut._status_search import _chunks, _ids, _only, _ordered, _Waiter
from svarut.generated import ENDPOINTS, AsyncOperations, SyncOperations, models
from svarut.runtime.base_client import DEFAULT, DEFAULT_LOOKUP, DefaultTimeout, as_timeout
from svarut.runtime.client import (
    DEFAULT_RETRY,
    NOT_GIVEN,
    BaseClient,
    Endpoint,
    NotGiven,
    PreSendCheck,
    TimeoutTypes,
)
from svarut.runtime.errors import (
    APIConnectionError,
    ConfigurationError,
    ForsendelseValidationError,
    Problem,
)
from svarut.runtime.http_clients import require_http_client
from svarut.runtime.request_types import renamed_keyword
from svarut.runtime.retry import RetryPolicy

if TYPE_CHECKING:
    # httpx2 is imported when the first request is made, not with the client.
    import httpx2

    # Specs without a status search (the first v3 spec) have no StatusName, so only the type checker reads it.
    from svarut.generated import StatusName

    # Maskinporten brings pyjwt and cryptography: imported when a client uses it.
    from svarut.runtime.auth import MaskinportenConfig, MaskinportenTokenProvider, SvarUtAuth, TokenProvider
    from svarut.runtime.auth.environments import EnvironmentName
    from svarut.runtime.kryptering import Kryptering
    from svarut.runtime.request_types import PreparedSend
    from svarut.runtime.validation import ForsendelseRules

    #: A status ``vent_pa_status`` can wait for: a member of the specs' status
    #: enum, or its name (a type checker rejects a name the specs do not have).
    WantedStatus: TypeAlias = models.Status | StatusName

log = logging.getLogger("svarut")

# The status search and the eksternRef lookup only read, so repeating them is harmless.
SAFE_TO_REPEAT = frozenset({statuses.STATUS_OPERATION, utfall.LOOKUP_OPERATION, utfall.METADATA_OPERATION})


def _checks(*, environment: EnvironmentName, validate: bool, checks: Sequence[PreSendCheck]) -> list[PreSendCheck]:
    """The pre-send rules (unless ``validate`` is off), then the caller's own checks."""
    rules: list[PreSendCheck] = [_Rules(environment)] if validate else []
    return [*rules, *checks]


class _Rules:
    """A client's pre-send rules, :class:`ForsendelseRules` for its
    environment, made at its first check: the rules take a while to import,
    which a program that makes a client at start-up and sends later need not
    wait for then."""

    def __init__(self, environment: EnvironmentName) -> None:
        if environment not in ("test", "prod"):  # as ForsendelseRules says it, when the client is made
            raise ValueError(f"environment must be 'test' or 'prod', got {environment!r}")
        self._environment: EnvironmentName = environment
        self._rules: ForsendelseRules | None = None

    def __call__(self, send: PreparedSend) -> None:
        rules = self._rules
        if rules is None:
            from svarut.runtime.validation import ForsendelseRules

            rules = self._rules = ForsendelseRules(environment=self._environment)
        rules(send)

    def __repr__(self) -> str:
        return f"ForsendelseRules(environment={self._environment!r})"


def _environment(value: str) -> EnvironmentName:
    """``SVARUT_ENVIRONMENT`` as the name it must be."""
    if value == "test":
        return "test"
    if value == "prod":
        return "prod"
    raise ConfigurationError(f"SVARUT_ENVIRONMENT must be test or prod, got {value!r}")


def _authenticate(
    environment: EnvironmentName,
    *,
    integrasjon_id: UUID | str,
    integrasjon_passord: str,
    maskinporten: MaskinportenConfig | None,
    token_provider: TokenProvider | None,
    base_url: str | None,
    http_client: httpx2.Client | httpx2.AsyncClient | None = None,
) -> tuple[str, SvarUtAuth, MaskinportenTokenProvider | None]:
    """The base URL, the auth, and the token provider the client must close.
    A caller's ``httpx2.Client`` also carries the Maskinporten token requests."""
    from svarut.runtime.auth import MaskinportenTokenProvider, SvarUtAuth, environments

    env = environments.environment(environment)
    url = environments.require_secure_url(base_url or env.svarut_base_url, what="base_url")
    owned = None
    provider: TokenProvider
    if maskinporten is not None and token_provider is None:
        provider = owned = MaskinportenTokenProvider(
            maskinporten,
            environment=env.name,
            # Tokens are fetched with a sync client (in a worker thread for async
            # callers, so one token serves every thread and event loop): an
            # httpx2.AsyncClient cannot carry them.
            http_client=http_client if _is_sync_http_client(http_client) else None,
        )
    elif token_provider is not None and maskinporten is None:
        provider = token_provider
    else:
        raise ValueError("give either maskinporten=MaskinportenConfig(...) or token_provider=..., not both")
    auth = SvarUtAuth(integrasjon_id=integrasjon_id, integrasjon_passord=integrasjon_passord, token_provider=provider)
    return url, auth, owned


def _is_sync_http_client(http_client: object) -> TypeGuard[httpx2.Client]:
    if http_client is None:
        return False
    import httpx2

    return isinstance(http_client, httpx2.Client)


def _insecure_options(timeout: TimeoutTypes | DefaultTimeout, base_url: str) -> tuple[httpx2.Timeout, bool]:
    log.warning("TLS certificate verification is DISABLED for SvarUt at %s", base_url)
    return as_timeout(timeout), False


@dataclass(frozen=True)
class _EnvSettings:
    environment: EnvironmentName
    integrasjon_id: str
    integrasjon_passord: str = field(repr=False)
    base_url: str | None
    maskinporten: MaskinportenConfig


def _settings_from_env(environ: Mapping[str, str] | None, config: str | os.PathLike[str] | None = None) -> _EnvSettings:
    """The settings from ``environ`` over those in the config file ``config``
    (the ``svarut`` command's precedence, flags aside)."""
    from svarut import _config
    from svarut.runtime.auth import MaskinportenConfig

    env = os.environ if environ is None else environ
    if config is not None:
        env = _config.resolve(flags={}, config_path=Path(config), environ=env).values
    missing = [name for name in _config.REQUIRED if not env.get(name)]
    if missing and config is None:
        plural = "s" * (len(missing) > 1)
        raise ConfigurationError(f"missing environment variable{plural}: {', '.join(missing)}", missing=missing)
    if missing:
        raise _config.missing_error(missing)
    return _EnvSettings(
        environment=_environment(env["SVARUT_ENVIRONMENT"]),
        integrasjon_id=env["SVARUT_INTEGRASJON_ID"],
        integrasjon_passord=env["SVARUT_INTEGRASJON_PASSORD"],
        base_url=env.get("SVARUT_BASE_URL") or None,
        maskinporten=MaskinportenConfig.from_env(env),
    )


# The HTTP client type of a client: httpx2.Client for SvarUtClient, httpx2.AsyncClient for the async one.
# Strings: httpx2 is imported when the first request is made.
_H = TypeVar("_H", "httpx2.Client", "httpx2.AsyncClient")


class _SvarUtClientBase(BaseClient, Generic[_H]):
    """The constructors the sync and async clients share.

    Every option is spelled out (no ``**options``), so a misspelled one fails
    type checking and, at the latest, the call."""

    # The class of _H, by its name in httpx2 (imported at the first request).
    _http_type_name: ClassVar[Literal["Client", "AsyncClient"]]
    _owned_token_provider: MaskinportenTokenProvider | None = None

    def __init__(
        self,
        *,
        base_url: str,
        environment: EnvironmentName = "prod",
        validate: bool = True,
        checks: Sequence[PreSendCheck] = (),
        auth: httpx2.Auth | None = None,
        timeout: TimeoutTypes | DefaultTimeout = DEFAULT,
        lookup_timeout: TimeoutTypes | DefaultTimeout = DEFAULT_LOOKUP,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        generate_ekstern_referanse: bool = True,
        kryptering: Kryptering | None = None,
        http_client: _H | None = None,
    ) -> None:
        """``base_url``: SvarUt's API root. ``environment`` ("test" accepts
        synthetic test fødselsnumre). ``validate``: run the pre-send rules
        (:class:`~svarut.runtime.validation.ForsendelseRules`); ``checks``:
        your own, run after them. ``auth``: an ``httpx2.Auth`` for every SvarUt
        request. ``timeout``: for each send (default :data:`~svarut.DEFAULT_TIMEOUT`,
        16 minutes, KS's advice, 10 s to connect); ``lookup_timeout``: for each
        call that only reads, the status search and the eksternRef lookups
        (default :data:`~svarut.DEFAULT_LOOKUP_TIMEOUT`, 1 minute, 10 s to
        connect); a call's own ``timeout=`` overrides either. ``headers``: added to every request. ``retry``: a
        :class:`~svarut.runtime.retry.RetryPolicy`. ``generate_ekstern_referanse``
        (default on): give a forsendelse without an eksternReferanse one
        (``fiks-svarut-<uuid4>``), so an unknown outcome can be settled by
        :meth:`avklar_utfall`; False sends it without.
        ``kryptering``: a :class:`~svarut.kryptering.Kryptering` for
        ``kryptering=True`` sends (default: SvarUt's certificate, fetched).
        ``http_client``: your own ``httpx2.Client`` (``httpx2.AsyncClient`` for the
        async client), used for every request, the certificate fetch included;
        its proxies, TLS settings, limits and event hooks apply, and closing
        this client leaves it open."""
        super().__init__(  # type: ignore[call-arg]  # the next __init__ in the MRO is the sync or async loop's
            base_url=base_url,
            http_client=http_client,
            auth=auth,
            timeout=timeout,
            lookup_timeout=lookup_timeout,
            headers=headers,
            retry=retry,
            generate_ekstern_referanse=generate_ekstern_referanse,
            kryptering=kryptering,
            checks=_checks(environment=environment, validate=validate, checks=checks),
            safe_to_repeat=SAFE_TO_REPEAT,
        )

    @classmethod
    def _http_type(cls) -> type[_H]:
        import httpx2

        http_type: type[_H] = getattr(httpx2, cls._http_type_name)
        return http_type

    @classmethod
    def for_environment(
        cls,
        environment: EnvironmentName,
        *,
        integrasjon_id: UUID | str,
        integrasjon_passord: str,
        maskinporten: MaskinportenConfig | None = None,
        token_provider: TokenProvider | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes | DefaultTimeout = DEFAULT,
        lookup_timeout: TimeoutTypes | DefaultTimeout = DEFAULT_LOOKUP,
        insecure_disable_tls_verification: bool = False,
        validate: bool = True,
        checks: Sequence[PreSendCheck] = (),
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        generate_ekstern_referanse: bool = True,
        kryptering: Kryptering | None = None,
        http_client: _H | None = None,
    ) -> Self:
        """A client for SvarUt ``environment`` ("test" or "prod"), authenticated.

        Every request carries ``Authorization: Bearer <token>``,
        ``IntegrasjonId`` and ``IntegrasjonPassord``. The token comes from the
        Maskinporten of the same environment (test ↔ test.maskinporten.no, prod
        ↔ maskinporten.no) using ``maskinporten``, or from your own
        ``token_provider``; give one of the two.

        ``base_url`` overrides the environment's SvarUt URL, and the issuer and
        token endpoint in ``maskinporten`` override its Maskinporten.
        ``insecure_disable_tls_verification`` turns off certificate checks for
        the SvarUt requests only (Maskinporten has its own switch in
        :class:`MaskinportenConfig`). ``http_client`` (your own httpx2 client)
        carries the SvarUt requests and the certificate fetch, and, when it is
        an ``httpx2.Client``, the Maskinporten token requests (the async
        client's tokens come from the token provider's own sync client); it is
        left open when the client closes. The other
        options are the constructor's. Closing the client closes the token
        provider it created.

        Args:
            environment: ``"test"`` or ``"prod"``.
            integrasjon_id: The SvarUt integration's id (``IntegrasjonId``).
            integrasjon_passord: The integration's password (``IntegrasjonPassord``).
            maskinporten: A :class:`~svarut.auth.MaskinportenConfig` to get tokens with.
            token_provider: Your own :class:`~svarut.auth.TokenProvider`, instead.

        Returns:
            The client, ready to use (and to close).

        Raises:
            ValueError: An unknown ``environment``, neither or both of
                ``maskinporten`` and ``token_provider``, or
                ``insecure_disable_tls_verification`` with an ``http_client``.

        >>> client = SvarUtClient.for_environment(  # doctest: +SKIP
        ...     "test",
        ...     integrasjon_id="...",
        ...     integrasjon_passord="...",
        ...     maskinporten=MaskinportenConfig(
        ...         client_id="...", keystore=Keystore.load("virksomhet.p12", password="...")
        ...     ),
        ... )
        """
        require_http_client(http_client, cls._http_type_name, owner=cls.__name__)
        if http_client is not None and insecure_disable_tls_verification:
            raise ValueError(
                "insecure_disable_tls_verification=True with http_client=...: "
                "set verify= on your own http_client instead"
            )
        url, auth, owned = _authenticate(
            environment,
            integrasjon_id=integrasjon_id,
            integrasjon_passord=integrasjon_passord,
            maskinporten=maskinporten,
            token_provider=token_provider,
            base_url=base_url,
            http_client=http_client,
        )
        http = http_client
        if insecure_disable_tls_verification:
            http_timeout, verify = _insecure_options(timeout, url)
            http = cls._http_type()(timeout=http_timeout, follow_redirects=False, verify=verify)
        client = cls(
            base_url=url,
            auth=auth,
            timeout=timeout,
            lookup_timeout=lookup_timeout,
            http_client=http,
            environment=environment,
            validate=validate,
            checks=checks,
            headers=headers,
            retry=retry,
            generate_ekstern_referanse=generate_ekstern_referanse,
            kryptering=kryptering,
        )
        client._owns_http = http_client is None  # the base client made it, or we did
        client._owned_token_provider = owned
        return client

    @classmethod
    def from_env(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        config: str | os.PathLike[str] | None = None,
        timeout: TimeoutTypes | DefaultTimeout = DEFAULT,
        lookup_timeout: TimeoutTypes | DefaultTimeout = DEFAULT_LOOKUP,
        validate: bool = True,
        checks: Sequence[PreSendCheck] = (),
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        generate_ekstern_referanse: bool = True,
        kryptering: Kryptering | None = None,
        http_client: _H | None = None,
    ) -> Self:
        """:meth:`for_environment`, configured by environment variables
        (``environ``, default ``os.environ``).

        Required:

        - ``SVARUT_ENVIRONMENT``: ``test`` or ``prod``
        - ``SVARUT_INTEGRASJON_ID``, ``SVARUT_INTEGRASJON_PASSORD``: the integration's credentials
        - ``MASKINPORTEN_CLIENT_ID``: the Maskinporten client (integration) id
        - ``MASKINPORTEN_KEYSTORE``: path to a ``.p12``/``.pfx`` keystore, or to a PEM
          file with the private key (and its certificate chain, unless
          ``MASKINPORTEN_CERTIFICATE`` or ``MASKINPORTEN_KID`` is set)

        Optional:

        - ``MASKINPORTEN_KEYSTORE_PASSWORD``: the keystore's (or PEM key's) password
        - ``MASKINPORTEN_CERTIFICATE``: PEM certificate (chain) of a separate PEM key
        - ``MASKINPORTEN_KID``: the kid of a key registered in Maskinporten, instead of a certificate
        - ``MASKINPORTEN_SCOPES``: space-separated scopes (default ``ks:fiks``)
        - ``MASKINPORTEN_RESOURCE``, ``MASKINPORTEN_CONSUMER_ORG``: the optional claims
        - ``SVARUT_BASE_URL``, ``MASKINPORTEN_ISSUER``, ``MASKINPORTEN_TOKEN_ENDPOINT``: URL overrides

        With ``config``, the settings not in the environment are read from
        that TOML file, the one the ``svarut`` command reads (keys in
        :mod:`svarut._config`; :meth:`from_config` finds it where the command
        does). Missing required settings are reported together. TLS
        verification cannot be turned off from the environment. ``timeout``
        and the other options go to :meth:`for_environment`.

        Args:
            environ: The variables to read (default: ``os.environ``).
            config: A config file to read what ``environ`` lacks (default: none).

        Returns:
            The client, as :meth:`for_environment` makes it.

        Raises:
            ConfigurationError: A required setting is missing (``.missing``
                names them), the config file cannot be read, or
                ``SVARUT_ENVIRONMENT`` is not ``test`` or ``prod``.
            ValueError: A setting has a bad value.
            KeystoreError: The keystore cannot be read.

        >>> with SvarUtClient.from_env() as client:  # doctest: +SKIP
        ...     print(client.hent_status(konto_id=konto, forsendelse_id=fid).status)
        """
        settings = _settings_from_env(environ, config)
        return cls.for_environment(
            settings.environment,
            integrasjon_id=settings.integrasjon_id,
            integrasjon_passord=settings.integrasjon_passord,
            maskinporten=settings.maskinporten,
            base_url=settings.base_url,
            timeout=timeout,
            lookup_timeout=lookup_timeout,
            validate=validate,
            checks=checks,
            headers=headers,
            retry=retry,
            generate_ekstern_referanse=generate_ekstern_referanse,
            kryptering=kryptering,
            http_client=http_client,
        )

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | DefaultTimeout = DEFAULT,
        lookup_timeout: TimeoutTypes | DefaultTimeout = DEFAULT_LOOKUP,
        validate: bool = True,
        checks: Sequence[PreSendCheck] = (),
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        generate_ekstern_referanse: bool = True,
        kryptering: Kryptering | None = None,
        http_client: _H | None = None,
    ) -> Self:
        """:meth:`from_env` with the ``svarut`` command's config file: the
        settings the command would use, environment variables over the file.

        Args:
            path: The TOML file (default: where the command looks, the
                platform's config directory: ``%APPDATA%\\svarut\\config.toml``
                on Windows, ``~/Library/Application Support/svarut/config.toml``
                on macOS, ``$XDG_CONFIG_HOME/svarut/config.toml`` or
                ``~/.config/svarut/config.toml`` anywhere).
            environ: The variables to read (default: ``os.environ``).

        Returns:
            The client, as :meth:`for_environment` makes it.

        Raises:
            ConfigurationError: No config file (``path`` not given and none
                found), one that cannot be read, or missing settings.

        >>> with SvarUtClient.from_config() as client:  # doctest: +SKIP
        ...     print(client.hent_status(konto_id=konto, forsendelse_id=fid).status)
        """
        from svarut import _config

        env = os.environ if environ is None else environ
        found = Path(path) if path is not None else _config.default_config_path(env)
        if not found.is_file():
            where = ", ".join(str(p) for p in ([found] if path is not None else _config.config_paths(env)))
            raise _config.ConfigFileError(f"no config file at {where}")
        return cls.from_env(
            environ=env,
            config=found,
            timeout=timeout,
            lookup_timeout=lookup_timeout,
            validate=validate,
            checks=checks,
            headers=headers,
            retry=retry,
            generate_ekstern_referanse=generate_ekstern_referanse,
            kryptering=kryptering,
            http_client=http_client,
        )


def _ids_argument(ids: Sequence[UUID | str] | NotGiven, id: Sequence[UUID | str] | NotGiven) -> Sequence[UUID | str]:
    """``ids``, or the deprecated ``id`` it replaced (one release)."""
    return renamed_keyword(ids, id, call="hent_statuser", name="ids", old_name="id", why="as vent_pa_status takes it")


def _lookup(
    konto_id: UUID | str, ekstern_referanse: str
) -> tuple[Endpoint[list[Any]], dict[str, UUID | str], dict[str, str]]:
    """The eksternRef lookup's endpoint (the one with metadata where the specs
    have it, for each forsendelse's date) and arguments, or why it cannot be asked."""
    endpoint: Endpoint[list[Any]] | None = ENDPOINTS.get(utfall.METADATA_OPERATION) or ENDPOINTS.get(
        utfall.LOOKUP_OPERATION
    )
    if endpoint is None:
        raise utfall.LookupUnavailableError(
            "the specs this client was generated from have no eksternRef lookup "
            f"(no operation {utfall.LOOKUP_OPERATION!r}); regenerate from specs that have it"
        )
    if not isinstance(ekstern_referanse, str) or not ekstern_referanse:
        raise ForsendelseValidationError(
            [
                Problem(
                    "ekstern_referanse",
                    "required",
                    "a send without an eksternReferanse cannot be looked up; leave generate_ekstern_referanse on",
                )
            ]
        )
    return endpoint, {utfall.KONTO_PARAMETER: konto_id}, {utfall.REFERANSE_PARAMETER: ekstern_referanse}


def _decide(ekstern_referanse: str, found: list[Any], *, sendt: datetime | None, vindu: timedelta) -> utfall.Utfall:
    """The lookup's answer decided: ids, or (with metadata) models with an id and a date."""
    ids: list[str] = []
    datert: dict[str, datetime] = {}
    for item in found:
        if isinstance(item, BaseModel):
            fields = item.model_dump(by_alias=True)
            ids.append(str(fields[utfall.METADATA_ID_FIELD]))
            if isinstance(when := fields.get(utfall.METADATA_DATO_FIELD), datetime):
                datert[ids[-1]] = when
        else:
            ids.append(str(item))
    return utfall.avgjor(ekstern_referanse, ids, sendt=sendt, vindu=vindu, datert=datert)


class SvarUtClient(_SvarUtClientBase["httpx2.Client"], SyncOperations):
    """Synchronous SvarUt client.

    >>> client = SvarUtClient.for_environment("test", integrasjon_id=..., ...)  # doctest: +SKIP
    >>> client = SvarUtClient(base_url="https://test.svarut.ks.no/api", auth=...)  # doctest: +SKIP

    Use it as a context manager, or call :meth:`close`, to release connections.
    """

    _http_type_name = "Client"

    def close(self) -> None:
        """Close the connections this client opened, and the Maskinporten token
        provider :meth:`for_environment` created for it. An ``http_client`` you
        passed in is left open. Called on leaving a ``with`` block."""
        try:
            super().close()
        finally:
            if self._owned_token_provider is not None:
                self._owned_token_provider.close()

    def hent_statuser(
        self,
        *,
        konto_id: UUID | str,
        ids: Sequence[UUID | str] | NotGiven = NOT_GIVEN,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        id: Sequence[UUID | str] | NotGiven = NOT_GIVEN,
    ) -> Statuser:
        """The statuses of any number of forsendelser, in the order asked for.

        Asks SvarUt in chunks, so any number of ids can be given; repeated ids
        are asked for once.

        Args:
            konto_id: The konto the forsendelser were sent from.
            ids: The forsendelse ids (UUIDs, or their strings), a list even for one.
            timeout: The HTTP timeout of each request (default: the client's
                ``lookup_timeout``, 1 minute).
            id: Deprecated (DeprecationWarning): the old name of ``ids``.

        Returns:
            A :class:`~svarut.Statuser` (a list of ``ForsendelseStatus``) in the
            order of ``ids``; its ``.mangler`` lists the ids SvarUt returned no
            status for.

        Raises:
            TypeError: ``ids`` is a single str or UUID.
            ForsendelseValidationError: An id is not a UUID (before any request).
            StatusSearchUnavailableError: The locked specs have no status search.
            APIError: A request failed (see :mod:`svarut.errors`).

        >>> found = client.hent_statuser(konto_id=konto, ids=[id1, id2])  # doctest: +SKIP
        >>> [s.status for s in found], found.mangler  # doctest: +SKIP
        """
        wanted = _ids(_ids_argument(ids, id))
        found: list[models.ForsendelseStatus] = []
        statuses.require_status_search()
        for chunk in _chunks(wanted):
            found += super().hent_statuser(konto_id=konto_id, id=chunk, timeout=timeout)
        return _ordered(wanted, found)

    def hent_status(
        self, *, konto_id: UUID | str, forsendelse_id: UUID | str, timeout: TimeoutTypes | NotGiven = NOT_GIVEN
    ) -> models.ForsendelseStatus:
        """The status of one forsendelse.

        Args:
            konto_id: The konto the forsendelse was sent from.
            forsendelse_id: The forsendelse's id.
            timeout: The HTTP timeout of the request (default: the client's ``lookup_timeout``).

        Returns:
            Its ``ForsendelseStatus``.

        Raises:
            ForsendelseNotFoundError: SvarUt has no status for it.
            ForsendelseValidationError: ``forsendelse_id`` is not a UUID.
            StatusSearchUnavailableError: The locked specs have no status search.
            APIError: The request failed.
        """
        return _only(self.hent_statuser(konto_id=konto_id, ids=[forsendelse_id], timeout=timeout), forsendelse_id)

    def avklar_utfall(
        self,
        *,
        konto_id: UUID | str,
        ekstern_referanse: str,
        sendt: datetime | None,
        vindu: timedelta = utfall.AVKLARING_VINDU,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> utfall.Utfall:
        """Ask SvarUt whether it has the forsendelse a send with an unknown
        outcome made: which of the konto's forsendelser carry
        ``ekstern_referanse``. ``sendt`` is when that attempt began (None: not
        known; then an empty answer settles nothing); ``vindu`` how long after
        it an empty answer proves SvarUt did not take the letter (default
        :data:`svarut.utfall.AVKLARING_VINDU`, 20 minutes). From a
        :class:`~svarut.errors.SendOutcomeUnknownError`:
        ``client.avklar_utfall(**exc.avklaring)``.

        Args:
            konto_id: The konto the send was made from.
            ekstern_referanse: The eksternReferanse the send carried.
            sendt: When the send attempt began, or None if not known.
            vindu: How long after ``sendt`` an empty answer is conclusive.
            timeout: The HTTP timeout of the lookup (default: the client's ``lookup_timeout``).

        Returns:
            An :class:`~svarut.utfall.Utfall`: ``mottatt`` (its
            ``forsendelse_id``), ``ikke_mottatt`` (safe to send again) or
            ``uavklart``.

        Raises:
            APIError: The lookup failed; it settles nothing, so ask again later.

        >>> try:  # doctest: +SKIP
        ...     client.send_forsendelse(...)
        ... except SendOutcomeUnknownError as exc:
        ...     utfall = client.avklar_utfall(**exc.avklaring)
        ...     if utfall.trygt_a_sende_pa_nytt:
        ...         client.send_forsendelse(...)
        """
        endpoint, path_params, query_params = _lookup(konto_id, ekstern_referanse)
        found = self._request(endpoint, path_params=path_params, query_params=query_params, timeout=timeout)
        return _decide(ekstern_referanse, found, sendt=sendt, vindu=vindu)

    def vent_pa_status(
        self,
        *,
        konto_id: UUID | str,
        ids: Sequence[UUID | str],
        until: Collection[WantedStatus] | None = None,
        terminal: Collection[WantedStatus] | None = None,
        timeout: float = 600.0,
        interval: float = 2.0,
    ) -> dict[UUID, models.ForsendelseStatus]:
        """Poll until every forsendelse has reached or passed a status in
        ``until``, or has a status in ``terminal`` (default
        :data:`TERMINAL_STATUSES`: AVVIST, FEILET_UNDER_MOTTAK, IKKE_LEVERT,
        MANUELT_HANDTERT, SLETTET, LEST, PRINTET, LEVERT_NHN_MOTTAKER) or a
        failure status (:func:`svarut.statuses.is_failure`).

        "Passed" follows the channel's order (:mod:`svarut.statuses`): waiting
        ``until={"LEVERT_ALTINN"}`` ends at LEST, since a letter is read after
        it reached the Altinn inbox (on specs before version 16, which have
        VARSLET in its place, ``until={"VARSLET"}`` does the same); the
        channel is inferred from the statuses seen. ``until`` and ``terminal``
        take members of ``models.Status`` or their names, and only those the
        specs have (a type checker rejects other names, and so does the call).

        Polls every ``interval`` seconds, backing off by half each time (to
        at most a minute). A status this client does not know is logged and
        waited past, not fatal.

        Args:
            konto_id: The konto the forsendelser were sent from.
            ids: The forsendelse ids to wait for, a list even for one.
            until: The wanted statuses, a collection even for one, such as
                ``{"AKSEPTERT"}`` (None: wait for a terminal one).
            terminal: The statuses that end the wait for an id in any case
                (None: :data:`TERMINAL_STATUSES`).
            timeout: Seconds to wait in all; also bounds each poll's HTTP
                timeout (each poll's is the client's ``lookup_timeout``, cut to the time left).
            interval: Seconds before the first repeated poll.

        Returns:
            The latest ``ForsendelseStatus`` per id, in input order.

        Raises:
            TypeError: ``until``, ``terminal`` or ``ids`` is a single str.
            ValueError: A status in ``until`` or ``terminal`` the specs do not
                have; the message lists those they have.
            VentPaStatusTimeoutError: ``timeout`` passed first (or SvarUt could
                not be reached until then); it carries the statuses so far.
            StatusSearchUnavailableError: The locked specs have no status search.
            ForsendelseValidationError: An id is not a UUID.
            APIError: A poll failed with an HTTP error.

        >>> done = client.vent_pa_status(konto_id=konto, ids=[fid], until={"LEVERT_ALTINN"})  # doctest: +SKIP
        """
        waiter = _Waiter(ids, until, terminal, timeout, interval, self.lookup_timeout)
        while True:
            try:
                found = self.hent_statuser(konto_id=konto_id, ids=waiter.pending, timeout=waiter.call_timeout())
            except APIConnectionError as exc:
                raise waiter.timed_out(exc) from exc
            if waiter.update(found):
                return waiter.result()
            time.sleep(waiter.next_delay())


class AsyncSvarUtClient(_SvarUtClientBase["httpx2.AsyncClient"], AsyncOperations):
    """Asynchronous SvarUt client; the same methods as :class:`SvarUtClient`, awaited."""

    _http_type_name = "AsyncClient"

    async def close(self) -> None:
        """See :meth:`SvarUtClient.close`; called on leaving an ``async with`` block."""
        try:
            await super().close()
        finally:
            if self._owned_token_provider is not None:
                await self._owned_token_provider.aclose()

    async def hent_statuser(
        self,
        *,
        konto_id: UUID | str,
        ids: Sequence[UUID | str] | NotGiven = NOT_GIVEN,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        id: Sequence[UUID | str] | NotGiven = NOT_GIVEN,
    ) -> Statuser:
        """See :meth:`SvarUtClient.hent_statuser`."""
        wanted = _ids(_ids_argument(ids, id))
        found: list[models.ForsendelseStatus] = []
        statuses.require_status_search()
        for chunk in _chunks(wanted):
            found += await super().hent_statuser(konto_id=konto_id, id=chunk, timeout=timeout)
        return _ordered(wanted, found)

    async def hent_status(
        self, *, konto_id: UUID | str, forsendelse_id: UUID | str, timeout: TimeoutTypes | NotGiven = NOT_GIVEN
    ) -> models.ForsendelseStatus:
        """See :meth:`SvarUtClient.hent_status`."""
        return _only(await self.hent_statuser(konto_id=konto_id, ids=[forsendelse_id], timeout=timeout), forsendelse_id)

    async def avklar_utfall(
        self,
        *,
        konto_id: UUID | str,
        ekstern_referanse: str,
        sendt: datetime | None,
        vindu: timedelta = utfall.AVKLARING_VINDU,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> utfall.Utfall:
        """See :meth:`SvarUtClient.avklar_utfall`."""
        endpoint, path_params, query_params = _lookup(konto_id, ekstern_referanse)
        found = await self._request(endpoint, path_params=path_params, query_params=query_params, timeout=timeout)
        return _decide(ekstern_referanse, found, sendt=sendt, vindu=vindu)

    async def vent_pa_status(
        self,
        *,
        konto_id: UUID | str,
        ids: Sequence[UUID | str],
        until: Collection[WantedStatus] | None = None,
        terminal: Collection[WantedStatus] | None = None,
        timeout: float = 600.0,
        interval: float = 2.0,
    ) -> dict[UUID, models.ForsendelseStatus]:
        """See :meth:`SvarUtClient.vent_pa_status`."""
        import anyio  # here, so the sync client starts without it

        waiter = _Waiter(ids, until, terminal, timeout, interval, self.lookup_timeout)
        while True:
            try:
                found = await self.hent_statuser(konto_id=konto_id, ids=waiter.pending, timeout=waiter.call_timeout())
            except APIConnectionError as exc:
                raise waiter.timed_out(exc) from exc
            if waiter.update(found):
                return waiter.result()
            await anyio.sleep(waiter.next_delay())
