"""The async client's route for sends: a sync twin of its ``httpx2.AsyncClient``,
driven from a worker thread.

On httpx2's async path a send's work (the checks, the body's framing, every
write, the answer's parsing) runs on the event loop, and every read of a
document file needs a thread trip of its own (a file is never read on the
loop). Measured with 200 sends of 20 KB in flight against a server answering
after 1 s: 110 letters/s, 5.2 ms of CPU a letter and event-loop stalls of
120-210 ms throughout, against 170-180 letters/s, 3.6 ms and gaps that stay
under 50 ms through the twin. (Before 0.3, on the package httpx2 continues,
the async path also moved a big document at a third of the sync path's
speed; httpx2's moves it at about the same speed.) A send therefore runs as one blocking call (prepare, write,
read the answer) in a worker thread, through a ``httpx2.Client`` that has
the async client's TLS context, limits and timeout; the event loop only
waits for it, so it stays free for other tasks.

The twin is made only where it can be the same client: an
``httpx2.AsyncHTTPTransport`` (and, for the routes the client mounts, proxies
from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and the direct routes of
``NO_PROXY`` among them, transports of that type or none), no event hooks,
and an auth with a sync flow (the runtime's own auths have both; the token
provider is the same object, called through ``get_token``). The twin mounts
the same routes, each with a sync copy of its pool, so a send takes the
route the async client would have taken. Anything else (a mock transport, a
SOCKS proxy, a transport of the user's own, an auth written for async only)
keeps the plain async path. The copy reads the private attributes of
httpcore2's pools (their SSL contexts, so the caller's CA, client
certificate and options; the proxy's URL and headers; the limits): an
httpcore2 without them keeps the async path too, and
tests/test_http_stack.py checks that the twin has them.

Each send in flight holds a worker thread until SvarUt answers: a thread
waiting on a socket costs no CPU and about 100 KiB of memory (the stack pages
it touched). How many at once is bounded by the pool's ``max_connections``
(the client's own httpx2 client has no such bound: a send holds its
connection until SvarUt answers, which for a big letter takes minutes, so a
bound would make later sends wait for it silently; the application bounds its
concurrency). What the threads do with the CPU is bounded instead
(:class:`CpuGate`): at most :data:`RUNNING_AT_ONCE` of them run Python at a
time, each giving up its turn while it waits on a socket, so that 200 sends
started at once, or 200 answers arriving together, do not keep the event
loop's thread from the GIL for tens or hundreds of milliseconds.

Cancelling the waiting task abandons the wait at once; the thread stops
before its next write (:class:`~svarut.runtime.multipart.StreamAborted`, and
the connection is dropped), or, if the body was already out, finishes reading
the answer, which nobody then reads.

The worker threads are :mod:`svarut.runtime.workers`' (started off the event
loop). Each send runs in a copy of the waiting task's context, so the caller's OpenTelemetry span, and the
operation's span the async client made current, are current there too: the
token request the send makes in the thread is a child of its send.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import httpcore2
import httpx2

from svarut.runtime.workers import WorkerThreads

T = TypeVar("T")

# Worker threads running Python at once (the rest wait on a socket or for their turn):
# more would only contend for the GIL with the event loop's thread.
RUNNING_AT_ONCE = 2


class SyncTwin:
    """The sync ``httpx2.Client`` twin of ``http``, or ``http`` None where no
    faithful twin can be made."""

    def __init__(self, http: httpx2.AsyncClient, auth: httpx2.Auth | None) -> None:
        made = _twin(http) if runs_in_sync(auth) else None
        self.http: httpx2.Client | None = made[0] if made else None
        self.gate = made[2] if made else None
        # A private limiter: long uploads must not use up the tokens of
        # anyio's default one, which the application's own to_thread calls share.
        self._limiter = anyio.CapacityLimiter(made[1] if made else 1)
        self._workers = WorkerThreads()

    def close(self) -> None:
        self._workers.close()
        if self.http is not None:
            self.http.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(http, abort, *args)`` in a worker thread, holding a turn of the
        gate (if there is one) except while it waits on a socket; ``abort`` is
        set if the waiting task is cancelled."""
        assert self.http is not None
        abort = threading.Event()
        job = fn if self.gate is None else self.gate.holding(fn)
        try:
            async with self._limiter:
                return await self._workers.run(job, self.http, abort, *args)
        except anyio.get_cancelled_exc_class():
            abort.set()
            raise


class CpuGate:
    """At most ``turns`` worker threads running Python at once.

    A send's thread holds a turn from its start to its end, and gives it up
    while it waits on a socket (connect, write, read: see :class:`_GatedStream`),
    so the threads whose answers arrive together take turns instead of all
    competing with the event loop's thread for the GIL. A thread only waits
    for a turn when it holds nothing else: the twin's pools set no bound on
    connections (a bounded pool would make a thread holding a turn wait for a
    connection held by one waiting for a turn), and speak HTTP/1.1 only (an
    HTTP/2 connection is shared under locks).
    """

    def __init__(self, turns: int = RUNNING_AT_ONCE) -> None:
        self._turns = threading.Semaphore(turns)
        self._local = threading.local()

    def holding(self, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn``, run holding a turn."""

        def run(*args: Any) -> T:
            self._turns.acquire()
            self._local.holds = True
            try:
                return fn(*args)
            finally:
                self._local.holds = False
                self._turns.release()

        return run

    def give_up(self) -> bool:
        """Give up this thread's turn, if it holds one; whether it did."""
        if getattr(self._local, "holds", False):
            self._local.holds = False
            self._turns.release()
            return True
        return False

    def take_back(self) -> None:
        self._turns.acquire()
        self._local.holds = True

    def waiting(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a call that blocks, with this thread's turn given up meanwhile."""
        gave = self.give_up()
        try:
            return fn(*args)
        finally:
            if gave:
                self.take_back()


class _GatedStream(httpcore2.NetworkStream):
    """A network stream that gives up its thread's turn while it blocks."""

    def __init__(self, stream: httpcore2.NetworkStream, gate: CpuGate) -> None:
        self._stream = stream
        self._gate = gate

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._gate.waiting(self._stream.read, max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._gate.waiting(self._stream.write, buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        stream = self._gate.waiting(self._stream.start_tls, ssl_context, server_hostname, timeout)
        return _GatedStream(stream, self._gate)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _GatedBackend(httpcore2.NetworkBackend):
    """httpcore2's sync backend, with streams that give up their thread's turn while they block."""

    def __init__(self, gate: CpuGate) -> None:
        self._backend = httpcore2.SyncBackend()
        self._gate = gate

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore2.NetworkStream:
        connect = self._backend.connect_tcp
        return _GatedStream(self._gate.waiting(connect, host, port, timeout, local_address, socket_options), self._gate)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore2.NetworkStream:
        connect = self._backend.connect_unix_socket
        return _GatedStream(self._gate.waiting(connect, path, timeout, socket_options), self._gate)

    def sleep(self, seconds: float) -> None:
        self._gate.waiting(self._backend.sleep, seconds)


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


class _NoTwin(Exception):
    """A transport or pool the twin cannot copy faithfully."""


def _twin(http: httpx2.AsyncClient) -> tuple[httpx2.Client, float, CpuGate | None] | None:
    """The sync twin of ``http``, how many sends it may carry at once, and the
    gate its threads take turns at (None where a gate could deadlock); None
    where it cannot be the same client."""
    transport = getattr(http, "_transport", None)
    if type(transport) is not httpx2.AsyncHTTPTransport or any(http.event_hooks.values()):
        return None
    try:
        pools: list[Any] = [transport._pool, *(getattr(t, "_pool", None) for t in http._mounts.values() if t)]
        # httpcore2 keeps "no bound" as sys.maxsize.
        gate = CpuGate() if all(p._max_connections >= sys.maxsize and not p._http2 for p in pools) else None
        sync_transport = _sync_transport(transport, gate)
        # The routes, as the async client matches them: None is its own transport.
        mounts: dict[str, httpx2.BaseTransport | None] = {
            pattern.pattern: None if mounted is None else _sync_transport(mounted, gate)
            for pattern, mounted in http._mounts.items()
        }
        max_connections = transport._pool._max_connections
    except (_NoTwin, AttributeError, ImportError):  # another httpcore2, or http2 without h2 for the sync side
        return None
    client = httpx2.Client(
        transport=sync_transport,
        mounts=mounts,
        timeout=http.timeout,
        follow_redirects=http.follow_redirects,
        max_redirects=http.max_redirects,
        trust_env=False,
    )
    return client, math.inf if max_connections >= sys.maxsize else max_connections, gate


def _sync_transport(transport: object, gate: CpuGate | None) -> httpx2.HTTPTransport:
    """A ``httpx2.HTTPTransport`` with the same TLS context, limits and proxy
    as ``transport``, an ``httpx2.AsyncHTTPTransport``; its connections give
    up their thread's turn at ``gate`` while they block."""
    if type(transport) is not httpx2.AsyncHTTPTransport:
        raise _NoTwin
    pool: Any = transport._pool
    kind = type(pool)
    if kind is not httpcore2.AsyncConnectionPool and kind is not httpcore2.AsyncHTTPProxy:
        raise _NoTwin  # SOCKS, or a pool of another shape
    if pool._ssl_context is None:
        raise _NoTwin
    limits = httpx2.Limits(
        max_connections=pool._max_connections,
        max_keepalive_connections=pool._max_keepalive_connections,
        keepalive_expiry=pool._keepalive_expiry,
    )
    common: dict[str, Any] = {
        "http1": pool._http1,
        "http2": pool._http2,
        "retries": pool._retries,
        "local_address": pool._local_address,
        "uds": pool._uds,
        "socket_options": pool._socket_options,
    }
    if gate is not None:
        common["network_backend"] = _GatedBackend(gate)
    sync = httpx2.HTTPTransport(verify=pool._ssl_context, limits=limits)
    pool_limits: dict[str, Any] = {
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }
    if kind is httpcore2.AsyncHTTPProxy:
        # Built as httpcore2 built the async one: its headers already carry any Proxy-Authorization.
        sync._pool = httpcore2.HTTPProxy(
            proxy_url=pool._proxy_url,
            proxy_headers=pool._proxy_headers,
            ssl_context=pool._ssl_context,
            proxy_ssl_context=pool._proxy_ssl_context,
            **pool_limits,
            **common,
        )
    else:
        sync._pool = httpcore2.ConnectionPool(ssl_context=pool._ssl_context, **pool_limits, **common)
    return sync
