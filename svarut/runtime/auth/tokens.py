"""Where the bearer token comes from: the :class:`TokenProvider` interface.

:class:`~svarut.runtime.auth.svarut_auth.SvarUtAuth` asks a token provider for
the token of every request, and tells it when SvarUt rejected one. Maskinporten
is one provider (:mod:`svarut.runtime.auth.maskinporten`); a token from your own
gateway is another: implement the three methods. :class:`StaticToken` is the
simplest, for tests. A provider of your own may report each token request it
makes (not a cached token) as Maskinporten's does: inside
``with svarut.runtime.instrumentation.current().token_fetch():``, a child span
of the send that needed it and a count in the metrics (see the Observability guide).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class TokenProvider(Protocol):
    """A source of bearer tokens for SvarUt.

    ``get_token`` is called by the sync client, ``aget_token`` by the async
    one; both should return a cached token while it is valid. ``invalidate``
    is called with a token SvarUt answered 401 to; the next call should return
    a different one if it can.

    >>> class GatewayToken:  # doctest: +SKIP
    ...     def get_token(self) -> str:
    ...         return my_gateway.token()
    ...     async def aget_token(self) -> str:
    ...         return await my_gateway.atoken()
    ...     def invalidate(self, token: str) -> None:
    ...         my_gateway.forget(token)
    >>> SvarUtClient.for_environment("test", token_provider=GatewayToken(), ...)  # doctest: +SKIP
    """

    def get_token(self) -> str:
        """A valid bearer token (cached while it lasts), for the sync client.

        Raises:
            MaskinportenError: Or your own error, when no token can be had;
                the request fails with it.
        """
        ...

    async def aget_token(self) -> str:
        """:meth:`get_token` for the async client."""
        ...

    def invalidate(self, token: str) -> None:
        """Forget ``token``, which SvarUt answered 401 to.

        Args:
            token: The rejected token; the next :meth:`get_token` should not return it.
        """
        ...


class StaticToken:
    """Always the same token (tests, or a token obtained elsewhere).

    Args:
        token: The bearer token.

    Raises:
        ValueError: ``token`` is empty.

    >>> StaticToken("eyJ...").get_token()
    'eyJ...'
    """

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("StaticToken needs a non-empty token")
        self._token = token

    def get_token(self) -> str:
        """The token."""
        return self._token

    async def aget_token(self) -> str:
        """The token."""
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to refresh: a rejected static token stays rejected.

        Args:
            token: The rejected token (ignored).
        """

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"
