"""`svarut batch` as a person uses it: Ctrl-C (a real SIGINT to a real
subprocess, against the simulator), SvarUt or Maskinporten out of reach, the
progress line on a terminal (a pseudo-terminal), the report read through a
pipe that closes early, the manifest given where the journal is meant, and
manifests written on Windows."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner
from test_batch_helpers import (
    COMMAND,
    check_report_against_simulator,
    cli,
    cli_env,
    letters,
    person_line,
    write_manifest,
    write_pdf,
)

import svarut.batch
from svarut.batch import _letter
from svarut.batch.journal import MAX_ATTEMPTS, NewLetter
from svarut.cli.app import cli as svarut_cli
from svarut.simulator import Simulator
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture

# The test environment's rules: the synthetic fødselsnummer of the letters is accepted.
_TEST_RULES = svarut.SvarUtClient(base_url="https://svarut.invalid/api", environment="test")


def _test_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**env, "SVARUT_ENVIRONMENT": "test"}


def _until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``, with no deadline of its own: the subprocess's
    ``timeout`` (and pytest's) bound the test; a machine's speed does not fail it."""
    event = threading.Event()
    while not condition():
        event.wait(0.005)


class _Lines:
    """A subprocess's stream read line by line as it comes, in a thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def text(self) -> str:
        self._thread.join(timeout=60)
        return "".join(self.lines)


def _start(env: dict[str, str], manifest: Path, journal: Path, *extra: str) -> tuple[subprocess.Popen[str], _Lines]:
    runner = subprocess.Popen(
        [*COMMAND, "batch", "run", str(manifest), "--journal", str(journal), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert runner.stderr is not None
    return runner, _Lines(runner.stderr)


def _report(env: dict[str, str], journal: Path) -> list[dict[str, Any]]:
    out = cli(["batch", "report", "--journal", str(journal), "--jsonl"], env)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


# --- Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_lets_the_sends_on_the_wire_finish_and_prints_the_summary(tmp_path: Path) -> None:
    manifest = letters(tmp_path, 12)
    journal = tmp_path / "j.sqlite"
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = cli_env(sim, tmp_path)
        # Each answer comes a second late: when two letters have arrived, both sends are on the wire.
        sim.scenarios.slow(1.0, count=100, only="send")
        runner, err = _start(env, manifest, journal, "--concurrency", "2")
        _until(lambda: len(sim.received) >= 2 or runner.poll() is not None)
        assert runner.poll() is None, err.text()
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=120) == 1, err.text()  # letters left waiting: run again
        stderr = err.text()
        received = len(sim.received)
        report = _report(env, journal)
    assert "Aborted" not in stderr
    assert "Stopping: no new letters" in stderr
    # The summary, on a line of its own, then what to do.
    line = re.search(r"^((?:\w+=\d+ ?)+)$", stderr, re.MULTILINE)
    assert line is not None, stderr
    counts = {state: int(n) for state, n in (pair.split("=") for pair in line[1].split())}
    assert counts == {"sent": received, "waiting": 12 - received}, stderr
    assert re.search(r"\d+ letter\(s\) not sent yet: run again$", stderr, re.MULTILINE), stderr
    # The sends on the wire were answered and recorded: none is left sending or unknown.
    assert {r["state"] for r in report} == {"sent", "waiting"}
    assert sum(r["state"] == "sent" for r in report) == received


def test_ctrl_c_twice_says_how_many_letters_it_leaves_sending_and_exits_130(tmp_path: Path) -> None:
    manifest = letters(tmp_path, 6)
    journal = tmp_path / "j.sqlite"
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = cli_env(sim, tmp_path)
        # The answers are held back far longer than the test lasts: the two sends stay on the wire.
        sim.scenarios.slow(600, count=2, only="send")
        runner, err = _start(env, manifest, journal, "--concurrency", "2")
        _until(lambda: len(sim.received) >= 2 or runner.poll() is not None)
        assert runner.poll() is None, err.text()
        runner.send_signal(signal.SIGINT)
        _until(lambda: err.has("Stopping") or runner.poll() is not None)
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=120) == 130, err.text()
        stderr = err.text()
        assert "Aborted" not in stderr
        assert "2 letter(s) left sending" in stderr and "the next `svarut batch run` settles them" in stderr

        # The next run finds them sending, makes them unknown, and SvarUt says it has them: none twice.
        again = cli(["batch", "run", str(manifest), "--journal", str(journal)], env)
        assert again.returncode == 0, again.stderr
        assert again.stderr.count("\tmottatt\tsent\t") == 2, again.stderr
        report = _report(env, journal)
        assert {r["state"] for r in report} == {"sent"} and len(report) == 6
        check_report_against_simulator(report, sim)


# --- SvarUt or Maskinporten out of reach ----------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _attempts(journal: Path) -> list[int]:
    with sqlite3.connect(journal) as db:
        return [int(n) for (n,) in db.execute("SELECT attempts FROM batch_letter ORDER BY line")]


@pytest.mark.parametrize(
    ("setting", "value", "who", "cause"),
    [
        ("SVARUT_BASE_URL", "http://127.0.0.1:{port}/api", "SvarUt", "Connection refused"),
        ("SVARUT_BASE_URL", "https://svarut.invalid/api", "SvarUt", "ConnectError"),
        ("MASKINPORTEN_TOKEN_ENDPOINT", "http://127.0.0.1:{port}/token", "Maskinporten", "Connection refused"),
    ],
    ids=["svarut-refused", "svarut-no-such-host", "maskinporten-refused"],
)
def test_out_of_reach_stops_after_a_few_attempts_alike_and_says_why(
    tmp_path: Path, setting: str, value: str, who: str, cause: str
) -> None:
    manifest = letters(tmp_path, 2)
    journal = tmp_path / "j.sqlite"
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = {**cli_env(sim, tmp_path), setting: value.format(port=_closed_port())}
        out = cli(["batch", "run", str(manifest), "--journal", str(journal), "--concurrency", "1"], env)
    assert out.returncode == 1, out.stderr
    assert f"Error: {who} cannot be reached: 3 attempts in a row failed the same way" in out.stderr
    assert cause in out.stderr and "run again" in out.stderr
    assert "waiting=2" in out.stderr
    # Stopped when the third attempt failed as the first two did: no letter tried until its attempts ran out.
    attempts = _attempts(journal)
    assert sum(attempts) == _letter.STOP_AFTER_ALIKE and max(attempts) < MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("SVARUT_INTEGRASJON_PASSORD", "not the password", "SvarUt refused the integration"),
        ("MASKINPORTEN_CLIENT_ID", "someone-else", "Maskinporten refused the integration"),
    ],
    ids=["svarut-401", "maskinporten-refused"],
)
def test_a_refused_integration_stops_at_once_and_says_who_and_why(
    tmp_path: Path, setting: str, value: str, said: str
) -> None:
    manifest = letters(tmp_path, 3)
    journal = tmp_path / "j.sqlite"
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = {**cli_env(sim, tmp_path), setting: value}
        out = cli(["batch", "run", str(manifest), "--journal", str(journal), "--concurrency", "1"], env)
        assert sim.received == []
    assert out.returncode == 1, out.stderr
    assert said in out.stderr and "Fix it and run again" in out.stderr
    assert "waiting=3" in out.stderr
    if setting.endswith("PASSORD"):
        assert value not in out.stderr  # a password is never printed
    assert sum(_attempts(journal)) == 1


def test_run_again_comes_with_the_last_error(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every letter tried until its attempts run out, at once rather than backing off for seconds.
    monkeypatch.setattr(_letter, "RETRY_BASE", 0.0)
    svarut_simulator.scenarios.fail(503, retry_after=0, count=10_000, only="send")
    manifest = letters(tmp_path, 2)
    env = {**cli_env(svarut_simulator, tmp_path)}
    result = CliRunner().invoke(svarut_cli, ["batch", "run", str(manifest), "--concurrency", "1"], env=env)
    assert result.exit_code == 1, result.output
    assert re.search(
        r"Error: 2 letter\(s\) not sent yet \(the last attempt failed: .*503.*\): run again", result.output
    ), result.output


# --- the progress line and the summary -------------------------------------------------


def test_the_progress_line_is_cleared_as_it_is_rewritten_and_ends_before_the_summary(tmp_path: Path) -> None:
    write_pdf(tmp_path / "brev.pdf")
    manifest = write_manifest(
        tmp_path / "brev.jsonl",
        # The last three are the same letter (title, mottaker, document) under other refs: SvarUt refuses
        # the second and third as duplicates.
        [*(person_line(f"L{i}") for i in range(12)), *(person_line(f"D{i}", tittel="Samme") for i in range(3))],
    )
    with Simulator(step_seconds=0, storage_dir=tmp_path / "sim") as sim:
        env = cli_env(sim, tmp_path)
        main, terminal = pty.openpty()
        try:
            runner = subprocess.Popen(
                [*COMMAND, "batch", "run", str(manifest)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=terminal,
            )
            os.close(terminal)
            output = bytearray()
            while True:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # EIO: the runner has exited and closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            assert runner.wait(timeout=120) == 6, output.decode()
        finally:
            os.close(main)
    text = output.decode().replace("\r\n", "\n")
    drawn = [part for part in text.split("\r") if "letters/s" in part]
    assert drawn, text
    # Each redraw clears the rest of the old line ("left 10" then "left 9" does not read "left 90").
    assert all("\x1b[K" in part for part in drawn), text
    # The last counts are drawn, and the summary starts a line of its own.
    assert re.search(r"left 0\x1b\[K\n", text), text
    assert re.search(r"^(sent=13 refused=2|refused=2 sent=13)$", text, re.MULTILINE), text
    # After refusals or skipped lines, where to read why.
    assert f"`svarut batch report {manifest}` says why" in text


def test_after_refusals_the_summary_points_to_the_report(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    write_pdf(tmp_path / "brev.pdf")
    # The same letter under two refs: SvarUt refuses the second as a duplicate.
    manifest = write_manifest(tmp_path / "brev.jsonl", [person_line(ref, tittel="Samme") for ref in ("a", "b")])
    journal = tmp_path / "j.sqlite"
    out = cli(["batch", "run", str(manifest), "--journal", str(journal)], cli_env(svarut_simulator, tmp_path))
    assert out.returncode == 6, out.stderr
    assert out.stderr.endswith(
        f"Error: 1 letter(s) refused, 0 line(s) skipped: `svarut batch report --journal {journal}` says why\n"
    )


# --- batch report, status and settle ---------------------------------------------------------


def _journal_of(manifest: Path, count: int) -> Path:
    journal = svarut.batch.default_journal(manifest)
    with svarut.batch.open_journal(journal) as jn:
        jn.setup(konto_id="k")
        jn.load([NewLetter(f"r{i}", i, "person", f"line-{i}", f"e-{i}") for i in range(1, count + 1)])
    return journal


def test_report_read_through_a_pipe_closed_early_stops_quietly(tmp_path: Path) -> None:
    manifest = tmp_path / "brev.jsonl"
    manifest.write_text("")
    _journal_of(manifest, 20_000)  # far more than a pipe holds
    reader = subprocess.Popen(
        [*COMMAND, "batch", "report", str(manifest)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None and reader.stderr is not None
    first = reader.stdout.readline()
    reader.stdout.close()  # as `| head -1` does
    error = reader.stderr.read()
    reader.stderr.close()
    assert reader.wait(timeout=120) == 0, error
    assert error == ""
    assert first.split("\t")[:3] == ["ref", "state", "forsendelse_id"]


def test_report_has_a_header_and_jsonl_and_takes_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "brev.jsonl"
    manifest.write_text("")
    _journal_of(manifest, 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    text = cli(["batch", "report", str(manifest)], env)
    assert text.returncode == 0, text.stderr
    header, *rows = text.stdout.splitlines()
    assert header.split("\t") == list(svarut.batch.runner.REPORT_FIELDS)
    assert [r.split("\t")[:2] for r in rows] == [["r1", "waiting"], ["r2", "waiting"]]

    jsonl = cli(["batch", "report", str(manifest), "--jsonl"], env)
    assert [json.loads(line)["ref"] for line in jsonl.stdout.splitlines()] == ["r1", "r2"]
    assert jsonl.stderr == ""
    # --json, deprecated: the same lines, and a word on stderr.
    old = cli(["batch", "report", "--journal", str(svarut.batch.default_journal(manifest)), "--json"], env)
    assert old.returncode == 0 and old.stdout == jsonl.stdout
    assert "--json is deprecated" in old.stderr and "--jsonl" in old.stderr

    neither = cli(["batch", "report"], env)
    assert neither.returncode == 2 and "give the manifest" in neither.stderr
    missing = cli(["batch", "report", str(tmp_path / "other.jsonl")], env)
    assert missing.returncode == 2 and "other.jsonl.journal.sqlite" in missing.stderr


def test_status_and_settle_take_the_manifest(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> None:
    manifest = letters(tmp_path, 2)
    env = cli_env(svarut_simulator, tmp_path)
    assert cli(["batch", "run", str(manifest)], env).returncode == 0
    status = cli(["batch", "status", str(manifest)], env)
    assert status.returncode == 0, status.stderr
    assert len(status.stdout.splitlines()) == 2
    settle = cli(["batch", "settle", str(manifest)], env)
    assert settle.returncode == 0, settle.stderr


# --- manifests written on Windows, and messages in the manifest's words -----------------------


def test_a_manifest_with_a_bom_checks(tmp_path: Path) -> None:
    write_pdf(tmp_path / "brev.pdf")
    manifest = tmp_path / "brev.jsonl"
    text = "\r\n".join(json.dumps(person_line(ref), ensure_ascii=False) for ref in ("å", "b")) + "\r\n"
    manifest.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert svarut.batch.check(manifest, client=_TEST_RULES) == []
    checked = cli(["batch", "check", str(manifest)], _test_env())
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_cp1252_manifest_names_the_line_and_the_byte(tmp_path: Path) -> None:
    write_pdf(tmp_path / "brev.pdf")
    manifest = tmp_path / "brev.jsonl"
    lines = [json.dumps(person_line(ref, tittel=f"Vedtak {ref}"), ensure_ascii=False) for ref in ("a", "b", "c")]
    lines[2] = lines[2].replace("Vedtak c", "Vedtæk c")
    manifest.write_bytes("\n".join(lines).encode("cp1252"))
    column = lines[2].encode("cp1252").index(b"\xe6") + 1
    problems = svarut.batch.check(manifest, client=_TEST_RULES)
    assert [(p.line, p.rule) for p in problems] == [(3, "utf8")]
    assert str(problems[0]) == (f"line 3: not UTF-8 (byte 0xe6 at column {column}): save the manifest as UTF-8 [utf8]")
    checked = cli(["batch", "check", str(manifest)], _test_env())
    assert checked.returncode == 3
    assert checked.stdout.splitlines() == [str(problems[0])]
    assert "Traceback" not in checked.stderr and "codec" not in checked.stderr


def test_manifest_messages_name_the_keys_on_the_line(tmp_path: Path) -> None:
    write_pdf(tmp_path / "brev.pdf")
    good = person_line("a")
    manifest = write_manifest(
        tmp_path / "brev.jsonl",
        [
            {**good, "dokumenter": {"vedtak.pdf": "brev.pdf"}},
            {**good, "ref": "b", "forsendelse": {**good["forsendelse"], "mottaker": {"navn": 5}, "foo": 1}},
        ],
    )
    problems = [str(p) for p in svarut.batch.check(manifest, client=_TEST_RULES)]
    assert problems == [
        'line 1 (ref \'a\'): forsendelse.dokumenter[0].filnavn: no file for "brev.pdf": add it to "dokumenter" '
        'on this line, e.g. "dokumenter": {"brev.pdf": "path/to/the/file"} [document_missing]',
        "line 1 (ref 'a'): dokumenter.vedtak.pdf: \"vedtak.pdf\" is not described in forsendelse.dokumenter: "
        'add an entry with filnavn "vedtak.pdf" there, or remove it from "dokumenter" [document_not_described]',
        "line 2 (ref 'b'): forsendelse.mottaker.navn: must be a string (text in quotes) [string_type]",
        "line 2 (ref 'b'): forsendelse.mottaker.digitalId: required: add \"digitalId\" to forsendelse.mottaker "
        "[missing]",
        "line 2 (ref 'b'): forsendelse.foo: \"foo\" is not a key of forsendelse: remove it or check its spelling "
        "[extra_forbidden]",
    ]
    for problem in problems:
        assert "=" not in problem and "Input should" not in problem and "Field required" not in problem
