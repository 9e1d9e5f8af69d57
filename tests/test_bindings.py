"""The pre-send rules' binding table against the spec: the locked spec
satisfies every binding; a copy of the spec with any bound field renamed, enum
value dropped, part renamed or operation removed fails naming the rule; the
real upstream version 09 (``mottakerType``) fails naming her_id_required; and
the rule code reads the spec only through the table."""

from __future__ import annotations

import ast
import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from generator_helpers import require_history

from generator import specs
from generator.bindings import require_bindings, verify_bindings
from generator.ir import Api
from generator.normalize import SpecError, build_api, ref_name
from svarut.runtime import validation
from svarut.runtime.validation import BINDINGS, Binding, SpecEnum, SpecField, SpecOperation, SpecPart

ROOT = Path(__file__).resolve().parent.parent

VALIDATION_PY = ROOT / "svarut" / "runtime" / "validation.py"
BINDING_CLASSES = {cls.__name__ for cls in (SpecOperation, SpecField, SpecEnum, SpecPart, Binding)}


@pytest.fixture(scope="module")
def api() -> Api:
    return build_api(specs.parse(specs.load_locked()))


def model_of(api: Api, operation_id: str) -> str:
    (operation,) = [o for o in api.operations if o.operation_id == operation_id]
    assert operation.multipart_body is not None
    return operation.multipart_body.model


def with_schemas(api: Api, schemas: dict[str, Any]) -> Api:
    return dataclasses.replace(api, schemas=schemas)


def rename_field(api: Api, model: str, path: str) -> Api:
    """``api`` with the last key of ``path`` in ``model`` renamed (in its parent schema, wherever that is)."""
    schemas = copy.deepcopy(api.schemas)
    node: dict[str, Any] = schemas[model]  # type: ignore[assignment]
    steps = path.split(".")
    for i, step in enumerate(steps):
        while "$ref" in node:
            node = schemas[ref_name(node["$ref"])]  # type: ignore[assignment]
        key = step.removesuffix("[]")
        if i == len(steps) - 1:
            properties = node["properties"]
            properties[key + "Renamed"] = properties.pop(key)
            node["required"] = [key + "Renamed" if r == key else r for r in node.get("required", [])]
            return with_schemas(api, schemas)
        node = node["properties"][key]
        if step.endswith("[]"):
            node = node["items"]
    raise AssertionError("unreachable")


def drop_enum_value(api: Api, model: str, path: str, value: str) -> Api:
    schemas = copy.deepcopy(api.schemas)
    node: dict[str, Any] = schemas[model]  # type: ignore[assignment]
    for step in path.split("."):
        while "$ref" in node:
            node = schemas[ref_name(node["$ref"])]  # type: ignore[assignment]
        node = node["properties"][step]
    while "$ref" in node:
        node = schemas[ref_name(node["$ref"])]  # type: ignore[assignment]
    node["enum"].remove(value)
    return with_schemas(api, schemas)


def without_operation(api: Api, operation_id: str) -> Api:
    return dataclasses.replace(api, operations=tuple(o for o in api.operations if o.operation_id != operation_id))


def rename_part(api: Api, operation_id: str) -> Api:
    operations = []
    for o in api.operations:
        if o.operation_id == operation_id and o.multipart_body is not None:
            files = dataclasses.replace(o.multipart_body.files, spec_name=o.multipart_body.files.spec_name + "Renamed")
            o = dataclasses.replace(o, multipart_body=dataclasses.replace(o.multipart_body, files=files))
        operations.append(o)
    return dataclasses.replace(api, operations=tuple(operations))


# --- every binding in the table, as a case: generated, so a new binding is covered too ----------


def field_cases() -> Iterator[Any]:
    for binding in BINDINGS:
        for ref in binding.reads:
            if isinstance(ref, SpecField):
                for op in ref.operations:
                    yield pytest.param(binding.rule, ref, op, id=f"{binding.rule}-{op.operation_id}-{ref.path}")


def enum_cases() -> Iterator[Any]:
    for binding in BINDINGS:
        for ref in binding.reads:
            if isinstance(ref, SpecEnum):
                for op in ref.field.operations:
                    yield pytest.param(
                        binding.rule, ref, op, id=f"{binding.rule}-{op.operation_id}-{ref.field.path}={ref.value}"
                    )


def part_cases() -> Iterator[Any]:
    for binding in BINDINGS:
        for ref in binding.reads:
            if isinstance(ref, SpecPart):
                yield pytest.param(binding.rule, ref, id=f"{binding.rule}-{ref.operation.operation_id}-{ref.name}")


def operation_cases() -> Iterator[Any]:
    for binding in BINDINGS:
        for op in binding.operations():
            yield pytest.param(binding.rule, op, id=f"{binding.rule}-{op.operation_id}")


def test_the_table_covers_every_rule_and_each_rule_reads_something():
    assert len(set(validation.RULE_IDS)) == len(validation.RULE_IDS) == len(BINDINGS)
    assert all(b.reads for b in BINDINGS)
    assert validation.ForsendelseRules.RULES == validation.RULE_IDS


def test_the_locked_spec_satisfies_every_binding(api):
    assert verify_bindings(api) == []
    require_bindings(api)  # does not raise


@pytest.mark.parametrize(("rule", "field", "operation"), list(field_cases()))
def test_a_renamed_field_fails_naming_the_rule_and_the_field(api, rule, field, operation):
    model = model_of(api, operation.operation_id)
    problems = verify_bindings(rename_field(api, model, field.path))
    expected = f"rule {rule} reads {model}.{field.path}, which the spec no longer has"
    assert any(p.startswith(expected) for p in problems), problems
    with pytest.raises(SpecError, match=f"rule {rule} reads"):
        require_bindings(rename_field(api, model, field.path))


@pytest.mark.parametrize(("rule", "enum", "operation"), list(enum_cases()))
def test_a_dropped_enum_value_fails_naming_the_rule(api, rule, enum, operation):
    model = model_of(api, operation.operation_id)
    problems = verify_bindings(drop_enum_value(api, model, enum.field.path, enum.value))
    expected = f"rule {rule} compares {model}.{enum.field.path} with {enum.value}, which is no longer one of its values"
    assert any(p.startswith(expected) for p in problems), problems


def test_a_field_that_is_no_longer_an_enum_fails(api):
    model = model_of(api, "sendTilNhn")
    schemas = copy.deepcopy(api.schemas)
    schemas[model]["properties"]["mottakertype"] = {"type": "string"}  # type: ignore[index]
    problems = verify_bindings(with_schemas(api, schemas))
    assert f"rule her_id_required compares {model}.mottakertype with HER_ID, but the field is no longer an enum" in (
        problems
    )


@pytest.mark.parametrize(("rule", "part"), list(part_cases()))
def test_a_renamed_part_fails_naming_the_rule(api, rule, part):
    problems = verify_bindings(rename_part(api, part.operation.operation_id))
    assert any(p.startswith(f"rule {rule} reads the part {part.name!r} of") for p in problems), problems


@pytest.mark.parametrize(("rule", "operation"), list(operation_cases()))
def test_a_removed_operation_fails_unless_it_is_optional(api, rule, operation):
    problems = verify_bindings(without_operation(api, operation.operation_id))
    message = f"rule {rule} applies to operation {operation.operation_id}, which the spec no longer has"
    if operation.optional:
        assert problems == []
    else:
        assert message in problems


def test_a_field_renamed_inside_an_optional_operation_that_exists_fails(api):
    (print_op,) = {op for b in BINDINGS for op in b.operations() if op.optional}
    model = model_of(api, print_op.operation_id)
    problems = verify_bindings(rename_field(api, model, "kryptert"))
    assert problems == [
        f"rule {rule} reads {model}.kryptert, which the spec no longer has"
        for rule in ("hoyeste_requires_kryptert", "kryptert_requires_cms", "content_mismatch")
    ]


# --- real upstream history ---------------------------------------------------------


def history_api(version: str) -> Api:
    folder = require_history() / version
    return build_api(specs.parse({p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}))


def test_version_09_fails_naming_her_id_required():
    # 09 called the field mottakerType: an HER_ID send without a HER-id would have gone out unchecked.
    problems = verify_bindings(history_api("09-29075f1"))
    assert "rule her_id_required reads NhnForsendelse.mottakertype, which the spec no longer has" in problems
    with pytest.raises(SpecError, match=r"rule her_id_required reads NhnForsendelse\.mottakertype"):
        require_bindings(history_api("09-29075f1"))


def test_version_09_has_no_print_and_that_alone_is_no_problem():
    problems = verify_bindings(history_api("09-29075f1"))
    assert not [p for p in problems if "sendTilPrint" in p or "PrintForsendelse" in p]


# --- nobody reads the spec around the table -----------------------------------------------


def bound_names() -> set[str]:
    names: set[str] = set()
    for binding in BINDINGS:
        for ref in binding.reads:
            match ref:
                case SpecOperation():
                    names.add(ref.operation_id)
                case SpecField():
                    names |= {step.removesuffix("[]") for step in ref.path.split(".")}
                    names |= {op.operation_id for op in ref.operations}
                case SpecEnum():
                    names |= {ref.value, *(step.removesuffix("[]") for step in ref.field.path.split("."))}
                case SpecPart():
                    names |= {ref.name, ref.operation.operation_id}
    return names


def literals_naming_the_spec(source: str, names: set[str]) -> list[tuple[int, str]]:
    """String literals in ``source`` equal to a bound name (also as a ``.name`` or ``[name]``
    fragment of an f-string) that are not arguments of a binding declaration."""
    tree = ast.parse(source)
    declared: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BINDING_CLASSES:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                declared |= {id(n) for n in ast.walk(arg) if isinstance(n, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        literal = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in declared
        if literal and (node.value in names or node.value.strip(".[]{}: ") in names):
            found.append((node.lineno, node.value))
    return found


def test_rule_code_names_no_spec_key_outside_the_table():
    assert literals_naming_the_spec(VALIDATION_PY.read_text(), bound_names()) == []


@pytest.mark.parametrize(
    "sneaky",
    [
        'def f(s):\n    return s.meta.get("mottakerHerId")\n',
        'def f(d):\n    return f"{d.path}.skalSigneres"\n',
        'OPS = {"sendTilNhn": 1}\n',
        'def f(s):\n    return s.get(SpecEnum(X, "HER_ID")) == "HER_ID"\n',
    ],
)
def test_the_scan_catches_a_bypass(sneaky):
    assert literals_naming_the_spec(sneaky, bound_names()) != []


# --- the maintainer's commands ----------------------------------------------------


def test_generate_warns_and_check_generated_fails_naming_the_rule_on_a_renamed_field(tmp_path: Path) -> None:
    from generator_helpers import run_cli

    version = require_history() / "09-29075f1"
    lock = [
        dataclasses.replace(entry, sha256=specs.sha256((version / entry.file).read_bytes()))
        for entry in specs.read_lock()
    ]
    lock_path = tmp_path / "lock.json"
    specs.write_lock(lock, lock_path)
    common = ["--lock", str(lock_path), "--specs-dir", str(version)]

    generated = run_cli(*common, "generate", "--out", str(tmp_path / "out"))
    assert generated.returncode == 0, generated.stderr
    assert "warning:" in generated.stderr
    assert "rule her_id_required reads NhnForsendelse.mottakertype" in generated.stderr
    assert (tmp_path / "out" / "models.py").exists()

    checked = run_cli(*common, "check")
    assert checked.returncode == 1
    assert "error:" in checked.stderr
    assert "rule her_id_required reads NhnForsendelse.mottakertype" in checked.stderr
