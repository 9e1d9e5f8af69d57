"""The journal in a SQLite file: WAL, ``synchronous=FULL`` (each commit
reaches the disk), one runner at a time (a lock file beside it)."""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path
from typing import Any

from svarut.batch._journals.base import Journal
from svarut.batch._journals.schema import JournalError

# The oldest SQLite the journal runs on: a group commit writes with UPDATE … FROM.
MIN_SQLITE = (3, 33, 0)


class SQLiteJournal(Journal):
    """The journal in a SQLite file: WAL, ``synchronous=FULL`` (each commit
    reaches the disk), one runner at a time (a lock file beside it)."""

    backend = "sqlite"
    single_runner = True
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
