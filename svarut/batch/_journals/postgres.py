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

    def _connection(self) -> Any:
        return self._db

    def _begin(self, cursor: Any, *, durable: bool, single_statement: bool) -> None:
        if not durable:
            # A claim or a lease: lost in a crash, the letter is just claimed again.
            cursor.execute("SET LOCAL synchronous_commit = off")

    def _setup_lock(self, cursor: Any) -> None:
        # Several workers starting at once must not race to create the tables.
        cursor.execute("SELECT pg_advisory_xact_lock(4242004200)")

    def _load_lock(self, cursor: Any) -> None:
        # Held across transactions (session level), until released or the connection ends.
        cursor.execute("SELECT pg_try_advisory_lock(4242004201)")
        if not cursor.fetchone()[0]:
            log.info("another worker is checking and loading a manifest into the journal: waiting for it")
            cursor.execute("SELECT pg_advisory_lock(4242004201)")

    def _load_unlock(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_unlock(4242004201)")

    def _close(self) -> None:
        self._db.close()
