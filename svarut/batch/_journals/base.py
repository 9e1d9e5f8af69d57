"""The journal's operations on a DB-API connection, for every backend:
setting up and migrating the tables, loading a manifest's letters, claims and
leases, the group commit's one statement (:meth:`Journal._record`),
settling unknown outcomes, and reading the letters back. A backend
(:mod:`~svarut.batch._journals.sqlite`, :mod:`~svarut.batch._journals.postgres`)
gives the connection, the placeholder style, the clock and how a claim
locks; the writer thread is :mod:`~svarut.batch._journals.writer`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from svarut.batch._journals.schema import (
    CHANGE_SQL,
    CHANGES_PER_STATEMENT,
    COLUMNS,
    IKKE_MOTTATT,
    MANIFEST_SCHEMA,
    MAX_ATTEMPTS,
    MIGRATIONS,
    MOTTATT,
    SCHEMA,
    SCHEMA_VERSION,
    SENDING,
    SENT,
    SKIPPED,
    STATES,
    UAVKLART,
    UNKNOWN,
    WAITING,
    JournalError,
    NewLetter,
    Row,
)
from svarut.batch._journals.writer import GATHER_WAIT, Change, GroupCommit, Intent

log = logging.getLogger("svarut.batch")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Journal:
    """The journal operations, on a DB-API connection; subclasses give the
    connection, the placeholder style, the clock and how a claim locks."""

    #: Which database: ``"sqlite"`` or ``"postgresql"``.
    backend: ClassVar[str] = ""
    #: One runner at a time (SQLite): a letter found ``sending`` when a run starts was left by a
    #: runner that died, not perhaps by a live worker whose lease has not run out.
    single_runner: ClassVar[bool] = False
    paramstyle = "?"
    now_sql = "0"
    skip_locked = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # The group commit: the writer thread commits the changes senders hand in, with _record.
        self._commits = GroupCommit(self._record)
        self._change_statements: dict[int, str] = {}
        self.worker = worker_id()
        self.run_id = ""
        self.konto_id: str | None = None
        #: Whether this process holds the journal alone (a SQLite journal opened exclusive).
        self.exclusive = False

    # --- what a backend provides ------------------------------------------------

    def _connection(self) -> Any:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Commit what is still queued, stop the writer, close the connection."""
        self._commits.close()
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
                self._end()

    def _begin(self, cursor: Any, *, durable: bool, single_statement: bool) -> None:
        pass

    def _end(self) -> None:
        pass

    def _setup_lock(self, cursor: Any) -> None:
        pass

    def _try_load_lock(self, cursor: Any) -> bool:
        return True

    def _load_lock(self, cursor: Any) -> None:
        pass

    def _load_unlock(self, cursor: Any) -> None:
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
            for statement in MANIFEST_SCHEMA:
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

    # --- the manifest checked and loaded ---------------------------------------------

    @contextlib.contextmanager
    def loading(self, *, while_waiting: Callable[[], object] | None = None) -> Iterator[None]:
        """Hold the journal's load lock while a worker checks and loads a
        manifest and records it (:meth:`record_manifest`): a worker that
        starts meanwhile waits, then finds the manifest recorded and need not
        check it again. ``while_waiting`` is called first if the lock is
        held by another worker. PostgreSQL: a session advisory lock, released here or
        when the worker's connection ends (it died); SQLite: nothing to do,
        one runner holds the journal."""
        with self._transaction() as cur:
            locked = self._try_load_lock(cur)
        if not locked:
            if while_waiting is not None:
                while_waiting()
            with self._transaction() as cur:
                self._load_lock(cur)
        try:
            yield
        finally:
            try:
                with self._transaction() as cur:
                    self._load_unlock(cur)
            except Exception as exc:  # the connection is gone: so is the lock
                log.debug("load lock not released: %s", exc)

    def checked_manifest(self, sha256: str, *, konto_id: str) -> tuple[int, str] | None:
        """How many problems the check of the manifest with this SHA-256 found
        and its documents' fingerprint then, if it is recorded as loaded for
        ``konto_id`` and no load has begun since; else None."""
        with self._transaction() as cur:
            row = self._execute(
                cur,
                "SELECT problems, documents FROM batch_manifest "
                "WHERE sha256 = ? AND konto_id = ? AND loaded IS NOT NULL",
                (sha256, konto_id),
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def forget_manifests(self) -> None:
        """Before a load: no manifest is recorded as loaded any more (the load
        may change the letters an earlier one wrote), until this one's
        :meth:`record_manifest`. Committed before the first letter is written."""
        with self._transaction() as cur:
            self._execute(cur, "UPDATE batch_manifest SET loaded = NULL WHERE loaded IS NOT NULL")

    def record_manifest(self, sha256: str, *, konto_id: str, documents: str, problems: int) -> None:
        """After a load has committed: the manifest with this SHA-256 was
        checked (``problems`` found, its documents' fingerprint
        ``documents``) and its letters are in the journal."""
        with self._transaction() as cur:
            self._execute(
                cur,
                "INSERT INTO batch_manifest (sha256, konto_id, documents, problems, loaded) "
                "VALUES (?, ?, ?, ?, {now}) ON CONFLICT (sha256, konto_id) DO UPDATE SET "
                "documents = excluded.documents, problems = excluded.problems, loaded = excluded.loaded",
                (sha256, konto_id, documents, problems),
            )

    # --- loading ---------------------------------------------------------------------

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
        select = f"SELECT {COLUMNS} FROM batch_letter WHERE {where}"  # noqa: S608 (constants only)
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
            select = f"SELECT {COLUMNS} FROM batch_letter WHERE ref IN ({marks}) ORDER BY line"  # noqa: S608
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

    def abandon(self) -> int:
        """Stop recording without waiting for the sends on the wire (a second
        Ctrl-C): the answers handed in are committed, intents not yet
        committed are refused (their letters do not go out), every later
        change is refused; the number of this worker's letters left
        ``sending``, whose outcome the next run settles."""
        self._commits.abandon()
        with self._transaction(durable=False) as cur:
            found = self._execute(
                cur, "SELECT COUNT(*) FROM batch_letter WHERE worker = ? AND state = ?", (self.worker, SENDING)
            ).fetchone()
        return int(found[0])

    def start_sending(self, ref: str, *, lease: float) -> bool:
        """Record the intent to send, durably, before the first byte; False
        if this worker's claim was lost (its lease expired and another took it)."""
        return self.announce(ref, lease=lease).wait()

    def announce(self, ref: str, *, lease: float) -> Intent:
        """:meth:`start_sending`, without waiting: the intent's commit starts
        now, and :meth:`Intent.wait` waits for it."""
        return Intent(self._commits, self._commits.submit(Change(ref, SENDING, seconds=lease), urgent=True))

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
        change = Change(
            ref,
            state,
            seconds=seconds,
            forsendelse_id=forsendelse_id,
            error=error,
            dokumenter_sha256=json.dumps(dokumenter_sha256, sort_keys=True) if dokumenter_sha256 is not None else None,
        )
        item = self._commits.submit(change, urgent=durable)
        if durable:
            self._commits.wait(item)

    def gather(self, senders: int, *, wait: float = GATHER_WAIT) -> None:
        """Let a commit wait up to ``wait`` seconds for the intents of the
        ``senders`` senders not :meth:`on_the_wire`, so that one sync to disk
        carries them all (1: each commits as soon as it comes)."""
        self._commits.gather(senders, wait=wait)

    def on_the_wire(self) -> contextlib.AbstractContextManager[None]:
        """Around a send: a commit does not wait for this sender's next intent
        while it waits for SvarUt's answer."""
        return self._commits.on_the_wire()

    def flush(self) -> None:
        """Commit, durably, every change handed in without waiting."""
        self._commits.flush()

    def _record(self, changes: list[Change]) -> None:
        """Write ``changes`` in one transaction, synced to disk, and mark each
        intent recorded or not (its claim lost). Mostly one statement: under
        load each statement costs the writer a wait for the GIL."""
        if not changes:
            return
        statements: list[list[Change]] = [[]]
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
                CHANGE_SQL.format(rows=", ".join(["(?, ?, ?, ?, ?, ?)"] * rows))
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
                    f"SELECT {COLUMNS} FROM batch_letter WHERE line > ?{where} ORDER BY line LIMIT ?",  # noqa: S608
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
