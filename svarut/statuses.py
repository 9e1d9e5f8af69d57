"""What SvarUt's statuses mean, which the spec does not say: the order each
channel moves through them, which end a forsendelse, and which are failures.

The spec lists the status values (the ``Status`` enum of the status search)
and nothing more. This module is a declared binding onto that enum, checked by
``generator/status_binding.py`` whenever the specs are generated: a status
named here that the enum lacks is an error, unless it is in
:data:`INTRODUCED_LATER` (then it is dropped, with a warning, for specs older
than that), and an enum value named nowhere here is reported as unclassified.
An unclassified value still flows: clients and the simulator treat it as a
status in no journey that does not end a forsendelse.

Every answer here is computed against the statuses of the specs this client
was generated from (:func:`spec_statuses`), so a client generated from an
older spec never offers a status its spec does not have.

The classification:

- **journeys** (:data:`JOURNEYS`): per channel, the order a forsendelse moves
  through, each bound to the send kind it starts with;
- **failures** (:data:`FAILURES`): AVVIST, FEILET_UNDER_MOTTAK and IKKE_LEVERT:
  the letter did not and will not reach the mottaker;
- **terminal** (:data:`TERMINAL`): the failures, each channel's end (LEST,
  PRINTET, LEVERT_NHN_MOTTAKER), MANUELT_HANDTERT and SLETTET. The last two are
  terminal but not failures: MANUELT_HANDTERT means the avsender took over the
  letter (printed it by hand), SLETTET that it was deleted on purpose; neither
  says delivery failed, and a caller who must know reads the status itself.
  LEVERT_SDP is not terminal: a read receipt may still follow.

Nothing here imports the generated code at import time (the generator imports
this module to verify it); the specs' statuses are read on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from svarut.runtime.errors import SvarUtError

__all__ = [
    "FAILURES",
    "INTRODUCED_LATER",
    "JOURNEYS",
    "RECEIVED",
    "RECEPTION_FAILURES",
    "STATUS_ENUM",
    "STATUS_OPERATION",
    "TERMINAL",
    "Journey",
    "StatusSearchUnavailableError",
    "failure_statuses",
    "has_status_search",
    "is_failure",
    "is_terminal",
    "journeys",
    "passed",
    "require_status_search",
    "spec_statuses",
    "terminal_statuses",
]

#: The operationId of the status search (absent from the very first v3 spec).
STATUS_OPERATION = "hentStatuser"
#: The generated model of the status values.
STATUS_ENUM = "Status"


@dataclass(frozen=True)
class Journey:
    """The order of statuses a forsendelse moves through on one channel."""

    channel: str
    kind: str
    """The send kind (``SEND_OPERATIONS`` key) whose forsendelser take it."""
    statuses: tuple[str, ...]


#: How every channel starts: SvarUt received the forsendelse, then accepted it.
RECEIVED: tuple[str, ...] = ("MOTTATT", "AKSEPTERT")

#: Every channel, as declared (see :func:`journeys` for the spec's view).
JOURNEYS: tuple[Journey, ...] = (
    Journey("person", "person", (*RECEIVED, "SENDT_DIGITALT", "VARSLET", "LEST")),
    Journey("person_print", "person", (*RECEIVED, "SENDT_PRINT", "PRINTET")),
    Journey("person_sdp", "person", (*RECEIVED, "SENDT_SDP", "LEVERT_SDP")),
    Journey("organisasjon", "organisasjon", (*RECEIVED, "KLAR_FOR_MOTTAK", "LEST")),
    Journey("nhn", "nhn", (*RECEIVED, "SENDT_NHN_MOTTAKER", "LEVERT_NHN_MOTTAKER")),
    Journey("print", "print", (*RECEIVED, "SENDT_PRINT", "PRINTET")),
)
#: Failures SvarUt reports right after MOTTATT, before it accepted the forsendelse.
RECEPTION_FAILURES: tuple[str, ...] = ("AVVIST", "FEILET_UNDER_MOTTAK")
#: The letter did not and will not reach the mottaker.
FAILURES: tuple[str, ...] = (*RECEPTION_FAILURES, "IKKE_LEVERT")
#: The forsendelse changes no more.
TERMINAL: tuple[str, ...] = (*FAILURES, "MANUELT_HANDTERT", "SLETTET", "LEST", "PRINTET", "LEVERT_NHN_MOTTAKER")
#: Statuses only newer specs have, and the spec version that added them: an
#: older spec without them is fine (they are dropped), any other missing one is an error.
INTRODUCED_LATER: dict[str, str] = {"FEILET_UNDER_MOTTAK": "upstream 66ef371 (KSSU-1287, spec version 13)"}


class StatusSearchUnavailableError(SvarUtError, NotImplementedError):
    """The specs this client was generated from have no status search."""


@functools.cache
def spec_statuses() -> tuple[str, ...] | None:
    """The status values of the generated specs, or None when they have no status search."""
    from svarut.generated import ENDPOINTS, models

    enum: Any = getattr(models, STATUS_ENUM, None)
    if STATUS_OPERATION not in ENDPOINTS or enum is None:
        return None
    return tuple(str(member.value) for member in enum)


def has_status_search() -> bool:
    return spec_statuses() is not None


def require_status_search() -> None:
    """Raise :class:`StatusSearchUnavailableError` unless the specs have a status search."""
    if not has_status_search():
        raise StatusSearchUnavailableError(
            "the specs this client was generated from have no status search "
            f"(no operation {STATUS_OPERATION!r}); regenerate from specs that have it"
        )


def _in_spec(values: Iterable[str]) -> tuple[str, ...]:
    known = set(spec_statuses() or ())
    return tuple(v for v in values if v in known)


@functools.cache
def journeys() -> tuple[Journey, ...]:
    """:data:`JOURNEYS` as far as the specs have them: without the statuses
    they lack, and without channels whose send kind they lack."""
    from svarut.generated import SEND_OPERATIONS

    found = (Journey(j.channel, j.kind, _in_spec(j.statuses)) for j in JOURNEYS if j.kind in SEND_OPERATIONS)
    return tuple(j for j in found if j.statuses)


@functools.cache
def terminal_statuses() -> frozenset[str]:
    """:data:`TERMINAL`, as far as the specs have them."""
    return frozenset(_in_spec(TERMINAL))


@functools.cache
def failure_statuses() -> frozenset[str]:
    """:data:`FAILURES`, as far as the specs have them."""
    return frozenset(_in_spec(FAILURES))


def _value(status: object) -> str:
    value = getattr(status, "status", status)  # a ForsendelseStatus, or the status itself
    return str(value)


def is_failure(status: object) -> bool:
    """Whether ``status`` (a status value or a ``ForsendelseStatus``) means
    the letter did not and will not reach the mottaker."""
    return _value(status) in failure_statuses()


def is_terminal(status: object) -> bool:
    """Whether ``status`` (a status value or a ``ForsendelseStatus``) changes no more."""
    return _value(status) in terminal_statuses()


def passed(status: object, wanted: Collection[object], *, seen: Collection[object] = ()) -> bool:
    """Whether a forsendelse at ``status`` has reached or passed one of ``wanted``.

    The client does not know a forsendelse's channel, so it is inferred: the
    candidate journeys are those with ``status`` and with every status in
    ``seen`` (statuses observed earlier) that is in any journey. ``status``
    has passed when every candidate has a wanted status before it. A status in
    no journey has passed nothing but itself.
    """
    current = _value(status)
    targets = {_value(w) for w in wanted}
    if current in targets:
        return True
    holding = [j for j in journeys() if current in j.statuses]
    observed = {_value(s) for s in seen} & {s for j in journeys() for s in j.statuses}
    candidates = [j for j in holding if observed <= set(j.statuses)] or holding
    return bool(candidates) and all(
        any(t in j.statuses[: j.statuses.index(current)] for t in targets) for j in candidates
    )
