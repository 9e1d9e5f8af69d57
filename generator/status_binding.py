"""Verify ``svarut/statuses.py``, the declared meaning of SvarUt's statuses,
against the specs being generated.

:func:`verify_status_binding` lists problems that must stop generation: a
status the binding requires that the spec's enum lacks, or a status search
whose statuses are not the enum the binding reads. :func:`status_binding_warnings`
lists what still generates a working client but a maintainer should look at:
bound statuses dropped because the spec predates them (:data:`INTRODUCED_LATER`),
enum values the binding does not classify (they flow as non-terminal statuses in
no journey), and journeys or send kinds without a counterpart.
"""

from __future__ import annotations

from generator.ir import Api
from svarut import statuses as binding

__all__ = ["status_binding_warnings", "verify_status_binding"]


def _declared() -> list[str]:
    names = [s for j in binding.JOURNEYS for s in j.statuses] + [*binding.TERMINAL, *binding.FAILURES]
    return list(dict.fromkeys(names))


def _enum(api: Api) -> list[str] | None:
    schema = api.schemas.get(binding.STATUS_ENUM)
    if not isinstance(schema, dict) or not isinstance(schema.get("enum"), list):
        return None
    return [str(v) for v in schema["enum"]]


def _has_status_search(api: Api) -> bool:
    return any(op.operation_id == binding.STATUS_OPERATION for op in api.operations)


def verify_status_binding(api: Api) -> list[str]:
    """Problems that make the status binding wrong for these specs (empty: fine)."""
    if not _has_status_search(api):
        return []
    enum = _enum(api)
    if enum is None:
        return [
            f"svarut/statuses.py: the status search {binding.STATUS_OPERATION!r} exists, "
            f"but the specs have no enum schema {binding.STATUS_ENUM!r} for its statuses"
        ]
    return [
        f"svarut/statuses.py: status {name!r} is not in the spec's {binding.STATUS_ENUM} enum "
        f"(if the spec dropped it, update the binding; if only newer specs have it, list it in INTRODUCED_LATER)"
        for name in _declared()
        if name not in enum and name not in binding.INTRODUCED_LATER
    ]


def status_binding_warnings(api: Api) -> list[str]:
    """What generates fine but deserves a look (see the module docstring)."""
    if not _has_status_search(api):
        return [
            f"the specs have no status search {binding.STATUS_OPERATION!r}: the simulator has no status route "
            "and the client's status helpers raise StatusSearchUnavailableError"
        ]
    enum = _enum(api) or []
    warnings = [
        f"status {name!r} (bound in svarut/statuses.py, {binding.INTRODUCED_LATER[name]}) "
        "is not in these specs: dropped"
        for name in _declared()
        if name not in enum and name in binding.INTRODUCED_LATER
    ]
    classified = set(_declared())
    warnings += [
        f"status {name!r} is unclassified in svarut/statuses.py: treated as non-terminal, not in any journey"
        for name in enum
        if name not in classified
    ]
    kinds = {op.kind for op in api.operations if op.kind}
    journey_kinds = {j.kind for j in binding.JOURNEYS}
    warnings += [
        f"journey {j.channel!r} is for send kind {j.kind!r}, which these specs lack: dropped"
        for j in binding.JOURNEYS
        if j.kind not in kinds
    ]
    warnings += [
        f"send kind {kind!r} has no status journey in svarut/statuses.py: the simulator stops its forsendelser "
        f"at {binding.RECEIVED[-1]}"
        for kind in sorted(kinds - journey_kinds)
    ]
    return warnings
