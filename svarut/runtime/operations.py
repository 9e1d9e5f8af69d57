"""What the generator says about each send operation, for the code that offers
sends without naming them: the CLI's ``send`` subcommands, the simulator's
routes and the batch runner's kinds.

``svarut.generated.SEND_OPERATIONS`` holds one :class:`SendOperation` per
multipart operation in the specs, keyed by its kind (the last segment of its
path). A new send endpoint upstream appears there after ``make generate``; a
removed one disappears. Nothing here imports the generated code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from svarut.runtime.client import Endpoint

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
