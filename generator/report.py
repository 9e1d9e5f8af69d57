"""The change report between two versions of the specs: what breaks for callers.

``diff`` compares what a caller of the client feels: spec files, operations
(added, removed, moved, renamed), their path/query parameters, multipart parts
(the public argument names of the send methods), request and response models,
schemas, fields, required-ness, types, constraints, enum values, security
schemes and requirements, and the numeric limits stated in descriptions
("Maksimal størrelse er 18 MB"). Schemas are named the way the generator names
them, so a change inside ``PersonForsendelse.dokumenter`` is reported against
``PersonDokument``. A field, part, parameter, schema or operation that
disappears while a matching one appears is reported as a rename.

Every change is classified for callers of the client: ``breaking`` (their code
or data may stop working), ``notable`` (additive, but worth a look: a new value
they may receive, a newly stated limit) or ``additive``. Whether a schema is
sent, received or both decides the class (a new required field breaks a
request, not a response).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.normalize import (
    REF_PREFIX,
    collapse_primitives,
    context_prefixes,
    hoist_inline,
    iter_operations,
    merge_components,
    snake,
)

Schema = dict[str, Any]
BREAKING, NOTABLE, ADDITIVE = "breaking", "notable", "additive"
_RANK = {ADDITIVE: 0, NOTABLE: 1, BREAKING: 2}
REQUEST, RESPONSE = "request", "response"


@dataclass(frozen=True)
class Change:
    """One line of the report and what it means for callers."""

    text: str
    impact: str

    @property
    def breaking(self) -> bool:
        return self.impact == BREAKING


def _worst(impacts: Iterable[str], default: str = ADDITIVE) -> str:
    return max(impacts, key=_RANK.__getitem__, default=default)


def _by_side(sides: Iterable[str], *, request: str, response: str) -> str:
    """The impact of a change to a schema used on ``sides``: the worst of the
    sides it is used on; a schema no operation uses breaks nobody."""
    return _worst([request if side == REQUEST else response for side in sides])


# --- the specs as the generator sees them ----------------------------------------------


@dataclass
class _View:
    files: set[str]
    operations: dict[str, dict[str, Any]]
    schemas: dict[str, Schema]
    sides: dict[str, set[str]]
    security_schemes: dict[str, Any]


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                found.add(ref[len(REF_PREFIX) :])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _closure(roots: set[str], schemas: Mapping[str, Schema]) -> set[str]:
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(sorted(_refs(schemas[name])))
    return seen


def _view(specs: Mapping[str, Any]) -> _View:
    specs = copy.deepcopy(dict(specs))
    schemas = merge_components(specs)
    collapse_primitives(schemas, *[s.get("paths", {}) for s in specs.values()])
    hoist_inline(schemas, context_prefixes(schemas, specs))
    operations: dict[str, dict[str, Any]] = {}
    request_roots: set[str] = set()
    response_roots: set[str] = set()
    for file, path, op in iter_operations(specs):
        op_id = op.get("operationId", f"{op['_method']} {path}")
        op["_security"] = _requirements(op.get("security", specs[file].get("security", [])))
        operations[op_id] = op
        request_roots |= _refs([op.get("requestBody", {}), op["_shared_parameters"], op.get("parameters", [])])
        response_roots |= _refs(op.get("responses", {}))
    sides: dict[str, set[str]] = {}
    for side, roots in ((REQUEST, request_roots), (RESPONSE, response_roots)):
        for name in _closure(roots, schemas):
            sides.setdefault(name, set()).add(side)
    security_schemes: dict[str, Any] = {}
    for _, spec in sorted(specs.items()):
        for name, scheme in spec.get("components", {}).get("securitySchemes", {}).items():
            security_schemes.setdefault(name, scheme)
    return _View(set(specs), operations, schemas, sides, security_schemes)


def _requirements(security: list[Mapping[str, list[str]]]) -> frozenset[str]:
    """Each alternative of a ``security`` list as one string (``a + b[scope]``)."""
    return frozenset(
        " + ".join(f"{name}[{' '.join(scopes)}]" if scopes else name for name, scopes in sorted(alt.items())) or "none"
        for alt in security
    )


def _type(schema: Mapping[str, Any], renamed: Mapping[str, str] | None = None) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[1]
        return (renamed or {}).get(name, name)
    if schema.get("type") == "array":
        return f"array<{_type(schema.get('items', {}), renamed)}>"
    fmt = schema.get("format")
    return str(schema.get("type", "any")) + (f"({fmt})" if fmt else "")


_IGNORED = {"description", "example", "examples", "$ref", "type", "format", "items", "properties", "required", "title"}


def _constraint_map(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _IGNORED}


def _constraints(schema: Mapping[str, Any]) -> str:
    return json.dumps(_constraint_map(schema), sort_keys=True, ensure_ascii=False)


_UPPER_BOUNDS = {"maxLength", "maximum", "maxItems", "exclusiveMaximum", "maxProperties"}
_LOWER_BOUNDS = {"minLength", "minimum", "minItems", "exclusiveMinimum", "minProperties"}
_NEUTRAL = {"default", "deprecated", "readOnly", "writeOnly", "nullable"}


def _tighter(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a value the old constraints accepted may be refused now; a
    constraint whose direction is unknown (a new pattern) counts as tighter."""
    for key in set(old) | set(new):
        before, after = old.get(key), new.get(key)
        if after is None or before == after or key in _NEUTRAL:
            continue
        if key in _UPPER_BOUNDS:
            if before is None or after < before:
                return True
        elif key in _LOWER_BOUNDS:
            if before is None or after > before:
                return True
        elif key == "uniqueItems":
            if after and not before:
                return True
        else:
            return True
    return False


def _without(schema: Schema, *keys: str) -> Schema:
    return {k: v for k, v in schema.items() if k not in keys}


def _similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _pair_renames(
    removed: Iterable[str],
    added: Iterable[str],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    same: Callable[[Any, Any], bool],
    *,
    threshold: float = 0.5,
) -> dict[str, str]:
    """Pair removed with added names whose definitions ``same`` calls equal and
    whose descriptions (or, undocumented, names) are at least ``threshold``
    similar; most similar first, each name used once."""
    candidates = []
    for r in sorted(removed):
        for a in sorted(added):
            if not same(old[r], new[a]):
                continue
            described = old[r].get("description") and new[a].get("description")
            name = _similar(r.lower(), a.lower())
            score = _similar(str(old[r]["description"]), str(new[a]["description"])) if described else name
            if score >= threshold:
                candidates.append((-score, -name, r, a))
    pairs: dict[str, str] = {}
    for _, _, r, a in sorted(candidates):
        if r not in pairs and a not in pairs.values():
            pairs[r] = a
    return pairs


# --- numeric limits stated in descriptions ------------------------------------------------

_UNITS = {"kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30, "tb": 10**12, "byte": 1}
_COUNT_UNITS = "tegn|sider|side|dager|døgn|timer|minutter|sekunder|vedlegg|dokumenter|filer|mottakere|characters|days"
_LIMIT = re.compile(
    r"(?P<word>\b(?:maks(?:imalt|imal|imum)?\.?|høyst|inntil|opptil|under|over|minst|minimum|max(?:imum)?|"
    r"up to|at most|at least)\s+(?:(?:er|på|av)\s+)?)?"
    r"(?P<num>\d+(?:[.,]\d+)?)\s*"
    rf"(?P<unit>(?:[KMGT]i?B|kB|bytes?|{_COUNT_UNITS})\b)?",
    re.IGNORECASE,
)
_LOWER_WORDS = ("minst", "minimum", "over", "at least")


@dataclass(frozen=True, order=True)
class Limit:
    """A number with a unit (or after a word such as "maksimalt") in a description."""

    unit: str
    lower_bound: bool
    value: float = field(compare=False)
    text: str


def limits_in(text: str) -> set[Limit]:
    found = set()
    for match in _LIMIT.finditer(text):
        word, unit = (match["word"] or "").strip(), match["unit"] or ""
        if not word and not unit:
            continue  # "Noark 5", "ISO 8601": a number that limits nothing
        number = match["num"]
        scale = _UNITS.get(unit.lower().rstrip("s"))
        found.add(
            Limit(
                unit="bytes" if scale else unit.lower(),
                lower_bound=word.lower().startswith(_LOWER_WORDS),
                value=float(number.replace(",", ".")) * (scale or 1),
                text=f"{number} {unit}" if unit else f"{word.lower()} {number}",
            )
        )
    return found


def _described(*schemas: Mapping[str, Any]) -> str:
    return " ".join(str(s.get(k, "")) for s in schemas for k in ("summary", "description") if isinstance(s, Mapping))


def _limits(view: _View) -> dict[str, tuple[set[str], set[Limit]]]:
    """Location (``op``, ``op.part``, ``op.parameter``, ``Schema``, ``Schema.field``) → sides and limits."""
    found: dict[str, tuple[set[str], set[Limit]]] = {}

    def add(where: str, sides: set[str], text: str) -> None:
        limits = limits_in(text)
        if limits:
            found[where] = (sides, limits)

    for op_id, op in view.operations.items():
        add(op_id, {REQUEST}, _described(op, op.get("requestBody", {})))
        for name, param in _parameters(op).items():
            add(f"{op_id}.{name}", {REQUEST}, _described(param, param.get("schema", {})))
        for name, part in _parts(op)[0].items():
            add(f"{op_id}.{name}", {REQUEST}, _described(part, part.get("items", {})))
    for name, schema in view.schemas.items():
        sides = view.sides.get(name, set())
        add(name, sides, _described(schema))
        for prop, prop_schema in schema.get("properties", {}).items():
            add(f"{name}.{prop}", sides, _described(prop_schema, prop_schema.get("items", {})))
    return found


# --- operations ---------------------------------------------------------------------------


def _parameters(op: Mapping[str, Any]) -> dict[str, Schema]:
    return {p["name"]: p for p in [*op["_shared_parameters"], *op.get("parameters", [])] if "name" in p}


def _parts(op: Mapping[str, Any]) -> tuple[dict[str, Schema], set[str]]:
    schema = op.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema", {})
    return dict(schema.get("properties", {})), set(schema.get("required", []))


def _json_model(op: Mapping[str, Any]) -> str | None:
    for content_type, content in sorted(op.get("requestBody", {}).get("content", {}).items()):
        if content_type != "multipart/form-data" and "$ref" in content.get("schema", {}):
            return _type(content["schema"])
    return None


def _response_model(op: Mapping[str, Any]) -> str | None:
    for code, response in sorted(op.get("responses", {}).items()):
        if code.startswith("2"):
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            return _type(schema) if schema else None
    return None


def _call(op_id: str, argument: str) -> str:
    return f"{snake(op_id)}({snake(argument)}=…)"


class _Differ:
    def __init__(self, old_specs: Mapping[str, Any], new_specs: Mapping[str, Any]) -> None:
        self.old, self.new = _view(old_specs), _view(new_specs)
        self.changes: list[Change] = []
        self.renamed_schemas: dict[str, str] = {}
        self.renamed_locations: dict[str, str] = {}

    def add(self, text: str, impact: str) -> None:
        self.changes.append(Change(text, impact))

    def run(self) -> list[Change]:
        for file in sorted(self.new.files - self.old.files):
            self.add(f"+ spec file {file}", ADDITIVE)
        for file in sorted(self.old.files - self.new.files):
            self.add(f"- spec file {file}", BREAKING)
        # Schema renames first: operations and fields compare their types through them.
        self.renamed_schemas = _pair_renames(
            set(self.old.schemas) - set(self.new.schemas),
            set(self.new.schemas) - set(self.old.schemas),
            self.old.schemas,
            self.new.schemas,
            self._same_schema,
            threshold=0.0,
        )
        self.renamed_locations.update(self.renamed_schemas)
        self._operations()
        self._security_schemes()
        self._schemas()
        self._limits()
        return self.changes

    def _same_schema(self, a: Schema, b: Schema) -> bool:
        if "enum" in a or "enum" in b:
            return sorted(map(str, a.get("enum", []))) == sorted(map(str, b.get("enum", [])))
        props_a, props_b = a.get("properties") or {}, b.get("properties") or {}
        return bool(props_a) and sorted(props_a) == sorted(props_b)

    # operations

    def _operations(self) -> None:
        old_ops, new_ops = self.old.operations, self.new.operations
        removed, added = set(old_ops) - set(new_ops), set(new_ops) - set(old_ops)
        old_where, new_where = (
            {i: f"{op['_method'].upper()} {op['_path']}" for i, op in ops.items()} for ops in (old_ops, new_ops)
        )
        renamed = _pair_renames(
            removed,
            added,
            old_ops,
            new_ops,
            lambda a, b: (a["_method"], a["_path"]) == (b["_method"], b["_path"]),
            threshold=0.0,
        )
        pairs = {op_id: op_id for op_id in sorted(set(old_ops) & set(new_ops))} | renamed
        for op_id in sorted(set(old_ops) | set(new_ops)):
            if op_id in added and op_id not in renamed.values():
                self.add(f"+ operation {op_id}: {new_where[op_id]}", ADDITIVE)
            elif op_id in removed and op_id not in renamed:
                self.add(f"- operation {op_id}: {old_where[op_id]}", BREAKING)
            elif op_id in renamed:
                new_id = renamed[op_id]
                self.renamed_locations[op_id] = new_id
                self.add(
                    f"~ operation {op_id} renamed -> {new_id}: {snake(op_id)}() is now {snake(new_id)}()", BREAKING
                )
        for old_id, new_id in sorted(pairs.items()):
            old_op, new_op = old_ops[old_id], new_ops[new_id]
            if old_where[old_id] != new_where[new_id]:
                # Callers' code is unchanged; a client released before the move calls the old path.
                self.add(f"~ operation {new_id}: {old_where[old_id]} -> {new_where[new_id]}", NOTABLE)
            self._diff_parameters(old_id, new_id, old_op, new_op)
            self._diff_parts(old_id, new_id, old_op, new_op)
            self._diff_bodies(new_id, old_op, new_op)
        self._diff_security(pairs)

    def _diff_parameters(self, old_id: str, op_id: str, old_op: dict[str, Any], new_op: dict[str, Any]) -> None:
        old, new = _parameters(old_op), _parameters(new_op)

        def shape(p: Schema, renamed: Mapping[str, str] | None) -> tuple[str, ...]:
            return str(p.get("in")), _type(p.get("schema", {}), renamed)

        self._diff_arguments(
            "parameter",
            old_id,
            op_id,
            (old, {n for n, p in old.items() if p.get("required")}),
            (new, {n for n, p in new.items() if p.get("required")}),
            shape=shape,
            # A rename keeps the constraints too; a kept parameter's constraints are compared on their own.
            match=lambda p, renamed: (*shape(p, renamed), _constraints(p.get("schema", {}))),
            schema_of=lambda p: p.get("schema", {}),
        )

    def _diff_parts(self, old_id: str, op_id: str, old_op: dict[str, Any], new_op: dict[str, Any]) -> None:
        def shape(p: Schema, renamed: Mapping[str, str] | None) -> tuple[str, ...]:
            return (_type(p, renamed),)

        self._diff_arguments(
            "part", old_id, op_id, _parts(old_op), _parts(new_op), shape=shape, match=shape, changed_label="type "
        )

    def _diff_arguments(
        self,
        word: str,
        old_id: str,
        op_id: str,
        old_side: tuple[dict[str, Schema], set[str]],
        new_side: tuple[dict[str, Schema], set[str]],
        *,
        shape: Callable[[Schema, Mapping[str, str] | None], tuple[str, ...]],
        match: Callable[[Schema, Mapping[str, str] | None], tuple[str, ...]],
        schema_of: Callable[[Schema], Schema] | None = None,
        changed_label: str = "",
    ) -> None:
        """What changed in an operation's arguments of one ``word`` (path/query
        parameters, multipart parts), each with whether it is required."""
        (old, old_req), (new, new_req) = old_side, new_side
        renamed = _pair_renames(
            set(old) - set(new),
            set(new) - set(old),
            old,
            new,
            lambda a, b: match(a, self.renamed_schemas) == match(b, None),
        )
        for name in sorted(set(old) | set(new)):
            label = f"{op_id}.{name}"
            if name in renamed:
                self.renamed_locations[f"{old_id}.{name}"] = f"{op_id}.{renamed[name]}"
                self.add(
                    f"~ {word} {label} renamed -> {renamed[name]}: "
                    f"{_call(op_id, name)} is now {_call(op_id, renamed[name])}",
                    BREAKING,
                )
            elif name not in old:
                if name in renamed.values():
                    continue
                required = name in new_req
                described = ", ".join(shape(new[name], None))
                self.add(
                    f"+ {word} {label} ({'required' if required else 'optional'}, {described}): {_call(op_id, name)}",
                    BREAKING if required else ADDITIVE,
                )
            elif name not in new:
                self.add(f"- {word} {label}: {_call(op_id, name)} is gone", BREAKING)
            else:
                self._required(f"{word} {label}", name in old_req, name in new_req, {REQUEST})
                if shape(old[name], self.renamed_schemas) != shape(new[name], None):
                    before, after = shape(old[name], None), shape(new[name], None)
                    self.add(f"~ {word} {label}: {changed_label}{' '.join(before)} -> {' '.join(after)}", BREAKING)
                elif schema_of is not None:
                    self._constraint_change(f"{word} {label}", schema_of(old[name]), schema_of(new[name]), {REQUEST})

    def _diff_bodies(self, op_id: str, old_op: dict[str, Any], new_op: dict[str, Any]) -> None:
        for what, model in (("request body", _json_model), ("response", _response_model)):
            before, after = model(old_op), model(new_op)
            mapped = self.renamed_schemas.get(before or "", before)
            if mapped == after:
                continue
            if before is None:
                self.add(f"+ {what} {op_id}: {after}", BREAKING if what == "request body" else ADDITIVE)
            elif after is None:
                self.add(f"- {what} {op_id}: {before}", BREAKING)
            else:
                self.add(f"~ {what} {op_id}: {before} -> {after}", BREAKING)

    def _diff_security(self, pairs: Mapping[str, str]) -> None:
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for old_id, new_id in pairs.items():
            before = self.old.operations[old_id]["_security"]
            after = self.new.operations[new_id]["_security"]
            for requirement in sorted(after - before):
                # A first requirement means new credentials; another alternative is one more way in.
                impact = BREAKING if not before else ADDITIVE
                grouped.setdefault(("+", requirement, impact), []).append(new_id)
            for requirement in sorted(before - after):
                impact = ADDITIVE if not after else BREAKING
                grouped.setdefault(("-", requirement, impact), []).append(new_id)
        for (sign, requirement, impact), op_ids in sorted(grouped.items()):
            self.add(f"{sign} security requirement {requirement}: {', '.join(sorted(op_ids))}", impact)

    def _security_schemes(self) -> None:
        old, new = self.old.security_schemes, self.new.security_schemes
        for name in sorted(set(old) | set(new)):
            if name not in old:
                self.add(f"+ security scheme {name}: {_scheme(new[name])}", ADDITIVE)
            elif name not in new:
                self.add(f"- security scheme {name}: {_scheme(old[name])}", BREAKING)
            elif old[name] != new[name]:
                self.add(f"~ security scheme {name}: {_scheme(old[name])} -> {_scheme(new[name])}", BREAKING)

    # schemas

    def _schemas(self) -> None:
        old, new = self.old.schemas, self.new.schemas
        back = {b: a for a, b in self.renamed_schemas.items()}
        for name in sorted(set(old) | set(new)):
            if name in self.renamed_schemas:
                continue
            if name in back:
                self.add(f"~ schema {back[name]} renamed -> {name}: models.{back[name]} is now models.{name}", BREAKING)
                self._schema_pair(back[name], name)
            elif name not in old:
                self._new_schema(name, new[name])
            elif name not in new:
                self.add(f"- schema {name}", BREAKING)
            else:
                self._schema_pair(name, name)

    def _new_schema(self, name: str, schema: Schema) -> None:
        if "enum" in schema:
            self.add(f"+ schema {name} (enum: {', '.join(map(str, schema['enum']))})", ADDITIVE)
            return
        self.add(f"+ schema {name}", ADDITIVE)
        required = set(schema.get("required", []))
        for prop, prop_schema in sorted(schema.get("properties", {}).items()):
            self.add(f"+ field {name}.{prop} ({self._field_kind(prop, prop_schema, required)})", ADDITIVE)

    def _field_kind(self, prop: str, schema: Schema, required: set[str]) -> str:
        type_ = _type(schema)
        target = self.new.schemas.get(type_, {})
        values = f": {', '.join(map(str, target['enum']))}" if "enum" in target else ""
        return f"{'required' if prop in required else 'optional'}, {type_}{values}"

    def _schema_pair(self, old_name: str, name: str) -> None:
        old, new = self.old.schemas[old_name], self.new.schemas[name]
        sides = self.old.sides.get(old_name, set()) | self.new.sides.get(name, set())
        old_enum, new_enum = old.get("enum", []), new.get("enum", [])
        for value in new_enum:
            if value not in old_enum:
                received_only = bool(sides) and REQUEST not in sides
                self.add(
                    f"+ enum value {name}.{value}" + (" (received)" if received_only else ""),
                    _by_side(sides, request=ADDITIVE, response=NOTABLE),
                )
        for value in old_enum:
            if value not in new_enum:
                self.add(f"- enum value {name}.{value}", BREAKING)
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        renamed = _pair_renames(
            set(old_props) - set(new_props),
            set(new_props) - set(old_props),
            old_props,
            new_props,
            lambda a, b: (_type(a, self.renamed_schemas), _constraints(a)) == (_type(b), _constraints(b)),
        )
        for prop in sorted(set(old_props) | set(new_props)):
            where = f"{name}.{prop}"
            if prop in renamed:
                target = renamed[prop]
                self.renamed_locations[f"{old_name}.{prop}"] = f"{name}.{target}"
                self.add(
                    f"~ field {where} renamed -> {target}: Python name {snake(prop)} is now {snake(target)}", BREAKING
                )
                self._required(f"field {name}.{target}", prop in old_req, target in new_req, sides)
            elif prop not in old_props:
                if prop in renamed.values():
                    continue
                required = prop in new_req
                self.add(
                    f"+ field {where} ({self._field_kind(prop, new_props[prop], new_req)})",
                    _by_side(sides, request=BREAKING if required else ADDITIVE, response=ADDITIVE),
                )
            elif prop not in new_props:
                self.add(f"- field {where}", _by_side(sides, request=BREAKING, response=BREAKING))
            else:
                self._required(f"field {where}", prop in old_req, prop in new_req, sides)
                before, after = _type(old_props[prop], self.renamed_schemas), _type(new_props[prop])
                if before != after:
                    self.add(f"~ field {where}: type {_type(old_props[prop])} -> {after}", BREAKING)
                else:
                    self._constraint_change(f"field {where}", old_props[prop], new_props[prop], sides)

    def _required(self, label: str, before: bool, after: bool, sides: set[str]) -> None:
        if before == after:
            return
        if after:
            self.add(f"~ {label}: optional -> required", _by_side(sides, request=BREAKING, response=ADDITIVE))
        else:
            self.add(f"~ {label}: required -> optional", _by_side(sides, request=ADDITIVE, response=BREAKING))

    def _constraint_change(self, label: str, old: Schema, new: Schema, sides: set[str]) -> None:
        # Said in a caller's words rather than as a constraint: null allowed or not, a default gone.
        if bool(old.get("nullable")) != bool(new.get("nullable")):
            if new.get("nullable"):
                self.add(
                    f"~ {label}: nullable (null is valid; the client still leaves a None out)",
                    _by_side(sides, request=ADDITIVE, response=NOTABLE),
                )
            else:
                self.add(f"~ {label}: no longer nullable", _by_side(sides, request=ADDITIVE, response=ADDITIVE))
        if old.get("default") != new.get("default"):
            before = json.dumps(old["default"]) if "default" in old else "none"
            after = json.dumps(new["default"]) if "default" in new else "none"
            self.add(f"~ {label}: default {before} -> {after}", NOTABLE)
        old, new = _without(old, "nullable", "default"), _without(new, "nullable", "default")
        if _constraints(old) == _constraints(new):
            return
        tighter = _tighter(_constraint_map(old), _constraint_map(new))
        self.add(
            f"~ {label}: constraints {_constraints(old)} -> {_constraints(new)}",
            _by_side(sides, request=BREAKING if tighter else ADDITIVE, response=NOTABLE),
        )

    # limits

    def _limits(self) -> None:
        old = {self._renamed_location(k): v for k, v in _limits(self.old).items()}
        new = _limits(self.new)
        for where in sorted(set(old) | set(new)):
            old_sides, before = old.get(where, (set(), set()))
            new_sides, after = new.get(where, (set(), set()))
            sides = old_sides | new_sides
            gone, came = sorted(before - after), sorted(after - before)
            for limit in list(came):
                same_kind = [g for g in gone if (g.unit, g.lower_bound) == (limit.unit, limit.lower_bound)]
                if not same_kind:
                    continue
                was = same_kind[0]
                gone.remove(was)
                came.remove(limit)
                tighter = limit.value > was.value if limit.lower_bound else limit.value < was.value
                self.add(
                    f"~ limit {where}: {was.text} -> {limit.text}",
                    _by_side(sides, request=BREAKING if tighter else NOTABLE, response=NOTABLE),
                )
            for limit in came:
                self.add(f"+ limit {where}: {limit.text} (stated in the description)", NOTABLE)
            for limit in gone:
                self.add(f"- limit {where}: {limit.text} (no longer stated)", ADDITIVE)

    def _renamed_location(self, where: str) -> str:
        """An old location under its new name: renamed itself, or inside a renamed operation or schema."""
        if where in self.renamed_locations:
            return self.renamed_locations[where]
        owner, dot, rest = where.partition(".")
        return self.renamed_locations.get(owner, owner) + dot + rest


def _scheme(scheme: Mapping[str, Any]) -> str:
    words = [scheme.get(k) for k in ("type", "scheme", "bearerFormat", "in", "name")]
    return " ".join(str(w) for w in words if w) or json.dumps(scheme, sort_keys=True)


def diff(old_specs: Mapping[str, Any], new_specs: Mapping[str, Any]) -> list[Change]:
    """One classified change per line; empty when nothing structural changed."""
    return _Differ(old_specs, new_specs).run()


def document_changes(old: Mapping[str, str], new: Mapping[str, str], used_by: Mapping[str, list[str]]) -> list[Change]:
    """Documents the specs reference by URL (URL → sha256), added, removed or
    changed. What changed inside them is in :func:`diff` (it compares the specs
    with their references resolved); this says where such a change lands."""
    changes = []
    for url in sorted(set(old) | set(new)):
        name = url.rsplit("/", 1)[-1]
        where = ", ".join(used_by.get(url, [])) or "nothing"
        if url not in old:
            changes.append(Change(f"+ referenced document {name} ({url}), used by {where}", ADDITIVE))
        elif url not in new:
            changes.append(Change(f"- referenced document {name} ({url}): no longer referenced", ADDITIVE))
        elif old[url] != new[url]:
            changes.append(Change(f"~ referenced document {name}: new content, for {where}", NOTABLE))
    return changes


def render(changes: list[Change]) -> str:
    """Breaking changes first, then the additive ones; notable lines are marked."""
    if not changes:
        return "no structural changes"
    breaking = [c.text for c in changes if c.breaking]
    additive = [c.text + ("  [notable]" if c.impact == NOTABLE else "") for c in changes if not c.breaking]
    blocks = []
    if breaking:
        blocks.append("\n".join([f"Breaking for callers ({len(breaking)}):", *breaking]))
    if additive:
        blocks.append("\n".join([f"Additive ({len(additive)}):", *additive]))
    return "\n\n".join(blocks)
