"""The batch journal's group commit on both databases (SQLite, and a real
PostgreSQL server): every kind of intent and answer written by one statement."""

from __future__ import annotations

from pathlib import Path

import pytest
from postgres_server import postgres_server, postgres_url  # noqa: F401 (fixtures)
from test_batch_helpers import traced_journal

import svarut.batch
from svarut.batch import journal as j
from svarut.batch.journal import NewLetter


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
