"""The pre-send rules' binding table against the spec: the locked spec
satisfies every binding; a copy of the spec with any bound field renamed, enum
value dropped, part renamed or operation removed fails naming the rule; the
real upstream version 09 (``mottakerType``) fails naming her_id_required; the
rule code reads the spec only through the table; and a client built anyway
from models that lack what a rule reads refuses the send, naming the rule and
the field, while the real generated models lack nothing."""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import json
import re
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from generator_helpers import require_history
from pydantic import BaseModel

import svarut
from generator import refs, specs
from generator.check_rules import predated_bindings, require_bindings, verify_bindings
from generator.ir import Api
from generator.normalize import SpecError, build_api, ref_name
from svarut import File
from svarut.errors import ForsendelseValidationError
from svarut.generated import SEND_OPERATIONS
from svarut.runtime import operations, validation
from svarut.runtime.client import PreparedSend
from svarut.runtime.files import Source
from svarut.runtime.models import RequestModel
from svarut.runtime.multipart import Document
from svarut.runtime.operations import SendOperation
from svarut.runtime.validation import (
    BINDINGS,
    Binding,
    ForsendelseRules,
    SpecEnum,
    SpecField,
    SpecOperation,
    SpecPart,
)

ROOT = Path(__file__).resolve().parent.parent

VALIDATION_PY = ROOT / "svarut" / "runtime" / "validation.py"
BINDING_CLASSES = {cls.__name__ for cls in (SpecOperation, SpecField, SpecEnum, SpecPart, Binding)}


@pytest.fixture(scope="module")
def api() -> Api:
    return build_api(refs.load_bundled())


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


def test_version_07_has_land_not_landkode_and_is_excused_only_as_older():
    # Before upstream version 08 an address had a free-text "land": the postnummer rule cannot
    # tell a Norwegian address there, so a spec that old is excused; any other spec lacking it is broken.
    api = history_api("07-3f331a3")
    landkode = "rule postnummer reads {}.{}.adresse.landkode, which the spec no longer has"
    problems = verify_bindings(api)
    for model, address in (("PersonForsendelse", "mottaker"), ("OrganisasjonForsendelse", "svarSendesTil")):
        assert any(p.startswith(landkode.format(model, address)) for p in problems), problems
    older = verify_bindings(api, predates=lambda operation, since: since == "cb6fdd0")
    assert not [p for p in older if p.startswith("rule postnummer")]
    excused = predated_bindings(api, predates=lambda operation, since: since == "cb6fdd0")
    assert {"mottaker.adresse.landkode", "svarSendesTil.adresse.landkode"} <= set(excused["sendTilPerson"])
    assert verify_bindings(history_api("08-cb6fdd0"), [b for b in BINDINGS if b.rule == "postnummer"]) == []


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


RULE_CODE = [VALIDATION_PY.parent / name for name in ("validation.py", "tomcat.py", "identifiers.py", "rule_view.py")]


@pytest.mark.parametrize("path", RULE_CODE, ids=lambda p: p.name)
def test_rule_code_names_no_spec_key_outside_the_table(path: Path) -> None:
    assert literals_naming_the_spec(path.read_text(), bound_names()) == []


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


def test_generate_and_check_fail_naming_the_rule_and_a_package_built_anyway_refuses_the_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generator_helpers import run_cli

    version = require_history() / "09-29075f1"
    lock = [
        dataclasses.replace(entry, sha256=specs.sha256((version / entry.file).read_bytes()))
        for entry in specs.read_lock()
        if (version / entry.file).exists()
    ]
    lock_path = tmp_path / "lock.json"
    specs.write_lock(lock, lock_path)
    common = ["--lock", str(lock_path), "--specs-dir", str(version)]

    package = f"spec09_{uuid.uuid4().hex[:12]}"
    generated = run_cli(*common, "generate", "--out", str(tmp_path / package))
    assert generated.returncode == 1, generated.stderr
    assert "error:" in generated.stderr
    assert "rule her_id_required reads NhnForsendelse.mottakertype" in generated.stderr
    assert (tmp_path / package / "models.py").exists()  # written all the same

    checked = run_cli(*common, "check")
    assert checked.returncode == 1
    assert "error:" in checked.stderr
    assert "rule her_id_required reads NhnForsendelse.mottakertype" in checked.stderr

    # The package built anyway: its send operations register as a generated client's do
    # (for this test only), and the HER_ID letter without a HER-id is refused, not sent.
    monkeypatch.setattr(operations, "_REGISTERED", {})  # as in a process where it is the only client
    monkeypatch.syspath_prepend(str(tmp_path))
    old = importlib.import_module(package)
    letter = old.models.NhnForsendelse.model_validate(renamed_key(HER_ID_LETTER, "mottakertype", "mottakerType"))
    send = rules_send("nhn", letter.model_dump(mode="json", exclude_unset=True))
    assert operations.shape_of(send.operation_id) is old.SEND_OPERATIONS["nhn"].shape
    problems = ForsendelseRules(environment="test").problems(send)
    # Version 09 also called NHN's file part vedlegg: every rule reading the part dokument says so.
    part_rules = {b.rule for b in BINDINGS for ref in b.reads if isinstance(ref, SpecPart) and ref.name == "dokument"}
    assert {(p.field, p.rule) for p in problems} == {("mottakertype", "her_id_required")} | {
        ("dokument", rule) for rule in part_rules
    }
    assert all(p.message.startswith("cannot check") for p in problems)
    assert any("this client's NhnForsendelse has no field mottakertype" in p.message for p in problems)
    assert any("this client's sendTilNhn has no part dokument" in p.message for p in problems)


# --- a client built from a spec the table does not match fails closed at runtime ------------------
#
# ``make generate`` and ``make check-generated`` fail, but a package can still be built
# from such a spec. Its models then lack what a rule reads, and the rule would read nothing and
# let through the letter it exists to stop. Here such models are made by hand: a copy of a
# generated model with one field renamed, registered as the operation's model, as the generated
# client of that spec would register it.


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def renamed(model: type[BaseModel], path: str, new: str) -> type[BaseModel]:
    """A copy of ``model`` whose field at ``path`` (the spec's names, dotted) is called ``new``."""
    key, _, rest = path.partition(".")
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        if (info.serialization_alias or name) == key:
            if rest:
                (inner,) = [t for t in typing.get_args(annotation) or (annotation,) if t is not type(None)]
                replacement = renamed(inner, rest, new)
                annotation = replacement | None if type(None) in typing.get_args(annotation) else replacement
            else:
                info = copy.copy(info)
                info.validation_alias = info.serialization_alias = new
                name = _snake(new)
        fields[name] = (annotation, info)
    made: type[BaseModel] = pydantic.create_model(model.__name__, __base__=RequestModel, **fields)
    return made


def renamed_key(data: dict[str, Any], path: str, new: str) -> dict[str, Any]:
    """``data`` (a dumped forsendelse) with the key at ``path`` renamed to ``new``."""
    data = copy.deepcopy(data)
    *parents, key = path.split(".")
    node = data
    for step in parents:
        node = node[step]
    node[new] = node.pop(key)
    return data


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Registers a send operation with another model for this test only (as a generated client would)."""

    def register(kind: str, **changes: Any) -> SendOperation:
        changed = dataclasses.replace(SEND_OPERATIONS[kind], **changes)
        # Made, it does not displace the generated client's registration (see below): put it there.
        monkeypatch.setitem(operations._REGISTERED, changed.endpoint.operation_id, changed)
        return changed

    return register


HER_ID_LETTER = {
    "tittel": "Epikrise",
    "mottakertype": "HER_ID",  # and no mottakerHerId: her_id_required exists to stop this letter
    "avsenderKontakt": {"fornavn": "Ola", "etternavn": "Lege", "telefonnummer": "12345678"},
    "pasient": {"fodselsnummer": "21883649874", "fornavn": "Kari", "etternavn": "Nordmann"},
}
EDIALOG_LETTER = {
    "tittel": "Vedtak",
    "mottaker": {"navn": "Kari Nordmann", "digitalId": "21883649874"},
    "dokumenter": [{"filnavn": "brev.pdf", "mimeType": "application/pdf"}],
    "kanSvareViaEdialog": True,  # and no svarSendesTil: edialog_requires_org exists to stop this letter
}
SVAR_LETTER = {
    **EDIALOG_LETTER,
    # A person's svar address with an organisasjonsnummer, and eDialog to a person: both stopped today.
    "svarSendesTil": {
        "navn": "Svar",
        "type": "PERSON",
        "digitalId": "974760673",
        "adresse": {"adresselinje1": "Gata 1", "poststed": "Oslo"},
    },
}
# (kind, bound path, its new name, a letter a rule stops, the rules that stop it, every rule reading the path)
RENAMES = [
    pytest.param(
        "nhn",
        "mottakertype",
        "mottakerType",
        HER_ID_LETTER,
        ["her_id_required"],
        ["her_id_required"],
        id="mottakertype",
    ),
    pytest.param(
        "person",
        "kanSvareViaEdialog",
        "kanSvareViaEDialog",
        EDIALOG_LETTER,
        ["edialog_requires_org"],
        ["edialog_requires_org"],
        id="kanSvareViaEdialog",
    ),
    pytest.param(
        "person",
        "svarSendesTil.type",
        "typ",
        SVAR_LETTER,
        ["fodselsnummer", "edialog_requires_org"],
        ["fodselsnummer", "organisasjonsnummer", "edialog_requires_org"],
        id="svarSendesTil.type",
    ),
]


def rules_send(kind: str, metadata: dict[str, Any]) -> PreparedSend:
    op = SEND_OPERATIONS[kind]
    docs = [Document("brev.pdf", "application/pdf", Source(b"%PDF-1.7\n", label="brev.pdf"))]
    return PreparedSend(op.endpoint.operation_id, metadata, tuple(docs))


@pytest.mark.parametrize(("kind", "path", "new", "letter", "stops", "rules"), RENAMES)
def test_the_letter_is_stopped_by_its_rule_with_the_real_models(kind, path, new, letter, stops, rules):
    found = [p.rule for p in ForsendelseRules(environment="test").problems(rules_send(kind, letter))]
    assert found == stops


@pytest.mark.parametrize(("kind", "path", "new", "letter", "stops", "rules"), RENAMES)
def test_a_renamed_field_refuses_the_send_naming_the_rule_and_the_field(
    register, kind, path, new, letter, stops, rules
):
    model = renamed(SEND_OPERATIONS[kind].model, path, new)
    register(kind, model=model)
    # What the renamed model sends: the rule reads the old name and finds nothing there.
    metadata = model.model_validate(renamed_key(letter, path, new)).model_dump(mode="json", exclude_unset=True)
    assert path.split(".")[-1] not in json.dumps(metadata)
    problems = ForsendelseRules(environment="test").problems(rules_send(kind, metadata))
    unreadable = [p for p in problems if p.message.startswith("cannot check")]
    assert [(p.field, p.rule) for p in unreadable] == [(path, rule) for rule in rules]
    assert unreadable == problems[: len(unreadable)]  # first: the most important thing to fix
    for p in unreadable:
        assert f"cannot check {p.rule}: this client's {model.__name__} has no field {path}" in p.message
        assert f"skip={{{p.rule!r}}}" in p.message
    # Skipping the rule switches it off, deliberately: then nothing stops that letter.
    skipping = ForsendelseRules(environment="test", skip=set(rules))
    assert [p for p in skipping.problems(rules_send(kind, metadata)) if p.rule in rules] == []


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_client_with_a_renamed_field_sends_nothing(server, register, kind):
    # (This module's ``api`` fixture is the spec, so the clients are made here.)
    model = renamed(SEND_OPERATIONS["nhn"].model, "mottakertype", "mottakerType")
    register("nhn", model=model)
    forsendelse = model.model_validate(renamed_key(HER_ID_LETTER, "mottakertype", "mottakerType"))
    arguments = {
        "konto_id": "0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11",
        "forsendelse": forsendelse,
        "dokument": File(filnavn="epikrise.pdf", content=b"%PDF-1.7\n"),
    }

    async def send(**options: Any) -> None:
        if kind == "sync":
            with svarut.SvarUtClient(base_url=server.base_url, environment="test", **options) as client:
                client.send_til_nhn(**arguments)
        else:
            async with svarut.AsyncSvarUtClient(base_url=server.base_url, environment="test", **options) as client:
                await client.send_til_nhn(**arguments)

    with pytest.raises(ForsendelseValidationError) as info:
        await send()  # the client's default rules
    assert [(p.field, p.rule) for p in info.value.problems] == [("mottakertype", "her_id_required")]
    assert "this client's NhnForsendelse has no field mottakertype" in str(info.value)
    assert server.requests == []

    await send(validate=False, checks=[ForsendelseRules(environment="test", skip={"her_id_required"})])
    assert len(server.requests) == 1


def test_a_dropped_enum_value_or_a_renamed_part_refuses_the_send(register):
    op = SEND_OPERATIONS["nhn"]
    without_her_id = pydantic.create_model(
        op.model.__name__,
        __base__=RequestModel,
        **{
            name: ((typing.Literal["FASTLEGE"] if name == "mottakertype" else info.annotation), info)
            for name, info in op.model.model_fields.items()
        },
    )
    register("nhn", model=without_her_id)
    send = rules_send("nhn", {**HER_ID_LETTER, "mottakertype": "FASTLEGE"})
    problems = ForsendelseRules(environment="test").problems(send)
    assert [(p.field, p.rule) for p in problems] == [("mottakertype", "her_id_required")]
    assert "NhnForsendelse.mottakertype has no value HER_ID (only FASTLEGE)" in problems[0].message

    register("nhn", file_part="vedlegg")
    rules_of_the_part = {
        b.rule for b in BINDINGS for ref in b.reads if isinstance(ref, SpecPart) and ref.name == "dokument"
    }
    problems = ForsendelseRules(environment="test").problems(send)
    assert {(p.field, p.rule) for p in problems} == {("dokument", rule) for rule in rules_of_the_part}
    assert all("this client's sendTilNhn has no part dokument" in p.message for p in problems)


def test_the_real_generated_models_have_everything_the_rules_read():
    for kind, op in SEND_OPERATIONS.items():
        shape = operations.shape_of(op.endpoint.operation_id)
        assert shape is op.shape, kind
        assert validation.binding_problems(shape, op.endpoint.operation_id) == (), kind
        for binding in BINDINGS:  # and every bound field of the operation is among its paths
            for ref in binding.reads:
                if isinstance(ref, SpecField) and ref.applies_to(op.endpoint.operation_id):
                    assert ref.path in shape.paths, (kind, ref.path)


def test_a_copy_made_later_does_not_displace_the_generated_clients_registration():
    # A tool (or a test) may make its own SendOperation from a generated one; the sends of the
    # generated client are still checked against the generated client's models.
    class Bare(RequestModel):
        filnavn: str

    for kind, op in SEND_OPERATIONS.items():
        dataclasses.replace(op, model=Bare)
        assert operations.shape_of(op.endpoint.operation_id) is op.shape, kind
    assert ForsendelseRules(environment="test").problems(rules_send("nhn", HER_ID_LETTER))[0].rule == "her_id_required"


def test_the_shape_is_worked_out_once_per_operation():
    op = SEND_OPERATIONS["person"]
    assert op.shape is op.shape
    first = validation.binding_problems(op.shape, op.endpoint.operation_id)
    assert validation.binding_problems(op.shape, op.endpoint.operation_id) is first


def test_an_operation_no_generated_client_registered_is_checked_by_the_rules_alone():
    assert operations.shape_of("sendTilNoeNytt") is None
    send = PreparedSend("sendTilNoeNytt", {"dokumenter": [{"filnavn": "a.pdf", "mimeType": "application/pdf"}]}, ())
    assert ForsendelseRules().problems(send) == []


# --- a field marked since: excused only for a spec the history shows to be older ----------------

SINCE_FIELDS = [
    pytest.param("her_id_required", "NhnForsendelse", "mottakertype", id="mottakertype"),
    pytest.param("edialog_requires_org", "PersonForsendelse", "kanSvareViaEdialog", id="kanSvareViaEdialog"),
    pytest.param("edialog_requires_org", "SvarSendesTil", "type", id="svarSendesTil.type"),
]


def test_every_field_marked_since_names_a_commit_of_the_history() -> None:
    marked = {ref for b in BINDINGS for ref in b.reads if isinstance(ref, (SpecField, SpecPart)) and ref.since}
    assert {r.binding_key for r in marked} >= {"mottakertype", "kanSvareViaEdialog", "svarSendesTil.type"}
    history = specs.upstream_history(sorted(require_history().glob("[0-9][0-9]-*"))[-1])
    assert len(history) == 17
    for ref in marked:
        assert [c for c in history if c.startswith(ref.since)], ref


@pytest.mark.parametrize(("rule", "schema", "prop"), SINCE_FIELDS)
def test_generate_fails_for_a_renamed_since_field_in_todays_spec(
    tmp_path: Path, tmp_lock: Path, no_proxy_env: None, rule: str, schema: str, prop: str
) -> None:
    """The history at hand shows the locked commit is newer than the field: its absence is a rename."""
    from generator_helpers import locked_documents, official_raw, run_cli, write_specs

    require_history()
    raw = {name: json.loads(data) for name, data in official_raw().items()}
    properties = raw["forsendelse-send-api-v3.json"]["components"]["schemas"][schema]["properties"]
    properties[prop + "Ny"] = properties.pop(prop)
    folder = write_specs(tmp_path / "specs", raw, locked_documents())
    lock = [
        dataclasses.replace(e, sha256=specs.sha256((folder / e.file).read_bytes())) for e in specs.read_lock(tmp_lock)
    ]
    specs.write_lock(lock, tmp_lock)
    result = run_cli("--lock", str(tmp_lock), "--specs-dir", str(folder), "generate", "--out", str(tmp_path / "o"))
    assert result.returncode == 1, result.stderr
    assert re.search(rf"rule {rule} reads \w+\.(svarSendesTil\.)?{prop}, which the spec no longer has", result.stderr)
    assert "older than what pre-send rules read" not in result.stderr


def test_an_older_spec_is_excused_and_its_client_says_what_it_predates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_proxy_env: None
) -> None:
    """Version 09 at its own commit: generate passes with a warning, the generated send
    operations carry what they predate, and the rules do not refuse its sends for it."""
    from generator_helpers import run_cli

    history = require_history()
    version = history / "09-29075f1"
    commit = next(c for c in specs.upstream_history(version) if c.startswith("29075f1"))
    lock = [
        dataclasses.replace(entry, upstream_commit=commit, sha256=specs.sha256((version / entry.file).read_bytes()))
        for entry in specs.read_lock()
        if (version / entry.file).exists()
    ]
    lock_path = tmp_path / "lock.json"
    specs.write_lock(lock, lock_path, references=[])
    package = f"spec09_{uuid.uuid4().hex[:12]}"
    result = run_cli(
        "--lock", str(lock_path), "--specs-dir", str(version), "generate", "--out", str(tmp_path / package)
    )
    assert result.returncode == 0, result.stderr
    assert "warning: sendTilNhn: the spec is older than what pre-send rules read (mottakertype, part dokument)" in (
        result.stderr
    )
    text = (tmp_path / package / "client.py").read_text()
    assert 'predated=("mottakertype", "part dokument")' in text
    assert 'predated=("kanSvareViaEdialog", "svarSendesTil.type")' in text
    # Its client's rules have nothing to refuse for what it predates, and still everything else.
    monkeypatch.setattr(operations, "_REGISTERED", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    old = importlib.import_module(package)
    for send_operation in old.SEND_OPERATIONS.values():
        assert validation.binding_problems(send_operation.shape, send_operation.endpoint.operation_id) == ()
    renamed = dataclasses.replace(old.SEND_OPERATIONS["nhn"], predated=())
    problems = validation.binding_problems(renamed.shape, renamed.endpoint.operation_id)
    assert {p.field for p in problems} == {"mottakertype", "dokument"}
