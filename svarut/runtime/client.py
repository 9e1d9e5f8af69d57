"""The base clients the generated operations run on.

:class:`BaseClient` holds everything that does not wait on I/O: turning an
operation and its arguments into a prepared request (path parameters,
JSON or multipart body, headers, per-call timeout) and turning a response into
a result or a typed error. :class:`SyncAPIClient` runs the loop around it
(send, read, retry). :class:`AsyncAPIClient` runs that same sync loop for a
send in a worker thread, through a sync twin of its ``httpx2.AsyncClient``
(:mod:`svarut.runtime.transport`), and waits for it on the event loop; a
request without a body to stream, or a client the twin cannot copy, goes
through httpx2's async path. Fetching SvarUt's certificate for an encrypted
send is I/O too: each loop does it (the async client on its event loop), and
prepares the send again (:class:`SertifikatNeeded`).

Each operation is reported to the instrumentation
(:mod:`svarut.runtime.instrumentation`: a no-op unless OpenTelemetry is
installed): its start and end, each attempt and retry decision, the bytes
sent; the async client starts it on the caller's task, so its span is a child
of the caller's.

The request value types (:class:`Endpoint`, :class:`PreparedSend`, ...) live
in :mod:`svarut.runtime.request_types` and are importable from here as well.
This module knows nothing of the generated models beyond ``pydantic.BaseModel``:
each :class:`Endpoint` carries its own response and error model.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from svarut.runtime import base_client, instrumentation
from svarut.runtime.base_client import (
    DEFAULT_RETRY as DEFAULT_RETRY,
)
from svarut.runtime.base_client import (
    EKSTERN_REFERANSE_KEY as EKSTERN_REFERANSE_KEY,
)
from svarut.runtime.base_client import (
    INLINE_PARSE_BYTES as INLINE_PARSE_BYTES,
)
from svarut.runtime.base_client import (
    KORRELASJONSID_KEY as KORRELASJONSID_KEY,
)
from svarut.runtime.base_client import (
    KRYPTERT_KEY as KRYPTERT_KEY,
)
from svarut.runtime.base_client import (
    MAX_RESPONSE_BYTES as MAX_RESPONSE_BYTES,
)
from svarut.runtime.base_client import (
    USER_AGENT as USER_AGENT,
)
from svarut.runtime.base_client import (
    BaseClient as BaseClient,
)
from svarut.runtime.base_client import (
    SertifikatNeeded as SertifikatNeeded,
)
from svarut.runtime.base_client import (
    T,
    body_bytes_sent,
)
from svarut.runtime.base_client import (
    drop_none as drop_none,
)
from svarut.runtime.bounded import aread_bounded
from svarut.runtime.http_clients import require_http_client
from svarut.runtime.instrumentation import NO_OPERATION, Operation

# The request value types live in a leaf module; imported from here too, as before.
from svarut.runtime.request_types import NOT_GIVEN as NOT_GIVEN
from svarut.runtime.request_types import Endpoint as Endpoint
from svarut.runtime.request_types import JsonBody as JsonBody
from svarut.runtime.request_types import MultipartInput as MultipartInput
from svarut.runtime.request_types import NotGiven as NotGiven
from svarut.runtime.request_types import Prepared as Prepared
from svarut.runtime.request_types import PreparedRequest as PreparedRequest
from svarut.runtime.request_types import PreparedSend as PreparedSend
from svarut.runtime.request_types import PreSendCheck as PreSendCheck
from svarut.runtime.request_types import QueryParameter as QueryParameter
from svarut.runtime.request_types import TimeoutTypes as TimeoutTypes

if TYPE_CHECKING:
    import anyio
    import httpx2

    from svarut.runtime.base_client import DEFAULT_LOOKUP_TIMEOUT as DEFAULT_LOOKUP_TIMEOUT
    from svarut.runtime.base_client import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
    from svarut.runtime.transport import SyncTwin

_P = TypeVar("_P")


def __getattr__(name: str) -> Any:
    """``DEFAULT_TIMEOUT`` and ``DEFAULT_LOOKUP_TIMEOUT``: httpx2.Timeouts, made (with httpx2) when first read."""
    if name in ("DEFAULT_TIMEOUT", "DEFAULT_LOOKUP_TIMEOUT"):
        return getattr(base_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SyncAPIClient(BaseClient):
    def __init__(self, *, http_client: httpx2.Client | None = None, **kwargs: Any) -> None:
        require_http_client(http_client, "Client", owner=type(self).__name__)
        super().__init__(**kwargs)
        self._owns_http = http_client is None
        self._lazy_http = _LazyHttp(http_client, self._new_http)

    def _new_http(self) -> httpx2.Client:
        import httpx2

        return httpx2.Client(timeout=self.timeout, follow_redirects=False, limits=_own_limits())

    @property
    def _http(self) -> httpx2.Client:
        return self._lazy_http.get()

    def close(self) -> None:
        http = self._lazy_http.close()
        if self._owns_http and http is not None:
            http.close()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        endpoint: Endpoint[T],
        *,
        path_params: Mapping[str, Any],
        query_params: Mapping[str, Any] | None = None,
        body: JsonBody | MultipartInput | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> T:
        send = isinstance(body, MultipartInput)
        with instrumentation.current().operation(endpoint, path_params, send=send) as op:
            prepared = self._with_sertifikat(
                lambda: self._prepare(
                    endpoint, path_params=path_params, query_params=query_params, body=body, timeout=timeout
                )
            )
            op.prepared(prepared)
            return self._exchange(self._http, self._http, endpoint, prepared, op=op)

    def prepare_send(
        self,
        endpoint: Endpoint[T],
        *,
        path_params: Mapping[str, Any],
        body: MultipartInput,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> Prepared[T]:
        prepare = super().prepare_send
        return self._with_sertifikat(lambda: prepare(endpoint, path_params=path_params, body=body, timeout=timeout))

    prepare_send.__doc__ = BaseClient.prepare_send.__doc__

    def _with_sertifikat(self, prepare: Callable[[], _P]) -> _P:
        """``prepare()``; where a send needs SvarUt's certificate first (the
        base client does no I/O), fetch it and prepare again."""
        try:
            return prepare()
        except SertifikatNeeded:
            self._fetch_sertifikat()
            return prepare()

    def _fetch_sertifikat(self) -> None:
        """Fetch SvarUt's certificate for a send the checks passed, with the
        client's own HTTP client (its proxies, TLS settings and hooks apply)."""
        from svarut.runtime.sertifikat import hent_sertifikat

        self._use_sertifikat(hent_sertifikat(self._http, self._sertifikat_url()))

    def send_prepared(self, prepared: Prepared[T]) -> T:
        """Send what :meth:`prepare_send` built, with the client's retry policy.
        Once: given the same prepared send again, it raises
        :class:`~svarut.errors.PreparedAlreadySentError` and sends nothing."""
        self._claim(prepared)
        request = prepared.request
        with instrumentation.current().operation(prepared.endpoint, request.path_params, send=True) as op:
            op.prepared(request)
            return self._exchange(self._http, self._http, prepared.endpoint, request, op=op)


class AsyncAPIClient(BaseClient):
    """The async client. A send's body goes out through a private sync
    ``httpx2.Client`` in a worker thread (see :mod:`svarut.runtime.transport`):
    a send costs less CPU as one thread trip than on httpx2's async path with
    the trips reading its files would take, and its work does not stall the
    event loop. The event loop only waits."""

    def __init__(self, *, http_client: httpx2.AsyncClient | None = None, **kwargs: Any) -> None:
        require_http_client(http_client, "AsyncClient", owner=type(self).__name__)
        super().__init__(**kwargs)
        self._owns_http = http_client is None
        self._lazy_http = _LazyHttp(http_client, self._new_http)
        self._twin: SyncTwin | None = None
        self._making: anyio.Lock | None = None

    def _new_http(self) -> httpx2.AsyncClient:
        import httpx2

        return httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False, limits=_own_limits())

    @property
    def _http(self) -> httpx2.AsyncClient:
        return self._lazy_http.get()

    async def close(self) -> None:
        http = self._lazy_http.close()
        try:
            if self._twin is not None:
                self._twin.close()
        finally:
            if self._owns_http and http is not None:
                await http.aclose()

    async def __aenter__(self: _A) -> _A:
        return self

    def __enter__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is asynchronous: use `async with`, not `with`")

    def __exit__(self, *exc: object) -> None:
        """Never reached: :meth:`__enter__` refuses. Defined so ``with`` gets that far."""

    def __del__(self) -> None:
        # An httpx2.AsyncClient cannot be closed from here (no event loop), so say it leaked.
        lazy: _LazyHttp[httpx2.AsyncClient] | None = getattr(self, "_lazy_http", None)
        if lazy is not None and lazy.made and not lazy.closed and getattr(self, "_owns_http", False):
            warnings.warn(
                f"{self!r} was used and never closed, so its connections leak: use `async with` "
                "on it, or `await client.close()`",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _request(
        self,
        endpoint: Endpoint[T],
        *,
        path_params: Mapping[str, Any],
        query_params: Mapping[str, Any] | None = None,
        body: JsonBody | MultipartInput | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> T:
        import anyio.to_thread

        send = isinstance(body, MultipartInput)
        # Started here, on the caller's task, so the span is a child of the caller's current span;
        # the worker threads below run in a copy of this context (anyio copies it), so it is current there too.
        with instrumentation.current().operation(endpoint, path_params, send=send) as op:
            await self._make_http()
            if isinstance(body, MultipartInput):
                for fetched in (False, True):
                    try:
                        if (twin := self._sync_twin()).http is not None:
                            return await twin.run(self._send_in_thread, endpoint, path_params, body, timeout, op)
                        # Preparing a send stats (and may sniff) files: keep that off the event loop.
                        prepared = await anyio.to_thread.run_sync(
                            lambda: self._prepare(endpoint, path_params=path_params, body=body, timeout=timeout)
                        )
                        break
                    except SertifikatNeeded:
                        if fetched:
                            raise
                        # The checks passed in the worker thread; the certificate is fetched here, on the event loop.
                        await self._afetch_sertifikat()
            else:
                # A JSON body touches no file: a worker-thread trip would cost more than the work.
                prepared = self._prepare(
                    endpoint, path_params=path_params, query_params=query_params, body=body, timeout=timeout
                )
            op.prepared(prepared)
            return await self._aexchange(endpoint, prepared, op)

    async def send_prepared(self, prepared: Prepared[T]) -> T:
        """Send what :meth:`prepare_send` built (call that in a worker thread:
        it may read files), with the client's retry policy; once, as
        :meth:`SyncAPIClient.send_prepared`."""
        self._claim(prepared)
        request = prepared.request
        with instrumentation.current().operation(prepared.endpoint, request.path_params, send=True) as op:
            op.prepared(request)
            await self._make_http()
            if request.body is not None and (twin := self._sync_twin()).http is not None:
                return await twin.run(self._exchange_in_thread, prepared.endpoint, request, op)
            return await self._aexchange(prepared.endpoint, request, op)

    def prepare_send(
        self,
        endpoint: Endpoint[T],
        *,
        path_params: Mapping[str, Any],
        body: MultipartInput,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> Prepared[T]:
        """:meth:`BaseClient.prepare_send`, to be called in a worker thread (it
        may read files); SvarUt's certificate, if a send needs it, is fetched
        on the client's event loop."""
        try:
            return super().prepare_send(endpoint, path_params=path_params, body=body, timeout=timeout)
        except SertifikatNeeded:
            import anyio.from_thread

            anyio.from_thread.run(self._afetch_sertifikat)
            return super().prepare_send(endpoint, path_params=path_params, body=body, timeout=timeout)

    async def _afetch_sertifikat(self) -> None:
        """:meth:`SyncAPIClient._fetch_sertifikat` with the async HTTP client."""
        from svarut.runtime.sertifikat import ahent_sertifikat

        self._use_sertifikat(await ahent_sertifikat(self._http, self._sertifikat_url()))

    async def _make_http(self) -> None:
        if not self._lazy_http.made:
            import anyio
            import anyio.to_thread

            if self._making is None:
                self._making = anyio.Lock()
            # Making an httpx2 client loads the CA bundle: tens of milliseconds, not on the event
            # loop, and once: the first sends of a burst wait for the one that makes it.
            async with self._making:
                if not self._lazy_http.made:
                    await anyio.to_thread.run_sync(self._lazy_http.get)

    def _sync_twin(self) -> SyncTwin:
        from svarut.runtime import transport

        if self._twin is None:
            self._twin = transport.SyncTwin(self._http, self._auth)
        return self._twin

    async def _aexchange(self, endpoint: Endpoint[T], prepared: PreparedRequest, op: Operation = NO_OPERATION) -> T:
        """:meth:`BaseClient._exchange` on httpx2's async path."""
        import anyio.to_thread
        import httpx2

        started = time.perf_counter()
        attempt = 0
        while True:
            request = self._request_for(self._http, prepared, prepared.body.async_stream() if prepared.body else None)
            prepared.attempt_started = datetime.now(UTC)
            op.attempt(attempt + 1)
            try:
                try:
                    response = await self._http.send(request, auth=self._auth, stream=True)
                    try:
                        data, _ = await aread_bounded(response.aiter_bytes(), MAX_RESPONSE_BYTES)
                    finally:
                        await response.aclose()
                finally:
                    op.wrote(body_bytes_sent(request))
            except httpx2.TransportError as exc:
                if (delay := self._retry_after(endpoint, prepared, attempt, error=exc, op=op)) is None:
                    # Hashing the documents for the error reads them: not on the event loop.
                    failure = await anyio.to_thread.run_sync(self._failure, endpoint, prepared, exc, request)
                    self._log_send(endpoint, prepared, request, started, failure)
                    raise failure from exc
            else:
                if (delay := self._retry_after(endpoint, prepared, attempt, response=response, op=op)) is None:
                    if response.is_success and len(data) <= INLINE_PARSE_BYTES:
                        result = self._finish(endpoint, prepared, response, data, started)
                    else:
                        # An error may hash the documents (SendOutcomeUnknownError), and a big
                        # body takes a while to parse: not on the event loop.
                        result = await anyio.to_thread.run_sync(
                            self._finish, endpoint, prepared, response, data, started
                        )
                    op.succeeded(result)
                    return result
            await anyio.sleep(delay)
            attempt += 1

    def _send_in_thread(
        self,
        http: httpx2.Client,
        abort: threading.Event,
        endpoint: Endpoint[T],
        path_params: Mapping[str, Any],
        body: MultipartInput,
        timeout: TimeoutTypes | NotGiven,
        op: Operation = NO_OPERATION,
    ) -> T:
        prepared = self._prepare(endpoint, path_params=path_params, body=body, timeout=timeout)
        op.prepared(prepared)
        return self._exchange_in_thread(http, abort, endpoint, prepared, op)

    def _exchange_in_thread(
        self,
        http: httpx2.Client,
        abort: threading.Event,
        endpoint: Endpoint[T],
        prepared: PreparedRequest,
        op: Operation = NO_OPERATION,
    ) -> T:
        # Built by the async client, so its default headers, cookies and timeout apply.
        return self._exchange(http, self._http, endpoint, prepared, abort, op)


def _own_limits() -> httpx2.Limits:
    """The limits of the httpx2 client a client makes for itself: no bound on
    connections. A send holds its connection until SvarUt answers, minutes for
    a big letter; with httpx2's default of 100, the 101st concurrent send would
    wait for one of them and fail with ``PoolTimeout`` after the pool timeout.
    The application bounds its concurrency (or passes an ``http_client`` with
    the ``httpx2.Limits`` it wants). Idle connections are kept as long as
    httpx2 keeps them (5 s): a run at 200 at a time reuses its 200 connections
    (and their TLS sessions) instead of reconnecting all but 20 each round."""
    import httpx2

    return httpx2.Limits(max_connections=None, max_keepalive_connections=None)


# Strings: httpx2 is imported when the first request is made.
_H = TypeVar("_H", "httpx2.Client", "httpx2.AsyncClient")


class _LazyHttp(Generic[_H]):
    """The client's ``httpx2`` client: the one it was given, or one made at
    first use. Making one loads the CA bundle into an SSL context (tens of
    milliseconds), which a program that builds a client and never sends, or
    sends later, should not wait for at start-up."""

    def __init__(self, given: _H | None, make: Callable[[], _H]) -> None:
        self._http: _H | None = given
        self._make: Callable[[], _H] = make
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> _H:
        http = self._http
        if http is None:
            with self._lock:
                if self._http is None:
                    if self._closed:
                        raise RuntimeError("Cannot send a request, as the client has been closed.")
                    self._http = self._make()
                http = self._http
        return http

    @property
    def made(self) -> bool:
        return self._http is not None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> _H | None:
        """Mark closed; the httpx2 client to close, if there is one."""
        with self._lock:
            self._closed = True
            return self._http


_S = TypeVar("_S", bound=SyncAPIClient)
_A = TypeVar("_A", bound=AsyncAPIClient)
