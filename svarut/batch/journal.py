"""The batch journal: what happened to every letter, durably.

One table row per letter (``batch_letter``), one per status change
(``batch_status``), and the run's settings (``batch_meta``: the run id,
created once per journal, and the konto). A letter moves::

    waiting ──claim──▶ waiting (worker, lease) ──intent──▶ sending ──answer──▶ sent | refused | unknown
       ▲                     │ lease expires                  │ not sent (connection) → waiting
       └─────────────────────┘                                │ runner died → unknown
    unknown ──settled: mottatt──▶ sent (SvarUt's id)
    unknown ──settled: ikke_mottatt──▶ waiting ──▶ sent again
    unknown ──settled: uavklart──▶ unknown
    unknown ──--resend-unknown──▶ waiting (resend) ──▶ sent | duplicate-confirmed
    (a line that does not check, with --skip-invalid) ──▶ skipped

The intent (``sending``) is committed before the first byte goes on the wire
and the answer after it, so a crash leaves every letter either not sent, known,
or ``sending``, which the next run turns into ``unknown`` (SQLite: at once,
since one runner holds the journal; PostgreSQL: when the dead worker's lease
expires). Intents and answers are group-committed: one commit carries the
intents of the senders about to send and the answers handed in since the
last one, so an answer is on disk before its sender's next letter goes out.
The SQL is shared by both databases; :class:`SQLiteJournal` lives
here, :class:`~svarut.batch.postgres.PostgresJournal` in its own module.

Settling (:meth:`Journal.settle`) asks nothing itself: the runner looks an
``unknown`` letter up in SvarUt by the eksternReferanse it was sent with and
hands the answer in. ``mottatt`` makes it ``sent`` (SvarUt's id),
``ikke_mottatt`` puts it back to ``waiting`` (the only way an unknown letter
is sent again without ``--resend-unknown``), ``uavklart`` leaves it
``unknown``; each is recorded with when and what the lookup found. For that
the journal keeps when each letter's last attempt began
(``attempt_started``, never earlier than the truth: the window that makes an
empty lookup conclusive is measured from it).

The schema is versioned (``schema_version`` in ``batch_meta``): a journal an
earlier version made is brought up to date, in one transaction, when it is
opened (:data:`MIGRATIONS`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("svarut.batch")

WAITING = "waiting"
SENDING = "sending"
SENT = "sent"
REFUSED = "refused"
UNKNOWN = "unknown"
DUPLICATE_CONFIRMED = "duplicate-confirmed"
SKIPPED = "skipped"
STATES = (WAITING, SENDING, SENT, REFUSED, UNKNOWN, DUPLICATE_CONFIRMED, SKIPPED)
#: States a letter does not leave by itself: sending it again would risk a duplicate or repeat a refusal.
FINISHED = frozenset({SENT, REFUSED, UNKNOWN, DUPLICATE_CONFIRMED, SKIPPED})
#: A letter that failed to connect this many times stays waiting until a later run.
MAX_ATTEMPTS = 5
#: How long a group commit waits for the other senders' intents. A send to SvarUt takes far
#: longer, and a sync to disk costs a fast local send a good part of its CPU time.
GATHER_WAIT = 0.002

# The tables as the first journal had them (schema version 1); every column or index added
# since is a migration below, so a new journal and an old one reach the same schema the same way.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS batch_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS batch_letter (
        ref TEXT PRIMARY KEY,
        line INTEGER NOT NULL,
        kind TEXT NOT NULL,
        letter TEXT NOT NULL,
        ekstern_referanse TEXT,
        state TEXT NOT NULL,
        resend INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        lease_until DOUBLE PRECISION,
        not_before DOUBLE PRECISION,
        forsendelse_id TEXT,
        error TEXT,
        dokumenter_sha256 TEXT,
        status TEXT,
        status_time TEXT,
        updated DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS batch_letter_state ON batch_letter (state, line)",
    # The report pages through every letter in manifest order.
    "CREATE INDEX IF NOT EXISTS batch_letter_line ON batch_letter (line)",
    """CREATE TABLE IF NOT EXISTS batch_status (
        ref TEXT NOT NULL,
        forsendelse_id TEXT NOT NULL,
        status TEXT NOT NULL,
        status_time TEXT,
        recorded DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS batch_status_ref ON batch_status (ref)",
)
#: The schema this code writes; a journal from a newer version is refused rather than misread.
SCHEMA_VERSION = 2
#: version -> the statements that bring a journal of the version before up to it.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        # When the letter's last attempt began (epoch seconds, the database's clock), and how an
        # unknown outcome was settled: mottatt | ikke_mottatt | uavklart, when, the ids found, why.
        "ALTER TABLE batch_letter ADD COLUMN attempt_started DOUBLE PRECISION",
        "ALTER TABLE batch_letter ADD COLUMN settled TEXT",
        "ALTER TABLE batch_letter ADD COLUMN settled_at DOUBLE PRECISION",
        "ALTER TABLE batch_letter ADD COLUMN settled_found TEXT",
        "ALTER TABLE batch_letter ADD COLUMN settled_reason TEXT",
        # A letter an earlier version left unknown became so (its answer, or the runner found dead)
        # after its attempt began, and nothing has changed it since: that time is a bound to
        # measure the settle window from that is never too early.
        f"UPDATE batch_letter SET attempt_started = updated WHERE state = '{UNKNOWN}' AND attempt_started IS NULL",  # noqa: S608
    ),
}
#: How an unknown letter was settled (svarut.utfall's states).
MOTTATT = "mottatt"
IKKE_MOTTATT = "ikke_mottatt"
UAVKLART = "uavklart"
# The oldest SQLite the journal runs on: a group commit writes with UPDATE … FROM.
MIN_SQLITE = (3, 33, 0)
# Letters changed by one statement of a group commit, at most (six parameters each).
CHANGES_PER_STATEMENT = 256
# Intents and answers of a group commit, in one statement. An intent (state sending: the lease in
# column3) applies only to a letter still waiting and claimed by this worker, and marks when its
# attempt begins (the commit is before the first byte); an answer ends the claim and, when the
# letter is to wait (column3: seconds until it may be tried again), counts the attempt. An unknown
# answer moves the attempt's start to when it last began (column3: how long ago that was): the
# client may have tried more than once after the intent.
_CHANGE_SQL = f"""UPDATE batch_letter SET
    state = v.column2,
    worker = CASE WHEN v.column2 = '{SENDING}' THEN batch_letter.worker END,
    lease_until = CASE WHEN v.column2 = '{SENDING}' THEN {{{{now}}}} + v.column3 END,
    attempts = batch_letter.attempts + CASE WHEN v.column2 = '{WAITING}' THEN 1 ELSE 0 END,
    not_before = CASE WHEN v.column2 = '{WAITING}' THEN {{{{now}}}} + v.column3 ELSE batch_letter.not_before END,
    forsendelse_id = CASE WHEN v.column2 IN ('{SENDING}', '{WAITING}') THEN batch_letter.forsendelse_id
        ELSE v.column4 END,
    attempt_started = CASE WHEN v.column2 = '{SENDING}' THEN {{{{now}}}}
        WHEN v.column2 = '{UNKNOWN}' THEN {{{{now}}}} - v.column3 ELSE batch_letter.attempt_started END,
    error = CASE WHEN v.column2 = '{SENDING}' THEN batch_letter.error ELSE v.column5 END,
    dokumenter_sha256 = COALESCE(v.column6, batch_letter.dokumenter_sha256),
    updated = {{{{now}}}}
FROM (VALUES {{rows}}) AS v
WHERE batch_letter.ref = v.column1
    AND (v.column2 <> '{SENDING}' OR (batch_letter.state = '{WAITING}' AND batch_letter.worker = ?))"""  # noqa: S608
_COLUMNS = (
    "ref, line, kind, letter, ekstern_referanse, state, resend, attempts, forsendelse_id, error, "
    "dokumenter_sha256, status, status_time, attempt_started, settled, settled_at, settled_found, settled_reason"
)


@dataclass(frozen=True)
class Row:
    """A letter as the journal has it."""

    ref: str
    line: int
    kind: str
    letter: str
    ekstern_referanse: str | None
    state: str
    resend: bool
    attempts: int
    forsendelse_id: str | None
    error: str | None
    dokumenter_sha256: dict[str, str | None] | None
    status: str | None
    status_time: str | None
    #: When the last attempt began (epoch seconds, the journal's clock), if one did.
    attempt_started: float | None = None
    #: How an unknown outcome was settled (MOTTATT, IKKE_MOTTATT, UAVKLART), when, what was found, why.
    settled: str | None = None
    settled_at: float | None = None
    settled_found: list[str] | None = None
    settled_reason: str | None = None

    @classmethod
    def of(cls, values: Sequence[Any]) -> Row:
        sha = values[10]
        found = values[16]
        return cls(
            ref=values[0],
            line=int(values[1]),
            kind=values[2],
            letter=values[3],
            ekstern_referanse=values[4],
            state=values[5],
            resend=bool(values[6]),
            attempts=int(values[7]),
            forsendelse_id=values[8],
            error=values[9],
            dokumenter_sha256=json.loads(sha) if sha else None,
            status=values[11],
            status_time=values[12],
            attempt_started=float(values[13]) if values[13] is not None else None,
            settled=values[14],
            settled_at=float(values[15]) if values[15] is not None else None,
            settled_found=json.loads(found) if found else None,
            settled_reason=values[17],
        )


@dataclass(frozen=True)
class NewLetter:
    """A manifest letter to record: waiting, or skipped with its problems."""

    ref: str
    line: int
    kind: str
    letter: str
    ekstern_referanse: str | None
    skipped: str | None = None


@dataclass
class _Change:
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

    def __init__(self, journal: Journal, item: _Change) -> None:
        self._journal = journal
        self._item = item

    def wait(self) -> bool:
        """Block until the intent is on disk: True, or False if this worker's
        claim was lost (its lease expired and another worker has the letter).
        Raises if it could not be recorded."""
        return self._journal._wait(self._item)


class JournalError(Exception):
    """The journal cannot be used (held by another runner, another konto, unreadable)."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Journal:
    """The journal operations, on a DB-API connection; subclasses give the
    connection, the placeholder style, the clock and how a claim locks."""

    paramstyle = "?"
    now_sql = "0"
    skip_locked = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # The group commit: changes wait in _queue; the writer thread commits them together as
        # soon as one is urgent (an intent, a flush), and wakes the threads waiting for them.
        self._work = threading.Condition()
        self._queue: list[_Change] = []
        self._change_statements: dict[int, str] = {}
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
        self.worker = worker_id()
        self.run_id = ""
        self.konto_id: str | None = None

    # --- what a backend provides ------------------------------------------------

    def _connection(self) -> Any:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Commit what is still queued, stop the writer, close the connection."""
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
        self._close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, text: str) -> str:
        text = text.replace("{now}", self.now_sql).replace("{skip_locked}", self.skip_locked)
        return text.replace("?", self.paramstyle) if self.paramstyle != "?" else text

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = True, single_statement: bool = False) -> Iterator[Any]:
        """A cursor in one transaction, committed on success, rolled back on
        error. A durable commit is synced to disk (with every commit before
        it); one that is not may be lost in a power cut, for what can be: a
        claim or a lease, which only says who may send a letter, not whether
        it went. With ``single_statement``, the caller runs one statement,
        which may be a transaction of its own."""
        with self._lock:
            connection = self._connection()
            cursor = connection.cursor()
            try:
                self._begin(cursor, durable=durable, single_statement=single_statement)
                yield cursor
            except BaseException:
                connection.rollback()
                raise
            else:
                connection.commit()
            finally:
                cursor.close()

    def _begin(self, cursor: Any, *, durable: bool, single_statement: bool) -> None:
        pass

    def _setup_lock(self, cursor: Any) -> None:
        pass

    def _execute(self, cursor: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor.execute(self._sql(sql), tuple(params))
        return cursor

    # --- setting up -------------------------------------------------------------------

    def setup(self, *, konto_id: str | None) -> None:
        """Create the tables and the run id (once per journal); remember the
        konto, refusing another one than the journal's."""
        with self._transaction() as cur:
            self._setup_lock(cur)
            for statement in SCHEMA:
                self._execute(cur, statement)
            self._execute(
                cur,
                "INSERT INTO batch_meta (key, value) VALUES ('run_id', ?) ON CONFLICT DO NOTHING",
                (uuid.uuid4().hex[:12],),
            )
            if konto_id is not None:
                self._execute(
                    cur,
                    "INSERT INTO batch_meta (key, value) VALUES ('konto_id', ?) ON CONFLICT DO NOTHING",
                    (konto_id,),
                )
            meta = dict(self._execute(cur, "SELECT key, value FROM batch_meta").fetchall())
            self._migrate(cur, meta)
        self.run_id = meta["run_id"]
        self.konto_id = meta.get("konto_id")
        if konto_id is not None and self.konto_id != konto_id:
            raise JournalError(f"this journal belongs to konto {self.konto_id}, not {konto_id}")

    def open_existing(self) -> None:
        """Read the run id and konto of a journal that must exist already."""
        try:
            with self._transaction() as cur:
                meta = dict(self._execute(cur, "SELECT key, value FROM batch_meta").fetchall())
        except Exception as exc:
            raise JournalError(f"not a batch journal (or unreadable): {exc}") from None
        if "run_id" not in meta:
            raise JournalError("not a batch journal: it has no run id")
        if self._version(meta) != SCHEMA_VERSION:
            # A journal an earlier version wrote: brought up to date before it is read.
            with self._transaction() as cur:
                self._setup_lock(cur)
                meta = dict(self._execute(cur, "SELECT key, value FROM batch_meta").fetchall())
                self._migrate(cur, meta)
        self.run_id = meta["run_id"]
        self.konto_id = meta.get("konto_id")

    @staticmethod
    def _version(meta: dict[str, str]) -> int:
        # Journals from before the schema was versioned have no entry: version 1.
        try:
            return int(meta.get("schema_version", "1"))
        except ValueError:
            raise JournalError(f"the journal's schema_version is not a number: {meta['schema_version']!r}") from None

    def _migrate(self, cur: Any, meta: dict[str, str]) -> None:
        """Bring the journal's schema up to :data:`SCHEMA_VERSION`, in the
        caller's transaction (under :meth:`_setup_lock`): all or nothing."""
        version = self._version(meta)
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"this journal has schema version {version}, newer than this fiks-svarut knows "
                f"({SCHEMA_VERSION}): use the version that wrote it, or a newer one"
            )
        if version == SCHEMA_VERSION:
            return
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS.get(step, ()):
                self._execute(cur, statement)
        self._execute(
            cur,
            "INSERT INTO batch_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        log.info("journal schema migrated from version %d to %d", version, SCHEMA_VERSION)
        meta["schema_version"] = str(SCHEMA_VERSION)

    def load(self, letters: Iterable[NewLetter], *, chunk: int = 1000) -> None:
        """Record the manifest's letters; a ref already in the journal keeps its state."""
        batch: list[NewLetter] = []
        for letter in letters:
            batch.append(letter)
            if len(batch) >= chunk:
                self._load(batch)
                batch = []
        if batch:
            self._load(batch)

    def _load(self, batch: list[NewLetter]) -> None:
        # A letter not sent yet takes the manifest's current line: a line fixed since (or
        # skipped before and checking now) is sent as it reads now. A letter with an answer,
        # or unknown, keeps what was sent, so that a resend is an identical repeat.
        sql = self._sql(
            "INSERT INTO batch_letter (ref, line, kind, letter, ekstern_referanse, state, error, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, {now}) ON CONFLICT (ref) DO UPDATE SET state = excluded.state, "
            "error = excluded.error, line = excluded.line, kind = excluded.kind, letter = excluded.letter, "
            "ekstern_referanse = excluded.ekstern_referanse WHERE batch_letter.letter <> excluded.letter "
            "AND (batch_letter.state = ? OR (batch_letter.state = ? "
            "AND (batch_letter.worker IS NULL OR batch_letter.lease_until < {now})))"
        )
        rows = [
            (
                n.ref,
                n.line,
                n.kind,
                n.letter,
                n.ekstern_referanse,
                SKIPPED if n.skipped else WAITING,
                n.skipped,
                SKIPPED,
                WAITING,
            )
            for n in batch
        ]
        with self._transaction() as cur:
            cur.executemany(sql, rows)

    # --- running ---------------------------------------------------------------------

    def recover(self, *, all_sending: bool) -> list[Row]:
        """Letters left ``sending`` by a runner that died (``all_sending``:
        every one, as SQLite's single runner may say; else those whose lease
        expired) become ``unknown``, their attempt taken to have begun now;
        returned so their hashes can be added."""
        where = "state = ?" if all_sending else "state = ? AND lease_until < {now}"
        select = f"SELECT {_COLUMNS} FROM batch_letter WHERE {where}"  # noqa: S608 (constants only)
        with self._transaction() as cur:
            rows = [Row.of(r) for r in self._execute(cur, select, (SENDING,)).fetchall()]
            for row in rows:
                # When the attempt began is not known (the client may have tried again after the
                # intent), only that it was before the runner died: now is a bound never too early.
                self._execute(
                    cur,
                    "UPDATE batch_letter SET state = ?, worker = NULL, error = ?, attempt_started = {now}, "
                    "updated = {now} WHERE ref = ? AND state = ?",
                    (UNKNOWN, "the runner stopped while sending; SvarUt may have the forsendelse", row.ref, SENDING),
                )
        return rows

    def release_all(self) -> None:
        """Forget every claim (SQLite: the one runner starting has none)."""
        with self._transaction() as cur:
            self._execute(cur, "UPDATE batch_letter SET worker = NULL, lease_until = NULL WHERE state = ?", (WAITING,))

    def retry_waiting(self) -> None:
        """A new run tries again the letters an earlier one gave up on after
        :data:`MAX_ATTEMPTS` failed connections."""
        with self._transaction() as cur:
            self._execute(
                cur,
                "UPDATE batch_letter SET attempts = 0, not_before = NULL WHERE state = ? AND attempts >= ?",
                (WAITING, MAX_ATTEMPTS),
            )

    def requeue_unknown(self) -> int:
        """``--resend-unknown``: every unknown letter goes back to waiting, marked to be resent."""
        with self._transaction() as cur:
            count = self._execute(
                cur,
                "UPDATE batch_letter SET state = ?, resend = 1, attempts = 0, not_before = NULL, worker = NULL "
                "WHERE state = ?",
                (WAITING, UNKNOWN),
            ).rowcount
        return int(count)

    def claim(self, limit: int, *, lease: float) -> list[Row]:
        """Up to ``limit`` waiting letters for this worker, in manifest order,
        none claimed by a live worker (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        with self._transaction(durable=False) as cur:
            refs = [
                r[0]
                for r in self._execute(
                    cur,
                    "SELECT ref FROM batch_letter WHERE state = ? AND attempts < ? "
                    "AND (not_before IS NULL OR not_before <= {now}) "
                    "AND (worker IS NULL OR lease_until < {now}) ORDER BY line LIMIT ? {skip_locked}",
                    (WAITING, MAX_ATTEMPTS, limit),
                ).fetchall()
            ]
            if not refs:
                return []
            marks = ", ".join("?" * len(refs))
            update = f"UPDATE batch_letter SET worker = ?, lease_until = {{now}} + ? WHERE ref IN ({marks})"  # noqa: S608
            self._execute(cur, update, (self.worker, lease, *refs))
            select = f"SELECT {_COLUMNS} FROM batch_letter WHERE ref IN ({marks}) ORDER BY line"  # noqa: S608
            rows = [Row.of(r) for r in self._execute(cur, select, refs).fetchall()]
        return rows

    def pending(self) -> tuple[int, float | None]:
        """How many letters, not in this worker's hands, may still be sent
        (by another worker, or after backing off), and the earliest moment one
        backing off may go again."""
        with self._transaction() as cur:
            count, soonest = self._execute(
                cur,
                "SELECT COUNT(*), MIN(not_before) FROM batch_letter "
                "WHERE ((state = ? AND attempts < ?) OR state = ?) AND (worker IS NULL OR worker <> ?)",
                (WAITING, MAX_ATTEMPTS, SENDING, self.worker),
            ).fetchone()
        return int(count), (float(soonest) if soonest is not None else None)

    def renew(self, *, lease: float) -> None:
        """Extend this worker's leases (its claimed and sending letters)."""
        with self._transaction(durable=False) as cur:
            self._execute(
                cur,
                "UPDATE batch_letter SET lease_until = {now} + ? WHERE worker = ? AND state IN (?, ?)",
                (lease, self.worker, WAITING, SENDING),
            )

    def release(self) -> None:
        """Record the answers not yet committed, and give back the letters
        this worker claimed but did not start."""
        self.flush()
        with self._transaction(durable=False) as cur:
            self._execute(
                cur,
                "UPDATE batch_letter SET worker = NULL, lease_until = NULL WHERE worker = ? AND state = ?",
                (self.worker, WAITING),
            )

    def start_sending(self, ref: str, *, lease: float) -> bool:
        """Record the intent to send, durably, before the first byte; False
        if this worker's claim was lost (its lease expired and another took it)."""
        return self.announce(ref, lease=lease).wait()

    def announce(self, ref: str, *, lease: float) -> Intent:
        """:meth:`start_sending`, without waiting: the intent's commit starts
        now, and :meth:`Intent.wait` waits for it."""
        return Intent(self, self._submit(_Change(ref, SENDING, seconds=lease), urgent=True))

    def finish(
        self,
        ref: str,
        state: str,
        *,
        forsendelse_id: str | None = None,
        error: str | None = None,
        dokumenter_sha256: dict[str, str | None] | None = None,
        retry_in: float | None = None,
        attempt_age: float = 0.0,
        durable: bool = True,
    ) -> None:
        """Record the answer of a send: its final state, or back to waiting
        (``retry_in`` seconds from now) when it surely did not arrive. For an
        unknown outcome, ``attempt_age`` is how long ago the attempt that may
        have arrived began (0: now, when the answer is recorded; never more
        than it was). With ``durable=False`` it is not waited for: it goes into
        the next commit (the next intent's, or :meth:`flush`)."""
        if state == SENDING:
            raise ValueError("an answer cannot leave a letter sending")
        if state == WAITING:
            seconds = retry_in or 0.0
        elif state == UNKNOWN:
            seconds = max(0.0, attempt_age)
        else:
            seconds = 0.0
        change = _Change(
            ref,
            state,
            seconds=seconds,
            forsendelse_id=forsendelse_id,
            error=error,
            dokumenter_sha256=json.dumps(dokumenter_sha256, sort_keys=True) if dokumenter_sha256 is not None else None,
        )
        item = self._submit(change, urgent=durable)
        if durable:
            self._wait(item)

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
        self._wait(self._submit(_Change(None), urgent=True))

    def _submit(self, item: _Change, *, urgent: bool) -> _Change:
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

    def _wait(self, item: _Change) -> bool:
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

    def _record(self, changes: list[_Change]) -> None:
        """Write ``changes`` in one transaction, synced to disk, and mark each
        intent recorded or not (its claim lost). Mostly one statement: under
        load each statement costs the writer a wait for the GIL."""
        if not changes:
            return
        statements: list[list[_Change]] = [[]]
        refs: set[str | None] = set()
        for change in changes:
            # A letter changes at most once in a statement (two changes of one letter cannot
            # share a commit anyway: an answer is handed in after its intent was committed).
            if change.ref in refs or len(statements[-1]) >= CHANGES_PER_STATEMENT:
                statements.append([])
                refs.clear()
            statements[-1].append(change)
            refs.add(change.ref)
        updated = 0
        with self._transaction(single_statement=len(statements) == 1) as cur:
            for group in statements:
                params = [
                    v
                    for c in group
                    for v in (c.ref, c.state, c.seconds, c.forsendelse_id, c.error, c.dokumenter_sha256)
                ]
                updated += cur.execute(self._change_sql(len(group)), (*params, self.worker)).rowcount
        intents = [c for c in changes if c.state == SENDING]
        if updated == len(changes):
            for c in intents:
                c.recorded = True
        elif intents:
            # An intent was refused: its claim was lost (the lease expired, another worker has the letter).
            marks = ", ".join("?" * len(intents))
            with self._transaction() as cur:
                mine = {
                    r[0]
                    for r in self._execute(
                        cur,
                        f"SELECT ref FROM batch_letter WHERE ref IN ({marks}) AND state = ? AND worker = ?",  # noqa: S608
                        (*(c.ref for c in intents), SENDING, self.worker),
                    ).fetchall()
                }
            for c in intents:
                c.recorded = c.ref in mine

    def _change_sql(self, rows: int) -> str:
        """The statement that writes ``rows`` changes, in this database's dialect (made once per size)."""
        sql = self._change_statements.get(rows)
        if sql is None:
            sql = self._change_statements[rows] = self._sql(
                _CHANGE_SQL.format(rows=", ".join(["(?, ?, ?, ?, ?, ?)"] * rows))
            )
        return sql

    def set_hashes(self, ref: str, dokumenter_sha256: dict[str, str | None]) -> None:
        with self._transaction() as cur:
            self._execute(
                cur,
                "UPDATE batch_letter SET dokumenter_sha256 = ? WHERE ref = ?",
                (json.dumps(dokumenter_sha256, sort_keys=True), ref),
            )

    # --- settling ----------------------------------------------------------------------

    def clock(self) -> float:
        """The journal's clock now (epoch seconds): what ``attempt_started`` is measured on."""
        with self._transaction() as cur:
            return float(self._execute(cur, "SELECT {now}").fetchone()[0])

    def shared_references(self) -> set[str]:
        """The eksternReferanser of unknown letters that another letter of
        the journal carries too: SvarUt's answer for one cannot tell which
        letter's forsendelse it found. One pass over the table."""
        with self._transaction() as cur:
            found = self._execute(
                cur,
                "SELECT ekstern_referanse FROM batch_letter WHERE ekstern_referanse IN "
                "(SELECT ekstern_referanse FROM batch_letter WHERE state = ?) "
                "GROUP BY ekstern_referanse HAVING COUNT(*) > 1",
                (UNKNOWN,),
            ).fetchall()
        return {str(r[0]) for r in found}

    def settle(
        self,
        ref: str,
        tilstand: str,
        *,
        attempt_started: float | None,
        forsendelse_id: str | None = None,
        found: Sequence[str] = (),
        reason: str,
    ) -> bool:
        """Record how an unknown letter was settled, durably: ``mottatt``
        makes it sent (``forsendelse_id``), ``ikke_mottatt`` puts it back to
        waiting (to be sent again), ``uavklart`` leaves it unknown. Applies
        only while the letter is still unknown from the attempt that was
        looked up (``attempt_started`` as read): another worker may have
        settled it, or settled and sent it again, meanwhile. Whether it applied."""
        if tilstand == MOTTATT:
            if not forsendelse_id:
                raise ValueError("mottatt needs the forsendelse id SvarUt has")
            change, params = "state = ?, forsendelse_id = ?, ", [SENT, forsendelse_id]
        elif tilstand == IKKE_MOTTATT:
            change = "state = ?, resend = 0, attempts = 0, not_before = NULL, worker = NULL, lease_until = NULL, "
            params = [WAITING]
        elif tilstand == UAVKLART:
            change, params = "", []
        else:
            raise ValueError(f"not a settled state: {tilstand!r}")
        with self._transaction() as cur:
            updated = self._execute(
                cur,
                f"UPDATE batch_letter SET {change}settled = ?, settled_at = {{now}}, settled_found = ?, "  # noqa: S608
                "settled_reason = ?, updated = {now} "
                "WHERE ref = ? AND state = ? AND COALESCE(attempt_started, -1.0) = COALESCE(?, -1.0)",
                (*params, tilstand, json.dumps(list(found)), reason, ref, UNKNOWN, attempt_started),
            ).rowcount
        return bool(updated)

    # --- reading ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many letters are in each state (every state listed)."""
        with self._transaction() as cur:
            found = dict(self._execute(cur, "SELECT state, COUNT(*) FROM batch_letter GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}

    def rows(self, *, states: Sequence[str] | None = None, page: int = 1000) -> Iterator[Row]:
        """Every letter (or those in ``states``), in manifest order, a page at a time."""
        after = -1
        while True:
            found = self.page(after=after, states=states, limit=page)
            yield from found
            if len(found) < page:
                return
            after = found[-1].line

    def page(self, *, after: int, states: Sequence[str] | None = None, limit: int = 1000) -> list[Row]:
        """Up to ``limit`` letters (or those in ``states``) after manifest line ``after``, in manifest order."""
        where = f" AND state IN ({', '.join('?' * len(states))})" if states else ""
        with self._transaction() as cur:
            return [
                Row.of(r)
                for r in self._execute(
                    cur,
                    f"SELECT {_COLUMNS} FROM batch_letter WHERE line > ?{where} ORDER BY line LIMIT ?",  # noqa: S608
                    (after, *(states or ()), limit),
                ).fetchall()
            ]

    def record_status(self, ref: str, forsendelse_id: str, status: str, status_time: str) -> bool:
        """Store a status if it is new for the letter (with the time it was
        seen, in the history too); whether it was."""
        with self._transaction() as cur:
            changed = self._execute(
                cur,
                "UPDATE batch_letter SET status = ?, status_time = ?, updated = {now} "
                "WHERE ref = ? AND (status IS NULL OR status <> ? OR status_time IS NULL OR status_time <> ?)",
                (status, status_time, ref, status, status_time),
            ).rowcount
            if changed:
                self._execute(
                    cur,
                    "INSERT INTO batch_status (ref, forsendelse_id, status, status_time, recorded) "
                    "VALUES (?, ?, ?, ?, {now})",
                    (ref, forsendelse_id, status, status_time),
                )
        return bool(changed)

    def history(self, ref: str) -> list[tuple[str, str | None]]:
        """A letter's statuses, oldest first: (status, SvarUt's time of it)."""
        with self._transaction() as cur:
            found = self._execute(
                cur, "SELECT status, status_time FROM batch_status WHERE ref = ? ORDER BY recorded", (ref,)
            ).fetchall()
        return [(r[0], r[1]) for r in found]


class SQLiteJournal(Journal):
    """The journal in a SQLite file: WAL, ``synchronous=FULL`` (each commit
    reaches the disk), one runner at a time (a lock file beside it)."""

    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: str | Path, *, exclusive: bool = True) -> None:
        super().__init__()
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise JournalError(
                f"a SQLite journal needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer (UPDATE … FROM), and "
                f"this Python has {sqlite3.sqlite_version}: use a PostgreSQL journal, or a Python built with a "
                "newer SQLite"
            )
        self.path = Path(path)
        self.exclusive = exclusive
        self._lock_file: Any = None
        if exclusive:
            self._lock_file = open(f"{self.path}.lock", "a+b")  # noqa: SIM115 (held until close)
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock_file.close()
                raise JournalError(
                    f"{self.path} is in use by another runner (one runner per SQLite journal; use PostgreSQL "
                    "for several)"
                ) from None
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._synchronous = True
        self._transactions = _ExplicitTransactions(self._db)

    def _connection(self) -> Any:
        return self._transactions

    def _begin(self, cursor: Any, *, durable: bool, single_statement: bool) -> None:
        if durable != self._synchronous:
            # WAL: a commit at NORMAL is not synced, the next one at FULL syncs it with its own.
            cursor.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._synchronous = durable
        if not single_statement:  # else autocommit: the statement is its transaction, one call fewer
            cursor.execute("BEGIN IMMEDIATE")

    def _close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


class _ExplicitTransactions:
    """sqlite3 in autocommit mode with our own BEGIN/COMMIT, so every
    transaction (reads included) is exactly the one we open."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def cursor(self) -> sqlite3.Cursor:
        return self._db.cursor()

    def commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def open_journal(target: str | Path, *, exclusive: bool = True) -> Journal:
    """The journal at ``target``: a ``postgresql://`` URL or a SQLite file path."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from svarut.batch.postgres import PostgresJournal

        return PostgresJournal(text)
    return SQLiteJournal(text, exclusive=exclusive)
