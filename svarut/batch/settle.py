"""Settling the letters a batch left ``unknown``: asking SvarUt, by the
eksternReferanse each was sent with, whether it has them.

For each unknown letter the client's ``avklar_utfall`` looks the reference
up (:mod:`svarut.utfall`), with ``sendt`` = when the letter's last attempt
began (the journal's ``attempt_started``: a bound never earlier than the
truth, so the window is never cut short):

- ``mottatt``: SvarUt has exactly one forsendelse with it; the letter is
  ``sent``, with that id;
- ``ikke_mottatt``: none, and the attempt began longer ago than the window;
  the letter goes back to ``waiting`` and the next run sends it again (the
  only way an unknown letter is sent again without ``--resend-unknown``);
- ``uavklart``: several, or none yet inside the window; the letter stays
  ``unknown``, with what was found and why.

A letter whose eksternReferanse another letter of the journal carries too is
not looked up: SvarUt's answer might be the other letter's forsendelse. A
letter sent without one cannot be looked up. Both are recorded ``uavklart``.

A lookup that fails settles nothing: that letter stays unknown, untouched.
When SvarUt or the connection failed (not just this letter's lookup), the
letters after it are not looked up either: the client has already retried,
and the next run or ``svarut batch settle`` asks again. Each answer is
committed before the next lookup, and only while the letter is still unknown
from the attempt that was looked up, so neither a crash nor a second worker
settling at the same time can apply a stale answer.

The decisions and the journal I/O are in :class:`Settlement`;
:func:`settle_journal` and :func:`asettle_journal` are its two loops (the
sync and the async client); :func:`svarut.batch.settle` opens a journal and
runs one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio.to_thread

from svarut.batch import journal as j
from svarut.runtime import errors
from svarut.utfall import AVKLARING_VINDU, LookupUnavailableError, Utfall

__all__ = ["SettleSummary", "Settled", "Settlement", "asettle_journal", "settle_journal", "settle_window"]

log = logging.getLogger("svarut.batch")

# Unknown letters read from the journal at a time.
PAGE = 500
# What a lookup is refused for that concerns only that letter (its reference): the others can
# still be asked. Anything else (the connection, a 5xx, 429, the integration refused) is SvarUt's.
_LETTER_STATUSES = frozenset({400, 404, 409, 413, 414, 422})


@dataclass(frozen=True)
class Settled:
    """What settling did with one unknown letter. ``tilstand`` is None when
    the lookup failed (nothing settled); ``recorded`` is False when the letter
    changed meanwhile (another worker settled it) and the answer was dropped."""

    ref: str
    ekstern_referanse: str | None
    tilstand: str | None
    reason: str
    forsendelse_id: str | None = None
    found: tuple[str, ...] = ()
    recorded: bool = True

    @property
    def state(self) -> str:
        """The letter's state in the journal now."""
        if not self.recorded or self.tilstand in (None, j.UAVKLART):
            return j.UNKNOWN
        return j.SENT if self.tilstand == j.MOTTATT else j.WAITING


@dataclass
class SettleSummary:
    """One settling pass: each letter looked at, how many are still unknown
    afterwards, and why settling stopped early, if it did."""

    settled: list[Settled] = field(default_factory=list)
    unknown: int = 0
    stopped: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Letters per outcome: mottatt, ikke_mottatt, uavklart, and failed (the lookup failed)."""
        counts = dict.fromkeys((j.MOTTATT, j.IKKE_MOTTATT, j.UAVKLART, "failed"), 0)
        for s in self.settled:
            if s.recorded:
                counts[s.tilstand or "failed"] += 1
        return counts

    def __str__(self) -> str:
        counts = " ".join(f"{k}={n}" for k, n in self.counts.items() if n)
        return f"settled {len(self.settled)} unknown letter(s): {counts or 'none'}; still unknown: {self.unknown}"


def settle_window(value: timedelta | float) -> timedelta:
    """The settle window from a timedelta or seconds; never negative."""
    window = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if window < timedelta(0):
        raise ValueError(f"the settle window cannot be negative: {window}")
    return window


def _letter_specific(exc: BaseException) -> bool:
    """Whether a failed lookup says something about that letter only, so the others can still be asked."""
    if isinstance(exc, errors.ForsendelseValidationError):
        return True
    return isinstance(exc, errors.APIStatusError) and exc.status_code in _LETTER_STATUSES


class Settlement:
    """One pass over a journal's unknown letters, without the lookups
    themselves: which letters to ask about and with what ``sendt``, and
    recording each answer. Every method here does journal I/O (the async
    loop calls them in worker threads)."""

    def __init__(
        self, journal: j.Journal, *, window: timedelta, on_settled: Callable[[Settled], None] | None = None
    ) -> None:
        self.journal = journal
        self.window = window
        self.konto_id = journal.konto_id
        self.summary = SettleSummary()
        self._on_settled = on_settled
        self._after = -1
        self._offset = 0.0
        self._shared: set[str] = set()
        self._began = False

    def begin(self) -> bool:
        """Whether there is anything to settle; if so, read what the pass
        needs once: the journal's clock and the references letters share."""
        # One row by the state index, not a count: a run with nothing unknown pays next to nothing.
        if self.konto_id is None or not self.journal.page(after=-1, states=[j.UNKNOWN], limit=1):
            return False
        self._began = True
        # attempt_started is on the journal's clock (PostgreSQL: the server's), and avklar_utfall
        # compares with this machine's: carry it over. Measured after the query returns, so a
        # slow query makes the attempt look later, never earlier.
        database = self.journal.clock()
        self._offset = time.time() - database
        self._shared = self.journal.shared_references()
        return True

    def next_page(self) -> tuple[list[tuple[j.Row, datetime | None]], bool]:
        """The next unknown letters to look up, each with when its attempt
        began on this machine's clock (None: not known), and whether more may
        follow. Letters that cannot be looked up are recorded ``uavklart`` here."""
        rows = self.journal.page(after=self._after, states=[j.UNKNOWN], limit=PAGE)
        if rows:
            self._after = rows[-1].line
        todo: list[tuple[j.Row, datetime | None]] = []
        for row in rows:
            if not row.ekstern_referanse:
                self._record(row, j.UAVKLART, reason="sent without an eksternReferanse: SvarUt cannot be asked")
            elif row.ekstern_referanse in self._shared:
                self._record(
                    row,
                    j.UAVKLART,
                    reason="another letter of this journal has the same eksternReferanse: SvarUt's answer "
                    "cannot tell which letter's forsendelse it found",
                )
            else:
                started = row.attempt_started
                todo.append((row, None if started is None else datetime.fromtimestamp(started + self._offset, UTC)))
        return todo, len(rows) == PAGE

    def answer(self, row: j.Row, utfall: Utfall) -> Settled:
        """Record SvarUt's answer for ``row``."""
        return self._record(
            row,
            utfall.tilstand,
            reason=utfall.grunn,
            forsendelse_id=None if utfall.forsendelse_id is None else str(utfall.forsendelse_id),
            found=tuple(str(i) for i in utfall.funnet),
        )

    def failed(self, row: j.Row, exc: BaseException) -> bool:
        """A lookup for ``row`` raised: nothing is recorded. Whether the
        other letters can still be asked about."""
        log.warning("could not settle %s (eksternReferanse %r): %s", row.ref, row.ekstern_referanse, exc)
        self._emit(Settled(row.ref, row.ekstern_referanse, None, f"the lookup failed: {exc}"))
        if _letter_specific(exc):
            return True
        self.stop(
            f"SvarUt's eksternRef lookup failed ({type(exc).__name__}: {exc}); the letters not looked up stay unknown"
        )
        return False

    def stop(self, why: str) -> None:
        self.summary.stopped = why
        log.warning("settling stopped: %s", why)

    def finish(self) -> SettleSummary:
        """The summary, with how many letters are still unknown (none when :meth:`begin` found none)."""
        if self._began:
            self.summary.unknown = self.journal.counts()[j.UNKNOWN]
        return self.summary

    def _record(
        self,
        row: j.Row,
        tilstand: str,
        *,
        reason: str,
        forsendelse_id: str | None = None,
        found: tuple[str, ...] = (),
    ) -> Settled:
        recorded = self.journal.settle(
            row.ref,
            tilstand,
            attempt_started=row.attempt_started,
            forsendelse_id=forsendelse_id,
            found=found,
            reason=reason,
        )
        if not recorded:
            log.info("%s changed while it was being settled (another worker?); its answer is dropped", row.ref)
        return self._emit(Settled(row.ref, row.ekstern_referanse, tilstand, reason, forsendelse_id, found, recorded))

    def _emit(self, settled: Settled) -> Settled:
        self.summary.settled.append(settled)
        if self._on_settled is not None:
            self._on_settled(settled)
        return settled


def _lookup(client: Any) -> Callable[..., Any] | None:
    return cast("Callable[..., Any] | None", getattr(client, "avklar_utfall", None))


_NO_LOOKUP = "this client cannot look letters up (it has no avklar_utfall): the unknown letters stay unknown"


def settle_journal(
    client: Any,
    journal: j.Journal,
    *,
    window: timedelta = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> SettleSummary:
    """Settle ``journal``'s unknown letters with a :class:`~svarut.SvarUtClient`
    (the journal open, its konto known). Sends nothing."""
    work = Settlement(journal, window=window, on_settled=on_settled)
    if not work.begin():
        return work.finish()
    lookup = _lookup(client)
    if lookup is None:
        work.stop(_NO_LOOKUP)
        return work.finish()
    more = True
    while more and work.summary.stopped is None:
        todo, more = work.next_page()
        for row, sendt in todo:
            try:
                utfall = lookup(
                    konto_id=work.konto_id, ekstern_referanse=row.ekstern_referanse, sendt=sendt, vindu=window
                )
            except LookupUnavailableError as exc:
                work.stop(str(exc))
                break
            except errors.SvarUtError as exc:
                if not work.failed(row, exc):
                    break
                continue
            work.answer(row, utfall)
    return work.finish()


async def asettle_journal(
    client: Any,
    journal: j.Journal,
    *,
    window: timedelta = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> SettleSummary:
    """:func:`settle_journal` with an :class:`~svarut.AsyncSvarUtClient`; the journal is used from worker threads."""
    work = Settlement(journal, window=window, on_settled=on_settled)
    if not await anyio.to_thread.run_sync(work.begin):
        return await anyio.to_thread.run_sync(work.finish)
    lookup = _lookup(client)
    if lookup is None:
        work.stop(_NO_LOOKUP)
        return await anyio.to_thread.run_sync(work.finish)
    more = True
    while more and work.summary.stopped is None:
        todo, more = await anyio.to_thread.run_sync(work.next_page)
        for row, sendt in todo:
            try:
                utfall = await cast(
                    "Awaitable[Utfall]",
                    lookup(konto_id=work.konto_id, ekstern_referanse=row.ekstern_referanse, sendt=sendt, vindu=window),
                )
            except LookupUnavailableError as exc:
                work.stop(str(exc))
                break
            except errors.SvarUtError as exc:
                if not work.failed(row, exc):
                    break
                continue
            await anyio.to_thread.run_sync(work.answer, row, utfall)
    return await anyio.to_thread.run_sync(work.finish)
