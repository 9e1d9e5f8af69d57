"""Settling an unknown send outcome from SvarUt itself (``avklar_utfall``):
the generated eksternRef lookup on the wire, the decision rules, and the whole
path against the simulator with the sync and the async client."""

from __future__ import annotations

import logging
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from generator_helpers import LOOKUP, official_specs

import svarut
from generator.check_utfall import utfall_binding_warnings, verify_utfall_binding
from generator.normalize import build_api
from svarut import _client, errors, models, utfall
from svarut.simulator import Simulator

PDF = b"%PDF-1.7\n% utfall\n%%EOF\n"
KONTO = uuid.UUID("0b5e9f3a-7c43-4d55-9a39-9d1f2c3b4a51")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
GENERATED = re.compile(r"fiks-svarut-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
AWKWARD = ["sak 2026/42: vedtak", "ærlig-øst-å", "a&b=c+d%20e#f?g", " leading and trailing "]


def person(tittel: str = "Vedtak", ekstern_referanse: str | None = None) -> models.PersonForsendelse:
    extra = {} if ekstern_referanse is None else {"ekstern_referanse": ekstern_referanse}
    return models.PersonForsendelse(
        tittel=tittel,
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
        **extra,
    )


# --- the decision ------------------------------------------------------------------------------


def test_exactly_one_forsendelse_is_mottatt() -> None:
    found = str(uuid.uuid4())
    result = utfall.avgjor("ref", [found], sendt=None, now=NOW)
    assert (result.tilstand, result.forsendelse_id, result.funnet) == ("mottatt", uuid.UUID(found), (uuid.UUID(found),))
    assert not result.trygt_a_sende_pa_nytt


def test_several_forsendelser_are_uavklart_never_guessed() -> None:
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    result = utfall.avgjor("ref", ids, sendt=NOW - timedelta(days=1), now=NOW)
    assert result.tilstand == "uavklart" and result.forsendelse_id is None
    assert result.funnet == tuple(uuid.UUID(i) for i in ids)
    assert "2 forsendelser" in result.grunn


def test_none_found_is_ikke_mottatt_only_after_the_window() -> None:
    window = utfall.AVKLARING_VINDU
    assert window == timedelta(minutes=20)
    inside = utfall.avgjor("ref", [], sendt=NOW - window + timedelta(seconds=1), now=NOW)
    assert inside.tilstand == "uavklart" and "ask again after" in inside.grunn
    at = utfall.avgjor("ref", [], sendt=NOW - window, now=NOW)
    assert at.tilstand == "ikke_mottatt" and at.trygt_a_sende_pa_nytt
    custom = utfall.avgjor("ref", [], sendt=NOW - timedelta(seconds=5), now=NOW, vindu=timedelta(0))
    assert custom.tilstand == "ikke_mottatt"


def test_none_found_without_knowing_when_is_uavklart() -> None:
    result = utfall.avgjor("ref", [], sendt=None, now=NOW)
    assert result.tilstand == "uavklart" and "not known" in result.grunn


def test_a_naive_sendt_is_utc_and_an_id_that_is_no_uuid_is_kept() -> None:
    naive = (NOW - timedelta(hours=1)).replace(tzinfo=None)
    assert utfall.avgjor("ref", [], sendt=naive, now=NOW).sendt == NOW - timedelta(hours=1)
    assert utfall.avgjor("ref", ["ikke-en-uuid"], sendt=None, now=NOW).forsendelse_id == "ikke-en-uuid"
    # The same id twice is one forsendelse.
    same = str(uuid.uuid4())
    assert utfall.avgjor("ref", [same, same], sendt=None, now=NOW).tilstand == "mottatt"


# --- the generated lookup on the wire ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("referanse", AWKWARD)
async def test_the_reference_is_looked_up_exactly_as_given(api: Any, server: Any, referanse: str) -> None:
    found = str(uuid.uuid4())
    server.reply(200, {"forsendelseIds": [found]})
    result = await api("finn_forsendelser_knyttet_til_ekstern_ref", konto_id=KONTO, ekstern_ref=referanse)
    assert result == [found]
    [request] = server.requests
    assert request.method == "GET" and request.body == b""
    path, _, query = request.path.partition("?")
    assert path == f"/api/v2/kontoer/{KONTO}/forsendelser"
    # Every reserved character is percent-encoded, so the server reads the value as given.
    assert re.fullmatch(r"eksternRef=[A-Za-z0-9%._~-]+", query), query
    assert urllib.parse.parse_qs(query, keep_blank_values=True) == {"eksternRef": [referanse]}


@pytest.mark.anyio
async def test_an_empty_reference_is_refused_before_the_wire(api: Any, server: Any) -> None:
    with pytest.raises(errors.ForsendelseValidationError) as caught:
        await api("finn_forsendelser_knyttet_til_ekstern_ref", konto_id=KONTO, ekstern_ref="")
    assert [(p.field, p.rule) for p in caught.value.problems] == [("eksternRef", "query")]
    assert "at least 1 character" in caught.value.problems[0].message
    assert server.requests == []


@pytest.mark.anyio
async def test_the_lookup_with_metadata_reads_each_forsendelse(api: Any, server: Any) -> None:
    found = str(uuid.uuid4())
    server.reply(200, {"forsendelser": [{"id": found, "dato": "2026-12-07T10:00:00Z", "ukjent": 1}]})
    [item] = await api("finn_forsendelser_knyttet_til_ekstern_ref_med_metadata", konto_id=KONTO, ekstern_ref="r")
    assert (item.id, item.dato) == (found, datetime(2026, 12, 7, 10, tzinfo=UTC))
    assert server.requests[0].path == f"/api/v2/kontoer/{KONTO}/forsendelser/metadata?eksternRef=r"


@pytest.mark.anyio
async def test_avklar_utfall_decides_from_the_answer(api: Any, server: Any) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    dato = datetime.now(UTC).isoformat()
    server.reply(200, {"forsendelser": [{"id": a, "dato": dato}, {"id": b, "dato": dato}]})
    result = await api("avklar_utfall", konto_id=KONTO, ekstern_referanse="ref", sendt=NOW)
    assert result.tilstand == "uavklart" and result.funnet == (uuid.UUID(a), uuid.UUID(b))
    assert server.requests[0].path.startswith(f"/api/v2/kontoer/{KONTO}/forsendelser/metadata?")
    server.reply(200, {"forsendelser": []})
    old = datetime.now(UTC) - timedelta(hours=1)
    assert (await api("avklar_utfall", konto_id=KONTO, ekstern_referanse="ref", sendt=old)).tilstand == "ikke_mottatt"


@pytest.mark.anyio
async def test_a_failing_lookup_settles_nothing(api: Any, server: Any) -> None:
    for _ in range(4):  # the lookup only reads, so it is retried like the status search
        server.reply(503, {"status": 503, "message": "nede"})
    with pytest.raises(errors.InternalServerError):
        await api("avklar_utfall", konto_id=KONTO, ekstern_referanse="ref", sendt=NOW - timedelta(days=1))
    assert len(server.requests) == 4


@pytest.mark.anyio
async def test_a_reference_that_was_not_sent_cannot_be_looked_up(api: Any, server: Any) -> None:
    with pytest.raises(errors.ForsendelseValidationError, match="leave generate_ekstern_referanse on"):
        await api("avklar_utfall", konto_id=KONTO, ekstern_referanse=None, sendt=NOW)
    assert server.requests == []


@pytest.mark.anyio
async def test_specs_without_the_lookup_say_so(api: Any, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_client, "ENDPOINTS", {})
    with pytest.raises(utfall.LookupUnavailableError, match="no eksternRef lookup"):
        await api("avklar_utfall", konto_id=KONTO, ekstern_referanse="ref", sendt=NOW)
    assert server.requests == []


# --- every send carries a reference ------------------------------------------------------------------


def test_a_send_without_a_reference_gets_one_visible_in_the_log_and_on_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Simulator(step_seconds=0) as sim, sim.client() as client:
        with caplog.at_level(logging.INFO, logger="svarut"):
            forsendelse_id = client.send_til_person(konto_id=sim.konto_id, forsendelse=person(), dokumenter=_docs())
        referanse = sim.get(forsendelse_id).ekstern_referanse
        assert referanse is not None and GENERATED.fullmatch(referanse)
        assert referanse in caplog.text
        sim.scenarios.reset(when="after_body", accept=True)
        with pytest.raises(errors.SendOutcomeUnknownError) as caught:
            client.send_til_person(konto_id=sim.konto_id, forsendelse=person("Nytt"), dokumenter=_docs())
        assert caught.value.ekstern_referanse is not None and GENERATED.fullmatch(caught.value.ekstern_referanse)
        assert caught.value.ekstern_referanse in str(caught.value) and "avklar" in str(caught.value)
    with Simulator(step_seconds=0) as sim, sim.client(generate_ekstern_referanse=False) as without:
        forsendelse_id = without.send_til_person(konto_id=sim.konto_id, forsendelse=person(), dokumenter=_docs())
        assert sim.get(forsendelse_id).ekstern_referanse is None


def _docs() -> dict[str, bytes]:
    return {"vedtak.pdf": PDF}


# --- the whole path, against the simulator ------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(step_seconds=0) as simulator:
        yield simulator


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Client:
    """The sync or the async client, called the same way."""

    def __init__(self, sim: Simulator, kind: str) -> None:
        self.sim, self.kind = sim, kind

    async def __call__(self, method: str, **kwargs: Any) -> Any:
        if self.kind == "sync":
            with self.sim.client() as client:
                return getattr(client, method)(**kwargs)
        async with self.sim.async_client() as client:
            return await getattr(client, method)(**kwargs)


@pytest.fixture
def call(sim: Simulator, kind: str) -> Client:
    return Client(sim, kind)


@pytest.mark.anyio
@pytest.mark.parametrize("referanse", [None, *AWKWARD])
async def test_answer_lost_after_svarut_kept_it_is_mottatt(sim: Simulator, call: Client, referanse: str | None) -> None:
    sim.scenarios.reset(when="after_body", accept=True)
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        await call(
            "send_til_person",
            konto_id=sim.konto_id,
            forsendelse=person(ekstern_referanse=referanse),
            dokumenter=_docs(),
        )
    [kept] = sim.received
    assert caught.value.sendt is not None and caught.value.sendt <= datetime.now(UTC)
    result = await call("avklar_utfall", **caught.value.avklaring)
    assert (result.tilstand, result.forsendelse_id) == ("mottatt", kept.id)
    if referanse is not None:
        assert result.ekstern_referanse == referanse == kept.ekstern_referanse


@pytest.mark.anyio
async def test_answer_lost_before_svarut_kept_it_is_ikke_mottatt_after_the_window_and_sent_once(
    sim: Simulator, call: Client
) -> None:
    sim.scenarios.fail(503, only="send")  # read and lost: SvarUt did not keep it, but the client cannot know
    forsendelse = person(ekstern_referanse="sak-7")
    with pytest.raises(errors.SendOutcomeUnknownError) as caught:
        await call("send_til_person", konto_id=sim.konto_id, forsendelse=forsendelse, dokumenter=_docs())
    assert sim.received == []
    inside = await call("avklar_utfall", **caught.value.avklaring)
    assert inside.tilstand == "uavklart"  # 20 minutes have not passed
    settled = await call("avklar_utfall", **caught.value.avklaring, vindu=timedelta(0))
    assert settled.tilstand == "ikke_mottatt" and settled.trygt_a_sende_pa_nytt
    forsendelse_id = await call("send_til_person", konto_id=sim.konto_id, forsendelse=forsendelse, dokumenter=_docs())
    assert [r.id for r in sim.received] == [forsendelse_id]
    again = await call("avklar_utfall", **caught.value.avklaring, vindu=timedelta(0))
    assert (again.tilstand, again.forsendelse_id) == ("mottatt", forsendelse_id)


@pytest.mark.anyio
async def test_a_reused_reference_is_uavklart_listing_both(sim: Simulator, call: Client) -> None:
    first = await call(
        "send_til_person", konto_id=sim.konto_id, forsendelse=person("En", "gjenbrukt"), dokumenter=_docs()
    )
    second = await call(
        "send_til_person", konto_id=sim.konto_id, forsendelse=person("To", "gjenbrukt"), dokumenter=_docs()
    )
    result = await call("avklar_utfall", konto_id=sim.konto_id, ekstern_referanse="gjenbrukt", sendt=None)
    assert result.tilstand == "uavklart" and set(result.funnet) == {first, second}


@pytest.mark.anyio
async def test_the_lookup_sees_only_its_own_konto(call: Client) -> None:
    other = uuid.uuid4()
    with Simulator(step_seconds=0, konto_ids=[uuid.uuid4(), other]) as sim:
        mine = Client(sim, call.kind)
        await mine(
            "send_til_person", konto_id=sim.konto_id, forsendelse=person(ekstern_referanse="r"), dokumenter=_docs()
        )
        result = await mine("avklar_utfall", konto_id=other, ekstern_referanse="r", sendt=NOW)
        assert result.tilstand == "ikke_mottatt"
        [item] = await mine(
            "finn_forsendelser_knyttet_til_ekstern_ref_med_metadata", konto_id=sim.konto_id, ekstern_ref="r"
        )
        assert item.id == str(sim.received[0].id) and item.dato == sim.received[0].received_at


@pytest.mark.anyio
async def test_a_lookup_the_simulator_fails_settles_nothing(sim: Simulator, call: Client) -> None:
    sim.scenarios.fail(503, count=10, only="lookup")
    with pytest.raises(errors.InternalServerError):
        await call("avklar_utfall", konto_id=sim.konto_id, ekstern_referanse="r", sendt=NOW - timedelta(days=1))
    assert [r.status for r in sim.requests if r.operation == "lookup"] == [503] * 4


# --- the binding to the spec ---------------------------------------------------------------------------


def _lookup_spec(specs: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = specs[LOOKUP]
    return spec


def test_the_locked_specs_satisfy_the_lookup_binding() -> None:
    api = build_api(official_specs())
    assert verify_utfall_binding(api) == [] and utfall_binding_warnings(api) == []
    (operation,) = [o for o in api.operations if o.operation_id == utfall.LOOKUP_OPERATION]
    assert [(p.spec_name, p.location, p.required, p.min_length) for p in operation.parameters] == [
        (utfall.KONTO_PARAMETER, "path", True, None),
        (utfall.REFERANSE_PARAMETER, "query", True, 1),
    ]
    assert utfall.METADATA_OPERATION in {o.operation_id for o in api.operations}


@pytest.mark.parametrize("renamed", [utfall.KONTO_PARAMETER, utfall.REFERANSE_PARAMETER])
def test_a_renamed_lookup_parameter_stops_generation(renamed: str) -> None:
    specs = official_specs()
    for item in _lookup_spec(specs)["paths"].values():
        for parameter in item["get"]["parameters"]:
            if parameter["name"] == renamed:
                parameter["name"] = renamed + "Ny"
    for item in list(_lookup_spec(specs)["paths"]):  # the path template follows a renamed path parameter
        _lookup_spec(specs)["paths"][item.replace("{kontoId}", "{kontoIdNy}") if renamed == "kontoId" else item] = (
            _lookup_spec(specs)["paths"].pop(item)
        )
    problems = verify_utfall_binding(build_api(specs))
    assert problems and all(utfall.LOOKUP_OPERATION in p for p in problems)
    assert any(repr(renamed) in p for p in problems), problems


def test_specs_without_the_lookup_warn_and_generate() -> None:
    specs = official_specs()
    del specs[LOOKUP]
    api = build_api(specs)
    assert verify_utfall_binding(api) == []
    assert utfall_binding_warnings(api) == [
        f"the specs have no eksternRef lookup {utfall.LOOKUP_OPERATION!r}: avklar_utfall raises "
        "LookupUnavailableError and the simulator has no lookup route"
    ]


def test_the_fake_server_of_the_tests_answers_a_lookup(server: Any) -> None:
    with svarut.SvarUtClient(base_url=server.base_url, validate=False) as client:
        assert client.finn_forsendelser_knyttet_til_ekstern_ref(konto_id=KONTO, ekstern_ref="r") == []


def test_a_forsendelse_dated_before_the_attempt_is_not_its_result() -> None:
    found = str(uuid.uuid4())
    began = NOW - timedelta(hours=1)
    slack = utfall.KLOKKE_SLINGRING
    earlier = utfall.avgjor("ref", [found], sendt=began, now=NOW, datert={found: began - slack - timedelta(seconds=1)})
    assert earlier.tilstand == "uavklart" and "used before" in earlier.grunn
    assert earlier.funnet == (uuid.UUID(found),) and earlier.forsendelse_id is None
    # Within the clocks' slack, or after the attempt began, it is this attempt's.
    close = utfall.avgjor("ref", [found], sendt=began, now=NOW, datert={found: began - slack})
    assert (close.tilstand, close.forsendelse_id) == ("mottatt", uuid.UUID(found))


@pytest.mark.anyio
async def test_a_reference_used_by_an_earlier_forsendelse_settles_nothing(sim: Simulator, call: Client) -> None:
    """A reference another system (or an earlier run) used: the one SvarUt has is older than the attempt."""
    await call(
        "send_til_person", konto_id=sim.konto_id, forsendelse=person(ekstern_referanse="gammel"), dokumenter=_docs()
    )
    later = datetime.now(UTC) + timedelta(minutes=10)
    result = await call(
        "avklar_utfall", konto_id=sim.konto_id, ekstern_referanse="gammel", sendt=later, vindu=timedelta(0)
    )
    assert result.tilstand == "uavklart" and result.funnet == (sim.received[0].id,)
    assert [r.operation for r in sim.requests][-1] == "lookup"
    assert sim.requests[-1].path.endswith("/forsendelser/metadata")


def test_the_lookup_with_metadata_must_date_its_forsendelser() -> None:
    specs = official_specs()
    schemas = _lookup_spec(specs)["components"]["schemas"]
    schemas["Forsendelse"]["properties"]["opprettet"] = schemas["Forsendelse"]["properties"].pop("dato")
    schemas["Forsendelse"]["required"] = ["id", "opprettet"]
    problems = verify_utfall_binding(build_api(specs))
    assert problems == [
        f"svarut/utfall.py: the eksternRef lookup {utfall.METADATA_OPERATION!r}: its forsendelser have no "
        "string (date-time) property 'dato' (have ['avgivendeSystem', 'id', 'opprettet'])"
    ]


@pytest.mark.anyio
async def test_specs_with_only_the_ids_lookup_are_asked_that(
    api: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from svarut.generated import ENDPOINTS

    monkeypatch.setattr(_client, "ENDPOINTS", {utfall.LOOKUP_OPERATION: ENDPOINTS[utfall.LOOKUP_OPERATION]})
    found = str(uuid.uuid4())
    server.reply(200, {"forsendelseIds": [found]})
    result = await api("avklar_utfall", konto_id=KONTO, ekstern_referanse="ref", sendt=NOW)
    assert (result.tilstand, result.forsendelse_id) == ("mottatt", uuid.UUID(found))
    assert server.requests[0].path == f"/api/v2/kontoer/{KONTO}/forsendelser?eksternRef=ref"
