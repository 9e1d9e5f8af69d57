"""Every code block of the site's guides (``docs/*.md``, ``docs/maintainers/*.md``;
not ``docs/reference/``, which is generated, nor the included changelog) runs,
or is checked, here, one test per block (id ``page:line`` of its opening fence).

The blocks are found by parsing the pages (markdown-it, as MyST does), so a new
block is tested the moment it is written. What a block's info string (its
language, the first word after the fence) means:

- ``python``: run as written, ``python -c BLOCK``, against a fresh simulator
  (``svarut_simulator``) whose ``environ()`` is the environment. A block that
  defines ``test_`` functions is an example test: it is written to a file and
  run by pytest (the plugin gives it its own simulator).
- ``sh`` / ``console`` / ``bash``: run as written with ``bash -euo pipefail``,
  the venv's ``svarut`` on ``PATH``, against a fresh simulator. A command that
  cannot run in a test (``pip install``, a server that runs until stopped, a
  ``make`` target that runs the whole suite) is listed in ``NOT_RUN`` below with
  its reason: such a block is only syntax-checked (``bash -n``). The list is keyed
  by page and first line, so no other block escapes. The CLI guide's block is
  run by ``tests/test_readme.py`` (with checks of what arrived); here it is only
  matched against what that test runs (``RUN_ELSEWHERE``).
- ``json``: parsed as JSON; a block the page uses as a file (``FILES`` below) is
  also written there for the page's other blocks, and a JSON Lines manifest
  (``.jsonl``) is read line by line with the real manifest reader
  (``svarut.batch.manifest.read_letter``), which must find no problem.
- ``toml``: parsed as TOML.
- ``text``: output or a drawing, shown, not run.
- ``{directive}`` (``{toctree}``, ``{include}``): MyST directives, not code.

Any other language, a fence without one, or an indented code block fails: give
it one of the above (or teach this file the new one). Every runnable block runs
in a fresh directory holding ``vedtak.pdf``, ``kart.png``, ``virksomhet.p12``
(the simulator's Maskinporten keystore, with the password in
``MASKINPORTEN_KEYSTORE_PASSWORD`` on the Authentication page), the page's
``FILES`` and the documents a manifest among them names. So the blocks must
define everything else they use: no placeholders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXCLUDED = {DOCS / "changelog.md"}

RUN_LANGUAGES = {"python", "sh", "console", "bash"}
DATA_LANGUAGES = {"json", "toml", "text"}

# (page, first line of the block) -> why the block is syntax-checked, not run.
NOT_RUN = {
    ("getting-started.md", "pip install ."): "installs the package into the environment; the suite runs installed",
    ("getting-started.md", "python -m svarut.simulator"): "serves until stopped; tests/test_simulator.py runs it",
    ("maintainers/index.md", "make install"): "make targets: install a venv, run the demo and the whole suite",
}

# (page, language, nth block of that language on the page) -> the test that already runs it as written.
RUN_ELSEWHERE = {
    ("cli.md", "sh", 0): "tests/test_readme.py::test_command_line_examples_run_as_written",
}

# (page, language, nth block of that language on the page) -> the file the page's other blocks read it as.
FILES = {
    ("cli.md", "json", 0): "forsendelse.json",
    ("batch.md", "json", 0): "brev.jsonl",
}

# (page, first line) -> extra environment for that block.
ENVIRONMENT = {
    ("authentication.md", "import os"): {"MASKINPORTEN_KEYSTORE_PASSWORD": "docs-example"},
}

KEYSTORE_PASSWORD = "docs-example"
PDF = b"%PDF-1.7\n% docs example\n%%EOF\n"


@dataclass(frozen=True)
class Block:
    page: str  # relative to docs/
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    nth: int  # index among the page's blocks of the same language

    @property
    def first_line(self) -> str:
        """The first non-blank line, without a trailing comment: the key of ``NOT_RUN`` and the like."""
        line = next((line for line in self.text.splitlines() if line.strip()), "")
        return re.sub(r"\s+#.*$", "", line).strip()

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return sorted(
        p for p in DOCS.rglob("*.md") if p not in EXCLUDED and "reference" not in p.relative_to(DOCS).parts[:-1]
    )


def page_blocks(page: Path) -> list[Block]:
    name = page.relative_to(DOCS).as_posix()
    found: list[Block] = []
    counts: dict[str, int] = {}
    for token in MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8")):
        if token.type not in ("fence", "code_block"):
            continue
        assert token.map is not None
        language = token.info.split()[0] if token.type == "fence" and token.info.strip() else ""
        if language.startswith("{"):
            continue  # a MyST directive
        nth = counts.get(language, 0)
        counts[language] = nth + 1
        found.append(Block(name, token.map[0] + 1, language, token.content, nth))
    return found


ALL_BLOCKS = [block for page in pages() for block in page_blocks(page)]


def test_blocks_are_found() -> None:
    languages = {block.language for block in ALL_BLOCKS}
    assert {"python", "sh", "json", "toml"} <= languages
    keys = {(block.page, block.first_line) for block in ALL_BLOCKS}
    assert set(NOT_RUN) <= keys, "a NOT_RUN entry names no block: remove it"
    assert set(ENVIRONMENT) <= keys
    assert set(FILES) | set(RUN_ELSEWHERE) <= {(b.page, b.language, b.nth) for b in ALL_BLOCKS}


def write_documents(workdir: Path, simulator: Any | None) -> None:
    (workdir / "vedtak.pdf").write_bytes(PDF)
    (workdir / "kart.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    if simulator is not None:
        write_p12(Path(simulator.environ()["MASKINPORTEN_KEYSTORE"]), workdir / "virksomhet.p12")


def write_p12(pem: Path, target: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = pem.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    cert, *chain = x509.load_pem_x509_certificates(data)
    target.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"virksomhet",
            key,  # type: ignore[arg-type]
            cert,
            chain or None,
            serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
        )
    )


def write_page_files(page: str, workdir: Path) -> None:
    """The page's data blocks that its other blocks read as files, and the documents a manifest names."""
    for block in ALL_BLOCKS:
        name = FILES.get((block.page, block.language, block.nth))
        if block.page != page or name is None:
            continue
        (workdir / name).write_text(block.text, encoding="utf-8")
        if name.endswith(".jsonl"):
            for line in block.text.splitlines():
                letter = json.loads(line)
                paths = [*letter.get("dokumenter", {}).values(), letter.get("dokument")]
                for path in filter(None, paths):
                    (workdir / path).parent.mkdir(parents=True, exist_ok=True)
                    (workdir / path).write_bytes(PDF)


def check_manifest(block: Block, workdir: Path) -> None:
    from svarut.batch.manifest import read_letter

    for number, raw in enumerate(block.text.splitlines(), start=1):
        letter, arguments = read_letter(number, raw, base_dir=workdir, run_id="docs", open_files=False)
        assert arguments is not None, (number, letter)


def check_data(block: Block, tmp_path: Path) -> None:
    if block.language == "toml":
        assert tomllib.loads(block.text)
    elif block.language == "json":
        name = FILES.get((block.page, block.language, block.nth), "")
        if name.endswith(".jsonl"):
            assert all(json.loads(line) for line in block.text.splitlines())
            write_page_files(block.page, tmp_path)
            check_manifest(block, tmp_path)
        else:
            json.loads(block.text)
    else:  # text: output or a drawing
        assert block.text.strip()


def run_block(block: Block, workdir: Path, simulator: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **simulator.environ(),
        **ENVIRONMENT.get((block.page, block.first_line), {}),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(workdir / "xdg"),
    }
    if block.language == "python":
        if "\ndef test_" in "\n" + block.text or "\nasync def test_" in "\n" + block.text:
            (workdir / "test_docs_example.py").write_text(block.text, encoding="utf-8")
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_docs_example.py"]
        else:
            command = [sys.executable, "-c", block.text]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.text]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.id for block in ALL_BLOCKS])
def test_block(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    assert block.language, "an indented block or a fence without a language: give it one (see this file's docstring)"
    assert block.language in RUN_LANGUAGES | DATA_LANGUAGES, f"unknown language {block.language!r}"
    if block.language in DATA_LANGUAGES:
        check_data(block, tmp_path)
        return
    if (block.page, block.language, block.nth) in RUN_ELSEWHERE:
        import test_readme  # tests/ is on sys.path (rootdir conftest)

        assert block.text in test_readme.blocks(test_readme.cli_section(), block.language)
        return
    if (block.page, block.first_line) in NOT_RUN:
        result = subprocess.run(["bash", "-n", "-c", block.text], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return

    simulator = request.getfixturevalue("svarut_simulator")
    write_documents(tmp_path, simulator)
    write_page_files(block.page, tmp_path)
    before = SETUP.get((block.page, block.first_line))
    if before is not None:
        before(simulator)
    result = run_block(block, tmp_path, simulator)
    assert result.returncode == 0, result.stdout + result.stderr
    after = CHECKS.get((block.page, block.first_line))
    if after is not None:
        after(simulator, result)


def lose_the_answer(simulator: Any) -> None:
    simulator.scenarios.reset(when="after_body", accept=True, only="send")


def settled_as_received(simulator: Any, result: subprocess.CompletedProcess[str]) -> None:
    (received,) = simulator.received  # sent once, its answer lost, settled: not sent again
    assert result.stdout.strip() == str(received.id)
    assert [r.operation for r in simulator.requests if r.status is None] == ["send"]  # the reset: the except path ran


def batch_sent(simulator: Any, result: subprocess.CompletedProcess[str]) -> None:
    assert sorted(r.channel for r in simulator.received) == ["nhn", "person"]


SETUP = {("unknown-outcomes.md", "import os"): lose_the_answer}
CHECKS = {
    ("unknown-outcomes.md", "import os"): settled_as_received,
    ("batch.md", "svarut batch check brev.jsonl"): batch_sent,
    ("batch.md", "import os"): batch_sent,
}
