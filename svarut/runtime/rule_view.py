"""The forsendelse as the pre-send rules see it: the serialized metadata,
read only through the declared bindings (:mod:`svarut.runtime.rule_bindings`),
and its documents in wire order, each with its item of the metadata's list.
The rules themselves are in :mod:`svarut.runtime.validation`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from svarut.runtime.files import Source
from svarut.runtime.request_types import PreparedSend
from svarut.runtime.rule_bindings import (
    DOKUMENTER,
    FILNAVN,
    MIME_TYPE,
    NHN,
    NHN_DOKUMENT,
    SpecEnum,
    SpecField,
    SpecOperation,
)
from svarut.runtime.sniff import PDF

__all__ = ["RuleDoc", "RuleSend", "aware", "rule_docs"]


@dataclass(slots=True)  # built per send: a frozen init costs a call per field
class RuleDoc:
    path: str  # "dokumenter[2]", or "dokument" for NHN
    filnavn: str
    mime_type: str  # as given
    meta: Mapping[str, Any]  # its item of the metadata's document list; empty for NHN
    source: Source | None
    # Several rules ask both of every document: worked out once, when it is made.
    kind: str = dataclasses.field(init=False)
    """The MIME type in lower case, without parameters."""
    is_pdf: bool = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.kind = self.mime_type.split(";")[0].strip().lower()
        self.is_pdf = self.kind == PDF

    def field(self, field: SpecField) -> str:
        """The problem path of ``field`` (``dokumenter[].x``) in this document."""
        return f"{self.path}.{field.key}"


@dataclass(slots=True)
class RuleSend:
    operation: str
    meta: Mapping[str, Any]
    docs: tuple[RuleDoc, ...]
    synthetic: bool
    encrypting: bool
    clock: Callable[[], datetime]
    max_parts: int
    max_part_header: int
    # The binding keys this client's spec is older than (SendOperation.predated):
    # a rule whose reading depends on such a field being there cannot be applied.
    predated: frozenset[str] = frozenset()

    def now(self) -> datetime:
        """The current time, aware; asked only by a rule that needs it (few sends do)."""
        return aware(self.clock())

    def is_(self, *operations: SpecOperation) -> bool:
        # A plain loop, not any(): called per rule, with no generator to make for one to three operations.
        for o in operations:  # noqa: SIM110
            if o.operation_id == self.operation:
                return True
        return False

    def get(self, field: SpecField) -> Any:
        """The value at ``field``, or None if absent or not a field of this operation."""
        if self.operation not in field.operation_ids:
            return None
        value: Any = self.meta
        for key in field.steps:
            # The metadata is plain dicts (model_dump); the ABC check is the slow fallback.
            if type(value) is not dict and (value is None or not isinstance(value, Mapping)):
                return None
            value = value.get(key)
        return value

    def flag(self, field: SpecField) -> bool:
        return self.get(field) is True

    def equals(self, enum: SpecEnum) -> bool:
        return bool(self.get(enum.field) == enum.value)

    def doc(self, d: RuleDoc, field: SpecField) -> Any:
        """The value of ``field`` (``dokumenter[].x``) in document ``d``."""
        return d.meta.get(field.steps[-1]) if self.operation in field.operation_ids else None

    @property
    def total_size(self) -> int:
        return sum(d.source.size or 0 for d in self.docs if d.source is not None)


def rule_docs(send: PreparedSend) -> tuple[RuleDoc, ...]:
    if send.operation_id == NHN.operation_id:
        return tuple(RuleDoc(NHN_DOKUMENT.name, d.filnavn, d.mime_type, {}, d.source) for d in send.documents)
    listed = DOKUMENTER.applies_to(send.operation_id)
    items = (send.metadata.get(DOKUMENTER.key) if listed else None) or []
    docs = []
    for i in range(max(len(items), len(send.documents))):
        meta = items[i] if i < len(items) and isinstance(items[i], (dict, Mapping)) else {}
        doc = send.documents[i] if i < len(send.documents) else None
        filnavn = doc.filnavn if doc else str(meta.get(FILNAVN.key, ""))
        mime = doc.mime_type if doc else str(meta.get(MIME_TYPE.key, ""))
        docs.append(RuleDoc(f"{DOKUMENTER.path}[{i}]", filnavn, mime, meta, doc.source if doc else None))
    return tuple(docs)


def aware(value: datetime) -> datetime:
    """``value`` with a timezone: a naive time is taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
