"""The instrumentation hooks: what the send loops report, and the listener
that hears it.

The loops (:mod:`svarut.runtime.client`, :mod:`svarut.runtime.base_client`)
and the Maskinporten token provider report an operation's start and end
(:class:`Operation`), each attempt, each retry decision and the bytes put on
the wire, and each token fetch, to :func:`current`: an
:class:`Instrumentation`. The default one does nothing. A batch runner reports
its run and each letter through :func:`batch_run`.

Which listener, decided once, at the first operation (not at ``import svarut``):
the OpenTelemetry one (:mod:`svarut.runtime._otel`) when ``opentelemetry-api``
is installed (the ``fiks-svarut[otel]`` extra) and not switched off by
``OTEL_PYTHON_INSTRUMENTATION_SVARUT_ENABLED=false`` or ``svarut`` in
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; otherwise the no-op one, and
opentelemetry is never imported. That is OpenTelemetry's convention for a
library: it uses the API's global providers, which record nothing until the
application installs the SDK. :func:`set_instrumentation` replaces the choice
(``svarut.otel.instrument`` with the application's own providers, tests).

Nothing reported here holds personal data: the listener gets the prepared
request, and reads from it only ids SvarUt or the client made (konto,
eksternReferanse, forsendelse id), counts, sizes and error class names.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from svarut.runtime import errors

if TYPE_CHECKING:
    from svarut.runtime.request_types import Endpoint, PreparedRequest

__all__ = [
    "DISABLE_VARIABLE",
    "BatchRun",
    "Instrumentation",
    "Operation",
    "batch_run",
    "current",
    "letter",
    "operation_name",
    "outcome_of",
    "set_instrumentation",
]

#: Set to ``false`` to keep the client from loading OpenTelemetry even where it is installed.
DISABLE_VARIABLE = "OTEL_PYTHON_INSTRUMENTATION_SVARUT_ENABLED"
_DISABLED_LIST_VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"

SENT = "sent"
OK = "ok"
REFUSED = "refused"
UNKNOWN = "unknown"
ERROR = "error"

# 408 and 429 say "not now", not "not this letter".
_NOT_A_REFUSAL = frozenset({408, 429})


class Operation:
    """One operation, from its start to its end; this base class records nothing.

    The loops call, in order: :meth:`prepared` once the request is built,
    then per attempt :meth:`attempt`, :meth:`wrote` and (after a failed one)
    :meth:`retry`, then :meth:`succeeded` with the result; :meth:`end` (or
    leaving the ``with`` block) closes it, with the exception if it failed.
    A listener makes its span current between ``__enter__`` and ``__exit__``,
    so a token fetch inside is its child."""

    __slots__ = ()

    def __enter__(self) -> Operation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end(exc)

    def prepared(self, request: PreparedRequest) -> None:
        """The request is built (the send passed its checks)."""

    def attempt(self, number: int) -> None:
        """Attempt ``number`` (1 for the first) begins."""

    def wrote(self, nbytes: int) -> None:
        """An attempt put ``nbytes`` of the body on the wire."""

    def retry(self, *, attempt: int, reason: str, delay: float | None) -> None:
        """After failed attempt ``attempt``: another in ``delay`` seconds, or None for none, because ``reason``."""

    def succeeded(self, result: object) -> None:
        """The operation's result (a forsendelse id for a send)."""

    def end(self, error: BaseException | None) -> None:
        """The operation is over; ``error`` is what it raised, if it failed."""


NO_OPERATION = Operation()


class BatchRun:
    """A batch run, from :func:`batch_run`; this base class records nothing."""

    __slots__ = ()

    @contextlib.contextmanager
    def letter(self, ref: object = None, *, ekstern_referanse: str | None = None) -> Iterator[None]:
        """Around one letter's prepare and send, in whatever thread or task
        sends it: its operation becomes a child of the letter, the letter of the run."""
        yield


class Instrumentation:
    """The listener of the hooks; this base class, the default, records nothing."""

    def operation(
        self,
        endpoint: Endpoint[Any],
        path_params: Mapping[str, Any],
        *,
        send: bool,
        start_ns: int | None = None,
    ) -> Operation:
        """An operation of ``endpoint`` begins (began at ``start_ns``, ``time.time_ns()``, if given).
        ``send``: it is a send of a forsendelse."""
        return NO_OPERATION

    @contextlib.contextmanager
    def token_fetch(self) -> Iterator[None]:
        """Around a Maskinporten token request (not a token from the cache)."""
        yield

    @contextlib.contextmanager
    def batch_run(self, *, konto_id: object = None, letters: int | None = None) -> Iterator[BatchRun]:
        """Around a batch run; what it yields gives each letter its span."""
        yield BatchRun()


_lock = threading.Lock()
_current: Instrumentation | None = None


def current() -> Instrumentation:
    """The listener: the one :func:`set_instrumentation` set, else chosen at the first call (see the module)."""
    global _current
    found = _current
    if found is None:
        with _lock:
            if _current is None:
                _current = _choose()
            found = _current
    return found


def set_instrumentation(instrumentation: Instrumentation | None) -> Instrumentation | None:
    """Make ``instrumentation`` the listener (None: choose again at the next
    operation, as at start); returns the one it replaces (None if none was chosen yet)."""
    global _current
    with _lock:
        previous, _current = _current, instrumentation
    return previous


def _choose() -> Instrumentation:
    if not enabled_by_environment(os.environ):
        return Instrumentation()
    # find_spec of a top-level name imports nothing: without the extra, opentelemetry stays unloaded.
    if importlib.util.find_spec("opentelemetry") is None:
        return Instrumentation()
    try:
        from svarut.runtime import _otel
    except ImportError:  # an opentelemetry namespace without the API (another package's)
        return Instrumentation()
    return _otel.OpenTelemetryInstrumentation()


def enabled_by_environment(environ: Mapping[str, str]) -> bool:
    """Whether the environment leaves the OpenTelemetry instrumentation on (it is, unless switched off)."""
    if environ.get(DISABLE_VARIABLE, "").strip().lower() in ("false", "0", "no", "off"):
        return False
    disabled = environ.get(_DISABLED_LIST_VARIABLE, "")
    return "svarut" not in {name.strip() for name in disabled.split(",")}


_runs: dict[int, BatchRun] = {}


@contextlib.contextmanager
def batch_run(run: object = None, *, konto_id: object = None, letters: int | None = None) -> Iterator[BatchRun]:
    """Around a batch run (``konto_id`` it sends from, ``letters`` in it, if
    known): one parent span. ``letter(run, ref)`` around each letter, in any
    thread or task, gives it its span under this one; ``run`` is any object
    of the runner's that both calls can name (its batch), or use what this yields.

    >>> with instrumentation.batch_run(batch, konto_id=konto_id):  # doctest: +SKIP
    ...     with instrumentation.letter(batch, row.line):  # in each sender
    ...         client.send_prepared(batch.ready(row, client, intent))
    """
    with current().batch_run(konto_id=konto_id, letters=letters) as traced:
        if run is None:
            yield traced
            return
        with _lock:
            _runs[id(run)] = traced
        try:
            yield traced
        finally:
            with _lock:
                _runs.pop(id(run), None)


def letter(
    run: object, ref: object = None, *, ekstern_referanse: str | None = None
) -> contextlib.AbstractContextManager[None]:
    """Around one letter of the batch run ``run`` names (see :func:`batch_run`):
    ``ref`` is its manifest line (an int; other values are left out: they are
    the caller's text). Outside a run, nothing is recorded."""
    with _lock:
        traced = _runs.get(id(run))
    return (traced or BatchRun()).letter(ref, ekstern_referanse=ekstern_referanse)


def outcome_of(error: BaseException | None, *, send: bool) -> str:
    """How an operation ended: ``sent`` (``ok`` for one that is no send),
    ``refused`` (the checks or SvarUt said no to this request: a 4xx),
    ``unknown`` (a send SvarUt may or may not have), or ``error``."""
    if error is None:
        return SENT if send else OK
    if isinstance(error, errors.SendOutcomeUnknownError):
        return UNKNOWN
    if isinstance(error, errors.ForsendelseValidationError):
        return REFUSED
    if isinstance(error, errors.APIStatusError) and 400 <= error.status_code < 500:
        return ERROR if error.status_code in _NOT_A_REFUSAL else REFUSED
    return ERROR


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def operation_name(endpoint: Endpoint[Any]) -> str:
    """The client method of ``endpoint``: its operationId in snake_case (``sendTilPerson`` → ``send_til_person``)."""
    return _CAMEL.sub("_", endpoint.operation_id).lower()


def konto_ids(path_params: Mapping[str, Any]) -> str | None:
    """The path's ids (the konto), only where each is a UUID: never a value a caller mistyped."""
    found = []
    for value in path_params.values():
        try:
            found.append(str(value if isinstance(value, UUID) else UUID(str(value))))
        except ValueError:
            return None
    return ", ".join(found) or None
