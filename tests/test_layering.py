"""The layering is one-way: generated code imports the runtime, the runtime
never imports generated code (nor the layers above it), and nothing the
client installs imports the generator or its tools."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "svarut" / "runtime").rglob("*.py")), ids=lambda p: p.name)
def test_runtime_imports_only_the_runtime(path: Path) -> None:
    ours = {n for n in imports(path) if n == "svarut" or n.startswith("svarut.")}
    assert {n for n in ours if not n.startswith("svarut.runtime")} == set()


@pytest.mark.parametrize("path", sorted((ROOT / "svarut").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_package_never_imports_maintainer_tools(path: Path) -> None:
    tools = {"generator", "datamodel_code_generator", "jinja2", "requests", "requests_toolbelt", "pytest"}
    if path.name == "pytest_plugin.py":
        tools.discard("pytest")  # the simulator's fixture is a pytest plugin by design
    assert {n.split(".")[0] for n in imports(path)} & tools == set()
