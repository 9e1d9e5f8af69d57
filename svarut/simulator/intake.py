"""The fake SvarUt behind the simulator's HTTP handler: its intake of
forsendelser and everything it keeps (records, duplicates, the request log,
the status clock). It knows nothing of HTTP: it reads what the handler passes
it (headers, a body reader, a kontoId) and answers with a value or raises
:class:`Reply`, an error answer the handler sends as SvarUt's ``ErrorMessage``.

A send is checked as SvarUt checks it, in this order: the three auth headers
(401 without a live token or integration headers, 403 for wrong integration
credentials or a konto the integration does not have), the multipart body
against the limits of SvarUt's parser, Tomcat (more than ``max_part_count``
parts, default 50, is answered 500; a part's header section over
``max_part_header_size`` bytes, default 512, 413: ``_limit_reply`` says why),
the parts themselves (the metadata part first, ``forsendelse``, read by the
generated model; then the document parts (their names ignored, as the spec
says SvarUt ignores them), whose count, order and filenames, trimmed as Tomcat
trims them, must match the metadata's ``dokumenter``, or exactly one where the
metadata describes none, as for NHN), decryption of a ``kryptert``
forsendelse's documents, and SvarUt's duplicate rule. Documents stream to
files under ``storage_dir`` with their SHA-256. Error codes other than
``GJENTAGENDE_FORSENDELSE`` (SvarUt's own) are the simulator's.

:class:`FakeSvarUt` reads its settings (credentials, kontoer, limits, keys,
scenarios) from a :class:`Settings`, the :class:`~svarut.simulator.facade.Simulator`,
at each request, so a setting changed on a running simulator counts at once.
Imports go one way: the facade and the handler import this module; it
imports neither.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import shutil
import threading
import time
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from svarut import statuses, utfall
from svarut.generated import ENDPOINTS, SEND_OPERATIONS, models
from svarut.runtime.client import Endpoint
from svarut.runtime.errors import DUPLICATE_ERROR_CODE
from svarut.runtime.operations import SendOperation
from svarut.simulator import cms
from svarut.simulator.keys import SimulatorKeys
from svarut.simulator.maskinporten import MaskinportenStandIn
from svarut.simulator.records import ReceivedDocument, ReceivedForsendelse, forced_path, journey, path_for_kind
from svarut.simulator.scenarios import Scenarios
from svarut.simulator.wire import BodyReader, MultipartError, MultipartReader, PartLimitError, boundary_of

__all__ = [
    "API_PREFIX",
    "CHANNELS",
    "DUPLICATE_MESSAGE",
    "Channel",
    "FakeSvarUt",
    "Reply",
    "RequestRecord",
    "Settings",
]

log = logging.getLogger("svarut.simulator")

API_PREFIX = "/api"
MAX_JSON_BYTES = 1024 * 1024
DUPLICATE_MESSAGE = "Forsendelse med samme mottaker, tittel, avsender og filer er forsøkt sendt tidligere"

# The simulator's own error codes (SvarUt's live codes are not documented,
# except the duplicate one, which is real).
CODE_UNAUTHENTICATED = "UAUTENTISERT"
CODE_FORBIDDEN = "INGEN_TILGANG"
CODE_NOT_FOUND = "IKKE_FUNNET"
CODE_INVALID = "UGYLDIG_FORESPORSEL"
CODE_DOCUMENTS = "DOKUMENTER_STEMMER_IKKE"
CODE_DECRYPTION = "DEKRYPTERING_FEILET"
CODE_SIMULATED = "SIMULERT_FEIL"
CODE_INTERNAL = "INTERN_FEIL"
CODE_TOO_MANY_PARTS = "FOR_MANGE_DELER"
CODE_PART_HEADER_TOO_BIG = "FOR_STORT_DELHODE"


@dataclass(frozen=True)
class Channel:
    """One send endpoint, as the generated :class:`SendOperation` describes it."""

    operation: SendOperation
    pattern: re.Pattern[str]

    @property
    def name(self) -> str:
        """The send kind: ``person``, ``nhn``, ..."""
        return self.operation.kind

    @property
    def endpoint(self) -> Endpoint[Any]:
        return self.operation.endpoint

    @property
    def model(self) -> type[BaseModel]:
        return self.operation.model

    @property
    def documents_field(self) -> str | None:
        """The model's list of document metadata (``dokumenter``); None for NHN's single document."""
        return self.operation.described_by


def _pattern(path: str) -> re.Pattern[str]:
    # "/v3/kontoer/{kontoId}/..." -> "^/api/v3/kontoer/(?P<kontoId>[^/]+)/...$"
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(API_PREFIX + path)) + "$")


#: The send endpoints: one per generated send operation.
CHANNELS: tuple[Channel, ...] = tuple(Channel(op, _pattern(op.endpoint.path)) for op in SEND_OPERATIONS.values())
#: The status search, if the specs have one.
STATUS_ENDPOINT: Endpoint[Any] | None = ENDPOINTS.get(statuses.STATUS_OPERATION)
STATUS_PATTERN: re.Pattern[str] | None = _pattern(STATUS_ENDPOINT.path) if STATUS_ENDPOINT else None
#: The eksternRef lookups (ids, and with metadata), if the specs have them.
LOOKUP_ENDPOINTS: tuple[Endpoint[Any], ...] = tuple(
    e for op in (utfall.LOOKUP_OPERATION, utfall.METADATA_OPERATION) if (e := ENDPOINTS.get(op)) is not None
)
LOOKUP_PATTERNS: tuple[tuple[re.Pattern[str], Endpoint[Any]], ...] = tuple(
    (_pattern(e.path), e) for e in LOOKUP_ENDPOINTS
)


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (``status`` None: the connection was reset)."""

    method: str
    path: str
    status: int | None
    operation: str | None
    at: datetime
    error: str | None = None
    """For an error answer: its errorCode and message."""


class Reply(Exception):
    """An error answer: status, ErrorMessage fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


@dataclass
class _StoredFile:
    filnavn: str
    mime_type: str | None
    size: int
    sha256: str
    path: Path


class Settings(Protocol):
    """What :class:`FakeSvarUt` reads of its simulator, at each request."""

    @property
    def integrasjon_id(self) -> str: ...
    @property
    def integrasjon_passord(self) -> str: ...
    @property
    def konto_ids(self) -> tuple[uuid.UUID, ...]: ...
    @property
    def not_digital(self) -> set[str]: ...
    @property
    def reject_duplicates(self) -> bool: ...
    @property
    def max_part_count(self) -> int | None: ...
    @property
    def max_part_header_size(self) -> int | None: ...
    @property
    def step_seconds(self) -> float: ...
    @property
    def keys(self) -> SimulatorKeys: ...
    @property
    def scenarios(self) -> Scenarios: ...
    @property
    def maskinporten(self) -> MaskinportenStandIn: ...
    @property
    def storage_dir(self) -> Path: ...
    @property
    def base_url(self) -> str: ...
    @property
    def token_path(self) -> str: ...


class FakeSvarUt:
    """SvarUt's side of the simulator: what it accepted, what it was asked,
    and the logic of its endpoints (the handler calls :meth:`authorize`,
    :meth:`receive`, :meth:`status_search` and :meth:`lookup`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._records: dict[uuid.UUID, ReceivedForsendelse] = {}
        self._duplicates: set[tuple[Any, ...]] = set()
        self._requests: list[RequestRecord] = []
        self._offset = 0.0

    # --- what it saw --------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedForsendelse]:
        """Every forsendelse accepted so far, oldest first."""
        with self._lock:
            return list(self._records.values())

    def get(self, forsendelse_id: uuid.UUID | str) -> ReceivedForsendelse:
        """The forsendelse with that id; KeyError if the simulator has none."""
        key = forsendelse_id if isinstance(forsendelse_id, uuid.UUID) else uuid.UUID(str(forsendelse_id))
        with self._lock:
            return self._records[key]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered (or reset) so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def advance(self, seconds: float) -> None:
        """Move the status clock forward, as if ``seconds`` had passed."""
        with self._lock:
            self._offset += seconds

    def clear(self) -> None:
        """Forget every forsendelse, request and scenario rule (documents on disk stay)."""
        with self._lock:
            self._records.clear()
            self._duplicates.clear()
            self._requests.clear()
        self.settings.scenarios.clear()

    def clock(self) -> float:
        return time.monotonic() + self._offset

    def log_request(
        self, method: str, path: str, status: int | None, operation: str | None, error: str | None = None
    ) -> None:
        with self._lock:
            self._requests.append(RequestRecord(method, path, status, operation, datetime.now(UTC), error))

    # --- the endpoints' logic ----------------------------------------------------------

    def authorize(self, headers: Message[str, str], konto: str) -> uuid.UUID:
        authorization = headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="svarut"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise Reply(
                401,
                CODE_UNAUTHENTICATED,
                "missing bearer token (Authorization: Bearer <Maskinporten token>)",
                headers=challenge,
            )
        issued = self.settings.maskinporten.check(token.strip())
        if issued is None:
            raise Reply(
                401,
                CODE_UNAUTHENTICATED,
                "the bearer token is not one the Maskinporten stand-in issued, or has expired",
                headers={"WWW-Authenticate": 'Bearer realm="svarut", error="invalid_token"'},
            )
        integrasjon_id = headers.get("IntegrasjonId")
        passord = headers.get("IntegrasjonPassord")
        if not integrasjon_id or not passord:
            raise Reply(
                401, CODE_UNAUTHENTICATED, "missing IntegrasjonId or IntegrasjonPassord header", headers=challenge
            )
        if integrasjon_id != self.settings.integrasjon_id or not secrets.compare_digest(
            passord.encode(), self.settings.integrasjon_passord.encode()
        ):
            raise Reply(403, CODE_FORBIDDEN, "wrong IntegrasjonId or IntegrasjonPassord")
        try:
            konto_id = uuid.UUID(konto)
        except ValueError:
            raise Reply(400, CODE_INVALID, f"kontoId is not a UUID: {konto[:60]!r}") from None
        if konto_id not in self.settings.konto_ids:
            raise Reply(403, CODE_FORBIDDEN, f"the integration has no access to konto {konto_id}")
        return konto_id

    def status_search(self, konto_id: uuid.UUID, data: bytes) -> dict[str, Any]:
        assert STATUS_ENDPOINT is not None and STATUS_ENDPOINT.unwrap is not None  # routed only then
        try:
            wanted = models.Forsendelser.model_validate_json(data, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise Reply(
                400, CODE_INVALID, "the body is not a valid Forsendelser", details={"problemer": _problems(exc)}
            ) from None
        with self._lock:
            found = [self._records.get(i) for i in wanted.id]
        statuser = [
            r.forsendelse_status().model_dump(mode="json", by_alias=True)
            for r in found
            if r is not None and r.konto_id == konto_id
        ]
        answer = STATUS_ENDPOINT.response_model.model_validate({STATUS_ENDPOINT.unwrap: statuser})
        result: dict[str, Any] = answer.model_dump(mode="json", by_alias=True)
        return result

    def lookup(self, endpoint: Endpoint[Any], konto_id: uuid.UUID, referanse: str) -> dict[str, Any]:
        """The answer of an eksternRef lookup: the konto's forsendelser whose
        eksternReferanse is exactly ``referanse``, oldest first."""
        assert endpoint.unwrap is not None  # routed only then (the binding checks the answer's shape)
        with self._lock:
            found = sorted(
                (r for r in self._records.values() if r.konto_id == konto_id and r.ekstern_referanse == referanse),
                key=lambda r: r.received_at,
            )
        field = endpoint.response_model.model_fields[endpoint.unwrap]
        item = next(iter(typing.get_args(field.annotation)), str)
        if isinstance(item, type) and issubclass(item, BaseModel):
            items: list[Any] = [_lookup_item(item, r) for r in found]
        else:
            items = [str(r.id) for r in found]
        answer = endpoint.response_model.model_validate({field.alias or endpoint.unwrap: items})
        result: dict[str, Any] = answer.model_dump(mode="json", by_alias=True, exclude_none=True)
        return result

    def receive(self, channel: Channel, konto_id: uuid.UUID, body: BodyReader, content_type: str | None) -> uuid.UUID:
        boundary = boundary_of(content_type)
        if boundary is None:
            raise Reply(415, CODE_INVALID, f"expected multipart/form-data with a boundary, got {content_type!r}")
        incoming = self.settings.storage_dir / f"incoming-{uuid.uuid4()}"
        incoming.mkdir()
        try:
            reader = MultipartReader(
                body,
                boundary,
                max_part_count=self.settings.max_part_count,
                max_part_header_size=self.settings.max_part_header_size,
            )
            metadata, model, files = self._read_send(channel, reader, incoming)
            self._check_documents(channel, metadata, files)
            documents = self._decrypt(metadata, files)
            return self._accept(channel, konto_id, metadata, model, documents, incoming)
        finally:
            # Accepted documents were moved out; whatever is left was rejected.
            shutil.rmtree(incoming, ignore_errors=True)

    def _read_send(
        self, channel: Channel, reader: MultipartReader, incoming: Path
    ) -> tuple[dict[str, Any], BaseModel, list[_StoredFile]]:
        metadata: dict[str, Any] | None = None
        model: BaseModel | None = None
        files: list[_StoredFile] = []
        rejection: Reply | None = None
        try:
            while (part := reader.next_part()) is not None:
                if rejection is not None:
                    continue  # read on to the end, so the client hears the answer
                if metadata is None:
                    name = channel.operation.metadata_part
                    if part.name != name or part.filename is not None:
                        rejection = Reply(400, CODE_INVALID, f"the first part must be the {name} JSON, named {name!r}")
                        continue
                    raw = reader.read_content(limit=MAX_JSON_BYTES)
                    try:
                        # By the spec's names only, as SvarUt reads JSON: digital_id is not digitalId.
                        model = channel.model.model_validate_json(raw, by_alias=True, by_name=False)
                    except ValidationError as exc:
                        rejection = Reply(
                            400,
                            CODE_INVALID,
                            f"forsendelse is not a valid {channel.model.__name__}",
                            details={"problemer": _problems(exc)},
                        )
                        continue
                    metadata = json.loads(raw)
                    continue
                if part.filename is None:
                    rejection = Reply(400, CODE_DOCUMENTS, f"document part {len(files) + 1} has no filename")
                    continue
                files.append(self._store(reader, part.filename, part.content_type, incoming / f"{len(files):03d}.bin"))
        except PartLimitError as exc:
            # Tomcat parses every part before the service sees any: its limits come first.
            raise _limit_reply(exc) from None
        except MultipartError as exc:
            raise Reply(400, CODE_INVALID, f"the multipart body is malformed: {exc}") from None
        if rejection is not None:
            raise rejection
        if metadata is None or model is None:
            raise Reply(400, CODE_INVALID, "the body has no forsendelse part")
        return metadata, model, files

    @staticmethod
    def _store(reader: MultipartReader, filnavn: str, mime_type: str | None, path: Path) -> _StoredFile:
        digest = hashlib.sha256()
        size = 0
        with path.open("xb") as out:
            for chunk in reader.iter_content():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return _StoredFile(filnavn, mime_type, size, digest.hexdigest(), path)

    @staticmethod
    def _check_documents(channel: Channel, metadata: Mapping[str, Any], files: list[_StoredFile]) -> None:
        got = [f.filnavn for f in files]
        if channel.documents_field is None:
            if len(files) != 1:
                raise Reply(
                    400,
                    CODE_DOCUMENTS,
                    f"{channel.name} takes exactly one document part, got {len(files)}",
                    details={"filer": got},
                )
            return
        described = metadata.get(channel.documents_field) or []
        expected = [str(d.get("filnavn")) for d in described if isinstance(d, dict)]
        details = {"dokumenter": expected, "filer": got}
        if not expected:
            raise Reply(
                400,
                CODE_DOCUMENTS,
                f"the forsendelse lists no {channel.documents_field}; at least one document is required",
                details=details,
            )
        if len(got) != len(expected):
            raise Reply(
                400,
                CODE_DOCUMENTS,
                f"{channel.documents_field} lists {len(expected)} document(s), but {len(got)} file part(s) were sent",
                details=details,
            )
        if got != expected:
            order = (
                " (the same names in another order: the parts must follow dokumenter)"
                if sorted(got) == sorted(expected)
                else ""
            )
            first = next(i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
            raise Reply(
                400,
                CODE_DOCUMENTS,
                f"file part {first + 1} is {got[first]!r}, but {channel.documents_field}[{first}].filnavn "
                f"is {expected[first]!r}{order}",
                details=details,
            )

    def _decrypt(self, metadata: Mapping[str, Any], files: list[_StoredFile]) -> list[ReceivedDocument]:
        documents = []
        for stored in files:
            plain_size: int | None = None
            plain_sha: str | None = None
            if metadata.get("kryptert"):
                try:
                    result = cms.decrypt_file(
                        stored.path,
                        private_key=self.settings.keys.svarut.private_key,
                        certificate=self.settings.keys.svarut.certificate,
                    )
                except cms.DecryptError as exc:
                    raise Reply(
                        400,
                        CODE_DECRYPTION,
                        f"document {stored.filnavn!r} cannot be decrypted: {exc}",
                        details={"filnavn": stored.filnavn},
                    ) from None
                plain_size, plain_sha = result.size, result.sha256
            documents.append(
                ReceivedDocument(
                    stored.filnavn, stored.mime_type, stored.size, stored.sha256, stored.path, plain_size, plain_sha
                )
            )
        return documents

    def _accept(
        self,
        channel: Channel,
        konto_id: uuid.UUID,
        metadata: dict[str, Any],
        model: BaseModel,
        documents: list[ReceivedDocument],
        incoming: Path,
    ) -> uuid.UUID:
        key = (
            konto_id,
            json.dumps(metadata.get("mottaker") or metadata.get("pasient"), sort_keys=True),
            metadata.get("tittel"),
            tuple(d.content_sha256 for d in documents),
        )
        mottakere = _mottakere(metadata)
        forsendelse_id = uuid.uuid4()
        target = self.settings.storage_dir / str(forsendelse_id)
        with self._lock:
            if self.settings.reject_duplicates and key in self._duplicates:
                raise Reply(400, DUPLICATE_ERROR_CODE, DUPLICATE_MESSAGE)
            self._duplicates.add(key)
        forced = self.settings.scenarios.take_outcome(mottakere)
        status_path = forced_path(forced) if forced is not None else self._status_path(channel, metadata)
        incoming.rename(target)
        documents = [
            ReceivedDocument(
                d.filnavn, d.mime_type, d.size, d.sha256, target / d.path.name, d.plaintext_size, d.plaintext_sha256
            )
            for d in documents
        ]
        record = ReceivedForsendelse(
            id=forsendelse_id,
            konto_id=konto_id,
            channel=channel.name,
            operation_id=channel.endpoint.operation_id,
            metadata=metadata,
            model=model,
            documents=tuple(documents),
            received_at=datetime.now(UTC),
            status_path=status_path,
            step_seconds=self.settings.step_seconds,
            started=self.clock(),
            clock=self.clock,
        )
        with self._lock:
            self._records[forsendelse_id] = record
        log.info(
            "received %s forsendelse %s (%d document(s)) on konto %s",
            channel.name,
            forsendelse_id,
            len(documents),
            konto_id,
        )
        return forsendelse_id

    def _status_path(self, channel: Channel, metadata: Mapping[str, Any]) -> tuple[str, ...]:
        mottaker = metadata.get("mottaker")
        digital_id = str(mottaker.get("digitalId")) if isinstance(mottaker, dict) else None
        if channel.name == "person" and digital_id in self.settings.not_digital:
            # No digital mailbox: to print, unless the avsender wants digital delivery only.
            if metadata.get("kunDigitalLevering"):
                return forced_path("IKKE_LEVERT")
            return journey("person_print") or path_for_kind(channel.name)
        return path_for_kind(channel.name)


def _lookup_item(model: type[BaseModel], record: ReceivedForsendelse) -> dict[str, Any]:
    """One forsendelse as the lookup with metadata describes it, from what the
    spec's item model has: a date-time is when it arrived, a field the
    forsendelse part carried is that value, and the one other required string
    is its id."""
    item: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        kinds = set(typing.get_args(info.annotation)) | {info.annotation}
        if datetime in kinds or any(getattr(k, "__name__", "") == "AwareDatetime" for k in kinds):
            item[key] = record.received_at.isoformat()
        elif key in record.metadata:
            item[key] = record.metadata[key]
        elif info.is_required():
            item[key] = str(record.id)
    return item


def _limit_reply(exc: PartLimitError) -> Reply:
    """What a Spring Boot service on Tomcat answers a request Tomcat's parser refuses.

    Tomcat's Request.parseParts wraps the size exception in an IllegalStateException
    whose message is the exception's own text, class name first, and Spring's
    StandardMultipartHttpServletRequest.handleParseFailure turns a message containing
    "exceed" and "size" into MaxUploadSizeExceededException, which Spring MVC answers
    413: the header limit (SizeLimitExceededException, "Header section has more than
    512 bytes"). The part limit (FileCountLimitExceededException, message "attachment")
    has no "size" in it, becomes a plain MultipartException that nothing maps, and goes
    out as 500 (spring-framework#36317). SvarUt's own error handler is not known; the
    body is an ErrorMessage, as for every other error here.
    """
    details = {"grense": exc.permitted, "faktisk": exc.actual}
    if exc.limit == "part_count":
        message = (
            f"{exc}: SvarUt's multipart parser (Tomcat, maxPartCount) refuses a request of more than "
            f"{exc.permitted} parts"
        )
        return Reply(500, CODE_TOO_MANY_PARTS, message, details=details)
    message = f"{exc}: SvarUt's multipart parser (Tomcat, maxPartHeaderSize) refuses it"
    return Reply(413, CODE_PART_HEADER_TOO_BIG, message, details=details)


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [{"felt": ".".join(str(p) for p in e["loc"]) or "(body)", "feil": e["msg"]} for e in exc.errors()]


def _mottakere(metadata: Mapping[str, Any]) -> set[str]:
    """Everything a scenario may name a forsendelse's mottaker by."""
    found: set[str] = set()
    mottaker = metadata.get("mottaker")
    if isinstance(mottaker, dict):
        found |= {str(mottaker[k]) for k in ("digitalId", "navn") if mottaker.get(k)}
    pasient = metadata.get("pasient")
    if isinstance(pasient, dict) and pasient.get("fodselsnummer"):
        found.add(str(pasient["fodselsnummer"]))
    if metadata.get("mottakerHerId"):
        found.add(str(metadata["mottakerHerId"]))
    return found
