"""What the batch tests share: writing manifests of real letters, counting
what the simulator received per eksternReferanse, running the CLI, and a
SQLite journal whose statements a test can read."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import svarut.batch
from svarut.batch.journal import Journal, NewLetter
from svarut.simulator import Simulator

FNR = "21883649874"
ORGNR = "974760673"
COMMAND = [sys.executable, "-m", "svarut.cli"]


def person_line(
    ref: str, *, tittel: str | None = None, filnavn: str = "brev.pdf", path: str = "brev.pdf"
) -> dict[str, Any]:
    return {
        "ref": ref,
        "kind": "person",
        "forsendelse": {
            "tittel": tittel or f"Brev {ref}",
            "mottaker": {"navn": "Kari Nordmann", "digitalId": FNR},
            "dokumenter": [{"filnavn": filnavn, "mimeType": "application/pdf"}],
        },
        "dokumenter": {filnavn: path},
    }


def write_pdf(path: Path, text: str = "brev") -> Path:
    path.write_bytes(b"%PDF-1.7\n% " + text.encode() + b"\n%%EOF\n")
    return path


def write_manifest(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n")
    return path


def letters(directory: Path, count: int, *, prefix: str = "L") -> Path:
    """A manifest of ``count`` distinct person letters sharing one PDF."""
    write_pdf(directory / "brev.pdf")
    return write_manifest(directory / "brev.jsonl", [person_line(f"{prefix}{i}") for i in range(count)])


def received_by_ekstern(sim: Any) -> collections.Counter[str]:
    """How many times the simulator accepted each eksternReferanse."""
    return collections.Counter(str(r.metadata.get("eksternReferanse")) for r in sim.received)


def cli(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, **kwargs)


def cli_env(sim: Simulator | Any, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **sim.environ()}


def check_report_against_simulator(report: list[dict[str, Any]], sim: Any) -> None:
    """Every letter the simulator has arrived exactly once, and the report says
    so letter by letter; a letter reported unknown arrived at most once; no
    letter is still waiting or sending."""
    counts = received_by_ekstern(sim)
    by_ekstern = {str(r.metadata.get("eksternReferanse")): r for r in sim.received}
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    for row in report:
        ekstern = row["ekstern_referanse"]
        if row["state"] == "sent":
            assert counts[ekstern] == 1, row
            assert str(by_ekstern[ekstern].id) == row["forsendelse_id"], row
        elif row["state"] in ("unknown", "duplicate-confirmed"):
            assert counts[ekstern] <= 1, row
            if row["state"] == "duplicate-confirmed":
                assert counts[ekstern] == 1, row
        else:
            raise AssertionError(f"letter left {row['state']}: {row}")
    reported = {row["ekstern_referanse"] for row in report}
    assert set(counts) <= reported, set(counts) - reported


@contextlib.contextmanager
def traced_journal(path: Path, count: int) -> Iterator[tuple[Journal, list[str]]]:
    """A SQLite journal at ``path`` holding letters r1 … r``count`` (line i,
    waiting), and the list each statement it runs from then on is appended
    to (as SQLite expands it, values included)."""
    with svarut.batch.open_journal(path) as jn:
        jn.setup(konto_id="k")
        jn.load([NewLetter(f"r{i}", i, "person", f"line-{i}", f"e-{i}") for i in range(1, count + 1)])
        statements: list[str] = []
        jn._db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        yield jn, statements
