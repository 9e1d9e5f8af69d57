"""What SvarUt's statuses mean, which the spec does not say: the order each
channel moves through them, which end a forsendelse, and which are failures.

The spec lists the status values (the ``Status`` enum of the status search)
and nothing more. This module is a declared binding onto that enum, checked by
``generator/check_statuses.py`` whenever the specs are generated: a status
named here that the enum lacks is an error, unless it is declared in
:data:`INTRODUCED_LATER` (older specs lack it) or :data:`REMOVED_LATER` (newer
specs lack it), each with the spec version that made the change; an enum value
named nowhere here is reported as unclassified. An unclassified value still
flows: clients and the simulator treat it as a status in no journey that does
not end a forsendelse.

Every answer here is computed against the statuses of the specs this client
was generated from (:func:`spec_statuses`), so a client generated from an
older spec never offers a status its spec does not have, and one generated
from a newer spec never offers one it dropped.

The classification:

- **journeys** (:data:`JOURNEYS`): per channel, the order a forsendelse moves
  through, each bound to the send kind it starts with. A journey is whole or
  absent: it applies to the specs that have every one of its statuses
  (:meth:`Journey.applies`), so where SvarUt changed a channel's statuses the
  binding declares one journey per era under the same channel name, and a
  spec gets the one that fits it, never a journey with a step cut out;
- **failures** (:data:`FAILURES`): AVVIST, FEILET_UNDER_MOTTAK and IKKE_LEVERT:
  the letter did not and will not reach the mottaker;
- **terminal** (:data:`TERMINAL`): the failures, each channel's end (LEST,
  PRINTET, LEVERT_NHN_MOTTAKER), MANUELT_HANDTERT and SLETTET. The last two are
  terminal but not failures: MANUELT_HANDTERT means the avsender took over the
  letter (printed it by hand), SLETTET that it was deleted on purpose; neither
  says delivery failed, and a caller who must know reads the status itself.
  LEVERT_SDP and LEVERT_ALTINN are not terminal: the letter is in the
  mailbox, and a read receipt (LEST) may still follow.

**Altinn, before and after spec version 16.** Up to spec version 15 a letter
to a person's (or an organisation's) Altinn inbox was VARSLET once it was in
the inbox and the mottaker notified, and LEST once opened. Version 16
(upstream 018940d) removed VARSLET and added SENDT_ALTINN and LEVERT_ALTINN.
No public KS text on the two was found (June 2026); they are read here as the
other channels' SENDT_/LEVERT_ pairs are (SENDT_SDP → LEVERT_SDP,
SENDT_NHN_MOTTAKER → LEVERT_NHN_MOTTAKER): SENDT_ALTINN, handed to Altinn;
LEVERT_ALTINN, in the mottaker's inbox (what VARSLET said); then LEST.
SENDT_DIGITALT is, in KS's words (translated), a kun-digital letter "sent as
it should, not read yet, that will never go to print" (developers.fiks.ks.no,
ForsendelseRestServiceV1), set when its read deadline passes without a print
fallback (ksdif.no, "Statuser i SvarUt"): from version 16 it sits after
LEVERT_ALTINN, in its own journey. The VARSLET journey of the older specs
keeps the order this client has always declared (SENDT_DIGITALT before
VARSLET, though by the same pages it would come after), so waits on those
specs behave as they did. Organisations get Altinn letters too (the send
spec: taushetsbelagt post applies "if it goes to Altinn and the mottaker is
an organisation"), so each era has an ``organisasjon_altinn`` journey beside
SvarInn's.

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
    "REMOVED_LATER",
    "STATUS_ENUM",
    "STATUS_OPERATION",
    "TERMINAL",
    "Journey",
    "StatusSearchUnavailableError",
    "applicable",
    "failure_statuses",
    "has_status_search",
    "is_failure",
    "is_terminal",
    "journeys",
    "passed",
    "require_status_search",
    "spec_statuses",
    "terminal_statuses",
    "why_absent",
]

#: The operationId of the status search (absent from the very first v3 spec).
STATUS_OPERATION = "hentStatuser"
#: The generated model of the status values.
STATUS_ENUM = "Status"

#: The spec versions of each era, for people reading a journey (a journey's
#: statuses, not this label, decide where it applies).
_EVERY_SPEC = "every spec with a status search"
_VARSLET_ERA = "spec versions 02 to 15 (with VARSLET)"
_ALTINN_ERA = "spec version 16 on (SENDT_ALTINN, LEVERT_ALTINN)"


@dataclass(frozen=True)
class Journey:
    """The order of statuses a forsendelse moves through on one channel."""

    channel: str
    kind: str
    """The send kind (``SEND_OPERATIONS`` key) whose forsendelser take it."""
    statuses: tuple[str, ...]
    specs: str = _EVERY_SPEC
    """The spec versions it was declared for, in words."""

    def applies(self, known: Collection[str]) -> bool:
        """Whether specs with the statuses ``known`` have every status of this journey.

        Args:
            known: The status values the specs have.
        """
        return all(s in known for s in self.statuses)


#: How every channel starts: SvarUt received the forsendelse, then accepted it.
RECEIVED: tuple[str, ...] = ("MOTTATT", "AKSEPTERT")

#: Every channel, as declared (see :func:`journeys` for the specs' view). The
#: first that applies to a send kind is its usual path (the simulator's).
JOURNEYS: tuple[Journey, ...] = (
    Journey("person", "person", (*RECEIVED, "SENDT_DIGITALT", "VARSLET", "LEST"), _VARSLET_ERA),
    Journey("person", "person", (*RECEIVED, "SENDT_ALTINN", "LEVERT_ALTINN", "LEST"), _ALTINN_ERA),
    Journey(
        "person_kun_digital",
        "person",
        (*RECEIVED, "SENDT_ALTINN", "LEVERT_ALTINN", "SENDT_DIGITALT", "LEST"),
        _ALTINN_ERA,
    ),
    Journey("person_print", "person", (*RECEIVED, "SENDT_PRINT", "PRINTET")),
    Journey("person_sdp", "person", (*RECEIVED, "SENDT_SDP", "LEVERT_SDP")),
    Journey("organisasjon", "organisasjon", (*RECEIVED, "KLAR_FOR_MOTTAK", "LEST")),
    Journey("organisasjon_altinn", "organisasjon", (*RECEIVED, "VARSLET", "LEST"), _VARSLET_ERA),
    Journey("organisasjon_altinn", "organisasjon", (*RECEIVED, "SENDT_ALTINN", "LEVERT_ALTINN", "LEST"), _ALTINN_ERA),
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
#: older spec without them is fine (what needs them is dropped), any other
#: missing one is an error.
INTRODUCED_LATER: dict[str, str] = {
    "FEILET_UNDER_MOTTAK": "upstream 66ef371 (KSSU-1287, spec version 13)",
    "SENDT_ALTINN": "upstream 018940d (spec version 16)",
    "LEVERT_ALTINN": "upstream 018940d (spec version 16)",
}
#: Statuses newer specs no longer have, and the spec version that removed
#: them: a newer spec without them is fine (what needs them is dropped).
REMOVED_LATER: dict[str, str] = {
    "VARSLET": "upstream 018940d (spec version 16), replaced by SENDT_ALTINN and LEVERT_ALTINN",
}


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
    """Whether the specs this client was generated from have a status search
    (``hent_statuser``); without one, status methods raise
    :class:`StatusSearchUnavailableError`."""
    return spec_statuses() is not None


def require_status_search() -> None:
    """Raise :class:`StatusSearchUnavailableError` unless the specs have a status search.

    Raises:
        StatusSearchUnavailableError: The specs have no status search.
    """
    if not has_status_search():
        raise StatusSearchUnavailableError(
            "the specs this client was generated from have no status search "
            f"(no operation {STATUS_OPERATION!r}); regenerate from specs that have it"
        )


def _in_spec(values: Iterable[str]) -> tuple[str, ...]:
    known = set(spec_statuses() or ())
    return tuple(v for v in values if v in known)


def applicable(known: Collection[str], kinds: Collection[str] | None = None) -> tuple[Journey, ...]:
    """The journeys of :data:`JOURNEYS` that specs with the statuses ``known``
    (and, if given, the send kinds ``kinds``) can follow, in declared order.

    A journey lacking one of its statuses is left out whole rather than cut
    short: MOTTATT → AKSEPTERT → SENDT_DIGITALT → LEST, the VARSLET journey on a
    spec without VARSLET, is a path SvarUt never takes.

    Args:
        known: The status values the specs have.
        kinds: The send kinds to keep journeys of (None: every kind).

    Returns:
        The journeys, in the order :data:`JOURNEYS` declares them.
    """
    return tuple(j for j in JOURNEYS if j.applies(known) and (kinds is None or j.kind in kinds))


@functools.cache
def journeys() -> tuple[Journey, ...]:
    """:data:`JOURNEYS` as far as the specs have them: those with every one of
    their statuses in the specs, for a send kind the specs have."""
    from svarut.generated import SEND_OPERATIONS

    return applicable(spec_statuses() or (), SEND_OPERATIONS)


@functools.cache
def terminal_statuses() -> frozenset[str]:
    """:data:`TERMINAL`, as far as the specs have them."""
    return frozenset(_in_spec(TERMINAL))


@functools.cache
def failure_statuses() -> frozenset[str]:
    """:data:`FAILURES`, as far as the specs have them."""
    return frozenset(_in_spec(FAILURES))


def why_absent(status: object) -> str | None:
    """Why ``status`` is not one of the specs' statuses, when the binding
    knows: only newer specs have it, or newer specs removed it. None when the
    specs have it, or the binding does not know it.

    Args:
        status: A status value or a ``ForsendelseStatus``.

    Returns:
        The reason in words, or None.
    """
    value = _value(status)
    if value in (spec_statuses() or ()):
        return None
    if value in INTRODUCED_LATER:
        return f"only newer specs have it: {INTRODUCED_LATER[value]}"
    if value in REMOVED_LATER:
        return f"newer specs removed it: {REMOVED_LATER[value]}"
    return None


def _value(status: object) -> str:
    value = getattr(status, "status", status)  # a ForsendelseStatus, or the status itself
    return str(value)


def is_failure(status: object) -> bool:
    """Whether ``status`` (a status value or a ``ForsendelseStatus``) means
    the letter did not and will not reach the mottaker (a status in
    :data:`FAILURES` the specs have).

    >>> is_failure("AVVIST"), is_failure("LEST")  # doctest: +SKIP
    (True, False)
    """
    return _value(status) in failure_statuses()


def is_terminal(status: object) -> bool:
    """Whether ``status`` (a status value or a ``ForsendelseStatus``) changes
    no more (a status in :data:`TERMINAL` the specs have).

    >>> is_terminal("LEST"), is_terminal("MOTTATT")  # doctest: +SKIP
    (True, False)
    """
    return _value(status) in terminal_statuses()


def passed(status: object, wanted: Collection[object], *, seen: Collection[object] = ()) -> bool:
    """Whether a forsendelse at ``status`` has reached or passed one of ``wanted``.

    The client does not know a forsendelse's channel, so it is inferred: the
    candidate journeys are those with ``status`` and with every status in
    ``seen`` (statuses observed earlier) that is in any journey. ``status``
    has passed when every candidate has a wanted status before it. A status in
    no journey has passed nothing but itself, and a wanted status the specs do
    not have (VARSLET on a spec from version 16 on) is never passed: only a
    terminal or failure status ends such a wait.

    Args:
        status: The current status (a value or a ``ForsendelseStatus``).
        wanted: The statuses waited for.
        seen: Statuses this forsendelse had earlier, to tell its channel.

    Returns:
        True when ``status`` is in ``wanted`` or comes after one of them on
        every journey it can be on.

    >>> passed("LEST", {"LEVERT_ALTINN"})  # doctest: +SKIP
    True
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
