"""``svarut avklar`` and the command ``svarut send`` prints when its outcome
is unknown, end to end: the console script as a subprocess against the
simulator, which answers the eksternRef lookup from what it holds."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from svarut import models
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture

SCRIPT = Path(sys.executable).with_name("svarut")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "svarut.cli"]
FNR = "21883649874"
PDF = b"%PDF-1.7\n% avklar test\n%%EOF\n"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True, timeout=60)


def run_printed(command: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """Run a ``svarut ...`` command line exactly as printed (its words as a shell reads them)."""
    words = shlex.split(command)
    assert words[0] == "svarut", command
    return run([*words[1:], *extra], env)


@pytest.fixture
def env(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> dict[str, str]:
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**bare, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **svarut_simulator.environ()}


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "vedtak.pdf"
    path.write_bytes(PDF)
    return path


def _send(sim: SvarUtSimulatorFixture, pdf: Path, *, tittel: str, ekstern_referanse: str) -> str:
    forsendelse = models.PersonForsendelse(
        tittel=tittel,
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id=FNR),
        dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
        ekstern_referanse=ekstern_referanse,
    )
    return str(
        sim.client.send_til_person(konto_id=sim.konto_id, forsendelse=forsendelse, dokumenter={"vedtak.pdf": pdf})
    )


def _avklar(env: dict[str, str], referanse: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(["avklar", "--ekstern-referanse", referanse, *extra], env)


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def test_avklar_exits_0_for_received_8_for_not_received_4_for_unknown(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], pdf: Path
) -> None:
    # Received: exactly one forsendelse carries the reference (reserved characters and æøå included).
    referanse = "sak 1/ø:&=x"
    forsendelse_id = _send(svarut_simulator, pdf, tittel="Vedtak", ekstern_referanse=referanse)
    received = _avklar(env, referanse)
    assert received.returncode == 0, received.stderr
    assert received.stdout.strip() == forsendelse_id
    as_json = _avklar(env, referanse, "--json", "--konto", str(svarut_simulator.konto_id))
    assert as_json.returncode == 0, as_json.stderr
    answer = _json(as_json)
    assert answer["tilstand"] == "mottatt" and answer["forsendelse_id"] == forsendelse_id
    assert answer["funnet"] == [forsendelse_id] and answer["ekstern_referanse"] == referanse
    assert answer["konto_id"] == str(svarut_simulator.konto_id) and answer["sendt"] is None
    assert datetime.fromisoformat(answer["sjekket"]).utcoffset() == timedelta(0)
    assert answer["trygt_a_sende_pa_nytt"] is False

    # Not received: none, and the attempt began longer ago than the window (any offset is read as given).
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
    missing = _avklar(env, "ingen-slik", "--sendt", an_hour_ago.isoformat())
    assert missing.returncode == 8, missing.stderr
    assert missing.stdout == "" and "not received" in missing.stderr and "second copy" in missing.stderr
    missing_json = _avklar(env, "ingen-slik", "--sendt", an_hour_ago.isoformat(), "--json")
    assert missing_json.returncode == 8
    answer = _json(missing_json)
    assert answer["tilstand"] == "ikke_mottatt" and answer["trygt_a_sende_pa_nytt"] is True
    assert answer["forsendelse_id"] is None and answer["funnet"] == []
    assert datetime.fromisoformat(answer["sendt"]) == an_hour_ago
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    assert _avklar(env, "ingen-slik", "--sendt", now, "--vindu", "0").returncode == 8

    # Still unknown: none yet while the attempt is recent; none and no --sendt.
    recent = _avklar(env, "ingen-slik", "--sendt", now, "--vindu", "1h30m", "--json")
    assert recent.returncode == 4 and _json(recent)["tilstand"] == "uavklart"
    assert "ask again after" in _json(recent)["grunn"]
    unknown_start = _avklar(env, "ingen-slik")
    assert unknown_start.returncode == 4 and "still unknown" in unknown_start.stderr

    # Still unknown: a reused reference, never guessed.
    other_id = _send(svarut_simulator, pdf, tittel="Et annet vedtak", ekstern_referanse=referanse)
    reused = _avklar(env, referanse, "--sendt", an_hour_ago.isoformat())
    assert reused.returncode == 4 and reused.stdout == ""
    assert forsendelse_id in reused.stderr and other_id in reused.stderr
    reused_json = _json(_avklar(env, referanse, "--json"))
    assert reused_json["tilstand"] == "uavklart" and reused_json["forsendelse_id"] is None
    assert sorted(reused_json["funnet"]) == sorted([forsendelse_id, other_id])


def test_avklar_usage_errors_and_a_failing_lookup(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str]
) -> None:
    naive = _avklar(env, "x", "--sendt", "2026-05-04T10:15:00")
    assert naive.returncode == 2 and "no UTC offset" in naive.stderr
    assert _avklar(env, "x", "--sendt", "yesterday").returncode == 2
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert _avklar(env, "x", "--sendt", future).returncode == 2
    bad_window = _avklar(env, "x", "--vindu", "20 minutes")
    assert bad_window.returncode == 2 and "not a duration" in bad_window.stderr
    assert run(["avklar"], env).returncode == 2  # --ekstern-referanse is required
    assert _avklar(env, "").returncode == 2
    assert svarut_simulator.requests == []  # none of them asked SvarUt

    # A lookup that fails settles nothing: exit 1, as any SvarUt failure.
    svarut_simulator.scenarios.fail(503, retry_after=0, count=10, only="lookup")
    failed = _avklar(env, "x", "--sendt", "2020-01-01T00:00:00Z")
    assert failed.returncode == 1, failed.stderr
    assert "503" in failed.stderr and "not received" not in failed.stderr


def test_send_with_an_unknown_outcome_prints_the_avklar_command_that_settles_it(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], pdf: Path
) -> None:
    send = ["send", "person", "--tittel", "Vedtak", "--mottaker-navn", "Kari Nordmann", "--fodselsnummer", FNR]
    # SvarUt keeps the letter, the answer is lost. The base URL is a flag, not the environment: the printed
    # command repeats it, so it asks the same SvarUt. The reference needs quoting for a shell.
    flags_env = {k: v for k, v in env.items() if k != "SVARUT_BASE_URL"}
    referanse = "sak 'ø'  $HOME;x"
    svarut_simulator.scenarios.reset(when="after_body", accept=True, only="send")
    before = datetime.now(UTC)
    lost = run(
        ["--base-url", env["SVARUT_BASE_URL"], *send, "--ekstern-referanse", referanse, str(pdf)],
        flags_env,
    )
    assert lost.returncode == 4, lost.stderr
    assert lost.stdout == ""
    error, settle, command = lost.stderr.strip().splitlines()[-3:]
    # The error is one line with its whitespace folded; the command after it is printed exactly.
    assert error.startswith("Error: outcome unknown") and "eksternReferanse \"sak 'ø' $HOME;x\"" in error
    assert settle.startswith("Settle it with the command below (it can tell that the forsendelse arrived at once")
    assert command.startswith("  svarut --base-url ")
    words = shlex.split(command)
    assert words[words.index("--ekstern-referanse") + 1] == referanse
    assert words[words.index("--konto") + 1] == str(svarut_simulator.konto_id)
    sendt = datetime.fromisoformat(words[words.index("--sendt") + 1])
    assert before <= sendt <= datetime.now(UTC)
    (kept,) = svarut_simulator.received
    settled = run_printed(command.strip(), flags_env)
    assert settled.returncode == 0, settled.stderr
    assert settled.stdout.strip() == str(kept.id)

    # SvarUt drops the letter and the answer is lost: the same command says "not received" once the
    # window is over (here: at once).
    svarut_simulator.scenarios.reset(when="after_body", accept=False, only="send")
    dropped = run([*send, "--json", "--tittel", "Et annet vedtak", str(pdf)], env)
    assert dropped.returncode == 4
    printed = _json(dropped)
    assert printed["id"] is None and printed["outcome"] == "unknown"
    assert printed["eksternReferanse"].startswith("fiks-svarut-")
    assert datetime.fromisoformat(printed["sendt"]).utcoffset() == timedelta(0)
    assert printed["avklar"] in dropped.stderr
    assert run_printed(printed["avklar"], env).returncode == 4  # too early to tell
    assert run_printed(printed["avklar"], env, "--vindu", "0").returncode == 8
    assert len(svarut_simulator.received) == 1
