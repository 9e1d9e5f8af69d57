"""The ``httpx2.Auth`` that signs every SvarUt request.

SvarUt v3 wants three headers on every call: ``Authorization: Bearer <token>``
(a Maskinporten token with scope ``ks:fiks``), ``IntegrasjonId`` and
``IntegrasjonPassord``. :class:`SvarUtAuth` adds them, with the token from a
:class:`~svarut.runtime.auth.tokens.TokenProvider`.

When SvarUt answers 401 the token may have been revoked or expired early: the
flow drops it and sends the request once more with a fresh one. A 401 means
SvarUt rejected the request, so it did not accept the send and repeating it
cannot create a second forsendelse. The body must be one that can be sent
again, though: bytes, or a multipart body whose sources can be rewound.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from uuid import UUID

import httpx2

from svarut.runtime.auth.tokens import TokenProvider

INTEGRASJON_ID_HEADER = "IntegrasjonId"
INTEGRASJON_PASSORD_HEADER = "IntegrasjonPassord"


class SvarUtAuth(httpx2.Auth):
    """Adds the token and the integration's id and password to every request.

    >>> auth = SvarUtAuth(  # doctest: +SKIP
    ...     integrasjon_id=..., integrasjon_passord=..., token_provider=StaticToken("...")
    ... )
    >>> SvarUtClient(base_url=..., auth=auth)  # doctest: +SKIP

    Args:
        integrasjon_id: The SvarUt integration's id (a UUID), sent as ``IntegrasjonId``.
        integrasjon_passord: Its password, sent as ``IntegrasjonPassord``.
        token_provider: Where the bearer token comes from (:class:`TokenProvider`).

    Raises:
        ValueError: ``integrasjon_id`` is not a UUID, or the password is empty.
        TypeError: ``token_provider`` lacks the :class:`TokenProvider` methods.
    """

    # Reading the body up front would load every document into memory.
    requires_request_body = False
    requires_response_body = False

    def __init__(self, *, integrasjon_id: UUID | str, integrasjon_passord: str, token_provider: TokenProvider) -> None:
        try:
            self.integrasjon_id = str(UUID(str(integrasjon_id)))
        except ValueError:
            # Not quoted: swapped arguments would put the password here.
            raise ValueError(
                f"integrasjon_id must be a UUID, got a {type(integrasjon_id).__name__} of "
                f"{len(str(integrasjon_id))} characters that is not one (swapped with integrasjon_passord?)"
            ) from None
        if not integrasjon_passord:
            raise ValueError("integrasjon_passord must not be empty")
        if not isinstance(token_provider, TokenProvider):
            raise TypeError(
                "token_provider must have get_token(), aget_token() and invalidate(token), "
                f"got {type(token_provider).__name__}"
            )
        self._passord = integrasjon_passord
        self.token_provider = token_provider

    def __repr__(self) -> str:
        return f"SvarUtAuth(integrasjon_id={self.integrasjon_id!r}, token_provider={self.token_provider!r})"

    def _sign(self, request: httpx2.Request, token: str) -> None:
        request.headers["Authorization"] = f"Bearer {token}"
        request.headers[INTEGRASJON_ID_HEADER] = self.integrasjon_id
        request.headers[INTEGRASJON_PASSORD_HEADER] = self._passord

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.token_provider.get_token()
        self._sign(request, token)
        response = yield request
        if response.status_code == httpx2.codes.UNAUTHORIZED and replayable(request):
            self.token_provider.invalidate(token)
            fresh = self.token_provider.get_token()
            if fresh != token:
                self._sign(request, fresh)
                yield request

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self.token_provider.aget_token()
        self._sign(request, token)
        response = yield request
        if response.status_code == httpx2.codes.UNAUTHORIZED and replayable(request):
            self.token_provider.invalidate(token)
            fresh = await self.token_provider.aget_token()
            if fresh != token:
                self._sign(request, fresh)
                yield request


def replayable(request: httpx2.Request) -> bool:
    """Whether ``request``'s body can be sent a second time.

    Bytes bodies (``httpx2.ByteStream``) can; a stream can if it says so with a
    true ``replayable`` attribute, as the runtime's multipart streams are to do
    when all their documents can be rewound. Anything else may be a one-shot
    iterator.
    """
    stream = request.stream
    if isinstance(stream, httpx2.ByteStream):
        return True
    return getattr(stream, "replayable", False) is True
