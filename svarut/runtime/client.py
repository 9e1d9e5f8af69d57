"""The base clients the generated operations run on.

:class:`BaseClient` holds everything that does not wait on I/O: turning an
operation and its arguments into a prepared request (path parameters,
JSON or multipart body, headers, per-call timeout) and turning a response into
a result or a typed error. :class:`SyncAPIClient` and :class:`AsyncAPIClient`
only run the loop around it, and differ in nothing but ``await``.

This module knows nothing of the generated models beyond ``pydantic.BaseModel``:
each :class:`Endpoint` carries its own response and error model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote
from uuid import UUID

import anyio.to_thread
import httpx
from pydantic import BaseModel, ValidationError

from svarut.runtime import errors, multipart
from svarut.runtime.errors import APIConnectionError, APITimeoutError, ForsendelseValidationError, Problem
from svarut.runtime.files import File, FileSource

log = logging.getLogger("svarut")

T = TypeVar("T")

# KS recommends 16 minutes for a send, which SvarUt may take 15 to answer; a
# connection that cannot even be opened should fail fast.
DEFAULT_TIMEOUT = httpx.Timeout(16 * 60.0, connect=10.0, pool=10.0)
# Success and error bodies are small JSON documents; a bigger one is not SvarUt.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
USER_AGENT = "fiks-svarut-python"


class NotGiven:
    """Marks an argument the caller left out (``None`` means "no timeout")."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()
TimeoutTypes = float | httpx.Timeout | None


@dataclass(frozen=True)
class Endpoint(Generic[T]):
    """One operation of the API, as the generator read it from the spec."""

    operation_id: str
    method: str
    path: str
    response_model: type[BaseModel]
    unwrap: str | None = None
    error_model: type[BaseModel] | None = None

    def parse(self, body: bytes) -> T:
        model: Any = self.response_model.model_validate_json(body)
        value: T = getattr(model, self.unwrap) if self.unwrap else model
        return value


@dataclass(frozen=True)
class JsonBody:
    """A JSON body: the model and the values the caller gave for it."""

    model: type[BaseModel]
    values: Mapping[str, Any]
    content_type: str = "application/json"


@dataclass(frozen=True)
class MultipartInput:
    """A send: the metadata model and its documents.

    ``described_by`` names the metadata's document list when the documents are
    keyed by filnavn (``files`` is then a mapping); otherwise ``files`` is the
    single document.
    """

    metadata_part: str
    metadata: BaseModel
    file_part: str
    described_by: str | None
    files: Mapping[str, File | FileSource] | File | FileSource


@dataclass(frozen=True)
class PreparedSend:
    """What a pre-send check sees: the operation, the metadata exactly as it
    will be serialized, and the documents in wire order."""

    operation_id: str
    metadata: dict[str, Any]
    documents: tuple[multipart.Document, ...]


PreSendCheck = Callable[[PreparedSend], None]


@dataclass
class PreparedRequest:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None = None
    body: multipart.MultipartBody | None = None
    extensions: dict[str, Any] = field(default_factory=dict)


class BaseClient:
    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        checks: Sequence[PreSendCheck] = (),
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        self._checks = tuple(checks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # --- building -------------------------------------------------------

    def _url(self, endpoint: Endpoint[Any], path_params: Mapping[str, Any]) -> str:
        values = {}
        problems = []
        for name, value in path_params.items():
            try:
                text = str(value if isinstance(value, UUID) else UUID(str(value)))
            except ValueError:
                problems.append(Problem(name, "uuid", f"must be a UUID, got {value!r}"))
                continue
            values[name] = quote(text, safe="")
        if problems:
            raise ForsendelseValidationError(problems)
        return self.base_url + endpoint.path.format(**values)

    def _prepare(
        self,
        endpoint: Endpoint[Any],
        *,
        path_params: Mapping[str, Any],
        body: JsonBody | MultipartInput | None,
        timeout: TimeoutTypes | NotGiven,
    ) -> PreparedRequest:
        """Everything up to the first byte on the wire. Raises
        :class:`ForsendelseValidationError` for bad input, so nothing is sent."""
        prepared = PreparedRequest(endpoint.method, self._url(endpoint, path_params), dict(self._headers))
        if not isinstance(timeout, NotGiven):
            prepared.extensions["timeout"] = (
                timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
            ).as_dict()
        if isinstance(body, JsonBody):
            try:
                model = body.model.model_validate(body.values)
            except ValidationError as exc:
                raise ForsendelseValidationError(_problems(exc)) from None
            prepared.content = model.model_dump_json(by_alias=True, exclude_unset=True).encode()
            prepared.headers["Content-Type"] = body.content_type
        elif isinstance(body, MultipartInput):
            prepared.body = self._encode_multipart(endpoint, body)
            prepared.headers.update(prepared.body.headers())
        return prepared

    def _encode_multipart(self, endpoint: Endpoint[Any], send: MultipartInput) -> multipart.MultipartBody:
        metadata = send.metadata.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if send.described_by is not None:
            if not isinstance(send.files, Mapping):
                raise TypeError(
                    f"{send.file_part} must map each filnavn in {send.metadata_part}.{send.described_by} "
                    f"to its document, e.g. {{'brev.pdf': Path('brev.pdf')}}"
                )
            documents = multipart.match_documents(metadata, send.described_by, send.files, part_name=send.file_part)
        else:
            if isinstance(send.files, Mapping):
                raise TypeError(f"{send.file_part} takes one document (a Path or svarut.File), not a mapping")
            documents = [multipart.single_document(send.files, part_name=send.file_part)]
        check = PreparedSend(endpoint.operation_id, metadata, tuple(documents))
        for run_check in self._checks:
            run_check(check)
        return multipart.encode(
            metadata_part=send.metadata_part,
            metadata_json=send.metadata.model_dump_json(by_alias=True, exclude_unset=True).encode(),
            file_part=send.file_part,
            documents=documents,
        )

    @staticmethod
    def _request_for(
        http: httpx.Client | httpx.AsyncClient,
        prepared: PreparedRequest,
        stream: httpx.SyncByteStream | httpx.AsyncByteStream | None,
    ) -> httpx.Request:
        request = http.build_request(
            prepared.method,
            prepared.url,
            headers=prepared.headers,
            content=prepared.content,
            extensions=prepared.extensions,
        )
        if stream is not None:
            # Our stream replaces the empty body httpx prepared; its framing
            # comes from our headers (exact Content-Length, else chunked).
            request.stream = stream
            if "Content-Length" not in prepared.headers:
                request.headers.pop("Content-Length", None)
                request.headers["Transfer-Encoding"] = "chunked"
        return request

    # --- handling -------------------------------------------------------

    def _result(self, endpoint: Endpoint[T], response: httpx.Response, body: bytes) -> T:
        log.debug("%s %s -> %s", endpoint.method, endpoint.operation_id, response.status_code)
        if response.is_success:
            try:
                return endpoint.parse(body)
            except ValidationError as exc:
                raise errors.APIResponseValidationError(response=response, body=body, cause=exc) from None
        error_message = _lenient(endpoint.error_model, body) if endpoint.error_model else None
        cls = errors.status_error_class(response.status_code)
        raise cls(response=response, body=body, error_message=error_message)

    @staticmethod
    def _transport_error(exc: httpx.TransportError, request: httpx.Request) -> errors.APIError:
        what = f"{request.method} {request.url.copy_with(query=None)}"
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"{what} timed out ({type(exc).__name__})", request=request)
        return APIConnectionError(f"{what} failed: {type(exc).__name__}: {exc}", request=request)


class SyncAPIClient(BaseClient):
    def __init__(self, *, http_client: httpx.Client | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=self.timeout, follow_redirects=False)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        endpoint: Endpoint[T],
        *,
        path_params: Mapping[str, Any],
        body: JsonBody | MultipartInput | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> T:
        prepared = self._prepare(endpoint, path_params=path_params, body=body, timeout=timeout)
        request = self._request_for(self._http, prepared, prepared.body.sync_stream() if prepared.body else None)
        try:
            response = self._http.send(request, auth=self._auth, stream=True)
            try:
                data = b"".join(_bounded(response.iter_bytes()))
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, request) from exc
        return self._result(endpoint, response, data)


class AsyncAPIClient(BaseClient):
    def __init__(self, *, http_client: httpx.AsyncClient | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _request(
        self,
        endpoint: Endpoint[T],
        *,
        path_params: Mapping[str, Any],
        body: JsonBody | MultipartInput | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> T:
        # Preparing a send stats (and may sniff) files: keep that off the event loop.
        prepared = await anyio.to_thread.run_sync(
            lambda: self._prepare(endpoint, path_params=path_params, body=body, timeout=timeout)
        )
        request = self._request_for(self._http, prepared, prepared.body.async_stream() if prepared.body else None)
        try:
            response = await self._http.send(request, auth=self._auth, stream=True)
            try:
                data = b"".join([chunk async for chunk in _abounded(response.aiter_bytes())])
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, request) from exc
        return self._result(endpoint, response, data)


_S = TypeVar("_S", bound=SyncAPIClient)
_A = TypeVar("_A", bound=AsyncAPIClient)


def _bounded(chunks: Iterator[bytes]) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            break
        yield chunk


async def _abounded(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            break
        yield chunk


def _problems(exc: ValidationError) -> list[Problem]:
    return [Problem(".".join(str(p) for p in e["loc"]), e["type"], e["msg"]) for e in exc.errors()]


def _lenient(model: type[BaseModel], body: bytes) -> BaseModel | None:
    """Parse an error body, dropping the fields that do not have the spec's
    type (the live server sends ``errorJson`` as an object where the spec says
    string), so the rest is still available."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for _ in range(len(data) + 1):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
            if not bad & data.keys():
                return None
            data = {k: v for k, v in data.items() if k not in bad}
    return None


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments the caller gave, so unset fields stay unset."""
    return {k: v for k, v in values.items() if v is not None}
