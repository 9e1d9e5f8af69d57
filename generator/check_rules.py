"""Verify the pre-send rules' bindings to the spec.

``svarut.runtime.validation.BINDINGS`` declares, for each rule id, every
operation, field path, enum value and multipart part the rule reads. The rules
run on the serialized forsendelse, so a field renamed upstream would not fail
anything at runtime: the rule would just stop seeing it. This module checks
every declared binding against the normalized spec (:class:`generator.ir.Api`)
so such a rename fails ``make generate`` and ``make check-generated``, naming
the rule and the field.

- :func:`verify_bindings`: the problems, one line each (empty when all hold).
- :func:`require_bindings`: the same, raised as one :class:`SpecError`.
- :func:`predated_bindings`: what the spec lacks because it is older than a
  field marked ``since`` (told by ``predates``, from the upstream history at
  hand): not a problem, and the generated ``SendOperation.predated`` says so
  to the runtime. Without ``predates`` nothing is excused: a field marked
  ``since`` that a spec lacks is then as broken as any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from generator.ir import Api, Operation
from generator.normalize import SpecError, ref_name
from svarut.runtime.validation import BINDINGS, Binding, SpecEnum, SpecField, SpecOperation, SpecPart

Schema = Mapping[str, Any]
ARRAY_STEP = "[]"


#: Whether the spec of an operation (by its spec file) is older than an upstream commit.
Predates = Callable[[Operation, str], bool]


def verify_bindings(api: Api, bindings: Sequence[Binding] = BINDINGS, *, predates: Predates | None = None) -> list[str]:
    """Every binding of ``bindings`` the spec in ``api`` does not satisfy, as
    ``rule <id> reads <Schema>.<path>, which the spec no longer has (...)``."""
    return _verify(api, bindings, predates)[0]


def predated_bindings(api: Api, bindings: Sequence[Binding] = BINDINGS, *, predates: Predates) -> dict[str, list[str]]:
    """operationId → the binding keys (``svarSendesTil.type``, ``part dokument``)
    its spec lacks because it is older than the field; sorted, each once."""
    return _verify(api, bindings, predates)[1]


def _verify(api: Api, bindings: Sequence[Binding], predates: Predates | None) -> tuple[list[str], dict[str, list[str]]]:
    operations = {o.operation_id: o for o in api.operations}
    problems: list[str] = []
    predated: dict[str, set[str]] = {}
    for binding in bindings:
        for message, ref, operation in _check(binding, api, operations):
            if ref is not None and ref.since and operation is not None and predates and predates(operation, ref.since):
                predated.setdefault(operation.operation_id, set()).add(ref.binding_key)
                continue
            line = f"rule {binding.rule} {message}"
            if line not in problems:
                problems.append(line)
    return problems, {op: sorted(keys) for op, keys in sorted(predated.items())}


def require_bindings(api: Api, bindings: Sequence[Binding] = BINDINGS) -> None:
    """Raise :class:`SpecError` listing every binding the spec breaks."""
    problems = verify_bindings(api, bindings)
    if problems:
        raise SpecError(
            "the pre-send rules (svarut/runtime/validation.py BINDINGS) read what the spec no longer has:\n  "
            + "\n  ".join(problems)
            + "\nUpdate the binding table, and the rule, to the spec."
        )


# One broken binding: the message, the field or part that is missing (None: the
# operation itself), and the operation whose spec lacks it.
_Found = tuple[str, "SpecField | SpecPart | None", "Operation | None"]


def _check(binding: Binding, api: Api, operations: Mapping[str, Operation]) -> Iterator[_Found]:
    present: dict[SpecOperation, Operation] = {}
    for spec_op in binding.operations():
        operation = operations.get(spec_op.operation_id)
        if operation is None:
            if not spec_op.optional:
                yield f"applies to operation {spec_op.operation_id}, which the spec no longer has", None, None
        elif operation.multipart_body is None:
            message = f"applies to operation {spec_op.operation_id}, which no longer sends a multipart forsendelse"
            yield message, None, operation
        else:
            present[spec_op] = operation
    for ref in binding.reads:
        match ref:
            case SpecOperation():
                pass  # checked above
            case SpecField():
                yield from _check_field(ref, api, present)
            case SpecEnum():
                yield from _check_enum(ref, api, present)
            case SpecPart():
                yield from _check_part(ref, present)


def _models(field: SpecField, present: Mapping[SpecOperation, Operation]) -> Iterator[tuple[Operation, str]]:
    for spec_op in field.operations:
        operation = present.get(spec_op)
        if operation is not None and operation.multipart_body is not None:
            yield operation, operation.multipart_body.model


def _check_field(field: SpecField, api: Api, present: Mapping[SpecOperation, Operation]) -> Iterator[_Found]:
    for operation, model in _models(field, present):
        _, missing = _resolve(api, model, field.path)
        if missing is not None:
            yield _no_longer(model, field, missing), field, operation


def _no_longer(model: str, field: SpecField, missing: str | None) -> str:
    # A top-level field needs no explanation; a nested one says which schema lost what.
    why = "" if "." not in field.path and ARRAY_STEP not in field.path else f" ({missing})"
    return f"reads {model}.{field.path}, which the spec no longer has{why}"


def _check_enum(enum: SpecEnum, api: Api, present: Mapping[SpecOperation, Operation]) -> Iterator[_Found]:
    for operation, model in _models(enum.field, present):
        schema, missing = _resolve(api, model, enum.field.path)
        if schema is None:
            yield _no_longer(model, enum.field, missing), enum.field, operation
            continue
        values = schema.get("enum")
        if not isinstance(values, list):
            message = f"compares {model}.{enum.field.path} with {enum.value}, but the field is no longer an enum"
            yield message, None, operation
        elif enum.value not in values:
            message = (
                f"compares {model}.{enum.field.path} with {enum.value}, which is no longer one of its values "
                f"({', '.join(map(str, values))})"
            )
            yield message, None, operation


def _check_part(part: SpecPart, present: Mapping[SpecOperation, Operation]) -> Iterator[_Found]:
    operation = present.get(part.operation)
    if operation is None or operation.multipart_body is None:
        return
    body = operation.multipart_body
    if part.name != body.files.spec_name:
        message = (
            f"reads the part {part.name!r} of {operation.operation_id}, which the spec no longer has "
            f"(its file part is {body.files.spec_name!r})"
        )
        yield message, part, operation


def _deref(api: Api, schema: Schema) -> tuple[Schema, str | None]:
    """``schema`` with its ``$ref`` (alone or the one of an ``anyOf``/``allOf``)
    followed, and the name of the schema it ended at (None if inline)."""
    seen: set[str] = set()
    name: str | None = None
    while True:
        ref = schema.get("$ref")
        if ref is None:
            refs = [s["$ref"] for key in ("allOf", "anyOf") for s in schema.get(key, []) if "$ref" in s]
            if len(refs) != 1:
                return schema, name
            ref = refs[0]
        name = ref_name(ref)
        target = api.schemas.get(name)
        if name in seen or not isinstance(target, Mapping):
            return {}, name
        seen.add(name)
        schema = target


def _resolve(api: Api, model: str, path: str) -> tuple[Schema | None, str | None]:
    """The schema at ``path`` in ``model``, or None and what is missing."""
    root = api.schemas.get(model)
    if not isinstance(root, Mapping):
        return None, f"there is no schema {model}"
    schema: Schema = root
    where = model
    for step in path.split("."):
        array = step.endswith(ARRAY_STEP)
        key = step.removesuffix(ARRAY_STEP)
        schema, name = _deref(api, schema)
        where = name or where
        properties = schema.get("properties", {})
        if key not in properties:
            return None, f"{where} has no property {key}"
        schema = properties[key]
        where = f"{where}.{key}"
        if array:
            schema, _ = _deref(api, schema)
            if schema.get("type") != "array" or not isinstance(schema.get("items"), Mapping):
                return None, f"{where} is no longer an array"
            schema = schema["items"]
            where += ARRAY_STEP
    return _deref(api, schema)[0], None
