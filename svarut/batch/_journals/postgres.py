"""The batch journal in PostgreSQL (``pip install 'fiks-svarut[postgres]'``,
psycopg 3): several workers, on any machines, share one run.

Claims take waiting letters with ``FOR UPDATE SKIP LOCKED``, so two workers
never get the same letter; each claim carries a lease that its worker renews
while it lives. A dead worker's letters are taken over once the lease has
expired: those it had only claimed are simply claimed again, those it was
sending become ``unknown``. Times are the database's clock, so the workers'
clocks need not agree. Every commit is synchronous (PostgreSQL's default
``synchronous_commit=on``, which the journal insists on).
"""

from __future__ import annotations

import logging
from typing import Any

from svarut.batch._journals.base import Journal
from svarut.batch._journals.schema import JournalError

log = logging.getLogger("svarut.batch")


class PostgresJournal(Journal):
    """The journal in a PostgreSQL database, shared by any number of workers."""

    backend = "postgresql"
    paramstyle = "%s"
    now_sql = "extract(epoch from clock_timestamp())::double precision"
    skip_locked = "FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
        except ModuleNotFoundError:
            raise JournalError("a PostgreSQL journal needs psycopg: pip install 'fiks-svarut[postgres]'") from None
        try:
            self._db = psycopg.connect(url, autocommit=False)
        except psycopg.Error as exc:
            # psycopg's message names host and database, never the password.
            raise JournalError(f"cannot connect to the PostgreSQL journal: {exc}") from None
        with self._db.cursor() as cur:
            cur.execute("SET synchronous_commit = on")
        self._db.commit()
        self._idle = psycopg.pq.TransactionStatus.IDLE

    def _connection(self) -> Any:
        return self._db

    def _begin(self, cursor: Any, *, durable: bool, single_statement: bool) -> None:
        if not durable:
            # A claim or a lease: lost in a crash, the letter is just claimed again.
            cursor.execute("SET LOCAL synchronous_commit = off")
        elif single_statement:
            # The statement is its own transaction, committed (and synced: synchronous_commit is on) before
            # it answers: one round trip instead of BEGIN, the statement and COMMIT. A group commit is
            # mostly one statement, and its round trips were a good part of a worker's CPU a letter.
            self._db.autocommit = True

    def _end(self) -> None:
        # Not on a broken connection (it refuses the change; it cannot run anything anyway).
        if self._db.autocommit and self._db.info.transaction_status == self._idle:
            self._db.autocommit = False

    def _setup_lock(self, cursor: Any) -> None:
        # Several workers starting at once must not race to create the tables.
        cursor.execute("SELECT pg_advisory_xact_lock(4242004200)")

    # Held across transactions (session level), until released or the connection ends.
    def _try_load_lock(self, cursor: Any) -> bool:
        cursor.execute("SELECT pg_try_advisory_lock(4242004201)")
        return bool(cursor.fetchone()[0])

    def _load_lock(self, cursor: Any) -> None:
        log.info("another worker is checking and loading a manifest into the journal: waiting for it")
        cursor.execute("SELECT pg_advisory_lock(4242004201)")

    def _load_unlock(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_unlock(4242004201)")

    def _close(self) -> None:
        self._db.close()
