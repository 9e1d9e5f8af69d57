"""The change report: what breaks for callers, on the real upstream history of
the specs (../shared/specs/history) and on small specs that isolate one rule
each; and the CHANGELOG entry update-specs writes from it."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from generator_helpers import HISTORY, ref, require_history, specs_in

from generator import changelog, report
from generator.report import ADDITIVE, BREAKING, NOTABLE


def history(version: str) -> dict[str, Any]:
    """The specs of one upstream version, by its number ("09")."""
    require_history()
    (folder,) = HISTORY.glob(f"{version}-*")
    return specs_in(folder)


def classified(old: dict[str, Any], new: dict[str, Any]) -> dict[str, str]:
    """Report line → impact."""
    changes = report.diff(old, new)
    assert len({c.text for c in changes}) == len(changes), "a line is reported twice"
    return {c.text: c.impact for c in changes}


# --- the real upstream history -------------------------------------------------------------


def test_09_to_10_names_the_nhn_part_rename_as_breaking_for_the_send_til_nhn_argument() -> None:
    lines = classified(history("09"), history("10"))
    rename = "~ part sendTilNhn.vedlegg renamed -> dokument: send_til_nhn(vedlegg=…) is now send_til_nhn(dokument=…)"
    assert lines[rename] == BREAKING
    assert not [line for line in lines if "part sendTilNhn.dokument" in line or "part sendTilNhn.vedlegg:" in line]
    assert lines["+ operation sendTilPrint: POST /v3/kontoer/{kontoId}/forsendelser/print"] == ADDITIVE
    # a schema and a field renamed in the same version are paired, not reported as removed and added
    for line in (
        "~ schema NhnMottakerType renamed -> NhnMottakertype: models.NhnMottakerType is now models.NhnMottakertype",
        "~ field NhnForsendelse.mottakerType renamed -> mottakertype: Python name mottaker_type is now mottakertype",
        "~ field Mottaker.digitalId: optional -> required",
        '~ field Lenke.tekst: constraints {"maxLength": 200, "minLength": 1} -> {"maxLength": 100, "minLength": 1}',
    ):
        assert lines[line] == BREAKING, line
    assert "+ field PrintForsendelse.mottaker (required, Postadresse)" in lines


def test_14_to_15_lists_the_new_required_type_field_with_its_enum_values() -> None:
    lines = classified(history("14"), history("15"))
    assert (
        lines["+ field SvarSendesTil.type (required, SvarSendesTilType: PERSON, ORGANISASJON, NHN_MOTTAKER)"]
        == BREAKING
    )
    assert lines["+ schema SvarSendesTilType (enum: PERSON, ORGANISASJON, NHN_MOTTAKER)"] == ADDITIVE
    # a pattern where there was a length range: a value may be refused now
    constraints = '{"maxLength": 11, "minLength": 9} -> {"pattern": "^\\\\d{1,11}$"}'
    assert lines[f"~ field SvarSendesTil.digitalId: constraints {constraints}"] == BREAKING
    assert len(lines) == 3


def test_11_to_12_reports_the_nhn_size_limit_stated_in_a_description() -> None:
    assert classified(history("11"), history("12")) == {
        "+ limit sendTilNhn.dokument: 18 MB (stated in the description)": NOTABLE
    }


def test_01_to_02_reports_the_added_status_spec_file_and_its_operation() -> None:
    lines = classified(history("01"), history("02"))
    assert lines["+ spec file forsendelse-status-api-v3.json"] == ADDITIVE
    assert lines["+ operation hentStatuser: POST /v3/kontoer/{kontoId}/forsendelser/status"] == ADDITIVE
    statuses = "MOTTATT, AKSEPTERT, AVVIST, VARSLET, LEST, SENDT_PRINT, PRINTET, MANUELT_HANDTERT, SENDT_DIGITALT"
    statuses += (
        ", SENDT_SDP, LEVERT_SDP, KLAR_FOR_MOTTAK, IKKE_LEVERT, SLETTET, SENDT_NHN_MOTTAKER, LEVERT_NHN_MOTTAKER"
    )
    assert lines[f"+ schema Status (enum: {statuses})"] == ADDITIVE
    assert lines[f"+ field ForsendelseStatus.status (required, Status: {statuses})"] == ADDITIVE
    assert lines["+ field ForsendelseStatus.id (required, string(uuid))"] == ADDITIVE
    assert set(lines.values()) == {ADDITIVE}


def test_15_to_01_reports_the_removed_spec_file_and_what_went_with_it() -> None:
    lines = classified(history("15"), history("01"))
    assert lines["- spec file forsendelse-status-api-v3.json"] == BREAKING
    assert lines["- operation hentStatuser: POST /v3/kontoer/{kontoId}/forsendelser/status/sok"] == BREAKING
    assert lines["- schema ForsendelseStatus"] == BREAKING
    assert lines["- security scheme bearerAuth: http bearer JWT"] == BREAKING


def test_13_to_14_reports_the_field_renames() -> None:
    assert classified(history("13"), history("14")) == {
        f"~ field {owner}.kanSvarePaForsendelse renamed -> kanSvareViaEdialog: "
        "Python name kan_svare_pa_forsendelse is now kan_svare_via_edialog": BREAKING
        for owner in ("OrganisasjonForsendelse", "PersonForsendelse")
    }


def test_07_to_08_a_replacement_with_other_constraints_is_not_a_rename() -> None:
    assert classified(history("07"), history("08")) == {
        "- field Adresse.land": BREAKING,
        "+ field Adresse.landkode (optional, string)": ADDITIVE,
    }


def test_08_to_09_reports_the_moved_status_operation() -> None:
    assert classified(history("08"), history("09")) == {
        "~ operation hentStatuser: POST /v3/kontoer/{kontoId}/forsendelser/status -> "
        "POST /v3/kontoer/{kontoId}/forsendelser/status/sok": NOTABLE
    }


def test_12_to_13_a_new_status_is_notable_for_callers_who_receive_it() -> None:
    assert classified(history("12"), history("13")) == {"+ enum value Status.FEILET_UNDER_MOTTAK (received)": NOTABLE}


def test_security_changes_in_the_history() -> None:
    assert classified(history("03"), history("04")) == {
        "+ security requirement bearerAuth: sendTilNhn, sendTilOrganisasjon, sendTilPerson": BREAKING
    }
    assert classified(history("04"), history("05")) == {"+ security scheme bearerAuth: http bearer JWT": ADDITIVE}
    assert classified(history("05"), history("06")) == {"+ security requirement bearerAuth: hentStatuser": BREAKING}


def test_every_line_of_every_upstream_step_is_classified_and_rendered_once() -> None:
    require_history()
    versions = sorted(p.name[:2] for p in HISTORY.glob("[0-9][0-9]-*"))
    assert len(versions) == 17
    for old, new in itertools.pairwise(versions):
        changes = report.diff(history(old), history(new))
        assert all(c.impact in (BREAKING, NOTABLE, ADDITIVE) for c in changes), (old, new)
        rendered = report.render(changes).splitlines()
        breaking = [c.text for c in changes if c.breaking]
        additive = [c.text + ("  [notable]" if c.impact == NOTABLE else "") for c in changes if not c.breaking]
        expected = (
            ([f"Breaking for callers ({len(breaking)}):", *breaking] if breaking else [])
            + ([""] if breaking and additive else [])
            + ([f"Additive ({len(additive)}):", *additive] if additive else [])
        )
        assert rendered == (expected or ["no structural changes"]), (old, new)


def test_the_report_is_deterministic() -> None:
    old, new = history("09"), history("10")
    assert report.diff(old, new) == report.diff(copy.deepcopy(old), copy.deepcopy(new))
    reordered = {name: json.loads(json.dumps(spec, sort_keys=True)) for name, spec in reversed(new.items())}
    assert report.render(report.diff(old, new)) == report.render(report.diff(old, reordered))


# --- one rule at a time ----------------------------------------------------------------------

KONTO = {"name": "kontoId", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def small_api() -> dict[str, Any]:
    """One send (multipart) and one status search (JSON), sharing nothing with the real specs."""

    def ok(model: str) -> dict[str, Any]:
        return {"200": {"description": "ok", "content": {"application/json": {"schema": ref(model)}}}}

    files = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "Vedleggene, til sammen inntil 100 MB og maksimalt 5 vedlegg.",
    }
    return {
        "a.json": {
            "openapi": "3.0.1",
            "security": [{"bearerAuth": []}],
            "paths": {
                "/v3/kontoer/{kontoId}/brev": {
                    "post": {
                        "operationId": "sendBrev",
                        "parameters": [copy.deepcopy(KONTO)],
                        "requestBody": {
                            "content": {
                                "multipart/form-data": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["brev", "vedlegg"],
                                        "properties": {"brev": ref("Brev"), "vedlegg": files},
                                    }
                                }
                            }
                        },
                        "responses": ok("Kvittering"),
                    }
                },
                "/v3/kontoer/{kontoId}/status": {
                    "post": {
                        "operationId": "hentStatus",
                        "parameters": [copy.deepcopy(KONTO)],
                        "requestBody": {"content": {"application/json": {"schema": ref("Sok")}}},
                        "responses": ok("Statuser"),
                    }
                },
            },
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
                "schemas": {
                    "Brev": {
                        "type": "object",
                        "required": ["tittel"],
                        "properties": {
                            "tittel": {"type": "string", "maxLength": 100, "description": "Tittel på brevet"},
                            "prioritet": ref("Prioritet"),
                            "frist": {"type": "integer", "description": "Svarfrist i dager fra i dag."},
                        },
                    },
                    "Prioritet": {"type": "string", "enum": ["NORMAL", "HOY"]},
                    "Kvittering": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                    "Sok": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                    "Statuser": {
                        "type": "object",
                        "properties": {"statuser": {"type": "array", "items": ref("Linje")}},
                    },
                    "Linje": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": ref("Status"), "tidspunkt": {"type": "string", "format": "date-time"}},
                    },
                    "Status": {"type": "string", "enum": ["MOTTATT", "LEST"]},
                },
            },
        }
    }


def changed(mutate: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    old = small_api()
    new = copy.deepcopy(old)
    mutate(new["a.json"])
    return classified(old, new)


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec["components"]["schemas"][name]
    return found


def send(spec: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = spec["paths"]["/v3/kontoer/{kontoId}/brev"]["post"]
    return found


def parts(spec: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = send(spec)["requestBody"]["content"]["multipart/form-data"]["schema"]
    return found


def test_the_small_api_against_itself_is_unchanged() -> None:
    assert changed(lambda spec: None) == {}


def test_request_fields_new_optional_is_additive_new_required_is_breaking() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schema(spec, "Brev")["properties"]["kopi"] = {"type": "boolean"}
        schema(spec, "Brev")["properties"]["mottaker"] = {"type": "string"}
        schema(spec, "Brev")["required"].append("mottaker")

    assert changed(mutate) == {
        "+ field Brev.kopi (optional, boolean)": ADDITIVE,
        "+ field Brev.mottaker (required, string)": BREAKING,
    }


def test_response_fields_new_is_additive_removed_is_breaking() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schema(spec, "Linje")["properties"]["kanal"] = {"type": "string"}
        schema(spec, "Linje")["required"].append("kanal")
        del schema(spec, "Linje")["properties"]["tidspunkt"]

    assert changed(mutate) == {
        "+ field Linje.kanal (required, string)": ADDITIVE,
        "- field Linje.tidspunkt": BREAKING,
    }


def test_required_ness_depends_on_the_direction() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schema(spec, "Brev")["required"] = ["frist"]  # tittel optional, frist required: sent
        schema(spec, "Linje")["required"] = ["tidspunkt"]  # status optional, tidspunkt required: received

    assert changed(mutate) == {
        "~ field Brev.frist: optional -> required": BREAKING,
        "~ field Brev.tittel: required -> optional": ADDITIVE,
        "~ field Linje.status: required -> optional": BREAKING,
        "~ field Linje.tidspunkt: optional -> required": ADDITIVE,
    }


def test_enum_values_depend_on_the_direction() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schema(spec, "Prioritet")["enum"] = ["NORMAL", "LAV"]
        schema(spec, "Status")["enum"] = ["MOTTATT", "LEST", "AVVIST"]

    assert changed(mutate) == {
        "+ enum value Prioritet.LAV": ADDITIVE,
        "- enum value Prioritet.HOY": BREAKING,
        "+ enum value Status.AVVIST (received)": NOTABLE,
    }


def test_a_removed_response_enum_value_is_breaking() -> None:
    assert changed(lambda spec: schema(spec, "Status")["enum"].remove("LEST")) == {"- enum value Status.LEST": BREAKING}


def test_constraints_tightened_break_a_request_loosened_do_not() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schema(spec, "Brev")["properties"]["tittel"]["maxLength"] = 200
        schema(spec, "Brev")["properties"]["frist"]["minimum"] = 1
        schema(spec, "Linje")["properties"]["tidspunkt"]["pattern"] = "^2"

    assert changed(mutate) == {
        '~ field Brev.frist: constraints {} -> {"minimum": 1}': BREAKING,
        '~ field Brev.tittel: constraints {"maxLength": 100} -> {"maxLength": 200}': ADDITIVE,
        '~ field Linje.tidspunkt: constraints {} -> {"pattern": "^2"}': NOTABLE,
    }


def test_a_field_rename_is_reported_as_a_rename() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        props = schema(spec, "Brev")["properties"]
        props["svarfrist"] = props.pop("frist")
        props["svarfrist"]["description"] = "Svarfrist i antall dager fra i dag."

    assert changed(mutate) == {"~ field Brev.frist renamed -> svarfrist: Python name frist is now svarfrist": BREAKING}


def test_a_removed_and_an_added_field_with_unrelated_descriptions_are_not_a_rename() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        props = schema(spec, "Brev")["properties"]
        del props["frist"]
        props["sider"] = {"type": "integer", "description": "Antall sider i PDF-en som skal printes."}

    assert changed(mutate) == {"- field Brev.frist": BREAKING, "+ field Brev.sider (optional, integer)": ADDITIVE}


def test_operations_removed_added_and_renamed() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        del spec["paths"]["/v3/kontoer/{kontoId}/status"]
        send(spec)["operationId"] = "sendBrevet"

    assert changed(mutate) == {
        "- operation hentStatus: POST /v3/kontoer/{kontoId}/status": BREAKING,
        "~ operation sendBrev renamed -> sendBrevet: send_brev() is now send_brevet()": BREAKING,
    }


def test_a_part_rename_names_the_method_argument() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schema_ = parts(spec)
        schema_["properties"]["dokumenter"] = schema_["properties"].pop("vedlegg")
        schema_["required"] = ["brev", "dokumenter"]

    assert changed(mutate) == {
        "~ part sendBrev.vedlegg renamed -> dokumenter: send_brev(vedlegg=…) is now send_brev(dokumenter=…)": BREAKING
    }


def test_parts_added_required_or_optional_and_removed() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schema_ = parts(spec)
        schema_["properties"]["signatur"] = {"type": "string", "format": "binary"}
        schema_["properties"]["notat"] = {"type": "string"}
        schema_["required"].append("signatur")
        del schema_["properties"]["brev"]

    lines = changed(mutate)
    assert lines == {
        "- part sendBrev.brev: send_brev(brev=…) is gone": BREAKING,
        "+ part sendBrev.notat (optional, string): send_brev(notat=…)": ADDITIVE,
        "+ part sendBrev.signatur (required, string(binary)): send_brev(signatur=…)": BREAKING,
    }


def test_parameters_added_renamed_and_typed() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        send(spec)["parameters"].append({"name": "dryRun", "in": "query", "schema": {"type": "boolean"}})
        send(spec)["parameters"].append(
            {"name": "spraak", "in": "query", "required": True, "schema": {"type": "string"}}
        )
        status = spec["paths"]["/v3/kontoer/{kontoId}/status"]["post"]
        status["parameters"][0]["name"] = "konto"

    assert changed(mutate) == {
        "+ parameter sendBrev.dryRun (optional, query, boolean): send_brev(dry_run=…)": ADDITIVE,
        "+ parameter sendBrev.spraak (required, query, string): send_brev(spraak=…)": BREAKING,
        "~ parameter hentStatus.kontoId renamed -> konto: "
        "hent_status(konto_id=…) is now hent_status(konto=…)": BREAKING,
    }


def test_request_and_response_models_replaced() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        status = spec["paths"]["/v3/kontoer/{kontoId}/status"]["post"]
        status["requestBody"]["content"]["application/json"]["schema"] = ref("Kvittering")
        status["responses"]["200"]["content"]["application/json"]["schema"] = ref("Linje")

    assert changed(mutate) == {
        "~ request body hentStatus: Sok -> Kvittering": BREAKING,
        "~ response hentStatus: Statuser -> Linje": BREAKING,
    }


def test_security_schemes_and_requirements() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        schemes = spec["components"]["securitySchemes"]
        schemes["bearerAuth"]["bearerFormat"] = "opaque"
        schemes["integrasjon"] = {"type": "apiKey", "in": "header", "name": "IntegrasjonId"}
        spec["security"] = [{"bearerAuth": [], "integrasjon": []}]
        spec["paths"]["/v3/kontoer/{kontoId}/status"]["post"]["security"] = []

    assert changed(mutate) == {
        "~ security scheme bearerAuth: http bearer JWT -> http bearer opaque": BREAKING,
        "+ security scheme integrasjon: apiKey header IntegrasjonId": ADDITIVE,
        "+ security requirement bearerAuth + integrasjon: sendBrev": ADDITIVE,
        "- security requirement bearerAuth: hentStatus": ADDITIVE,
        "- security requirement bearerAuth: sendBrev": BREAKING,
    }


def test_a_removed_security_scheme_is_breaking() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        del spec["components"]["securitySchemes"]

    assert changed(mutate) == {"- security scheme bearerAuth: http bearer JWT": BREAKING}


def test_limits_in_descriptions() -> None:
    def texts(description: str) -> list[str]:
        return sorted(limit.text for limit in report.limits_in(description))

    assert texts("Maksimal størrelse er 18 MB.") == ["18 MB"]
    assert texts("Total filstørrelse på inntil 350 MB er støttet") == ["350 MB"]
    assert texts("maks 18 MB, og maksimalt 5 vedlegg") == ["18 MB", "5 vedlegg"]
    assert texts("Du kan sende maksimalt 5.") == ["maksimalt 5"]
    assert texts("minst 2 dager, høyst 1,5 GB") == ["1,5 GB", "2 dager"]
    assert texts("Noark 5-metadata, ISO 8601, RFC 2396, sikkerhetsnivå 4, ISO-3166-1") == []
    (limit,) = report.limits_in("Maksimal størrelse er 18 MB.")
    assert (limit.unit, limit.value, limit.lower_bound) == ("bytes", 18e6, False)
    (limit,) = report.limits_in("minst 2 dager")
    assert limit.lower_bound


def test_limits_changed_added_and_removed() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        parts(spec)["properties"]["vedlegg"]["description"] = "Vedleggene, til sammen inntil 50 MB."
        schema(spec, "Brev")["properties"]["frist"]["description"] = "Svarfrist, minst 2 dager."

    assert changed(mutate) == {
        "~ limit sendBrev.vedlegg: 100 MB -> 50 MB": BREAKING,
        "- limit sendBrev.vedlegg: 5 vedlegg (no longer stated)": ADDITIVE,
        "+ limit Brev.frist: 2 dager (stated in the description)": NOTABLE,
    }


def test_a_raised_limit_is_notable_not_breaking() -> None:
    def mutate(spec: dict[str, Any]) -> None:
        parts(spec)["properties"]["vedlegg"]["description"] = "Til sammen inntil 1 GB og maksimalt 5 vedlegg."

    assert changed(mutate) == {"~ limit sendBrev.vedlegg: 100 MB -> 1 GB": NOTABLE}


def test_render_groups_breaking_first_and_marks_notable_lines() -> None:
    changes = [
        report.Change("+ field A.b (optional, string)", ADDITIVE),
        report.Change("- field A.c", BREAKING),
        report.Change("+ enum value S.X (received)", NOTABLE),
    ]
    assert report.render(changes).splitlines() == [
        "Breaking for callers (1):",
        "- field A.c",
        "",
        "Additive (2):",
        "+ field A.b (optional, string)",
        "+ enum value S.X (received)  [notable]",
    ]


# --- CHANGELOG --------------------------------------------------------------------------------

BREAKS = [report.Change("- field A.c", BREAKING), report.Change("+ field A.d (optional, string)", ADDITIVE)]
ADDS = [report.Change("+ enum value S.X (received)", NOTABLE)]
COMMIT = "c75eba9a3496b0dbf66582e2dfa9df4dbe0b09ec"


@pytest.mark.parametrize(
    ("current", "breaking", "expected"),
    [
        ("0.1.0", True, ("0.2.0", "minor")),
        ("0.1.0", False, ("0.1.1", "patch")),
        ("0.4.7", True, ("0.5.0", "minor")),
        ("1.2.3", True, ("2.0.0", "major")),
        ("1.2.3", False, ("1.3.0", "minor")),
    ],
)
def test_next_version_rule(current: str, breaking: bool, expected: tuple[str, str]) -> None:
    assert changelog.next_version(current, breaking=breaking) == expected


def test_current_version_from_pyproject_static_or_dynamic(tmp_path: Path) -> None:
    assert changelog.current_version() == "0.2.0"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_version.py").write_text('__version__ = "1.4.2"\n')
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndynamic = ["version"]\n\n[tool.hatch.version]\npath = "pkg/_version.py"\n'
    )
    assert changelog.current_version(pyproject) == "1.4.2"
    pyproject.write_text('[project]\nname = "x"\n')
    with pytest.raises(changelog.LockError, match="states no version"):
        changelog.current_version(pyproject)


def test_the_entry_goes_above_the_releases_and_later_entries_extend_it(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    # The repository's changelog as of a release: its intro and releases, without a hand-written Unreleased section.
    released = re.sub(
        r"## \[Unreleased\].*?(?=## \[)",
        "",
        (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text(),
        flags=re.S,
    )
    repo = tmp_path / "released.md"
    repo.write_text(released)
    path.write_text(released)

    assert changelog.write_entry(path, commit=COMMIT, changes=ADDS, current="0.1.0") == "0.1.1"
    assert changelog.write_entry(path, commit="abc3296" + "0" * 33, changes=BREAKS, current="0.1.0") == "0.2.0"
    assert changelog.write_entry(path, commit="9d1c08c" + "0" * 33, changes=[], current="0.1.0") == "0.2.0"

    text = path.read_text()
    assert text.startswith(repo.read_text().split("## [0.2.0]")[0])
    assert text.endswith("## [0.2.0]" + repo.read_text().split("## [0.2.0]")[1])
    unreleased = text.split("## [Unreleased]\n")[1].split("## [0.2.0]")[0]
    assert text.count("## [Unreleased]") == 1
    assert unreleased.count("Recommended next version: ") == 1
    assert unreleased.startswith("\nRecommended next version: 0.2.0 (from 0.1.0; ")
    headings = [line for line in unreleased.splitlines() if line.startswith("### ")]
    assert headings == ["### Spec update to c75eba9", "### Spec update to abc3296", "### Spec update to 9d1c08c"]
    first, second, third = unreleased.split("### ")[1:]
    assert "- `+ enum value S.X (received)` (notable)" in first
    assert "Breaking for callers" not in first
    assert "Calls for a patch release: 0.1.0 -> 0.1.1 (nothing breaks for callers)." in first
    assert second.index("Breaking for callers:\n\n- `- field A.c`") < second.index("Additive:\n\n- `+ field A.d")
    assert "Calls for a minor release: 0.1.0 -> 0.2.0 (breaking for callers)." in second
    assert "No structural changes" in third
    assert "\n\n\n" not in text


def test_a_missing_changelog_is_created_with_the_intro(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    assert changelog.write_entry(path, commit=COMMIT, changes=BREAKS, current="1.0.0") == "2.0.0"
    text = path.read_text()
    assert text.startswith("# Changelog\n")
    assert "make update-specs" in text.split("## [Unreleased]")[0]
    assert "Calls for a major release: 1.0.0 -> 2.0.0 (breaking for callers)." in text


def test_a_hand_written_unreleased_section_is_kept_and_extended(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text("# Changelog\n\n## [Unreleased]\n\n### Added\n\n- A thing by hand.\n\n## [0.1.0]\n\n- First.\n")
    assert changelog.write_entry(path, commit=COMMIT, changes=BREAKS, current="0.1.0") == "0.2.0"
    unreleased = path.read_text().split("## [Unreleased]\n")[1].split("## [0.1.0]")[0]
    assert "### Added\n\n- A thing by hand." in unreleased
    assert "### Spec update to c75eba9" in unreleased
    assert unreleased.count("Recommended next version: ") == 1
    assert path.read_text().endswith("## [0.1.0]\n\n- First.\n")
