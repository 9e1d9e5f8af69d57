"""Crash-safety of `svarut batch run`, on both journals, against the simulator.

The runner is a separate process (the CLI) so that SIGKILL kills only it.
It is killed at random points many times, some of them while the simulator
holds an answer back (after the last body byte, before the answer), and
resumed each time. At the end the simulator must have received every letter
exactly once, except letters the journal reports ``unknown`` (at most once),
and the report must agree with the simulator letter by letter; then
``--resend-unknown`` gets every letter there exactly once.

With PostgreSQL, two and four workers share one journal while one of them is
killed; its letters are taken over when its lease expires.

And answers lost on the way back, many times in one run, some for letters
SvarUt kept and some for letters it dropped: ``svarut batch settle`` asks
SvarUt about each, after which a run sends the dropped ones again, and every
letter has arrived exactly once, as the report says letter by letter.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from postgres_server import postgres_server, postgres_url  # noqa: F401 (fixtures)
from test_batch_helpers import COMMAND, check_report_against_simulator, cli, cli_env, letters, received_by_ekstern

from svarut.simulator import Simulator

LETTERS = 200
LEASE = "2"


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.002)


def _report(env: dict[str, str], journal: str) -> list[dict[str, Any]]:
    out = cli(["batch", "report", "--journal", journal, "--jsonl"], env)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _start(env: dict[str, str], manifest: Path, journal: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, "batch", "run", str(manifest), "--journal", journal, "--lease", LEASE, *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _resend_and_check_all_arrived_once(env: dict[str, str], manifest: Path, journal: str, sim: Simulator) -> None:
    final = cli(["batch", "run", str(manifest), "--journal", journal, "--lease", LEASE, "--resend-unknown"], env)
    assert final.returncode == 0, final.stderr
    report = _report(env, journal)
    assert {r["state"] for r in report} <= {"sent", "duplicate-confirmed"}
    check_report_against_simulator(report, sim)
    counts = received_by_ekstern(sim)
    assert len(report) == LETTERS and all(counts[r["ekstern_referanse"]] == 1 for r in report)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def test_sigkill_at_random_points_loses_none_and_sends_none_twice(journal_target: str, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    manifest = letters(tmp_path, LETTERS)
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = cli_env(sim, tmp_path)
        killed = 0
        for _ in range(7):
            # Some answers come late: a kill then lands between the last body byte and the answer.
            # The rest a little late, so that the run lasts long enough to be killed.
            sim.scenarios.clear()
            sim.scenarios.slow(0.3, count=rng.randint(1, 4), only="send")
            sim.scenarios.slow(0.01, count=2 * LETTERS, only="send")
            runner = _start(env, manifest, journal_target, "--concurrency", str(rng.choice([1, 4, 8])))
            # Kill after a random number of letters arrived (not after a time: the machine's speed varies).
            target = len(sim.received) + rng.randint(1, 30)
            _until(lambda t=target, r=runner: len(sim.received) >= t or r.poll() is not None)
            time.sleep(rng.uniform(0, 0.02))
            if runner.poll() is None:
                runner.send_signal(signal.SIGKILL)
                killed += 1
            runner.communicate(timeout=60)
        sim.scenarios.clear()
        last = cli(["batch", "run", str(manifest), "--journal", journal_target, "--lease", LEASE], env)
        assert last.returncode in (0, 4), f"seed {seed}: {last.stderr}"
        assert killed >= 3, f"seed {seed}: the runner finished before most kills; the test proved little"
        report = _report(env, journal_target)
        assert len(report) == LETTERS
        assert {r["state"] for r in report} <= {"sent", "unknown"}, f"seed {seed}"
        check_report_against_simulator(report, sim)
        unknown = [r for r in report if r["state"] == "unknown"]
        print(f"seed {seed}: {killed} kills, {len(unknown)} unknown")
        for r in unknown:
            assert r["dokumenter_sha256"] and len(r["dokumenter_sha256"]["brev.pdf"]) == 64, r
        _resend_and_check_all_arrived_once(env, manifest, journal_target, sim)


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_share_a_postgres_journal_and_take_over_a_dead_one(
    workers: int,
    postgres_url: str,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    manifest = letters(tmp_path, LETTERS)
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = cli_env(sim, tmp_path)
        # Every send takes a while, so the run lasts long enough to kill a worker in it.
        sim.scenarios.slow(0.03, count=10 * LETTERS, only="send")
        runners = [_start(env, manifest, postgres_url, "--concurrency", "2") for _ in range(workers)]
        _until(lambda: len(sim.received) >= LETTERS // 4)
        victim = runners[0]
        assert victim.poll() is None, "the first worker finished before it could be killed"
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
        for runner in runners[1:]:
            _, err = runner.communicate(timeout=120)
            assert runner.returncode in (0, 4), err
        report = _report(env, postgres_url)
        assert len(report) == LETTERS
        assert {r["state"] for r in report} <= {"sent", "unknown"}
        check_report_against_simulator(report, sim)
        sim.scenarios.clear()
        _resend_and_check_all_arrived_once(env, manifest, postgres_url, sim)


def test_sigterm_stops_gracefully_with_nothing_left_sending(tmp_path: Path) -> None:
    manifest = letters(tmp_path, LETTERS)
    journal = str(tmp_path / "journal.sqlite")
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = cli_env(sim, tmp_path)
        sim.scenarios.slow(0.05, count=2 * LETTERS, only="send")
        runner = _start(env, manifest, journal, "--concurrency", "4")
        _until(lambda: len(sim.received) >= LETTERS // 4)
        assert runner.poll() is None, "the run finished before it could be stopped"
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=60)
        assert runner.returncode != 0
        report = _report(env, journal)
        states = {r["state"] for r in report}
        # The sends on the wire finished and were recorded: none is left unknown.
        assert states == {"sent", "waiting"}, states
        check_report_against_simulator([r for r in report if r["state"] == "sent"], sim)
        assert sum(r["state"] == "sent" for r in report) == len(sim.received)
        sim.scenarios.clear()
        _resend_and_check_all_arrived_once(env, manifest, journal, sim)


# Every this many letters SvarUt takes, the answer of the next send is lost.
EVERY = 15


def test_lost_answers_are_settled_by_asking_svarut_and_every_letter_arrives_once(
    journal_target: str, tmp_path: Path
) -> None:
    manifest = letters(tmp_path, LETTERS)
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = cli_env(sim, tmp_path)
        # A little late each, so that the run lasts long enough to lose answers all through it.
        sim.scenarios.slow(0.01, count=2 * LETTERS, only="send")
        runner = _start(env, manifest, journal_target, "--concurrency", "4")
        lost = {True: 0, False: 0}  # kept by SvarUt (accept=True), or dropped after the body
        while runner.poll() is None:
            if len(sim.received) >= (sum(lost.values()) + 1) * EVERY:
                kept = sum(lost.values()) % 2 == 0
                sim.scenarios.reset(when="after_body", accept=kept, count=1, only="send")
                lost[kept] += 1
            time.sleep(0.002)
        _, err = runner.communicate(timeout=60)
        assert runner.returncode == 4, err
        report = _report(env, journal_target)
        unknown = {r["ref"] for r in report if r["state"] == "unknown"}
        assert lost[True] >= 3 and lost[False] >= 3 and len(unknown) >= 6, (lost, unknown)
        assert {r["state"] for r in report} == {"sent", "unknown"}

        # Inside the window, SvarUt confirms the letters it kept; the dropped ones stay unknown.
        early = cli(["batch", "settle", "--journal", journal_target], env)
        assert early.returncode == 4, early.stderr
        report = _report(env, journal_target)
        check_report_against_simulator(report, sim)
        kept_refs = {r["ref"] for r in report if r["settled"] == "mottatt"}
        dropped_refs = {r["ref"] for r in report if r["state"] == "unknown"}
        assert kept_refs | dropped_refs == unknown and kept_refs and dropped_refs
        assert all(r["settled"] == "uavklart" for r in report if r["ref"] in dropped_refs)

        # With the window over (0: the simulator holds nothing back), none is left unknown.
        late = cli(["batch", "settle", "--journal", journal_target, "--settle-after", "0"], env)
        assert late.returncode == 0, late.stderr
        assert {r["ref"] for r in _report(env, journal_target) if r["state"] == "waiting"} == dropped_refs

        final = cli(["batch", "run", str(manifest), "--journal", journal_target, "--lease", LEASE], env)
        assert final.returncode == 0, final.stderr
        report = _report(env, journal_target)
        assert len(report) == LETTERS and {r["state"] for r in report} == {"sent"}
        check_report_against_simulator(report, sim)
        counts = received_by_ekstern(sim)
        assert len(sim.received) == LETTERS and all(counts[r["ekstern_referanse"]] == 1 for r in report)
        settled = {r["ref"]: r["settled"] for r in report if r["settled"]}
        assert settled == {ref: "mottatt" for ref in kept_refs} | {ref: "ikke_mottatt" for ref in dropped_refs}
