"""External ``$ref``s (a spec referencing another published document by URL):
resolved from the locked documents only, locked by ``update-specs``, covered by
the change report, and refused clearly when they cannot be resolved."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from generator_helpers import (
    LOCK,
    SEND,
    SPEC_FILES,
    STATUS,
    LocalServer,
    dump,
    locked_documents,
    official_raw,
    run_cli,
    static_files,
    write_specs,
)

from generator import refs, specs
from generator.normalize import SpecError, build_api

COMMON = "https://developers.fiks.ks.no/api/fiks-common.json"
ERROR_REF = COMMON + "#/components/schemas/ErrorMessage"
COMMIT = "c" * 40

pytestmark = pytest.mark.usefixtures("no_proxy_env")


def raw_specs() -> dict[str, Any]:
    return {name: json.loads(data) for name, data in official_raw().items()}


def common() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(locked_documents()["fiks-common.json"])
    return data


def test_the_lock_pins_the_referenced_document_like_a_spec() -> None:
    (entry,) = specs.read_references()
    assert entry.file == "fiks-common.json"
    assert entry.published_url == COMMON
    assert (entry.upstream_repo, entry.upstream_path) == ("ks-no/ks-no.github.io", "api/fiks-common.json")
    assert len(entry.upstream_commit) == 40
    assert (
        entry.pinned_url
        == f"https://raw.githubusercontent.com/ks-no/ks-no.github.io/{entry.upstream_commit}/api/fiks-common.json"
    )
    assert specs.sha256(locked_documents()["fiks-common.json"]) == entry.sha256
    assert refs.documents_of(raw_specs()) == [COMMON]


def test_a_schema_reference_imports_the_schema_under_its_name() -> None:
    bundled = refs.bundle(raw_specs(), {COMMON: common()})
    for file in (SEND, STATUS):
        assert (
            bundled[file]["components"]["schemas"]["ErrorMessage"] == common()["components"]["schemas"]["ErrorMessage"]
        )
        assert not refs.external_refs({file: bundled[file]})
    api = build_api(bundled)
    assert {o.error_model for o in api.operations} == {"ErrorMessage"}
    assert "ErrorMessage" in api.response_models


def test_bundling_does_not_change_its_input() -> None:
    original = raw_specs()
    before = copy.deepcopy(original)
    refs.bundle(original, {COMMON: common()})
    assert original == before


def test_a_reference_to_something_else_than_a_schema_is_copied_in_place() -> None:
    spec = raw_specs()
    (path,) = [p for p in spec[SEND]["paths"] if p.endswith("/person")]
    param = {"$ref": COMMON + "#/components/parameters/page"}
    spec[SEND]["paths"][path]["post"].setdefault("parameters", []).append(param)
    bundled = refs.bundle(spec, {COMMON: common()})
    assert bundled[SEND]["paths"][path]["post"]["parameters"][-1] == common()["components"]["parameters"]["page"]


def test_an_unlocked_document_is_refused_naming_reference_spec_and_operation() -> None:
    with pytest.raises(SpecError) as caught:
        refs.bundle(raw_specs(), {})
    message = str(caught.value)
    assert ERROR_REF in message and "is not locked" in message
    # The first reference found, by spec file: the spec and the operation it is in.
    assert re.search(r"in forsendelse-[a-z]+-api-v\d\.json \(operation \w+\)", message), message


def test_a_pointer_that_does_not_resolve_is_refused_naming_it() -> None:
    spec = raw_specs()
    text = json.dumps(spec[STATUS]).replace(ERROR_REF, COMMON + "#/components/schemas/Feilmelding")
    spec[STATUS] = json.loads(text)
    with pytest.raises(SpecError) as caught:
        refs.bundle(spec, {COMMON: common()})
    message = str(caught.value)
    assert "#/components/schemas/Feilmelding" in message and "no 'Feilmelding'" in message
    assert f"in {STATUS} (operation hentStatuser)" in message


def test_an_imported_schema_may_not_shadow_one_the_spec_defines() -> None:
    spec = raw_specs()
    spec[STATUS]["components"]["schemas"]["ErrorMessage"] = {"type": "object", "properties": {"x": {"type": "string"}}}
    with pytest.raises(SpecError, match="defines its own schema 'ErrorMessage'"):
        refs.bundle(spec, {COMMON: common()})


def test_a_referenced_document_with_its_own_local_references_is_followed() -> None:
    document = common()
    schemas = document["components"]["schemas"]
    schemas["ErrorMessage"]["properties"]["detaljer"] = {"$ref": "#/components/schemas/Detalj"}
    schemas["Detalj"] = {"type": "object", "properties": {"felt": {"type": "string"}}}
    bundled = refs.bundle(raw_specs(), {COMMON: document})
    imported = bundled[STATUS]["components"]["schemas"]
    assert imported["ErrorMessage"]["properties"]["detaljer"] == {"$ref": "#/components/schemas/Detalj"}
    assert imported["Detalj"] == schemas["Detalj"]
    build_api(bundled)


# --- through the generator's commands -------------------------------------------------------


def test_generate_fails_naming_the_reference_when_the_document_is_not_locked(tmp_path: Path, tmp_lock: Path) -> None:
    data = json.loads(tmp_lock.read_text())
    del data["references"]
    tmp_lock.write_text(json.dumps(data))
    result = run_cli("--lock", str(tmp_lock), "generate", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert ERROR_REF in result.stderr and "is not locked" in result.stderr
    assert re.search(r"\(operation \w+\)", result.stderr), result.stderr
    assert not (tmp_path / "out").exists()


def test_a_referenced_document_is_verified_by_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changed = common()
    changed["components"]["schemas"]["ErrorMessage"]["properties"]["ny"] = {"type": "string"}
    specs_dir = write_specs(tmp_path / "specs", {"fiks-common.json": changed}, official_raw())
    monkeypatch.setattr(specs, "SHARED_SPECS", tmp_path / "no-shared-specs")
    with pytest.raises(specs.LockError) as caught:
        specs.load_references(specs_dir, allow_download=False)
    assert f"{specs_dir / 'fiks-common.json'}: another sha256" in str(caught.value)
    # The right bytes beside the specs are taken.
    write_specs(specs_dir, {}, locked_documents())
    assert specs.load_references(specs_dir, allow_download=False) == {COMMON: locked_documents()["fiks-common.json"]}


def test_update_specs_locks_a_changed_referenced_document_and_reports_where_it_lands(
    tmp_path: Path, tmp_lock: Path
) -> None:
    changed = common()
    changed["components"]["schemas"]["ErrorMessage"]["properties"]["errorJson"] = {"type": "object"}
    new_dir = write_specs(tmp_path / "new", {"fiks-common.json": changed}, official_raw())
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text("# Changelog\n\n## [Unreleased]\n\n## [0.1.0]\n")
    result = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", COMMIT,
        "--from-dir", str(new_dir), "--changelog", str(changelog),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "~ field ErrorMessage.errorJson: type string -> object" in " ".join(lines) or any(
        "ErrorMessage.errorJson" in line for line in lines
    ), result.stdout
    (changed_line,) = [line for line in lines if line.startswith("~ referenced document fiks-common.json")]
    assert "operation hentStatuser" in changed_line and "operation sendTilPerson" in changed_line
    # Locked by content: its upstream commit was not given.
    (entry,) = specs.read_references(tmp_lock)
    assert entry.sha256 == specs.sha256(dump(changed)) and entry.upstream_commit == "" and entry.retrieved
    assert "note: fiks-common.json is locked by content only" in result.stdout
    assert [e.file for e in specs.read_lock(tmp_lock)] == list(SPEC_FILES)
    # fiks-common.json is a referenced document, never a spec of its own.
    assert "spec file fiks-common.json" not in result.stdout
    assert specs.read_lock(LOCK) != specs.read_lock(tmp_lock)


def test_update_specs_pins_a_referenced_document_at_the_commit_given(tmp_path: Path, tmp_lock: Path) -> None:
    new_dir = write_specs(tmp_path / "new", {}, {**official_raw(), **locked_documents()})
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text("# Changelog\n\n## [Unreleased]\n\n## [0.1.0]\n")
    result = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", COMMIT, "--from-dir", str(new_dir),
        "--ref-commit", f"fiks-common.json={'d' * 40}", "--changelog", str(changelog),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (entry,) = specs.read_references(tmp_lock)
    assert (entry.upstream_commit, entry.retrieved) == ("d" * 40, "")
    wrong = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", COMMIT, "--from-dir", str(new_dir),
        "--ref-commit", "annet.json=abc", "--changelog", str(changelog),
    )  # fmt: skip
    assert wrong.returncode == 2
    assert "--ref-commit names annet.json, which the new specs do not reference" in wrong.stderr


def test_a_spec_that_stops_referencing_the_document_drops_it_from_the_lock(tmp_path: Path, tmp_lock: Path) -> None:
    bundled = refs.bundle(raw_specs(), {COMMON: common()})
    new_dir = write_specs(tmp_path / "new", bundled)
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text("# Changelog\n\n## [Unreleased]\n\n## [0.1.0]\n")
    result = run_cli(
        "--lock", str(tmp_lock), "update-specs", "--commit", COMMIT,
        "--from-dir", str(new_dir), "--changelog", str(changelog),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert specs.read_references(tmp_lock) == []
    assert "references" not in json.loads(tmp_lock.read_text())
    assert f"- referenced document fiks-common.json ({COMMON}): no longer referenced" in result.stdout.splitlines()


def test_check_upstream_reports_a_change_inside_the_referenced_document() -> None:
    changed = common()
    changed["components"]["schemas"]["ErrorMessage"]["properties"]["errorJson"] = {"type": "object"}
    files = {**official_raw(), "fiks-common.json": dump(changed)}
    with LocalServer(static_files({f"/api/{n}": d for n, d in files.items()})) as server:
        result = run_cli("check-upstream", "--published-base", server.url + "/api")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "published specs differ in content from specs/lock.json: fiks-common.json"
    assert any("ErrorMessage.errorJson" in line for line in lines), result.stdout
