"""The OpenTelemetry listener of the instrumentation hooks
(:mod:`svarut.runtime.instrumentation`): spans and metrics through
``opentelemetry-api`` only (the ``fiks-svarut[otel]`` extra), loaded the first
time an operation runs with the extra installed. The SDK, and so whether
anything is recorded and where it goes, is the application's choice.

Spans: ``svarut.<operation>`` per operation (``svarut.send_til_person``,
``svarut.hent_statuser``, ...), kind CLIENT, a child of the caller's current
span; ``svarut.maskinporten.token`` per token request, a child of the
operation that needed it; ``svarut.batch.run`` and ``svarut.batch.letter``.
Each retry decision is an event ``svarut.retry_decision`` on the operation.

Metrics (sends only, but the token fetches): ``svarut.sends`` (by outcome),
``svarut.sent.bytes``, ``svarut.send.duration`` (seconds),
``svarut.sends.unknown`` and ``svarut.maskinporten.token_fetches``.

Attribute values are ids SvarUt or the client made (konto, eksternReferanse,
forsendelse id), counts, sizes, outcomes and error class names: never a
fødselsnummer, a name, an address or an exception's message, which may quote them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.trace import SpanKind, Status, StatusCode

from svarut.runtime import instrumentation
from svarut.runtime.instrumentation import BatchRun, Instrumentation, Operation

if TYPE_CHECKING:
    from svarut.runtime.request_types import Endpoint, PreparedRequest

SCOPE = "svarut"
# The metadata key of the reference the caller (or the client) gave the forsendelse.
_EKSTERN_REFERANSE_KEY = "eksternReferanse"

OPERATION = "svarut.operation"
KONTO = "svarut.konto_id"
KIND = "svarut.kind"
DOCUMENT_COUNT = "svarut.document.count"
DOCUMENT_BYTES = "svarut.document.bytes"
EKSTERN_REFERANSE = "svarut.ekstern_referanse"
FORSENDELSE_ID = "svarut.forsendelse_id"
ATTEMPTS = "svarut.attempts"
OUTCOME = "svarut.outcome"
SENT_BYTES = "svarut.sent.bytes"
ERROR_TYPE = "error.type"  # OpenTelemetry's semantic convention


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("fiks-svarut")
    except metadata.PackageNotFoundError:
        return ""


class OpenTelemetryInstrumentation(Instrumentation):
    """Spans and metrics through the given providers, or the API's global
    ones (no-op until the application installs the SDK; set later, they are
    still used: the API's proxies hand over)."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        version = _version()
        # The global providers (none given): until the application installs an SDK they record nothing,
        # and an operation skips the work of reporting to them (tens of microseconds a send).
        self._global = tracer_provider is None and meter_provider is None
        if self._global:
            # Makes the providers the OTEL_PYTHON_*_PROVIDER variables name, if set, so that _unset() sees them.
            trace.get_tracer_provider()
            metrics.get_meter_provider()
        self.tracer = trace.get_tracer(SCOPE, version, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, version, meter_provider=meter_provider)
        self.sends = meter.create_counter("svarut.sends", unit="{send}", description="Sends, by outcome")
        self.sent_bytes = meter.create_counter(
            "svarut.sent.bytes", unit="By", description="Bytes of send bodies put on the wire, retries included"
        )
        self.duration = meter.create_histogram(
            "svarut.send.duration", unit="s", description="Duration of a send, retries included"
        )
        self.unknown = meter.create_counter(
            "svarut.sends.unknown", unit="{send}", description="Sends whose outcome is unknown (to settle)"
        )
        self.token_fetches = meter.create_counter(
            "svarut.maskinporten.token_fetches", unit="{request}", description="Token requests to Maskinporten"
        )

    def operation(
        self,
        endpoint: Endpoint[Any],
        path_params: Mapping[str, Any],
        *,
        send: bool,
        start_ns: int | None = None,
    ) -> Operation:
        if self._global and (_unset() or _idle(trace.get_tracer_provider(), metrics.get_meter_provider())):
            return instrumentation.NO_OPERATION
        return _Operation(self, endpoint, path_params, send=send, start_ns=start_ns)

    @contextlib.contextmanager
    def token_fetch(self) -> Iterator[None]:
        with self.tracer.start_as_current_span(
            "svarut.maskinporten.token", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield
            except BaseException as exc:
                name = type(exc).__name__
                span.set_attributes({OUTCOME: instrumentation.ERROR, ERROR_TYPE: name})
                span.set_status(Status(StatusCode.ERROR, name))
                self.token_fetches.add(1, {OUTCOME: instrumentation.ERROR, ERROR_TYPE: name})
                raise
            span.set_attribute(OUTCOME, instrumentation.OK)
            self.token_fetches.add(1, {OUTCOME: instrumentation.OK})

    @contextlib.contextmanager
    def batch_run(self, *, konto_id: object = None, letters: int | None = None) -> Iterator[BatchRun]:
        attributes: dict[str, Any] = {}
        if konto_id is not None and (konto := instrumentation.konto_ids({"kontoId": konto_id})):
            attributes[KONTO] = konto
        if letters is not None:
            attributes["svarut.batch.letters"] = letters
        with self.tracer.start_as_current_span(
            "svarut.batch.run", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            run = _BatchRun(self, span)
            try:
                yield run
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute(ERROR_TYPE, type(exc).__name__)
                raise
            finally:
                span.set_attribute("svarut.batch.letters_sent", run.letters)


def _unset() -> bool:
    """Whether neither global provider has been set, read without asking the API
    for them: while none is, each ask looks ``OTEL_PYTHON_TRACER_PROVIDER`` or
    ``OTEL_PYTHON_METER_PROVIDER`` up in ``os.environ`` and fails (a KeyError
    raised and caught), about 2 % of a small send's CPU. The API keeps them in
    module globals, None until set (once); where those are not to be found
    (another API version), this says False and the API is asked. Providers
    those variables name are made when the listener is (it asks the API then)."""
    return getattr(trace, "_TRACER_PROVIDER", False) is None and getattr(_metrics_api, "_METER_PROVIDER", False) is None


def _idle(tracer_provider: trace.TracerProvider, meter_provider: metrics.MeterProvider) -> bool:
    """Whether both global providers are still the API's stand-ins (no SDK installed, or a no-op one)."""
    # The API names no public type for its stand-in meter provider: it is told by its class name.
    return isinstance(tracer_provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)) and (
        isinstance(meter_provider, metrics.NoOpMeterProvider) or type(meter_provider).__name__ == "_ProxyMeterProvider"
    )


class _BatchRun(BatchRun):
    __slots__ = ("_count", "_lock", "_otel", "_span")

    def __init__(self, otel: OpenTelemetryInstrumentation, span: trace.Span) -> None:
        self._otel = otel
        self._span = span
        self._lock = threading.Lock()
        self._count = 0

    @property
    def letters(self) -> int:
        return self._count

    @contextlib.contextmanager
    def letter(self, ref: object = None, *, ekstern_referanse: str | None = None) -> Iterator[None]:
        with self._lock:
            self._count += 1
        attributes: dict[str, Any] = {}
        # A manifest line number or the journal's own key; anything else could be the caller's text.
        if isinstance(ref, int) and not isinstance(ref, bool):
            attributes["svarut.batch.ref"] = ref
        if ekstern_referanse:
            attributes[EKSTERN_REFERANSE] = ekstern_referanse
        # Parented on the run explicitly: a sender thread has no current span of the run.
        parent = trace.set_span_in_context(self._span)
        with self._otel.tracer.start_as_current_span(
            "svarut.batch.letter",
            context=parent,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute(ERROR_TYPE, type(exc).__name__)
                raise


class _Operation(Operation):
    __slots__ = (
        "_attempts",
        "_attributes",
        "_ended",
        "_otel",
        "_result",
        "_send",
        "_span",
        "_started",
        "_token",
        "_wrote",
    )

    def __init__(
        self,
        otel: OpenTelemetryInstrumentation,
        endpoint: Endpoint[Any],
        path_params: Mapping[str, Any],
        *,
        send: bool,
        start_ns: int | None,
    ) -> None:
        self._otel = otel
        self._send = send
        name = instrumentation.operation_name(endpoint)
        attributes: dict[str, Any] = {OPERATION: name}
        if send:
            # The channel is the path's last segment: .../forsendelser/person.
            attributes[KIND] = endpoint.path.rstrip("/").rsplit("/", 1)[-1]
        if konto := instrumentation.konto_ids(path_params):
            attributes[KONTO] = konto
        # What the metrics are split by: few values each.
        self._attributes = {k: v for k, v in attributes.items() if k in (OPERATION, KIND)}
        self._span = otel.tracer.start_span(
            f"svarut.{name}", kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns
        )
        elapsed = 0.0 if start_ns is None else max(0.0, (time.time_ns() - start_ns) / 1e9)
        self._started = time.perf_counter() - elapsed
        self._attempts = 0
        self._wrote = 0
        self._result: object = None
        self._token: object = None
        self._ended = False

    def __enter__(self) -> Operation:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            self.end(exc)
        finally:
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
                self._token = None

    def prepared(self, request: PreparedRequest) -> None:
        attributes: dict[str, Any] = {}
        if konto := instrumentation.konto_ids(request.path_params):
            attributes[KONTO] = konto
        if request.send is not None:
            documents = request.send.documents
            attributes[DOCUMENT_COUNT] = len(documents)
            sizes = [d.source.size for d in documents]
            if None not in sizes:
                attributes[DOCUMENT_BYTES] = sum(s for s in sizes if s is not None)
            reference = request.send.metadata.get(_EKSTERN_REFERANSE_KEY)
            if isinstance(reference, str) and reference:
                attributes[EKSTERN_REFERANSE] = reference
        self._span.set_attributes(attributes)

    def attempt(self, number: int) -> None:
        self._attempts = number

    def wrote(self, nbytes: int) -> None:
        self._wrote += nbytes

    def retry(self, *, attempt: int, reason: str, delay: float | None) -> None:
        if self._ended:  # a worker thread still finishing a send its caller gave up on
            return
        event: dict[str, Any] = {"svarut.attempt": attempt, "svarut.retry.reason": reason}
        event["svarut.retry"] = delay is not None
        if delay is not None:
            event["svarut.retry.delay_s"] = delay
        self._span.add_event("svarut.retry_decision", event)

    def succeeded(self, result: object) -> None:
        self._result = result

    def end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        outcome = instrumentation.outcome_of(error, send=self._send)
        span = self._span
        attributes: dict[str, Any] = {OUTCOME: outcome, ATTEMPTS: self._attempts}
        if self._send:
            attributes[SENT_BYTES] = self._wrote
        if error is None:
            if isinstance(self._result, UUID):
                attributes[FORSENDELSE_ID] = str(self._result)
        else:
            attributes[ERROR_TYPE] = type(error).__name__
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.set_attributes(attributes)
        span.end()
        if self._send:
            otel = self._otel
            labels = {**self._attributes, OUTCOME: outcome}
            if error is not None:
                labels[ERROR_TYPE] = type(error).__name__
            otel.sends.add(1, labels)
            otel.duration.record(time.perf_counter() - self._started, labels)
            if self._wrote:
                otel.sent_bytes.add(self._wrote, self._attributes)
            if outcome == instrumentation.UNKNOWN:
                otel.unknown.add(1, self._attributes)
