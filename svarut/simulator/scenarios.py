"""Scenario hooks: make the simulator misbehave, or make a forsendelse fail.

:class:`Scenarios` (``simulator.scenarios``) holds two kinds of rule:

- **Faults** in the HTTP exchange, for the next ``count`` requests (all API
  requests, or ``only="send"``/``only="status"``/``only="lookup"``):
  :meth:`~Scenarios.fail` answers a 5xx (optionally with ``Retry-After``)
  after reading the body, without keeping the forsendelse;
  :meth:`~Scenarios.slow` delays the answer; :meth:`~Scenarios.reset` resets
  the connection, before reading the body or after it (then optionally
  *keeping* the forsendelse: SvarUt got it, the client never hears so).
- **Outcomes**: :meth:`~Scenarios.force_status` makes the next ``count``
  sends, or every send to one mottaker, end in AVVIST, IKKE_LEVERT,
  FEILET_UNDER_MOTTAK (or any other status of the specs the simulator was
  generated from, one :mod:`svarut.statuses` does not classify included)
  instead of the channel's happy path. A status of another spec version
  (VARSLET on a spec from version 16 on, SENDT_ALTINN before it) is refused,
  with the reason.

Rules are used up in the order they were added; :meth:`~Scenarios.clear`
drops them all. Everything here is thread-safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from svarut import statuses

__all__ = ["Fault", "Operation", "Outcome", "RequestFaults", "ResetWhen", "Scenarios"]

Operation = Literal["send", "status", "lookup"]
ResetWhen = Literal["before_body", "after_body"]


@dataclass
class Fault:
    """One fault rule; ``remaining`` counts the requests it still applies to."""

    kind: Literal["error", "slow", "reset"]
    remaining: int
    only: Operation | None
    status: int = 500
    retry_after: int | None = None
    seconds: float = 0.0
    when: ResetWhen = "after_body"
    accept: bool = False


@dataclass(frozen=True)
class RequestFaults:
    """The faults one request gets: at most one of each kind."""

    error: Fault | None = None
    slow: Fault | None = None
    reset: Fault | None = None


@dataclass
class Outcome:
    """A forced final status, for the next ``remaining`` sends or for one mottaker."""

    status: str
    remaining: int | None
    mottaker: str | None


class Scenarios:
    """The simulator's scenario rules (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._outcomes: list[Outcome] = []

    # --- faults -----------------------------------------------------------

    def fail(
        self, status: int = 500, *, count: int = 1, only: Operation | None = None, retry_after: int | None = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (a 5xx) after
        reading their bodies; a send so answered is not kept. ``retry_after``
        adds a ``Retry-After`` header (seconds)."""
        if not 500 <= status <= 599:
            raise ValueError(f"fail() simulates server errors: status must be 5xx, got {status}")
        self._add(Fault("error", _count(count), only, status=status, retry_after=retry_after))

    def slow(self, seconds: float, *, count: int = 1, only: Operation | None = None) -> None:
        """Wait ``seconds`` before answering each of the next ``count``
        requests (the request is processed, and a send kept, as usual)."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._add(Fault("slow", _count(count), only, seconds=seconds))

    def reset(
        self,
        *,
        count: int = 1,
        only: Operation | None = None,
        when: ResetWhen = "after_body",
        accept: bool = False,
    ) -> None:
        """Reset the connection (TCP RST) of the next ``count`` requests.

        ``when="before_body"`` resets as soon as the headers are in.
        ``"after_body"`` reads the whole body first; ``accept=True`` then
        keeps the forsendelse, as if SvarUt took it and the answer was lost.
        """
        if when not in ("before_body", "after_body"):
            raise ValueError(f"when must be 'before_body' or 'after_body', got {when!r}")
        self._add(Fault("reset", _count(count), only, when=when, accept=accept))

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take_faults(self, operation: Operation) -> RequestFaults:
        """Use up the first matching rule of each kind for one ``operation`` request."""
        found: dict[str, Fault] = {}
        with self._lock:
            for fault in self._faults:
                if fault.kind in found or fault.only not in (None, operation):
                    continue
                fault.remaining -= 1
                found[fault.kind] = fault
            self._faults = [f for f in self._faults if f.remaining > 0]
        return RequestFaults(error=found.get("error"), slow=found.get("slow"), reset=found.get("reset"))

    # --- outcomes ---------------------------------------------------------

    def force_status(self, status: str, *, count: int | None = None, mottaker: str | None = None) -> None:
        """End sends in ``status`` rather than the channel's happy path.

        With ``mottaker`` (a fødselsnummer or organisasjonsnummer, an NHN
        pasient's fødselsnummer or HER-id, or a print mottaker's navn), every
        send to it, or the next ``count`` of them; without, the next ``count``
        sends (default 1). ``status`` must be one of the specs' statuses.
        """
        value = str(status)
        known = statuses.spec_statuses()
        if known is None:
            raise ValueError("the specs the simulator was generated from have no status search, so no statuses")
        if value not in known:
            # Say why for a status of another spec version (VARSLET from version 16 on), not just that it is gone.
            reason = statuses.why_absent(value)
            because = f" ({reason})" if reason else ""
            raise ValueError(
                f"force_status: {value!r} is not a status of the specs{because}; one of {', '.join(known)}"
            )
        if mottaker is None:
            remaining: int | None = _count(1 if count is None else count)
        else:
            remaining = None if count is None else _count(count)
        with self._lock:
            self._outcomes.append(Outcome(value, remaining, mottaker))

    def take_outcome(self, mottakere: set[str]) -> str | None:
        """The forced status for a send to any of ``mottakere``, using it up."""
        with self._lock:
            for outcome in self._outcomes:
                if outcome.mottaker is not None and outcome.mottaker not in mottakere:
                    continue
                if outcome.remaining is not None:
                    outcome.remaining -= 1
                    if outcome.remaining == 0:
                        self._outcomes.remove(outcome)
                return outcome.status
        return None

    def clear(self) -> None:
        """Drop every fault and forced outcome."""
        with self._lock:
            self._faults.clear()
            self._outcomes.clear()


def _count(count: int) -> int:
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return count
