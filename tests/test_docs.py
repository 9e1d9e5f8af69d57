"""The documentation site (docs/, `make docs`) builds without warnings, offline,
with a reference page for every public face and every command of the CLI."""

from __future__ import annotations

import html
import importlib
import importlib.util
import re
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None,
    reason="sphinx is not installed (the docs extra: pip install -e '.[docs]'; dev includes it)",
)

# Public face -> its reference page, and the module autodoc documents it from.
FACES = {
    "svarut": ("reference/svarut.html", "svarut"),
    "svarut.models": ("reference/models.html", "svarut.generated.models"),
    "svarut.errors": ("reference/errors.html", "svarut.errors"),
    "svarut.auth": ("reference/auth.html", "svarut.auth"),
    "svarut.kryptering": ("reference/kryptering.html", "svarut.kryptering"),
    "svarut.statuses": ("reference/statuses.html", "svarut.statuses"),
    "svarut.utfall": ("reference/utfall.html", "svarut.utfall"),
    "svarut.batch": ("reference/batch.html", "svarut.batch"),
    "svarut.simulator": ("reference/simulator.html", "svarut.simulator"),
}


@pytest.fixture(scope="module")
def site(docs_site: Path) -> Path:
    return docs_site


def text_of(page: Path) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:  # the generated models: every public class defined there
        names = [
            n for n, v in vars(module).items() if not n.startswith("_") and getattr(v, "__module__", "") == module_name
        ]
    return [n for n in names if not n.startswith("__")]


def test_site_builds_without_warnings(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "search.html").is_file() and (site / "searchindex.js").is_file()
    for guide in sorted(DOCS.glob("*.md")):
        assert (site / guide.with_suffix(".html").name).is_file(), guide.name


@pytest.mark.parametrize("face", sorted(FACES))
def test_every_public_face_has_a_reference_page_with_every_public_name(site: Path, face: str) -> None:
    page_path, module_name = FACES[face]
    page = site / page_path
    assert page.is_file(), f"no reference page for {face}"
    text = text_of(page)
    assert face in text
    missing = [n for n in public_names(module_name) if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not missing, f"{face}: public names missing from {page_path}: {missing}"


def walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command under the group, as `svarut --help` lists them (lazy groups included)."""
    ctx = click.Context(group, info_name="svarut")
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(walk(command, (*path, name)))
    return found


def test_cli_reference_lists_every_command_option_and_exit_code(site: Path) -> None:
    from svarut.cli.app import cli

    page = (site / "reference" / "cli.html").read_text()
    text = text_of(site / "reference" / "cli.html")
    commands = walk(cli)
    paths = [path for path, _ in commands]
    assert ("send", "person") in paths and ("batch", "run") in paths
    for path, command in commands:
        assert f'id="svarut-{"-".join(path)}"' in page, f"svarut {' '.join(path)} is not in the CLI reference"
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    assert opt in text, (path, opt)
                envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
                for envvar in filter(None, envvars):
                    assert envvar in text, (path, envvar)

    import svarut.cli

    codes = re.findall(r"^\s*(\d+)\s{2,}(.+)$", (cli.epilog or "") + "\n" + (cli.help or ""), flags=re.M)
    exit_codes = sorted({v for k, v in vars(svarut.cli).items() if k.startswith("EXIT_")})
    assert [int(c) for c, _ in codes] == exit_codes, codes
    for _, meaning in codes:
        assert " ".join(meaning.split()) in text, meaning


def test_no_page_loads_anything_from_another_host(site: Path) -> None:
    external = re.compile(
        r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//"""
        r"""|url\(\s*["']?(?:https?:)?//|@import\s+(?:url\()?["']?(?:https?:)?//""",
        flags=re.I,
    )
    offenders = []
    for path in sorted(site.rglob("*")):
        if path.suffix in {".html", ".css", ".js"}:
            offenders += [
                f"{path.relative_to(site)}: {m[0]}" for m in external.finditer(path.read_text(errors="replace"))
            ]
    assert not offenders, offenders


def test_guides_link_only_to_pages_that_exist() -> None:
    """Relative links in the README and the guides resolve on GitHub too (Sphinx checks them in the build)."""
    broken = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
