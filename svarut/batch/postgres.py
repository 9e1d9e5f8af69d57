"""The batch journal in PostgreSQL: several workers, on any machines, share
one run. It lives in :mod:`svarut.batch._journals.postgres`, beside the
SQLite one; :func:`svarut.batch.open_journal` opens it for a
``postgresql://`` URL."""

from svarut.batch._journals.postgres import PostgresJournal

__all__ = ["PostgresJournal"]
