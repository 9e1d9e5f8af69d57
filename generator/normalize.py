"""Specs → intermediate representation.

Steps, each driven only by what the specs say:

1. merge the component schemas of every spec (a schema defined in several
   specs, such as ``ErrorMessage``, must be identical and is emitted once);
2. collapse primitive and array component schemas (``tittel``, ``filnavn``,
   ``eksponertFor``) into the properties that reference them, so no
   ``RootModel`` wrappers are generated;
3. give inline objects and enums the names a person would write
   (``PersonDokument``, ``SvarSendesTilType``);
4. mark which models are sent (strict) and which are received (lenient, with
   open enums);
5. describe every operation: parameters, JSON or multipart body, response.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from generator.ir import (
    Api,
    FilePart,
    JsonBody,
    JsonField,
    MultipartBody,
    Operation,
    Parameter,
    Response,
)
from svarut.runtime.multipart import CONTENT_TYPE_KEY, FILENAME_KEY

Schema = dict[str, Any]
REF_PREFIX = "#/components/schemas/"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class SpecError(Exception):
    """The specs contain something the generator cannot represent."""


# --- names -----------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+|[0-9]+")


def words(name: str) -> list[str]:
    return _WORD.findall(name)


def pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in words(name))


def snake(name: str) -> str:
    return "_".join(w.lower() for w in words(name))


def singular(name: str) -> str:
    """Norwegian plural → singular, for naming array items (``dokumenter``)."""
    for plural, single in (("ere", "er"), ("er", "")):
        if name.endswith(plural) and len(name) > len(plural) + 2:
            return name[: -len(plural)] + single
    return name


def ref_name(ref: str) -> str:
    if not ref.startswith(REF_PREFIX):
        raise SpecError(f"unsupported $ref {ref!r}: only {REF_PREFIX}* is supported")
    return ref[len(REF_PREFIX) :]


def ref(name: str) -> Schema:
    return {"$ref": REF_PREFIX + name}


# --- 1. merge ---------------------------------------------------------------


_DOCUMENTATION = ("description", "example", "examples", "externalDocs", "title")


def _substance(schema: Any) -> Any:
    """``schema`` without its documentation keywords, at every schema position."""
    if not isinstance(schema, dict):
        return schema
    result = {k: v for k, v in schema.items() if k not in _DOCUMENTATION}
    if isinstance(result.get("properties"), dict):
        result["properties"] = {k: _substance(v) for k, v in result["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if key in result:
            result[key] = _substance(result[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(result.get(key), list):
            result[key] = [_substance(v) for v in result[key]]
    return result


def merge_components(specs: Mapping[str, Schema]) -> dict[str, Schema]:
    """Every spec's component schemas in one namespace. A schema defined in
    several specs must say the same in each; its documentation may differ (a
    spec of one version beside one that takes the schema from ``fiks-common.json``),
    and the first spec by file name gives it."""
    merged: dict[str, Schema] = {}
    origin: dict[str, str] = {}
    for file, spec in sorted(specs.items()):
        for name, schema in spec.get("components", {}).get("schemas", {}).items():
            if name in merged and _substance(merged[name]) != _substance(schema):
                raise SpecError(
                    f"schema {name!r} differs between {origin[name]} and {file}; "
                    "a shared schema must be identical in every spec (documentation aside)"
                )
            merged.setdefault(name, copy.deepcopy(schema))
            origin.setdefault(name, file)
    return merged


# --- 2. collapse primitives -------------------------------------------------


def _is_model(schema: Schema) -> bool:
    return schema.get("type") == "object" or "properties" in schema or "enum" in schema


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def collapse_primitives(schemas: dict[str, Schema], *docs: Any) -> None:
    """Inline every component that is neither an object nor an enum."""
    primitive = {n: s for n, s in schemas.items() if not _is_model(s)}
    for name in primitive:
        del schemas[name]

    def inline(node: dict[str, Any], seen: tuple[str, ...]) -> None:
        target = ref_name(node["$ref"])
        if target in seen:
            raise SpecError(f"primitive schema {target!r} refers to itself")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node.clear()
        node.update(copy.deepcopy(primitive[target]))
        node.update(siblings)  # a description beside the $ref wins
        for inner in list(_walk(node)):
            if "$ref" in inner and ref_name(inner["$ref"]) in primitive:
                inline(inner, (*seen, target))

    for root in (schemas, *docs):
        for node in list(_walk(root)):
            if "$ref" in node and ref_name(node["$ref"]) in primitive:
                inline(node, ())


# --- 3. name inline schemas -------------------------------------------------


def context_prefixes(schemas: Mapping[str, Schema], specs: Mapping[str, Schema]) -> dict[str, str]:
    """A metadata model named after its multipart part drops that word from
    the names of its inline schemas: ``PersonForsendelse.dokumenter`` becomes
    ``PersonDokument``, not ``PersonForsendelseDokument``."""
    prefixes: dict[str, str] = {}
    for _, _, operation in iter_operations(specs):
        for part, schema in _multipart_properties(operation).items():
            if "$ref" in schema:
                model = ref_name(schema["$ref"])
                suffix = pascal(part)
                if model.endswith(suffix) and model != suffix:
                    prefixes[model] = model[: -len(suffix)]
    return prefixes


def _unique_name(candidates: list[str], taken: set[str]) -> str:
    for name in candidates:
        if name not in taken:
            return name
    base = candidates[-1]
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def _hoist_name(prefix: str, prop: str, taken: set[str]) -> str:
    part = pascal(prop)
    full = prefix + part
    candidates = [full]
    prefix_words, part_words = words(prefix), words(part)
    for k in range(min(len(prefix_words), len(part_words)), 0, -1):
        if prefix_words[-k:] == part_words[:k]:
            merged = prefix + "".join(part_words[k:])
            candidates = [merged, part, full]
            break
    return _unique_name(candidates, taken)


def hoist_inline(schemas: dict[str, Schema], prefixes: Mapping[str, str]) -> None:
    """Move inline objects and enums under properties to named components."""
    queue = sorted(schemas)
    context = {name: prefixes.get(name, name) for name in queue}
    while queue:
        owner = queue.pop(0)
        schema = schemas[owner]
        for prop, prop_schema in sorted(schema.get("properties", {}).items()):
            holder, key, target, label = schema["properties"], prop, prop_schema, prop
            if prop_schema.get("type") == "array" and isinstance(prop_schema.get("items"), dict):
                holder, key, target, label = prop_schema, "items", prop_schema["items"], singular(prop)
            if "$ref" in target or not _is_model(target):
                continue
            name = _hoist_name(context[owner], label, set(schemas))
            description = target.get("description")
            schemas[name] = target
            holder[key] = ref(name) if description is None else {**ref(name), "description": description}
            context[name] = context[owner]
            queue.append(name)


# --- 4. request / response -------------------------------------------------


def _refs(node: Any) -> set[str]:
    return {ref_name(n["$ref"]) for n in _walk(node) if "$ref" in n}


def _closure(roots: set[str], schemas: Mapping[str, Schema]) -> set[str]:
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise SpecError(f"$ref to unknown schema {name!r}")
        seen.add(name)
        todo.extend(sorted(_refs(schemas[name])))
    return seen


def open_response_enums(schemas: dict[str, Schema], response_models: set[str]) -> None:
    """A received enum may carry a value the spec does not list yet (a new
    status); the field then holds the raw string instead of failing."""
    enums = {n for n, s in schemas.items() if "enum" in s}
    for name in sorted(response_models - enums):
        for prop_schema in schemas[name].get("properties", {}).values():
            slots = [prop_schema]
            if prop_schema.get("type") == "array" and isinstance(prop_schema.get("items"), dict):
                slots = [prop_schema["items"]]
            for slot in slots:
                if "$ref" in slot and ref_name(slot["$ref"]) in enums:
                    target = slot.pop("$ref")
                    slot["anyOf"] = [{"$ref": target}, {"type": "string"}]


# --- 5. operations ----------------------------------------------------------


def iter_operations(specs: Mapping[str, Schema]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for file, spec in sorted(specs.items()):
        for path, item in spec.get("paths", {}).items():
            for method in HTTP_METHODS:
                if method in item:
                    yield (
                        file,
                        path,
                        {
                            **item[method],
                            "_method": method,
                            "_path": path,
                            "_shared_parameters": item.get("parameters", []),
                        },
                    )


def _multipart_properties(operation: Mapping[str, Any]) -> dict[str, Schema]:
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" not in content:
        return {}
    return dict(content["multipart/form-data"].get("schema", {}).get("properties", {}))


def py_type(schema: Schema, *, models_prefix: str = "models.") -> str:
    """The Python type of a schema, for signatures written by the templates."""
    if "$ref" in schema:
        return models_prefix + ref_name(schema["$ref"])
    if "anyOf" in schema:
        return " | ".join(py_type(s, models_prefix=models_prefix) for s in schema["anyOf"])
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "array":
        return f"list[{py_type(schema.get('items', {}), models_prefix=models_prefix)}]"
    if kind == "string":
        return {"uuid": "UUID", "date-time": "datetime", "date": "date", "binary": "bytes"}.get(fmt or "", "str")
    return {"integer": "int", "number": "float", "boolean": "bool", "object": "dict[str, Any]"}.get(kind or "", "Any")


def _argument_type(schema: Schema) -> str:
    """What a caller may pass: a UUID may also be given as its string form."""
    if schema.get("type") == "array":
        return f"Sequence[{_argument_type(schema.get('items', {}))}]"
    base = py_type(schema)
    return f"{base} | str" if base == "UUID" else base


def _parameters(operation: Mapping[str, Any]) -> tuple[Parameter, ...]:
    params = []
    for param in [*operation["_shared_parameters"], *operation.get("parameters", [])]:
        if "$ref" in param:
            raise SpecError(f"{operation['operationId']}: $ref parameters are not supported")
        if param["in"] not in ("path", "query"):
            raise SpecError(
                f"{operation['operationId']}: {param['in']} parameter {param['name']!r} is not supported yet"
            )
        schema = param.get("schema", {})
        if param["in"] == "query" and schema.get("type", "string") != "string":
            raise SpecError(
                f"{operation['operationId']}: query parameter {param['name']!r} of type {schema.get('type')!r} "
                "is not supported yet (only strings)"
            )
        params.append(
            Parameter(
                spec_name=param["name"],
                py_name=snake(param["name"]),
                location=param["in"],
                required=bool(param.get("required", False)),
                py_type=_argument_type(schema),
                format=schema.get("format"),
                description=param.get("description", ""),
                min_length=schema.get("minLength"),
                max_length=schema.get("maxLength"),
            )
        )
    return tuple(params)


def _kind(path: str) -> str:
    """A send operation's name for people: the last literal segment of its path."""
    segments = [s for s in path.split("/") if s and not s.startswith("{")]
    if not segments or not re.fullmatch(r"[a-z][a-z0-9_-]*", segments[-1]):
        raise SpecError(f"cannot name the send operation at {path!r}: its last segment is not a lower-case word")
    return segments[-1]


def _is_binary(schema: Schema) -> bool:
    return schema.get("type") == "string" and schema.get("format") == "binary"


def _multipart_body(operation: Mapping[str, Any], schemas: Mapping[str, Schema]) -> MultipartBody:
    op_id = operation["operationId"]
    metadata = [(n, s) for n, s in _multipart_properties(operation).items() if "$ref" in s]
    files = [
        (n, s)
        for n, s in _multipart_properties(operation).items()
        if _is_binary(s) or (s.get("type") == "array" and _is_binary(s.get("items", {})))
    ]
    if len(metadata) != 1 or len(files) != 1:
        raise SpecError(
            f"{op_id}: a multipart body needs exactly one JSON part (a $ref) and one file part; "
            f"found JSON parts {[n for n, _ in metadata]} and file parts {[n for n, _ in files]}"
        )
    (meta_name, meta_schema), (file_name, file_schema) = metadata[0], files[0]
    model = ref_name(meta_schema["$ref"])
    is_array = file_schema.get("type") == "array"
    described_by = document_model = None
    if is_array:
        meta_props = schemas[model].get("properties", {})
        described = meta_props.get(file_name)
        if described is None or described.get("type") != "array" or "$ref" not in described.get("items", {}):
            raise SpecError(
                f"{op_id}: the file part {file_name!r} is an array, so {model} needs an array property "
                f"{file_name!r} describing each file"
            )
        document_model = ref_name(described["items"]["$ref"])
        item = schemas[document_model]
        missing = {FILENAME_KEY, CONTENT_TYPE_KEY} - set(item.get("properties", {}))
        if missing:
            raise SpecError(f"{op_id}: the items of {model}.{file_name} lack {sorted(missing)}")
        described_by = file_name
    return MultipartBody(
        metadata_part=meta_name,
        metadata_py_name=snake(meta_name),
        model=model,
        files=FilePart(
            spec_name=file_name,
            py_name=snake(file_name),
            is_array=is_array,
            described_by=described_by,
            description=file_schema.get("description", ""),
        ),
        document_model=document_model,
    )


def _json_body(operation: Mapping[str, Any], schemas: Mapping[str, Schema]) -> JsonBody | None:
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return None
    content_type = "application/json"
    if content_type not in content:
        # The status spec declares */*; the server reads JSON.
        if len(content) != 1 or "*/*" not in content:
            raise SpecError(f"{operation['operationId']}: unsupported request content {sorted(content)}")
        content_type_key = "*/*"
    else:
        content_type_key = content_type
    schema = content[content_type_key].get("schema", {})
    if "$ref" not in schema:
        raise SpecError(f"{operation['operationId']}: a JSON body must be a $ref to a component schema")
    model = ref_name(schema["$ref"])
    target = schemas[model]
    required = set(target.get("required", []))
    fields = tuple(
        JsonField(
            spec_name=name,
            py_name=snake(name),
            py_type=_argument_type(prop),
            required=name in required,
        )
        for name, prop in target.get("properties", {}).items()
    )
    return JsonBody(model=model, content_type=content_type, fields=fields)


def _response(operation: Mapping[str, Any], schemas: Mapping[str, Schema]) -> Response:
    op_id = operation["operationId"]
    ok = sorted(code for code in operation.get("responses", {}) if code.startswith("2"))
    if len(ok) != 1:
        raise SpecError(f"{op_id}: expected exactly one 2xx response, found {ok}")
    schema = operation["responses"][ok[0]].get("content", {}).get("application/json", {}).get("schema")
    if schema is None or "$ref" not in schema:
        raise SpecError(f"{op_id}: the success response must be application/json with a $ref schema")
    model = ref_name(schema["$ref"])
    props = schemas[model].get("properties", {})
    if len(props) == 1 and set(schemas[model].get("required", [])) == set(props):
        ((name, prop),) = props.items()
        return Response(status=ok[0], model=model, unwrap=snake(name), py_type=py_type(prop))
    return Response(status=ok[0], model=model, unwrap=None, py_type="models." + model)


def _error_model(operation: Mapping[str, Any]) -> str | None:
    errors = {code: r for code, r in operation.get("responses", {}).items() if not code.startswith("2")}
    names = {
        ref_name(s["$ref"])
        for r in errors.values()
        for s in [r.get("content", {}).get("application/json", {}).get("schema", {})]
        if "$ref" in s
    }
    if len(names) > 1:
        raise SpecError(f"{operation['operationId']}: several error schemas {sorted(names)}")
    return names.pop() if names else None


def build_api(specs: Mapping[str, Schema]) -> Api:
    """Normalize the specs (file name → parsed JSON) into an :class:`Api`."""
    specs = copy.deepcopy(dict(specs))
    schemas = merge_components(specs)
    op_docs = [spec.get("paths", {}) for spec in specs.values()]
    collapse_primitives(schemas, *op_docs)
    hoist_inline(schemas, context_prefixes(schemas, specs))
    for schema in schemas.values():
        if "enum" in schema and "type" not in schema and all(isinstance(v, str) for v in schema["enum"]):
            schema["type"] = "string"

    operations: list[Operation] = []
    request_roots: set[str] = set()
    response_roots: set[str] = set()
    for file, path, op in iter_operations(specs):
        op_id = op.get("operationId")
        if not op_id:
            raise SpecError(f"{op['_method'].upper()} {path} in {file} has no operationId")
        multipart = _multipart_body(op, schemas) if _multipart_properties(op) else None
        json_body = None if multipart else _json_body(op, schemas)
        request_roots |= {b.model for b in (multipart, json_body) if b is not None}
        response = _response(op, schemas)
        error_model = _error_model(op)
        response_roots |= {response.model} | ({error_model} if error_model else set())
        operations.append(
            Operation(
                operation_id=op_id,
                method_name=snake(op_id),
                const_name=snake(op_id).upper(),
                http_method=op["_method"].upper(),
                path=path,
                summary=" ".join(op.get("summary", "").split()),
                spec_file=file,
                parameters=_parameters(op),
                json_body=json_body,
                multipart_body=multipart,
                response=response,
                error_model=error_model,
                kind=_kind(path) if multipart else None,
            )
        )
    names = [o.method_name for o in operations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SpecError(f"operationIds map to the same method name: {duplicates}")
    kinds = [o.kind for o in operations if o.kind]
    duplicates = sorted({k for k in kinds if kinds.count(k) > 1})
    if duplicates:
        raise SpecError(f"send operations whose paths end in the same segment: {duplicates}")

    responses = _closure(response_roots, schemas)
    requests = _closure(request_roots, schemas) - responses
    open_response_enums(schemas, responses)
    servers: dict[str, str] = {}
    for spec in specs.values():
        for server in spec.get("servers", []):
            servers.setdefault(server["url"], server.get("description", ""))
    return Api(
        operations=tuple(sorted(operations, key=lambda o: o.method_name)),
        schemas=dict(sorted(schemas.items())),
        request_models=tuple(sorted(requests)),
        response_models=tuple(sorted(responses)),
        servers=tuple(servers.items()),
    )
