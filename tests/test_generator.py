"""The generator: the committed svarut/generated/ is exactly what it makes from
the locked specs, its output has the intended shape, and it follows spec
drift (new fields, enum values, renames, endpoints, required fields) with no
change to the generator itself."""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import jinja2
import pydantic
import pytest
from generator_helpers import (
    GENERATED,
    REF,
    SEND,
    STATUS,
    LocalServer,
    error_response,
    iter_files,
    json_reply,
    konto_parameter,
    official_specs,
    parse_multipart,
    ref,
    run_cli,
    schemas,
    write_specs,
)

import generator.render
from generator import refs, specs
from generator.normalize import SpecError, build_api
from generator.render import render
from svarut.generated import client as generated_client
from svarut.generated import models

KONTO = uuid.UUID("0b5e9f3a-7c43-4d55-9a39-9d1f2c3b4a51")


# Generator subprocesses reach only local servers, and find the specs as a fresh clone would.
pytestmark = pytest.mark.usefixtures("no_proxy_env")


@pytest.fixture(scope="module")
def lock() -> list[specs.LockedSpec]:
    return specs.read_lock()


@pytest.fixture(scope="module")
def locked_documents(lock: list[specs.LockedSpec]) -> list[specs.LockedSpec]:
    """Every locked document: the specs, then the documents they reference (as the header lists them)."""
    return [*lock, *specs.read_references()]


@pytest.fixture(scope="module")
def locked_specs() -> dict[str, Any]:
    return refs.load_bundled()


@pytest.fixture(scope="module")
def fresh(
    tmp_path_factory: pytest.TempPathFactory, locked_specs: dict[str, Any], locked_documents: list[specs.LockedSpec]
) -> Path:
    """svarut/generated/ rendered anew from the locked specs."""
    out = tmp_path_factory.mktemp("fresh") / "generated"
    render(build_api(locked_specs), locked_documents, out)
    return out


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, Any]], ModuleType]]:
    """Render specs into a temp package with a unique name and import it."""
    names: list[str] = []

    def load(spec_dict: dict[str, Any]) -> ModuleType:
        name = f"drift_pkg_{uuid.uuid4().hex[:12]}"
        render(build_api(spec_dict), specs.read_lock(), tmp_path / name)
        monkeypatch.syspath_prepend(str(tmp_path))
        names.append(name)
        return importlib.import_module(name)

    yield load
    for key in [k for k in sys.modules if k.split(".")[0] in names]:
        del sys.modules[key]


def class_names(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]


# --- the golden record ------------------------------------------------------------


def test_fresh_generation_equals_the_committed_package_byte_for_byte(fresh: Path) -> None:
    fresh_files = {p.name: p.read_bytes() for p in iter_files(fresh)}
    committed = {p.name: p.read_bytes() for p in iter_files(GENERATED)}
    assert sorted(fresh_files) == sorted(committed) == ["__init__.py", "client.py", "models.py"]
    for name, data in committed.items():
        assert fresh_files[name] == data, f"svarut/generated/{name} differs from a fresh generation"


def test_cli_check_passes_on_the_committed_package() -> None:
    result = run_cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "svarut/generated/ matches the locked specs" in result.stdout


def test_cli_check_fails_with_a_diff_when_the_specs_move(tmp_path: Path, lock: list[specs.LockedSpec]) -> None:
    drifted = official_specs()
    schemas(drifted)["PersonForsendelse"]["properties"]["prioritet"] = {"type": "string"}
    spec_dir = write_specs(tmp_path / "specs", drifted)
    moved = specs.relock(lock, {e.file: (spec_dir / e.file).read_bytes() for e in lock}, None)
    specs.write_lock(moved, tmp_path / "lock.json")

    result = run_cli("--specs-dir", str(spec_dir), "--lock", str(tmp_path / "lock.json"), "check")

    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^\+\s+prioritet: str \| None = None$", result.stdout, re.M), result.stdout
    assert "run `make generate`" in result.stdout


def test_rendering_is_deterministic(fresh: Path, tmp_path: Path) -> None:
    # Another process with another hash seed: set or dict ordering must not leak into the output.
    again = tmp_path / "again"
    result = run_cli("generate", "--out", str(again), PYTHONHASHSEED="4242")
    assert result.returncode == 0, result.stderr
    assert {p.name: p.read_bytes() for p in iter_files(again)} == {p.name: p.read_bytes() for p in iter_files(fresh)}


def test_build_api_does_not_mutate_its_input(locked_specs: dict[str, Any]) -> None:
    before = copy.deepcopy(locked_specs)
    build_api(locked_specs)
    assert locked_specs == before


def test_every_generated_file_starts_with_the_do_not_edit_header(locked_documents: list[specs.LockedSpec]) -> None:
    files = list(iter_files(GENERATED))
    assert files
    for path in files:
        lines = path.read_text().splitlines()
        head = []
        for line in lines:
            if not line.startswith("#"):
                break
            head.append(line)
        assert head and head[0].startswith("# Generated by the fiks-svarut generator"), path
        assert "# DO NOT EDIT. Run `make generate` to regenerate." in head, path
        for entry in locked_documents:
            assert f"#   {entry.file} sha256:{entry.sha256}" in head, path


# --- names and fields ---------------------------------------------------------------


def test_models_have_the_names_a_person_would_write() -> None:
    source = (GENERATED / "models.py").read_text()
    names = class_names(source)
    for expected in (
        "PersonForsendelse",
        "PersonDokument",
        "OrganisasjonDokument",
        "PrintDokument",
        "SvarSendesTilType",
        "NhnForsendelse",
        "ErrorMessage",
        "Status",
    ):
        assert expected in names
    assert len(re.findall(r"^class ErrorMessage\b", source, re.M)) == 1
    assert len(names) == len(set(names))
    bad = [n for n in names if n.endswith("Item") or n == "Item" or re.search(r"\d$", n)]
    assert bad == []


def test_no_root_models_for_primitive_schemas() -> None:
    source = (GENERATED / "models.py").read_text()
    assert "RootModel" not in source
    primitives = [
        name
        for spec in official_specs().values()
        for name, schema in spec["components"]["schemas"].items()
        if schema.get("type") != "object" and "properties" not in schema and "enum" not in schema
    ]
    assert {"tittel", "filnavn", "mimeType", "eksponertFor"} <= set(primitives)
    names = set(class_names(source))
    for name in primitives:
        assert name[0].upper() + name[1:] not in names
    # ...the constraints of the primitive land on the fields that use it
    assert models.PersonForsendelse.model_fields["tittel"].annotation is str
    mottaker = models.Mottaker(navn="Kari", digital_id="12345678901")
    models.PersonForsendelse(tittel="x" * 1000, mottaker=mottaker)
    for bad in ("", "x" * 1001):
        with pytest.raises(pydantic.ValidationError, match="tittel"):
            models.PersonForsendelse(tittel=bad, mottaker=mottaker)


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def test_fields_are_snake_case_with_the_spec_names_as_aliases(locked_specs: dict[str, Any]) -> None:
    api = build_api(locked_specs)
    checked = 0
    for name, schema in api.schemas.items():
        assert isinstance(schema, dict)
        props = schema.get("properties")
        if not props:
            continue
        model = getattr(models, name)
        # Some models refer to classes defined further down and are completed
        # lazily by pydantic; complete them so model_fields shows every alias.
        model.model_rebuild()
        by_spec_name = {}
        for py_name, info in model.model_fields.items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", py_name), f"{name}.{py_name}"
            assert info.validation_alias == info.serialization_alias, f"{name}.{py_name}"
            by_spec_name[info.serialization_alias or py_name] = py_name
        assert set(by_spec_name) == set(props), name
        for spec_name, py_name in by_spec_name.items():
            assert py_name == _camel_to_snake(spec_name)
            checked += 1
    assert checked > 100


def test_models_are_built_by_python_name_and_read_and_written_by_spec_name() -> None:
    mottaker = models.Mottaker(navn="Kari Nordmann", digital_id="12345678901")
    assert mottaker.digital_id == "12345678901"
    assert models.Mottaker.model_fields["digital_id"].validation_alias == "digitalId"
    assert models.Mottaker.model_fields["digital_id"].serialization_alias == "digitalId"
    assert mottaker.model_dump(exclude_unset=True) == {"navn": "Kari Nordmann", "digitalId": "12345678901"}
    assert json.loads(mottaker.model_dump_json(exclude_unset=True)) == {
        "navn": "Kari Nordmann",
        "digitalId": "12345678901",
    }
    assert models.Mottaker.model_validate({"navn": "Kari", "digitalId": "123456789"}).digital_id == "123456789"


def test_every_operation_is_a_snake_case_method(locked_specs: dict[str, Any]) -> None:
    operation_ids = {
        op["operationId"] for spec in locked_specs.values() for item in spec["paths"].values() for op in item.values()
    }
    assert operation_ids == {
        "sendTilPerson",
        "sendTilOrganisasjon",
        "sendTilNhn",
        "sendTilPrint",
        "hentStatuser",
        "finnForsendelserKnyttetTilEksternRef",
        "finnForsendelserKnyttetTilEksternRefMedMetadata",
    }
    for op_id in operation_ids:
        method = _camel_to_snake(op_id)
        assert callable(getattr(generated_client.SyncOperations, method))
        assert inspect.iscoroutinefunction(getattr(generated_client.AsyncOperations, method))


# --- sync / async parity --------------------------------------------------------------


def test_async_operations_are_the_sync_operations_with_await() -> None:
    source = (GENERATED / "client.py").read_text()
    tree = ast.parse(source)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    sync_node, async_node = classes["SyncOperations"], classes["AsyncOperations"]
    sync_src = ast.get_source_segment(source, sync_node)
    async_src = ast.get_source_segment(source, async_node)
    assert sync_src and async_src

    methods = [n for n in async_node.body if isinstance(n, ast.AsyncFunctionDef)]
    assert len(methods) == 7
    assert not [n for n in async_node.body if isinstance(n, ast.FunctionDef)]
    assert async_src.count("await ") == len(methods)

    head, body = async_src.split("\n", 1)
    assert head == "class AsyncOperations(AsyncAPIClient):"
    as_sync = "class SyncOperations(SyncAPIClient):\n" + body.replace("async def ", "def ").replace("await ", "")
    assert as_sync == sync_src


# --- template rendering -----------------------------------------------------------------


def test_templates_are_rendered_with_strict_undefined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locked_specs: dict[str, Any]
) -> None:
    real_view = generator.render._view

    def incomplete_view(api: Any, head: str) -> dict[str, Any]:
        context = real_view(api, head)
        del context["header"]
        return context

    monkeypatch.setattr(generator.render, "_models", lambda api, head: "")
    monkeypatch.setattr(generator.render, "_view", incomplete_view)
    with pytest.raises(jinja2.UndefinedError, match="header"):
        render(build_api(locked_specs), specs.read_lock(), tmp_path / "out")


# --- response tolerance / request strictness ---------------------------------------------


def test_response_models_ignore_unknown_fields_and_keep_unknown_status_values() -> None:
    status_id = "d6b23522-ddf3-462a-8140-16e59e1f476d"
    unknown = models.ForsendelseStatus.model_validate(
        {"id": status_id, "sisteStatusEndring": "2023-01-01T11:33:55+01:00", "status": "NY", "nyttFelt": [1, 2]}
    )
    assert unknown.status == "NY"
    assert not isinstance(unknown.status, models.Status)
    assert "nyttFelt" not in unknown.model_dump()
    assert str(unknown.id) == status_id

    known = models.ForsendelseStatus.model_validate(
        {"id": status_id, "sisteStatusEndring": "2023-01-01T11:33:55+01:00", "status": "LEST"}
    )
    assert known.status is models.Status.LEST

    wrapped = models.ForsendelseStatuser.model_validate_json(
        json.dumps({"statuser": [{"id": status_id, "sisteStatusEndring": "2023-01-01T11:33:55Z", "status": "X"}]})
    )
    assert wrapped.statuser[0].status == "X"
    error = models.ErrorMessage.model_validate({"message": "feil", "errorCode": "E1", "ukjent": {"a": 1}})
    assert (error.message, error.error_code) == ("feil", "E1")


def test_request_models_forbid_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="ukjent"):
        models.Mottaker(navn="Kari", digital_id="123456789", ukjent="x")  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError, match="ukjent"):
        models.Mottaker.model_validate({"navn": "Kari", "digitalId": "123456789", "ukjent": "x"})
    # request enums are closed
    with pytest.raises(pydantic.ValidationError):
        models.SvarSendesTil.model_validate(
            {
                "navn": "Kari",
                "type": "UKJENT",
                "digitalId": "123456789",
                "adresse": {"adresselinje1": "Gate 1", "poststed": "Oslo"},
            }
        )


# --- drift: the generator follows the specs ------------------------------------------------


def test_drift_new_optional_field(rendered: Callable[[dict[str, Any]], ModuleType]) -> None:
    drifted = official_specs()
    schemas(drifted)["PersonForsendelse"]["properties"]["leveringsPrioritet"] = {
        "type": "string",
        "maxLength": 10,
        "description": "Ny.",
    }
    pkg = rendered(drifted)

    info = pkg.models.PersonForsendelse.model_fields["leverings_prioritet"]
    assert not info.is_required()
    assert info.default is None
    assert info.validation_alias == info.serialization_alias == "leveringsPrioritet"
    forsendelse = pkg.models.PersonForsendelse(
        tittel="Brev",
        mottaker=pkg.models.Mottaker(navn="Kari", digital_id="12345678901"),
        leverings_prioritet="HOY",
    )
    assert forsendelse.model_dump(exclude_unset=True)["leveringsPrioritet"] == "HOY"
    assert (
        pkg.models.PersonForsendelse.model_validate(
            {"tittel": "Brev", "mottaker": {"navn": "Kari", "digitalId": "12345678901"}}
        ).leverings_prioritet
        is None
    )
    with pytest.raises(pydantic.ValidationError):
        pkg.models.PersonForsendelse(
            tittel="Brev",
            mottaker=pkg.models.Mottaker(navn="Kari", digital_id="12345678901"),
            leverings_prioritet="X" * 11,
        )


def test_drift_new_enum_value(rendered: Callable[[dict[str, Any]], ModuleType]) -> None:
    drifted = official_specs()
    schemas(drifted, STATUS)["ForsendelseStatus"]["properties"]["status"]["enum"].append("ARKIVERT")
    pkg = rendered(drifted)

    assert pkg.models.Status.ARKIVERT == "ARKIVERT"
    assert pkg.models.Status.LEST == "LEST"
    parsed = pkg.models.ForsendelseStatus.model_validate(
        {"id": str(uuid.uuid4()), "sisteStatusEndring": "2023-01-01T11:33:55+01:00", "status": "ARKIVERT"}
    )
    assert parsed.status is pkg.models.Status.ARKIVERT
    assert not hasattr(models.Status, "ARKIVERT")


def test_drift_renamed_field(rendered: Callable[[dict[str, Any]], ModuleType]) -> None:
    drifted = official_specs()
    mottaker = schemas(drifted)["Mottaker"]
    mottaker["properties"] = {("fulltNavn" if k == "navn" else k): v for k, v in mottaker["properties"].items()}
    mottaker["required"] = ["fulltNavn" if r == "navn" else r for r in mottaker["required"]]
    pkg = rendered(drifted)

    fields = pkg.models.Mottaker.model_fields
    assert "navn" not in fields
    assert fields["fullt_navn"].is_required()
    assert fields["fullt_navn"].serialization_alias == "fulltNavn"
    made = pkg.models.Mottaker(fullt_navn="Kari Nordmann", digital_id="12345678901")
    assert made.model_dump(exclude_unset=True) == {"fulltNavn": "Kari Nordmann", "digitalId": "12345678901"}
    with pytest.raises(pydantic.ValidationError):
        pkg.models.Mottaker(navn="Kari", digital_id="12345678901")


def _add_count_endpoint(spec_dict: dict[str, Any]) -> None:
    status = spec_dict[STATUS]
    status["components"]["schemas"]["AntallStatuser"] = {
        "type": "object",
        "required": ["antall"],
        "properties": {"antall": {"type": "integer", "format": "int32"}},
    }
    status["paths"]["/v3/kontoer/{kontoId}/forsendelser/status/tell"] = {
        "post": {
            "summary": "Teller forsendelser",
            "operationId": "tellStatuser",
            "parameters": [konto_parameter()],
            "requestBody": {"content": {"application/json": {"schema": ref("Forsendelser")}}, "required": True},
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": ref("AntallStatuser")}}},
                "default": error_response(),
            },
        }
    }


def test_drift_new_json_endpoint(rendered: Callable[[dict[str, Any]], ModuleType]) -> None:
    drifted = official_specs()
    _add_count_endpoint(drifted)
    pkg = rendered(drifted)

    assert callable(pkg.SyncOperations.tell_statuser)
    assert inspect.iscoroutinefunction(pkg.AsyncOperations.tell_statuser)
    assert not hasattr(generated_client.SyncOperations, "tell_statuser")
    ids = [uuid.uuid4(), uuid.uuid4()]
    expected_path = f"/v3/kontoer/{KONTO}/forsendelser/status/tell"

    with LocalServer(json_reply({"antall": 7})) as server:
        with pkg.SyncOperations(base_url=server.url + "/api") as ops:
            assert ops.tell_statuser(konto_id=KONTO, id=ids) == 7

        async def call_async() -> int:
            async with pkg.AsyncOperations(base_url=server.url + "/api") as ops:
                result: int = await ops.tell_statuser(konto_id=str(KONTO), id=[str(i) for i in ids])
                return result

        assert anyio.run(call_async) == 7

    assert len(server.requests) == 2
    for request in server.requests:
        assert request.method == "POST"
        assert request.path == "/api" + expected_path
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.body) == {"id": [str(i) for i in ids]}


def _add_epost_endpoint(spec_dict: dict[str, Any]) -> None:
    send = spec_dict[SEND]
    send["components"]["schemas"]["EpostForsendelse"] = copy.deepcopy(
        send["components"]["schemas"]["PersonForsendelse"]
    )
    operation = copy.deepcopy(send["paths"]["/v3/kontoer/{kontoId}/forsendelser/person"]["post"])
    operation["operationId"] = "sendTilEpost"
    operation["summary"] = "Sender forsendelse på epost"
    operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["forsendelse"] = ref(
        "EpostForsendelse"
    )
    send["paths"]["/v3/kontoer/{kontoId}/forsendelser/epost"] = {"post": operation}


def test_drift_new_multipart_endpoint(rendered: Callable[[dict[str, Any]], ModuleType]) -> None:
    drifted = official_specs()
    _add_epost_endpoint(drifted)
    pkg = rendered(drifted)

    m = pkg.models
    assert {"EpostForsendelse", "EpostDokument"} <= set(dir(m))
    assert issubclass(m.EpostForsendelse, m.RequestModel)
    assert inspect.iscoroutinefunction(pkg.AsyncOperations.send_til_epost)
    forsendelse = m.EpostForsendelse(
        tittel="Brev",
        mottaker=m.Mottaker(navn="Kari", digital_id="12345678901"),
        dokumenter=[
            m.EpostDokument(filnavn="b.pdf", mime_type="application/pdf"),
            m.EpostDokument(filnavn="a.txt", mime_type="text/plain"),
        ],
    )
    sent_id = uuid.uuid4()
    with LocalServer(json_reply({"id": str(sent_id)})) as server, pkg.SyncOperations(base_url=server.url) as ops:
        # the mapping's order is not the wire order: the metadata's is
        result = ops.send_til_epost(
            konto_id=KONTO, forsendelse=forsendelse, dokumenter={"a.txt": b"AAA", "b.pdf": b"%PDF-1.4 B"}
        )
    assert result == sent_id

    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == f"/v3/kontoer/{KONTO}/forsendelser/epost"
    parts = parse_multipart(request.body, request.headers["content-type"])
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("forsendelse", None, "application/json"),
        ("dokumenter", "b.pdf", "application/pdf"),
        ("dokumenter", "a.txt", "text/plain"),
    ]
    assert json.loads(parts[0].content) == {
        "tittel": "Brev",
        "mottaker": {"navn": "Kari", "digitalId": "12345678901"},
        "dokumenter": [
            {"filnavn": "b.pdf", "mimeType": "application/pdf"},
            {"filnavn": "a.txt", "mimeType": "text/plain"},
        ],
    }
    assert [p.content for p in parts[1:]] == [b"%PDF-1.4 B", b"AAA"]


def test_drift_new_required_field(rendered: Callable[[dict[str, Any]], ModuleType]) -> None:
    drifted = official_specs()
    mottaker = schemas(drifted)["Mottaker"]
    mottaker["properties"]["kontaktEpost"] = {"type": "string", "minLength": 3}
    mottaker["required"].append("kontaktEpost")
    pkg = rendered(drifted)

    assert pkg.models.Mottaker.model_fields["kontakt_epost"].is_required()
    with pytest.raises(pydantic.ValidationError, match=r"kontaktEpost|kontakt_epost"):
        pkg.models.Mottaker(navn="Kari", digital_id="12345678901")
    made = pkg.models.Mottaker(navn="Kari", digital_id="12345678901", kontakt_epost="k@x.no")
    assert made.model_dump(exclude_unset=True)["kontaktEpost"] == "k@x.no"
    # the committed models are untouched
    models.Mottaker(navn="Kari", digital_id="12345678901")


# --- specs the generator cannot represent ----------------------------------------------------


def _two_json_parts(spec_dict: dict[str, Any]) -> None:
    _add_epost_endpoint(spec_dict)
    operation = spec_dict[SEND]["paths"]["/v3/kontoer/{kontoId}/forsendelser/epost"]["post"]
    operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["kopi"] = ref("Mottaker")


def _query_parameter(spec_dict: dict[str, Any]) -> None:
    _add_count_endpoint(spec_dict)
    operation = spec_dict[STATUS]["paths"]["/v3/kontoer/{kontoId}/forsendelser/status/tell"]["post"]
    operation["parameters"].append({"name": "side", "in": "query", "schema": {"type": "integer"}})


def _header_parameter(spec_dict: dict[str, Any]) -> None:
    _add_count_endpoint(spec_dict)
    operation = spec_dict[STATUS]["paths"]["/v3/kontoer/{kontoId}/forsendelser/status/tell"]["post"]
    operation["parameters"].append({"name": "X-Side", "in": "header", "schema": {"type": "string"}})


def _two_success_responses(spec_dict: dict[str, Any]) -> None:
    _add_count_endpoint(spec_dict)
    operation = spec_dict[STATUS]["paths"]["/v3/kontoer/{kontoId}/forsendelser/status/tell"]["post"]
    operation["responses"]["201"] = copy.deepcopy(operation["responses"]["200"])


def _inline_json_body(spec_dict: dict[str, Any]) -> None:
    _add_count_endpoint(spec_dict)
    operation = spec_dict[STATUS]["paths"]["/v3/kontoer/{kontoId}/forsendelser/status/tell"]["post"]
    operation["requestBody"]["content"]["application/json"]["schema"] = {"type": "object"}


def _file_array_not_described(spec_dict: dict[str, Any]) -> None:
    _add_epost_endpoint(spec_dict)
    del schemas(spec_dict)["EpostForsendelse"]["properties"]["dokumenter"]


@pytest.mark.parametrize(
    ("change", "op_id", "message"),
    [
        (_two_json_parts, "sendTilEpost", "exactly one JSON part"),
        (_query_parameter, "tellStatuser", "query parameter 'side' of type 'integer' is not supported yet"),
        (_header_parameter, "tellStatuser", "header parameter 'X-Side' is not supported yet"),
        (_two_success_responses, "tellStatuser", "exactly one 2xx response"),
        (_inline_json_body, "tellStatuser", "must be a $ref"),
        (_file_array_not_described, "sendTilEpost", "describing each file"),
    ],
)
def test_unrepresentable_specs_raise_spec_error_naming_the_operation(
    change: Callable[[dict[str, Any]], None], op_id: str, message: str
) -> None:
    drifted = official_specs()
    change(drifted)
    with pytest.raises(SpecError) as excinfo:
        build_api(drifted)
    assert op_id in str(excinfo.value)
    assert message in str(excinfo.value)


def test_a_shared_schema_that_differs_between_specs_is_refused() -> None:
    drifted = official_specs()
    schemas(drifted, STATUS)["ErrorMessage"]["properties"]["ekstra"] = {"type": "string"}
    with pytest.raises(SpecError, match="ErrorMessage"):
        build_api(drifted)


def test_a_ref_to_an_unknown_schema_is_refused() -> None:
    drifted = official_specs()
    schemas(drifted)["Mottaker"]["properties"]["adresse"] = {"$ref": REF + "Finnesikke"}
    with pytest.raises(SpecError, match="Finnesikke"):
        build_api(drifted)


def test_send_operations_list_every_multipart_operation_by_the_last_segment_of_its_path(
    locked_specs: dict[str, Any],
) -> None:
    from svarut.generated import ENDPOINTS, SEND_OPERATIONS

    api = build_api(locked_specs)
    multipart = {op.path.rsplit("/", 1)[1]: op for op in api.operations if op.multipart_body}
    assert sorted(SEND_OPERATIONS) == sorted(multipart) == ["nhn", "organisasjon", "person", "print"]
    for kind, send in SEND_OPERATIONS.items():
        op = multipart[kind]
        assert send.endpoint is ENDPOINTS[op.operation_id]
        assert send.method_name == op.method_name and send.endpoint.path == op.path
        assert op.multipart_body is not None
        assert send.model.__name__ == op.multipart_body.model
        assert (send.file_part, send.described_by) == (
            op.multipart_body.files.spec_name,
            op.multipart_body.files.described_by,
        )
    person = SEND_OPERATIONS["person"]
    assert person.document_model is not None and person.document_model.__name__ == "PersonDokument"
    assert SEND_OPERATIONS["nhn"].document_model is None
    assert person.arguments(konto_id="k", forsendelse=person.model.model_construct(), files={}) == {
        "konto_id": "k",
        "forsendelse": person.model.model_construct(),
        "dokumenter": {},
        "kryptering": False,
    }
