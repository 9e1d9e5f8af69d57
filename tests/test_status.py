"""Status in bulk and waiting for a status, against the recording server."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

import svarut
from svarut import errors, models

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
