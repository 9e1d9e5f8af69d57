"""Verify ``svarut/utfall.py``, the declared binding of the eksternRef lookup
(``avklar_utfall``), against the specs being generated.

:func:`verify_utfall_binding` lists what must stop generation: the lookup
exists but no longer has the path parameter the konto goes in, the query
parameter the reference goes in, or an answer that is a list of ids.
:func:`utfall_binding_warnings`: specs without the lookup generate a client
whose ``avklar_utfall`` raises ``LookupUnavailableError``.
"""

from __future__ import annotations

from generator.ir import Api, Operation
from svarut import utfall as binding

__all__ = ["utfall_binding_warnings", "verify_utfall_binding"]


def _lookup(api: Api, operation_id: str = binding.LOOKUP_OPERATION) -> Operation | None:
    return next((o for o in api.operations if o.operation_id == operation_id), None)


def verify_utfall_binding(api: Api) -> list[str]:
    """Problems that make the lookup binding wrong for these specs (empty: fine)."""
    problems = _verify(api, binding.LOOKUP_OPERATION, "list[str]")
    metadata = _lookup(api, binding.METADATA_OPERATION)
    if metadata is not None:
        problems += _verify(api, binding.METADATA_OPERATION, metadata.response.py_type)
        problems += _verify_item(api, metadata)
    return problems


def _verify_item(api: Api, operation: Operation) -> list[str]:
    """The lookup with metadata answers a list of models with an id (a string) and a date (date-time)."""
    where = f"svarut/utfall.py: the eksternRef lookup {binding.METADATA_OPERATION!r}"
    answer = operation.response.py_type
    prefix = "list[models."
    if not (answer.startswith(prefix) and answer.endswith("]")):
        return [f"{where} answers {answer}; the binding reads a list of forsendelser with metadata"]
    schema = api.schemas.get(answer[len(prefix) : -1])
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    wanted = {binding.METADATA_ID_FIELD: ("string", None), binding.METADATA_DATO_FIELD: ("string", "date-time")}
    problems = []
    for name, (kind, fmt) in wanted.items():
        found = properties.get(name)
        if not isinstance(found, dict) or (found.get("type"), found.get("format")) != (kind, fmt):
            what = kind if fmt is None else f"{kind} ({fmt})"
            problems.append(f"{where}: its forsendelser have no {what} property {name!r} (have {sorted(properties)})")
    return problems


def _verify(api: Api, operation_id: str, answer: str) -> list[str]:
    operation = _lookup(api, operation_id)
    if operation is None:
        return []
    where = f"svarut/utfall.py: the eksternRef lookup {operation_id!r}"
    params = {p.spec_name: p for p in operation.parameters}
    problems = []
    konto = params.get(binding.KONTO_PARAMETER)
    if konto is None or konto.location != "path":
        problems.append(f"{where} has no path parameter {binding.KONTO_PARAMETER!r} (has {sorted(params)})")
    referanse = params.get(binding.REFERANSE_PARAMETER)
    if referanse is None or referanse.location != "query" or not referanse.required:
        problems.append(
            f"{where} has no required query parameter {binding.REFERANSE_PARAMETER!r} (has {sorted(params)})"
        )
    if len(params) != 2:
        problems.append(f"{where} takes parameters {sorted(params)}; the binding passes only the konto and reference")
    if operation.http_method != "GET" or operation.response.py_type != answer:
        problems.append(
            f"{where} is {operation.http_method} answering {operation.response.py_type}; "
            f"the binding reads a GET answering {answer}"
        )
    return problems


def utfall_binding_warnings(api: Api) -> list[str]:
    if _lookup(api) is not None:
        return []
    return [
        f"the specs have no eksternRef lookup {binding.LOOKUP_OPERATION!r}: avklar_utfall raises "
        "LookupUnavailableError and the simulator has no lookup route"
    ]
