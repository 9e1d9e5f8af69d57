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


# --- the import graph of the package ---------------------------------------------------

PACKAGE = ROOT / "svarut"
RUNTIME_MAY_NOT_IMPORT = ("svarut.generated", "svarut._client", "svarut.simulator", "svarut.batch", "svarut.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(path: Path) -> set[str]:
    """The modules ``path`` imports when it is imported: module-level imports,
    relative ones resolved; not those under ``if TYPE_CHECKING:`` or inside a
    function or class. ``from package import name`` counts as ``package.name``
    when that is a module of ours, else as ``package``."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                found.add(module)
                found.update(f"{module}.{a.name}" for a in node.names if (_module_path(f"{module}.{a.name}")))
            elif isinstance(node, ast.If) and not _is_type_checking(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text()).body)
    return found


def _module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports
    at import time (importing ``a.b.c`` also runs ``a`` and ``a.b``)."""
    modules = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for imported in module_level_imports(path):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_graph_reader_sees_relative_and_package_imports() -> None:
    graph = import_graph()
    assert "svarut.runtime.request_types" in graph["svarut.runtime.client"]
    assert "svarut.runtime.base_client" in graph["svarut.runtime.client"]
    assert "svarut.runtime.sniff" in graph["svarut.runtime.kryptering"]
    # A TYPE_CHECKING import is no edge: the base client names Kryptering only in annotations.
    assert "svarut.runtime.kryptering" not in graph["svarut.runtime.base_client"]


def test_no_import_circle_among_the_packages_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_runtime_does_not_import_the_layers_above_it() -> None:
    for name, edges in import_graph().items():
        if name.startswith("svarut.runtime"):
            above = sorted(e for e in edges if e.startswith(RUNTIME_MAY_NOT_IMPORT))
            assert above == [], f"{name} imports {above}"


@pytest.mark.parametrize("path", sorted((ROOT / "svarut" / "runtime").rglob("*.py")), ids=lambda p: p.name)
def test_the_runtime_never_imports_generated_code_or_the_generator(path: Path) -> None:
    # Anywhere in the file, functions and TYPE_CHECKING blocks included.
    names = imports(path)
    bad = {n for n in names if n.startswith(RUNTIME_MAY_NOT_IMPORT) or n.split(".")[0] == "generator"}
    assert bad == set()


def test_importing_the_encryption_loads_neither_the_http_client_nor_the_models() -> None:
    import subprocess
    import sys

    script = (
        "import sys, svarut.kryptering; "
        "print(sorted(m for m in sys.modules if m in ('svarut.runtime.client', 'svarut.runtime.base_client',"
        " 'svarut.runtime.validation') or m.startswith('svarut.generated')))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


# --- OpenTelemetry is loaded only where it is installed and not switched off ----------------

_OTEL_SCRIPT = """
import sys
{hide}
import svarut
imported_by_import = [m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m] is not None]
if {send}:
    from svarut.simulator import Simulator
    with Simulator() as sim, sim.client() as client:
        client.send_til_person(
            konto_id=sim.konto_id,
            forsendelse=svarut.models.PersonForsendelse(
                tittel="Vedtak",
                mottaker=svarut.models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
                dokumenter=[svarut.models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
            ),
            dokumenter={{"a.pdf": b"%PDF-1.7\\n%%EOF\\n"}},
        )
    from svarut.runtime import instrumentation
    print(type(instrumentation.current()).__name__)
print(imported_by_import)
print(sorted(m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m] is not None)[:1])
"""


@pytest.mark.parametrize(
    ("case", "send", "hide", "environ", "loaded"),
    [
        ("import svarut", False, False, {}, False),
        ("a send, switched off", True, False, {"OTEL_PYTHON_INSTRUMENTATION_SVARUT_ENABLED": "false"}, False),
        ("a send, opentelemetry not installed", True, True, {}, False),
        ("a send, opentelemetry installed", True, False, {}, True),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_opentelemetry_is_imported_only_by_a_send_with_it_installed_and_on(
    case: str, send: bool, hide: bool, environ: dict[str, str], loaded: bool
) -> None:
    import os
    import subprocess
    import sys

    pytest.importorskip("opentelemetry.trace", reason="the otel extra (dev includes it)")
    # sys.modules[name] = None is what a missing package looks like to importlib.util.find_spec.
    hide_line = "sys.modules['opentelemetry'] = None" if hide else ""
    script = _OTEL_SCRIPT.format(hide=hide_line, send=send)
    switches = ("OTEL_PYTHON_INSTRUMENTATION_SVARUT_ENABLED", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
    env = {k: v for k, v in os.environ.items() if k not in switches}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT, env={**env, **environ}
    )
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "[]", f"import svarut loaded {lines[-2]}"
    assert (lines[-1] != "[]") is loaded, out.stdout
    if send:
        assert lines[0] == ("OpenTelemetryInstrumentation" if loaded else "Instrumentation")
