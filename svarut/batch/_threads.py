"""The sync loop of a batch run (:func:`run`): ``concurrency`` sender
threads, each taking the next claimed letter itself (:class:`_Feed`), while
the calling thread renews this worker's leases."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from svarut.batch import journal as j
from svarut.batch._letter import (
    CLAIM_PER_SENDER,
    DEFAULT_LEASE,
    IDLE_POLL,
    Batch,
    BatchInterruptedError,
    BatchStoppedError,
    Pacer,
    Progress,
    Summary,
)
from svarut.batch.settle import Settled, settle_journal, settle_window
from svarut.runtime import instrumentation
from svarut.runtime.client import SyncAPIClient
from svarut.utfall import AVKLARING_VINDU


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
    (``resend_unknown`` sends those again, relying on SvarUt's duplicate check).

    Args:
        client: A :class:`~svarut.SvarUtClient`; its pre-send rules check the manifest.
        manifest: The manifest, a JSON Lines file (:mod:`svarut.batch.manifest`).
        konto_id: The konto to send from.
        journal: Where each letter's state is kept (see above).
        concurrency: How many letters are sent at a time (threads).
        rate: At most this many sends a second (None: no limit).
        resend_unknown: Send the letters still unknown after settling again.
        skip_invalid: Send the lines that check and skip the rest, instead of
            refusing the whole manifest.
        lease: Seconds a claimed letter is held before another runner may take
            it over (PostgreSQL journals, renewed while sending).
        progress: Called with a :class:`Progress` as the run goes.
        settle_after: The settling window (see above); None: do not settle.
        on_settled: Called with each :class:`Settled` letter.

    Returns:
        A :class:`Summary`: letters per state, the skipped lines' problems,
        and what settling did. ``summary.done`` says whether every letter is sent.

    Raises:
        ManifestInvalidError: A line does not check (unless ``skip_invalid``);
            nothing was recorded or sent.
        BatchStoppedError: SvarUt or Maskinporten refused the integration
            (authentication or permission), or every attempt failed the same
            hopeless way (connection refused, no such host): the run stopped,
            and the journal says where (``summary``).
        BatchInterruptedError: Ctrl-C (a :class:`KeyboardInterrupt`) stopped
            the run: no new letter was started and the sends on the wire were
            recorded (``summary``); after a second one it did not wait for
            them (``left_sending``).
        JournalError: The journal cannot be used: held by another runner,
            kept for another konto, or unreadable.

    >>> summary = svarut.batch.run(client, "brev.jsonl", konto_id=konto_id, concurrency=8)  # doctest: +SKIP
    >>> summary.done, summary.counts  # doctest: +SKIP
    """
    manifest = Path(manifest)
    window = None if settle_after is None else settle_window(settle_after)
    with j.Held(journal, manifest) as jn:
        batch = Batch(client, manifest, journal=jn, konto_id=konto_id, lease=lease, progress=progress)
        skipped = batch.prepare(skip_invalid=skip_invalid, single_runner=jn.single_runner)
        settled = None if window is None else settle_journal(client, jn, window=window, on_settled=on_settled)
        batch.queue(resend_unknown=resend_unknown)
        jn.gather(max(1, concurrency))
        try:
            with instrumentation.batch_run(batch, konto_id=konto_id):
                interrupted = _run_threads(batch, client, concurrency=max(1, concurrency), pacer=Pacer(rate))
            if batch.fatal is not None:
                if isinstance(batch.fatal, BatchStoppedError):
                    batch.fatal.summary = batch.summary(skipped, settled)
                raise batch.fatal
            summary = batch.summary(skipped, settled)
        except BatchInterruptedError:
            raise
        except KeyboardInterrupt:
            # Once sending has begun, Ctrl-C outside the wait for the senders (as they start, or as the run
            # ends) cannot tell what it leaves sending: the next run finds out.
            raise BatchInterruptedError(summary=None, left_sending=None) from None
        if interrupted:
            raise BatchInterruptedError(summary=summary, left_sending=0)
        return summary


def _run_threads(batch: Batch, client: SyncAPIClient, *, concurrency: int, pacer: Pacer) -> bool:
    """Send until nothing is left; whether Ctrl-C stopped it first (the sends
    on the wire finished and were recorded). A second Ctrl-C raises
    :class:`BatchInterruptedError` without waiting for them."""
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
    interrupted = False
    try:
        _wait_for_senders(batch, feed)
    except KeyboardInterrupt:
        # Ctrl-C: no new letters; the ones on the wire finish and are recorded.
        interrupted = True
        feed.stop()
    except BaseException:
        feed.stop()
        _wait_for_senders(batch, feed)
        batch.journal.release()
        raise
    try:
        _wait_for_senders(batch, feed)
        batch.journal.release()  # the letters claimed and not started go back to the journal
    except KeyboardInterrupt:
        # Ctrl-C again: the sends on the wire are not waited for. No letter not yet on the wire goes
        # out; those on it stay sending, which the next run makes unknown and settles.
        feed.stop()
        raise BatchInterruptedError(summary=None, left_sending=batch.journal.abandon()) from None
    return interrupted


def _wait_for_senders(batch: Batch, feed: _Feed) -> None:
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

    def __init__(self, batch: Batch, *, limit: int, senders: int, low: int) -> None:
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


def _send_one(batch: Batch, client: SyncAPIClient, row: j.Row, pacer: Pacer) -> None:
    if batch.stop.is_set():
        return
    if delay := pacer.delay():
        batch.journal.flush()
        time.sleep(delay)
        if batch.stop.is_set():
            return  # Ctrl-C while this letter waited for its turn: it has not started
    with instrumentation.letter(batch, row.line, ekstern_referanse=row.ekstern_referanse):
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
