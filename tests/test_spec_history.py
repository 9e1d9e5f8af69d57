"""The whole product follows every upstream version of the specs.

For each version in ``../shared/specs/history/`` this copies the project,
relocks it to that version with ``python -m generator update-specs`` (version
01, which has only the send spec, with a lock written by hand), regenerates
it, and then, in subprocesses with the copy first on the path: imports
``svarut``, runs ``mypy --strict`` over the package and the generator, and
sends one forsendelse of every kind the version has, with the sync and the
async client, to the copy's own simulator, waiting for each to end. Version 01
has no status search: there the status helpers must raise their clear error,
and mypy is not run (the hand-written status layer names the status models).

Versions run two at a time. ``make check-history`` walks all seventeen; the
default test run walks :data:`QUICK` (the first spec, the last one without
print, the last one before the error schema moved to ``fiks-common.json``,
today's), which covers every shape the history has.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from generator_helpers import require_history
from project_copy import HISTORY, SEND_SCRIPT, copy_project, generate, relock, run_in, write_lock

# Without the history (specs downloaded, not from ../shared) the walk is skipped, or fails in CI.
ALL = sorted(p.name for p in HISTORY.glob("[0-9][0-9]-*") if p.is_dir())
QUICK = ["01-7af4ef2", "09-29075f1", "16-5955e75", "17-2e173af"]
VERSIONS = ALL if os.environ.get("SVARUT_SPEC_HISTORY") == "all" else [v for v in QUICK if v in ALL]
WITHOUT_STATUS = "01-7af4ef2"
_COMMIT = re.compile(r"^\|\s*(\d\d-[0-9a-f]+)\s*\|\s*([0-9a-f]{40})\s*\|", re.M)
COMMITS = dict(_COMMIT.findall((HISTORY / "README.md").read_text())) if ALL else {}
#: Files another branch is making follow the spec; their mypy errors on an
#: older spec are expected until it lands (the lead removes the entry at merge).


@dataclass
class Step:
    name: str
    returncode: int
    output: str


@dataclass
class Walk:
    version: str
    steps: list[Step] = field(default_factory=list)

    def run(self, name: str, result: subprocess.CompletedProcess[str]) -> bool:
        self.steps.append(Step(name, result.returncode, (result.stdout + result.stderr)[-6000:]))
        return result.returncode == 0

    def failures(self) -> str:
        return "\n\n".join(f"--- {s.name} (exit {s.returncode})\n{s.output}" for s in self.steps if s.returncode)

    def output(self, name: str) -> str:
        return next(s.output for s in self.steps if s.name == name)


def walk(version: str, workdir: Path) -> Walk:
    result = Walk(version)
    specs_dir = HISTORY / version
    copy = copy_project(workdir / version)
    if version == WITHOUT_STATUS:
        write_lock(copy, specs_dir, COMMITS[version])
    elif not result.run("update-specs", relock(copy, specs_dir, COMMITS[version])):
        return result
    if not result.run("generate", generate(copy, specs_dir)):
        return result
    result.run("import", run_in(copy, "-c", "import svarut; svarut.SvarUtClient; svarut.AsyncSvarUtClient"))
    if version != WITHOUT_STATUS:
        result.run("mypy", run_in(copy, "-m", "mypy", "--cache-dir", str(workdir / f"mypy-{version}")))
    result.run("send", run_in(copy, "-c", SEND_SCRIPT))
    return result


@pytest.fixture(scope="module")
def walks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Walk]]:
    workdir = tmp_path_factory.mktemp("history")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield dict(zip(VERSIONS, pool.map(lambda v: walk(v, workdir), VERSIONS), strict=True))


def test_the_history_is_complete() -> None:
    require_history()
    assert ALL[0] == WITHOUT_STATUS and len(ALL) == 17
    assert set(COMMITS) == set(ALL)
    # Today's lock is the newest version, with the document it references, and the
    # eksternRef lookup published beside it.
    newest = HISTORY / ALL[-1]
    lock = json.loads((Path(__file__).resolve().parent.parent / "specs" / "lock.json").read_text())
    locked = {e["file"]: e["sha256"] for e in [*lock["specs"], *lock.get("references", [])]}
    beside = HISTORY.parent / "upstream-2026" / "forsendelse-eksternref-api-v2.json"
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in [*newest.glob("*.json"), beside]}
    assert locked == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_the_product_follows_the_spec_version(version: str, walks: dict[str, Walk]) -> None:
    result = walks[version]
    assert not result.failures(), f"spec version {version}:\n{result.failures()}"
    without_status = version == WITHOUT_STATUS
    expected = (
        ["generate", "import", "send"] if without_status else ["update-specs", "generate", "import", "mypy", "send"]
    )
    assert [s.name for s in result.steps] == expected
    summary = json.loads(result.output("send").strip().splitlines()[-1])
    spec = json.loads((HISTORY / version / "forsendelse-send-api-v3.json").read_text())
    kinds = sorted(path.rsplit("/", 1)[-1] for path in spec["paths"])
    assert summary["kinds"] == kinds
    # No version of the history has the eksternRef lookup (it is published beside them).
    assert summary["avklar"] == "no lookup"
    if version == WITHOUT_STATUS:
        assert summary["sync"] == summary["async"] == "no status search"
    else:
        assert set(summary["sync"].values()) <= {"LEST", "PRINTET", "LEVERT_NHN_MOTTAKER"}
