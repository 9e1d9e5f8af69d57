"""A local SvarUt for tests and demos (the ``simulator`` extra; it needs
nothing beyond the client's own dependencies).

:class:`Simulator` is a real HTTP server on 127.0.0.1 with SvarUt's v3 send
and status endpoints (under ``/api``, read with the same generated models as
the client), a Maskinporten token endpoint, and SvarUt's encryption
certificate. A client built by :meth:`Simulator.client` goes through the whole
auth path: a JWT grant signed with a throwaway virksomhetssertifikat, then
``Authorization``, ``IntegrasjonId`` and ``IntegrasjonPassord`` on every call::

    from svarut.simulator import Simulator

    with Simulator(step_seconds=0.05) as sim, sim.client() as client:
        forsendelse_id = client.send_til_person(konto_id=sim.konto_id, forsendelse=..., dokumenter={...})
        client.vent_pa_status(konto_id=sim.konto_id, ids=[forsendelse_id])
        received = sim.get(forsendelse_id)  # metadata, documents (filnavn, size, sha256, path), history

**What it checks**, answering as SvarUt does (``{"id": ...}``, or an
``ErrorMessage`` with ``errorJson`` as an object and the right status): the
three auth headers (401 without a live token it issued or without the
integration headers, 403 for wrong integration credentials or a konto the
integration lacks); the ``forsendelse`` part against the spec's model (400);
the document parts against ``dokumenter`` by count, order and filename (NHN:
exactly one part; 400); that the documents of a ``kryptert`` forsendelse
decrypt with SvarUt's key (400 if not); and SvarUt's duplicate rule (400
``GJENTAGENDE_FORSENDELSE`` for the same konto, mottaker, tittel and
document contents). Uploads stream to disk in chunks, with SHA-256 hashes, over
``Content-Length`` or chunked bodies: a 350 MB upload never sits in memory.

**Routes** follow the generated specs: one send route per entry of
``svarut.generated.SEND_OPERATIONS`` and the status search if the specs have
it, so after ``make generate`` a new send endpoint is served and a removed
one is gone.

**Statuses** move one step per ``step_seconds`` along each channel's journey
in :mod:`svarut.statuses`, as the generated specs have it (person, from spec
version 16 on: MOTTATT → AKSEPTERT → SENDT_ALTINN → LEVERT_ALTINN → LEST; up
to version 15: MOTTATT → AKSEPTERT → SENDT_DIGITALT → VARSLET → LEST; or to
SENDT_PRINT → PRINTET for a fødselsnummer in ``not_digital``; organisasjon: …
→ KLAR_FOR_MOTTAK → LEST; nhn: … → SENDT_NHN_MOTTAKER → LEVERT_NHN_MOTTAKER;
print: … → SENDT_PRINT → PRINTET; a send kind without a journey stops at
AKSEPTERT). A status the specs do not have is never reported.
:meth:`Simulator.advance` moves the clock.

**Scenarios** (``sim.scenarios``, :mod:`svarut.simulator.scenarios`):
``force_status("AVVIST")`` (or IKKE_LEVERT, FEILET_UNDER_MOTTAK, any status
of the specs) for the next send(s) or ``mottaker=...``; ``fail(503, retry_after=0)``, ``slow(2.0)``,
``reset(when="before_body"|"after_body", accept=...)`` for the next ``count``
requests (``only="send"|"status"``); ``sim.revoke_tokens()``.

**Inspecting**: ``sim.received``, ``sim.get(id)``, ``sim.requests`` (every
request and its status), ``sim.maskinporten.issued``, and in a browser
``sim.page_url`` (``/simulator``; the same as JSON at ``/simulator/forsendelser``).

**In pytest** (the ``svarut_simulator`` fixture, registered by the package's
``pytest11`` entry point, :mod:`svarut.simulator.pytest_plugin`)::

    def test_sends_vedtak(svarut_simulator):
        forsendelse_id = my_app.send_vedtak(svarut_simulator.client, konto_id=svarut_simulator.konto_id)
        assert [d.filnavn for d in svarut_simulator.get(forsendelse_id).documents] == ["vedtak.pdf"]

    @pytest.mark.svarut_simulator(step_seconds=0, not_digital={"21883649874"})
    async def test_async(svarut_simulator):
        async with svarut_simulator.async_client() as client: ...

By hand: ``svarut simulator`` or ``python -m svarut.simulator`` (prints the
settings a client needs on stdout, one line each for the shell: ``export``
lines for a POSIX shell, ``$env:NAME = '...'`` for PowerShell, the default on
Windows, ``set "NAME=..."`` for cmd, chosen with ``--shell``, or JSON with
``--json``; prose on stderr: ``eval "$(python -m svarut.simulator &)"``; see
:mod:`svarut.simulator.runner`), and ``make demo`` /
``python -m svarut.simulator.demo``.

The names below are imported on first use (PEP 562), like :mod:`svarut`'s:
pytest imports :mod:`svarut.simulator.pytest_plugin` in every run of every
project that has fiks-svarut installed, and most of those runs never start a
simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "KeyPair": "svarut.simulator.keys",
    "ReceivedDocument": "svarut.simulator.records",
    "ReceivedForsendelse": "svarut.simulator.records",
    "RequestRecord": "svarut.simulator.intake",
    "Scenarios": "svarut.simulator.scenarios",
    "Simulator": "svarut.simulator.facade",
    "SimulatorKeys": "svarut.simulator.keys",
    "StatusChange": "svarut.simulator.records",
    "generate_key_pair": "svarut.simulator.keys",
    "throwaway_keys": "svarut.simulator.keys",
}

__all__ = [
    "KeyPair",
    "ReceivedDocument",
    "ReceivedForsendelse",
    "RequestRecord",
    "Scenarios",
    "Simulator",
    "SimulatorKeys",
    "StatusChange",
    "generate_key_pair",
    "throwaway_keys",
]

if TYPE_CHECKING:
    from svarut.simulator.facade import Simulator
    from svarut.simulator.intake import RequestRecord
    from svarut.simulator.keys import KeyPair, SimulatorKeys, generate_key_pair, throwaway_keys
    from svarut.simulator.records import ReceivedDocument, ReceivedForsendelse, StatusChange
    from svarut.simulator.scenarios import Scenarios


def __getattr__(name: str) -> Any:
    try:
        module = importlib.import_module(_EXPORTS[name])
    except KeyError:
        raise AttributeError(f"module 'svarut.simulator' has no attribute {name!r}") from None
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
