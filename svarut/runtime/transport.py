"""The async client's route for sends: a sync twin of its ``httpx2.AsyncClient``,
driven from a worker thread.

httpx2's async write path (httpcore2, anyio, asyncio's transport) costs tens
of microseconds of event-loop time per write and moves a big document at a
third of the speed of the sync one, TLS or not. A send therefore runs as one
blocking call (prepare, write, read the answer) in a worker thread, through a
``httpx2.Client`` that has the async client's TLS context, limits and timeout;
the event loop only waits for it, so it stays free for other tasks.

The twin is made only where it can be the same client: an
``httpx2.AsyncHTTPTransport`` without proxies, mounts or event hooks, and an
auth with a sync flow (the runtime's own auths have both; the token provider
is the same object, called through ``get_token``). Anything else (a mock
transport, a proxy, an auth written for async only) keeps the plain async path.
The copy reads the private attributes of httpcore2's pool (its SSL context,
so the caller's CA, client certificate and options; its limits): an
httpcore2 without them keeps the async path too, and tests/test_http_stack.py
checks that the twin has them.

Cancelling the waiting task abandons the wait at once; the thread stops
before its next write (:class:`~svarut.runtime.multipart.StreamAborted`, and
the connection is dropped), or, if the body was already out, finishes reading
the answer, which nobody then reads.

The worker thread runs in a copy of the waiting task's context (anyio copies
it into ``to_thread.run_sync``), so the caller's OpenTelemetry span, and the
operation's span the async client made current, are current there too: the
token request the send makes in the thread is a child of its send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx2

T = TypeVar("T")

# Sends in flight at once when the pool sets no limit; otherwise as many as it has connections.
DEFAULT_SENDS_IN_FLIGHT = 100


class SyncTwin:
    """The sync ``httpx2.Client`` twin of ``http``, or ``http`` None where no
    faithful twin can be made."""

    def __init__(self, http: httpx2.AsyncClient, auth: httpx2.Auth | None) -> None:
        made = _twin(http) if runs_in_sync(auth) else None
        self.http: httpx2.Client | None = made[0] if made else None
        # A private limiter: long uploads must not use up the tokens of
        # anyio's default one, which the application's own to_thread calls share.
        self._limiter = anyio.CapacityLimiter(made[1] if made else 1)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(http, abort, *args)`` in a worker thread; ``abort`` is set if the
        waiting task is cancelled."""
        assert self.http is not None
        abort = threading.Event()
        try:
            return await anyio.to_thread.run_sync(
                fn, self.http, abort, *args, abandon_on_cancel=True, limiter=self._limiter
            )
        except anyio.get_cancelled_exc_class():
            abort.set()
            raise


def runs_in_sync(auth: httpx2.Auth | None) -> bool:
    """Whether ``auth`` signs a request the same way in its sync flow as in its
    async one: it has no flows (None), both are its own, or neither is (both
    then run its ``auth_flow``)."""
    if auth is None:
        return True
    cls = type(auth)
    sync_own = cls.sync_auth_flow is not httpx2.Auth.sync_auth_flow
    async_own = cls.async_auth_flow is not httpx2.Auth.async_auth_flow
    return sync_own or not async_own


def _twin(http: httpx2.AsyncClient) -> tuple[httpx2.Client, int] | None:
    transport = getattr(http, "_transport", None)
    pool: Any = getattr(transport, "_pool", None)
    if (
        type(transport) is not httpx2.AsyncHTTPTransport
        or getattr(http, "_mounts", None)
        or any(http.event_hooks.values())
        or getattr(pool, "_ssl_context", None) is None
    ):
        return None
    try:
        ssl_context = pool._ssl_context
        max_connections = pool._max_connections
        limits = httpx2.Limits(
            max_connections=max_connections,
            max_keepalive_connections=pool._max_keepalive_connections,
            keepalive_expiry=pool._keepalive_expiry,
        )
        sync_transport = httpx2.HTTPTransport(
            verify=ssl_context,
            http1=pool._http1,
            http2=pool._http2,
            limits=limits,
            retries=pool._retries,
            local_address=pool._local_address,
            uds=pool._uds,
            socket_options=pool._socket_options,
        )
    except (AttributeError, ImportError):  # another httpcore2, or http2 without h2 for the sync side
        return None
    client = httpx2.Client(
        transport=sync_transport,
        timeout=http.timeout,
        follow_redirects=http.follow_redirects,
        max_redirects=http.max_redirects,
        trust_env=False,
    )
    return client, max_connections or DEFAULT_SENDS_IN_FLIGHT
