"""Running a batch: check the manifest, load it into the journal, settle the
letters earlier runs left unknown (:mod:`svarut.batch.settle`), send every
letter not yet sent (sync: threads; async: tasks), follow their statuses.

What is decided per letter does not wait on I/O and is shared by both loops
(:class:`_Batch`): the send's arguments from a journal row, and which state
an outcome leaves the letter in. The journal is blocking (SQLite or psycopg),
so the async loop calls it in worker threads.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from svarut.batch import journal as j
from svarut.batch.manifest import (
    REF_KEY,
    UNIQUE_RULE,
    BatchProblem,
    check_letters,
    identify,
    lines,
    operations,
    read_letter,
)
from svarut.batch.settle import Settled, SettleSummary, asettle_journal, settle_journal, settle_window
from svarut.runtime import errors
from svarut.runtime.client import EKSTERN_REFERANSE_KEY, AsyncAPIClient, BaseClient, Prepared, SyncAPIClient
from svarut.utfall import AVKLARING_VINDU

if TYPE_CHECKING:
    from svarut._client import SvarUtClient

log = logging.getLogger("svarut.batch")

DEFAULT_LEASE = 60.0
# Back-off after a send that surely did not arrive (connection refused, 429/503): doubles per attempt.
RETRY_BASE = 1.0
RETRY_MAX = 60.0
# How long a worker with nothing to claim waits before looking again.
IDLE_POLL = 0.5
# How often a worker sharing the journal looks for letters a dead worker left sending.
RECOVER_EVERY = 1.0
# Letters claimed at once, per sending thread or task: fewer claim transactions.
CLAIM_PER_SENDER = 16


class ManifestInvalidError(errors.SvarUtError, ValueError):
    """The manifest does not check; nothing was sent. ``problems`` lists them all."""

    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"the manifest has {len(problems)} problem(s), nothing was sent: {shown}{more}")


class _LineRefused(Exception):
    """A claimed letter's manifest line no longer checks."""


class BatchStoppedError(errors.SvarUtError):
    """SvarUt refused the integration itself (401/403): no letter can be sent until that is fixed."""


@dataclass
class Progress:
    """Counts for the progress line: what this run did, and what is left."""

    sent: int = 0
    refused: int = 0
    unknown: int = 0
    retried: int = 0
    left: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.sent + self.refused + self.unknown) / elapsed if elapsed > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.rate:.1f} letters/s, sent {self.sent}, refused {self.refused}, "
            f"unknown {self.unknown}, left {self.left}"
        )


@dataclass(frozen=True)
class Summary:
    """The journal's counts after a run: letters per state."""

    counts: dict[str, int]
    skipped_problems: list[BatchProblem] = field(default_factory=list)
    #: What settling the unknown letters did before sending (None: not asked to).
    settled: SettleSummary | None = None

    @property
    def done(self) -> bool:
        """Every letter sent (or confirmed to have arrived already)."""
        return all(n == 0 for s, n in self.counts.items() if s not in (j.SENT, j.DUPLICATE_CONFIRMED))


class _Pacer:
    """At most ``rate`` sends a second, shared by all workers."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def delay(self) -> float:
        if not self._interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
            return slot - now


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class _Batch:
    """One run of a manifest against a journal; everything but the I/O loops."""

    def __init__(
        self,
        client: BaseClient,
        manifest: Path,
        *,
        journal: j.Journal,
        konto_id: UUID | str,
        lease: float,
        progress: Callable[[Progress], None] | None,
    ) -> None:
        self.client = client
        self.manifest = manifest
        self.base_dir = manifest.parent
        self.journal = journal
        self.konto_id = str(konto_id)
        self.lease = lease
        self.progress = Progress()
        self._on_progress = progress
        self._progress_lock = threading.Lock()
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.single_runner = False
        self._last_recover = 0.0
        # The async loop's letters handed to senders and not yet done.
        self.inflight = 0

    # --- before sending -----------------------------------------------------------

    def prepare(self, *, skip_invalid: bool, single_runner: bool) -> list[BatchProblem]:
        """Check the whole manifest, then record its letters; raises
        :class:`ManifestInvalidError` (nothing recorded, nothing sent) if it
        does not check, unless ``skip_invalid``. Letters a dead runner left
        sending become unknown, to be settled next."""
        self.single_runner = single_runner
        self.journal.setup(konto_id=self.konto_id)
        problems: list[BatchProblem] = []
        for letter, _ in check_letters(
            self.manifest, client=self.client, konto_id=self.konto_id, run_id=self.journal.run_id
        ):
            problems += letter.problems
        if problems and not skip_invalid:
            raise ManifestInvalidError(problems)
        bad: dict[int, list[str]] = {}
        for p in problems:
            bad.setdefault(p.line, []).append(str(p))
        # A ref's later lines are not recorded: the letter under that ref is its first line's.
        repeated = {p.line for p in problems if p.field == REF_KEY and p.rule == UNIQUE_RULE}
        self.journal.load(self._new_letters(bad, repeated))
        if single_runner:
            self._recovered(self.journal.recover(all_sending=True))
            self.journal.release_all()
        return problems

    def queue(self, *, resend_unknown: bool) -> None:
        """After settling: the letters this run sends. ``resend_unknown``
        adds the letters still unknown (those SvarUt could not settle)."""
        self.journal.retry_waiting()
        if resend_unknown:
            log.info("resending %d unknown letter(s)", self.journal.requeue_unknown())
        counts = self.journal.counts()
        self.progress.left = counts[j.WAITING] + counts[j.SENDING]

    def _new_letters(self, bad: dict[int, list[str]], repeated: set[int]) -> Iterator[j.NewLetter]:
        # A second, light pass (the check above ran the rules), so no letter is held in memory.
        for line, raw in lines(self.manifest):
            if line in repeated:
                continue
            found = identify(raw, run_id=self.journal.run_id)
            if found is None:
                continue  # nothing to record it under; the check reported it
            ref, kind, ekstern = found
            skipped = "; ".join(bad[line]) if line in bad else None
            yield j.NewLetter(ref, line, kind, raw, ekstern, skipped)

    def _recovered(self, rows: Iterable[j.Row]) -> None:
        """Add the documents' hashes to letters found ``sending`` after a
        crash, so a person can look them up."""
        for row in rows:
            self._count("unknown")
            try:
                _, arguments = read_letter(row.line, row.letter, base_dir=self.base_dir, run_id=self.journal.run_id)
            except Exception as exc:  # the hashes are a help, not a must
                log.debug("no hashes for %s: %s", row.ref, exc)
                continue
            if arguments is None:
                continue
            files = arguments["files"]
            paths = files if isinstance(files, dict) else {files.name: files}
            try:
                self.journal.set_hashes(row.ref, {name: _sha256(p) for name, p in paths.items()})
            except OSError:
                continue

    # --- per letter ---------------------------------------------------------------

    def ready(self, row: j.Row, client: BaseClient, intent: j.Intent) -> Prepared[Any] | None:
        """Build a claimed letter's send (the client's checks, its body) while
        its ``intent`` is being committed, then wait for that: the send to go
        out, or None when it must not (the claim was lost, or the letter cannot
        be sent: recorded, and nothing went out)."""
        try:
            letter, arguments = read_letter(
                row.line, row.letter, base_dir=self.base_dir, run_id=self.journal.run_id, open_files=False
            )
            if arguments is None or letter.kind is None:
                # The manifest line no longer checks (edited since the letter was first recorded).
                raise _LineRefused("; ".join(str(p) for p in letter.problems))
            prepared = operations()[letter.kind].prepare(client, konto_id=self.konto_id, **arguments)
            sent = prepared.request.send.metadata.get(EKSTERN_REFERANSE_KEY) if prepared.request.send else None
            if sent != row.ekstern_referanse:
                # Settling looks the letter up by the journal's reference: it must be the one sent.
                raise _LineRefused(
                    f"the send carries eksternReferanse {sent!r}, the journal {row.ekstern_referanse!r}; not sent"
                )
        except Exception as exc:
            if intent.wait():
                self.outcome(row, None, exc, sent_nothing=True)
            return None
        return prepared if intent.wait() else None

    def outcome(
        self,
        row: j.Row,
        result: UUID | None,
        exc: BaseException | None,
        *,
        sent_nothing: bool = False,
        on_the_wire: float = 0.0,
    ) -> None:
        """Record what a send did (after the last byte and the answer; with
        ``sent_nothing``, a send that failed before its first byte;
        ``on_the_wire``: seconds since the send was handed to the client). The
        answer is not waited for: it goes into the commit of this sender's
        next intent, or its flush before it waits for anything else (lost in
        a crash, the letter is found ``sending`` and becomes unknown: never
        sent twice)."""
        if exc is None:
            self.journal.finish(row.ref, j.SENT, forsendelse_id=str(result), durable=False)
            self._count("sent")
        elif isinstance(exc, errors.DuplicateForsendelseError) and row.resend:
            # SvarUt refuses an identical repeat: the first attempt arrived.
            self.journal.finish(row.ref, j.DUPLICATE_CONFIRMED, error=str(exc), durable=False)
            self._count("sent")
        elif isinstance(exc, errors.SendOutcomeUnknownError):
            self.journal.finish(
                row.ref,
                j.UNKNOWN,
                error=str(exc),
                dokumenter_sha256=exc.dokumenter_sha256,
                attempt_age=_attempt_age(exc, on_the_wire),
                durable=False,
            )
            self._count("unknown")
        elif isinstance(
            exc,
            (
                errors.AuthenticationError,
                errors.PermissionDeniedError,
                errors.MaskinportenTokenError,
                errors.KeystoreError,
            ),
        ):
            # The integration is refused, not the letter: it did not arrive; stop the run.
            self.journal.finish(row.ref, j.WAITING, error=str(exc), retry_in=0.0, durable=False)
            self.fatal = self.fatal or BatchStoppedError(f"SvarUt refused the integration: {exc}")
            self.stop.set()
        elif isinstance(
            exc, (errors.APIConnectionError, errors.MaskinportenConnectionError, errors.KrypteringError)
        ) or (isinstance(exc, errors.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)):
            # The body never arrived whole (no connection, no token, no certificate to encrypt
            # for), or SvarUt turned it away: safe to send again later.
            delay = min(RETRY_BASE * 2**row.attempts, RETRY_MAX)
            self.journal.finish(row.ref, j.WAITING, error=str(exc), retry_in=delay, durable=False)
            self._count("retried")
        elif isinstance(
            exc, (errors.ForsendelseValidationError, errors.APIStatusError, errors.SourceChangedError, _LineRefused)
        ):
            self.journal.finish(row.ref, j.REFUSED, error=str(exc), durable=False)
            self._count("refused")
        elif isinstance(exc, OSError) or sent_nothing:
            # A document could not be read, or the send failed before its first byte: SvarUt cannot have it.
            self.journal.finish(row.ref, j.REFUSED, error=f"{type(exc).__name__}: {exc}", durable=False)
            self._count("refused")
        else:
            # Anything else: we cannot tell how far the send got, nor when its last attempt began (the
            # journal takes the time it records this, never too early).
            self.journal.finish(row.ref, j.UNKNOWN, error=f"{type(exc).__name__}: {exc}", durable=False)
            self._count("unknown")

    def _count(self, what: str) -> None:
        with self._progress_lock:
            setattr(self.progress, what, getattr(self.progress, what) + 1)
            if what != "retried":
                self.progress.left = max(0, self.progress.left - 1)
            if self._on_progress is not None:
                self._on_progress(self.progress)

    def next_claim(self, limit: int) -> list[j.Row] | float | None:
        """Letters to send, or seconds to wait before asking again (letters
        are held by other workers or backing off), or None: nothing left."""
        if self.stop.is_set():
            return None
        if not self.single_runner and time.monotonic() - self._last_recover > RECOVER_EVERY:
            # Letters a dead worker was sending become unknown once its lease has expired.
            self._recovered(self.journal.recover(all_sending=False))
            self._last_recover = time.monotonic()
        rows = self.journal.claim(limit, lease=self.lease)
        if rows:
            return sorted(rows, key=lambda r: r.line)
        count, soonest = self.journal.pending()
        if count == 0:
            return None
        wait = IDLE_POLL if soonest is None else max(0.05, min(soonest - time.time(), IDLE_POLL * 4))
        return min(wait, self.lease / 4)

    def summary(self, skipped: list[BatchProblem], settled: SettleSummary | None) -> Summary:
        return Summary(self.journal.counts(), skipped, settled)


def _attempt_age(exc: errors.SendOutcomeUnknownError, on_the_wire: float) -> float:
    """How long ago the attempt that may have arrived began: by the client's
    wall clock (it may have tried more than once), but never longer than the
    send has been on the wire by the monotonic clock, so a wall clock that
    jumped cannot make the attempt look older than it is. Unknown: 0 (now)."""
    if exc.sendt is None:
        return 0.0
    began = exc.sendt if exc.sendt.tzinfo is not None else exc.sendt.replace(tzinfo=UTC)
    return max(0.0, min((datetime.now(UTC) - began).total_seconds(), on_the_wire))


# --- the sync loop -------------------------------------------------------------------


def run(
    client: SyncAPIClient,
    manifest: str | Path,
    *,
    konto_id: UUID | str,
    journal: str | Path | j.Journal | None = None,
    concurrency: int = 4,
    rate: float | None = None,
    resend_unknown: bool = False,
    skip_invalid: bool = False,
    lease: float = DEFAULT_LEASE,
    progress: Callable[[Progress], None] | None = None,
    settle_after: timedelta | float | None = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> Summary:
    """Send every letter of ``manifest`` not yet sent, recording each in
    ``journal`` (a SQLite path, default ``<manifest>.journal.sqlite``; a
    ``postgresql://`` URL; or an open :class:`~svarut.batch.journal.Journal`).
    ``concurrency`` sends at a time, at most ``rate`` a second. Resumes where
    an earlier run stopped. Returns the journal's counts per state.

    Before sending, the letters left unknown are settled by asking SvarUt
    (see :func:`settle`; ``settle_after`` is the window, a timedelta or
    seconds, None: do not ask): those it has become sent, those it surely
    does not have are sent again in this run, the rest stay unknown
    (``resend_unknown`` sends those again, relying on SvarUt's duplicate check)."""
    manifest = Path(manifest)
    window = None if settle_after is None else settle_window(settle_after)
    with _journal(journal, manifest) as jn:
        batch = _Batch(client, manifest, journal=jn, konto_id=konto_id, lease=lease, progress=progress)
        skipped = batch.prepare(skip_invalid=skip_invalid, single_runner=isinstance(jn, j.SQLiteJournal))
        settled = None if window is None else settle_journal(client, jn, window=window, on_settled=on_settled)
        batch.queue(resend_unknown=resend_unknown)
        jn.gather(max(1, concurrency))
        _run_threads(batch, client, concurrency=max(1, concurrency), pacer=_Pacer(rate))
        if batch.fatal is not None:
            raise batch.fatal
        return batch.summary(skipped, settled)


def _run_threads(batch: _Batch, client: SyncAPIClient, *, concurrency: int, pacer: _Pacer) -> None:
    feed = _Feed(batch, limit=min(256, concurrency * CLAIM_PER_SENDER), senders=concurrency, low=concurrency)

    def sender() -> None:
        try:
            while (row := feed.take()) is not None:
                try:
                    _send_one(batch, client, row, pacer)
                finally:
                    feed.done()
        except BaseException as exc:  # the journal failed: stop, the run must not go on blind
            batch.fatal = batch.fatal or exc
            feed.stop()
        finally:
            feed.exited()

    for i in range(concurrency):
        threading.Thread(target=sender, name=f"svarut-batch-{i}", daemon=True).start()
    try:
        _wait_for_senders(batch, feed)
    except BaseException:
        # Ctrl-C: no new letters; the ones on the wire finish and are recorded.
        feed.stop()
        raise
    finally:
        _wait_for_senders(batch, feed)
        batch.journal.release()  # the letters claimed and not started go back to the journal


def _wait_for_senders(batch: _Batch, feed: _Feed) -> None:
    """Wait until every sender has stopped, renewing this worker's leases
    meanwhile (a send may take long). Not ``Thread.join``: Ctrl-C during a
    join can leave a running thread marked as stopped (CPython 3.11)."""
    renewed = time.monotonic()
    while not feed.senders_stopped(timeout=min(1.0, batch.lease / 3)):
        if time.monotonic() - renewed > batch.lease / 3:
            batch.journal.renew(lease=batch.lease)
            renewed = time.monotonic()


class _Feed:
    """The sync loop's letters. Each sender takes the next claimed letter
    itself, and the one that finds ``low`` or fewer left claims more for all
    while the others go on with those: no thread hands letters over, since a
    thread switch per letter is a good part of a fast send's CPU time."""

    def __init__(self, batch: _Batch, *, limit: int, senders: int, low: int) -> None:
        self._batch = batch
        self._senders = senders  # sender threads still running
        self._limit = limit
        self._low = low
        self._rows: collections.deque[j.Row] = collections.deque()
        self._changed = threading.Condition()
        self._claiming = False  # a sender is claiming, or waiting until it may claim again
        self._inflight = 0  # letters taken and not done: one may come back to be tried again
        self._done = 0  # letters done so far
        self._over = False

    def take(self) -> j.Row | None:
        """The next letter to send, or None: nothing is left, or the run stops."""
        claimed = False  # this sender claimed: its next letter may be one of the last few
        while True:
            with self._changed:
                while True:
                    if self._over or self._batch.stop.is_set():
                        return None
                    if self._rows and (claimed or self._claiming or len(self._rows) > self._low):
                        self._inflight += 1
                        return self._rows.popleft()
                    if not self._claiming:
                        self._claiming = True
                        break
                    self._changed.wait(IDLE_POLL)
            try:
                self._claim()
            finally:
                with self._changed:
                    self._claiming = False
                    self._changed.notify_all()
            claimed = True

    def _claim(self) -> None:
        """Claim letters for all senders. With none left to take, wait while
        there are none to claim yet (held by other workers, backing off, or on
        the wire here)."""
        while not self._batch.stop.is_set():
            with self._changed:
                ahead, idle, done = bool(self._rows), self._inflight == 0, self._done
            if not ahead:
                # Answers handed in without waiting (a letter to try again among them) go in before the claim looks.
                self._batch.journal.flush()
            found = self._batch.next_claim(self._limit)
            with self._changed:
                if isinstance(found, list):
                    self._rows.extend(found)
                    return
                if ahead or self._rows:
                    return  # none more for now: the ones left go first, then a claim looks again
                if found is None and idle:
                    self._over = True  # nothing left, and none of ours can come back
                    return
                if self._done == done:  # else a letter came back while we looked: look again
                    self._changed.wait(IDLE_POLL if found is None else found)  # done() wakes it

    def done(self) -> None:
        """A taken letter's answer is handed to the journal."""
        with self._changed:
            self._inflight -= 1
            self._done += 1
            if self._claiming:
                self._changed.notify_all()

    def stop(self) -> None:
        self._batch.stop.set()
        with self._changed:
            self._changed.notify_all()

    def exited(self) -> None:
        """A sender thread is ending."""
        with self._changed:
            self._senders -= 1
            self._changed.notify_all()

    def senders_stopped(self, *, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every sender thread to end; whether they have."""
        with self._changed:
            if self._senders:
                self._changed.wait(timeout)
            return not self._senders


def _send_one(batch: _Batch, client: SyncAPIClient, row: j.Row, pacer: _Pacer) -> None:
    if batch.stop.is_set():
        return
    if delay := pacer.delay():
        batch.journal.flush()
        time.sleep(delay)
    prepared = batch.ready(row, client, batch.journal.announce(row.ref, lease=batch.lease))
    if prepared is None:
        return
    began = time.monotonic()
    try:
        with batch.journal.on_the_wire():
            result = client.send_prepared(prepared)
    except Exception as exc:
        batch.outcome(row, None, exc, on_the_wire=time.monotonic() - began)
    else:
        batch.outcome(row, result, None)


# --- the async loop ------------------------------------------------------------------


async def arun(
    client: AsyncAPIClient,
    manifest: str | Path,
    *,
    konto_id: UUID | str,
    journal: str | Path | j.Journal | None = None,
    concurrency: int = 4,
    rate: float | None = None,
    resend_unknown: bool = False,
    skip_invalid: bool = False,
    lease: float = DEFAULT_LEASE,
    progress: Callable[[Progress], None] | None = None,
    settle_after: timedelta | float | None = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> Summary:
    """:func:`run` with an :class:`~svarut.AsyncSvarUtClient`: ``concurrency`` tasks."""
    manifest = Path(manifest)
    window = None if settle_after is None else settle_window(settle_after)
    jn = await anyio.to_thread.run_sync(_open, journal, manifest)
    try:
        batch = _Batch(client, manifest, journal=jn, konto_id=konto_id, lease=lease, progress=progress)
        skipped = await anyio.to_thread.run_sync(
            lambda: batch.prepare(skip_invalid=skip_invalid, single_runner=isinstance(jn, j.SQLiteJournal))
        )
        settled = None if window is None else await asettle_journal(client, jn, window=window, on_settled=on_settled)
        await anyio.to_thread.run_sync(lambda: batch.queue(resend_unknown=resend_unknown))
        jn.gather(max(1, concurrency))
        pacer = _Pacer(rate)
        send, receive = anyio.create_memory_object_stream[j.Row](max(1, concurrency))

        async def sender(rows: MemoryObjectReceiveStream[j.Row]) -> None:
            async with rows:
                async for row in rows:
                    try:
                        await _asend(batch, client, row, pacer)
                        if rows.statistics().current_buffer_used == 0:
                            # No next intent to commit them with: as in the sync loop.
                            await anyio.to_thread.run_sync(batch.journal.flush)
                    finally:
                        batch.inflight -= 1  # on the event loop: no lock needed

        async def feeder() -> None:
            async with send:
                while True:
                    found = await anyio.to_thread.run_sync(
                        batch.next_claim, min(256, max(1, concurrency) * CLAIM_PER_SENDER)
                    )
                    if found is None:
                        if batch.inflight == 0:
                            return
                        await anyio.sleep(0.02)  # our letters on the wire may come back to be tried again
                        continue
                    if isinstance(found, float):
                        await anyio.sleep(found)
                        continue
                    for row in found:
                        batch.inflight += 1
                        await send.send(row)

        async def renewer() -> None:
            # This worker's leases live as long as it does, however long a send takes.
            while True:
                await anyio.sleep(batch.lease / 3)
                await anyio.to_thread.run_sync(lambda: batch.journal.renew(lease=batch.lease))

        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(renewer)
                async with anyio.create_task_group() as tg:
                    for _ in range(max(1, concurrency)):
                        tg.start_soon(sender, receive.clone())
                    receive.close()
                    tg.start_soon(feeder)
                outer.cancel_scope.cancel()
        finally:
            batch.stop.set()
            await anyio.to_thread.run_sync(batch.journal.release)
        if batch.fatal is not None:
            raise batch.fatal
        return await anyio.to_thread.run_sync(batch.summary, skipped, settled)
    finally:
        await anyio.to_thread.run_sync(jn.close)


async def _asend(batch: _Batch, client: AsyncAPIClient, row: j.Row, pacer: _Pacer) -> None:
    if batch.stop.is_set():
        return
    if delay := pacer.delay():
        await anyio.to_thread.run_sync(batch.journal.flush)
        await anyio.sleep(delay)
    intent = batch.journal.announce(row.ref, lease=batch.lease)  # hands the intent to the writer; no I/O here
    prepared = await anyio.to_thread.run_sync(batch.ready, row, client, intent)
    if prepared is None:
        return
    began = time.monotonic()
    try:
        with batch.journal.on_the_wire():
            result = await client.send_prepared(prepared)
    except Exception as exc:
        failure, on_the_wire = exc, time.monotonic() - began
        await anyio.to_thread.run_sync(lambda: batch.outcome(row, None, failure, on_the_wire=on_the_wire))
    else:
        await anyio.to_thread.run_sync(batch.outcome, row, result, None)


# --- check, status, report -------------------------------------------------------------


def default_journal(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".journal.sqlite")


def _open(journal: str | Path | j.Journal | None, manifest: Path) -> j.Journal:
    if isinstance(journal, j.Journal):
        return journal
    return j.open_journal(journal if journal is not None else default_journal(manifest))


class _journal:
    """Open (and close) a journal given as a path or URL; one given open stays open."""

    def __init__(self, journal: str | Path | j.Journal | None, manifest: Path) -> None:
        self._given = journal if isinstance(journal, j.Journal) else None
        self._journal = _open(journal, manifest)

    def __enter__(self) -> j.Journal:
        return self._journal

    def __exit__(self, *exc: object) -> None:
        if self._given is None:
            self._journal.close()


def check(
    manifest: str | Path, *, client: BaseClient | None = None, konto_id: UUID | str | None = None
) -> list[BatchProblem]:
    """Every problem of every line of ``manifest``, sending nothing. The
    pre-send rules are ``client``'s (default: a client for the production
    rules that never connects)."""
    if client is None:
        from svarut._client import SvarUtClient

        client = SvarUtClient(base_url="https://svarut.invalid/api")
    problems: list[BatchProblem] = []
    for letter, _ in check_letters(Path(manifest), client=client, konto_id=konto_id or UUID(int=0)):
        problems += letter.problems
    return problems


def settle(
    client: SvarUtClient,
    *,
    journal: str | Path | j.Journal,
    settle_after: timedelta | float = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> SettleSummary:
    """Settle the letters ``journal`` holds as unknown, sending nothing: ask
    SvarUt for each by the eksternReferanse it was sent with
    (``client.avklar_utfall``, window ``settle_after``). Found once: sent,
    with SvarUt's id; not found although the attempt began longer ago than
    the window: waiting, and the next :func:`run` sends it again; anything
    else stays unknown, with what was found. Letters a runner that died left
    sending are unknown first (SQLite: every one, as this holds the journal;
    PostgreSQL: those whose lease has expired). See :mod:`svarut.batch.settle`."""
    window = settle_window(settle_after)
    jn = journal if isinstance(journal, j.Journal) else j.open_journal(journal)
    try:
        if not isinstance(journal, j.Journal):
            jn.open_existing()
        _recover_for_settling(jn)
        return settle_journal(client, jn, window=window, on_settled=on_settled)
    finally:
        if not isinstance(journal, j.Journal):
            jn.close()


async def asettle(
    client: Any,
    *,
    journal: str | Path | j.Journal,
    settle_after: timedelta | float = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> SettleSummary:
    """:func:`settle` with an :class:`~svarut.AsyncSvarUtClient`."""
    window = settle_window(settle_after)
    given = isinstance(journal, j.Journal)
    jn = journal if isinstance(journal, j.Journal) else await anyio.to_thread.run_sync(j.open_journal, journal)
    try:
        if not given:
            await anyio.to_thread.run_sync(jn.open_existing)
        await anyio.to_thread.run_sync(_recover_for_settling, jn)
        return await asettle_journal(client, jn, window=window, on_settled=on_settled)
    finally:
        if not given:
            await anyio.to_thread.run_sync(jn.close)


def _recover_for_settling(jn: j.Journal) -> None:
    # Only a journal held by this process alone may say that every letter sending was left by a dead runner.
    alone = isinstance(jn, j.SQLiteJournal) and jn.exclusive
    if recovered := jn.recover(all_sending=alone):
        log.info("%d letter(s) a runner left sending are unknown now", len(recovered))


def status(
    client: SvarUtClient,
    *,
    journal: str | Path | j.Journal,
    follow: bool = False,
    interval: float = 10.0,
    page: int = 1000,
    on_change: Callable[[j.Row, str, str], None] | None = None,
) -> dict[str, int]:
    """Fetch the status of every sent letter not yet in a terminal status,
    storing each change with its time; with ``follow``, repeat every
    ``interval`` seconds until all are terminal. Returns letters per latest status."""
    from svarut._client import TERMINAL_STATUSES

    terminal = set(TERMINAL_STATUSES)
    jn = journal if isinstance(journal, j.Journal) else j.open_journal(journal, exclusive=False)
    try:
        if not isinstance(journal, j.Journal):
            jn.open_existing()
        if jn.konto_id is None:
            raise j.JournalError("the journal has no konto yet: nothing was sent with it")
        while True:
            open_rows = 0
            for chunk in _chunks(
                (r for r in jn.rows(states=[j.SENT]) if r.forsendelse_id and r.status not in terminal), page
            ):
                found = client.hent_statuser(konto_id=jn.konto_id, id=[r.forsendelse_id or "" for r in chunk])
                by_id = {str(s.id): s for s in found}
                for row in chunk:
                    s = by_id.get(row.forsendelse_id or "")
                    if s is None:
                        open_rows += 1
                        continue
                    value, when = str(s.status), s.siste_status_endring.isoformat()
                    if jn.record_status(row.ref, row.forsendelse_id or "", value, when) and on_change:
                        on_change(row, value, when)
                    if value not in terminal:
                        open_rows += 1
            if not follow or open_rows == 0:
                break
            time.sleep(interval)
        counts: dict[str, int] = {}
        for row in jn.rows(states=[j.SENT]):
            key = row.status or "(none yet)"
            counts[key] = counts.get(key, 0) + 1
        return counts
    finally:
        if not isinstance(journal, j.Journal):
            jn.close()


def _chunks(rows: Iterable[j.Row], size: int) -> Iterator[list[j.Row]]:
    chunk: list[j.Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


REPORT_FIELDS = (
    "ref",
    "state",
    "forsendelse_id",
    "ekstern_referanse",
    "status",
    "status_time",
    "error",
    "dokumenter_sha256",
    "attempt_started",
    "settled",
    "settled_at",
    "settled_found",
    "settled_reason",
)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def report(journal: str | Path | j.Journal) -> Iterator[dict[str, Any]]:
    """One record per letter, in manifest order: ref, state, forsendelse id,
    eksternReferanse, latest status and its time, error, the documents'
    SHA-256 (for a letter whose outcome is unknown), when its last attempt
    began, and, for a letter whose outcome was unknown, how SvarUt settled
    it: ``settled`` (mottatt, ikke_mottatt, uavklart), ``settled_at``, the
    ids found (``settled_found``) and why (``settled_reason``). Times are ISO
    8601 in UTC."""
    jn = journal if isinstance(journal, j.Journal) else j.open_journal(journal, exclusive=False)
    try:
        if not isinstance(journal, j.Journal):
            jn.open_existing()
        for row in jn.rows():
            yield {
                "ref": row.ref,
                "state": row.state,
                "forsendelse_id": row.forsendelse_id,
                "ekstern_referanse": row.ekstern_referanse,
                "status": row.status,
                "status_time": row.status_time,
                "error": row.error,
                "dokumenter_sha256": row.dokumenter_sha256,
                "attempt_started": _iso(row.attempt_started),
                "settled": row.settled,
                "settled_at": _iso(row.settled_at),
                "settled_found": row.settled_found,
                "settled_reason": row.settled_reason,
            }
    finally:
        if not isinstance(journal, j.Journal):
            jn.close()


def report_json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)
