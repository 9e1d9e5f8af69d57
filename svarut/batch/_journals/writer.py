"""The group commit: one writer thread commits the journal's changes for
every sender, so that one sync to disk carries many.

A sender hands in a :class:`Change`: an intent to send (urgent: the sender
waits for it before the first byte, through its :class:`Intent`), an answer
(not urgent unless durable: it goes into the next commit), or a flush (only
waits for a commit). The writer commits everything queued as soon as
something urgent is, after waiting up to :data:`GATHER_WAIT` for the intents
of the senders not :meth:`GroupCommit.on_the_wire`. How a batch of changes
is written is the backend's (:meth:`svarut.batch._journals.base.Journal._record`):
this module knows threads, not SQL.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from svarut.batch._journals.schema import SENDING, JournalError

log = logging.getLogger("svarut.batch")

#: How long a group commit waits for the other senders' intents. A send to SvarUt takes far
#: longer, and a sync to disk costs a fast local send a good part of its CPU time.
GATHER_WAIT = 0.002


@dataclass
class Change:
    """A letter's new state, waiting for a group commit: an intent (``sending``)
    or an answer. With no ``ref``, a flush: it only waits for a commit."""

    ref: str | None
    state: str = ""
    seconds: float = 0.0  # sending: the lease; waiting: until it may be tried again
    forsendelse_id: str | None = None
    error: str | None = None
    dokumenter_sha256: str | None = None
    recorded: bool = False  # an intent on a claim that was lost is not
    failure: BaseException | None = None
    done: bool = False
    # Held while a thread waits for this change: the writer releases it. One thread woken per
    # change, not every waiting thread per commit.
    waiter: threading.Lock | None = None

    def outcome(self) -> bool:
        if self.failure is not None:
            raise self.failure
        return self.recorded


class Intent:
    """An intent to send, handed to the journal's writer: :meth:`wait` before
    the first byte. The sender prepares the send while the commit runs."""

    def __init__(self, commits: GroupCommit, item: Change) -> None:
        self._commits = commits
        self._item = item

    def wait(self) -> bool:
        """Block until the intent is on disk: True, or False if this worker's
        claim was lost (its lease expired and another worker has the letter).
        Raises if it could not be recorded."""
        return self._commits.wait(self._item)


class GroupCommit:
    """The queue of changes and the writer thread that commits them;
    ``record`` writes one batch of changes in one transaction (synced to
    disk) and marks each intent recorded or not."""

    def __init__(self, record: Callable[[list[Change]], None]) -> None:
        self._record = record
        # Changes wait in _queue; the writer thread commits them together as soon as one is
        # urgent (an intent, a flush), and wakes the threads waiting for them.
        self._work = threading.Condition()
        self._queue: list[Change] = []
        self._urgent = 0  # urgent changes queued
        # How many senders hand in intents, and how long a commit may wait for them to join it.
        self._senders = 1
        self._gather = 0.0
        self._on_the_wire = 0  # senders waiting for SvarUt's answer: no intent of theirs is coming
        # What the writer waits for, so that a sender wakes it only when it can go on: each wake-up
        # is a thread switch in the senders' CPU budget.
        self._idle = False  # something urgent
        self._gathering = False  # the intents of the senders not on the wire
        self._writer: threading.Thread | None = None
        self._stopping = False
        self._failed: BaseException | None = None

    def close(self) -> None:
        """Commit what is still queued and stop the writer."""
        with self._work:
            # Answers handed in without waiting, and no writer started yet to commit them.
            unwritten = bool(self._queue) and self._writer is None and self._failed is None
        if unwritten:
            self.flush()
        with self._work:
            self._stopping = True
            writer, self._writer = self._writer, None
            self._work.notify()
        if writer is not None:
            writer.join()

    def abandon(self) -> None:
        """:meth:`close`, refusing the intents not yet taken for a commit: the
        senders waiting for them learn that their claim is gone, and send nothing."""
        with self._work:
            refused = [c for c in self._queue if c.ref is not None and c.state == SENDING]
            self._queue = [c for c in self._queue if not (c.ref is not None and c.state == SENDING)]
            self._urgent = max(0, self._urgent - len(refused))
            for it in refused:
                it.recorded, it.done = False, True
            waiting = [it.waiter for it in refused if it.waiter is not None]
        for waiter in waiting:
            waiter.release()
        self.close()

    def gather(self, senders: int, *, wait: float = GATHER_WAIT) -> None:
        """Let a commit wait up to ``wait`` seconds for the intents of the
        ``senders`` senders not :meth:`on_the_wire`, so that one sync to disk
        carries them all (1: each commits as soon as it comes)."""
        with self._work:
            self._senders, self._gather = max(1, senders), wait if senders > 1 else 0.0

    @contextlib.contextmanager
    def on_the_wire(self) -> Iterator[None]:
        """Around a send: a commit does not wait for this sender's next intent
        while it waits for SvarUt's answer."""
        with self._work:
            self._on_the_wire += 1
            if self._gathering and self._gathered():
                self._work.notify()
        try:
            yield
        finally:
            with self._work:
                self._on_the_wire -= 1

    def flush(self) -> None:
        """Commit, durably, every change handed in without waiting."""
        self.wait(self.submit(Change(None), urgent=True))

    def submit(self, item: Change, *, urgent: bool) -> Change:
        """Queue ``item`` for the next group commit; if ``urgent``, that commit starts now."""
        with self._work:
            if self._failed is not None:
                raise JournalError(f"an earlier change could not be recorded: {self._failed}")
            if self._stopping:
                raise JournalError("the journal is closed")
            self._queue.append(item)
            if urgent:
                self._urgent += 1
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write, name="svarut-journal", daemon=True)
                    self._writer.start()
                elif self._idle or (self._gathering and self._gathered()):
                    self._work.notify()
        return item

    def _gathered(self) -> bool:
        """Whether every sender not on the wire has handed in its intent (under ``_work``)."""
        return self._urgent >= self._senders - self._on_the_wire

    def wait(self, item: Change) -> bool:
        """Block until ``item`` is committed: whether it was recorded (an
        intent on a lost claim is not); raises if its commit failed."""
        with self._work:
            if item.done:
                return item.outcome()
            if item.waiter is None:
                item.waiter = threading.Lock()
                item.waiter.acquire()
            waiter = item.waiter
        waiter.acquire()
        waiter.release()  # and on to any other thread waiting for the same change
        return item.outcome()

    def _write(self) -> None:
        """The writer thread: commit everything queued, in one transaction
        (one sync to disk), each time something urgent is. A commit carries
        what was queued when it began; what comes meanwhile waits for the
        next. If a transaction fails, every change in it gets the error: none
        was recorded; and every later change is refused, so that no thread
        goes on as if a change not waited for had been recorded."""
        while True:
            with self._work:
                self._idle = True
                while not self._urgent and not self._stopping:
                    self._work.wait()
                self._idle = False
                # Each commit is a sync to disk, whose cost is in the sender's CPU budget: one that
                # waits a moment for the other senders' intents carries them all.
                deadline = time.monotonic() + self._gather
                self._gathering = True
                while not self._gathered() and not self._stopping:
                    if (left := deadline - time.monotonic()) <= 0:
                        break
                    self._work.wait(left)
                self._gathering = False
                if not self._queue:
                    return  # stopping, nothing left
                batch, self._queue, self._urgent = self._queue, [], 0
            error: BaseException | None = None
            try:
                self._record([c for c in batch if c.ref is not None])
            except BaseException as exc:
                error = exc
                log.error("the journal could not record %d change(s): %s", len(batch), exc)
            with self._work:
                for it in batch:
                    it.failure, it.done = error, True
                if error is not None:
                    self._failed = error
                waiting = [it.waiter for it in batch if it.waiter is not None]
            for waiter in waiting:  # outside the lock: a woken sender may announce its next letter at once
                waiter.release()
