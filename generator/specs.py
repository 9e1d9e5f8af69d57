"""The spec lock, and where the locked spec JSON comes from.

``specs/lock.json`` records, for each spec, its published URL, the upstream
repository, path and commit, and the sha256 of its bytes; under
``references``, the same for every other document the specs ``$ref`` by URL
(``fiks-common.json``), so those are pinned like a spec. The JSON itself is
not committed; it is read from (first match wins):

1. the directory given with ``--specs-dir`` or ``SVARUT_SPECS_DIR`` (a spec
   must be there; a referenced document may also come from 2 or 3);
2. ``../shared/specs`` next to the project, or any folder below it (its
   ``history/`` holds every upstream version), by sha256;
3. a download pinned to the locked upstream commit (immutable, so a fresh
   machine reproduces the same output after upstream has moved on); for a
   referenced document locked without a commit, its published URL.

Whatever the source, the bytes must match the locked sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK_PATH = ROOT / "specs" / "lock.json"
SHARED_SPECS = ROOT.parent / "shared" / "specs"
PINNED_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
LOCK_COMMENT = "Locked upstream SvarUt OpenAPI specs. Rewritten only by `make update-specs`."


class LockError(Exception):
    """The specs cannot be found, or do not match the lock."""


#: Where the documents of a publishing site come from, for documents the specs
#: reference by URL: ``https://developers.fiks.ks.no/api/<name>`` is served
#: from ks-no/ks-no.github.io, ``api/<name>`` (its ``static/api`` copied on deploy).
PUBLISHED_SOURCES: dict[str, tuple[str, str]] = {
    "https://developers.fiks.ks.no/api/": ("ks-no/ks-no.github.io", "api/"),
}


@dataclass(frozen=True)
class LockedSpec:
    """One locked document: a spec, or a document the specs reference.

    A referenced document whose upstream commit is not known is locked with
    an empty ``upstream_commit`` and the date it was ``retrieved``; it is then
    fetched from its published URL, still verified by sha256.
    """

    file: str
    published_url: str
    upstream_repo: str
    upstream_path: str
    upstream_commit: str
    sha256: str
    retrieved: str = ""

    @property
    def pinned_url(self) -> str:
        if not (self.upstream_commit and self.upstream_repo):
            return self.published_url
        return PINNED_URL.format(repo=self.upstream_repo, commit=self.upstream_commit, path=self.upstream_path)

    def as_json(self) -> dict[str, str]:
        data = asdict(self)
        if not self.retrieved:
            del data["retrieved"]
        return data


def read_lock(path: Path = LOCK_PATH) -> list[LockedSpec]:
    """The locked specs (without the documents they reference)."""
    data = json.loads(path.read_text())
    return [LockedSpec(**entry) for entry in data["specs"]]


def read_references(path: Path = LOCK_PATH) -> list[LockedSpec]:
    """The locked documents the specs reference by URL (``fiks-common.json``)."""
    data = json.loads(path.read_text())
    return [LockedSpec(**entry) for entry in data.get("references", [])]


def write_lock(specs: list[LockedSpec], path: Path = LOCK_PATH, *, references: list[LockedSpec] | None = None) -> None:
    """Write the lock; ``references`` None keeps the ones ``path`` has."""
    if references is None:
        references = read_references(path) if path.exists() else []
    data: dict[str, Any] = {"comment": LOCK_COMMENT, "specs": [s.as_json() for s in specs]}
    if references:
        data["references"] = [r.as_json() for r in sorted(references, key=lambda r: r.published_url)]
    path.write_text(json.dumps(data, indent=2) + "\n")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(url: str, *, timeout: float = 30.0) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "fiks-svarut-generator"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read()
        return data


def _explicit_dir(specs_dir: str | Path | None) -> Path | None:
    value = specs_dir or os.environ.get("SVARUT_SPECS_DIR")
    return Path(value) if value else None


def load_locked(
    specs_dir: str | Path | None = None, *, lock: list[LockedSpec] | None = None, allow_download: bool = True
) -> dict[str, bytes]:
    """The raw bytes of every locked spec, verified against the lock."""
    lock = read_lock() if lock is None else lock
    explicit = _explicit_dir(specs_dir)
    result: dict[str, bytes] = {}
    for entry in lock:
        if explicit is not None:
            data = _read(explicit / entry.file)
            if data is None:
                raise LockError(f"{entry.file} is not in {explicit} (given with --specs-dir/SVARUT_SPECS_DIR)")
            _verify(entry, data, str(explicit / entry.file))
            result[entry.file] = data
            continue
        result[entry.file] = _find(entry, [], allow_download=allow_download)
    return result


def load_references(
    specs_dir: str | Path | None = None,
    *,
    references: list[LockedSpec] | None = None,
    allow_download: bool = True,
) -> dict[str, bytes]:
    """The raw bytes of every locked referenced document, by its URL, verified
    against the lock: from the specs directory, ``../shared/specs``, or the
    pinned download."""
    references = read_references() if references is None else references
    explicit = _explicit_dir(specs_dir)
    result: dict[str, bytes] = {}
    for entry in references:
        tried: list[str] = []
        if explicit is not None:
            data = _read(explicit / entry.file)
            if data is not None and sha256(data) == entry.sha256:
                result[entry.published_url] = data
                continue
            tried.append(f"{explicit / entry.file}: " + ("not found" if data is None else "another sha256"))
        result[entry.published_url] = _find(entry, tried, allow_download=allow_download)
    return result


def _shared_candidates(file: str) -> list[Path]:
    """``../shared/specs/<file>``, then the same name in the folders below it, in name order."""
    try:
        below = sorted(SHARED_SPECS.glob(f"**/{file}"))
    except OSError:
        below = []
    top = SHARED_SPECS / file
    return [top, *(p for p in below if p != top)]


def _find(entry: LockedSpec, tried: list[str], *, allow_download: bool) -> bytes:
    """``entry``'s bytes from ``../shared/specs`` (any folder, by sha256) or the pinned download."""
    mismatched = 0
    for path in _shared_candidates(entry.file):
        data = _read(path)
        if data is not None and sha256(data) == entry.sha256:
            return data
        mismatched += data is not None
    if mismatched:
        tried.append(f"{SHARED_SPECS}/**/{entry.file}: {mismatched} file(s), none with the locked sha256")
    else:
        tried.append(f"{SHARED_SPECS / entry.file}: not found")
    if allow_download:
        try:
            data = download(entry.pinned_url)
        except (urllib.error.URLError, OSError) as exc:
            tried.append(f"{entry.pinned_url}: {exc}")
        else:
            _verify(entry, data, entry.pinned_url)
            return data
    raise LockError(f"cannot find {entry.file} with sha256 {entry.sha256}; tried:\n  " + "\n  ".join(tried))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _verify(entry: LockedSpec, data: bytes, where: str) -> None:
    actual = sha256(data)
    if actual != entry.sha256:
        raise LockError(
            f"{where} does not match specs/lock.json: sha256 {actual}, locked {entry.sha256}.\n"
            "If the spec changed on purpose, run `make update-specs` to review and lock the new version."
        )


def parse(raw: dict[str, bytes]) -> dict[str, Any]:
    return {name: json.loads(data) for name, data in raw.items()}


def published_url(entry: LockedSpec, published_base: str | None) -> str:
    if not published_base:
        return entry.published_url
    return published_base.rstrip("/") + "/" + entry.published_url.rsplit("/", 1)[1]


def fetch_published(lock: list[LockedSpec], published_base: str | None = None) -> dict[str, bytes]:
    """The published bytes of every entry, by file name; ``published_base`` may
    be a URL or a local directory holding the published files."""
    local = Path(published_base) if published_base and "://" not in published_base else None
    result = {}
    for entry in lock:
        if local is not None:
            data = _read(local / entry.file)
            if data is None:
                raise LockError(f"{entry.file} is not in {local} (given as the published base)")
            result[entry.file] = data
            continue
        url = published_url(entry, published_base)
        try:
            result[entry.file] = download(url)
        except (urllib.error.URLError, OSError) as exc:
            raise LockError(f"cannot download {url}: {exc}") from None
    return result


def same_content(a: bytes, b: bytes) -> bool:
    """Whether two JSON documents say the same, whatever their key order and layout."""
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b


def _history_versions(file: str) -> list[tuple[str, bytes]]:
    """``(version folder, bytes)`` of ``file`` in each upstream version at hand, oldest first."""
    history = SHARED_SPECS / "history"
    found = []
    for folder in sorted(p for p in history.glob("[0-9][0-9]-*") if p.is_dir()):
        data = _read(folder / file)
        if data is not None:
            found.append((folder.name, data))
    return found


def age_against_history(file: str, published: bytes, locked: bytes) -> str:
    """Which of the published and the locked ``file`` is newer, as far as the
    upstream history at hand (``../shared/specs/history``) tells."""
    versions = _history_versions(file)
    if not versions:
        return "no upstream history at hand to tell which is newer"

    def position(data: bytes) -> int | None:
        matches = [i for i, (_, v) in enumerate(versions) if same_content(v, data)]
        return matches[-1] if matches else None

    pub, mine = position(published), position(locked)
    if pub is None:
        return "the published content matches no upstream version at hand: cannot tell which is newer"
    if mine is None:
        return f"the published content is upstream version {versions[pub][0]}; the locked one is in no version at hand"
    if pub == mine:
        return f"same content as upstream version {versions[pub][0]}"
    relation = "older" if pub < mine else "newer"
    return (
        f"the published content is upstream version {versions[pub][0]}, {relation} than the lock ({versions[mine][0]})"
    )


_HISTORY_ROW = re.compile(r"^\|\s*\d\d-[0-9a-f]+\s*\|\s*([0-9a-f]{40})\s*\|", re.M)


def upstream_history(*specs_dirs: str | Path | None) -> list[str]:
    """The upstream commits of the specs, oldest first, as the history at hand
    lists them (``history/README.md`` beside or above one of ``specs_dirs``
    (default: the specs directory named by ``SVARUT_SPECS_DIR``), or in
    ``../shared/specs``); empty when there is none."""
    candidates: list[Path] = []
    for given in specs_dirs or (None,):
        folder = _explicit_dir(given)
        if folder is not None:
            candidates += [folder / "history", folder.parent]
    for folder in [*candidates, SHARED_SPECS / "history"]:
        text = _read(folder / "README.md")
        if text is not None:
            commits = _HISTORY_ROW.findall(text.decode("utf-8", "replace"))
            if commits:
                return commits
    return []


def predates(commit: str, later: str, history: list[str]) -> bool:
    """Whether upstream ``commit`` comes before ``later`` (a commit or its
    prefix) in ``history``; False when the history does not tell."""
    mine = [i for i, c in enumerate(history) if c.startswith(commit) or commit.startswith(c)]
    theirs = [i for i, c in enumerate(history) if c.startswith(later)]
    return bool(mine and theirs) and mine[0] < theirs[0]


def lock_references(
    urls: list[str],
    old: list[LockedSpec],
    *,
    from_dir: Path | None,
    specs_dir: str | None,
    commits: dict[str, str],
) -> tuple[dict[str, bytes], list[LockedSpec]]:
    """Lock every document at ``urls`` (what the new specs reference): its bytes
    by URL and its lock entry. A document comes from ``from_dir`` (by file name),
    else a download pinned at its commit in ``commits``, else the bytes locked
    now, else its published URL (then locked by content and date only)."""
    names = {url.rsplit("/", 1)[-1]: url for url in urls}
    unknown = sorted(set(commits) - set(names))
    if unknown:
        raise LockError(f"--ref-commit names {', '.join(unknown)}, which the new specs do not reference")
    existing = {r.published_url: r for r in old}
    raw: dict[str, bytes] = {}
    entries: list[LockedSpec] = []
    for name, url in sorted(names.items()):
        previous = existing.get(url)
        repo, path = _source(url, previous)
        commit = commits.get(name, "")
        entry = LockedSpec(name, url, repo, path, commit, "")
        data = _read(from_dir / name) if from_dir is not None else None
        if data is None and commit:
            data = _download(entry.pinned_url)
        if data is None and previous is not None:
            data = load_references(specs_dir, references=[previous])[url]
        if data is None:
            data = _download(url)
        if not commit and previous is not None and previous.sha256 == sha256(data):
            commit = previous.upstream_commit
        retrieved = ""
        if not commit:
            same = previous is not None and previous.sha256 == sha256(data)
            retrieved = previous.retrieved if same and previous is not None and previous.retrieved else _today()
        raw[url] = data
        entries.append(replace(entry, upstream_commit=commit, sha256=sha256(data), retrieved=retrieved))
    return raw, entries


def _source(url: str, previous: LockedSpec | None) -> tuple[str, str]:
    if previous is not None:
        return previous.upstream_repo, previous.upstream_path
    for base, (repo, folder) in PUBLISHED_SOURCES.items():
        if url.startswith(base):
            return repo, folder + url[len(base) :]
    return "", ""


def _download(url: str) -> bytes:
    try:
        return download(url)
    except (urllib.error.URLError, OSError) as exc:
        raise LockError(f"cannot download {url}: {exc}") from None


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def spec_files_in(directory: Path) -> dict[str, bytes]:
    """The OpenAPI documents (``*.json`` with an ``openapi`` key) in ``directory``, by file name."""
    found: dict[str, bytes] = {}
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError as exc:
        raise LockError(f"cannot read the new specs in {directory}: {exc}") from None
    for path in paths:
        try:
            data = path.read_bytes()
            document = json.loads(data)
        except (OSError, ValueError) as exc:
            raise LockError(f"cannot read the new spec {path}: {exc}") from None
        if isinstance(document, dict) and "openapi" in document:
            found[path.name] = data
    if not found:
        raise LockError(f"no OpenAPI spec (*.json with an 'openapi' key) in {directory}")
    return found


def entry_for(lock: list[LockedSpec], file: str, commit: str) -> LockedSpec:
    """The lock entry of ``file`` at ``commit``: the existing one, or one that
    follows the existing entries' pattern (same repo, folder and published base)."""
    for entry in lock:
        if entry.file == file:
            return replace(entry, upstream_commit=commit)
    if not lock:
        raise LockError(f"cannot derive where {file} is published: the lock has no entries to follow")
    model = lock[0]
    folder = model.upstream_path.rpartition("/")[0]
    return LockedSpec(
        file=file,
        published_url=model.published_url.rsplit("/", 1)[0] + "/" + file,
        upstream_repo=model.upstream_repo,
        upstream_path=f"{folder}/{file}" if folder else file,
        upstream_commit=commit,
        sha256="",
    )


def download_at(lock: list[LockedSpec], commit: str, extra_files: list[str] | None = None) -> dict[str, bytes]:
    """The locked files plus ``extra_files``, downloaded at ``commit``; a file
    that is not there (404) was removed upstream and is left out."""
    files = [e.file for e in lock] + sorted(set(extra_files or []) - {e.file for e in lock})
    found: dict[str, bytes] = {}
    for file in files:
        url = entry_for(lock, file, commit).pinned_url
        try:
            found[file] = download(url)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise LockError(f"cannot download {url}: {exc}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise LockError(f"cannot download {url}: {exc}") from None
    if not found:
        raise LockError(f"none of {', '.join(files)} exists at {commit}")
    return found


def relock(lock: list[LockedSpec], new: dict[str, bytes], commit: str | None) -> list[LockedSpec]:
    """The lock for exactly the files in ``new``: kept entries in their order, then added files by name."""
    kept = [e.file for e in lock if e.file in new]
    added = sorted(set(new) - set(kept))
    existing = {e.file: e for e in lock}
    result = []
    for file in kept + added:
        entry = existing.get(file) or entry_for(lock, file, commit or lock[0].upstream_commit)
        result.append(replace(entry, sha256=sha256(new[file]), upstream_commit=commit or entry.upstream_commit))
    return result


def warn(message: str) -> None:
    print(message, file=sys.stderr)
