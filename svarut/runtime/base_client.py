"""The pure half of the client: :class:`BaseClient` turns an operation and
its arguments into a prepared request (path and query parameters, JSON or
multipart body, headers, per-call timeout), decides retries, and turns a
response into a result or a typed error, none of which waits on I/O. The loops
that do the I/O around it are in :mod:`svarut.runtime.client`. The sync loop
(:meth:`BaseClient._exchange`) reports each attempt, retry decision (with its
reason, :meth:`RetryPolicy.decide`) and result to the operation's
instrumentation hook (:mod:`svarut.runtime.instrumentation`).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from svarut.runtime import errors, instrumentation, multipart
from svarut.runtime.bounded import read_bounded
from svarut.runtime.errors import APIConnectionError, APITimeoutError, ForsendelseValidationError, Problem
from svarut.runtime.instrumentation import NO_OPERATION, Operation

# The request value types live in a leaf module; imported from here too, as before.
from svarut.runtime.request_types import NOT_GIVEN as NOT_GIVEN
from svarut.runtime.request_types import DefaultTimeout as DefaultTimeout
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
from svarut.runtime.retry import RetryDecision, RetryPolicy, is_rejection

if TYPE_CHECKING:
    # httpx2 is imported when the first request is made (see __getattr__ below):
    # a program that makes a client and builds a letter need not load it.
    import httpx2

    from svarut.runtime.kryptering import Kryptering
    from svarut.runtime.sertifikat import SvarUtSertifikat

# anyio and the async client's transport are imported by the async code that
# uses them: a program that only sends with the sync client never loads them.

log = logging.getLogger("svarut")
# The forsendelse part's JSON: compact, UTF-8 as it is (json.dumps with ensure_ascii=False).
_METADATA_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def metadata_json(metadata: Mapping[str, Any]) -> bytes:
    """The bytes of the forsendelse part: what :data:`_METADATA_JSON` writes, by
    pydantic-core's serializer, a fifth of the CPU. The metadata is a model's JSON
    dump (str, int, bool, None, lists and dicts: no floats, whose text the two
    could write differently), and for those both write the same bytes
    (tests/test_wire.py compares them). A string neither can write in
    UTF-8 (a lone surrogate) fails as it did with json: UnicodeEncodeError."""
    try:
        return to_json(metadata)
    except PydanticSerializationError:
        return _METADATA_JSON.encode(metadata).encode()


T = TypeVar("T")
P = TypeVar("P")

if TYPE_CHECKING:
    # KS recommends 16 minutes for a send, which SvarUt may take 15 to answer; a
    # connection that cannot even be opened should fail fast.
    DEFAULT_TIMEOUT: httpx2.Timeout
    # The operations that only read (the status search, the lookups) answer in well under a second;
    # a server that stopped answering one should be noticed within a minute, not sixteen.
    DEFAULT_LOOKUP_TIMEOUT: httpx2.Timeout

# The two are httpx2.Timeouts, made on first use (PEP 562, ``__getattr__``
# below); a constructor's signature shows them as these stand-ins.
DEFAULT = DefaultTimeout("DEFAULT_TIMEOUT")
DEFAULT_LOOKUP = DefaultTimeout("DEFAULT_LOOKUP_TIMEOUT")
# Success and error bodies are small JSON documents; a bigger one is not SvarUt.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
USER_AGENT = "fiks-svarut-python"
# A success body up to this size is parsed on the event loop (well under a
# millisecond); a bigger one goes to a worker thread.
INLINE_PARSE_BYTES = 64 * 1024
DEFAULT_RETRY = RetryPolicy()
# Keys of the serialized forsendelse that identify it for a later lookup.
EKSTERN_REFERANSE_KEY = "eksternReferanse"
KORRELASJONSID_KEY = "korrelasjonsid"
KRYPTERT_KEY = "kryptert"


def __getattr__(name: str) -> Any:
    """``DEFAULT_TIMEOUT`` and ``DEFAULT_LOOKUP_TIMEOUT``, made (with httpx2) when first read."""
    if name == "DEFAULT_TIMEOUT":
        import httpx2

        value = httpx2.Timeout(16 * 60.0, connect=10.0, pool=10.0)
    elif name == "DEFAULT_LOOKUP_TIMEOUT":
        import httpx2

        value = httpx2.Timeout(60.0, connect=10.0, pool=10.0)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # setdefault: two threads reading it first both get the same object.
    return globals().setdefault(name, value)


def as_timeout(value: TimeoutTypes | NotGiven) -> httpx2.Timeout:
    """``value`` as an ``httpx2.Timeout``: a :class:`DefaultTimeout` is the default it names."""
    import httpx2

    if isinstance(value, DefaultTimeout):
        default: httpx2.Timeout = globals().get(value.name) or __getattr__(value.name)
        return default
    if isinstance(value, NotGiven):
        raise TypeError("a timeout must be a number of seconds, None or an httpx2.Timeout")
    return value if isinstance(value, httpx2.Timeout) else httpx2.Timeout(value)


def _lazy_timeout(value: TimeoutTypes | NotGiven) -> httpx2.Timeout | None:
    """``value`` as :func:`as_timeout` makes it, or None where that can wait
    for the first request (the defaults and plain seconds, which httpx2 always
    takes): a client is made without importing httpx2."""
    if value is None or isinstance(value, (DefaultTimeout, int, float)):
        return None
    return as_timeout(value)


class SertifikatNeeded(TypeError):
    """Raised by :meth:`BaseClient._prepare` when a send that passed its checks
    is to be encrypted and the client has no certificate yet: fetching one is
    I/O, so the sync and async clients fetch it and prepare the send again."""


class BaseClient:
    """What the sync and async clients share: building requests, deciding
    retries and reading responses, none of which waits on I/O."""

    _owns_http: bool  # close the HTTP client on close(): we made it

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx2.Auth | None = None,
        timeout: TimeoutTypes | DefaultTimeout = DEFAULT,
        lookup_timeout: TimeoutTypes | DefaultTimeout = DEFAULT_LOOKUP,
        headers: Mapping[str, str] | None = None,
        checks: Sequence[PreSendCheck] = (),
        retry: RetryPolicy = DEFAULT_RETRY,
        safe_to_repeat: Iterable[str] = (),
        generate_ekstern_referanse: bool = False,
        kryptering: Kryptering | None = None,
    ) -> None:
        """``timeout``: each call's, by default; ``lookup_timeout``: each call's
        to an operation in ``safe_to_repeat`` (those only read), by default."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        # Each an httpx2.Timeout (see the properties), made now only if it was given as one.
        self._timeout_given, self._timeout = timeout, _lazy_timeout(timeout)
        self._lookup_timeout_given, self._lookup_timeout = lookup_timeout, _lazy_timeout(lookup_timeout)
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        self._checks = tuple(checks)
        self._retry = retry
        self._safe_to_repeat = frozenset(safe_to_repeat)
        self._generate_ekstern_referanse = generate_ekstern_referanse
        self._kryptering = kryptering

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def timeout(self) -> httpx2.Timeout:
        """Each call's timeout, by default."""
        if self._timeout is None:
            self._timeout = as_timeout(self._timeout_given)
        return self._timeout

    @timeout.setter
    def timeout(self, value: TimeoutTypes) -> None:
        self._timeout_given, self._timeout = value, as_timeout(value)

    @property
    def lookup_timeout(self) -> httpx2.Timeout:
        """Each call's timeout to an operation that only reads, by default."""
        if self._lookup_timeout is None:
            self._lookup_timeout = as_timeout(self._lookup_timeout_given)
        return self._lookup_timeout

    @lookup_timeout.setter
    def lookup_timeout(self, value: TimeoutTypes) -> None:
        self._lookup_timeout_given, self._lookup_timeout = value, as_timeout(value)

    # --- building -------------------------------------------------------

    def _url(
        self, endpoint: Endpoint[Any], path_params: Mapping[str, Any], query_params: Mapping[str, Any] | None = None
    ) -> tuple[str, dict[str, str]]:
        values = {}
        problems = []
        for name, value in path_params.items():
            try:
                values[name] = str(value) if isinstance(value, UUID) else _uuid_text(str(value))
            except ValueError:
                problems.append(Problem(name, "uuid", f"must be a UUID, got {value!r}"))
        query: list[tuple[str, str]] = []
        for parameter in endpoint.query:
            value = (query_params or {}).get(parameter.name)
            if (why := parameter.problem(value)) is not None:
                problems.append(Problem(parameter.name, "query", why))
            elif value is not None:
                query.append((parameter.name, value))
        if problems:
            raise ForsendelseValidationError(problems)
        # A UUID's text is hex digits and hyphens: nothing in it needs quoting.
        url = self.base_url + endpoint.path.format(**values)
        if query:
            # Every reserved character quoted (":", "/", "&", "=", "+", a space as %20, UTF-8 for æøå),
            # so the server reads the value exactly as given.
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
        return url, values

    def _prepare(
        self,
        endpoint: Endpoint[Any],
        *,
        path_params: Mapping[str, Any],
        body: JsonBody | MultipartInput | None,
        timeout: TimeoutTypes | NotGiven,
        query_params: Mapping[str, Any] | None = None,
    ) -> PreparedRequest:
        """Everything up to the first byte on the wire. Raises
        :class:`ForsendelseValidationError` for bad input, so nothing is sent."""
        url, params = self._url(endpoint, path_params, query_params)
        prepared = PreparedRequest(endpoint.method, url, dict(self._headers), path_params=params)
        if isinstance(timeout, NotGiven):
            # The client's default for this kind of operation, per attempt (no deadline over the
            # retries), on every request: also through an http_client the caller gave.
            default = self.lookup_timeout if endpoint.operation_id in self._safe_to_repeat else self.timeout
            prepared.extensions["timeout"] = default.as_dict()
        else:
            per_call = as_timeout(timeout).as_dict()
            prepared.extensions["timeout"] = per_call
            # A timeout given for the call bounds the whole call, retries included.
            if budget := [v for v in per_call.values() if v is not None]:
                prepared.deadline = time.monotonic() + max(budget)
        if isinstance(body, JsonBody):
            try:
                model = body.model.model_validate(body.values)
            except ValidationError as exc:
                raise ForsendelseValidationError(_problems(exc)) from None
            prepared.content = model.model_dump_json(by_alias=True, exclude_unset=True).encode()
            prepared.headers["Content-Type"] = body.content_type
        elif isinstance(body, MultipartInput):
            prepared.send, prepared.body = self._encode_multipart(endpoint, body)
            prepared.headers.update(prepared.body.headers())
        return prepared

    def check_send(self, endpoint: Endpoint[Any], *, path_params: Mapping[str, Any], body: MultipartInput) -> None:
        """Run every check a send of ``body`` runs before its first byte (the
        path parameters, the documents against the metadata, their content
        types and the pre-send rules), without building the body or
        connecting. Raises :class:`ForsendelseValidationError` with every
        problem; a document that cannot be read raises ``OSError``. The rules
        read only each document's first bytes; a send reads it again."""
        self._url(endpoint, path_params)
        self._checked(endpoint, body, preload=False)

    def prepare_send(
        self,
        endpoint: Endpoint[T],
        *,
        path_params: Mapping[str, Any],
        body: MultipartInput,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> Prepared[T]:
        """Everything a send does before its first byte (the checks, reading a
        small document, encrypting setup, building the body), for
        ``send_prepared`` to send later: a caller can record that it is about
        to send once it knows the send will go out. Raises what the send
        would raise before its first byte. A ``timeout`` runs from now."""
        return self._observed_prepare(
            endpoint,
            path_params,
            lambda: Prepared(endpoint, self._prepare(endpoint, path_params=path_params, body=body, timeout=timeout)),
        )

    @staticmethod
    def _observed_prepare(endpoint: Endpoint[Any], path_params: Mapping[str, Any], prepare: Callable[[], P]) -> P:
        """``prepare()`` of a ``prepare_send``: a send it refuses is reported as
        a send that ended there (one that passes is reported by ``send_prepared``)."""
        started = time.time_ns()
        try:
            return prepare()
        except SertifikatNeeded:
            raise  # not an outcome: the caller fetches the certificate and prepares again
        except BaseException as exc:
            instrumentation.current().operation(endpoint, path_params, send=True, start_ns=started).end(exc)
            raise

    @staticmethod
    def _claim(prepared: Prepared[Any]) -> None:
        """Refuse a prepared send ``send_prepared`` was given before: it is the same letter."""
        if not prepared.claim():
            raise errors.PreparedAlreadySentError(
                f"this prepared {prepared.endpoint.operation_id} was given to send_prepared before: it is "
                "the same letter, and sending it again could deliver it twice. Nothing was sent now. If the "
                "first send failed, settle it (avklar_utfall) and prepare the send again."
            )

    def _checked(self, endpoint: Endpoint[Any], send: MultipartInput, *, preload: bool) -> PreparedSend:
        """The send as the checks see it, after they passed: the metadata as it
        will be serialized and the documents in wire order (plaintext)."""
        metadata = send.metadata.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if self._generate_ekstern_referanse and not metadata.get(EKSTERN_REFERANSE_KEY):
            # Something to look the forsendelse up by if the outcome of the send is unknown.
            metadata[EKSTERN_REFERANSE_KEY] = f"fiks-svarut-{uuid4()}"
        if send.kryptering:
            metadata[KRYPTERT_KEY] = True  # the documents go as CMS, and SvarUt must know
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
        # Checks and the outcome-unknown hashes see the plaintext; only the wire sees ciphertext.
        prepared = PreparedSend(endpoint.operation_id, metadata, tuple(documents), encrypting=send.kryptering)
        if self._checks and preload:
            # The checks sniff each document, and a small body is read whole before it goes out: one read for both.
            multipart.preload_small(documents)
        problems = multipart.content_type_problems(documents, file_part=send.file_part)
        refused: list[ForsendelseValidationError] = []
        for check in self._checks:
            try:
                check(prepared)
            except ForsendelseValidationError as exc:
                refused.append(exc)
        if len(refused) == 1 and not problems:
            raise refused[0]  # as the check raised it
        if problems or refused:
            # Every problem in one error: ours and each check's.
            raise ForsendelseValidationError(problems + [p for exc in refused for p in exc.problems])
        return prepared

    def _encode_multipart(
        self, endpoint: Endpoint[Any], send: MultipartInput
    ) -> tuple[PreparedSend, multipart.MultipartBody]:
        prepared = self._checked(endpoint, send, preload=True)
        documents = list(prepared.documents)
        if send.kryptering:
            documents = self._encrypted(documents)
        body = multipart.encode(
            metadata_part=send.metadata_part,
            # The dict the checks saw is what goes on the wire: one serialization.
            metadata_json=metadata_json(prepared.metadata),
            file_part=send.file_part,
            documents=documents,
        )
        return prepared, body

    def _encrypted(self, documents: list[multipart.Document]) -> list[multipart.Document]:
        from svarut.runtime import kryptering  # cryptography is only imported by those who encrypt

        if self._kryptering is None:
            # Fetching it is I/O, which is the sync and async loops' business: they fetch it and prepare again.
            raise SertifikatNeeded(f"{type(self).__name__} has no HTTP client to fetch SvarUt's certificate with")
        return [
            d
            if kryptering.is_enveloped_data(d.source.head(64))  # already encrypted by the caller
            else multipart.Document(d.filnavn, d.mime_type, self._kryptering.wrap(d.source))
            for d in documents
        ]

    def _sertifikat_url(self) -> str:
        from svarut.runtime.sertifikat import sertifikat_url

        return sertifikat_url(self.base_url)

    def _use_sertifikat(self, sertifikat: SvarUtSertifikat) -> None:
        from svarut.runtime.kryptering import Kryptering

        if self._kryptering is None:
            self._kryptering = Kryptering(sertifikat)

    @staticmethod
    def _request_for(
        http: httpx2.Client | httpx2.AsyncClient,
        prepared: PreparedRequest,
        stream: httpx2.SyncByteStream | httpx2.AsyncByteStream | None,
    ) -> httpx2.Request:
        request = http.build_request(
            prepared.method,
            _parsed_url(prepared.url),
            headers=prepared.headers,
            content=prepared.content,
            extensions=prepared.extensions,
        )
        if stream is not None:
            # Our stream replaces the empty body httpx2 prepared; its framing
            # comes from our headers (exact Content-Length, else chunked).
            request.stream = stream
            if "Content-Length" not in prepared.headers:
                request.headers.pop("Content-Length", None)
                request.headers["Transfer-Encoding"] = "chunked"
        return request

    # --- sending (sync; the async client runs it in a worker thread) ---------

    def _exchange(
        self,
        http: httpx2.Client,
        builder: httpx2.Client | httpx2.AsyncClient,
        endpoint: Endpoint[T],
        prepared: PreparedRequest,
        abort: threading.Event | None = None,
        op: Operation = NO_OPERATION,
    ) -> T:
        """Send ``prepared`` through ``http`` until it succeeds, fails for
        good, or the retry policy says stop. ``abort`` stops a body mid-write;
        ``op`` hears each attempt, retry decision and the result."""
        import httpx2

        started = time.perf_counter()
        attempt = 0
        while True:
            if abort is not None and abort.is_set():
                # Cancelled while waiting to retry: the caller has gone, so no further attempt.
                raise multipart.StreamAborted("the send was cancelled before its next attempt")
            stream = prepared.body.sync_stream(abort) if prepared.body else None
            request = self._request_for(builder, prepared, stream)
            prepared.attempt_started = datetime.now(UTC)
            op.attempt(attempt + 1)
            try:
                try:
                    response = http.send(request, auth=self._auth, stream=True)
                    try:
                        data, _ = read_bounded(response.iter_bytes(), MAX_RESPONSE_BYTES)
                    finally:
                        response.close()
                finally:
                    op.wrote(body_bytes_sent(request))
            except httpx2.TransportError as exc:
                if (delay := self._retry_after(endpoint, prepared, attempt, error=exc, op=op)) is None:
                    failure = self._failure(endpoint, prepared, exc, request)
                    self._log_send(endpoint, prepared, request, started, failure)
                    raise failure from exc
            else:
                if (delay := self._retry_after(endpoint, prepared, attempt, response=response, op=op)) is None:
                    result = self._finish(endpoint, prepared, response, data, started)
                    op.succeeded(result)
                    return result
            time.sleep(delay)
            attempt += 1

    def _finish(
        self, endpoint: Endpoint[T], prepared: PreparedRequest, response: httpx2.Response, body: bytes, started: float
    ) -> T:
        """:meth:`_result`, and the log line of a send."""
        if prepared.send is None:
            return self._result(endpoint, prepared, response, body)
        try:
            result = self._result(endpoint, prepared, response, body)
        except errors.APIError as exc:
            self._log_send(endpoint, prepared, response.request, started, exc)
            raise
        self._log_send(endpoint, prepared, response.request, started, result=result)
        return result

    @staticmethod
    def _log_send(
        endpoint: Endpoint[Any],
        prepared: PreparedRequest,
        request: httpx2.Request,
        started: float,
        error: BaseException | None = None,
        result: object = None,
    ) -> None:
        """One INFO line per send: what went where, how big, how long, and
        how it ended. Nothing from the headers, so no secret can leak."""
        if prepared.send is None or not log.isEnabledFor(logging.INFO):
            return
        stream = request.stream
        sent = stream.sent if isinstance(stream, multipart.BodyStream) else None
        konto = ", ".join(prepared.path_params.values())
        ekstern_referanse = prepared.send.metadata.get(EKSTERN_REFERANSE_KEY)
        duration = time.perf_counter() - started
        failure = None if error is None else type(error).__name__
        log.info(
            "%s konto=%s forsendelse=%s eksternReferanse=%s bytes=%s duration=%.3fs%s",
            endpoint.operation_id,
            konto,
            result if error is None else "-",
            ekstern_referanse,
            sent,
            duration,
            "" if failure is None else f" failed: {failure}",
            extra={
                "svarut_operation": endpoint.operation_id,
                "svarut_konto": konto,
                "svarut_forsendelse_id": None if error is not None else result,
                "svarut_ekstern_referanse": ekstern_referanse,
                "svarut_bytes": sent,
                "svarut_duration": duration,
                "svarut_error": failure,
            },
        )

    # --- deciding -------------------------------------------------------

    def _replayable(self, prepared: PreparedRequest) -> bool:
        return prepared.body is None or prepared.body.replayable

    def _retry_after(
        self,
        endpoint: Endpoint[Any],
        prepared: PreparedRequest,
        attempt: int,
        *,
        error: httpx2.TransportError | None = None,
        response: httpx2.Response | None = None,
        op: Operation = NO_OPERATION,
    ) -> float | None:
        """How long to wait before the next attempt after ``error`` or
        ``response``, or None for no further attempt; ``op`` hears the decision."""
        if response is not None and response.is_success:
            return None
        options: dict[str, Any] = {
            "attempt": attempt,
            "safe_to_repeat": endpoint.operation_id in self._safe_to_repeat,
            "replayable": self._replayable(prepared),
            "error": error,
            "response": response,
        }
        if type(self._retry).delay is RetryPolicy.delay:
            decision = self._retry.decide(**options)
        else:  # a policy of the caller's own: its delay() decides, and says no reason
            delay = self._retry.delay(**options)
            status = response.status_code if response is not None else None
            reason = type(error).__name__ if error is not None else f"status {status}"
            decision = RetryDecision(delay, reason)
        delay = _within_deadline(prepared, decision.delay)
        reason = decision.reason
        if delay is None and decision.delay is not None:
            reason = "the call's timeout runs out before the next attempt"
        op.retry(attempt=attempt + 1, reason=reason, delay=delay)
        return delay

    def _may_have_arrived(self, endpoint: Endpoint[Any], request: httpx2.Request) -> bool:
        """Whether a failed send may have been accepted: SvarUt had the whole
        body. A body the transport never finished cannot have been accepted."""
        if endpoint.operation_id in self._safe_to_repeat or not isinstance(request.stream, multipart.BodyStream):
            return False
        return request.stream.completed

    # --- handling -------------------------------------------------------

    def _result(self, endpoint: Endpoint[T], prepared: PreparedRequest, response: httpx2.Response, body: bytes) -> T:
        log.debug("%s %s -> %s", endpoint.method, endpoint.operation_id, response.status_code)
        if response.is_success:
            try:
                return endpoint.parse(body)
            except ValidationError as exc:
                invalid = exc
            # Raised outside the except block: pydantic's error quotes the body, secrets and all.
            unreadable = errors.APIResponseValidationError(response=response, body=body, cause=invalid)
            if prepared.send is not None and endpoint.operation_id not in self._safe_to_repeat:
                # SvarUt said yes, but not with the id: it may well have the forsendelse.
                raise self._outcome_unknown(prepared, unreadable, response.request) from unreadable
            raise unreadable
        # A gateway may echo the request headers: nothing derived from the body may hold them.
        body = errors.redact(body, errors.request_secrets(response.request))
        # An error body is parsed once: for the model, the error class and the error's fields.
        data = errors.json_object(body)
        fields = data or {}
        error_message = _lenient(endpoint.error_model, data) if endpoint.error_model else None
        cls = errors.status_error_class(response.status_code, fields)
        error = cls(response=response, body=body, error_message=error_message, fields=fields)
        if (
            response.status_code >= 500
            and not is_rejection(response)
            and self._may_have_arrived(endpoint, response.request)
        ):
            raise self._outcome_unknown(prepared, error, response.request) from error
        raise error

    def _failure(
        self, endpoint: Endpoint[Any], prepared: PreparedRequest, exc: httpx2.TransportError, request: httpx2.Request
    ) -> errors.APIError:
        import httpx2

        what = f"{request.method} {request.url.copy_with(query=None)}"
        error: errors.APIError
        if isinstance(exc, httpx2.TimeoutException):
            error = APITimeoutError(f"{what} timed out ({type(exc).__name__})", request=request)
        else:
            error = APIConnectionError(f"{what} failed: {type(exc).__name__}: {exc}", request=request)
        if self._may_have_arrived(endpoint, request):
            return self._outcome_unknown(prepared, error, request)
        return error

    @staticmethod
    def _outcome_unknown(
        prepared: PreparedRequest, cause: Exception, request: httpx2.Request | None
    ) -> errors.SendOutcomeUnknownError:
        assert prepared.send is not None
        metadata = prepared.send.metadata
        return errors.SendOutcomeUnknownError(
            operation_id=prepared.send.operation_id,
            konto_id=", ".join(prepared.path_params.values()),
            ekstern_referanse=metadata.get(EKSTERN_REFERANSE_KEY),
            korrelasjonsid=metadata.get(KORRELASJONSID_KEY),
            dokumenter_sha256={d.filnavn: d.sha256() for d in prepared.send.documents},
            cause=cause,
            request=request,
            sendt=prepared.attempt_started,
        )


def body_bytes_sent(request: httpx2.Request) -> int:
    """The bytes of a send's body the attempt put on the wire (0 for a request with no streamed body)."""
    stream = request.stream
    return stream.sent if isinstance(stream, multipart.BodyStream) else 0


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx2.URL:
    """``url`` parsed once: httpx2 checks a URL character by character (~20 us
    a send), and a program sends to the same few konto URLs over and over.
    An ``httpx2.URL`` is immutable, so requests can share it."""
    import httpx2

    return httpx2.URL(url)


@functools.lru_cache(maxsize=256)
def _uuid_text(value: str) -> str:
    """The canonical text of the UUID ``value`` (ValueError if it is none);
    cached, as a program sends from the same few kontoer over and over."""
    return str(UUID(value))


def _problems(exc: ValidationError) -> list[Problem]:
    return [Problem(".".join(str(p) for p in e["loc"]), e["type"], e["msg"]) for e in exc.errors()]


def _lenient(model: type[BaseModel], data: dict[str, Any] | None) -> BaseModel | None:
    """Read an error body (``data``: it parsed as a JSON object, or None)
    into ``model``, dropping the fields that do not have the spec's type (the
    live server sends ``errorJson`` as an object where the spec says string),
    so the rest is still available."""
    if data is None:
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


def _within_deadline(prepared: PreparedRequest, delay: float | None) -> float | None:
    """``delay`` if the next attempt still fits the call's own timeout, which
    it then gets only the rest of; None when that time would run out first."""
    if delay is None or prepared.deadline is None:
        return delay
    left = prepared.deadline - time.monotonic() - delay
    if left <= 0:
        log.info("no retry: the call's timeout runs out before the next attempt")
        return None
    prepared.extensions["timeout"] = {
        phase: left if value is None else min(value, left) for phase, value in prepared.extensions["timeout"].items()
    }
    return delay


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments the caller gave, so unset fields stay unset."""
    return {k: v for k, v in values.items() if v is not None}
