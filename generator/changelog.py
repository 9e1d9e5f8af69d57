"""CHANGELOG.md entries written by ``make update-specs``, and the version bump a change calls for.

Rule (semantic versioning, with the usual 0.x shift): a change that breaks
callers calls for a major release (a minor one while the version is 0.x); any
other change, additive or only in the descriptions, for a minor release (a
patch while 0.x). The entry recommends the next version; it never changes the
project's version itself.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from generator.report import NOTABLE, Change
from generator.specs import ROOT, LockError

CHANGELOG_PATH = ROOT / "CHANGELOG.md"
PYPROJECT_PATH = ROOT / "pyproject.toml"
UNRELEASED = "## [Unreleased]"
RECOMMENDED = "Recommended next version: "
RULE = "breaking = major, minor while 0.x; otherwise minor, patch while 0.x"

INTRO = """# Changelog

All notable changes to fiks-svarut are recorded here, in the style of
[Keep a Changelog](https://keepachangelog.com/en/1.1.0/).

Entries under "Unreleased" headed "Spec update to <commit>" are written by
`make update-specs`: what the new upstream specs change for callers of the
client, breaking changes first.
"""

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def current_version(pyproject: Path = PYPROJECT_PATH) -> str:
    """The project's version: ``[project].version``, or the file a dynamic version is read from."""
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LockError(f"cannot read the project version from {pyproject}: {exc}") from None
    project = data.get("project", {})
    if "version" in project:
        return str(project["version"])
    source = data.get("tool", {}).get("hatch", {}).get("version", {}).get("path")
    if source:
        text = (pyproject.parent / source).read_text()
        match = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
        if match:
            return match.group(1)
    raise LockError(f"{pyproject} states no version ([project].version or [tool.hatch.version].path)")


def _parse(version: str) -> tuple[int, int, int]:
    match = _VERSION.match(version)
    if not match:
        raise LockError(f"version {version!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def next_version(current: str, *, breaking: bool) -> tuple[str, str]:
    """The recommended next version and the kind of bump (``major``, ``minor``, ``patch``)."""
    major, minor, patch = _parse(current)
    if major == 0:
        return (f"0.{minor + 1}.0", "minor") if breaking else (f"0.{minor}.{patch + 1}", "patch")
    return (f"{major + 1}.0.0", "major") if breaking else (f"{major}.{minor + 1}.0", "minor")


def entry(commit: str, changes: list[Change], current: str) -> str:
    """The ``### Spec update to <short>`` section for one update."""
    breaking = [c for c in changes if c.breaking]
    additive = [c for c in changes if not c.breaking]
    version, bump = next_version(current, breaking=bool(breaking))
    lines = [f"### Spec update to {commit[:7]}", "", f"Upstream commit `{commit}`.", ""]
    if not changes:
        lines += ["No structural changes (descriptions only).", ""]
    for title, group in (("Breaking for callers", breaking), ("Additive", additive)):
        if group:
            lines += [f"{title}:", ""]
            lines += [f"- `{c.text}`" + (" (notable)" if c.impact == NOTABLE else "") for c in group]
            lines.append("")
    reason = "breaking for callers" if breaking else "nothing breaks for callers"
    lines.append(f"Calls for a {bump} release: {current} -> {version} ({reason}).")
    return "\n".join(lines) + "\n"


def write_entry(path: Path, *, commit: str, changes: list[Change], current: str) -> str:
    """Add the entry to the Unreleased section of ``path`` (created if missing);
    the section's recommended version is the highest any of its entries calls for.
    Returns that version."""
    text = path.read_text() if path.exists() else INTRO
    lines = text.splitlines()
    version, _ = next_version(current, breaking=any(c.breaking for c in changes))
    if UNRELEASED not in lines:
        at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
        while at > 0 and not lines[at - 1].strip():
            at -= 1
        lines[at:at] = ["", UNRELEASED, ""]
    start = lines.index(UNRELEASED)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = lines[start + 1 : end]
    earlier = [_VERSION.search(line[len(RECOMMENDED) :]) for line in section if line.startswith(RECOMMENDED)]
    for match in earlier:
        if match and _parse(match.group(0)) > _parse(version):
            version = match.group(0)
    section = [line for line in section if not line.startswith(RECOMMENDED)]
    while section and not section[0].strip():
        section.pop(0)
    while section and not section[-1].strip():
        section.pop()
    body = [
        "",
        f"{RECOMMENDED}{version} (from {current}; {RULE}).",
        "",
    ]
    body += [*section, ""] if section else []
    body += entry(commit, changes, current).splitlines()
    tail = lines[end:]
    lines[start + 1 :] = [*body, *([""] if tail else []), *tail]
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
    return version
