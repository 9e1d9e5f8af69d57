"""Where the bearer token comes from: the :class:`TokenProvider` interface.

:class:`~svarut.runtime.auth.svarut_auth.SvarUtAuth` asks a token provider for
the token of every request, and tells it when SvarUt rejected one. Maskinporten
is one provider (:mod:`svarut.runtime.auth.maskinporten`); a token from your own
gateway is another: implement the three methods. :class:`StaticToken` is the
simplest, for tests.
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
    """

    def get_token(self) -> str: ...

    async def aget_token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class StaticToken:
    """Always the same token (tests, or a token obtained elsewhere)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("StaticToken needs a non-empty token")
        self._token = token

    def get_token(self) -> str:
        return self._token

    async def aget_token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to refresh: a rejected static token stays rejected."""

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"
