"""The ``svarut_simulator`` pytest fixture (registered through the ``pytest11``
entry point, so installing fiks-svarut is enough).

>>> def test_sends_vedtak(svarut_simulator):  # doctest: +SKIP
...     forsendelse_id = my_code.send_vedtak(svarut_simulator.client, konto_id=svarut_simulator.konto_id)
...     received = svarut_simulator.get(forsendelse_id)
...     assert [d.filnavn for d in received.documents] == ["vedtak.pdf"]

Each test that asks for it gets a fresh :class:`SvarUtSimulatorFixture`: a
simulator on a free port (statuses move every 0.05 s, documents stored under
the test's ``tmp_path``), a :class:`~svarut.SvarUtClient` for it (closed after
the test), ``async_client()`` for an :class:`~svarut.AsyncSvarUtClient`, and
everything the simulator recorded. Configure the simulator with the marker::

    @pytest.mark.svarut_simulator(step_seconds=1.0, not_digital={"21883649874"})

whose keyword arguments go to :class:`~svarut.simulator.Simulator`. Disable the
plugin with ``-p no:svarut``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

if TYPE_CHECKING:
    from svarut import AsyncSvarUtClient, SvarUtClient
    from svarut.simulator.facade import Simulator
    from svarut.simulator.intake import RequestRecord
    from svarut.simulator.records import ReceivedForsendelse
    from svarut.simulator.scenarios import Scenarios

MARKER = "svarut_simulator"
FIXTURE_STEP_SECONDS = 0.05


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options for the svarut_simulator fixture's Simulator "
        "(step_seconds=, not_digital=, konto_ids=, reject_duplicates=, ...)",
    )


class SvarUtSimulatorFixture:
    """What the ``svarut_simulator`` fixture hands a test."""

    def __init__(self, simulator: Simulator, client: SvarUtClient) -> None:
        self.simulator = simulator
        """The running :class:`~svarut.simulator.Simulator`."""
        self.client = client
        """A :class:`~svarut.SvarUtClient` for the simulator (full auth path)."""

    @property
    def konto_id(self) -> UUID:
        """The simulator's konto, to send from."""
        return self.simulator.konto_id

    @property
    def base_url(self) -> str:
        """The simulator's SvarUt API root."""
        return self.simulator.base_url

    @property
    def scenarios(self) -> Scenarios:
        """Faults and forced outcomes: see :mod:`svarut.simulator.scenarios`."""
        return self.simulator.scenarios

    @property
    def received(self) -> list[ReceivedForsendelse]:
        """Every forsendelse the simulator accepted, oldest first."""
        return self.simulator.received

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request the simulator answered, oldest first."""
        return self.simulator.requests

    def get(self, forsendelse_id: UUID | str) -> ReceivedForsendelse:
        """The received forsendelse with that id (KeyError if none)."""
        return self.simulator.get(forsendelse_id)

    def async_client(self, **options: Any) -> AsyncSvarUtClient:
        """A new :class:`~svarut.AsyncSvarUtClient` for the simulator: ``async with fixture.async_client() as c:``."""
        return self.simulator.async_client(**options)

    def new_client(self, **options: Any) -> SvarUtClient:
        """Another sync client, with other options (``retry=``, ``timeout=``, ...); close it yourself."""
        return self.simulator.client(**options)

    def environ(self) -> dict[str, str]:
        """Environment variables pointing ``SvarUtClient.from_env`` (and the ``svarut`` command) here."""
        return self.simulator.environ()


@pytest.fixture
def svarut_simulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SvarUtSimulatorFixture]:
    """A running SvarUt simulator and a client for it; see :mod:`svarut.simulator.pytest_plugin`."""
    # Imported here: pytest loads this plugin in every run, and most never use the fixture.
    from svarut.simulator.facade import Simulator

    options: dict[str, Any] = {"step_seconds": FIXTURE_STEP_SECONDS, "storage_dir": tmp_path / "svarut-simulator"}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        options.update(marker.kwargs)
    with Simulator(**options) as simulator, simulator.client() as client:
        yield SvarUtSimulatorFixture(simulator, client)
