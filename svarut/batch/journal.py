"""The batch journal: what happened to every letter, durably.

One table row per letter (``batch_letter``), one per status change
(``batch_status``), the run's settings (``batch_meta``: the run id,
created once per journal, and the konto), and the manifests checked and
loaded (``batch_manifest``: a worker joining a run of the same manifest
need not check it again). A letter moves::

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
The SQL is shared by both databases.

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

This module is the journal's face: :func:`open_journal` picks the backend
for a path or URL, and the names used elsewhere are here. The pieces live in
:mod:`svarut.batch._journals`: the states, tables and rows in ``schema``,
the group commit in ``writer``, the operations in ``base``, and each
database in its own module (``sqlite``, ``postgres``), side by side. A
journal says which it is by :attr:`Journal.backend` and what it allows by
:attr:`Journal.single_runner`.
"""

from __future__ import annotations

import sqlite3  # noqa: F401 (the SQLite the journal runs on, as svarut.batch.journal.sqlite3)
from pathlib import Path

from svarut.batch._journals.base import Journal, worker_id
from svarut.batch._journals.postgres import PostgresJournal
from svarut.batch._journals.schema import (
    CHANGES_PER_STATEMENT,
    DUPLICATE_CONFIRMED,
    FINISHED,
    IKKE_MOTTATT,
    MAX_ATTEMPTS,
    MIGRATIONS,
    MOTTATT,
    REFUSED,
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
from svarut.batch._journals.sqlite import MIN_SQLITE, SQLiteJournal
from svarut.batch._journals.writer import GATHER_WAIT, Intent

__all__ = [
    "CHANGES_PER_STATEMENT",
    "DUPLICATE_CONFIRMED",
    "FINISHED",
    "GATHER_WAIT",
    "IKKE_MOTTATT",
    "MAX_ATTEMPTS",
    "MIGRATIONS",
    "MIN_SQLITE",
    "MOTTATT",
    "REFUSED",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SENDING",
    "SENT",
    "SKIPPED",
    "STATES",
    "UAVKLART",
    "UNKNOWN",
    "WAITING",
    "Held",
    "Intent",
    "Journal",
    "JournalError",
    "NewLetter",
    "PostgresJournal",
    "Row",
    "SQLiteJournal",
    "default_journal",
    "must_exist",
    "open_given",
    "open_journal",
    "worker_id",
]


def open_journal(target: str | Path, *, exclusive: bool = True) -> Journal:
    """The journal at ``target``: a ``postgresql://`` URL or a SQLite file path."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresJournal(text)
    return SQLiteJournal(text, exclusive=exclusive)


def must_exist(target: str | Path) -> None:
    """Refuse a SQLite journal path with no file: a command that reads a
    journal must not make an empty one where the person mistyped it."""
    text = str(target)
    if not text.startswith(("postgresql://", "postgres://")) and not Path(text).exists():
        raise JournalError(
            f"no journal at {text}: `svarut batch run MANIFEST` makes it (give that manifest, or --journal)"
        )


def default_journal(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".journal.sqlite")


def open_given(journal: str | Path | Journal | None, manifest: Path) -> Journal:
    """``journal`` if it is open already, else the one at its path or URL
    (default: :func:`default_journal` of ``manifest``), opened."""
    if isinstance(journal, Journal):
        return journal
    return open_journal(journal if journal is not None else default_journal(manifest))


class Held:
    """Open (and close) a journal given as a path or URL; one given open stays open."""

    def __init__(self, journal: str | Path | Journal | None, manifest: Path) -> None:
        self._given = journal if isinstance(journal, Journal) else None
        self._journal = open_given(journal, manifest)

    def __enter__(self) -> Journal:
        return self._journal

    def __exit__(self, *exc: object) -> None:
        if self._given is None:
            self._journal.close()
