"""What the simulator keeps of each forsendelse it accepted, and how its status moves.

A :class:`ReceivedForsendelse` holds the metadata as it arrived (and as the
generated model read it), each document's name, type, size and SHA-256 (and,
for an encrypted one, the plaintext's), and the status path chosen when it
arrived. The status is not pushed forward by a timer: it is computed from the
simulator's clock when asked, one step of the path per ``step_seconds``, so
the history is exact and nothing runs in the background.

The paths are the channels' journeys in :mod:`svarut.statuses` that the
specs can follow (a journey needing a status the specs lack is left out
whole, never cut short): a send kind takes the first journey bound to it. From
spec version 16 on: person MOTTATT → AKSEPTERT → SENDT_ALTINN → LEVERT_ALTINN →
LEST; up to version 15: person MOTTATT → AKSEPTERT → SENDT_DIGITALT → VARSLET →
LEST. On every version: organisasjon … → KLAR_FOR_MOTTAK → LEST; nhn: … →
SENDT_NHN_MOTTAKER → LEVERT_NHN_MOTTAKER; print: … → SENDT_PRINT → PRINTET; a
person without a digital mailbox the ``person_print`` journey (→ IKKE_LEVERT
with ``kunDigitalLevering``). A send kind no journey is bound to stops at
AKSEPTERT.

A forced status (see :mod:`.scenarios`) replaces the path: the reception
failures (AVVIST, FEILET_UNDER_MOTTAK) come straight after MOTTATT, anything
else, a status the binding does not know included, after AKSEPTERT.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from svarut import statuses
from svarut.generated import models
from svarut.runtime.client import EKSTERN_REFERANSE_KEY

__all__ = ["ReceivedDocument", "ReceivedForsendelse", "StatusChange", "forced_path", "journey", "path_for_kind"]


def _received() -> tuple[str, ...]:
    known = statuses.spec_statuses() or ()
    return tuple(s for s in statuses.RECEIVED if s in known)


def journey(channel: str) -> tuple[str, ...] | None:
    """The statuses of ``channel`` (a :data:`svarut.statuses.JOURNEYS` channel)
    as the specs have it, or None when no journey of that channel fits them."""
    return next((j.statuses for j in statuses.journeys() if j.channel == channel), None)


def path_for_kind(kind: str) -> tuple[str, ...]:
    """The happy path of a send of ``kind``: its first journey, or up to AKSEPTERT."""
    return next((j.statuses for j in statuses.journeys() if j.kind == kind), _received())


def forced_path(status: str) -> tuple[str, ...]:
    """The path to a forced final ``status``."""
    received = _received()
    if status in received:
        return received[: received.index(status) + 1]
    if status in statuses.RECEPTION_FAILURES:
        return (*received[:1], status)
    return (*received, status)


@dataclass(frozen=True)
class StatusChange:
    """One step of a forsendelse's status history."""

    status: str
    at: datetime


@dataclass(frozen=True)
class ReceivedDocument:
    """One document as it arrived (stored at ``path``, named ``filnavn``)."""

    filnavn: str
    mime_type: str | None
    size: int
    sha256: str
    path: Path
    plaintext_size: int | None = None
    """For an encrypted document: the decrypted size."""
    plaintext_sha256: str | None = None
    """For an encrypted document: the SHA-256 of the decrypted content."""

    @property
    def content_sha256(self) -> str:
        """The SHA-256 of the document's content: the plaintext's if it was encrypted."""
        return self.plaintext_sha256 or self.sha256

    def read_bytes(self) -> bytes:
        """The bytes as they arrived (ciphertext for an encrypted document)."""
        return self.path.read_bytes()

    def to_json(self) -> dict[str, Any]:
        return {
            "filnavn": self.filnavn,
            "mimeType": self.mime_type,
            "size": self.size,
            "sha256": self.sha256,
            "plaintextSize": self.plaintext_size,
            "plaintextSha256": self.plaintext_sha256,
        }


@dataclass(frozen=True)
class ReceivedForsendelse:
    """A forsendelse the simulator accepted."""

    id: UUID
    konto_id: UUID
    channel: str
    """The send kind: ``person``, ``organisasjon``, ``nhn``, ``print``, ... (``SEND_OPERATIONS``)."""
    operation_id: str
    metadata: dict[str, Any]
    """The ``forsendelse`` part as it arrived (the spec's camelCase names)."""
    model: BaseModel
    """The same, read by the generated model (``models.PersonForsendelse``, ...)."""
    documents: tuple[ReceivedDocument, ...]
    received_at: datetime
    status_path: tuple[str, ...]
    step_seconds: float = field(repr=False)
    started: float = field(repr=False)
    clock: Callable[[], float] = field(repr=False, compare=False)

    @property
    def tittel(self) -> str:
        return str(self.metadata.get("tittel", ""))

    @property
    def ekstern_referanse(self) -> str | None:
        """The eksternReferanse it was sent with, exactly as sent (what the eksternRef lookup matches)."""
        value = self.metadata.get(EKSTERN_REFERANSE_KEY)
        return value if isinstance(value, str) else None

    @property
    def kryptert(self) -> bool:
        return bool(self.metadata.get("kryptert"))

    @property
    def mottaker(self) -> str:
        """Who it went to, for display: navn and digitalId / HER-id / pasient."""
        mottaker = self.metadata.get("mottaker")
        if isinstance(mottaker, dict):
            ident = mottaker.get("digitalId")
            return f"{mottaker.get('navn', '')} ({ident})" if ident else str(mottaker.get("navn", ""))
        pasient = self.metadata.get("pasient") or {}
        her = self.metadata.get("mottakerHerId")
        who = f"HER-id {her}" if her else str(self.metadata.get("mottakertype", ""))
        return f"{who}, pasient {pasient.get('fornavn', '')} {pasient.get('etternavn', '')}".strip()

    def _reached(self) -> int:
        if self.step_seconds <= 0:
            return len(self.status_path)
        elapsed = self.clock() - self.started
        return min(len(self.status_path), max(1, math.floor(elapsed / self.step_seconds) + 1))

    @property
    def history(self) -> list[StatusChange]:
        """Every status so far, with when it was reached."""
        step = timedelta(seconds=max(self.step_seconds, 0.0))
        return [StatusChange(s, self.received_at + i * step) for i, s in enumerate(self.status_path[: self._reached()])]

    @property
    def status(self) -> str:
        return self.status_path[self._reached() - 1]

    @property
    def latest(self) -> StatusChange:
        return self.history[-1]

    def forsendelse_status(self) -> models.ForsendelseStatus:
        latest = self.latest
        return models.ForsendelseStatus.model_validate(
            {"id": self.id, "sisteStatusEndring": latest.at, "status": latest.status}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "kontoId": str(self.konto_id),
            "channel": self.channel,
            "tittel": self.tittel,
            "mottaker": self.mottaker,
            "kryptert": self.kryptert,
            "receivedAt": self.received_at.isoformat(),
            "status": str(self.status),
            "history": [{"status": str(c.status), "at": c.at.isoformat()} for c in self.history],
            "documents": [d.to_json() for d in self.documents],
            "forsendelse": self.metadata,
        }
