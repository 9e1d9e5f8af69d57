"""Status in bulk and waiting for a status, against the recording server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from conftest import Recorded, RecordingServer, Reply

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

    result = await api("hent_statuser", konto_id=KONTO, ids=[str(i) for i in ids])

    assert [len(json.loads(r.body)["id"]) for r in server.requests] == [100, 100, 50]
    assert [s.id for s in result] == [i for i in ids if i != missing]
    assert result.mangler == [missing]


async def test_bad_ids_are_refused_before_sending(api, server):
    with pytest.raises(errors.ForsendelseValidationError) as caught:
        await api("hent_statuser", konto_id=KONTO, ids=[uuid.uuid4(), "ikke-en-uuid"])
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


# --- reached or passed, failures (svarut.statuses), on both eras of the spec ------------
#
# Spec version 16 removed VARSLET and added SENDT_ALTINN and LEVERT_ALTINN. The client
# follows the version it was generated from (today's: 17); an older one is faked by
# replacing the statuses it reads from the generated models.

#: The Status enum of spec version 15 (upstream c75eba9) and of 17 (2e173af), as upstream has them.
V15 = (
    "MOTTATT", "AKSEPTERT", "AVVIST", "FEILET_UNDER_MOTTAK", "VARSLET", "LEST", "SENDT_PRINT", "PRINTET",
    "MANUELT_HANDTERT", "SENDT_DIGITALT", "SENDT_SDP", "LEVERT_SDP", "KLAR_FOR_MOTTAK", "IKKE_LEVERT", "SLETTET",
    "SENDT_NHN_MOTTAKER", "LEVERT_NHN_MOTTAKER",
)  # fmt: skip
V17 = (
    "MOTTATT", "AKSEPTERT", "AVVIST", "FEILET_UNDER_MOTTAK", "SENDT_ALTINN", "LEVERT_ALTINN", "LEST", "SENDT_PRINT",
    "PRINTET", "MANUELT_HANDTERT", "SENDT_DIGITALT", "SENDT_SDP", "LEVERT_SDP", "KLAR_FOR_MOTTAK", "IKKE_LEVERT",
    "SLETTET", "SENDT_NHN_MOTTAKER", "LEVERT_NHN_MOTTAKER",
)  # fmt: skip
#: Version 12, before FEILET_UNDER_MOTTAK.
V12 = tuple(s for s in V15 if s != "FEILET_UNDER_MOTTAK")
#: A person's letter to a digital mailbox in Altinn, per era.
PERSON_V15 = ("MOTTATT", "AKSEPTERT", "SENDT_DIGITALT", "VARSLET", "LEST")
PERSON_V17 = ("MOTTATT", "AKSEPTERT", "SENDT_ALTINN", "LEVERT_ALTINN", "LEST")


def person_path() -> tuple[str, ...]:
    """The person journey the generated specs should give, by their era."""
    return PERSON_V15 if "VARSLET" in (statuses.spec_statuses() or ()) else PERSON_V17


def _clear_caches() -> None:
    for cached in (statuses.journeys, statuses.terminal_statuses, statuses.failure_statuses):
        cached.cache_clear()


@pytest.fixture
def spec_version() -> Iterator[Callable[[tuple[str, ...]], None]]:
    """Make :mod:`svarut.statuses` answer as if generated from specs with the given statuses
    (the send kinds stay today's). Its caches are emptied before and after."""
    with pytest.MonkeyPatch.context() as patch:

        def use(values: tuple[str, ...]) -> None:
            patch.setattr(statuses, "spec_statuses", lambda: values)
            _clear_caches()

        yield use
    _clear_caches()


def test_the_generated_specs_are_of_one_era() -> None:
    known = set(statuses.spec_statuses() or ())
    assert known in (set(V15), set(V17))
    assert next(j.statuses for j in statuses.journeys() if j.channel == "person") == person_path()


ORGANISASJON_ALTINN_V15 = ("MOTTATT", "AKSEPTERT", "VARSLET", "LEST")
ORGANISASJON_ALTINN_V17 = ("MOTTATT", "AKSEPTERT", "SENDT_ALTINN", "LEVERT_ALTINN", "LEST")


@pytest.mark.parametrize(
    ("values", "person", "organisasjon_altinn", "absent"),
    [
        (V15, PERSON_V15, ORGANISASJON_ALTINN_V15, {"SENDT_ALTINN", "LEVERT_ALTINN"}),
        (V12, PERSON_V15, ORGANISASJON_ALTINN_V15, {"SENDT_ALTINN", "LEVERT_ALTINN"}),
        (V17, PERSON_V17, ORGANISASJON_ALTINN_V17, {"VARSLET"}),
    ],
    ids=["v15", "v12", "v17"],
)
def test_journeys_follow_the_spec_version(spec_version, values, person, organisasjon_altinn, absent) -> None:
    spec_version(values)
    journeys = statuses.journeys()
    by_channel = {j.channel: j.statuses for j in journeys}
    assert len(by_channel) == len(journeys)  # one journey per channel: the eras never overlap
    assert by_channel["person"] == person
    assert statuses.journeys()[0].channel == "person"  # a person's usual path comes first
    # Whole journeys only: every status of every journey is the spec's, none is promised that is not.
    assert all(set(j.statuses) <= set(values) for j in journeys)
    assert not absent & {s for j in journeys for s in j.statuses}
    # Organisations get Altinn letters too, besides SvarInn's KLAR_FOR_MOTTAK.
    assert by_channel["organisasjon"] == ("MOTTATT", "AKSEPTERT", "KLAR_FOR_MOTTAK", "LEST")
    assert by_channel["organisasjon_altinn"] == organisasjon_altinn
    assert {j.kind for j in journeys} == set(svarut.generated.SEND_OPERATIONS)


def test_a_journey_lacking_a_status_is_left_out_whole(spec_version) -> None:
    spec_version(tuple(s for s in V17 if s != "LEVERT_ALTINN"))
    channels = {j.channel for j in statuses.journeys()}
    # Not MOTTATT → AKSEPTERT → SENDT_ALTINN → LEST: that path does not exist.
    assert not channels & {"person", "person_kun_digital", "organisasjon_altinn"}
    assert {"person_print", "person_sdp", "organisasjon", "nhn", "print"} <= channels
    assert statuses.applicable(V17) and all(j.applies(V17) for j in statuses.applicable(V17))


def test_passed_follows_the_channel_order_before_version_16(spec_version) -> None:
    spec_version(V15)
    assert statuses.passed("VARSLET", {"AKSEPTERT"})
    assert statuses.passed("LEST", {"VARSLET"}, seen={"MOTTATT", "SENDT_DIGITALT"})
    # LEST alone could be an organisasjon's through SvarInn, which is never VARSLET: not passed (LEST ends waiting).
    assert not statuses.passed("LEST", {"VARSLET"})
    assert not statuses.passed("PRINTET", {"VARSLET"})
    assert not statuses.passed("AKSEPTERT", {"VARSLET"})
    # The Altinn statuses of later specs are nowhere on this one.
    assert not statuses.passed("LEST", {"LEVERT_ALTINN"}, seen={"SENDT_DIGITALT", "VARSLET"})
    assert not statuses.passed("VARSLET", {"SENDT_ALTINN"})


def test_passed_follows_the_channel_order_from_version_16(spec_version) -> None:
    spec_version(V17)
    assert statuses.passed("LEVERT_ALTINN", {"SENDT_ALTINN"})
    assert statuses.passed("LEVERT_ALTINN", {"AKSEPTERT"})
    assert statuses.passed("LEST", {"LEVERT_ALTINN"}, seen={"MOTTATT", "SENDT_ALTINN"})
    assert not statuses.passed("LEST", {"LEVERT_ALTINN"})  # could be SvarInn's LEST
    assert not statuses.passed("SENDT_ALTINN", {"LEVERT_ALTINN"})
    # A kun-digital letter left unread: SENDT_DIGITALT comes after the inbox, not before it.
    assert statuses.passed("SENDT_DIGITALT", {"LEVERT_ALTINN"})
    assert not statuses.passed("LEVERT_ALTINN", {"SENDT_DIGITALT"})
    # VARSLET is gone: never reached or passed, whatever was seen.
    assert not statuses.passed("LEST", {"VARSLET"}, seen={"SENDT_ALTINN", "LEVERT_ALTINN"})
    assert not statuses.passed("LEVERT_ALTINN", {"VARSLET"})


def test_passed_on_the_generated_specs() -> None:
    path = person_path()
    for i, current in enumerate(path):
        for j, wanted in enumerate(path):
            assert statuses.passed(current, {wanted}, seen=path[:i]) == (j <= i), (current, wanted)
    # A status in no journey has passed nothing but itself.
    assert statuses.passed("NY_STATUS", {"NY_STATUS"})
    assert not statuses.passed("NY_STATUS", {"MOTTATT"})


@pytest.mark.parametrize("values", [V15, V17, None], ids=["v15", "v17", "generated"])
def test_failures_and_terminal_statuses(spec_version, values) -> None:
    if values is not None:
        spec_version(values)
    for value in ("AVVIST", "IKKE_LEVERT", "FEILET_UNDER_MOTTAK"):
        assert statuses.is_failure(value) and statuses.is_terminal(value)
    for value in ("MANUELT_HANDTERT", "SLETTET", "LEST", "PRINTET", "LEVERT_NHN_MOTTAKER"):
        assert statuses.is_terminal(value) and not statuses.is_failure(value)
    # In the mailbox is not the end: a read receipt may follow. Nor are statuses of another version.
    for value in ("MOTTATT", "VARSLET", "SENDT_ALTINN", "LEVERT_ALTINN", "SENDT_DIGITALT", "LEVERT_SDP", "NY_STATUS"):
        assert not statuses.is_terminal(value) and not statuses.is_failure(value)
    status = models.ForsendelseStatus.model_validate(
        {"id": str(uuid.uuid4()), "sisteStatusEndring": "2024-05-02T10:00:00+02:00", "status": "AVVIST"}
    )
    assert statuses.is_failure(status)
    assert statuses.terminal_statuses() <= set(statuses.spec_statuses() or ())


def test_terminal_statuses_of_the_client_are_the_generated_specs() -> None:
    assert statuses.terminal_statuses() == svarut.TERMINAL_STATUSES


@pytest.mark.parametrize("values", [V12, V15, V17, None], ids=["v12", "v15", "v17", "generated"])
def test_every_spec_status_is_classified_and_every_journey_is_bound_to_a_send_kind(spec_version, values) -> None:
    if values is not None:
        spec_version(values)
    journeys = statuses.journeys()
    classified = {s for j in journeys for s in j.statuses} | statuses.terminal_statuses()
    assert set(statuses.spec_statuses() or ()) == classified
    assert {j.kind for j in journeys} == set(svarut.generated.SEND_OPERATIONS)


def test_why_a_status_of_another_version_is_absent(spec_version) -> None:
    spec_version(V17)
    assert "018940d" in (statuses.why_absent("VARSLET") or "") and "removed" in (statuses.why_absent("VARSLET") or "")
    assert statuses.why_absent("LEVERT_ALTINN") is None and statuses.why_absent("NY_STATUS") is None
    spec_version(V15)
    assert "newer specs have it" in (statuses.why_absent("SENDT_ALTINN") or "")
    assert statuses.why_absent("VARSLET") is None


def test_the_simulator_offers_only_statuses_of_the_generated_specs(svarut_simulator) -> None:
    gone = "SENDT_ALTINN" if "VARSLET" in (statuses.spec_statuses() or ()) else "VARSLET"
    with pytest.raises(ValueError, match=f"{gone}.*not a status of the specs"):
        svarut_simulator.scenarios.force_status(gone)
    from svarut.simulator.records import journey, path_for_kind

    assert path_for_kind("person") == journey("person") == person_path()


async def test_until_returns_at_once_when_the_status_was_passed(api, server) -> None:
    a = uuid.uuid4()
    notified = person_path()[3]  # VARSLET, or LEVERT_ALTINN from version 16
    server.reply(200, statuser((a, notified)))

    result = await api("vent_pa_status", konto_id=KONTO, ids=[a], until={"AKSEPTERT"}, interval=0.01)

    assert str(result[a].status) == notified
    assert len(server.requests) == 1


async def test_until_the_inbox_ends_at_lest_after_the_digital_channel_was_seen(api, server) -> None:
    a = uuid.uuid4()
    sent, notified = person_path()[2:4]  # SENDT_DIGITALT, VARSLET; or SENDT_ALTINN, LEVERT_ALTINN
    server.reply(200, statuser((a, sent)))
    server.reply(200, statuser((a, "LEST")))

    result = await api("vent_pa_status", konto_id=KONTO, ids=[a], until={notified}, terminal=(), interval=0.01)

    assert str(result[a].status) == "LEST"
    assert len(server.requests) == 2


async def test_until_a_status_the_specs_lack_is_refused_with_the_reason(api, server) -> None:
    gone = "SENDT_ALTINN" if "VARSLET" in (statuses.spec_statuses() or ()) else "VARSLET"

    with pytest.raises(ValueError, match=f"until: '{gone}' is not a status of the specs") as caught:
        await api("vent_pa_status", konto_id=KONTO, ids=[uuid.uuid4()], until={gone}, interval=0.01)

    assert statuses.why_absent(gone) in str(caught.value)  # newer specs removed it, or only newer ones have it
    assert server.requests == []


# --- item 4 of issue 22: until and ids say what they take -------------------------------


async def test_a_bare_str_for_until_terminal_or_ids_is_refused(api, server) -> None:
    # A str is a collection of its characters: until="AKSEPTERT" used to wait for a final status instead.
    with pytest.raises(TypeError, match=r"until takes a collection of statuses, such as until=\{'AKSEPTERT'\}"):
        await api("vent_pa_status", konto_id=KONTO, ids=[uuid.uuid4()], until="AKSEPTERT")
    with pytest.raises(TypeError, match="terminal takes a collection of statuses"):
        await api("vent_pa_status", konto_id=KONTO, ids=[uuid.uuid4()], terminal="LEST")
    forsendelse_id = str(uuid.uuid4())
    with pytest.raises(TypeError, match=r"ids takes a list of forsendelse ids, such as ids=\[forsendelse_id\]"):
        await api("vent_pa_status", konto_id=KONTO, ids=forsendelse_id, until={"AKSEPTERT"})
    with pytest.raises(TypeError, match="ids takes a list of forsendelse ids"):
        await api("hent_statuser", konto_id=KONTO, ids=forsendelse_id)
    assert server.requests == []


async def test_a_misspelt_status_is_refused_naming_the_valid_ones(api, server) -> None:
    with pytest.raises(ValueError, match="'AKSEPTRT' is not a status") as caught:
        await api("vent_pa_status", konto_id=KONTO, ids=[uuid.uuid4()], until={"AKSEPTRT"})
    assert all(member.value in str(caught.value) for member in models.Status)  # the generated enum's, all of them
    with pytest.raises(ValueError, match="terminal: 'FERDIG' is not a status"):
        await api("vent_pa_status", konto_id=KONTO, ids=[uuid.uuid4()], terminal={"FERDIG"})
    assert server.requests == []


async def test_until_takes_enum_members_and_names_alike(api, server) -> None:
    a = uuid.uuid4()
    server.reply(200, statuser((a, "AKSEPTERT")))
    server.reply(200, statuser((a, "AKSEPTERT")))

    by_member = await api("vent_pa_status", konto_id=KONTO, ids=[a], until={models.Status.AKSEPTERT}, interval=0.01)
    by_name = await api("vent_pa_status", konto_id=KONTO, ids=[a], until=["AKSEPTERT"], interval=0.01)

    assert by_member[a].status is models.Status.AKSEPTERT and by_name[a].status is models.Status.AKSEPTERT


# --- item 6 of issue 22: ids= on hent_statuser as on vent_pa_status ---------------------


async def test_hent_statuser_takes_ids_and_id_is_a_deprecated_alias(api, server) -> None:
    a = uuid.uuid4()
    server.reply(200, statuser((a, "LEST")))
    server.reply(200, statuser((a, "LEST")))

    assert [s.id for s in await api("hent_statuser", konto_id=KONTO, ids=[a])] == [a]
    with pytest.warns(DeprecationWarning, match=r"hent_statuser\(id=...\) is deprecated: pass ids="):
        assert [s.id for s in await api("hent_statuser", konto_id=KONTO, id=[a])] == [a]
    with pytest.raises(TypeError, match="give ids= only"):
        await api("hent_statuser", konto_id=KONTO, ids=[a], id=[a])


def test_an_unknown_status_still_parses_and_a_known_one_is_the_enum() -> None:
    when = "2024-05-02T10:00:00+02:00"
    known = models.ForsendelseStatus.model_validate(
        {"id": str(uuid.uuid4()), "sisteStatusEndring": when, "status": "LEST"}
    )
    newer = models.ForsendelseStatus.model_validate(
        {"id": str(uuid.uuid4()), "sisteStatusEndring": when, "status": "NY_STATUS"}
    )
    assert known.status is models.Status.LEST
    assert isinstance(newer.status, models.UnknownValue) and newer.status == "NY_STATUS"
    assert newer.model_dump(mode="json")["status"] == "NY_STATUS"


# --- the generator's check of the binding, on every version of the spec -----------------


def _history_api(version: str) -> Any:
    from generator_helpers import require_history

    from generator.normalize import build_api

    folder = require_history() / version
    return build_api({f.name: json.loads(f.read_text()) for f in folder.glob("forsendelse-*.json")})


@pytest.mark.parametrize("version", [f"{n:02d}" for n in range(2, 17)])
def test_the_binding_fits_every_older_spec_version(version) -> None:
    from generator_helpers import require_history

    from generator.check_statuses import status_binding_warnings, verify_status_binding

    (folder,) = require_history().glob(f"{version}-*")
    api = _history_api(folder.name)
    assert verify_status_binding(api) == []
    warnings = status_binding_warnings(api)
    if int(version) < 16:
        assert [w.split("'")[1] for w in warnings if "is not in these specs" in w][:2] == [
            "SENDT_ALTINN",
            "LEVERT_ALTINN",
        ]
    else:
        assert warnings == []
    assert not any("VARSLET" in w or "unclassified" in w or "every journey" in w for w in warnings)


def test_the_binding_fits_the_locked_spec_and_states_removals() -> None:
    from generator_helpers import STATUS, official_specs

    from generator.check_statuses import status_binding_warnings, verify_status_binding
    from generator.normalize import build_api

    locked = official_specs()
    assert verify_status_binding(build_api(locked)) == []
    assert status_binding_warnings(build_api(locked)) == []

    enum = locked[STATUS]["components"]["schemas"]["ForsendelseStatus"]["properties"]["status"]["enum"]
    # A required status gone without a declaration stops generation, naming both ways to declare it.
    enum.remove("KLAR_FOR_MOTTAK")
    (problem,) = verify_status_binding(build_api(locked))
    assert "'KLAR_FOR_MOTTAK' is not in the spec's Status enum" in problem
    assert "INTRODUCED_LATER" in problem and "REMOVED_LATER" in problem


def test_a_status_declared_both_added_and_removed_is_a_problem(monkeypatch) -> None:
    from generator_helpers import official_specs

    from generator.check_statuses import verify_status_binding
    from generator.normalize import build_api

    monkeypatch.setitem(statuses.REMOVED_LATER, "SENDT_ALTINN", "spec version 99")
    (problem,) = verify_status_binding(build_api(official_specs()))
    assert "'SENDT_ALTINN' is declared both in INTRODUCED_LATER and in REMOVED_LATER" in problem


async def test_a_failure_ends_waiting_even_without_terminal_statuses(api, server) -> None:
    a = uuid.uuid4()
    server.reply(200, statuser((a, "FEILET_UNDER_MOTTAK")))

    result = await api("vent_pa_status", konto_id=KONTO, ids=[a], until={"LEST"}, terminal=(), interval=0.01)

    assert statuses.is_failure(result[a])


async def test_without_a_status_search_the_status_helpers_say_so(api, server, monkeypatch) -> None:
    monkeypatch.setattr(statuses, "spec_statuses", lambda: None)
    for method, kwargs in (
        ("hent_statuser", {"ids": [uuid.uuid4()]}),
        ("hent_status", {"forsendelse_id": uuid.uuid4()}),
        ("vent_pa_status", {"ids": [uuid.uuid4()]}),
    ):
        with pytest.raises(statuses.StatusSearchUnavailableError, match="have no status search"):
            await api(method, konto_id=KONTO, **kwargs)
    assert server.requests == []


# --- the wait's timeout bounds each poll ---------------------------------------------


@dataclass
class Stalling:
    """The recording server, answering nothing until the test ends."""

    server: RecordingServer
    arrived: threading.Event


@pytest.fixture
def stalling(server: RecordingServer) -> Stalling:
    arrived = threading.Event()

    def stall(request: Recorded) -> Reply:
        arrived.set()
        return Reply(503, delay=30)  # the server's teardown ends the wait, unanswered

    server.responder = stall
    return Stalling(server, arrived)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_stalling_server_cannot_hold_vent_pa_status_past_its_timeout(stalling, kind) -> None:
    base_url = stalling.server.base_url
    timeouts: list[dict[str, float]] = []
    # The default retry policy retries a timed-out status search; the wait's time bounds that too.
    options = {"base_url": base_url}
    wait = {"konto_id": KONTO, "ids": [uuid.uuid4()], "timeout": 0.5}
    with pytest.raises(errors.VentPaStatusTimeoutError) as caught:
        if kind == "sync":
            http = httpx2.Client(event_hooks={"request": [lambda r: timeouts.append(r.extensions["timeout"])]})
            with svarut.SvarUtClient(**options, http_client=http) as client:
                client.vent_pa_status(**wait)
        else:

            async def record(request: httpx2.Request) -> None:
                timeouts.append(request.extensions["timeout"])

            ahttp = httpx2.AsyncClient(event_hooks={"request": [record]})
            async with svarut.AsyncSvarUtClient(**options, http_client=ahttp) as aclient:
                await aclient.vent_pa_status(**wait)

    # It gave up while the server still held the request: the poll's own timeout ended it.
    assert stalling.arrived.is_set() and not stalling.server.stopping.is_set()
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
    svarut_simulator.simulator.advance(3 * 3600)  # MOTTATT → AKSEPTERT → SENDT_ALTINN → LEVERT_ALTINN (or 15's)

    waited = _cli(["wait", str(forsendelse_id), "--until", "AKSEPTERT", "--timeout", "30"], _env(svarut_simulator))

    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.split("\t")[:2] == [str(forsendelse_id), person_path()[3]]
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
