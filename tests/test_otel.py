"""OpenTelemetry (``fiks-svarut[otel]``, :mod:`svarut.otel`): the spans and
metrics of sends, refused sends, unknown outcomes, retried status searches,
prepared sends and batch runs, with the sync and the async client, against
the real simulator, recorded by the SDK's in-memory exporter and reader; and
not one attribute value that holds the fødselsnummer, name or address of a
letter sent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import svarut
import svarut.otel
from svarut import errors, models
from svarut.generated import SEND_OPERATIONS
from svarut.runtime import instrumentation
from svarut.runtime.retry import RetryPolicy
from svarut.simulator import Simulator

FNR = "21883649874"  # synthetic (Tenor) test person
BAD_FNR = "21883649875"  # a wrong check digit: the pre-send rules refuse it
NAVN = "Kari Nordmann"
ADRESSE = ("Storgata 12 B", "0155", "Oslo")
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.02)
PDF = b"%PDF-1.7\n% otel test\n%%EOF\n"
# Everything of a letter that is personal data: no attribute value may contain one.
PERSONAL = (FNR, BAD_FNR, NAVN, "Kari", "Nordmann", *ADRESSE)


@dataclass
class Recorded:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer: Any

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.spans(name)
        return found

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [
            point
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == metric
            for point in m.data.data_points
        ]

    def total(self, metric: str, **attributes: Any) -> float:
        return sum(p.value for p in self.points(metric) if all(p.attributes.get(k) == v for k, v in attributes.items()))


@pytest.fixture
def otel() -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    previous = instrumentation.set_instrumentation(None)
    svarut.otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Recorded(exporter, reader, tracer_provider.get_tracer("test"))
    finally:
        instrumentation.set_instrumentation(previous)
        meter_provider.shutdown()
        tracer_provider.shutdown()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(step_seconds=0.05, storage_dir=tmp_path / "sim") as simulator:
        yield simulator


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def person(tittel: str = "Vedtak", *, digital_id: str = FNR, **fields: Any) -> models.PersonForsendelse:
    adresse = models.Adresse(adresselinje1=ADRESSE[0], postnummer=ADRESSE[1], poststed=ADRESSE[2])
    return models.PersonForsendelse(
        tittel=tittel,
        mottaker=models.Mottaker(navn=NAVN, digital_id=digital_id, adresse=adresse),
        dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
        **fields,
    )


async def call(sim: Simulator, kind: str, method: str, **kwargs: Any) -> Any:
    """``method`` on a fresh sync or async client of the simulator (a fresh token fetch each time)."""
    if kind == "sync":
        with sim.client(retry=FAST, timeout=10.0) as client:
            return getattr(client, method)(**kwargs)
    async with sim.async_client(retry=FAST, timeout=10.0) as aclient:
        return await getattr(aclient, method)(**kwargs)


async def send(sim: Simulator, kind: str, forsendelse: models.PersonForsendelse | None = None) -> Any:
    return await call(
        sim,
        kind,
        "send_til_person",
        konto_id=sim.konto_id,
        forsendelse=forsendelse or person(),
        dokumenter={"a.pdf": PDF + uuid.uuid4().bytes},
    )


def every_attribute_value(otel: Recorded) -> list[str]:
    values: list[Any] = []
    for span in otel.spans():
        values += list((span.attributes or {}).values())
        for event in span.events:
            values += list((event.attributes or {}).values())
        values.append(span.name)
        values.append(span.status.description)
    data = otel.reader.get_metrics_data()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for point in m.data.data_points:
                    values += list(point.attributes.values())
    return [str(v) for v in values if v is not None]


def assert_no_personal_data(otel: Recorded) -> None:
    values = every_attribute_value(otel)
    assert values
    # A postnummer's four digits turn up inside ids by chance: it counts standing alone.
    patterns = [
        re.escape(p.lower()) if not p.isdigit() or len(p) >= 11 else rf"(?<![\w-]){p}(?![\w-])" for p in PERSONAL
    ]
    leaks = [(v, p) for v in values for p in patterns if re.search(p, v.lower())]
    assert leaks == []


# --- a send ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_send_is_a_span_under_the_callers_with_the_token_fetch_inside(
    sim: Simulator, otel: Recorded, kind: str
) -> None:
    with otel.tracer.start_as_current_span("caller") as caller:
        forsendelse_id = await send(sim, kind, person(ekstern_referanse="sak-2024-17"))
    span = otel.span("svarut.send_til_person")
    assert span.parent is not None and span.parent.span_id == caller.get_span_context().span_id
    assert span.kind.name == "CLIENT"
    attributes = dict(span.attributes or {})
    assert attributes["svarut.operation"] == "send_til_person"
    assert attributes["svarut.kind"] == "person"
    assert attributes["svarut.konto_id"] == str(sim.konto_id)
    assert attributes["svarut.document.count"] == 1
    assert attributes["svarut.document.bytes"] == len(PDF) + 16
    assert attributes["svarut.ekstern_referanse"] == "sak-2024-17"
    assert attributes["svarut.forsendelse_id"] == str(forsendelse_id)
    assert attributes["svarut.attempts"] == 1
    assert attributes["svarut.outcome"] == "sent"
    assert int(attributes["svarut.sent.bytes"]) > len(PDF)
    assert "error.type" not in attributes
    assert span.status.status_code.name == "UNSET"
    # The token request the send needed, in the send's span (the async client's runs in a worker thread).
    token = otel.span("svarut.maskinporten.token")
    assert token.parent is not None and token.parent.span_id == span.context.span_id
    assert token.context.trace_id == caller.get_span_context().trace_id
    assert (token.attributes or {})["svarut.outcome"] == "ok"

    assert otel.total("svarut.sends", **{"svarut.outcome": "sent", "svarut.kind": "person"}) == 1
    assert otel.total("svarut.sent.bytes") == attributes["svarut.sent.bytes"]
    (duration,) = otel.points("svarut.send.duration")
    assert duration.count == 1 and duration.attributes["svarut.outcome"] == "sent"
    assert otel.total("svarut.maskinporten.token_fetches", **{"svarut.outcome": "ok"}) == 1
    assert otel.total("svarut.sends.unknown") == 0
    assert_no_personal_data(otel)


@pytest.mark.anyio
async def test_a_generated_ekstern_referanse_is_on_the_span(sim: Simulator, otel: Recorded, kind: str) -> None:
    await send(sim, kind)
    reference = (otel.span("svarut.send_til_person").attributes or {})["svarut.ekstern_referanse"]
    assert str(reference).startswith("fiks-svarut-")
    assert [f.ekstern_referanse for f in sim.received] == [reference]


# --- refused -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_send_the_checks_refuse_is_refused_with_nothing_on_the_wire(
    sim: Simulator, otel: Recorded, kind: str
) -> None:
    with pytest.raises(errors.ForsendelseValidationError):
        await send(sim, kind, person(digital_id=BAD_FNR))
    span = otel.span("svarut.send_til_person")
    attributes = dict(span.attributes or {})
    assert attributes["svarut.outcome"] == "refused"
    assert attributes["error.type"] == "ForsendelseValidationError"
    assert attributes["svarut.attempts"] == 0
    assert attributes["svarut.sent.bytes"] == 0
    assert "svarut.forsendelse_id" not in attributes
    assert span.status.status_code.name == "ERROR"
    assert span.events == ()  # no exception event: its message may quote the letter
    assert otel.spans("svarut.maskinporten.token") == []  # nothing was sent, so no token was needed
    assert otel.total("svarut.sends", **{"svarut.outcome": "refused"}) == 1
    assert otel.total("svarut.sent.bytes") == 0
    assert sim.requests == []
    assert_no_personal_data(otel)


@pytest.mark.anyio
async def test_a_send_the_server_refuses_is_refused_with_its_error_class(
    sim: Simulator, otel: Recorded, kind: str
) -> None:
    forsendelse = person("Vedtak om plass")
    dokumenter = {"a.pdf": PDF}
    await call(sim, kind, "send_til_person", konto_id=sim.konto_id, forsendelse=forsendelse, dokumenter=dokumenter)
    with pytest.raises(errors.DuplicateForsendelseError) as caught:
        await call(sim, kind, "send_til_person", konto_id=sim.konto_id, forsendelse=forsendelse, dokumenter=dokumenter)
    assert 400 <= caught.value.status_code < 500
    _, refused = otel.spans("svarut.send_til_person")
    attributes = dict(refused.attributes or {})
    assert attributes["svarut.outcome"] == "refused"
    assert attributes["error.type"] == "DuplicateForsendelseError"
    assert attributes["svarut.attempts"] == 1
    (decision,) = refused.events
    assert decision.name == "svarut.retry_decision"
    assert dict(decision.attributes or {}) == {
        "svarut.attempt": 1,
        "svarut.retry": False,
        "svarut.retry.reason": f"status {caught.value.status_code} is not retried",
    }
    assert otel.total("svarut.sends", **{"svarut.outcome": "sent"}) == 1
    assert otel.total("svarut.sends", **{"svarut.outcome": "refused", "error.type": "DuplicateForsendelseError"}) == 1
    assert_no_personal_data(otel)


# --- unknown -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_connection_dropped_after_the_body_is_an_unknown_outcome(
    sim: Simulator, otel: Recorded, kind: str
) -> None:
    sim.scenarios.reset(accept=True, only="send")
    with pytest.raises(errors.SendOutcomeUnknownError):
        await send(sim, kind)
    span = otel.span("svarut.send_til_person")
    attributes = dict(span.attributes or {})
    assert attributes["svarut.outcome"] == "unknown"
    assert attributes["error.type"] == "SendOutcomeUnknownError"
    assert attributes["svarut.attempts"] == 1
    assert str(attributes["svarut.ekstern_referanse"]).startswith("fiks-svarut-")  # what settles it
    assert "svarut.forsendelse_id" not in attributes
    (decision,) = span.events
    assert decision.attributes is not None and decision.attributes["svarut.retry"] is False
    assert "may have reached SvarUt" in str(decision.attributes["svarut.retry.reason"])
    assert otel.total("svarut.sends.unknown", **{"svarut.operation": "send_til_person"}) == 1
    assert otel.total("svarut.sends", **{"svarut.outcome": "unknown"}) == 1
    assert len(sim.received) == 1  # SvarUt has it
    assert_no_personal_data(otel)


# --- a retried status search ----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_retried_status_search_has_each_retry_decision_as_an_event(
    sim: Simulator, otel: Recorded, kind: str
) -> None:
    forsendelse_id = await send(sim, kind)
    sim.scenarios.reset(count=2, only="status")
    statuser = await call(sim, kind, "hent_statuser", konto_id=sim.konto_id, ids=[forsendelse_id])
    assert [s.id for s in statuser] == [forsendelse_id]
    span = otel.span("svarut.hent_statuser")
    attributes = dict(span.attributes or {})
    assert attributes["svarut.operation"] == "hent_statuser"
    assert attributes["svarut.konto_id"] == str(sim.konto_id)
    assert attributes["svarut.attempts"] == 3
    assert attributes["svarut.outcome"] == "ok"
    assert "svarut.kind" not in attributes and "svarut.forsendelse_id" not in attributes
    decisions = [dict(e.attributes or {}) for e in span.events]
    assert [e.name for e in span.events] == ["svarut.retry_decision"] * 2
    assert [d["svarut.attempt"] for d in decisions] == [1, 2]
    assert all(d["svarut.retry"] is True for d in decisions)
    assert all(0 < float(d["svarut.retry.delay_s"]) <= 0.025 for d in decisions)
    assert all(d["svarut.retry.reason"] in ("RemoteProtocolError", "ReadError") for d in decisions), decisions
    # Only sends are counted.
    assert otel.total("svarut.sends") == 1
    assert_no_personal_data(otel)


# --- prepared sends ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_prepared_send_is_one_span_and_a_prepare_refused_is_one_refused_send(
    sim: Simulator, otel: Recorded, kind: str
) -> None:
    op = SEND_OPERATIONS["person"]
    if kind == "sync":
        with sim.client(retry=FAST, timeout=10.0) as client:
            prepared = op.prepare(client, konto_id=sim.konto_id, forsendelse=person(), dokumenter={"a.pdf": PDF})
            assert otel.spans() == []  # prepared: nothing reported yet
            forsendelse_id = client.send_prepared(prepared)
            with pytest.raises(errors.ForsendelseValidationError):
                op.prepare(
                    client, konto_id=sim.konto_id, forsendelse=person(digital_id=BAD_FNR), dokumenter={"a.pdf": PDF}
                )
    else:
        async with sim.async_client(retry=FAST, timeout=10.0) as aclient:
            prepared = op.prepare(aclient, konto_id=sim.konto_id, forsendelse=person(), dokumenter={"a.pdf": PDF})
            assert otel.spans() == []
            forsendelse_id = await aclient.send_prepared(prepared)
            with pytest.raises(errors.ForsendelseValidationError):
                op.prepare(
                    aclient, konto_id=sim.konto_id, forsendelse=person(digital_id=BAD_FNR), dokumenter={"a.pdf": PDF}
                )
    sent, refused = otel.spans("svarut.send_til_person")
    assert (sent.attributes or {})["svarut.forsendelse_id"] == str(forsendelse_id)
    assert (sent.attributes or {})["svarut.document.count"] == 1
    assert (refused.attributes or {})["svarut.outcome"] == "refused"
    assert otel.total("svarut.sends", **{"svarut.outcome": "sent"}) == 1
    assert otel.total("svarut.sends", **{"svarut.outcome": "refused"}) == 1
    assert_no_personal_data(otel)


# --- a batch run, through the hooks a runner uses -------------------------------------------


def test_a_batch_run_is_one_span_with_a_span_per_letter_from_sender_threads(sim: Simulator, otel: Recorded) -> None:
    op = SEND_OPERATIONS["person"]
    with (
        sim.client(retry=FAST, timeout=10.0) as client,
        instrumentation.batch_run(client, konto_id=sim.konto_id, letters=3),
    ):

        def sender(line: int) -> None:
            with instrumentation.letter(client, line):
                forsendelse = person(f"Vedtak {line}")
                prepared = op.prepare(client, konto_id=sim.konto_id, forsendelse=forsendelse, dokumenter={"a.pdf": PDF})
                client.send_prepared(prepared)

        threads = [threading.Thread(target=sender, args=(line,)) for line in (1, 2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    batch = otel.span("svarut.batch.run")
    assert (batch.attributes or {})["svarut.batch.letters_sent"] == 3
    assert (batch.attributes or {})["svarut.konto_id"] == str(sim.konto_id)
    letters = otel.spans("svarut.batch.letter")
    assert sorted((s.attributes or {})["svarut.batch.ref"] for s in letters) == [1, 2, 3]
    assert all(s.parent is not None and s.parent.span_id == batch.context.span_id for s in letters)
    sends = otel.spans("svarut.send_til_person")
    assert {s.parent.span_id for s in sends if s.parent} == {s.context.span_id for s in letters}
    assert otel.total("svarut.sends", **{"svarut.outcome": "sent"}) == 3
    assert_no_personal_data(otel)


def test_a_letter_outside_a_batch_run_records_no_letter(sim: Simulator, otel: Recorded) -> None:
    with sim.client(retry=FAST, timeout=10.0) as client, instrumentation.letter(client, 1):
        client.send_til_person(konto_id=sim.konto_id, forsendelse=person(), dokumenter={"a.pdf": PDF})
    assert otel.spans("svarut.batch.letter") == []
    assert otel.span("svarut.send_til_person").parent is None


# --- switched off ----------------------------------------------------------------------------


def test_uninstrument_records_nothing(sim: Simulator, otel: Recorded) -> None:
    svarut.otel.uninstrument()
    with sim.client(retry=FAST, timeout=10.0) as client:
        client.send_til_person(konto_id=sim.konto_id, forsendelse=person(), dokumenter={"a.pdf": PDF})
    assert otel.spans() == []
    assert otel.points("svarut.sends") == []


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, True),
        ({"OTEL_PYTHON_INSTRUMENTATION_SVARUT_ENABLED": "false"}, False),
        ({"OTEL_PYTHON_INSTRUMENTATION_SVARUT_ENABLED": "true"}, True),
        ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx2, svarut"}, False),
        ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx2"}, True),
    ],
)
def test_the_environment_can_switch_it_off(environ: dict[str, str], enabled: bool) -> None:
    assert instrumentation.enabled_by_environment(environ) is enabled


@pytest.mark.parametrize(
    ("operation_id", "name"),
    [
        ("sendTilPerson", "send_til_person"),
        ("hentStatuser", "hent_statuser"),
        ("finnForsendelserKnyttetTilEksternRefMedMetadata", "finn_forsendelser_knyttet_til_ekstern_ref_med_metadata"),
    ],
)
def test_a_span_is_named_by_the_client_method(operation_id: str, name: str) -> None:
    from svarut.runtime.request_types import Endpoint

    endpoint: Endpoint[Any] = Endpoint(operation_id, "POST", "/x", models.PersonForsendelse)
    assert instrumentation.operation_name(endpoint) == name
    assert hasattr(svarut.SvarUtClient, name)


@pytest.mark.anyio
async def test_a_batch_run_is_one_span_with_a_span_per_letter(
    sim: Simulator, otel: Recorded, kind: str, tmp_path: Path
) -> None:
    import json

    import svarut.batch

    (tmp_path / "brev").mkdir()
    lines = []
    for line in (1, 2, 3):
        (tmp_path / "brev" / f"{line}.pdf").write_bytes(PDF + bytes([line]))
        forsendelse = person(f"Vedtak {line}").model_dump(mode="json", by_alias=True, exclude_unset=True)
        dokumenter = {"a.pdf": f"brev/{line}.pdf"}
        lines.append({"ref": f"vedtak-{line}", "kind": "person", "forsendelse": forsendelse, "dokumenter": dokumenter})
    manifest = tmp_path / "brev.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    if kind == "sync":
        with sim.client(retry=FAST, timeout=10.0) as client:
            summary = svarut.batch.run(client, manifest, konto_id=sim.konto_id, concurrency=2, settle_after=None)
    else:
        async with sim.async_client(retry=FAST, timeout=10.0) as aclient:
            summary = await svarut.batch.arun(
                aclient, manifest, konto_id=sim.konto_id, concurrency=2, settle_after=None
            )
    assert summary.done
    run = otel.span("svarut.batch.run")
    assert (run.attributes or {})["svarut.konto_id"] == str(sim.konto_id)
    assert (run.attributes or {})["svarut.batch.letters_sent"] == 3
    letters = otel.spans("svarut.batch.letter")
    assert sorted((s.attributes or {})["svarut.batch.ref"] for s in letters) == [1, 2, 3]
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in letters)
    sends = otel.spans("svarut.send_til_person")
    assert len(sends) == 3
    assert {s.parent.span_id for s in sends if s.parent} == {s.context.span_id for s in letters}
    # Each letter's span carries the eksternReferanse its send went with.
    by_letter = {s.parent.span_id: s for s in sends if s.parent}
    for letter in letters:
        reference = (letter.attributes or {})["svarut.ekstern_referanse"]
        sent = by_letter[letter.context.span_id].attributes or {}
        assert reference and sent["svarut.ekstern_referanse"] == reference
    assert {s.context.trace_id for s in sends} == {run.context.trace_id}
    assert otel.total("svarut.sends", **{"svarut.outcome": "sent"}) == 3
    assert_no_personal_data(otel)


# The global providers, in a fresh interpreter each: the API sets each of them once per process.
_GLOBAL_PROVIDERS = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from svarut.runtime import _otel, instrumentation
from svarut.generated.client import SEND_TIL_PERSON

listener = instrumentation.current()
assert isinstance(listener, _otel.OpenTelemetryInstrumentation), listener
first = listener.operation(SEND_TIL_PERSON, {}, send=True)
print("before", _otel._unset(), first is instrumentation.NO_OPERATION)
if sys.argv[1] == "set-later":
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with listener.operation(SEND_TIL_PERSON, {"kontoId": "k"}, send=True) as op:
        pass
    print("after", _otel._unset(), op is instrumentation.NO_OPERATION, [s.name for s in exporter.get_finished_spans()])
"""


@pytest.mark.parametrize(
    ("case", "environ", "expected"),
    [
        # No SDK: every operation is skipped, without asking the API (and os.environ) each time.
        ("none", {}, ["before True True"]),
        # An SDK installed after the listener was made is used from the next operation on.
        ("set-later", {}, ["before True True", "after False False ['svarut.send_til_person']"]),
        # A provider the environment names is made with the listener, so the fast check sees it.
        ("none", {"OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider"}, ["before False False"]),
    ],
)
def test_the_global_providers_are_seen_however_they_are_set(
    case: str, environ: dict[str, str], expected: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROVIDERS, case],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
