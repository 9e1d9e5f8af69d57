"""What the generator says about each send operation, for the code that offers
sends without naming them: the CLI's ``send`` subcommands, the simulator's
routes and the batch runner's kinds.

``svarut.generated.SEND_OPERATIONS`` holds one :class:`SendOperation` per
multipart operation in the specs, keyed by its kind (the last segment of its
path). A new send endpoint upstream appears there after ``make generate``; a
removed one disappears. Nothing here imports the generated code.

The first :class:`SendOperation` made for an operationId (the generated
client's) registers itself, and works out once what its models can carry (:class:`ModelShape`: the
JSON paths by the spec's names, the values of each enum, the multipart parts).
The pre-send rules look an operation up there (:func:`shape_of`), so a rule
whose field the generated client does not have can refuse the send instead
of silently reading nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import string
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic
from uuid import UUID

from pydantic import BaseModel
from typing_extensions import TypeVar  # a default, so a bare ``SendOperation`` means any model

from svarut.runtime.request_types import (
    NOT_GIVEN,
    Endpoint,
    MultipartInput,
    NotGiven,
    Prepared,
    TimeoutTypes,
    renamed_keyword,
)

if typing.TYPE_CHECKING:
    from svarut.runtime.client import BaseClient
    from svarut.runtime.files import File, FileSource

__all__ = ["Documents", "ModelShape", "SendOperation", "SendOperations", "model_shape", "shape_of"]

#: The metadata model of a send operation (``models.PersonForsendelse``).
M = TypeVar("M", bound=BaseModel, default=BaseModel)
#: What a send's ``dokumenter`` takes: each document by its filnavn, or the one document (NHN).
Documents = typing.Union["Mapping[str, File | FileSource]", "File", "FileSource"]


def _documents(dokumenter: Documents | NotGiven, files: Documents | NotGiven, method: str) -> Documents:
    """``dokumenter``, or the deprecated ``files`` it replaced (one release)."""
    # mypy joins the members of Documents to object when it solves T: say which T it is.
    return typing.cast(
        Documents,
        renamed_keyword(
            dokumenter,
            files,
            call=f"SendOperation.{method}",
            name="dokumenter",
            old_name="files",
            why="as the send methods take it",
        ),
    )


# The list step of a JSON path, as the pre-send rules' bindings write it: ``dokumenter[].filnavn``.
LIST_STEP = "[]"


@dataclass(frozen=True)
class SendOperation(Generic[M]):
    """One send endpoint: its client method, metadata model and multipart
    parts; generic over the metadata model ``M``. A send answers with the new
    forsendelse's id, so :meth:`prepare` gives a ``Prepared[UUID]``."""

    kind: str
    """The last segment of the endpoint's path: ``person``, ``nhn``, ..."""
    endpoint: Endpoint[UUID]
    method_name: str
    """The client method that sends it: ``send_til_person``."""
    summary: str
    model: type[M]
    """The metadata model (``models.PersonForsendelse``); it reads the spec's JSON names."""
    metadata_part: str
    metadata_argument: str
    file_part: str
    file_argument: str
    described_by: str | None
    """The metadata's array that describes each document (``dokumenter``); None
    when the operation takes one document the metadata does not describe (NHN)."""
    document_model: type[BaseModel] | None
    """The items model of that array (``models.PersonDokument``), or None."""
    path_arguments: tuple[str, ...]
    predated: tuple[str, ...] = ()
    """What the pre-send rules read (``BINDINGS``, each marked ``since``) that
    this operation's spec is older than, as the generator found it: those
    rules have nothing to read here, and that is not a broken binding."""

    def __post_init__(self) -> None:
        # The pre-send rules check an operation's sends against the first one made for its
        # operationId: the generated client's, made when svarut.generated is imported (it
        # imports this module, so nothing can make one sooner). A copy made later, such as
        # dataclasses.replace in a tool or a test, or a second package rendered into the
        # same process, must not take its place for every send that follows.
        _REGISTERED.setdefault(self.endpoint.operation_id, self)

    @cached_property
    def shape(self) -> ModelShape:
        """What this operation's metadata model and parts can carry (worked out
        on first use, then kept: the pre-send rules ask on every send)."""
        shape = model_shape(self.model, parts=(self.metadata_part, self.file_part))
        return dataclasses.replace(shape, predated=frozenset(self.predated))

    def arguments(
        self, *, konto_id: UUID | str, forsendelse: BaseModel, files: Any, kryptering: bool = False
    ) -> dict[str, Any]:
        """Keyword arguments for ``getattr(client, self.method_name)(**...)``."""
        if len(self.path_arguments) != 1:
            raise TypeError(f"{self.method_name} takes the path parameters {self.path_arguments}, not one konto id")
        return {
            self.path_arguments[0]: konto_id,
            self.metadata_argument: forsendelse,
            self.file_argument: files,
            "kryptering": kryptering,
        }

    def path_params(self, *, konto_id: UUID | str) -> dict[str, Any]:
        """The endpoint's path parameters, by the spec's names (``kontoId``)."""
        names = [name for _, name, _, _ in string.Formatter().parse(self.endpoint.path) if name]
        if len(names) != 1:
            raise TypeError(f"{self.method_name} takes the path parameters {self.path_arguments}, not one konto id")
        return {names[0]: konto_id}

    def check(
        self,
        client: BaseClient,
        *,
        konto_id: UUID | str,
        forsendelse: M,
        dokumenter: Documents | NotGiven = NOT_GIVEN,
        kryptering: bool = False,
        files: Documents | NotGiven = NOT_GIVEN,
    ) -> None:
        """Run ``client``'s checks on this send without sending it (see
        :meth:`~svarut.runtime.client.BaseClient.check_send`).

        Args:
            client: The client whose pre-send checks apply; nothing is sent.
            konto_id: The konto it would be sent from.
            forsendelse: The metadata, an instance of :attr:`model`.
            dokumenter: The documents, as the send method takes them (each by
                its filnavn; NHN's one document itself).
            kryptering: Whether it would be sent kryptert.
            files: Deprecated (DeprecationWarning): the old name of ``dokumenter``.

        Raises:
            ForsendelseValidationError: With every problem found.
        """
        body = self._body(forsendelse, _documents(dokumenter, files, "check"), kryptering)
        client.check_send(self.endpoint, path_params=self.path_params(konto_id=konto_id), body=body)

    def prepare(
        self,
        client: BaseClient,
        *,
        konto_id: UUID | str,
        forsendelse: M,
        dokumenter: Documents | NotGiven = NOT_GIVEN,
        kryptering: bool = False,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        files: Documents | NotGiven = NOT_GIVEN,
    ) -> Prepared[UUID]:
        """This send checked and built by ``client``, for its ``send_prepared``
        (see :meth:`~svarut.runtime.client.BaseClient.prepare_send`).

        Args:
            client: The client that checks it and will send it.
            konto_id: The konto to send from.
            forsendelse: The metadata, an instance of :attr:`model`.
            dokumenter: The documents, as the send method takes them.
            kryptering: Whether to send it kryptert (encrypted for SvarUt).
            timeout: The HTTP timeout of the send (default: the client's).
            files: Deprecated (DeprecationWarning): the old name of ``dokumenter``.

        Returns:
            The prepared send, for ``client.send_prepared`` (which returns
            the forsendelse's id), once.

        Raises:
            ForsendelseValidationError: It breaks a pre-send rule.
        """
        return client.prepare_send(
            self.endpoint,
            path_params=self.path_params(konto_id=konto_id),
            body=self._body(forsendelse, _documents(dokumenter, files, "prepare"), kryptering),
            timeout=timeout,
        )

    def _body(self, forsendelse: BaseModel, files: Documents, kryptering: bool) -> MultipartInput:
        return MultipartInput(
            metadata_part=self.metadata_part,
            metadata=forsendelse,
            file_part=self.file_part,
            described_by=self.described_by,
            files=files,
            kryptering=kryptering,
        )


_REGISTERED: dict[str, SendOperation[Any]] = {}


class SendOperations(Mapping[str, SendOperation]):
    """The send operations by kind: a read-only mapping. The generated
    ``SEND_OPERATIONS`` subclasses it to type each known kind's entry with
    its own metadata model (``SEND_OPERATIONS["person"]`` is a
    ``SendOperation[models.PersonForsendelse]``)."""

    def __init__(self, operations: Mapping[str, SendOperation[Any]]) -> None:
        self._operations = dict(operations)

    def __getitem__(self, kind: str) -> SendOperation:
        return self._operations[kind]

    def _get(self, kind: str) -> SendOperation[Any]:
        """The entry for ``kind``, for a subclass's typed overloads to return."""
        return self._operations[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._operations)

    def __len__(self) -> int:
        return len(self._operations)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self._operations)})"


def shape_of(operation_id: str) -> ModelShape | None:
    """The :class:`ModelShape` of the registered send operation ``operation_id``,
    or None when no generated client registered one (a runtime client used
    with endpoints of its own)."""
    operation = _REGISTERED.get(operation_id)
    return None if operation is None else operation.shape


@dataclass(frozen=True, eq=False)  # compared by identity: one per operation, made once
class ModelShape:
    """What a send's metadata can hold, read off its pydantic models.

    ``paths`` has every field by its JSON path from the metadata's root, by
    the names it is sent under (``svarSendesTil.type``; an item of a list of
    models is ``dokumenter[].filnavn``). ``enums`` has, for a path whose type
    admits only enum members or ``Literal`` values, those values as sent; a
    path that also admits a plain string is not there. ``parts`` are the
    multipart part names (the metadata part and the file part). ``predated``
    is :attr:`SendOperation.predated`.
    """

    model: str
    paths: frozenset[str]
    enums: Mapping[str, frozenset[str]]
    parts: frozenset[str]
    predated: frozenset[str] = frozenset()


def model_shape(model: type[BaseModel], *, parts: tuple[str, ...] = ()) -> ModelShape:
    """The :class:`ModelShape` of ``model`` (and of every model it nests)."""
    paths: set[str] = set()
    enums: dict[str, frozenset[str]] = {}
    _walk(model, "", paths, enums, (model,))
    return ModelShape(model.__name__, frozenset(paths), enums, frozenset(parts))


def _walk(
    model: type[BaseModel], prefix: str, paths: set[str], enums: dict[str, frozenset[str]], stack: tuple[type, ...]
) -> None:
    for name, info in model.model_fields.items():
        alias = info.serialization_alias or info.alias
        path = prefix + (alias if isinstance(alias, str) else name)
        paths.add(path)
        kinds = list(_unwrap(info.annotation))
        values = [_values(kind) for kind in kinds]
        if kinds and all(v is not None for v in values):
            enums[path] = frozenset(value for found in values if found is not None for value in found)
        for kind in kinds:
            nested, step = kind, "."
            if typing.get_origin(kind) in (list, tuple, set, frozenset):
                nested, step = next(iter(typing.get_args(kind)), None), LIST_STEP + "."
            # A model met again below itself (a recursive schema) is not walked twice.
            if isinstance(nested, type) and issubclass(nested, BaseModel) and nested not in stack:
                _walk(nested, path + step, paths, enums, (*stack, nested))


def _unwrap(annotation: Any) -> Iterator[Any]:
    """The types an annotation admits, without None, ``Annotated`` and unions."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _unwrap(typing.get_args(annotation)[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _unwrap(arg)
    elif annotation is not type(None):
        yield annotation


def _values(kind: Any) -> frozenset[str] | None:
    """The values an enum or ``Literal`` type is sent as; None for any other type."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return frozenset(str(member.value) for member in kind)
    if typing.get_origin(kind) is typing.Literal:
        return frozenset(str(value) for value in typing.get_args(kind))
    return None
