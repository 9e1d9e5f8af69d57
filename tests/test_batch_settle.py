"""Settling the letters a batch left ``unknown`` by asking SvarUt (the
simulator answers the eksternRef lookup from what it holds), with
``svarut batch settle`` and at the start of ``svarut batch run``, on both
journals: a letter SvarUt kept becomes ``sent`` with its id, one it surely
does not have is sent again (exactly once), anything else stays unknown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from postgres_server import postgres_server, postgres_url  # noqa: F401 (fixtures)
from test_batch_helpers import (
    check_report_against_simulator,
    cli,
    cli_env,
    letters,
    person_line,
    received_by_ekstern,
    write_manifest,
    write_pdf,
)

import svarut.batch
from svarut import models
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture

FNR = "21883649874"


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def _report(journal: str) -> dict[str, dict[str, Any]]:
    return {r["ref"]: r for r in svarut.batch.report(journal)}


def _lose_the_next_answers(sim: SvarUtSimulatorFixture, *kept: bool) -> None:
    """The answers of the next sends are lost (a reset after the body): SvarUt keeps each letter or drops it."""
    for accept in kept:
        sim.scenarios.reset(when="after_body", accept=accept, count=1, only="send")


def _id_held_for(sim: SvarUtSimulatorFixture, ekstern_referanse: str) -> str:
    (record,) = [r for r in sim.received if r.ekstern_referanse == ekstern_referanse]
    return str(record.id)


def test_batch_settle_finds_the_kept_letter_and_frees_the_lost_one_after_the_window(
    svarut_simulator: SvarUtSimulatorFixture, journal_target: str, tmp_path: Path
) -> None:
    sim = svarut_simulator
    env = cli_env(sim, tmp_path)
    manifest = letters(tmp_path, 4)
    run = ["batch", "run", str(manifest), "--journal", journal_target, "--concurrency", "1"]
    _lose_the_next_answers(sim, True, False)  # L0: kept, the answer lost; L1: lost before it was kept
    first = cli(run, env)
    assert first.returncode == 4, first.stderr
    report = _report(journal_target)
    assert [report[f"L{i}"]["state"] for i in range(4)] == ["unknown", "unknown", "sent", "sent"]
    assert report["L0"]["attempt_started"] and report["L0"]["settled"] is None

    # Inside the window SvarUt can confirm the kept letter, but not yet that the other did not arrive.
    early = cli(["batch", "settle", "--journal", journal_target], env)
    assert early.returncode == 4, early.stderr
    report = _report(journal_target)
    assert report["L0"]["state"] == "sent" and report["L0"]["settled"] == "mottatt"
    assert report["L0"]["forsendelse_id"] == _id_held_for(sim, report["L0"]["ekstern_referanse"])
    assert report["L0"]["settled_found"] == [report["L0"]["forsendelse_id"]] and report["L0"]["settled_at"]
    assert report["L1"]["state"] == "unknown" and report["L1"]["settled"] == "uavklart"
    assert "recent" in report["L1"]["settled_reason"] and report["L1"]["settled_found"] == []
    assert f"L0\tmottatt\tsent\t{report['L0']['forsendelse_id']}\t" in early.stdout

    # Once the window is over (here: at once), it did not arrive: back to waiting, nothing sent yet.
    late = cli(["batch", "settle", "--journal", journal_target, "--settle-after", "0"], env)
    assert late.returncode == 0, late.stderr
    assert late.stdout.startswith("L1\tikke_mottatt\twaiting\t-\t")
    assert "the next `svarut batch run` sends them again" in late.stderr
    report = _report(journal_target)
    assert report["L1"]["state"] == "waiting" and report["L1"]["settled"] == "ikke_mottatt"
    assert len(sim.received) == 3

    final = cli(run, env)
    assert final.returncode == 0, final.stderr
    report = _report(journal_target)
    assert {r["state"] for r in report.values()} == {"sent"}
    check_report_against_simulator(list(report.values()), sim)
    assert sorted(received_by_ekstern(sim).values()) == [1, 1, 1, 1]
    # The report (text and CSV) shows how each settled letter was settled.
    header, *text = cli(["batch", "report", "--journal", journal_target], env).stdout.splitlines()
    assert header.startswith("ref\tstate\t")
    assert "\tmottatt\t" in text[0] and "\tikke_mottatt\t" in text[1] and "mottatt" not in text[2]
    header, *rows = cli(["batch", "report", "--journal", journal_target, "--csv"], env).stdout.splitlines()
    assert len(rows) == 4 and header.split(",")[-5:] == [
        "attempt_started",
        "settled",
        "settled_at",
        "settled_found",
        "settled_reason",
    ]


def test_batch_run_settles_the_unknown_letters_first(
    svarut_simulator: SvarUtSimulatorFixture, journal_target: str, tmp_path: Path
) -> None:
    sim = svarut_simulator
    manifest = letters(tmp_path, 4)
    _lose_the_next_answers(sim, True, False)
    first = svarut.batch.run(sim.client, manifest, konto_id=sim.konto_id, journal=journal_target, concurrency=1)
    assert first.counts["unknown"] == 2
    assert first.settled is not None and first.settled.settled == []  # nothing was unknown before it
    seen: list[svarut.batch.Settled] = []
    second = svarut.batch.run(
        sim.client, manifest, konto_id=sim.konto_id, journal=journal_target, settle_after=0, on_settled=seen.append
    )
    assert second.done and second.settled is not None
    assert second.settled.counts == {"mottatt": 1, "ikke_mottatt": 1, "uavklart": 0, "failed": 0}
    assert second.settled.unknown == 0 and second.settled.stopped is None
    assert [(s.ref, s.tilstand, s.state) for s in seen] == [
        ("L0", "mottatt", "sent"),
        ("L1", "ikke_mottatt", "waiting"),
    ]
    report = _report(journal_target)
    check_report_against_simulator(list(report.values()), sim)
    assert len(sim.received) == 4 and set(received_by_ekstern(sim).values()) == {1}
    assert (report["L0"]["settled"], report["L1"]["settled"]) == ("mottatt", "ikke_mottatt")


@pytest.mark.anyio
async def test_arun_and_asettle_with_the_async_client(
    svarut_simulator: SvarUtSimulatorFixture, journal_target: str, tmp_path: Path
) -> None:
    sim = svarut_simulator
    manifest = letters(tmp_path, 5)
    _lose_the_next_answers(sim, True, False, True)
    async with sim.async_client() as client:
        first = await svarut.batch.arun(client, manifest, konto_id=sim.konto_id, journal=journal_target, concurrency=1)
        assert first.counts["unknown"] == 3
        settled = await svarut.batch.asettle(client, journal=journal_target, settle_after=0)
        assert settled.counts == {"mottatt": 2, "ikke_mottatt": 1, "uavklart": 0, "failed": 0}
        second = await svarut.batch.arun(client, manifest, konto_id=sim.konto_id, journal=journal_target)
    assert second.done and second.settled is not None and second.settled.settled == []
    check_report_against_simulator(list(_report(journal_target).values()), sim)
    assert len(sim.received) == 5 and set(received_by_ekstern(sim).values()) == {1}


def test_a_reused_reference_stays_unknown(
    svarut_simulator: SvarUtSimulatorFixture, journal_target: str, tmp_path: Path
) -> None:
    sim = svarut_simulator
    env = cli_env(sim, tmp_path)
    write_pdf(tmp_path / "brev.pdf")
    reused = person_line("delt")
    reused["forsendelse"]["eksternReferanse"] = "sak-delt"
    # Two letters of the journal with one reference: an answer for one could be the other's.
    twins = [person_line(f"tvilling-{i}") for i in (1, 2)]
    for twin in twins:
        twin["forsendelse"]["eksternReferanse"] = "sak-tvilling"
    manifest = write_manifest(tmp_path / "brev.jsonl", [reused, *twins])
    # Another forsendelse with the same reference is in SvarUt already.
    other = sim.client.send_til_person(
        konto_id=sim.konto_id,
        forsendelse=models.PersonForsendelse(
            tittel="Et annet brev",
            mottaker=models.Mottaker(navn="Kari Nordmann", digital_id=FNR),
            dokumenter=[models.PersonDokument(filnavn="brev.pdf", mime_type="application/pdf")],
            ekstern_referanse="sak-delt",
        ),
        dokumenter={"brev.pdf": tmp_path / "brev.pdf"},
    )
    _lose_the_next_answers(sim, True, True)
    run = ["batch", "run", str(manifest), "--journal", journal_target, "--concurrency", "1"]
    assert cli(run, env).returncode == 4
    lookups = sum(r.operation == "lookup" for r in sim.requests)

    settled = cli(["batch", "settle", "--journal", journal_target, "--settle-after", "0"], env)
    assert settled.returncode == 4, settled.stderr
    report = _report(journal_target)
    assert report["delt"]["state"] == "unknown" and report["delt"]["settled"] == "uavklart"
    held = sorted(str(r.id) for r in sim.received if r.ekstern_referanse == "sak-delt")
    assert len(held) == 2 and str(other) in held and sorted(report["delt"]["settled_found"]) == held
    assert report["delt"]["forsendelse_id"] is None and "2 forsendelser" in report["delt"]["settled_reason"]
    assert report["tvilling-1"]["state"] == "unknown" and report["tvilling-1"]["settled"] == "uavklart"
    assert "another letter of this journal" in report["tvilling-1"]["settled_reason"]
    assert report["tvilling-2"]["state"] == "sent" and report["tvilling-2"]["settled"] is None
    # Only the letter with a reference of its own was looked up.
    assert sum(r.operation == "lookup" for r in sim.requests) == lookups + 1

    # --resend-unknown is still there for what SvarUt cannot answer: the repeat of the letter SvarUt
    # kept is refused as a duplicate (the first attempt arrived).
    resent = cli([*run, "--resend-unknown"], env)
    assert resent.returncode == 0, resent.stderr
    assert _report(journal_target)["delt"]["state"] == "duplicate-confirmed"


def test_a_failing_lookup_settles_nothing_and_the_run_goes_on(
    svarut_simulator: SvarUtSimulatorFixture, journal_target: str, tmp_path: Path
) -> None:
    sim = svarut_simulator
    env = cli_env(sim, tmp_path)
    _lose_the_next_answers(sim, True)
    assert cli(["batch", "run", str(letters(tmp_path, 1)), "--journal", journal_target], env).returncode == 4
    before = _report(journal_target)["L0"]

    # SvarUt's lookup fails (after the client's retries): the letter stays as it was.
    sim.scenarios.fail(503, retry_after=0, count=1000, only="lookup")
    failed = cli(["batch", "settle", "--journal", journal_target, "--settle-after", "0"], env)
    assert failed.returncode == 4
    assert failed.stdout.startswith("L0\tlookup-failed\tunknown\t-\tthe lookup failed: ")
    assert "settling stopped: SvarUt's eksternRef lookup failed" in failed.stderr
    assert _report(journal_target)["L0"] == before

    # The run goes on with the letters it can send.
    manifest = letters(tmp_path, 3)
    run = cli(["batch", "run", str(manifest), "--journal", journal_target, "--settle-after", "0"], env)
    assert run.returncode == 4, run.stderr
    assert "settling stopped" in run.stderr
    report = _report(journal_target)
    assert report["L0"] == before and report["L1"]["state"] == report["L2"]["state"] == "sent"

    # Once the lookup answers, the letter is settled.
    sim.scenarios.clear()
    assert cli(["batch", "settle", "--journal", journal_target], env).returncode == 0
    report = _report(journal_target)
    assert report["L0"]["state"] == "sent" and report["L0"]["settled"] == "mottatt"
    check_report_against_simulator(list(report.values()), sim)


def test_settling_a_journal_another_runner_holds_is_refused(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    env = cli_env(svarut_simulator, tmp_path)
    journal = tmp_path / "journal.sqlite"
    with svarut.batch.open_journal(journal) as jn:
        jn.setup(konto_id=str(svarut_simulator.konto_id))
        held = cli(["batch", "settle", "--journal", str(journal)], env)
    assert held.returncode == 2 and "in use by another runner" in held.stderr
    assert cli(["batch", "settle"], env).returncode == 2  # --journal is required
    bad = cli(["batch", "settle", "--journal", str(journal), "--settle-after", "soon"], env)
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    nothing = cli(["batch", "settle", "--journal", str(journal)], env)
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert list(svarut.batch.report(journal)) == []
