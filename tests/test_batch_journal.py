"""The batch journal on both databases (SQLite, and a real PostgreSQL
server): every kind of intent and answer written by one statement by the
group commit, and a journal an earlier version wrote brought up to date."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from postgres_server import postgres_server, postgres_url  # noqa: F401 (fixtures)
from test_batch_helpers import traced_journal

import svarut.batch
from svarut.batch import journal as j
from svarut.batch.journal import NewLetter
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def test_one_commit_carries_every_kind_of_answer_and_the_intents(journal_target: str) -> None:
    refs = ["sent", "refused", "unknown", "retry", "duplicate", "next", "taken"]
    with svarut.batch.open_journal(journal_target) as jn:
        jn.setup(konto_id="k")
        jn.load([NewLetter(ref, i, "person", f"line-{ref}", f"e-{ref}") for i, ref in enumerate(refs, 1)])
        assert len(jn.claim(10, lease=60)) == len(refs)
        jn.gather(1)
        for ref in refs[:5]:
            assert jn.start_sending(ref, lease=60)
        before = {r.ref: r for r in jn.rows()}
        assert {before[ref].state for ref in refs[:5]} == {j.SENDING}

        # Five answers handed in without waiting, then two intents: all in the intents' commit.
        jn.finish("sent", j.SENT, forsendelse_id="id-1", durable=False)
        jn.finish("refused", j.REFUSED, error="400: no", durable=False)
        jn.finish("unknown", j.UNKNOWN, error="timeout", dokumenter_sha256={"a.pdf": "ab"}, durable=False)
        jn.finish("retry", j.WAITING, error="503", retry_in=30.0, durable=False)
        jn.finish("duplicate", j.DUPLICATE_CONFIRMED, error="409", durable=False)
        # "taken": its lease here ran out, and another worker has claimed it since.
        _write(jn, "UPDATE batch_letter SET worker = ? WHERE ref = ?", ("someone-else", "taken"))
        jn.gather(2, wait=5.0)
        intents = {ref: jn.announce(ref, lease=60) for ref in ("next", "taken")}
        assert intents["next"].wait()
        assert not intents["taken"].wait()

        rows = {r.ref: r for r in jn.rows()}
        assert {ref: rows[ref].state for ref in refs} == {
            "sent": j.SENT,
            "refused": j.REFUSED,
            "unknown": j.UNKNOWN,
            "retry": j.WAITING,
            "duplicate": j.DUPLICATE_CONFIRMED,
            "next": j.SENDING,
            "taken": j.WAITING,
        }
        assert rows["sent"].forsendelse_id == "id-1" and rows["sent"].error is None
        assert rows["refused"].error == "400: no" and rows["refused"].forsendelse_id is None
        assert rows["unknown"].dokumenter_sha256 == {"a.pdf": "ab"}
        assert rows["retry"].attempts == 1 and rows["retry"].error == "503"
        assert rows["duplicate"].error == "409"
        claims = {
            ref: (worker, lease is not None, not_before is not None)
            for ref, worker, lease, not_before in _read(
                jn, "SELECT ref, worker, lease_until, not_before FROM batch_letter", ()
            )
        }
    # An answer ends the claim; a letter to try again waits until its time; an intent keeps the claim.
    assert {ref: claims[ref] for ref in refs[:5]} == {
        "sent": (None, False, False),
        "refused": (None, False, False),
        "unknown": (None, False, False),
        "retry": (None, False, True),
        "duplicate": (None, False, False),
    }
    assert claims["next"][0] == jn.worker and claims["next"][1]
    assert claims["taken"][0] == "someone-else"


def _read(jn: j.Journal, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    with jn._transaction() as cur:
        return [tuple(r) for r in jn._execute(cur, sql, params).fetchall()]


def _write(jn: j.Journal, sql: str, params: tuple[object, ...]) -> None:
    with jn._transaction() as cur:
        jn._execute(cur, sql, params)


def test_a_sqlite_too_old_for_the_journal_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(j.sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(j.sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(j.JournalError, match=r"needs SQLite 3\.33\.0 or newer.*has 3\.31\.1: use a PostgreSQL"):
        svarut.batch.open_journal(tmp_path / "journal.sqlite")
    assert not (tmp_path / "journal.sqlite").exists()


def test_the_report_pages_through_the_letters_by_an_index(tmp_path: Path) -> None:
    # A page of every letter in manifest order must not scan and sort the whole table (a million letters).
    with traced_journal(tmp_path / "journal.sqlite", 2500) as (jn, statements):
        assert [r.line for r in jn.rows(page=1000)] == list(range(1, 2501))
        jn._db.set_trace_callback(None)  # type: ignore[attr-defined]
        pages = [s for s in statements if s.startswith("SELECT") and "ORDER BY line" in s]
        assert len(pages) == 3
        plans = [" ".join(str(step[3]) for step in _read(jn, f"EXPLAIN QUERY PLAN {page}", ())) for page in pages]
    assert all("USING INDEX batch_letter_line" in plan and "TEMP B-TREE" not in plan for plan in plans), plans


# The schema fiks-svarut 0.2.0 wrote, exactly (it had no schema_version): a journal it made must keep working.
SCHEMA_0_2_0 = (
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


def test_a_journal_from_0_2_0_is_migrated_and_its_unknown_letters_settle(
    svarut_simulator: SvarUtSimulatorFixture, journal_target: str
) -> None:
    an_hour_ago = time.time() - 3600
    old = svarut.batch.open_journal(journal_target)
    try:
        with old._transaction() as cur:
            for statement in SCHEMA_0_2_0:
                old._execute(cur, statement)
            old._execute(
                cur,
                "INSERT INTO batch_meta (key, value) VALUES ('run_id', ?), ('konto_id', ?)",
                ("0ld0ld0ld0ld", str(svarut_simulator.konto_id)),
            )
            insert = (
                "INSERT INTO batch_letter (ref, line, kind, letter, ekstern_referanse, state, worker, lease_until, "
                "forsendelse_id, error, updated) VALUES (?, ?, 'person', '{}', ?, ?, ?, ?, ?, ?, ?)"
            )
            for values in (
                ("sent", 1, "0ld0ld0ld0ld:sent", j.SENT, None, None, "id-1", None, an_hour_ago),
                ("lost", 2, "0ld0ld0ld0ld:lost", j.UNKNOWN, None, None, None, "reset", an_hour_ago),
                ("crashed", 3, "0ld0ld0ld0ld:crashed", j.SENDING, "dead", an_hour_ago, None, None, an_hour_ago),
            ):
                old._execute(cur, insert, values)
    finally:
        old.close()

    # Reading it (batch report) brings it up to date: the unknown letter's attempt began no later
    # than it became unknown.
    report = {r["ref"]: r for r in svarut.batch.report(journal_target)}
    assert report["lost"]["attempt_started"] == datetime.fromtimestamp(an_hour_ago, UTC).isoformat(
        timespec="microseconds"
    )
    assert report["sent"]["attempt_started"] is None and report["sent"]["settled"] is None
    with svarut.batch.open_journal(journal_target, exclusive=False) as jn:
        jn.setup(konto_id=str(svarut_simulator.konto_id))  # a second migration would fail: none runs
        assert dict(_read(jn, "SELECT key, value FROM batch_meta WHERE key = ?", ("schema_version",))) == {
            "schema_version": str(j.SCHEMA_VERSION)
        }

    # SvarUt has neither: the one lost an hour ago did not arrive; the one found sending may still be
    # on its way (when its attempt began is not known, only that it was before now).
    settled = svarut.batch.settle(svarut_simulator.client, journal=journal_target)
    assert {s.ref: s.tilstand for s in settled.settled} == {"lost": j.IKKE_MOTTATT, "crashed": j.UAVKLART}
    states = {r["ref"]: (r["state"], r["settled"]) for r in svarut.batch.report(journal_target)}
    assert states == {
        "sent": (j.SENT, None),
        "lost": (j.WAITING, j.IKKE_MOTTATT),
        "crashed": (j.UNKNOWN, j.UAVKLART),
    }

    # A journal from a newer version is refused, not misread.
    with svarut.batch.open_journal(journal_target, exclusive=False) as jn:
        jn.open_existing()
        _write(jn, "UPDATE batch_meta SET value = ? WHERE key = ?", ("99", "schema_version"))
    with pytest.raises(j.JournalError, match="schema version 99, newer"):
        list(svarut.batch.report(journal_target))
