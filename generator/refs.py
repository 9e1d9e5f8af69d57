"""External ``$ref``s: references from a spec into another published document.

Since upstream 2e173af the v3 specs take their error schema from a shared
document by URL (``https://developers.fiks.ks.no/api/fiks-common.json#/components/schemas/ErrorMessage``).
Such a document is part of the lock like a spec (``specs/lock.json``
``references``), and is resolved only from the locked bytes, never from the
network unpinned.

- :func:`external_refs`: every external reference in a set of specs, with the
  spec file and the operation (or schema) it appears in, for error messages
  and for locking.
- :func:`bundle`: the specs with every external reference resolved, so the
  rest of the generator sees only local ``#/components/schemas/*`` references.
  A reference to a schema (``#/components/schemas/NAME``) imports that schema,
  and whatever it references in its own document, under its own name into the
  referencing spec; a reference to anything else is replaced by a copy of its
  target. A document that is not locked, a pointer that does not resolve, or an
  imported schema whose name the spec already uses for a different schema is a
  :class:`~generator.normalize.SpecError` naming the reference, the spec and
  the operation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import specs as spec_lock
from generator.normalize import HTTP_METHODS, REF_PREFIX, SpecError

Schema = dict[str, Any]


@dataclass(frozen=True)
class ExternalRef:
    """One ``$ref`` to another document, and where it was found."""

    ref: str
    spec: str
    where: str  # "operation hentStatuser" or "schema ErrorMessage"

    @property
    def document(self) -> str:
        """The referenced document's URL, without the fragment."""
        return self.ref.partition("#")[0]

    @property
    def pointer(self) -> str:
        return self.ref.partition("#")[2]

    def describe(self) -> str:
        return f"$ref {self.ref!r} in {self.spec} ({self.where})"


def is_external(ref: object) -> bool:
    return isinstance(ref, str) and not ref.startswith("#")


def _walk_refs(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "$ref" in item:
                yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _places(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The parts of a spec a reference can sit in, each with a name for people."""
    for path, item in sorted(spec.get("paths", {}).items()):
        if not isinstance(item, Mapping):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, Mapping):
                name = operation.get("operationId") or f"{method.upper()} {path}"
                yield f"operation {name}", operation
        if "parameters" in item:
            yield f"path {path}", item["parameters"]
    for kind, entries in sorted(spec.get("components", {}).items()):
        if isinstance(entries, Mapping):
            for name, entry in sorted(entries.items()):
                yield f"{kind.removesuffix('s')} {name}", entry


def external_refs(specs: Mapping[str, Any]) -> list[ExternalRef]:
    """Every external reference in ``specs`` (file name → parsed spec), sorted."""
    found = {
        ExternalRef(node["$ref"], file, where)
        for file, spec in specs.items()
        for where, part in _places(spec)
        for node in _walk_refs(part)
        if is_external(node["$ref"])
    }
    return sorted(found, key=lambda r: (r.spec, r.where, r.ref))


def documents_of(specs: Mapping[str, Any]) -> list[str]:
    """The URLs of the documents ``specs`` reference, sorted."""
    return sorted({r.document for r in external_refs(specs)})


def users(specs: Mapping[str, Any]) -> dict[str, list[str]]:
    """Where each referenced document is used: URL → sorted ``where`` names
    (``operation hentStatuser``), for the change report."""
    found: dict[str, set[str]] = {}
    for ref in external_refs(specs):
        found.setdefault(ref.document, set()).add(ref.where)
    return {url: sorted(names) for url, names in sorted(found.items())}


def _resolve_pointer(document: Any, pointer: str) -> Any:
    """The node at a JSON pointer (RFC 6901), or raise KeyError naming the missing step."""
    if pointer in ("", "/"):
        return document
    if not pointer.startswith("/"):
        raise KeyError(f"{pointer!r} is not a JSON pointer")
    node = document
    for raw in pointer[1:].split("/"):
        step = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            raise KeyError(f"no {step!r}")
    return node


class _Bundler:
    """Resolves the external references of one spec into it."""

    def __init__(self, file: str, spec: Schema, documents: Mapping[str, Any]) -> None:
        self.file = file
        self.spec = spec
        self.documents = documents
        self.schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
        self.imported: dict[str, str] = {}  # name -> the reference it came from

    def run(self) -> None:
        for where, part in list(_places(self.spec)):
            self._rewrite(part, None, ExternalRef("", self.file, where))

    def _rewrite(self, node: Any, base: str | None, origin: ExternalRef) -> None:
        """Make every reference under ``node`` local to the spec; ``base`` is the
        URL of the document ``node`` was copied from (None: the spec itself)."""
        for holder in list(_walk_refs(node)):
            ref = holder["$ref"]
            if not isinstance(ref, str):
                continue
            if is_external(ref):
                target = ref
            elif base is not None:
                target = base + ref  # a local reference inside an imported document
            else:
                continue  # the spec's own: left as it is
            here = ExternalRef(target, origin.spec, origin.where) if origin.ref == "" else origin
            replacement = self._resolve(target, here)
            if replacement is None:
                continue
            siblings = {k: v for k, v in holder.items() if k != "$ref"}
            holder.clear()
            holder.update(replacement)
            holder.update(siblings)

    def _resolve(self, target: str, origin: ExternalRef) -> dict[str, Any] | None:
        url, _, pointer = target.partition("#")
        context = origin.describe() if origin.ref == target else f"{target!r}, reached from {origin.describe()}"
        if url not in self.documents:
            raise SpecError(
                f"unresolved {context}: the document {url} is not locked "
                "(run `make update-specs` so the lock pins every document the specs reference)"
            )
        document = self.documents[url]
        try:
            found = _resolve_pointer(document, pointer)
        except KeyError as exc:
            raise SpecError(f"unresolved {context}: {url} has no #{pointer} ({exc.args[0]})") from None
        if pointer.startswith(REF_PREFIX[1:]) and pointer.count("/") == 3:
            name = pointer[len(REF_PREFIX) - 1 :]
            self._import(name, found, url, target, origin)
            return {"$ref": REF_PREFIX + name}
        copied = copy.deepcopy(found)
        if isinstance(copied, dict):
            self._rewrite(copied, url, origin)
            return copied
        raise SpecError(f"unresolved {context}: #{pointer} in {url} is not an object")

    def _import(self, name: str, schema: Any, url: str, target: str, origin: ExternalRef) -> None:
        if self.imported.get(name) == target:
            return
        if name in self.schemas:
            if name in self.imported:
                raise SpecError(
                    f"{origin.describe()}: the schema name {name!r} is imported from both "
                    f"{self.imported[name]!r} and {target!r}"
                )
            raise SpecError(
                f"{origin.describe()}: {self.file} defines its own schema {name!r}, "
                f"and the referenced {target!r} has the same name"
            )
        if not isinstance(schema, dict):
            raise SpecError(f"unresolved {origin.describe()}: #{target.partition('#')[2]} in {url} is not a schema")
        copied = copy.deepcopy(schema)
        self.imported[name] = target
        self.schemas[name] = copied
        self._rewrite(copied, url, origin)


def bundle(specs: Mapping[str, Any], documents: Mapping[str, Any]) -> dict[str, Any]:
    """``specs`` (file name → parsed spec) with every external reference
    resolved from ``documents`` (URL → parsed document); the input is not changed."""
    result: dict[str, Any] = {}
    for file, spec in sorted(specs.items()):
        copied = copy.deepcopy(spec)
        if any(True for _ in external_refs({file: spec})):
            _Bundler(file, copied, documents).run()
            if not copied["components"]["schemas"]:
                del copied["components"]["schemas"]
        result[file] = copied
    return result


def load_bundled(
    specs_dir: str | Path | None = None, *, lock_path: Path | None = None, allow_download: bool = True
) -> dict[str, Any]:
    """The locked specs, parsed, with their external references resolved from
    the locked documents (see :mod:`generator.specs` for where both come from)."""
    path = spec_lock.LOCK_PATH if lock_path is None else lock_path
    lock, references = spec_lock.read_lock(path), spec_lock.read_references(path)
    raw = spec_lock.load_locked(specs_dir, lock=lock, allow_download=allow_download)
    documents = spec_lock.load_references(specs_dir, references=references, allow_download=allow_download)
    return bundle(spec_lock.parse(raw), spec_lock.parse(documents))
