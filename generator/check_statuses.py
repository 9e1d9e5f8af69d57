"""Verify ``svarut/statuses.py``, the declared meaning of SvarUt's statuses,
against the specs being generated.

:func:`verify_status_binding` lists problems that must stop generation: a
status the binding requires that the spec's enum lacks, unless the binding
declares it as added by a later spec version (:data:`INTRODUCED_LATER`) or
removed by one (:data:`REMOVED_LATER`); a status declared both ways; or a
status search whose statuses are not the enum the binding reads.
:func:`status_binding_warnings` lists what still generates a working client
but a maintainer should look at: bound statuses these specs predate (what needs
them is dropped), enum values the binding does not classify or only places in
journeys these specs cannot follow (they flow as non-terminal statuses in no
journey), and journeys or send kinds without a counterpart.

A removed status missing from the specs is not warned about: that is the
normal state of every spec since the removal, the locked one included. The
journeys that need it are left out whole, as :func:`svarut.statuses.applicable`
leaves them out at run time.
"""

from __future__ import annotations

from generator.ir import Api
from svarut import statuses as binding

__all__ = ["status_binding_warnings", "verify_status_binding"]


def _declared() -> list[str]:
    names = [
        *binding.RECEIVED,
        *(s for j in binding.JOURNEYS for s in j.statuses),
        *binding.RECEPTION_FAILURES,
        *binding.TERMINAL,
        *binding.FAILURES,
    ]
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
    both = sorted(binding.INTRODUCED_LATER.keys() & binding.REMOVED_LATER.keys())
    problems = [
        f"svarut/statuses.py: status {name!r} is declared both in INTRODUCED_LATER and in REMOVED_LATER"
        for name in both
    ]
    if not _has_status_search(api):
        return problems
    enum = _enum(api)
    if enum is None:
        return [
            *problems,
            f"svarut/statuses.py: the status search {binding.STATUS_OPERATION!r} exists, "
            f"but the specs have no enum schema {binding.STATUS_ENUM!r} for its statuses",
        ]
    return problems + [
        f"svarut/statuses.py: status {name!r} is not in the spec's {binding.STATUS_ENUM} enum "
        "(if only newer specs have it, list it in INTRODUCED_LATER; if the spec dropped it, "
        "list it in REMOVED_LATER and declare the journeys that replace it)"
        for name in _declared()
        if name not in enum and name not in binding.INTRODUCED_LATER and name not in binding.REMOVED_LATER
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
    kinds = {op.kind for op in api.operations if op.kind}
    followed = binding.applicable(enum, kinds)
    declared = set(_declared())
    placed = {s for j in followed for s in j.statuses} | {*binding.RECEIVED, *binding.FAILURES, *binding.TERMINAL}
    for name in enum:
        if name not in declared:
            warnings.append(
                f"status {name!r} is unclassified in svarut/statuses.py: treated as non-terminal, not in any journey"
            )
        elif name not in placed:
            warnings.append(
                f"status {name!r}: every journey in svarut/statuses.py that has it needs a status these specs "
                "lack: treated as non-terminal, not in any journey"
            )
    # A channel may be declared once per era; the era's statuses already left the others out.
    lacking = dict.fromkeys((j.channel, j.kind) for j in binding.applicable(enum) if j.kind not in kinds)
    warnings += [
        f"journey {channel!r} is for send kind {kind!r}, which these specs lack: dropped" for channel, kind in lacking
    ]
    journey_kinds = {j.kind for j in binding.JOURNEYS}
    stop = binding.RECEIVED[-1]
    for kind in sorted(kinds):
        if kind not in journey_kinds:
            warnings.append(
                f"send kind {kind!r} has no status journey in svarut/statuses.py: the simulator stops its "
                f"forsendelser at {stop}"
            )
        elif not any(j.kind == kind for j in followed):
            warnings.append(
                f"send kind {kind!r}: none of its status journeys in svarut/statuses.py has all its statuses "
                f"in these specs: the simulator stops its forsendelser at {stop}"
            )
    return warnings
