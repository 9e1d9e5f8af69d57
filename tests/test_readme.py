"""The README's examples run as written (pointed at a local server)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from requests_toolbelt.multipart.decoder import MultipartDecoder

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quick_start_runs_as_written(server, tmp_path: Path) -> None:
    (block,) = [b for b in python_blocks() if "send_til_person" in b]
    konto = uuid.uuid4()
    env = {**os.environ, "SVARUT_BASE_URL": server.base_url, "SVARUT_KONTO_ID": str(konto)}
    result = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    send, status = server.requests
    assert send.path == f"/api/v3/kontoer/{konto}/forsendelser/person"
    parts = MultipartDecoder(send.body, send.headers["Content-Type"]).parts
    metadata = json.loads(parts[0].content)
    filenames = [p.headers[b"Content-Disposition"].decode().split('filename="')[1].rstrip('"') for p in parts[1:]]
    assert filenames == [d["filnavn"] for d in metadata["dokumenter"]] == ["vedtak.pdf", "kart.png"]
    assert parts[1].content == (tmp_path / "vedtak.pdf").read_bytes()
    assert status.path.endswith("/forsendelser/status/sok")
    assert "MOTTATT" in result.stdout
