"""The package as a user installs it: ``make dist`` builds an sdist and a wheel
(the wheel from the sdist, so both are checked), the wheel holds the package
and nothing of the maintainers', and installed into a clean venv it runs
``svarut --help`` and imports, with nothing of the checkout on its path. The
README's install lines name the wheel ``make dist`` builds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import svarut

ROOT = Path(__file__).resolve().parent.parent
WHEEL = f"fiks_svarut-{svarut.__version__}-py3-none-any.whl"
SDIST = f"fiks_svarut-{svarut.__version__}.tar.gz"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``make dist`` builds, into a directory of the test's own (the recipe, with DIST= there)."""
    out = tmp_path_factory.mktemp("dist")
    recipe = _make_dist_recipe()
    assert recipe == ["rm -f $(DIST)/fiks_svarut-*", "$(PYTHON) -m build --no-isolation --outdir $(DIST) ."]
    # The tree is shared with whoever else works in it: the build's scratch goes to a copy.
    source = tmp_path_factory.mktemp("source")
    included = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["sdist"]
    for name in included["include"]:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _make_dist_recipe() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    match = re.search(r"^dist:.*\n((?:\t.*\n)+)", text, flags=re.M)
    assert match, "no dist target in the Makefile"
    return [line.strip() for line in match[1].splitlines()]


def test_make_dist_builds_an_sdist_and_a_wheel(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [WHEEL, SDIST]
    with tarfile.open(dist / SDIST) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "LICENSE", "svarut/py.typed", "svarut/generated/models.py"} <= names


def test_the_wheel_holds_the_package_and_nothing_of_the_maintainers(dist: Path) -> None:
    with zipfile.ZipFile(dist / WHEEL) as wheel:
        names = wheel.namelist()
        metadata = next(wheel.read(n) for n in names if n.endswith(".dist-info/METADATA")).decode()
        entry_points = next(wheel.read(n) for n in names if n.endswith(".dist-info/entry_points.txt")).decode()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"svarut", f"fiks_svarut-{svarut.__version__}.dist-info"}, top  # no tests/, generator/, bench/
    assert not [n for n in names if re.search(r"(^|/)(tests?|bench|generator|specs)/|__pycache__|\.pyc$", n)]
    assert "svarut/py.typed" in names  # mypy reads the types of an installed svarut
    assert {"svarut/generated/models.py", "svarut/cli/app.py", "svarut/simulator/__main__.py"} <= set(names)
    assert re.search(r"^Provides-Extra: cli$", metadata, flags=re.M)
    assert "svarut = svarut.cli:main" in entry_points


def test_the_wheel_installed_in_a_clean_venv_runs_svarut_and_imports(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # Without pip of its own (ensurepip takes longer than the rest): this venv's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    # Nothing of this checkout or of the test's venv may leak in: the install and runs start clean.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", f"{dist / WHEEL}[cli]"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    helped = subprocess.run(
        [str(bin_dir / "svarut"), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    assert "simulator" in helped.stdout and "send" in helped.stdout

    probe = (
        "import svarut, svarut.simulator, svarut.generated; from svarut import models; "
        "print(svarut.__version__, svarut.__file__, models.PersonForsendelse.__name__)"
    )
    imported = subprocess.run(
        [str(python), "-I", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert imported.returncode == 0, imported.stderr
    version, where, model = imported.stdout.split()
    assert (version, model) == (svarut.__version__, "PersonForsendelse")
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not the checkout

    # The HTTP stack is httpx2 on httpcore2, trusting the OS store (truststore): no httpx, httpcore or certifi.
    listed = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import importlib.metadata as m; print(*sorted(d.name.lower() for d in m.distributions()))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    installed_names = set(listed.stdout.split())
    assert {"httpx2", "httpcore2", "truststore"} <= installed_names, installed_names
    assert not {"httpx", "httpcore", "certifi"} & installed_names, installed_names


def test_the_readme_installs_the_wheel_make_dist_builds() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make dist" in readme
    assert f"dist/{WHEEL}[cli]" in readme
    assert "pip install '.[cli]'" in readme  # from a checkout
    assert "pip install 'fiks-svarut[cli]'" in readme  # from the index, once published
