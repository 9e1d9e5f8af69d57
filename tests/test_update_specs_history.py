"""update-specs across real upstream commits: spec files removed and added,
from a directory or downloaded (from a local server standing in for
raw.githubusercontent.com), the lock following them, and the CHANGELOG entry.
Every run relocks a temporary copy of the lock and writes a temporary CHANGELOG."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from generator_helpers import (
    HISTORY,
    LOCK,
    LOOKUP,
    OFFICIAL_SPECS,
    SEND,
    SPEC_FILES,
    STATUS,
    LocalServer,
    locked_documents,
    official_raw,
    require_history,
    run_cli,
    static_files,
)

from generator import specs
from generator.__main__ import main

V01 = "7af4ef2eaa964fb20f510a8acd58fdd215a23106"
V02 = "abc3296270cd3b34b7c09af61e9a595593aba7d1"
NEW_COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


def version_dir(version: str) -> Path:
    require_history()
    (folder,) = HISTORY.glob(f"{version}-*")
    return folder


# Generator subprocesses reach only local servers, and find the specs as a fresh clone would.
pytestmark = pytest.mark.usefixtures("no_proxy_env")


def test_relock_today_to_01_drops_the_status_spec_and_01_to_02_adds_it_back(tmp_path: Path, tmp_lock: Path) -> None:
    repo_lock, repo_changelog = LOCK.read_bytes(), REPO_CHANGELOG.read_bytes()
    changelog = tmp_path / "CHANGELOG.md"
    shutil.copyfile(REPO_CHANGELOG, changelog)
    before = specs.read_lock(tmp_lock)

    down = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", V01,
        "--from-dir", str(version_dir("01")), "--changelog", str(changelog),
    )  # fmt: skip

    assert down.returncode == 0, down.stdout + down.stderr
    lines = down.stdout.splitlines()
    assert "- spec file forsendelse-status-api-v3.json" in lines
    assert "- operation hentStatuser: POST /v3/kontoer/{kontoId}/forsendelser/status/sok" in lines
    assert f"- spec file {LOOKUP}" in lines  # version 01 has no eksternRef lookup either
    breaking = next(i for i, line in enumerate(lines) if line.startswith("Breaking for callers ("))
    assert lines.index("- spec file forsendelse-status-api-v3.json") > breaking
    after_down = specs.read_lock(tmp_lock)
    assert [e.file for e in after_down] == [SEND]
    assert after_down[0].upstream_commit == V01
    assert after_down[0].sha256 == specs.sha256((version_dir("01") / SEND).read_bytes())
    assert (after_down[0].published_url, after_down[0].upstream_path) == (
        before[0].published_url,
        before[0].upstream_path,
    )

    up = run_cli(
        "--specs-dir", str(version_dir("01")), "--lock", str(tmp_lock), "update-specs", "--commit", V02,
        "--from-dir", str(version_dir("02")), "--changelog", str(changelog),
    )  # fmt: skip

    assert up.returncode == 0, up.stdout + up.stderr
    lines = up.stdout.splitlines()
    assert lines[0] == "Additive (11):"
    assert "+ spec file forsendelse-status-api-v3.json" in lines
    assert "+ operation hentStatuser: POST /v3/kontoer/{kontoId}/forsendelser/status" in lines
    after_up = specs.read_lock(tmp_lock)
    assert [e.file for e in after_up] == [SEND, STATUS]
    added = after_up[1]
    # derived from the pattern of the remaining entry, as the original lock had it
    assert (added.published_url, added.upstream_repo, added.upstream_path) == (
        before[1].published_url,
        before[1].upstream_repo,
        before[1].upstream_path,
    )
    assert (added.upstream_commit, added.sha256) == (V02, specs.sha256((version_dir("02") / STATUS).read_bytes()))
    assert specs.load_locked(version_dir("02"), lock=after_up).keys() == {SEND, STATUS}

    text = changelog.read_text()
    unreleased = text.split("## [Unreleased]")[1].split("## [0.2.0]")[0]
    assert "### Spec update to 7af4ef2" in unreleased
    assert "### Spec update to abc3296" in unreleased
    assert "- `- spec file forsendelse-status-api-v3.json`" in unreleased
    assert "- `+ spec file forsendelse-status-api-v3.json`" in unreleased
    assert "Recommended next version: 0.3.0 (from 0.2.0;" in unreleased
    assert "Calls for a patch release: 0.2.0 -> 0.2.1" in unreleased.split("### Spec update to abc3296")[1]
    assert f"CHANGELOG.md: added 'Spec update to {V02[:7]}' under Unreleased (recommends 0.3.0)." in lines

    # the relocked lock generates
    out = tmp_path / "generated"
    generated = run_cli("--specs-dir", str(version_dir("02")), "--lock", str(tmp_lock), "generate", "--out", str(out))
    assert generated.returncode == 0, generated.stderr
    assert "def hent_statuser(" in (out / "client.py").read_text()
    assert LOCK.read_bytes() == repo_lock
    assert REPO_CHANGELOG.read_bytes() == repo_changelog


def test_check_upstream_does_not_write_the_changelog(tmp_path: Path) -> None:
    repo_changelog = REPO_CHANGELOG.read_bytes()
    raw = {f"/api/{name}": data for name, data in {**official_raw(), **locked_documents()}.items()}
    raw[f"/api/{SEND}"] = (version_dir("14") / SEND).read_bytes()
    with LocalServer(static_files(raw)) as server:
        result = run_cli("check-upstream", "--published-base", server.url + "/api")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- field SvarSendesTil.type" in result.stdout.splitlines()
    assert REPO_CHANGELOG.read_bytes() == repo_changelog


def pinned(commit: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"/ks-no/fiks-svarut-specs/{commit}/specs/{name}": data for name, data in files.items()}


def test_download_reports_a_404_as_removed_and_adds_files_given_with_file(
    tmp_path: Path, tmp_lock: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = "forsendelse-status-api-v4.json"
    served = pinned(NEW_COMMIT, {SEND: official_raw()[SEND], renamed: official_raw()[STATUS]})
    changelog = tmp_path / "CHANGELOG.md"
    with LocalServer(static_files(served)) as server:
        monkeypatch.setattr(specs, "PINNED_URL", server.url + "/{repo}/{commit}/{path}")
        code = main(
            ["--specs-dir", str(OFFICIAL_SPECS), "--lock", str(tmp_lock), "update-specs", "--commit", NEW_COMMIT,
             "--file", renamed, "--changelog", str(changelog)]
        )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0, out
    assert sorted(r.path.rsplit("/", 1)[1] for r in server.requests) == sorted([*SPEC_FILES, renamed])
    assert all(f"/{NEW_COMMIT}/specs/" in r.path for r in server.requests)
    lines = out.splitlines()
    assert f"- spec file {STATUS}" in lines
    assert f"+ spec file {renamed}" in lines
    assert f"- spec file {LOOKUP}" in lines  # not at that commit: removed
    # The status spec only moved; what goes is the lookup's.
    lookup = ("EksternRef", "schema Forsendelse")
    moved = [line for line in lines if ("operation" in line or "schema" in line) and not any(w in line for w in lookup)]
    assert moved == [] and "- schema Forsendelse" in lines
    lock = specs.read_lock(tmp_lock)
    assert [e.file for e in lock] == [SEND, renamed]
    assert lock[1].published_url == "https://developers.fiks.ks.no/api/forsendelse-status-api-v4.json"
    assert (lock[1].upstream_repo, lock[1].upstream_path) == ("ks-no/fiks-svarut-specs", f"specs/{renamed}")
    assert lock[1].sha256 == specs.sha256(official_raw()[STATUS])
    assert f"### Spec update to {NEW_COMMIT[:7]}" in changelog.read_text()
    assert json.loads(tmp_lock.read_text())["specs"][0]["upstream_commit"] == NEW_COMMIT


def test_download_failing_other_than_404_changes_nothing(
    tmp_path: Path, tmp_lock: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_lock.read_bytes()
    changelog = tmp_path / "CHANGELOG.md"
    with LocalServer(lambda request: (500, "text/plain", b"upstream trouble")) as server:
        monkeypatch.setattr(specs, "PINNED_URL", server.url + "/{repo}/{commit}/{path}")
        code = main(["--lock", str(tmp_lock), "update-specs", "--commit", NEW_COMMIT, "--changelog", str(changelog)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: cannot download {server.url}/ks-no/fiks-svarut-specs/{NEW_COMMIT}/specs/{SEND}")
    assert "500" in err
    assert tmp_lock.read_bytes() == locked
    assert not changelog.exists()


def test_a_from_dir_without_any_openapi_spec_is_refused(tmp_path: Path, tmp_lock: Path) -> None:
    empty = tmp_path / "new"
    empty.mkdir()
    (empty / "notes.json").write_text('{"not": "a spec"}')
    locked = tmp_lock.read_bytes()
    result = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", NEW_COMMIT, "--from-dir", str(empty),
        "--changelog", str(tmp_path / "CHANGELOG.md"),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no OpenAPI spec (*.json with an 'openapi' key) in {empty}"
    assert tmp_lock.read_bytes() == locked
