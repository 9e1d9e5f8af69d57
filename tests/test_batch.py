"""svarut.batch and `svarut batch` against the simulator, with a SQLite
journal: checking, sending, resuming, every kind of outcome, status and report."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_batch_helpers import (
    ORGNR,
    check_report_against_simulator,
    cli,
    cli_env,
    letters,
    person_line,
    received_by_ekstern,
    traced_journal,
    write_manifest,
    write_pdf,
)

import svarut
import svarut.batch
from svarut import models
from svarut.batch import manifest as m
from svarut.batch.journal import NewLetter
from svarut.generated import SEND_OPERATIONS
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture


def _report(journal: Path) -> list[dict[str, Any]]:
    return list(svarut.batch.report(journal))


def test_check_lists_every_bad_line_and_run_sends_nothing(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    write_pdf(tmp_path / "brev.pdf")
    (tmp_path / "notes.txt").write_text("not a pdf")
    nhn = SEND_OPERATIONS["nhn"]
    manifest = write_manifest(
        tmp_path / "brev.jsonl",
        [
            person_line("ok-1"),
            "{not json",
            person_line("ok-1", tittel="same ref again"),
            {**person_line("missing-file"), "dokumenter": {"brev.pdf": "gone.pdf"}},
            {**person_line("bad-kind"), "kind": "fax"},
            {"ref": "nhn-1", "kind": nhn.kind, "forsendelse": {"tittel": "x"}, nhn.file_argument: "brev.pdf"},
            {**person_line("typo"), "dokumenterr": {}},
            person_line("wrong-content", filnavn="notes.pdf", path="notes.txt"),
            "",
            person_line("ok-2"),
        ],
    )
    problems = svarut.batch.check(manifest, client=svarut_simulator.client, konto_id=svarut_simulator.konto_id)
    by_line: dict[int, list[m.BatchProblem]] = {}
    for p in problems:
        by_line.setdefault(p.line, []).append(p)
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8]
    assert by_line[2][0].rule == "json"
    assert [(p.ref, p.rule) for p in by_line[3]] == [("ok-1", "unique")]
    assert "line 1" in by_line[3][0].message
    assert {p.rule for p in by_line[4]} == {"readable"} and by_line[4][0].ref == "missing-file"
    assert by_line[5][0].field == "kind"
    assert {p.field for p in by_line[6]} >= {"forsendelse.pasient", "forsendelse.mottakertype"}
    assert [p.field for p in by_line[7]] == ["dokumenterr"]
    assert by_line[8][0].field.startswith("forsendelse.") and by_line[8][0].ref == "wrong-content"

    journal = tmp_path / "j.sqlite"
    with pytest.raises(svarut.batch.ManifestInvalidError) as caught:
        svarut.batch.run(svarut_simulator.client, manifest, konto_id=svarut_simulator.konto_id, journal=journal)
    assert caught.value.problems == problems
    assert svarut_simulator.received == []

    summary = svarut.batch.run(
        svarut_simulator.client, manifest, konto_id=svarut_simulator.konto_id, journal=journal, skip_invalid=True
    )
    assert summary.skipped_problems == problems
    assert summary.counts["sent"] == 2
    states = {r["ref"]: r["state"] for r in _report(journal)}
    assert states == {
        "ok-1": "sent",
        "ok-2": "sent",
        "missing-file": "skipped",
        "nhn-1": "skipped",
        "typo": "skipped",
        "wrong-content": "skipped",
    }
    assert sorted(r.tittel for r in svarut_simulator.received) == ["Brev ok-1", "Brev ok-2"]


def test_run_sends_each_letter_once_and_resumes(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> None:
    manifest = letters(tmp_path, 30)
    seen: list[str] = []
    summary = svarut.batch.run(
        svarut_simulator.client,
        manifest,
        konto_id=svarut_simulator.konto_id,
        concurrency=4,
        progress=lambda p: seen.append(str(p)),
    )
    assert summary.done and summary.counts["sent"] == 30
    assert "sent 30" in seen[-1] and "left 0" in seen[-1]
    journal = svarut.batch.default_journal(manifest)
    assert journal.exists()
    # Resuming a finished journal sends nothing more.
    again = svarut.batch.run(svarut_simulator.client, manifest, konto_id=svarut_simulator.konto_id)
    assert again.counts == summary.counts
    report = _report(journal)
    assert [r["ref"] for r in report] == [f"L{i}" for i in range(30)]
    check_report_against_simulator(report, svarut_simulator)
    assert len(svarut_simulator.received) == 30
    # The journal is durable as configured.
    with sqlite3.connect(journal) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_ekstern_referanse_is_deterministic_and_fits_the_spec(tmp_path: Path) -> None:
    op = SEND_OPERATIONS["person"]
    limit = m.ekstern_referanse_max_length(op.model)
    assert limit is not None and limit > 20
    assert m.ekstern_referanse("abc", "r1", model=op.model) == "abc:r1"
    long = m.ekstern_referanse("abc", "x" * 500, model=op.model)
    assert len(long) <= limit and long == m.ekstern_referanse("abc", "x" * 500, model=op.model)
    assert long != m.ekstern_referanse("abc", "x" * 499, model=op.model)
    # A manifest's own eksternReferanse is kept.
    write_pdf(tmp_path / "brev.pdf")
    line = person_line("r")
    line["forsendelse"]["eksternReferanse"] = "sak-42"
    letter, args = m.read_letter(1, json.dumps(line), base_dir=tmp_path, run_id="abc")
    assert args is not None and letter.ekstern_referanse == "sak-42"


def test_unknown_outcomes_are_held_then_resent_on_request(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    manifest = letters(tmp_path, 6)
    journal = tmp_path / "j.sqlite"
    konto = svarut_simulator.konto_id
    # Two answers are lost after SvarUt kept the letter, one after it dropped it.
    svarut_simulator.scenarios.reset(when="after_body", accept=True, count=2, only="send")
    svarut_simulator.scenarios.reset(when="after_body", accept=False, count=1, only="send")
    summary = svarut.batch.run(svarut_simulator.client, manifest, konto_id=konto, journal=journal, concurrency=1)
    assert summary.counts["unknown"] == 3 and summary.counts["sent"] == 3
    unknown = [r for r in _report(journal) if r["state"] == "unknown"]
    assert [r["ref"] for r in unknown] == ["L0", "L1", "L2"]
    for r in unknown:
        assert r["ekstern_referanse"].endswith(":" + r["ref"])
        assert set(r["dokumenter_sha256"]) == {"brev.pdf"} and len(r["dokumenter_sha256"]["brev.pdf"]) == 64
    # A re-run that does not settle them (settle_after=None: SvarUt is not asked) holds them.
    held = svarut.batch.run(svarut_simulator.client, manifest, konto_id=konto, journal=journal, settle_after=None)
    assert held.counts["unknown"] == 3 and held.settled is None
    assert len(svarut_simulator.received) == 5
    summary = svarut.batch.run(
        svarut_simulator.client, manifest, konto_id=konto, journal=journal, resend_unknown=True, settle_after=None
    )
    assert summary.done
    states = {r["ref"]: r["state"] for r in _report(journal)}
    assert states == {
        "L0": "duplicate-confirmed",
        "L1": "duplicate-confirmed",
        "L2": "sent",
        "L3": "sent",
        "L4": "sent",
        "L5": "sent",
    }
    check_report_against_simulator(_report(journal), svarut_simulator)


def test_not_sent_goes_back_to_waiting_and_refusals_are_recorded(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    write_pdf(tmp_path / "brev.pdf")
    # Big enough that the reset comes while the body is still being written.
    write_pdf(tmp_path / "stor.pdf", "x" * (24 * 1024 * 1024))
    # The same letter twice under two refs: SvarUt refuses the second as a duplicate.
    manifest = write_manifest(
        tmp_path / "brev.jsonl",
        [
            person_line("a", filnavn="stor.pdf", path="stor.pdf"),
            person_line("b"),
            person_line("twin", tittel="Brev b"),
        ],
    )
    journal = tmp_path / "j.sqlite"
    svarut_simulator.scenarios.reset(when="before_body", count=1, only="send")
    summary = svarut.batch.run(
        svarut_simulator.client, manifest, konto_id=svarut_simulator.konto_id, journal=journal, concurrency=1
    )
    report = {r["ref"]: r for r in _report(journal)}
    assert report["a"]["state"] == "sent" and report["b"]["state"] == "sent"
    assert report["twin"]["state"] == "refused" and "tidligere" in report["twin"]["error"]
    assert summary.counts["refused"] == 1 and summary.counts["sent"] == 2
    assert received_by_ekstern(svarut_simulator)[report["a"]["ekstern_referanse"]] == 1
    with svarut.batch.open_journal(journal) as jn:
        jn.open_existing()
        (row,) = [r for r in jn.rows() if r.ref == "a"]
    assert row.attempts == 1  # it went back to waiting once, then was sent


@pytest.mark.anyio
async def test_arun_with_the_async_client(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> None:
    manifest = letters(tmp_path, 12)
    async with svarut_simulator.async_client() as client:
        summary = await svarut.batch.arun(
            client, manifest, konto_id=svarut_simulator.konto_id, concurrency=3, rate=200.0
        )
    assert summary.done and summary.counts["sent"] == 12
    check_report_against_simulator(_report(svarut.batch.default_journal(manifest)), svarut_simulator)


@pytest.mark.svarut_simulator(step_seconds=0.05)
def test_status_follows_to_terminal_and_keeps_history(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> None:
    write_pdf(tmp_path / "brev.pdf")
    manifest = write_manifest(
        tmp_path / "brev.jsonl",
        [
            person_line("p"),
            {
                "ref": "o",
                "kind": "organisasjon",
                "forsendelse": {
                    "tittel": "Til organisasjon",
                    "mottaker": {"navn": "Etaten", "digitalId": ORGNR},
                    "dokumenter": [{"filnavn": "brev.pdf", "mimeType": "application/pdf"}],
                },
                "dokumenter": {"brev.pdf": "brev.pdf"},
            },
        ],
    )
    journal = tmp_path / "j.sqlite"
    svarut.batch.run(svarut_simulator.client, manifest, konto_id=svarut_simulator.konto_id, journal=journal)
    changes: list[tuple[str, str]] = []
    counts = svarut.batch.status(
        svarut_simulator.client,
        journal=journal,
        follow=True,
        interval=0.05,
        on_change=lambda r, s, t: changes.append((r.ref, s)),
    )
    assert counts == {"LEST": 2}
    report = {r["ref"]: r for r in _report(journal)}
    assert report["p"]["status"] == "LEST" and report["p"]["status_time"]
    with svarut.batch.open_journal(journal, exclusive=False) as jn:
        history = [s for s, _ in jn.history("p")]
    assert history[-1] == "LEST" and history == [s for r, s in changes if r == "p"]
    assert set(history) <= {s.value for s in models.Status}
    assert all(s in svarut.TERMINAL_STATUSES for s in counts)


def test_cli_run_check_report_and_exit_codes(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> None:
    env = cli_env(svarut_simulator, tmp_path)
    write_pdf(tmp_path / "brev.pdf")
    manifest = write_manifest(
        tmp_path / "brev.jsonl", [person_line("a"), person_line("b"), {**person_line("c"), "kind": "fax"}]
    )
    checked = cli(["batch", "check", str(manifest)], env)
    assert checked.returncode == 3
    lines = checked.stdout.splitlines()
    assert lines and all(line.startswith("line 3 (ref 'c')") for line in lines)
    refused = cli(["batch", "run", str(manifest)], env)
    assert refused.returncode == 3 and "nothing was sent" in refused.stderr
    assert svarut_simulator.received == []

    skipped = cli(["batch", "run", str(manifest), "--skip-invalid", "--concurrency", "2"], env)
    assert skipped.returncode == 6, skipped.stderr
    assert "skipped: line 3" in skipped.stderr and "sent=2" in skipped.stderr

    good = write_manifest(tmp_path / "good.jsonl", [person_line("x"), person_line("y")])
    journal = tmp_path / "good.sqlite"
    assert cli(["batch", "check", str(good)], env).returncode == 0
    sent = cli(["batch", "run", str(good), "--journal", str(journal), "--rate", "50"], env)
    assert sent.returncode == 0, sent.stderr
    assert "letters/s" in sent.stderr
    as_json = cli(["batch", "report", "--journal", str(journal), "--jsonl"], env)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["ref"], r["state"]) for r in rows] == [("x", "sent"), ("y", "sent")]
    as_csv = cli(["batch", "report", "--journal", str(journal), "--csv"], env)
    header, *lines = as_csv.stdout.splitlines()
    assert header.split(",")[:3] == ["ref", "state", "forsendelse_id"] and len(lines) == 2
    status = cli(["batch", "status", "--journal", str(journal)], env)
    assert status.returncode == 0 and status.stdout.count("\t") == 6

    # An unknown outcome: exit 4 until settled. SvarUt kept it, so the next run finds it there at once.
    third = write_manifest(tmp_path / "third.jsonl", [person_line("z")])
    svarut_simulator.scenarios.reset(when="after_body", accept=True, only="send")
    held = cli(["batch", "run", str(third)], env)
    assert held.returncode == 4, held.stderr
    settled = cli(["batch", "run", str(third), "--resend-unknown"], env)
    assert settled.returncode == 0, settled.stderr
    assert "z\tmottatt\tsent\t" in settled.stderr and "mottatt=1" in settled.stderr
    rows = [
        json.loads(x)
        for x in cli(["batch", "report", "--journal", f"{third}.journal.sqlite", "--jsonl"], env).stdout.splitlines()
    ]
    assert rows[0]["state"] == "sent" and rows[0]["settled"] == "mottatt"
    assert rows[0]["forsendelse_id"] == str(svarut_simulator.received[-1].id)


def test_one_runner_per_sqlite_journal(tmp_path: Path) -> None:
    first = svarut.batch.open_journal(tmp_path / "j.sqlite")
    try:
        with pytest.raises(svarut.batch.JournalError, match="another runner"):
            svarut.batch.open_journal(tmp_path / "j.sqlite")
    finally:
        first.close()
    svarut.batch.open_journal(tmp_path / "j.sqlite").close()


def test_check_streams_in_flat_memory(tmp_path: Path) -> None:
    """40,000 lines checked: memory after 4,000 and after 40,000 lines stays close."""
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from uuid import UUID
        import svarut
        from svarut.batch.manifest import check_letters

        def rss_kib():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

        manifest = Path(sys.argv[1])
        client = svarut.SvarUtClient(base_url="https://svarut.invalid/api", environment="test")
        samples = {}
        bad = 0
        for n, (letter, _) in enumerate(check_letters(manifest, client=client, konto_id=UUID(int=0)), start=1):
            bad += bool(letter.problems)
            if n in (4_000, 40_000):
                samples[n] = rss_kib()
        print(json.dumps({"bad": bad, "samples": samples}))
        """
    )
    write_pdf(tmp_path / "brev.pdf")
    with (tmp_path / "big.jsonl").open("w") as f:
        for i in range(40_000):
            f.write(json.dumps(person_line(f"letter-{i:07d}")) + "\n")
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "big.jsonl")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["bad"] == 0
    growth_mib = (result["samples"]["40000"] - result["samples"]["4000"]) / 1024
    assert growth_mib < 8, f"RSS grew {growth_mib:.1f} MiB from 4k to 40k lines"


def test_reloading_takes_the_current_line_only_for_letters_not_sent(tmp_path: Path) -> None:
    with svarut.batch.open_journal(tmp_path / "j.sqlite") as jn:
        jn.setup(konto_id="k")
        jn.load(
            [
                NewLetter("w", 1, "person", "old-w", "e-w"),
                NewLetter("s", 2, "person", "old-s", "e-s"),
                NewLetter("k", 3, "person", "old-k", "e-k", skipped="bad"),
            ]
        )
        (claimed,) = [r for r in jn.claim(10, lease=60) if r.ref == "s"] or [None]
        assert claimed is not None and jn.start_sending("s", lease=60)
        jn.finish("s", svarut.batch.SENT, forsendelse_id="id-s")
        jn.release()
        jn.load(
            [
                NewLetter("w", 1, "person", "new-w", "e-w"),
                NewLetter("s", 2, "person", "new-s", "e-s"),
                NewLetter("k", 3, "person", "new-k", "e-k"),
            ]
        )
        rows = {r.ref: (r.letter, r.state) for r in jn.rows()}
    assert rows == {"w": ("new-w", "waiting"), "s": ("old-s", "sent"), "k": ("new-k", "waiting")}


def test_a_refused_integration_stops_the_run_and_leaves_letters_waiting(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    manifest = letters(tmp_path, 5)
    journal = tmp_path / "j.sqlite"
    with (
        svarut_simulator.new_client(integrasjon_passord="not the password") as client,
        pytest.raises(svarut.batch.BatchStoppedError, match="refused the integration"),
    ):
        svarut.batch.run(client, manifest, konto_id=svarut_simulator.konto_id, journal=journal, concurrency=2)
    assert svarut_simulator.received == []
    assert {r["state"] for r in _report(journal)} == {"waiting"}
    # Fixed, the next run sends them all.
    summary = svarut.batch.run(svarut_simulator.client, manifest, konto_id=svarut_simulator.konto_id, journal=journal)
    assert summary.done and len(svarut_simulator.received) == 5


def _run_changing_a_document_after_the_check(
    simulator: SvarUtSimulatorFixture, tmp_path: Path, *, count: int, change: Callable[[Path], None]
) -> tuple[svarut.batch.Summary, dict[str, dict[str, Any]]]:
    """Run ``count`` letters one at a time, calling ``change`` on the last
    one's document once the check is over (at each answer); the summary, and
    the report by ref."""
    for i in range(count):
        write_pdf(tmp_path / f"{i}.pdf", f"brev {i}")
    manifest = write_manifest(tmp_path / "brev.jsonl", [person_line(f"r{i}", path=f"{i}.pdf") for i in range(count)])
    journal = tmp_path / "j.sqlite"
    summary = svarut.batch.run(
        simulator.client,
        manifest,
        konto_id=simulator.konto_id,
        journal=journal,
        concurrency=1,
        progress=lambda _: change(tmp_path / f"{count - 1}.pdf"),
    )
    return summary, {r["ref"]: r for r in _report(journal)}


def test_a_document_gone_after_the_check_refuses_that_letter_only(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    _, report = _run_changing_a_document_after_the_check(
        svarut_simulator, tmp_path, count=3, change=lambda doc: doc.unlink(missing_ok=True)
    )
    assert [report[f"r{i}"]["state"] for i in range(3)] == ["sent", "sent", "refused"]
    assert "2.pdf" in report["r2"]["error"]
    assert len(svarut_simulator.received) == 2


def test_an_answer_joins_the_next_commit_and_a_failed_commit_stops_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"

    def states() -> dict[str, str]:
        with sqlite3.connect(path) as db:
            return dict(db.execute("SELECT ref, state FROM batch_letter").fetchall())

    with svarut.batch.open_journal(path) as jn:
        jn.setup(konto_id="k")
        jn.load([NewLetter(ref, i, "person", f"line-{ref}", f"e-{ref}") for i, ref in enumerate("abcd", 1)])
        assert len(jn.claim(10, lease=60)) == 4
        assert jn.start_sending("a", lease=60)
        jn.finish("a", svarut.batch.SENT, forsendelse_id="id-a", durable=False)
        assert states()["a"] == "sending"  # not waited for: a crash now leaves it sending, hence unknown
        assert jn.start_sending("b", lease=60)
        assert states() == {"a": "sent", "b": "sending", "c": "waiting", "d": "waiting"}
        jn.finish("b", svarut.batch.SENT, forsendelse_id="id-b", durable=False)
        jn.flush()
        assert states()["b"] == "sent"

        # The database refuses c's answer: the commit that carries it fails, d's intent with it.
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE UPDATE OF state ON batch_letter "
                "WHEN NEW.ref = 'c' AND NEW.state = 'sent' BEGIN SELECT RAISE(ABORT, 'no room'); END"
            )
        assert jn.start_sending("c", lease=60)
        jn.finish("c", svarut.batch.SENT, forsendelse_id="id-c", durable=False)
        with pytest.raises(sqlite3.IntegrityError, match="no room"):
            jn.start_sending("d", lease=60)
        # Nothing more is recorded as if c's answer had been: the runner stops.
        with pytest.raises(svarut.batch.JournalError, match=r"could not be recorded.*no room"):
            jn.start_sending("d", lease=60)
        with pytest.raises(svarut.batch.JournalError):
            jn.flush()
    assert states() == {"a": "sent", "b": "sent", "c": "sending", "d": "waiting"}
    with svarut.batch.open_journal(path) as jn:
        jn.setup(konto_id="k")
        assert [r.ref for r in jn.recover(all_sending=True)] == ["c"]
    assert states()["c"] == "unknown"


def test_an_intent_fails_for_a_letter_whose_claim_another_worker_took(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with svarut.batch.open_journal(path) as first, svarut.batch.open_journal(path, exclusive=False) as second:
        first.setup(konto_id="k")
        second.setup(konto_id="k")
        first.load([NewLetter(ref, i, "person", f"line-{ref}", f"e-{ref}") for i, ref in enumerate("ab", 1)])
        assert [r.ref for r in first.claim(5, lease=-1)] == ["a", "b"]  # their leases have run out at once
        assert [r.ref for r in second.claim(1, lease=60)] == ["a"]
        # Both intents go in one commit (one statement): only b's is recorded.
        first.gather(2, wait=5.0)
        intents = {ref: first.announce(ref, lease=60) for ref in "ab"}
        assert not intents["a"].wait()
        assert intents["b"].wait()
        assert second.start_sending("a", lease=60)
        assert {r.ref: r.state for r in first.rows()} == {"a": "sending", "b": "sending"}


def test_a_commit_gathers_the_senders_intents_and_claims_are_not_synced(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with traced_journal(path, 8) as (jn, statements):
        assert len(jn.claim(8, lease=60)) == 8
        # A claim only says who may send a letter: committed without a sync to disk.
        assert "PRAGMA synchronous=NORMAL" in statements
        assert statements.index("PRAGMA synchronous=NORMAL") < statements.index("BEGIN IMMEDIATE")

        def writes() -> list[str]:
            return [s for s in statements if s.startswith("UPDATE batch_letter SET")]

        # Four senders: the writer waits (a moment) for all four intents and writes them at once,
        # in one statement that is a transaction of its own.
        jn.gather(4, wait=5.0)
        statements.clear()
        intents = [jn.announce(f"r{i}", lease=60) for i in range(1, 5)]
        assert all(intent.wait() for intent in intents)
        assert len(writes()) == 1 and all(f"'r{i}'" in writes()[0] for i in range(1, 5))
        assert "BEGIN IMMEDIATE" not in statements
        # The intents' commit is synced (and with it the claim's before it).
        assert statements.index("PRAGMA synchronous=FULL") < statements.index(writes()[0])

        # Fewer senders than expected: the commit goes once the wait is over, not never.
        jn.gather(4, wait=0.05)
        statements.clear()
        assert jn.start_sending("r5", lease=60)
        assert len(writes()) == 1 and "'r5'" in writes()[0]
        # One sender: no waiting at all.
        jn.gather(1)
        assert jn.start_sending("r6", lease=60)
    with sqlite3.connect(path) as db:
        states = dict(db.execute("SELECT ref, state FROM batch_letter").fetchall())
    assert [states[f"r{i}"] for i in range(1, 9)] == ["sending"] * 6 + ["waiting"] * 2


def test_a_letter_refused_while_its_send_is_built_goes_nowhere(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    # The intent is committed while the send is built; a send that cannot be built is then
    # recorded refused (nothing went out), not unknown. After the check the file is still
    # there, but is not a PDF any more when its send is built.
    summary, report = _run_changing_a_document_after_the_check(
        svarut_simulator, tmp_path, count=2, change=lambda doc: doc.write_bytes(b"GIF89a not a letter")
    )
    assert report["r0"]["state"] == "sent"
    assert report["r1"]["state"] == "refused" and "content_mismatch" in report["r1"]["error"]
    assert summary.counts["unknown"] == 0
    assert len(svarut_simulator.received) == 1


def test_closing_the_journal_commits_answers_handed_in_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with svarut.batch.open_journal(path) as jn:
        jn.setup(konto_id="k")
        jn.load([NewLetter("a", 1, "person", "line-a", "e-a")])
        # No intent was ever committed through this journal, so no writer has started.
        jn.finish("a", svarut.batch.REFUSED, error="refused before sending", durable=False)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT state, error FROM batch_letter").fetchall() == [("refused", "refused before sending")]
