"""OpenTelemetry for the client: spans and metrics of every operation, the
Maskinporten token requests and batch runs (``pip install 'fiks-svarut[otel]'``;
see the Observability guide).

With the extra installed, the client reports through OpenTelemetry's global
tracer and meter providers by itself, from its first operation on: nothing
to call. What is recorded, and where it goes, is the SDK's business, which
the application sets up; without it nothing is recorded. Call
:func:`instrument` to use providers of your own instead of the global ones,
and :func:`uninstrument` to stop (the environment variable
``OTEL_PYTHON_INSTRUMENTATION_SVARUT_ENABLED=false`` keeps the client from
loading OpenTelemetry at all). Importing this module imports OpenTelemetry.
"""

from __future__ import annotations

from opentelemetry import metrics, trace

from svarut.runtime import instrumentation
from svarut.runtime._otel import OpenTelemetryInstrumentation

__all__ = ["OpenTelemetryInstrumentation", "instrument", "uninstrument"]


def instrument(
    *, tracer_provider: trace.TracerProvider | None = None, meter_provider: metrics.MeterProvider | None = None
) -> None:
    """Report every client's operations through ``tracer_provider`` and
    ``meter_provider`` (each defaults to OpenTelemetry's global one), for the
    whole process, from the next operation on.

    Args:
        tracer_provider: Where the spans go.
        meter_provider: Where the metrics go.

    >>> from opentelemetry.sdk.trace import TracerProvider  # doctest: +SKIP
    >>> svarut.otel.instrument(tracer_provider=TracerProvider())  # doctest: +SKIP
    """
    instrumentation.set_instrumentation(
        OpenTelemetryInstrumentation(tracer_provider=tracer_provider, meter_provider=meter_provider)
    )


def uninstrument() -> None:
    """Report nothing from the next operation on, until :func:`instrument` is called."""
    instrumentation.set_instrumentation(instrumentation.Instrumentation())
