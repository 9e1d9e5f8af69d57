"""The intermediate representation the templates render.

`normalize.py` builds it from the specs; `render.py` turns it into code. Every
name, type and string a template needs is computed here ahead of time, so the
templates only loop and substitute.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Parameter:
    """A path or query parameter of an operation."""

    spec_name: str
    py_name: str
    location: str
    required: bool
    py_type: str
    format: str | None
    description: str
    # A query parameter's length bounds, checked before the request goes out.
    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class JsonField:
    """One property of a JSON request body, offered as a keyword argument."""

    spec_name: str
    py_name: str
    py_type: str
    required: bool


@dataclass(frozen=True)
class JsonBody:
    """A JSON request body described by a component schema."""

    model: str
    content_type: str
    fields: tuple[JsonField, ...]


@dataclass(frozen=True)
class FilePart:
    """The binary part(s) of a multipart request.

    `described_by` names the array property of the metadata model whose items
    give each file's name and content type; when it is None the caller names the
    single file itself.
    """

    spec_name: str
    py_name: str
    is_array: bool
    described_by: str | None
    description: str


@dataclass(frozen=True)
class MultipartBody:
    """A multipart/form-data body: one JSON metadata part, then files."""

    metadata_part: str
    metadata_py_name: str
    model: str
    files: FilePart
    # The items model of the array that describes each file (``PersonDokument``).
    document_model: str | None = None


@dataclass(frozen=True)
class Response:
    """The success response: its model and, when it wraps a single property,
    the property the method returns instead of the wrapper."""

    status: str
    model: str
    unwrap: str | None
    py_type: str


@dataclass(frozen=True)
class Operation:
    """``kind`` is the last segment of a multipart (send) operation's path,
    which the CLI, simulator and batch runner use as its name; None otherwise."""

    operation_id: str
    method_name: str
    const_name: str
    http_method: str
    path: str
    summary: str
    spec_file: str
    parameters: tuple[Parameter, ...]
    json_body: JsonBody | None
    multipart_body: MultipartBody | None
    response: Response
    error_model: str | None
    kind: str | None = None
    # Binding keys the pre-send rules read that this operation's spec is too old to have.
    predated: tuple[str, ...] = ()


@dataclass(frozen=True)
class Api:
    """Everything the generator knows about the specs, after normalization."""

    operations: tuple[Operation, ...]
    # The merged, normalized component schemas (what datamodel-code-generator reads).
    schemas: dict[str, object] = field(hash=False)
    request_models: tuple[str, ...]
    response_models: tuple[str, ...]
    servers: tuple[tuple[str, str], ...]
