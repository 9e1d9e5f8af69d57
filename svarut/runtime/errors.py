"""Every exception the client raises, in one tree::

    SvarUtError
    ├── ForsendelseValidationError   bad input, found before a byte was sent
    ├── ForsendelseNotFoundError     SvarUt has no status for that forsendelse
    ├── VentPaStatusTimeoutError     vent_pa_status gave up (also a TimeoutError)
    ├── SourceChangedError           a document changed size while it was sent
    ├── PreparedAlreadySentError     send_prepared given a prepared send a second time
    ├── ConfigurationError           settings missing or unusable (also a ValueError)
    ├── MaskinportenError            no Maskinporten token could be had
    │   ├── MaskinportenConnectionError  no (complete) response from the token endpoint
    │   ├── MaskinportenTokenError   refused or nonsense (.error, .error_description, .raw_body)
    │   └── KeystoreError            the key or certificate cannot be used (also a ValueError)
    ├── KrypteringError              a document could not be encrypted
    │   └── SertifikatError          SvarUt's certificate cannot be had or used
    └── APIError                     something went wrong talking to SvarUt
        ├── APIConnectionError       no (complete) HTTP response
        │   └── APITimeoutError
        ├── APIResponseValidationError  a 2xx body the client cannot read
        ├── SendOutcomeUnknownError  a send failed where SvarUt may have accepted it
        └── APIStatusError           SvarUt answered with a non-2xx status
            ├── BadRequestError            400
            ├── AuthenticationError        401
            ├── PermissionDeniedError      403
            ├── NotFoundError              404
            ├── ConflictError              409
            ├── PayloadTooLargeError       413
            ├── RateLimitError             429
            ├── InternalServerError        5xx
            └── DuplicateForsendelseError  SvarUt has this forsendelse already

An :class:`APIStatusError` carries the status, the parsed ``ErrorMessage``
when the body has the spec's shape (a field of another type is left out of
it), the fields SvarUt puts in it (``errorId``, ``errorCode``, ``message``,
``errorJson`` as ``error_json``, ``timestamp``) when it is JSON of any shape,
and a bounded excerpt of the raw body whatever it is (HTML from a proxy,
empty, truncated). The one warning, ``CertificateExpiryWarning`` (a ``UserWarning``),
says a certificate expires within 30 days. Messages never contain request
headers, tokens, passwords or keys: the client's own secrets (the bearer token
and ``IntegrasjonPassord`` of the request) are replaced by ``[redacted]`` in
everything an error holds, even when a gateway echoes the request headers in
its body, and ``error.request`` is a copy of the request with those headers
masked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

# Kept importable from here, where the client has always found them.
from svarut.runtime.redaction import REDACTED as REDACTED
from svarut.runtime.redaction import redact as redact

if TYPE_CHECKING:
    # The errors that hold a request or a response are made after one: httpx2
    # is imported by then, and need not be to import the errors.
    import httpx2

RAW_BODY_EXCERPT = 2000
# Request headers whose values are the client's secrets (names as httpx2 lowercases them).
SECRET_HEADERS = ("authorization", "proxy-authorization", "integrasjonpassord")


class SvarUtError(Exception):
    """Base class of every error raised by this client.

    >>> try:  # doctest: +SKIP
    ...     client.send_til_person(...)
    ... except svarut.errors.SendOutcomeUnknownError as exc:
    ...     ...  # settle before sending again: see avklar_utfall
    ... except svarut.errors.SvarUtError as exc:
    ...     log.error("not sent: %s", exc)
    """


@dataclass(frozen=True)
class Problem:
    """One reason a forsendelse was rejected before sending: the ``field``
    (its path in the forsendelse, such as ``mottaker.digitalId``), the
    ``rule`` it broke, and a ``message`` for a person."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.rule}]"


class ForsendelseValidationError(SvarUtError, ValueError):
    """The forsendelse or its documents break a rule; nothing was sent.

    ``problems`` lists every problem found, not just the first.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"forsendelse rejected before sending ({count} problem{'s' * (count != 1)}):\n{lines}")


class ForsendelseNotFoundError(SvarUtError, LookupError):
    """SvarUt returned no status for the forsendelse asked about."""


class VentPaStatusTimeoutError(SvarUtError, TimeoutError):
    """Not every forsendelse reached the wanted status in time.

    ``statuser`` holds the latest status of each forsendelse SvarUt reported;
    ``ventende`` the ids still waited for.
    """

    def __init__(self, *, statuser: dict[Any, Any], ventende: list[Any]) -> None:
        self.statuser = statuser
        self.ventende = ventende
        super().__init__(f"{len(ventende)} forsendelse(r) did not reach the wanted status in time: {ventende[:5]}")


class SourceChangedError(SvarUtError, OSError):
    """A document changed size between measuring it and sending it; the
    request was abandoned before its end, so SvarUt did not accept it."""


class PreparedAlreadySentError(SvarUtError, RuntimeError):
    """``send_prepared`` was given a prepared send it had been given before.

    A prepared send is one letter: sending it again could deliver it twice.
    Nothing was sent this time. To send again after a failure, settle the
    first attempt (``avklar_utfall``), then prepare the send anew.
    """


class ConfigurationError(SvarUtError, ValueError):
    """The client's settings are missing or unusable: ``missing`` names the
    settings not given (environment variable names), empty when a setting is
    there but wrong. Values are never part of the message."""

    def __init__(self, message: str, *, missing: list[str] | None = None) -> None:
        self.missing = list(missing or ())
        super().__init__(message)


class MaskinportenError(SvarUtError):
    """Getting an access token from Maskinporten failed."""


class MaskinportenConnectionError(MaskinportenError):
    """The token endpoint could not be reached or did not answer in time."""


class MaskinportenTokenError(MaskinportenError):
    """The token endpoint answered, but not with a token.

    ``error`` and ``error_description`` are Maskinporten's OAuth reason
    (``invalid_grant``, ``invalid_scope``, ...) when the body had them;
    ``raw_body`` is a bounded excerpt of an error body of any other shape.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error: str | None = None,
        error_description: str | None = None,
        raw_body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.error_description = error_description
        self.raw_body = raw_body


class KeystoreError(MaskinportenError, ValueError):
    """The keystore, key or certificate cannot be used to sign assertions."""


class CertificateExpiryWarning(UserWarning):
    """The certificate in the keystore expires soon; renew it before it does."""


class KrypteringError(SvarUtError):
    """A document could not be encrypted for SvarUt."""


class SertifikatError(KrypteringError):
    """SvarUt's certificate could not be loaded or fetched, or cannot be used
    (not RSA, too small a key, expired, not yet valid)."""


class APIError(SvarUtError):
    """A request to SvarUt failed.

    ``request`` is the request sent (secrets masked), when there was one.
    """

    def __init__(self, message: str, *, request: httpx2.Request | None = None) -> None:
        super().__init__(message)
        self.request = masked_request(request) if request is not None else None


class APIConnectionError(APIError):
    """The request did not get a complete HTTP response."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIResponseValidationError(APIError):
    """SvarUt answered 2xx with a body that does not have the spec's shape.

    ``status_code``, ``response`` (secrets redacted) and ``raw_body`` (a
    bounded excerpt) show what came back.
    """

    def __init__(self, *, response: httpx2.Response, body: bytes, cause: Exception) -> None:
        secrets = request_secrets(request_of(response))
        body = redact(body, secrets)
        self.response = redacted_response(response, body)
        self.status_code = response.status_code
        self.raw_body = excerpt(body)
        # pydantic quotes the bad input: the body, or a part of it.
        reason = redact(str(cause).encode(), secrets).decode("utf-8", errors="replace")
        super().__init__(
            f"{response.status_code} response does not match the spec: {reason}; body: {self.raw_body}",
            request=request_of(response),
        )


class APIStatusError(APIError):
    """SvarUt answered with a status outside 2xx.

    ``error_message`` is the body read by the spec's ``ErrorMessage`` model
    (None unless the body is a JSON object); ``error_id``, ``error_code``,
    ``message``, ``error_json`` and ``timestamp`` are read from the JSON body
    whatever its types, so they are there even where the model had to leave a
    field out; ``raw_body`` is a bounded excerpt of the body. ``status_code``
    and ``response`` (secrets redacted) are the response's.
    """

    status_code: int

    def __init__(
        self,
        *,
        response: httpx2.Response,
        body: bytes,
        error_message: Any | None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """``fields``: the body parsed as a JSON object, if the caller has it already;
        it and ``error_message`` must come from the body with the secrets
        redacted (:func:`redact`), as the client's do."""
        secrets = request_secrets(request_of(response))
        redacted = redact(body, secrets)
        if redacted != body:
            body, fields = redacted, None
        # Also when the body held no secret as sent: a string field holding JSON
        # (errorJson) has them escaped twice there, and once in the model.
        error_message = _redacted_model(error_message, secrets)
        self.response = redacted_response(response, body)
        self.status_code = response.status_code
        self.raw_body = excerpt(body)
        self.error_message = error_message
        fields = json_fields(body) if fields is None else fields
        self.error_id: str | None = _str(fields.get("errorId"))
        self.error_code: str | None = _str(fields.get("errorCode"))
        self.message: str | None = _str(fields.get("message")) or _str(fields.get("error"))
        self.error_json: dict[str, Any] | str | None = _error_json(fields.get("errorJson"), secrets)
        """``errorJson``, the error's details: a dict when SvarUt sent an object
        or a string holding one, else the string as sent (None when absent)."""
        self.timestamp: datetime | None = _timestamp(fields.get("timestamp"))
        """When the error happened, from epoch milliseconds or an ISO 8601 string
        (None when absent or neither)."""
        detail = _clip(self.message) or self.raw_body or "(empty body)"
        extra = ", ".join(
            f"{k}={_clip(v)}" for k, v in (("errorCode", self.error_code), ("errorId", self.error_id)) if v
        )
        text = f"{self.status_code} {response.reason_phrase or ''}".rstrip() + f": {detail}"
        super().__init__(text + (f" ({extra})" if extra else ""), request=request_of(response))


DUPLICATE_ERROR_CODE = "GJENTAGENDE_FORSENDELSE"
DUPLICATE_MESSAGE = "er forsøkt sendt tidligere"


class DuplicateForsendelseError(APIStatusError):
    """SvarUt rejected the send because an identical forsendelse (same
    mottaker, tittel, avsender and files) was sent before."""


class SendOutcomeUnknownError(APIError):
    """A send failed at a point where SvarUt may already have accepted it.

    The client does not retry, since that could deliver the letter twice.
    Settle it by asking SvarUt before sending again:
    ``client.avklar_utfall(**exc.avklaring)`` looks the forsendelse up by its
    ``ekstern_referanse`` (``sendt`` is when the attempt began). ``cause`` is
    the underlying connection or status error. ``konto_id``,
    ``ekstern_referanse``, ``korrelasjonsid``, ``operation_id`` and
    ``dokumenter_sha256`` (each document's SHA-256, to tell a resend of the
    same letter) say what was sent.

    >>> try:  # doctest: +SKIP
    ...     client.send_til_person(...)
    ... except SendOutcomeUnknownError as exc:
    ...     utfall = client.avklar_utfall(**exc.avklaring)
    """

    def __init__(
        self,
        *,
        operation_id: str,
        konto_id: str,
        ekstern_referanse: str | None,
        korrelasjonsid: str | None,
        dokumenter_sha256: dict[str, str | None],
        cause: Exception,
        request: httpx2.Request | None,
        sendt: datetime | None = None,
    ) -> None:
        self.operation_id = operation_id
        self.sendt = sendt
        self.konto_id = konto_id
        self.ekstern_referanse = ekstern_referanse
        self.korrelasjonsid = korrelasjonsid
        self.dokumenter_sha256 = dokumenter_sha256
        self.cause = cause
        ref = f"eksternReferanse={ekstern_referanse!r}" if ekstern_referanse else "no eksternReferanse"
        how = (
            "settle it with client.avklar_utfall(**exc.avklaring) or `svarut avklar` before sending it again"
            if ekstern_referanse
            else "look it up in SvarUt before sending it again"
        )
        super().__init__(
            f"{operation_id} on konto {konto_id}: outcome unknown ({cause}). SvarUt may have accepted the "
            f"forsendelse ({ref}); {how}.",
            request=request,
        )

    @property
    def avklaring(self) -> dict[str, Any]:
        """The arguments of ``client.avklar_utfall`` that settle this outcome:
        ``konto_id``, ``ekstern_referanse`` and ``sendt``.

        Returns:
            The keyword arguments, for ``client.avklar_utfall(**exc.avklaring)``.
        """
        return {"konto_id": self.konto_id, "ekstern_referanse": self.ekstern_referanse, "sendt": self.sendt}


class BadRequestError(APIStatusError):
    status_code = 400


class AuthenticationError(APIStatusError):
    status_code = 401


class PermissionDeniedError(APIStatusError):
    status_code = 403


class NotFoundError(APIStatusError):
    status_code = 404


class ConflictError(APIStatusError):
    status_code = 409


class PayloadTooLargeError(APIStatusError):
    status_code = 413


class RateLimitError(APIStatusError):
    status_code = 429


class InternalServerError(APIStatusError):
    """Any 5xx."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        RateLimitError,
    )
}


def status_error_class(status: int, fields: dict[str, Any] | None = None) -> type[APIStatusError]:
    if fields and (
        fields.get("errorCode") == DUPLICATE_ERROR_CODE or DUPLICATE_MESSAGE in str(fields.get("message", ""))
    ):
        return DuplicateForsendelseError
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIStatusError)


def request_of(response: httpx2.Response) -> httpx2.Request | None:
    try:
        return response.request
    except RuntimeError:  # a Response built without one
        return None


def request_secrets(request: httpx2.Request | None) -> tuple[bytes, ...]:
    """The secrets ``request`` carried (token, IntegrasjonPassord), as they may
    appear in a body: raw, without ``Bearer``, and JSON-escaped."""
    if request is None:
        return ()
    values: set[str] = set()
    for name in SECRET_HEADERS:
        for value in request.headers.get_list(name):
            scheme, _, credential = value.partition(" ")
            values.update(v for v in (value, credential.strip() if scheme.isalpha() else "") if v)
    forms: set[bytes] = set()
    for value in values:
        forms.add(value.encode())
        forms.add(json.dumps(value)[1:-1].encode())
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1].encode())
    # Longest first, so "Bearer xyz" goes whole before "xyz" is looked for.
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


def masked_request(request: httpx2.Request) -> httpx2.Request:
    """A copy of ``request`` without its body and with its secret headers masked:
    httpx2's repr masks ``Authorization`` only, not ``IntegrasjonPassord``."""
    import httpx2

    headers = httpx2.Headers(
        [
            (k.decode("latin-1"), REDACTED if k.decode("latin-1").lower() in SECRET_HEADERS else v.decode("latin-1"))
            for k, v in request.headers.raw
        ]
    )
    return httpx2.Request(request.method, request.url, headers=headers, extensions=request.extensions)


def redacted_response(response: httpx2.Response, body: bytes) -> httpx2.Response:
    """A copy of ``response`` with ``body`` (already decoded and redacted) and the masked request."""
    import httpx2

    headers = [(k, v) for k, v in response.headers.multi_items() if k not in ("content-encoding", "content-length")]
    return httpx2.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=request if (request := request_of(response)) is None else masked_request(request),
        extensions={k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")},
    )


def _redacted_model(model: Any, secrets: tuple[bytes, ...]) -> Any:
    """``model`` (a parsed error body) with the secrets redacted from its string fields."""
    if model is None or not hasattr(model, "model_copy"):
        return model
    update = {}
    for name, value in vars(model).items():
        if isinstance(value, str) and (clean := redact(value.encode(), secrets).decode()) != value:
            update[name] = clean
    return model.model_copy(update=update) if update else model


def excerpt(body: bytes, limit: int = RAW_BODY_EXCERPT, *, one_line: bool = False, count: bool = True) -> str:
    """At most ``limit`` characters of ``body`` (UTF-8, undecodable bytes
    replaced) for a message; ``one_line`` squeezes every run of whitespace to
    one space. A cut is marked ``…``, with the body's size if ``count``."""
    text = body[: limit * 4].decode("utf-8", errors="replace")  # no character takes more than 4 bytes
    if one_line:
        text = " ".join(text.split())
    if len(text) > limit or len(body) > limit * 4:
        return text[:limit] + (f"… [{len(body)} bytes in all]" if count else "…")
    return text


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= RAW_BODY_EXCERPT:
        return text
    return text[:RAW_BODY_EXCERPT] + f"… [{len(text)} characters in all]"


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def json_fields(body: bytes) -> dict[str, Any]:
    return json_object(body) or {}


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _error_json(value: Any, secrets: tuple[bytes, ...]) -> dict[str, Any] | str | None:
    """``errorJson`` as the caller can use it.

    The spec and the server differ here. The spec types ``errorJson`` as a
    string: the status spec's own ``ErrorMessage`` up to version 16, and from
    version 17 the shared ``fiks-common.json`` it references. The live service
    sends a JSON object, and KS's official JVM client reads it as a map since
    2026-06-03 (when it moved to spec 2e173af). Both are read: an object, or a
    string that holds a JSON object, becomes a dict; any other string is kept as
    it is, and any other JSON value as its JSON text.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    # The body was redacted as sent; a secret inside this string was escaped
    # twice there, so look for it again now that one level is undone.
    text = redact(value.encode(), secrets).decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, dict) else text


def _timestamp(value: Any) -> datetime | None:
    """``timestamp`` as a datetime. The spec says epoch milliseconds (int64);
    some servers send an ISO 8601 string instead (Spring Boot's default error
    body does), kept with its offset, or naive if it has none. A number as a
    string counts as milliseconds; anything else, or out of range, is None."""
    if isinstance(value, bool):  # a bool is an int to Python, not a time
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        try:
            value = int(value)
        except ValueError:  # more digits than int() reads from a string: no time
            return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None
