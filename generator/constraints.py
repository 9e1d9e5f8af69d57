"""The JSON Schema keywords datamodel-code-generator leaves unenforced, made into checks the generated models run.

:func:`apply` rewrites the schemas before datamodel-code-generator reads them
and says which fields need one of the annotations of
:mod:`svarut.runtime.models`; :func:`annotate` appends those to the generated
fields. Only the models that are sent get them: received models stay lenient.

- ``pattern`` is ECMA-262 (:func:`ecma_to_rust`): translated for the Rust
  ``regex`` engine pydantic-core runs, so ``\\d`` is ``[0-9]``, not any Unicode
  digit, and ``.`` and ``\\s`` mean what ECMA-262 says;
- ``pattern`` on an integer (``saksaar``) applies to its decimal digits;
- ``format: int32``/``int64`` bound the value (``minimum``/``maximum``);
- ``uniqueItems: true`` refuses repeated items, compared as JSON values;
- a rule a field's *description* states is bound in :data:`DESCRIBED_RULES`,
  and generation fails if that description no longer says it.

:data:`HANDLED` and :data:`IGNORED` list every keyword the generator knows,
with how it is enforced or why it is not; tests/test_constraints.py fails on any keyword in
the locked specs that is not there.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]
# (model, property as the spec names it) → annotation source texts, in order.
FieldExtras = dict[tuple[str, str], list[str]]

INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}

#: Keywords the generated models enforce, and how.
HANDLED: dict[str, str] = {
    "type": "the field's Python type (datamodel-code-generator)",
    "properties": "model fields",
    "required": "fields without a default",
    "items": "list item type",
    "$ref": "the referenced model",
    "enum": "a StrEnum (open to new values in received models)",
    "anyOf": "a union",
    "format": "uuid → UUID, date-time → AwareDatetime, int32/int64 → bounds (here), binary → a file part",
    "minLength": "Field(min_length=)",
    "maxLength": "Field(max_length=)",
    "minimum": "Field(ge=)",
    "maximum": "Field(le=)",
    "minItems": "Field(min_length=)",
    "maxItems": "Field(max_length=)",
    "pattern": "Field(pattern=) after ecma_to_rust; on an integer, decimal_pattern()",
    "uniqueItems": "UniqueItems",
    "default": "the field's default (not sent unless set)",
    "nullable": (
        "optional fields only: None is a valid value, and it means 'leave it out' (the client never sends null); "
        "a required nullable field stops generation (_check_nullable)"
    ),
}
#: Keywords nothing enforces, on purpose, and why.
IGNORED: dict[str, str] = {
    "description": "documentation; rules it states are bound in DESCRIBED_RULES or the pre-send rules",
    "example": "documentation",
    "title": "documentation",
    "externalDocs": "documentation",
}
KEYWORDS = HANDLED | IGNORED


class ConstraintError(Exception):
    """A schema uses a keyword or regex feature the generator cannot enforce faithfully."""


@dataclass(frozen=True)
class DescribedRule:
    """A check bound to a field because its description states the rule."""

    schema: str
    field: str
    says: str  # the words the description must contain for the binding to hold
    annotation: str  # a name in svarut.runtime.models
    # Any field whose description contains this is expected to be bound too.
    marker: str


DESCRIBED_RULES = (
    DescribedRule(
        schema="Lenke",
        field="url",
        says="gyldig i henhold til RFC 2396 og RFC 2732",
        annotation="AbsoluteUri",
        marker="RFC 2396",
    ),
)


def apply(schemas: Mapping[str, Any], request_models: Iterable[str]) -> tuple[dict[str, Schema], FieldExtras]:
    """A copy of ``schemas`` with the keyword rewrites, and the annotations
    each field of a sent model needs."""
    result: dict[str, Schema] = copy.deepcopy(dict(schemas))
    extras: FieldExtras = {}
    _check_nullable(result)
    for name in sorted(set(request_models)):
        for prop, schema in result[name].get("properties", {}).items():
            where = f"{name}.{prop}"
            extras_here = _rewrite(schema, where, top=True)
            if extras_here:
                extras[(name, prop)] = extras_here
    _bind_described(result, set(request_models), extras)
    return result, extras


def _check_nullable(schemas: Mapping[str, Schema]) -> None:
    """``nullable`` means what "None = leave it out" can express only on an
    optional field: a required field that may be null would need null on the
    wire, which the models never send, so such a spec stops generation."""
    for name, schema in sorted(schemas.items()):
        required = set(schema.get("required", []))
        for prop, prop_schema in schema.get("properties", {}).items():
            target = prop_schema
            ref = prop_schema.get("$ref")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in schemas:
                target = schemas[ref.rsplit("/", 1)[-1]]
            if prop in required and (prop_schema.get("nullable") or target.get("nullable")):
                raise ConstraintError(
                    f"{name}.{prop} is required and nullable: the generated models cannot send null; "
                    "teach generator/constraints.py what SvarUt does with it"
                )


def _rewrite(schema: Schema, where: str, *, top: bool) -> list[str]:
    found: list[str] = []
    kind = schema.get("type")
    if kind == "integer" and schema.get("format") in INT_BOUNDS:
        low, high = INT_BOUNDS[schema["format"]]
        schema["minimum"] = max(schema.get("minimum", low), low)
        schema["maximum"] = min(schema.get("maximum", high), high)
    if "pattern" in schema:
        translated = ecma_to_rust(schema["pattern"], where=where)
        if kind == "string":
            schema["pattern"] = translated
        elif kind == "integer":
            del schema["pattern"]  # datamodel-code-generator drops it anyway
            found.append(f"decimal_pattern({translated!r})")
        else:
            raise ConstraintError(f"{where}: pattern on a {kind!r} schema")
    if schema.get("uniqueItems") is True:
        found.append("UniqueItems")
    if "items" in schema and _rewrite(schema["items"], where + "[]", top=False):
        raise ConstraintError(f"{where}[]: uniqueItems/integer pattern on array items is not supported")
    if found and not top:
        raise ConstraintError(f"{where}: uniqueItems/integer pattern below a model's property is not supported")
    return found


def _walk(node: Any) -> Iterator[tuple[str, Schema]]:
    if isinstance(node, dict):
        yield from node.get("properties", {}).items()
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _bind_described(schemas: Mapping[str, Schema], request_models: set[str], extras: FieldExtras) -> None:
    for rule in DESCRIBED_RULES:
        field = schemas.get(rule.schema, {}).get("properties", {}).get(rule.field)
        description = " ".join(str((field or {}).get("description", "")).split())
        if rule.says.lower() not in description.lower():
            raise ConstraintError(
                f"{rule.schema}.{rule.field}: bound to {rule.annotation} because its description said "
                f"{rule.says!r}, but it now says {description!r}; update DESCRIBED_RULES in generator/constraints.py"
            )
        if rule.schema in request_models:
            extras.setdefault((rule.schema, rule.field), []).append(rule.annotation)
    bound = {(r.schema, r.field) for r in DESCRIBED_RULES}
    for name in sorted(request_models):
        for prop, schema in _walk(schemas[name]):
            text = str(schema.get("description", ""))
            for rule in DESCRIBED_RULES:
                if rule.marker in text and (name, prop) not in bound:
                    raise ConstraintError(
                        f"{name}.{prop}: the description mentions {rule.marker!r} but no rule is bound to it; "
                        "add it to DESCRIBED_RULES in generator/constraints.py"
                    )


# --- ECMA-262 patterns ------------------------------------------------------------

# ECMA-262 WhiteSpace and LineTerminator.
_ECMA_SPACE = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_", "s": _ECMA_SPACE}
_NOT_LINE_TERMINATOR = "[^\\n\\r\\u2028\\u2029]"
_KEPT_ESCAPES = set("tnrfv")
# Characters Rust's regex gives a meaning inside a class (nesting, set operations) and ECMA-262 does not.
_CLASS_LITERALS = set("[&~")


def ecma_to_rust(pattern: str, *, where: str = "pattern") -> str:
    """``pattern`` (ECMA-262, as JSON Schema defines it) for pydantic-core's
    Rust ``regex``, using only syntax Python's ``re`` reads the same way.

    Rust's ``^``/``$`` already mean start and end of input (ECMA without the
    ``m`` flag). Features whose meaning differs and that the specs do not use
    (backreferences, lookaround, ``\\b``, ``\\p``) raise :class:`ConstraintError`.
    """
    out: list[str] = []
    in_class = False
    i = 0

    def fail(what: str) -> ConstraintError:
        return ConstraintError(f"{where}: pattern {pattern!r}: {what} at offset {i} is not supported")

    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise fail("a trailing backslash")
            esc = pattern[i + 1]
            i += 2
            if esc.lower() in _CLASS_ESCAPES:
                body = _CLASS_ESCAPES[esc.lower()]
                if esc.islower():
                    out.append(body if in_class else f"[{body}]")
                elif in_class:
                    raise fail(f"\\{esc} inside a class")
                else:
                    out.append(f"[^{body}]")
            elif esc in _KEPT_ESCAPES:
                out.append("\\" + esc)
            elif esc == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", pattern[i : i + 4]):
                out.append("\\u" + pattern[i : i + 4].lower())
                i += 4
            elif esc == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", pattern[i : i + 2]):
                out.append("\\u00" + pattern[i : i + 2].lower())
                i += 2
            elif esc.isascii() and not esc.isalnum():
                out.append("\\" + esc)
            else:
                raise fail(f"the escape \\{esc}")
            continue
        if in_class:
            if char == "]":
                in_class = False
                out.append(char)
            elif char in _CLASS_LITERALS:
                out.append("\\" + char)
            else:
                out.append(char)
        elif char == "[":
            start = i
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                raise fail("an empty class")
            out.append(pattern[start:i])
            in_class = True
            continue
        elif char == ".":
            out.append(_NOT_LINE_TERMINATOR)
        elif char == "(" and pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
            raise fail("a group other than (?:")
        else:
            out.append(char)
        i += 1
    if in_class:
        raise fail("an unclosed class")
    return "".join(out)


# --- generated code -----------------------------------------------------------------

_RUNTIME_IMPORT = re.compile(r"^from svarut\.runtime\.models import (?P<names>.+)$", re.MULTILINE)


def annotate(code: str, extras: FieldExtras) -> str:
    """Append each field's annotations (``Annotated[..., Field(...), UniqueItems]``)
    and import them; fails if a field in ``extras`` is not in ``code``."""
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def pos(lineno: int, col: int) -> int:
        # ast columns count UTF-8 bytes.
        return offsets[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())

    edits: list[tuple[int, int, str]] = []
    missing = set(extras)
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for stmt in cls.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            key = (cls.name, _spec_name(stmt))
            if key not in extras:
                continue
            missing.discard(key)
            added = ", ".join(extras[key])
            ann = stmt.annotation
            assert ann.end_lineno is not None and ann.end_col_offset is not None
            start, end = pos(ann.lineno, ann.col_offset), pos(ann.end_lineno, ann.end_col_offset)
            if isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name) and ann.value.id == "Annotated":
                last = ann.slice.elts[-1] if isinstance(ann.slice, ast.Tuple) else ann.slice
                assert last.end_lineno is not None and last.end_col_offset is not None
                at = pos(last.end_lineno, last.end_col_offset)
                edits.append((at, at, f", {added}"))
            else:
                edits.append((start, end, f"Annotated[{code[start:end]}, {added}]"))
    if missing:
        raise ConstraintError(f"generated models lack the fields {sorted(missing)}")
    for start, end, text in sorted(edits, reverse=True):
        code = code[:start] + text + code[end:]
    names = {re.match(r"\w+", a)[0] for values in extras.values() for a in values}  # type: ignore[index]
    match = _RUNTIME_IMPORT.search(code)
    if names and match is None:
        raise ConstraintError("generated models do not import from svarut.runtime.models")
    if match is not None:
        imported = sorted(set(match["names"].split(", ")) | names)
        code = code[: match.start("names")] + ", ".join(imported) + code[match.end("names") :]
    return code


def _spec_name(stmt: ast.AnnAssign) -> str:
    assert isinstance(stmt.target, ast.Name)
    for node in ast.walk(stmt.annotation):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Field":
            for kw in node.keywords:
                if kw.arg == "serialization_alias" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
    return stmt.target.id
