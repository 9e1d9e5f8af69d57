"""The spec lock: where the locked specs come from and how they are verified,
the pinned download fallback, check-upstream, update-specs, and the change
report."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from generator_helpers import (
    LOCK,
    OFFICIAL_SPECS,
    SEND,
    SPEC_FILES,
    STATUS,
    LocalServer,
    dump,
    locked_documents,
    official_raw,
    official_specs,
    ref,
    require_history,
    run_cli,
    schemas,
    static_files,
    write_specs,
)

from generator import report, specs

NEW_COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


# Generator subprocesses reach only local servers, and find the specs as a fresh clone would.
pytestmark = pytest.mark.usefixtures("no_proxy_env")


def copy_official(directory: Path) -> Path:
    return write_specs(directory, {}, official_raw())


def modified_send(directory: Path) -> Path:
    """A copy of the official specs whose send spec gained a trailing newline."""
    copy_official(directory)
    (directory / SEND).write_bytes(official_raw()[SEND] + b"\n")
    return directory


# --- load_locked ---------------------------------------------------------------------


def test_the_lock_pins_the_official_specs() -> None:
    lock = specs.read_lock()
    assert [e.file for e in lock] == list(SPEC_FILES)
    for entry in lock:
        assert entry.sha256 == specs.sha256((OFFICIAL_SPECS / entry.file).read_bytes())
        assert len(entry.upstream_commit) == 40
    assert specs.load_locked(lock=lock) == official_raw()


def test_explicit_dir_with_the_locked_bytes_is_used(tmp_path: Path) -> None:
    directory = copy_official(tmp_path / "specs")
    assert specs.load_locked(directory) == official_raw()


def test_explicit_dir_with_a_modified_spec_is_refused(tmp_path: Path) -> None:
    directory = modified_send(tmp_path / "specs")
    with pytest.raises(specs.LockError) as excinfo:
        specs.load_locked(directory)
    message = str(excinfo.value)
    assert str(directory / SEND) in message
    assert "does not match specs/lock.json" in message
    assert "make update-specs" in message
    assert specs.sha256((directory / SEND).read_bytes()) in message


def test_explicit_dir_from_the_environment_is_verified_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVARUT_SPECS_DIR", str(modified_send(tmp_path / "specs")))
    with pytest.raises(specs.LockError, match=r"does not match specs/lock\.json"):
        specs.load_locked()


def test_explicit_dir_missing_a_spec_is_refused(tmp_path: Path) -> None:
    directory = copy_official(tmp_path / "specs")
    (directory / STATUS).unlink()
    with pytest.raises(specs.LockError, match=re.escape(f"{STATUS} is not in {directory}")):
        specs.load_locked(directory)


@pytest.mark.parametrize("kind", ["missing", "empty", "regular file"])
def test_cli_with_a_bad_specs_dir_exits_2_with_a_one_line_error(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "specs"
    if kind == "empty":
        bad.mkdir()
    elif kind == "regular file":
        bad.write_text("not a directory")
    out = tmp_path / "out"

    result = run_cli("--specs-dir", str(bad), "generate", "--out", str(out))

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert str(bad) in lines[0]
    assert not out.exists()


def test_cli_with_a_modified_spec_exits_2_naming_the_remedy(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("--specs-dir", str(modified_send(tmp_path / "specs")), "generate", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert "does not match specs/lock.json" in result.stderr
    assert "make update-specs" in result.stderr
    assert not out.exists()


# --- fallback: the download pinned to the locked commit ------------------------------------


def pinned_files(lock: list[specs.LockedSpec], raw: dict[str, bytes]) -> dict[str, bytes]:
    return {f"/{e.upstream_repo}/{e.upstream_commit}/{e.upstream_path}": raw[e.file] for e in lock}


@pytest.fixture
def no_shared_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "shared-specs"
    empty.mkdir()
    monkeypatch.setattr(specs, "SHARED_SPECS", empty)
    return empty


def test_missing_shared_specs_are_downloaded_at_the_locked_commit(
    tmp_lock: Path, no_shared_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = specs.read_lock(tmp_lock)
    with LocalServer(static_files(pinned_files(lock, official_raw()))) as server:
        monkeypatch.setattr(specs, "PINNED_URL", server.url + "/{repo}/{commit}/{path}")
        loaded = specs.load_locked(lock=lock)

    assert loaded == official_raw()
    assert sorted(r.path for r in server.requests) == sorted(
        f"/ks-no/fiks-svarut-specs/{e.upstream_commit}/specs/{e.file}" for e in lock
    )
    assert all(lock[0].upstream_commit in r.path for r in server.requests)


def test_a_shared_copy_with_the_wrong_bytes_falls_back_to_the_download(
    tmp_lock: Path, no_shared_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modified_send(no_shared_specs)
    lock = specs.read_lock(tmp_lock)
    with LocalServer(static_files(pinned_files(lock, official_raw()))) as server:
        monkeypatch.setattr(specs, "PINNED_URL", server.url + "/{repo}/{commit}/{path}")
        assert specs.load_locked(lock=lock) == official_raw()
    assert [r.path.rsplit("/", 1)[1] for r in server.requests] == [SEND]


def test_a_download_with_the_wrong_bytes_is_refused(
    tmp_lock: Path, no_shared_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = specs.read_lock(tmp_lock)
    raw = official_raw()
    raw[SEND] += b" "
    with LocalServer(static_files(pinned_files(lock, raw))) as server:
        monkeypatch.setattr(specs, "PINNED_URL", server.url + "/{repo}/{commit}/{path}")
        with pytest.raises(specs.LockError) as excinfo:
            specs.load_locked(lock=lock)
    assert "does not match specs/lock.json" in str(excinfo.value)
    assert lock[0].upstream_commit in str(excinfo.value)


def test_a_failed_download_says_what_was_tried(
    tmp_lock: Path, no_shared_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = specs.read_lock(tmp_lock)
    with LocalServer(static_files({})) as server:
        monkeypatch.setattr(specs, "PINNED_URL", server.url + "/{repo}/{commit}/{path}")
        with pytest.raises(specs.LockError) as excinfo:
            specs.load_locked(lock=lock)
    message = str(excinfo.value)
    assert f"cannot find {SEND} with sha256 {lock[0].sha256}" in message
    assert str(no_shared_specs / SEND) in message
    assert "404" in message


def test_no_download_when_not_allowed(tmp_lock: Path, no_shared_specs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = specs.read_lock(tmp_lock)
    with LocalServer(static_files(pinned_files(lock, official_raw()))) as server:
        monkeypatch.setattr(specs, "PINNED_URL", server.url + "/{repo}/{commit}/{path}")
        with pytest.raises(specs.LockError, match="cannot find"):
            specs.load_locked(lock=lock, allow_download=False)
    assert server.requests == []


# --- check-upstream ------------------------------------------------------------------------


def published(raw: dict[str, bytes]) -> dict[str, bytes]:
    """``raw`` as the site serves it, with the locked documents the specs reference beside it."""
    return {f"/api/{name}": data for name, data in {**locked_documents(), **raw}.items()}


def raw_specs() -> dict[str, Any]:
    """The locked specs parsed as upstream has them (external references unresolved)."""
    return {name: json.loads(data) for name, data in official_raw().items()}


def changed_send_spec() -> dict[str, Any]:
    changed = raw_specs()
    send = schemas(changed)
    send["PersonForsendelse"]["properties"]["leveringsPrioritet"] = {"type": "string"}
    send["SvarSendesTil"]["properties"]["type"]["enum"].append("KOMMUNE")
    send["Mottaker"]["required"].append("adresse")
    del changed[SEND]["paths"]["/v3/kontoer/{kontoId}/forsendelser/print"]
    send["Kontaktinfo"] = {"type": "object", "properties": {"epost": {"type": "string"}}}
    return changed


def test_check_upstream_passes_when_the_published_specs_match() -> None:
    with LocalServer(static_files(published(official_raw()))) as server:
        result = run_cli("check-upstream", "--published-base", server.url + "/api")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "published specs match specs/lock.json (content)" in result.stdout
    expected = [*SPEC_FILES, *locked_documents()]
    assert sorted(r.path for r in server.requests) == sorted(f"/api/{name}" for name in expected)


def test_check_upstream_reports_each_change() -> None:
    raw = official_raw()
    raw[SEND] = dump(changed_send_spec()[SEND])
    with LocalServer(static_files(published(raw))) as server:
        result = run_cli("check-upstream", "--published-base", server.url + "/api/")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"published specs differ in content from specs/lock.json: {SEND}"
    assert lines[1].startswith(f"  {SEND}: ")
    for expected in (
        "+ field PersonForsendelse.leveringsPrioritet (optional, string)",
        "+ enum value SvarSendesTilType.KOMMUNE",
        "~ field Mottaker.adresse: optional -> required",
        "- operation sendTilPrint: POST /v3/kontoer/{kontoId}/forsendelser/print",
        "+ schema Kontaktinfo",
    ):
        assert expected in lines, result.stdout
    assert not [line for line in lines if "operation" in line and "sendTilPrint" not in line]


def test_check_upstream_compares_content_not_bytes() -> None:
    """The site re-serializes every document (keys reordered, indent=2): the same content is no change."""

    def reserialized(data: bytes) -> bytes:
        parsed = json.loads(data)
        reordered = dict(sorted(parsed.items(), reverse=True)) if isinstance(parsed, dict) else parsed
        return json.dumps(reordered, indent=2, ensure_ascii=False).encode()

    raw = {name: reserialized(data) for name, data in {**official_raw(), **locked_documents()}.items()}
    assert all(raw[name] != data for name, data in official_raw().items())
    with LocalServer(static_files(published(raw))) as server:
        result = run_cli("check-upstream", "--published-base", server.url + "/api")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["published specs match specs/lock.json (content)"]


def test_check_upstream_reads_a_directory_of_published_files(tmp_path: Path) -> None:
    directory = write_specs(tmp_path / "published", {}, {**official_raw(), **locked_documents()})
    result = run_cli("check-upstream", "--published-base", str(directory))
    assert result.returncode == 0, result.stdout + result.stderr
    (directory / SEND).unlink()
    result = run_cli("check-upstream", "--published-base", str(directory))
    assert result.returncode == 2
    assert result.stderr == f"error: {SEND} is not in {directory} (given as the published base)\n"


def test_check_upstream_unreachable_exits_2() -> None:
    with LocalServer(static_files({})) as server:
        result = run_cli("check-upstream", "--published-base", server.url + "/api")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: cannot download {server.url}/api/{SEND}")
    assert "Traceback" not in result.stderr


# --- update-specs -----------------------------------------------------------------------------


def test_update_specs_relocks_the_given_lock_and_reports(tmp_path: Path, tmp_lock: Path) -> None:
    repo_lock = LOCK.read_bytes()
    repo_changelog = CHANGELOG.read_bytes()
    changed = official_specs()
    schemas(changed)["PersonForsendelse"]["properties"]["leveringsPrioritet"] = {"type": "string"}
    new_dir = write_specs(
        tmp_path / "new", {SEND: changed[SEND]}, {n: d for n, d in official_raw().items() if n != SEND}
    )
    before = specs.read_lock(tmp_lock)

    changelog = tmp_path / "CHANGELOG.md"
    result = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", NEW_COMMIT, "--from-dir", str(new_dir),
        "--changelog", str(changelog),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "+ field PersonForsendelse.leveringsPrioritet (optional, string)" in changelog.read_text()
    assert "+ field PersonForsendelse.leveringsPrioritet (optional, string)" in result.stdout.splitlines()
    assert f"now pins {NEW_COMMIT}" in result.stdout
    after = specs.read_lock(tmp_lock)
    assert [e.file for e in after] == [e.file for e in before]
    for old, new in zip(before, after, strict=True):
        assert new.upstream_commit == NEW_COMMIT
        assert new.sha256 == specs.sha256((new_dir / new.file).read_bytes())
        assert (new.published_url, new.upstream_repo, new.upstream_path) == (
            old.published_url,
            old.upstream_repo,
            old.upstream_path,
        )
    assert after[0].sha256 != before[0].sha256
    assert after[1].sha256 == before[1].sha256
    assert json.loads(tmp_lock.read_text())["comment"] == json.loads(repo_lock)["comment"]
    # the new lock accepts the new specs
    assert specs.load_locked(new_dir, lock=after)[SEND] == (new_dir / SEND).read_bytes()
    assert LOCK.read_bytes() == repo_lock
    assert CHANGELOG.read_bytes() == repo_changelog


def test_update_specs_refuses_a_spec_the_generator_cannot_represent(tmp_path: Path, tmp_lock: Path) -> None:
    repo_lock = LOCK.read_bytes()
    locked = tmp_lock.read_bytes()
    changed = official_specs()
    person = changed[SEND]["paths"]["/v3/kontoer/{kontoId}/forsendelser/person"]["post"]
    person["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["kopi"] = ref("Mottaker")
    new_dir = write_specs(tmp_path / "new", changed)

    changelog = tmp_path / "CHANGELOG.md"
    result = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", NEW_COMMIT, "--from-dir", str(new_dir),
        "--changelog", str(changelog),
    )  # fmt: skip

    assert result.returncode == 2, result.stdout + result.stderr
    assert not changelog.exists()
    assert result.stderr.startswith("error: sendTilPerson: ")
    assert tmp_lock.read_bytes() == locked
    assert LOCK.read_bytes() == repo_lock


# --- report.diff ------------------------------------------------------------------------------


def one_spec(components: dict[str, Any], paths: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"a.json": {"paths": paths or {}, "components": {"schemas": components}}}


BASE = {
    "M": {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "string", "maxLength": 10},
            "b": {"type": "integer"},
            "c": {"type": "string", "format": "uuid"},
            "d": {"type": "array", "items": {"type": "string"}},
        },
    },
    "E": {"type": "string", "enum": ["X", "Y"]},
}
OPS = {"/m": {"post": {"operationId": "lagM"}, "get": {"operationId": "hentM"}}}


def changed_base(change: Any) -> list[str]:
    old = one_spec(copy.deepcopy(BASE), copy.deepcopy(OPS))
    new = copy.deepcopy(old)
    change(new["a.json"])
    return texts(report.diff(old, new))


def texts(changes: list[report.Change]) -> list[str]:
    return [c.text for c in changes]


def test_diff_of_identical_specs_is_empty() -> None:
    assert changed_base(lambda spec: None) == []
    assert report.render([]) == "no structural changes"
    assert report.diff(official_specs(), official_specs()) == []


def test_diff_fields_added_and_removed() -> None:
    def change(spec: dict[str, Any]) -> None:
        props = spec["components"]["schemas"]["M"]["properties"]
        props["e"] = {"type": "boolean"}
        props["f"] = {"$ref": "#/components/schemas/E"}
        spec["components"]["schemas"]["M"]["required"].append("f")
        del props["b"]

    assert changed_base(change) == [
        "- field M.b",
        "+ field M.e (optional, boolean)",
        "+ field M.f (required, E: X, Y)",
    ]


def test_diff_required_ness() -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["components"]["schemas"]["M"]["required"] = ["b"]

    assert changed_base(change) == ["~ field M.a: required -> optional", "~ field M.b: optional -> required"]


def test_diff_enum_values_added_and_removed() -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["components"]["schemas"]["E"]["enum"] = ["X", "Z"]

    assert changed_base(change) == ["+ enum value E.Z", "- enum value E.Y"]


def test_diff_operations_added_removed_and_moved() -> None:
    def change(spec: dict[str, Any]) -> None:
        del spec["paths"]["/m"]["get"]
        spec["paths"]["/m"]["put"] = {"operationId": "endreM"}
        spec["paths"]["/m2"] = {"post": spec["paths"]["/m"].pop("post")}

    assert changed_base(change) == [
        "+ operation endreM: PUT /m",
        "- operation hentM: GET /m",
        "~ operation lagM: POST /m -> POST /m2",
    ]


def test_diff_type_changes() -> None:
    def change(spec: dict[str, Any]) -> None:
        props = spec["components"]["schemas"]["M"]["properties"]
        props["b"] = {"type": "string"}
        props["c"] = {"type": "string", "format": "date-time"}
        props["d"] = {"type": "array", "items": {"type": "integer"}}

    assert changed_base(change) == [
        "~ field M.b: type integer -> string",
        "~ field M.c: type string(uuid) -> string(date-time)",
        "~ field M.d: type array<string> -> array<integer>",
    ]


def test_diff_constraints_and_descriptions() -> None:
    def change(spec: dict[str, Any]) -> None:
        props = spec["components"]["schemas"]["M"]["properties"]
        props["a"]["maxLength"] = 20
        props["b"]["description"] = "only the words changed"

    assert changed_base(change) == ['~ field M.a: constraints {"maxLength": 10} -> {"maxLength": 20}']


def test_diff_schemas_added_and_removed() -> None:
    def change(spec: dict[str, Any]) -> None:
        del spec["components"]["schemas"]["E"]
        spec["components"]["schemas"]["N"] = {"type": "string", "enum": ["P", "Q"]}

    assert changed_base(change) == ["- schema E", "+ schema N (enum: P, Q)"]


def test_diff_a_schema_with_the_same_values_under_a_new_name_is_a_rename() -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["components"]["schemas"]["N"] = spec["components"]["schemas"].pop("E")

    assert changed_base(change) == ["~ schema E renamed -> N: models.E is now models.N"]


def test_diff_names_inline_and_primitive_schemas_as_the_generator_does() -> None:
    changed = official_specs()
    send = schemas(changed)
    person = send["PersonForsendelse"]["properties"]["dokumenter"]["items"]
    person["properties"]["sideantall"] = {"type": "integer"}
    send["SvarSendesTil"]["properties"]["type"]["enum"].remove("NHN_MOTTAKER")
    send["tittel"]["maxLength"] = 500
    lines = texts(report.diff(official_specs(), changed))
    assert "+ field PersonDokument.sideantall (optional, integer)" in lines
    assert "- enum value SvarSendesTilType.NHN_MOTTAKER" in lines
    constraints = '{"maxLength": 1000, "minLength": 1} -> {"maxLength": 500, "minLength": 1}'
    assert f"~ field PersonForsendelse.tittel: constraints {constraints}" in lines
    assert not [line for line in lines if "schema" in line]


def test_check_upstream_against_what_the_site_published_in_2026(tmp_path: Path) -> None:
    """The files of ``../shared/specs/published-2026``: re-serialized by the site,
    one older than the lock and one not in the upstream history. Only content
    differences are reported, with which side is newer where the history tells."""
    history = require_history()
    site = history.parent / "published-2026"
    # The site's copies of the two v3 specs; the other locked files as locked.
    locked = {**official_raw(), **locked_documents()}
    directory = write_specs(
        tmp_path / "published", {}, {**locked, **{p.name: p.read_bytes() for p in site.glob("*.json")}}
    )
    result = run_cli("check-upstream", "--published-base", str(directory))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"published specs differ in content from specs/lock.json: {SEND}, {STATUS}",
        f"  {SEND}: the published content is upstream version 14-8320373, older than the lock (17-2e173af)",
        f"  {STATUS}: the published content matches no upstream version at hand: cannot tell which is newer",
    ]
    # The send spec of 8320373 has no svarSendesTil.type, which c75eba9 added; the site's status spec
    # has the same statuses as the lock, so no status line is reported.
    assert "- field SvarSendesTil.type" in lines
    assert not [line for line in lines if "Status." in line]


def test_check_upstream_passes_against_the_newest_upstream_version(tmp_path: Path) -> None:
    """The files of the newest upstream version, with the eksternRef lookup published beside them."""
    history = require_history()
    newest = sorted(history.glob("[0-9][0-9]-*"))[-1]
    files = [*newest.glob("*.json"), history.parent / "upstream-2026" / "forsendelse-eksternref-api-v2.json"]
    directory = write_specs(tmp_path / "published", {}, {p.name: p.read_bytes() for p in files})
    result = run_cli("check-upstream", "--published-base", str(directory))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "published specs match specs/lock.json (content)\n"
