"""The request value types: what an operation is, what a caller gives for it,
and what the client builds from that before the first byte goes out.

Pure data, shared by the base clients (:mod:`svarut.runtime.client`), the
pre-send rules (:mod:`svarut.runtime.validation`) and the send operations
(:mod:`svarut.runtime.operations`). This module imports nothing of the
runtime at run time, so each of those can read these types without loading
the others.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, Union

if TYPE_CHECKING:
    # httpx2 is imported when the first request is made, not with the client.
    import httpx2
    from pydantic import BaseModel

    from svarut.runtime import multipart
    from svarut.runtime.files import File, FileSource

__all__ = [
    "NOT_GIVEN",
    "DefaultTimeout",
    "Endpoint",
    "JsonBody",
    "MultipartInput",
    "NotGiven",
    "PreSendCheck",
    "Prepared",
    "PreparedRequest",
    "PreparedSend",
    "QueryParameter",
    "TimeoutTypes",
    "renamed_keyword",
]

T = TypeVar("T")


class NotGiven:
    """Marks an argument the caller left out (``None`` means "no timeout")."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


class DefaultTimeout(NotGiven):
    """A client constructor's default ``timeout``/``lookup_timeout``: the
    ``httpx2.Timeout`` of that name (:data:`DEFAULT_TIMEOUT
    <svarut.DEFAULT_TIMEOUT>`, :data:`DEFAULT_LOOKUP_TIMEOUT
    <svarut.DEFAULT_LOOKUP_TIMEOUT>`), which is made when the client first
    needs it: so that making a client does not import httpx2."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def renamed_keyword(given: T | NotGiven, old: T | NotGiven, *, call: str, name: str, old_name: str, why: str) -> T:
    """The keyword argument ``name``, or ``old_name``, the deprecated name it
    replaced (kept for one release, with a DeprecationWarning that points at
    the caller of ``call``; ``why`` says where the new name comes from)."""
    if not isinstance(old, NotGiven):
        if not isinstance(given, NotGiven):
            raise TypeError(f"{call}: give {name}= only ({old_name}= is its old name)")
        warnings.warn(f"{call}({old_name}=...) is deprecated: pass {name}=..., {why}", DeprecationWarning, stacklevel=4)
        return old
    if isinstance(given, NotGiven):
        raise TypeError(f"{call}() missing the keyword argument {name}=")
    return given


# A string for httpx2.Timeout: httpx2 is imported at the first request.
TimeoutTypes: TypeAlias = Union[float, "httpx2.Timeout", None]


@dataclass(frozen=True)
class QueryParameter:
    """A query parameter of an operation, with the bounds its schema states."""

    name: str
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None

    def problem(self, value: object) -> str | None:
        """Why ``value`` cannot be sent as this parameter, or None."""
        if value is None:
            return "is required" if self.required else None
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__}"
        if self.min_length is not None and len(value) < self.min_length:
            return f"must have at least {self.min_length} character(s)"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must have at most {self.max_length} characters, got {len(value)}"
        return None


@dataclass(frozen=True)
class Endpoint(Generic[T]):
    """One operation of the API, as the generator read it from the spec."""

    operation_id: str
    method: str
    path: str
    response_model: type[BaseModel]
    unwrap: str | None = None
    error_model: type[BaseModel] | None = None
    query: tuple[QueryParameter, ...] = ()

    def parse(self, body: bytes) -> T:
        model: Any = self.response_model.model_validate_json(body)
        value: T = getattr(model, self.unwrap) if self.unwrap else model
        return value


@dataclass(frozen=True)
class JsonBody:
    """A JSON body: the model and the values the caller gave for it."""

    model: type[BaseModel]
    values: Mapping[str, Any]
    content_type: str = "application/json"


@dataclass(frozen=True)
class MultipartInput:
    """A send: the metadata model and its documents.

    ``described_by`` names the metadata's document list when the documents are
    keyed by filnavn (``files`` is then a mapping); otherwise ``files`` is the
    single document.
    """

    metadata_part: str
    metadata: BaseModel
    file_part: str
    described_by: str | None
    files: Mapping[str, File | FileSource] | File | FileSource
    kryptering: bool = False


@dataclass(frozen=True)
class PreparedSend:
    """What a pre-send check sees: the operation, the metadata exactly as it
    will be serialized, and the documents in wire order."""

    operation_id: str
    metadata: dict[str, Any]
    documents: tuple[multipart.Document, ...]
    # The client encrypts the documents after the checks (kryptering=True): they see plaintext.
    encrypting: bool = False


PreSendCheck = Callable[[PreparedSend], None]


@dataclass
class PreparedRequest:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None = None
    body: multipart.MultipartBody | None = None
    send: PreparedSend | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    # time.monotonic() by which a call given its own timeout must be over, retries included.
    deadline: float | None = None
    # When the last attempt began (wall clock): what settling an unknown outcome measures from.
    attempt_started: datetime | None = None


@dataclass(frozen=True)
class Prepared(Generic[T]):
    """A send checked and built, not yet sent: what
    :meth:`BaseClient.prepare_send <svarut.runtime.client.BaseClient.prepare_send>`
    returns and ``send_prepared`` sends. Send it once: sending is not
    idempotent, so ``send_prepared`` refuses it the second time
    (:class:`~svarut.errors.PreparedAlreadySentError`)."""

    endpoint: Endpoint[T]
    request: PreparedRequest
    # Taken by the first send_prepared; a lock, so two threads racing to send it cannot both win.
    _spent: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def claim(self) -> bool:
        """Hand this send to ``send_prepared``: True the first time, False ever after."""
        return self._spent.acquire(blocking=False)

    @property
    def sent(self) -> bool:
        """Whether ``send_prepared`` has been given this send."""
        return self._spent.locked()
