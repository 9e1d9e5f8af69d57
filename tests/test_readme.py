"""The README's examples run as written, against the simulator."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quick_start_runs_as_written(svarut_simulator, tmp_path: Path) -> None:
    (block,) = [b for b in python_blocks() if "send_til_person" in b]
    env = {**os.environ, **svarut_simulator.environ()}
    result = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr

    (received,) = svarut_simulator.received
    forsendelse_id, status, _ = result.stdout.split(" ", 2)
    assert str(received.id) == forsendelse_id
    assert status in {"VARSLET", "LEST"}  # LEST if it passed VARSLET between two polls
    assert received.metadata["eksternReferanse"] == "sak-2026-0042"
    assert [d.filnavn for d in received.documents] == ["vedtak.pdf", "kart.png"]
    assert received.documents[0].sha256 == hashlib.sha256((tmp_path / "vedtak.pdf").read_bytes()).hexdigest()
