"""Settling an unknown send outcome from SvarUt itself: which forsendelser of
a konto carry an eksternReferanse (the words are in the :doc:`glossary </glossary>`).

A send whose answer was lost after its body went out raises
:class:`~svarut.errors.SendOutcomeUnknownError`: SvarUt may have the letter.
SvarUt's eksternRef lookup (``forsendelse-eksternref-api-v2.json``, operation
:data:`LOOKUP_OPERATION`) answers with the ids of every forsendelse of the
konto that carries the reference, and :func:`avgjor` turns that answer into
an :class:`Utfall`:

- ``mottatt``: exactly one forsendelse carries it (``forsendelse_id``);
- ``ikke_mottatt``: none does, and the attempt began longer ago than the
  settle window (:data:`AVKLARING_VINDU`, 20 minutes by default: SvarUt may
  take up to 15 minutes to answer a send, so before then an empty answer
  proves nothing);
- ``uavklart``: several carry it (a reused reference: never guessed), or the
  one that does is dated well before the attempt began (the reference was
  used before: that forsendelse says nothing about this attempt), or none
  yet while the attempt is inside the window, or none and the caller does
  not know when the attempt began.

Where the specs have the lookup with metadata (:data:`METADATA_OPERATION`),
``avklar_utfall`` asks that one, so each forsendelse found comes with its
date (:data:`METADATA_DATO_FIELD`); a forsendelse dated more than
:data:`KLOKKE_SLINGRING` before the attempt began cannot be its result.

Only ``ikke_mottatt`` makes sending again safe. A lookup that fails (network,
5xx) settles nothing: it raises.

This module is a declared binding onto the spec: the operation and its two
parameters are named here once, and ``generator/check_utfall.py`` checks
them against the specs whenever the client is generated. Specs without the
lookup generate a client whose ``avklar_utfall`` raises
:class:`LookupUnavailableError`. Nothing here imports the generated code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from svarut.runtime.errors import SvarUtError

__all__ = [
    "AVKLARING_VINDU",
    "KLOKKE_SLINGRING",
    "KONTO_PARAMETER",
    "LOOKUP_OPERATION",
    "METADATA_DATO_FIELD",
    "METADATA_ID_FIELD",
    "METADATA_OPERATION",
    "REFERANSE_PARAMETER",
    "LookupUnavailableError",
    "Tilstand",
    "Utfall",
    "avgjor",
]

#: The operationId of the eksternRef lookup: the ids of a konto's forsendelser with a reference.
LOOKUP_OPERATION = "finnForsendelserKnyttetTilEksternRef"
#: The same lookup answering each forsendelse's metadata (the simulator serves both).
METADATA_OPERATION = "finnForsendelserKnyttetTilEksternRefMedMetadata"
#: The fields of each forsendelse the lookup with metadata answers: its id and its date.
METADATA_ID_FIELD = "id"
METADATA_DATO_FIELD = "dato"
#: How far SvarUt's clock and ours may disagree when a forsendelse's date is
#: compared with when the attempt began.
KLOKKE_SLINGRING = timedelta(minutes=5)
#: Its path parameter: the konto.
KONTO_PARAMETER = "kontoId"
#: Its query parameter: the eksternReferanse, exactly as it was sent.
REFERANSE_PARAMETER = "eksternRef"
#: How long after an attempt began an empty lookup proves SvarUt did not take
#: the letter: SvarUt may take up to 15 minutes to answer a send (KS), plus a margin.
AVKLARING_VINDU = timedelta(minutes=20)

Tilstand = Literal["mottatt", "ikke_mottatt", "uavklart"]


class LookupUnavailableError(SvarUtError, NotImplementedError):
    """The specs this client was generated from have no eksternRef lookup."""


@dataclass(frozen=True)
class Utfall:
    """What SvarUt says about a send whose outcome was unknown.

    ``forsendelse_id`` is set for ``mottatt``; ``funnet`` lists every id the
    lookup found (several for a reused reference); ``grunn`` says why, in
    words for a person.
    """

    tilstand: Tilstand
    ekstern_referanse: str
    grunn: str
    forsendelse_id: UUID | str | None = None
    funnet: tuple[UUID | str, ...] = ()
    sendt: datetime | None = None
    sjekket: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def trygt_a_sende_pa_nytt(self) -> bool:
        """Whether sending the letter again cannot make a second copy: True
        only for ``ikke_mottatt``."""
        return self.tilstand == "ikke_mottatt"


def _id(value: str) -> UUID | str:
    try:
        return UUID(value)
    except ValueError:
        return value  # the spec types them as strings: keep what SvarUt said


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def avgjor(
    ekstern_referanse: str,
    found: list[str],
    *,
    sendt: datetime | None,
    now: datetime | None = None,
    vindu: timedelta = AVKLARING_VINDU,
    datert: Mapping[str, datetime] | None = None,
) -> Utfall:
    """The :class:`Utfall` of a lookup of ``ekstern_referanse`` that found
    ``found`` (SvarUt's ids, with each one's date in ``datert`` where the
    lookup said it), for an attempt that began at ``sendt`` (None: not known;
    a naive datetime is taken as UTC), checked at ``now``.

    This is the decision :meth:`svarut.SvarUtClient.avklar_utfall` makes from
    SvarUt's answer; call it yourself when you did the lookup another way.

    Args:
        ekstern_referanse: The eksternReferanse looked up.
        found: The ids of the forsendelser SvarUt has with it.
        sendt: When the send attempt began, or None if not known.
        now: When the lookup was made (default: now).
        vindu: How long after ``sendt`` an empty answer proves SvarUt did not
            take the letter (default :data:`AVKLARING_VINDU`).
        datert: Each found id's date, where the lookup gave one; a forsendelse
            dated before ``sendt`` means the reference was used before.

    Returns:
        ``mottatt`` for exactly one id, ``ikke_mottatt`` for none once
        ``vindu`` has passed, else ``uavklart``; ``grunn`` says why.

    >>> from datetime import datetime, timedelta, UTC
    >>> began = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    >>> avgjor("ref-1", [], sendt=began, now=began + timedelta(hours=1)).tilstand
    'ikke_mottatt'
    >>> avgjor("ref-1", [], sendt=began, now=began + timedelta(minutes=1)).tilstand
    'uavklart'
    """
    checked = _aware(now or datetime.now(UTC))
    began = _aware(sendt) if sendt is not None else None
    ids = tuple(dict.fromkeys(_id(i) for i in found))
    earlier = sorted(
        _aware(when)
        for when in (datert or {}).values()
        if began is not None and _aware(when) < began - KLOKKE_SLINGRING
    )
    if earlier:
        why = (
            f"SvarUt has a forsendelse with this reference dated {earlier[0].isoformat(timespec='seconds')}, before "
            "this attempt began: the reference was used before, so the lookup cannot tell whether this attempt arrived"
        )
        return Utfall("uavklart", ekstern_referanse, why, None, ids, began, checked)
    if len(ids) == 1:
        why = "SvarUt has exactly one forsendelse with this reference"
        return Utfall("mottatt", ekstern_referanse, why, ids[0], ids, began, checked)
    if len(ids) > 1:
        return Utfall(
            "uavklart",
            ekstern_referanse,
            f"SvarUt has {len(ids)} forsendelser with this reference; which one this attempt made cannot be told",
            None,
            ids,
            began,
            checked,
        )
    if began is None:
        why = "SvarUt has no forsendelse with this reference yet, and when the attempt began is not known"
        return Utfall("uavklart", ekstern_referanse, why, None, (), None, checked)
    if checked - began < vindu:
        settles = began + vindu
        why = (
            "SvarUt has no forsendelse with this reference yet, but the attempt is recent (SvarUt may take up to "
            f"15 minutes to answer a send): ask again after {settles.isoformat(timespec='seconds')}"
        )
        return Utfall("uavklart", ekstern_referanse, why, None, (), began, checked)
    why = f"SvarUt has no forsendelse with this reference, {_minutes(checked - began)} after the attempt began"
    return Utfall("ikke_mottatt", ekstern_referanse, why, None, (), began, checked)


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} minutes" if minutes >= 1 else f"{delta.total_seconds():.0f} seconds"
