"""The status search's bookkeeping, shared by the sync and async clients:
ids checked and split into chunks, statuses put back in the order asked for,
and waiting for statuses (:class:`_Waiter`: which ids are pending and how long
to wait). The network calls are the clients' (:mod:`svarut._client`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from svarut import statuses
from svarut.generated import models
from svarut.runtime.errors import (
    APIConnectionError,
    ForsendelseNotFoundError,
    ForsendelseValidationError,
    Problem,
    VentPaStatusTimeoutError,
)

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger("svarut")

# How many ids one status search carries; more are split into several calls.
STATUS_CHUNK = 100
#: Statuses after which a forsendelse does not change any more (vent_pa_status
#: stops there): :data:`svarut.statuses.TERMINAL` as far as the specs have them.
#: LEVERT_NHN_MOTTAKER ends the NHN channel, which never reaches LEST.
TERMINAL_STATUSES: frozenset[str] = statuses.terminal_statuses()


# A string, so the class builds from specs without a status search (the first v3 spec).
class Statuser(list["models.ForsendelseStatus"]):
    """The statuses in the order the ids were asked for; ``mangler`` lists
    the ids SvarUt returned no status for."""

    def __init__(self, statuser: Iterable[models.ForsendelseStatus], mangler: Iterable[UUID]) -> None:
        super().__init__(statuser)
        self.mangler = list(mangler)


def _ids(values: Iterable[UUID | str], *, name: str = "ids") -> list[UUID]:
    if isinstance(values, (str, bytes, UUID)):
        # A str is iterable too: its characters would be taken for ids.
        raise TypeError(
            f"{name} takes a list of forsendelse ids, such as {name}=[forsendelse_id], not one {type(values).__name__}"
        )
    ids: list[UUID] = []
    problems = []
    for i, value in enumerate(values):
        try:
            uid = value if isinstance(value, UUID) else UUID(str(value))
        except ValueError:
            problems.append(Problem(f"id[{i}]", "uuid", f"must be a UUID, got {value!r}"))
            continue
        if uid not in ids:
            ids.append(uid)
    if problems:
        raise ForsendelseValidationError(problems)
    return ids


def _statuses(values: Collection[Any], *, name: str) -> frozenset[str]:
    """``values`` as status names, each one the specs have.

    Raises:
        TypeError: ``values`` is a single str (iterating it would give its characters).
        ValueError: A name the specs do not have; the message lists those they have.
    """
    if isinstance(values, (str, bytes)):
        raise TypeError(
            f"{name} takes a collection of statuses, such as {name}={{{values!r}}} or "
            f"{name}={{models.Status.{values if isinstance(values, str) and values.isidentifier() else 'LEST'}}}, "
            f"not a single {type(values).__name__}"
        )
    known = statuses.spec_statuses() or ()
    wanted = frozenset(str(v) for v in values)
    unknown = sorted(wanted - set(known))
    if unknown:
        why = "; ".join(f"{u}: {reason}" for u in unknown if (reason := statuses.why_absent(u)))
        verb = "is not a status" if len(unknown) == 1 else "are not statuses"
        raise ValueError(
            f"{name}: {', '.join(repr(u) for u in unknown)} {verb}"
            f" of the specs this client was generated from{f' ({why})' if why else ''}; "
            f"the statuses are: {', '.join(known)}"
        )
    return wanted


def _chunks(ids: list[UUID]) -> list[list[UUID]]:
    return [ids[i : i + STATUS_CHUNK] for i in range(0, len(ids), STATUS_CHUNK)]


def _ordered(ids: list[UUID], found: Iterable[models.ForsendelseStatus]) -> Statuser:
    by_id = {s.id: s for s in found}
    missing = [i for i in ids if i not in by_id]
    if missing:
        log.info("SvarUt returned no status for %d of %d forsendelser", len(missing), len(ids))
    return Statuser((by_id[i] for i in ids if i in by_id), missing)


def _only(statuser: Statuser, forsendelse_id: UUID | str) -> models.ForsendelseStatus:
    if statuser.mangler:
        raise ForsendelseNotFoundError(f"SvarUt returned no status for forsendelse {statuser.mangler[0]}")
    return statuser[0]


class _Waiter:
    """The bookkeeping of :meth:`SvarUtClient.vent_pa_status`, shared by the
    sync and async clients: which ids are still pending, and how long to wait."""

    def __init__(
        self,
        ids: Iterable[UUID | str],
        until: Collection[Any] | None,
        terminal: Collection[Any] | None,
        timeout: float,
        interval: float,
        http_timeout: httpx2.Timeout,
    ) -> None:
        statuses.require_status_search()
        self.ids = _ids(ids)
        self.until = _statuses(until or (), name="until")
        self.terminal = TERMINAL_STATUSES if terminal is None else _statuses(terminal, name="terminal")
        self.latest: dict[UUID, models.ForsendelseStatus] = {}
        self.seen: dict[UUID, set[str]] = {}
        self.deadline = time.monotonic() + timeout
        self.interval = interval
        self.http_timeout = http_timeout
        self.unknown_seen: set[str] = set()

    def _done(self, forsendelse_id: UUID) -> bool:
        latest = self.latest.get(forsendelse_id)
        if latest is None:
            return False
        value = str(latest.status)
        if value in self.terminal or statuses.is_failure(value):
            return True
        return bool(self.until) and statuses.passed(value, self.until, seen=self.seen[forsendelse_id])

    @property
    def pending(self) -> list[UUID]:
        return [i for i in self.ids if not self._done(i)]

    def update(self, statuser: Iterable[models.ForsendelseStatus]) -> bool:
        known = statuses.spec_statuses() or ()
        for status in statuser:
            value = str(status.status)
            self.latest[status.id] = status
            self.seen.setdefault(status.id, set()).add(value)
            if value not in known and value not in self.unknown_seen:
                self.unknown_seen.add(value)
                log.warning("forsendelse %s has status %r, which this client does not know", status.id, value)
        return not self.pending

    def result(self) -> dict[UUID, models.ForsendelseStatus]:
        return {i: self.latest[i] for i in self.ids if i in self.latest}

    def call_timeout(self) -> httpx2.Timeout:
        """The client's timeout for one poll, cut to the time left."""
        left = max(self.deadline - time.monotonic(), 0.001)
        import httpx2

        t = self.http_timeout
        return httpx2.Timeout(
            connect=_at_most(t.connect, left),
            read=_at_most(t.read, left),
            write=_at_most(t.write, left),
            pool=_at_most(t.pool, left),
        )

    def timed_out(self, exc: APIConnectionError) -> VentPaStatusTimeoutError:
        """``exc`` from a poll, as the timeout it is once the time is up."""
        if time.monotonic() < self.deadline:
            raise exc
        return VentPaStatusTimeoutError(statuser=self.result(), ventende=self.pending)

    def next_delay(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise VentPaStatusTimeoutError(statuser=self.result(), ventende=self.pending)
        delay = min(self.interval, left)
        self.interval = min(self.interval * 1.5, 60.0)
        return delay


def _at_most(value: float | None, limit: float) -> float:
    return limit if value is None else min(value, limit)
