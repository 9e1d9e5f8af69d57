"""When a failed request may be sent again, and after how long.

Sending a forsendelse is not idempotent: a send is retried only where SvarUt
cannot have received it (the connection was never made, or the pool had no
connection to give) or where SvarUt said it rejected it and when to come back
(429 or 503 with ``Retry-After``). Operations that are safe to repeat (the
status search) are also retried on other connection errors and on 502/503/504.

Everything here is pure: the clients ask :meth:`RetryPolicy.delay` and sleep
(or not) themselves.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx2

    # The connection was never established, so no request byte reached SvarUt.
    NOT_SENT: tuple[type[httpx2.TransportError], ...]

log = logging.getLogger("svarut.retry")

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


def __getattr__(name: str) -> Any:
    """``NOT_SENT``, made when first read: httpx2 is imported at the first
    request, not with the client (an error to decide on means it was)."""
    if name != "NOT_SENT":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import httpx2

    value = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.UnsupportedProtocol)
    return globals().setdefault(name, value)


def _not_sent() -> tuple[type[httpx2.TransportError], ...]:
    not_sent: tuple[type[httpx2.TransportError], ...] = globals().get("NOT_SENT") or __getattr__("NOT_SENT")
    return not_sent


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring ``Retry-After``.

    ``max_retries`` counts the extra attempts after the first.
    """

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 120.0

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_delay, self.initial_delay * 2.0**attempt)
        jitter: float = random.uniform(-self.jitter, self.jitter)  # noqa: S311 (not crypto)
        return delay * (1 + jitter)

    def delay(
        self,
        *,
        attempt: int,
        safe_to_repeat: bool,
        replayable: bool,
        error: httpx2.TransportError | None = None,
        response: httpx2.Response | None = None,
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None for no retry."""
        return self.decide(
            attempt=attempt, safe_to_repeat=safe_to_repeat, replayable=replayable, error=error, response=response
        ).delay

    def decide(
        self,
        *,
        attempt: int,
        safe_to_repeat: bool,
        replayable: bool,
        error: httpx2.TransportError | None = None,
        response: httpx2.Response | None = None,
    ) -> RetryDecision:
        """:meth:`delay`, with the reason (for the log and the trace)."""
        what = f"attempt {attempt + 1}"
        if attempt >= self.max_retries:
            log.info("%s: no retry, %d retries used", what, self.max_retries)
            return RetryDecision(None, f"{self.max_retries} retries used")
        if not replayable:
            log.info("%s: no retry, the request body cannot be read again", what)
            return RetryDecision(None, "the request body cannot be read again")
        if error is not None:
            name = type(error).__name__
            if _certificate_refused(error):
                log.info("%s: the server's TLS certificate was refused; not retrying", what)
                return RetryDecision(None, f"{name}: the server's TLS certificate was refused")
            if isinstance(error, _not_sent()) or safe_to_repeat:
                delay = self.backoff(attempt)
                log.info("%s: %s; retrying in %.2fs", what, name, delay)
                return RetryDecision(delay, name)
            log.info("%s: %s after the request may have reached SvarUt; not retrying", what, name)
            return RetryDecision(None, f"{name} after the request may have reached SvarUt")
        assert response is not None
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        rejected = is_rejection(response)
        if not (rejected or (safe_to_repeat and status in RETRYABLE_STATUS)):
            log.info("%s: status %d is not retried", what, status)
            return RetryDecision(None, f"status {status} is not retried")
        if retry_after is not None and retry_after > self.max_retry_after:
            log.info("%s: Retry-After %.0fs exceeds %.0fs; not retrying", what, retry_after, self.max_retry_after)
            return RetryDecision(None, f"status {status}: Retry-After exceeds {self.max_retry_after:.0f}s")
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        log.info("%s: status %d; retrying in %.2fs", what, status, delay)
        return RetryDecision(delay, f"status {status}" + (", Retry-After" if retry_after is not None else ""))


@dataclass(frozen=True)
class RetryDecision:
    """What :meth:`RetryPolicy.decide` decided: seconds to wait before the
    next attempt (None: no further attempt), and why, in words that hold no
    data of the request."""

    delay: float | None
    reason: str


def is_rejection(response: httpx2.Response) -> bool:
    """SvarUt (or its gateway) turned the request away and said when to come
    back: it did not process it."""
    return response.status_code in (429, 503) and parse_retry_after(response.headers.get("Retry-After")) is not None


def _certificate_refused(error: BaseException) -> bool:
    # A bad certificate stays bad: retrying only delays the error.
    import ssl  # loaded by httpx2 by now: there was an error from it

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # an HTTP date is rare, and email is slow to import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


NO_RETRIES = RetryPolicy(max_retries=0)
