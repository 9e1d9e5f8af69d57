"""Status in bulk and waiting for a status, against the recording server."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import svarut
from svarut import errors, models, statuses
from svarut.cli import EXIT_FAILED

pytestmark = pytest.mark.anyio

KONTO = uuid.uuid4()


def statuser(*pairs: tuple[uuid.UUID, str]) -> dict[str, object]:
    return {
        "statuser": [
            {"id": str(i), "sisteStatusEndring": "2024-05-02T10:00:00+02:00", "status": status} for i, status in pairs
        ]
    }


def test_terminal_statuses_are_statuses_of_the_spec():
    assert {m.value for m in models.Status} >= svarut.TERMINAL_STATUSES


async def test_any_number_of_ids_in_chunks_in_input_order(api, server):
    ids = [uuid.uuid4() for _ in range(250)]
    missing = ids[7]
    # The server answers each chunk in reverse order, and never knows `missing`.
    for chunk in (ids[:100], ids[100:200], ids[200:]):
        server.reply(200, statuser(*[(i, "LEST") for i in reversed(chunk) if i != missing]))

    result = await api("hent_statuser", konto_id=KONTO, id=[str(i) for i in ids])

    assert [len(json.loads(r.body)["id"]) for r in server.requests] == [100, 100, 50]
    assert [s.id for s in result] == [i for i in ids if i != missing]
    assert result.mangler == [missing]


async def test_bad_ids_are_refused_before_sending(api, server):
    with pytest.raises(errors.ForsendelseValidationError) as caught:
        await api("hent_statuser", konto_id=KONTO, id=[uuid.uuid4(), "ikke-en-uuid"])
    assert [(p.field, p.rule) for p in caught.value.problems] == [("id[1]", "uuid")]
    assert server.requests == []


async def test_vent_pa_status_polls_until_terminal_or_wanted(api, server, caplog):
    a, b = uuid.uuid4(), uuid.uuid4()
    server.reply(200, statuser((a, "MOTTATT"), (b, "MOTTATT")))
    server.reply(200, statuser((a, "SENDT_DIGITALT"), (b, "NY_STATUS")))
    server.reply(200, statuser((b, "AVVIST")))  # only b is still asked for
    caplog.set_level(logging.WARNING, logger="svarut")

    result = await api(
        "vent_pa_status", konto_id=KONTO, ids=[a, b], until={models.Status.SENDT_DIGITALT}, interval=0.01
    )

    assert {i: str(s.status) for i, s in result.items()} == {a: "SENDT_DIGITALT", b: "AVVIST"}
    assert list(result) == [a, b]
    assert [json.loads(r.body)["id"] for r in server.requests] == [[str(a), str(b)], [str(a), str(b)], [str(b)]]
    assert any("NY_STATUS" in r.getMessage() for r in caplog.records)


async def test_vent_pa_status_times_out_with_what_it_knows(api, server):
    a = uuid.uuid4()
    for _ in range(50):
        server.reply(200, statuser((a, "MOTTATT")))

    with pytest.raises(errors.VentPaStatusTimeoutError) as caught:
        await api("vent_pa_status", konto_id=KONTO, ids=[a], timeout=0.2, interval=0.02)

    assert caught.value.ventende == [a]
    assert str(caught.value.statuser[a].status) == "MOTTATT"
    assert isinstance(caught.value, TimeoutError)


# --- reached or passed, failures (svarut.statuses) ------------------------------


def test_passed_follows_the_channel_order() -> None:
    assert statuses.passed("VARSLET", {"AKSEPTERT"})
    assert statuses.passed("LEST", {"VARSLET"}, seen={"MOTTATT", "SENDT_DIGITALT"})
    # LEST alone could be an organisasjon's, which is never VARSLET: not passed (LEST ends waiting anyway).
    assert not statuses.passed("LEST", {"VARSLET"})
    assert not statuses.passed("PRINTET", {"VARSLET"})
    assert not statuses.passed("AKSEPTERT", {"VARSLET"})
    # A status in no journey has passed nothing but itself.
    assert statuses.passed("NY_STATUS", {"NY_STATUS"})
    assert not statuses.passed("NY_STATUS", {"MOTTATT"})


def test_failures_and_terminal_statuses() -> None:
    for value in ("AVVIST", "IKKE_LEVERT", "FEILET_UNDER_MOTTAK"):
        assert statuses.is_failure(value) and statuses.is_terminal(value)
    for value in ("MANUELT_HANDTERT", "SLETTET", "LEST", "PRINTET", "LEVERT_NHN_MOTTAKER"):
        assert statuses.is_terminal(value) and not statuses.is_failure(value)
    for value in ("MOTTATT", "VARSLET", "LEVERT_SDP", "NY_STATUS"):
        assert not statuses.is_terminal(value) and not statuses.is_failure(value)
    status = models.ForsendelseStatus.model_validate(
        {"id": str(uuid.uuid4()), "sisteStatusEndring": "2024-05-02T10:00:00+02:00", "status": "AVVIST"}
    )
    assert statuses.is_failure(status)
    assert statuses.terminal_statuses() == svarut.TERMINAL_STATUSES


def test_every_spec_status_is_classified_and_every_journey_is_bound_to_a_send_kind() -> None:
    classified = {s for j in statuses.JOURNEYS for s in j.statuses} | set(statuses.TERMINAL)
    assert set(statuses.spec_statuses() or ()) == classified
    assert {j.kind for j in statuses.journeys()} == set(svarut.generated.SEND_OPERATIONS)


async def test_until_returns_at_once_when_the_status_was_passed(api, server) -> None:
    a = uuid.uuid4()
    server.reply(200, statuser((a, "VARSLET")))

    result = await api("vent_pa_status", konto_id=KONTO, ids=[a], until={"AKSEPTERT"}, interval=0.01)

    assert str(result[a].status) == "VARSLET"
    assert len(server.requests) == 1


async def test_until_varslet_ends_at_lest_after_the_digital_channel_was_seen(api, server) -> None:
    a = uuid.uuid4()
    server.reply(200, statuser((a, "SENDT_DIGITALT")))
    server.reply(200, statuser((a, "LEST")))

    result = await api("vent_pa_status", konto_id=KONTO, ids=[a], until={"VARSLET"}, terminal=(), interval=0.01)

    assert str(result[a].status) == "LEST"
    assert len(server.requests) == 2


async def test_a_failure_ends_waiting_even_without_terminal_statuses(api, server) -> None:
    a = uuid.uuid4()
    server.reply(200, statuser((a, "FEILET_UNDER_MOTTAK")))

    result = await api("vent_pa_status", konto_id=KONTO, ids=[a], until={"LEST"}, terminal=(), interval=0.01)

    assert statuses.is_failure(result[a])


async def test_without_a_status_search_the_status_helpers_say_so(api, server, monkeypatch) -> None:
    monkeypatch.setattr(statuses, "spec_statuses", lambda: None)
    for method, kwargs in (
        ("hent_statuser", {"id": [uuid.uuid4()]}),
        ("hent_status", {"forsendelse_id": uuid.uuid4()}),
        ("vent_pa_status", {"ids": [uuid.uuid4()]}),
    ):
        with pytest.raises(statuses.StatusSearchUnavailableError, match="have no status search"):
            await api(method, konto_id=KONTO, **kwargs)
    assert server.requests == []


# --- the wait's timeout bounds each poll ---------------------------------------------


class _Stall(BaseHTTPRequestHandler):
    """Answers nothing until the test releases it."""

    protocol_version = "HTTP/1.1"
    server: _StallServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.arrived.set()
        self.server.release.wait(30)
        with contextlib.suppress(OSError):
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _StallServer(ThreadingHTTPServer):
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Stall)
        self.arrived = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def stalling():
    srv = _StallServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        thread.join()
        srv.server_close()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_stalling_server_cannot_hold_vent_pa_status_past_its_timeout(stalling, kind) -> None:
    base_url = f"http://127.0.0.1:{stalling.server_address[1]}/api"
    timeouts: list[dict[str, float]] = []
    # The default retry policy retries a timed-out status search; the wait's time bounds that too.
    options = {"base_url": base_url}
    wait = {"konto_id": KONTO, "ids": [uuid.uuid4()], "timeout": 0.5}
    with pytest.raises(errors.VentPaStatusTimeoutError) as caught:
        if kind == "sync":
            http = httpx.Client(event_hooks={"request": [lambda r: timeouts.append(r.extensions["timeout"])]})
            with svarut.SvarUtClient(**options, http_client=http) as client:
                client.vent_pa_status(**wait)
        else:

            async def record(request: httpx.Request) -> None:
                timeouts.append(request.extensions["timeout"])

            ahttp = httpx.AsyncClient(event_hooks={"request": [record]})
            async with svarut.AsyncSvarUtClient(**options, http_client=ahttp) as aclient:
                await aclient.vent_pa_status(**wait)

    # It gave up while the server still held the request: the poll's own timeout ended it.
    assert stalling.arrived.is_set() and not stalling.release.is_set()
    assert isinstance(caught.value.__cause__, errors.APITimeoutError)
    assert caught.value.ventende == wait["ids"]
    assert timeouts and all(0 < t[k] <= 0.5 for t in timeouts for k in ("connect", "read", "write", "pool"))
    assert len(timeouts) == 1  # no retry: it could not have finished within the wait's time


# --- svarut wait ----------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svarut.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _send_person(sim: Any) -> uuid.UUID:
    forsendelse_id: uuid.UUID = sim.client.send_til_person(
        konto_id=sim.konto_id,
        forsendelse=models.PersonForsendelse(
            tittel=f"Vedtak {uuid.uuid4()}",
            mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
            dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
        ),
        dokumenter={"vedtak.pdf": b"%PDF-1.7\n% status test\n%%EOF\n"},
    )
    return forsendelse_id


@pytest.mark.svarut_simulator(step_seconds=3600)
def test_cli_wait_returns_at_once_when_until_was_passed(svarut_simulator) -> None:
    forsendelse_id = _send_person(svarut_simulator)
    svarut_simulator.simulator.advance(3 * 3600)  # MOTTATT → AKSEPTERT → SENDT_DIGITALT → VARSLET

    waited = _cli(["wait", str(forsendelse_id), "--until", "AKSEPTERT", "--timeout", "30"], _env(svarut_simulator))

    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.split("\t")[:2] == [str(forsendelse_id), "VARSLET"]
    assert [r.operation for r in svarut_simulator.requests].count("status") == 1


@pytest.mark.svarut_simulator(step_seconds=0)
def test_cli_wait_exits_6_when_a_letter_fails(svarut_simulator) -> None:
    svarut_simulator.scenarios.force_status("AVVIST")
    failed = _send_person(svarut_simulator)
    fine = _send_person(svarut_simulator)

    waited = _cli(["wait", str(failed), str(fine), "--interval", "0.05"], _env(svarut_simulator))

    assert waited.returncode == EXIT_FAILED == 6
    assert "6  wait: a forsendelse ended in a failure status" in _cli(["--help"], _env(svarut_simulator)).stdout
    assert [line.split("\t")[1] for line in waited.stdout.splitlines()] == ["AVVIST", "LEST"]
    assert f"{failed} ended in AVVIST" in waited.stderr


def _env(sim: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**env, "XDG_CONFIG_HOME": "/nonexistent", **sim.environ()}


# --- the lazy loader ------------------------------------------------------------------


def test_an_import_failure_inside_svarut_names_its_cause(tmp_path, monkeypatch) -> None:
    (tmp_path / "svarut_broken_for_test.py").write_text("from svarut.generated import models\nmodels.NoSuchModel\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(svarut._EXPORTS, "Broken", "svarut_broken_for_test")

    with pytest.raises(ImportError, match="NoSuchModel") as caught:
        from svarut import Broken  # noqa: F401

    assert isinstance(caught.value.__cause__, AttributeError)
