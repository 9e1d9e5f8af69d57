"""``make demo`` runs ``python -m svarut.simulator.demo``: it must finish on its
own, quickly, with the letter at a terminal status."""

from __future__ import annotations

import subprocess
import sys
import time

from svarut._client import TERMINAL_STATUSES


def test_demo_sends_a_letter_and_follows_it_to_a_terminal_status() -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "svarut.simulator.demo"], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "Maskinporten stand-in issued a token" in out
    assert "vedtak.pdf" in out and "vedlegg.pdf" in out
    journey = out.split("Journey:")[1].splitlines()[1:]
    statuses = [line.split()[-1] for line in journey if line.startswith("  ")]
    assert statuses[0] == "MOTTATT" and statuses[-1] in TERMINAL_STATUSES
    assert f"Final status seen by the client: {statuses[-1]} (terminal)" in out
    assert elapsed < 10
