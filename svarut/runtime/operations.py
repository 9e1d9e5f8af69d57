"""What the generator says about each send operation, for the code that offers
sends without naming them: the CLI's ``send`` subcommands, the simulator's
routes and the batch runner's kinds.

``svarut.generated.SEND_OPERATIONS`` holds one :class:`SendOperation` per
multipart operation in the specs, keyed by its kind (the last segment of its
path). A new send endpoint upstream appears there after ``make generate``; a
removed one disappears. Nothing here imports the generated code.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from svarut.runtime.client import NOT_GIVEN, BaseClient, Endpoint, MultipartInput, NotGiven, Prepared, TimeoutTypes

__all__ = ["SendOperation"]


@dataclass(frozen=True)
class SendOperation:
    """One send endpoint: its client method, metadata model and multipart parts."""

    kind: str
    """The last segment of the endpoint's path: ``person``, ``nhn``, ..."""
    endpoint: Endpoint[Any]
    method_name: str
    """The client method that sends it: ``send_til_person``."""
    summary: str
    model: type[BaseModel]
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
        self, client: BaseClient, *, konto_id: UUID | str, forsendelse: BaseModel, files: Any, kryptering: bool = False
    ) -> None:
        """Run ``client``'s checks on this send without sending it (see
        :meth:`~svarut.runtime.client.BaseClient.check_send`): raises
        :class:`~svarut.ForsendelseValidationError` with every problem."""
        body = self._body(forsendelse, files, kryptering)
        client.check_send(self.endpoint, path_params=self.path_params(konto_id=konto_id), body=body)

    def prepare(
        self,
        client: BaseClient,
        *,
        konto_id: UUID | str,
        forsendelse: BaseModel,
        files: Any,
        kryptering: bool = False,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
    ) -> Prepared[Any]:
        """This send checked and built by ``client``, for its ``send_prepared``
        (see :meth:`~svarut.runtime.client.BaseClient.prepare_send`)."""
        return client.prepare_send(
            self.endpoint,
            path_params=self.path_params(konto_id=konto_id),
            body=self._body(forsendelse, files, kryptering),
            timeout=timeout,
        )

    def _body(self, forsendelse: BaseModel, files: Any, kryptering: bool) -> MultipartInput:
        return MultipartInput(
            metadata_part=self.metadata_part,
            metadata=forsendelse,
            file_part=self.file_part,
            described_by=self.described_by,
            files=files,
            kryptering=kryptering,
        )
