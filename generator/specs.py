"""The spec lock, and where the locked spec JSON comes from.

``specs/lock.json`` records, for each spec, its published URL, the upstream
repository, path and commit, and the sha256 of its bytes. The JSON itself is
not committed; it is read from (first match wins):

1. the directory given with ``--specs-dir`` or ``SVARUT_SPECS_DIR``;
2. ``../shared/specs`` next to the project;
3. a download pinned to the locked upstream commit (immutable, so a fresh
   machine reproduces the same output after upstream has moved on).

Whatever the source, the bytes must match the locked sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK_PATH = ROOT / "specs" / "lock.json"
SHARED_SPECS = ROOT.parent / "shared" / "specs"
PINNED_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
LOCK_COMMENT = "Locked upstream SvarUt OpenAPI specs. Rewritten only by `make update-specs`."


class LockError(Exception):
    """The specs cannot be found, or do not match the lock."""


@dataclass(frozen=True)
class LockedSpec:
    file: str
    published_url: str
    upstream_repo: str
    upstream_path: str
    upstream_commit: str
    sha256: str

    @property
    def pinned_url(self) -> str:
        return PINNED_URL.format(repo=self.upstream_repo, commit=self.upstream_commit, path=self.upstream_path)


def read_lock(path: Path = LOCK_PATH) -> list[LockedSpec]:
    data = json.loads(path.read_text())
    return [LockedSpec(**entry) for entry in data["specs"]]


def write_lock(specs: list[LockedSpec], path: Path = LOCK_PATH) -> None:
    data = {"comment": LOCK_COMMENT, "specs": [asdict(s) for s in specs]}
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
        tried: list[str] = []
        if explicit is not None:
            data = _read(explicit / entry.file)
            if data is None:
                raise LockError(f"{entry.file} is not in {explicit} (given with --specs-dir/SVARUT_SPECS_DIR)")
            _verify(entry, data, str(explicit / entry.file))
            result[entry.file] = data
            continue
        data = _read(SHARED_SPECS / entry.file)
        if data is not None and sha256(data) == entry.sha256:
            result[entry.file] = data
            continue
        if data is not None:
            tried.append(f"{SHARED_SPECS / entry.file}: sha256 {sha256(data)} is not the locked one")
        else:
            tried.append(f"{SHARED_SPECS / entry.file}: not found")
        if allow_download:
            try:
                data = download(entry.pinned_url)
            except (urllib.error.URLError, OSError) as exc:
                tried.append(f"{entry.pinned_url}: {exc}")
            else:
                _verify(entry, data, entry.pinned_url)
                result[entry.file] = data
                continue
        raise LockError(f"cannot find {entry.file} with sha256 {entry.sha256}; tried:\n  " + "\n  ".join(tried))
    return result


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
    result = {}
    for entry in lock:
        url = published_url(entry, published_base)
        try:
            result[entry.file] = download(url)
        except (urllib.error.URLError, OSError) as exc:
            raise LockError(f"cannot download {url}: {exc}") from None
    return result


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
