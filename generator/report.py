"""A structural change report between two versions of the specs.

Compares what a client user feels: operations, schemas, fields, whether a
field is required, field types, and enum values. Inline schemas are named the
way the generator names them, so a change inside ``PersonForsendelse.dokumenter``
is reported against ``PersonDokument``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from generator.normalize import (
    collapse_primitives,
    context_prefixes,
    hoist_inline,
    iter_operations,
    merge_components,
)


def _flatten(specs: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    specs = copy.deepcopy(dict(specs))
    schemas = merge_components(specs)
    collapse_primitives(schemas, *[s.get("paths", {}) for s in specs.values()])
    hoist_inline(schemas, context_prefixes(schemas, specs))
    operations = {
        op.get("operationId", f"{op['_method']} {path}"): f"{op['_method'].upper()} {path}"
        for _, path, op in iter_operations(specs)
    }
    return operations, schemas


def _type(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if schema.get("type") == "array":
        return f"array<{_type(schema.get('items', {}))}>"
    fmt = schema.get("format")
    return str(schema.get("type", "any")) + (f"({fmt})" if fmt else "")


def diff(old_specs: Mapping[str, Any], new_specs: Mapping[str, Any]) -> list[str]:
    """One line per change; empty when nothing structural changed."""
    old_ops, old = _flatten(old_specs)
    new_ops, new = _flatten(new_specs)
    lines: list[str] = []
    for op in sorted(set(old_ops) | set(new_ops)):
        if op not in old_ops:
            lines.append(f"+ operation {op}: {new_ops[op]}")
        elif op not in new_ops:
            lines.append(f"- operation {op}: {old_ops[op]}")
        elif old_ops[op] != new_ops[op]:
            lines.append(f"~ operation {op}: {old_ops[op]} -> {new_ops[op]}")
    for name in sorted(set(old) | set(new)):
        if name not in old:
            lines.append(f"+ schema {name}")
            continue
        if name not in new:
            lines.append(f"- schema {name}")
            continue
        lines += _schema_diff(name, old[name], new[name])
    return lines


def _schema_diff(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    old_enum, new_enum = old.get("enum", []), new.get("enum", [])
    lines += [f"+ enum value {name}.{v}" for v in new_enum if v not in old_enum]
    lines += [f"- enum value {name}.{v}" for v in old_enum if v not in new_enum]
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for prop in sorted(set(old_props) | set(new_props)):
        where = f"{name}.{prop}"
        if prop not in old_props:
            kind = "required" if prop in new_req else "optional"
            lines.append(f"+ field {where} ({kind}, {_type(new_props[prop])})")
        elif prop not in new_props:
            lines.append(f"- field {where}")
        else:
            if (prop in old_req) != (prop in new_req):
                change = "optional -> required" if prop in new_req else "required -> optional"
                lines.append(f"~ field {where}: {change}")
            if _type(old_props[prop]) != _type(new_props[prop]):
                lines.append(f"~ field {where}: type {_type(old_props[prop])} -> {_type(new_props[prop])}")
            elif _constraints(old_props[prop]) != _constraints(new_props[prop]):
                lines.append(
                    f"~ field {where}: constraints {_constraints(old_props[prop])} -> {_constraints(new_props[prop])}"
                )
    return lines


_IGNORED = {"description", "example", "examples", "$ref", "type", "format", "items", "properties", "required"}


def _constraints(schema: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in schema.items() if k not in _IGNORED}, sort_keys=True, ensure_ascii=False)


def render(lines: list[str]) -> str:
    return "\n".join(lines) if lines else "no structural changes"
