"""The README's examples, and the CLI guide's (docs/cli.md), run as written, against the simulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from svarut import statuses

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLI_GUIDE = ROOT / "docs" / "cli.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quick_start_runs_as_written_and_again(svarut_simulator, tmp_path: Path) -> None:
    block = next(b for b in python_blocks() if "send_til_person" in b)  # the first: the quick start
    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    env = {**os.environ, **svarut_simulator.environ(), "TMPDIR": str(temp)}
    runs = []
    for _ in range(2):  # a reader runs it again: it must not refuse itself as a duplicate
        result = subprocess.run(
            [sys.executable, "-c", block], cwd=work, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        runs.append(result.stdout)
    assert list(work.iterdir()) == list(temp.iterdir()) == []  # nothing written where it ran, nor left behind

    # AKSEPTERT, or a later step of the person journey of the generated specs if it moved on
    # between two polls; never a status those specs lack (VARSLET from spec version 16 on).
    person = next(j.statuses for j in statuses.journeys() if j.channel == "person")
    received = svarut_simulator.received
    assert len(received) == 2
    for output, letter in zip(runs, received, strict=True):
        forsendelse_id, referanse, status, _ = output.split(" ", 3)
        assert str(letter.id) == forsendelse_id
        assert status in person[person.index("AKSEPTERT") :]
        assert status in (statuses.spec_statuses() or ())
        assert letter.metadata["eksternReferanse"] == referanse and referanse.startswith("sak-2026-0042-")
        assert [d.filnavn for d in letter.documents] == ["vedtak.pdf", "kart.png"]
        assert f"vedtak i {referanse}".encode() in letter.documents[0].path.read_bytes()
    assert received[0].metadata["eksternReferanse"] != received[1].metadata["eksternReferanse"]


def cli_section() -> str:
    """The CLI guide: its one `sh` block of examples, `json` forsendelse and `text` command summary."""
    return CLI_GUIDE.read_text()


def readme_cli_lines() -> str:
    text = README.read_text()
    start = text.index("## The command line in five lines\n")
    (script,) = blocks(text[start : text.index("\n## ", start + 1)], "sh")
    return script


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def run_script(script: str, svarut_simulator, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "vedtak.pdf").write_bytes(b"%PDF-1.7\n% vedtak\n%%EOF\n")
    (tmp_path / "kart.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    env = {
        **os.environ,
        **svarut_simulator.environ(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_readme_command_line_lines_run_as_written(svarut_simulator, tmp_path: Path) -> None:
    script = readme_cli_lines()
    assert len(script.strip().splitlines()) == 5 and not re.search(r"\.\.\.|\|", script)
    letter = {
        "ref": "vedtak-0001",
        "kind": "person",
        "forsendelse": {
            "tittel": "Vedtak",
            "mottaker": {"navn": "Kari Nordmann", "digitalId": "21883649874"},
            "dokumenter": [{"filnavn": "vedtak.pdf", "mimeType": "application/pdf"}],
        },
        "dokumenter": {"vedtak.pdf": "vedtak.pdf"},
    }
    (tmp_path / "brev.jsonl").write_text(json.dumps(letter) + "\n")
    result = run_script(script, svarut_simulator, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (received,) = svarut_simulator.received  # batch check sends nothing
    assert received.channel == "person" and received.metadata["tittel"] == "Vedtak"
    assert (tmp_path / "vedtak.pdf.cms").stat().st_size > 0


def test_command_line_examples_run_as_written(svarut_simulator, tmp_path: Path) -> None:
    section = cli_section()
    (script,) = blocks(section, "sh")
    (forsendelse_json,) = blocks(section, "json")
    assert "forsendelse.json" in script and not re.search(r"\.\.\.|\|", script)  # no placeholders, no "a|b"
    (tmp_path / "forsendelse.json").write_text(forsendelse_json)
    result = run_script(script, svarut_simulator, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    by_channel = {r.channel: r for r in svarut_simulator.received}
    person = [r for r in svarut_simulator.received if r.channel == "person"]
    assert sorted(by_channel) == ["nhn", "organisasjon", "person", "print"] and len(person) == 2
    assert person[0].metadata["dokumenter"][1] == {
        "filnavn": "kart.png",
        "mimeType": "image/png",
        "skalEkskluderesFraUtskrift": True,
    }
    organisasjon = by_channel["organisasjon"].metadata
    assert organisasjon["tittel"] == "Svar på søknad" and organisasjon["konteringskode"] == "K-1"
    assert organisasjon["dokumenter"][0]["dokumentType"] == "Vedtak"
    assert by_channel["print"].metadata["mottaker"]["adresse"]["poststed"] == "Oslo"
    assert by_channel["nhn"].metadata["mottakerHerId"] == 8142519
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert printed == [{"id": str(person[1].id), "eksternReferanse": "sak-2026-0042"}]
    assert person[1].metadata["kryptert"] is True
    assert (tmp_path / "vedtak.pdf.cms").stat().st_size > 0


def test_command_summary_matches_the_help() -> None:
    from click.testing import CliRunner

    from svarut.cli.app import cli
    from svarut.generated import SEND_OPERATIONS

    (summary,) = blocks(cli_section(), "text")
    lines = summary.strip().splitlines()
    commands = [line.split()[1:3] if line.split()[1] == "batch" else line.split()[1:2] for line in lines]
    assert commands == [
        ["send"],
        ["status"],
        ["wait"],
        ["avklar"],
        ["encrypt"],
        ["simulator"],
        ["doctor"],
        ["batch", "check"],
        ["batch", "run"],
        ["batch", "settle"],
        ["batch", "status"],
        ["batch", "report"],
    ]
    # Every command the CLI has is in the summary.
    assert {c[-1] for c in commands} == {
        *(name for name in cli.commands if name != "batch"),
        *getattr(cli.commands["batch"], "commands", {}),
    }
    kinds = re.search(r"KIND: (.*)$", lines[0])
    assert kinds is not None and sorted(kinds[1].split(", ")) == sorted(SEND_OPERATIONS)
    for line, command in zip(lines, commands, strict=True):
        command = command + (["person"] if "KIND" in line else [])
        help_text = CliRunner().invoke(cli, [*command, "--help"]).output
        for flag in re.findall(r"--[a-z-]+", line):
            assert flag in help_text, (line, flag)
