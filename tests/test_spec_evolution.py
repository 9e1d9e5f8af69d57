"""Synthetic future changes to today's specs reach the whole product in one
``update-specs`` + ``generate``, with no hand edit: a new send endpoint, a new
status value, a removed send endpoint. Each is applied to a copy of the
specs, locked and generated into a copy of the project, and checked in a
subprocess that imports the copy. The status binding's verifier
(``generator/check_statuses.py``) is checked in-process against the same
kinds of change.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from generator_helpers import SEND, STATUS, locked_documents, official_specs
from project_copy import copy_project, generate, relock, run_in

from generator.check_statuses import status_binding_warnings, verify_status_binding
from generator.normalize import build_api

PERSON = "/v3/kontoer/{kontoId}/forsendelser/person"
PRINT = "/v3/kontoer/{kontoId}/forsendelser/print"
DIGITALPOST = "/v3/kontoer/{kontoId}/forsendelser/digitalpost"
COMMIT = "f" * 40


def status_enum(specs: dict[str, Any]) -> list[str]:
    enum: list[str] = specs[STATUS]["components"]["schemas"]["ForsendelseStatus"]["properties"]["status"]["enum"]
    return enum


def with_digitalpost(specs: dict[str, Any]) -> dict[str, Any]:
    operation = copy.deepcopy(specs[SEND]["paths"][PERSON])
    operation["post"]["operationId"] = "sendTilDigitalpost"
    operation["post"]["summary"] = "Sender forsendelse som digital post"
    specs[SEND]["paths"][DIGITALPOST] = operation
    return specs


def project_with(tmp_path: Path, specs: dict[str, Any]) -> Path:
    specs_dir = tmp_path / "specs"
    specs_dir.mkdir()
    for name, spec in specs.items():
        (specs_dir / name).write_text(json.dumps(spec, indent=2, ensure_ascii=False))
    for name, data in locked_documents().items():
        (specs_dir / name).write_bytes(data)
    project = copy_project(tmp_path / "project")
    for step in (relock(project, specs_dir, COMMIT), generate(project, specs_dir)):
        assert step.returncode == 0, step.stdout + step.stderr
    return project


def run(project: Path, code: str) -> str:
    result = run_in(project, "-c", code, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


PRELUDE = """
import anyio, httpx2, svarut
from svarut import statuses
from svarut.generated import SEND_OPERATIONS, models
from svarut.simulator import Simulator
from svarut.simulator.server import CHANNELS

PDF = b"%PDF-1.7\\n% evolution\\n%%EOF\\n"

def person_like(model, tittel):
    return model(
        tittel=tittel,
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
    )
"""


# --- a new send endpoint ------------------------------------------------------------------


@pytest.fixture(scope="module")
def digitalpost(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project_with(tmp_path_factory.mktemp("digitalpost"), with_digitalpost(official_specs()))


def test_a_new_send_endpoint_is_a_client_method_and_a_simulator_route(digitalpost: Path) -> None:
    out = run(
        digitalpost,
        PRELUDE
        + """
op = SEND_OPERATIONS["digitalpost"]
assert op.method_name == "send_til_digitalpost" and op.endpoint.path.endswith("/forsendelser/digitalpost")
assert any(c.name == "digitalpost" for c in CHANNELS)
with Simulator(step_seconds=0) as sim:
    with sim.client() as client:
        forsendelse = person_like(op.model, "digital post")
        sent = client.send_til_digitalpost(konto_id=sim.konto_id, forsendelse=forsendelse, dokumenter={"a.pdf": PDF})
        status = client.vent_pa_status(konto_id=sim.konto_id, ids=[sent], until={"AKSEPTERT"}, timeout=10)[sent]
    async def send_async():
        async with sim.async_client() as client:
            forsendelse = person_like(op.model, "digital post, async")
            return await getattr(client, op.method_name)(
                **op.arguments(konto_id=sim.konto_id, forsendelse=forsendelse, files={"a.pdf": PDF})
            )
    sent_async = anyio.run(send_async)
    print(sim.get(sent).channel, sim.get(sent_async).channel, status.status, sim.get(sent).documents[0].filnavn)
""",
    )
    # No journey is bound to the new kind: the simulator takes it as far as AKSEPTERT.
    assert out.split() == ["digitalpost", "digitalpost", "AKSEPTERT", "a.pdf"]


def test_a_new_send_endpoint_is_a_cli_subcommand(digitalpost: Path) -> None:
    result = run_in(digitalpost, "-m", "svarut.cli", "send", "digitalpost", "--help")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Sender forsendelse" in result.stdout


def test_the_status_binding_warns_about_a_send_kind_without_a_journey() -> None:
    api = build_api(with_digitalpost(official_specs()))
    assert verify_status_binding(api) == []
    assert status_binding_warnings(api) == [
        "send kind 'digitalpost' has no status journey in svarut/statuses.py: "
        "the simulator stops its forsendelser at AKSEPTERT"
    ]


# --- a new status value ---------------------------------------------------------------------


def test_a_new_status_flows_through_the_simulator_and_vent_pa_status(tmp_path: Path) -> None:
    specs = official_specs()
    status_enum(specs).append("ARKIVERT")
    project = project_with(tmp_path, specs)
    out = run(
        project,
        PRELUDE
        + """
assert models.Status("ARKIVERT") == "ARKIVERT"
assert not statuses.is_terminal("ARKIVERT") and not statuses.is_failure("ARKIVERT")
with Simulator(step_seconds=0) as sim, sim.client() as client:
    sim.scenarios.force_status("ARKIVERT", count=2)
    first = client.send_til_person(
        konto_id=sim.konto_id, forsendelse=person_like(models.PersonForsendelse, "en"), dokumenter={"a.pdf": PDF}
    )
    second = client.send_til_person(
        konto_id=sim.konto_id, forsendelse=person_like(models.PersonForsendelse, "to"), dokumenter={"a.pdf": PDF}
    )
    reached = client.vent_pa_status(konto_id=sim.konto_id, ids=[first], until={"ARKIVERT"}, timeout=10)[first]
    try:
        client.vent_pa_status(konto_id=sim.konto_id, ids=[second], timeout=0.3, interval=0.05)
        raise AssertionError("ARKIVERT ended the wait, but the binding does not call it terminal")
    except svarut.errors.VentPaStatusTimeoutError as exc:
        waited_past = exc.statuser[second].status
    print(reached.status, waited_past, [c.status for c in sim.get(first).history])
""",
    )
    assert out.split(maxsplit=2)[:2] == ["ARKIVERT", "ARKIVERT"]
    assert "['MOTTATT', 'AKSEPTERT', 'ARKIVERT']" in out


def test_the_status_binding_reports_unclassified_dropped_and_missing_statuses() -> None:
    assert verify_status_binding(build_api(official_specs())) == []
    assert status_binding_warnings(build_api(official_specs())) == []

    new = official_specs()
    status_enum(new).append("ARKIVERT")
    assert status_binding_warnings(build_api(new)) == [
        "status 'ARKIVERT' is unclassified in svarut/statuses.py: treated as non-terminal, not in any journey"
    ]

    older = official_specs()
    status_enum(older).remove("FEILET_UNDER_MOTTAK")
    assert verify_status_binding(build_api(older)) == []
    (dropped,) = status_binding_warnings(build_api(older))
    assert "'FEILET_UNDER_MOTTAK'" in dropped and "dropped" in dropped

    broken = official_specs()
    status_enum(broken).remove("KLAR_FOR_MOTTAK")
    (problem,) = verify_status_binding(build_api(broken))
    assert "'KLAR_FOR_MOTTAK' is not in the spec's Status enum" in problem

    # VARSLET is declared removed (spec version 16): absent is fine, and a 15-shaped enum still fits.
    assert "VARSLET" not in status_enum(official_specs())
    older15 = official_specs()
    enum = status_enum(older15)
    enum[enum.index("SENDT_ALTINN")] = "VARSLET"
    enum.remove("LEVERT_ALTINN")
    assert verify_status_binding(build_api(older15)) == []
    assert [w.split("'")[1] for w in status_binding_warnings(build_api(older15))] == ["SENDT_ALTINN", "LEVERT_ALTINN"]

    without = official_specs()
    del without[STATUS]
    assert verify_status_binding(build_api(without)) == []
    assert "no status search" in status_binding_warnings(build_api(without))[0]


# --- a removed send endpoint ----------------------------------------------------------------


def test_a_removed_send_endpoint_disappears_cleanly(tmp_path: Path) -> None:
    specs = official_specs()
    del specs[SEND]["paths"][PRINT]
    project = project_with(tmp_path, specs)
    out = run(
        project,
        PRELUDE
        + """
assert "print" not in SEND_OPERATIONS and not hasattr(svarut.SvarUtClient, "send_til_print")
assert not hasattr(svarut.AsyncSvarUtClient, "send_til_print")
assert "print" not in {c.name for c in CHANNELS} and "print" not in {j.kind for j in statuses.journeys()}
with Simulator(step_seconds=0) as sim, sim.client() as client:
    url = f"{sim.base_url}/v3/kontoer/{sim.konto_id}/forsendelser/print"
    gone = httpx2.post(url, files={"forsendelse": ("f", b"{}", "application/json")}).status_code
    sent = client.send_til_person(
        konto_id=sim.konto_id, forsendelse=person_like(models.PersonForsendelse, "en"), dokumenter={"a.pdf": PDF}
    )
    print(gone, sorted(SEND_OPERATIONS), client.hent_status(konto_id=sim.konto_id, forsendelse_id=sent).status)
""",
    )
    assert out.split("\n")[0] == "404 ['nhn', 'organisasjon', 'person'] LEST"


def test_the_copy_runs_its_own_code(tmp_path: Path) -> None:
    # The checks above mean something only if the subprocess imports the copy.
    project = copy_project(tmp_path / "project")
    out = run(project, "import svarut, generator; print(svarut.__file__); print(generator.__file__)")
    assert out.split() == [str(project / "svarut" / "__init__.py"), str(project / "generator" / "__init__.py")]
