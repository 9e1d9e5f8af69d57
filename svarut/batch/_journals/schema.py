"""The journal's data, shared by every backend: the letter states, the
tables (:data:`SCHEMA`) and their migrations (:data:`MIGRATIONS`), the one
statement a group commit writes its changes with (:data:`CHANGE_SQL`), and
the rows read back (:class:`Row`) and written in (:class:`NewLetter`).

The SQL is written once for both databases: ``?`` placeholders and the
``{now}`` / ``{skip_locked}`` markers, which each backend fills in with its
own (:meth:`svarut.batch._journals.base.Journal._sql`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
#: Which manifests were checked and loaded into the journal, so that a worker joining a run of the
#: same manifest need not check and load it again (:meth:`Journal.checked_manifest`). Created by
#: ``setup`` if missing, outside the versioned schema: a journal from before it keeps working (it
#: gets the table, empty: the next run checks), and an older fiks-svarut, which never reads it,
#: can still open the journal. Per manifest (the SHA-256 of its bytes) and konto: ``documents``,
#: the fingerprint of its documents when it was checked (size and modification time of each, see
#: :func:`svarut.batch.manifest.documents_fingerprint`), ``problems``, how many the check found, and
#: ``loaded``, when its load committed: NULL once another load has begun since, since that one may
#: have changed the letters this one wrote.
MANIFEST_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS batch_manifest (
        sha256 TEXT NOT NULL,
        konto_id TEXT NOT NULL,
        documents TEXT NOT NULL,
        problems INTEGER NOT NULL,
        loaded DOUBLE PRECISION,
        PRIMARY KEY (sha256, konto_id)
    )""",
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
# Letters changed by one statement of a group commit, at most (six parameters each).
CHANGES_PER_STATEMENT = 256
# Intents and answers of a group commit, in one statement. An intent (state sending: the lease in
# column3) applies only to a letter still waiting and claimed by this worker, and marks when its
# attempt begins (the commit is before the first byte); an answer ends the claim and, when the
# letter is to wait (column3: seconds until it may be tried again), counts the attempt. An unknown
# answer moves the attempt's start to when it last began (column3: how long ago that was): the
# client may have tried more than once after the intent.
CHANGE_SQL = f"""UPDATE batch_letter SET
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
COLUMNS = (
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


class JournalError(Exception):
    """The journal cannot be used (held by another runner, another konto, unreadable)."""
