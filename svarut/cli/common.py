"""What every ``svarut`` command shares: the settings and client
(:class:`State`), the options for the konto and JSON output, and how an
exception becomes one line and an exit code (:func:`failure`)."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from svarut.cli import (
    EXIT_API_ERROR,
    EXIT_DUPLICATE,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_NOT_RECEIVED,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_USAGE,
    EXIT_VALIDATION,
    EXIT_WAIT_TIMEOUT,
)
from svarut.cli.config import ConfigFileError, Settings, resolve

if TYPE_CHECKING:
    from pydantic import ValidationError

    from svarut import errors
    from svarut._client import SvarUtClient

# The client (pydantic, httpx2, the models) is imported by the commands that
# talk to SvarUt, not at start-up: ``svarut --help`` and a usage error stay quick.


class CliError(click.ClickException):
    """One line on stderr (preceded by ``detail`` with ``-v``, followed by
    ``footer`` as given: a command to run, which must keep its spacing); its
    class sets the exit code."""

    exit_code = EXIT_API_ERROR

    def __init__(self, message: str, *, detail: str | None = None, footer: str | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.detail = detail
        self.footer = footer

    def show(self, file: Any = None) -> None:
        out = file or sys.stderr
        if self.detail:
            click.echo(self.detail.rstrip(), file=out)
        click.echo(f"Error: {self.format_message()}", file=out)
        if self.footer:
            click.echo(self.footer, file=out)


class UsageFailure(CliError):
    exit_code = EXIT_USAGE


class ValidationFailure(CliError):
    exit_code = EXIT_VALIDATION


class OutcomeUnknown(CliError):
    exit_code = EXIT_OUTCOME_UNKNOWN


class WaitTimedOut(CliError):
    exit_code = EXIT_WAIT_TIMEOUT


class DuplicateFailure(CliError):
    exit_code = EXIT_DUPLICATE


class NotReceived(CliError):
    """``avklar``: SvarUt did not receive the forsendelse; sending it again is safe."""

    exit_code = EXIT_NOT_RECEIVED


class NotFound(CliError):
    """SvarUt has no forsendelse with the id asked about."""

    exit_code = EXIT_NOT_FOUND


class Interrupted(CliError):
    """Ctrl-C, where nothing is left in doubt (``send`` says so when it is)."""

    exit_code = EXIT_INTERRUPTED


def after_ctrl_c() -> None:
    """End the line a terminal echoed ``^C`` on, so the message starts a line of its own."""
    if sys.stderr.isatty():
        click.echo(err=True)


def usage_error(message: str) -> CliError:
    return UsageFailure(message)


def describe_problems(problems: Sequence[errors.Problem]) -> str:
    """The one line for a forsendelse refused before sending (see :func:`rejected`)."""
    count = len(problems)
    listed = "; ".join(str(p) for p in problems)
    return f"forsendelse rejected before sending ({count} problem{'s' * (count != 1)}): {listed}"


def rejected(problems: Sequence[errors.Problem]) -> ValidationFailure:
    """A forsendelse refused before sending: a line that counts the problems,
    then one line per problem, each naming the flag or argument to fix."""
    count = len(problems)
    return ValidationFailure(
        f"forsendelse rejected before sending ({count} problem{'s' * (count != 1)}):",
        footer="\n".join(f"  {p}" for p in problems),
    )


# pydantic's messages, by error type, in the words of a person filling in a forsendelse
# ("Input should be a valid dictionary or instance of PrintMottaker" is Python's).
_PYDANTIC_MESSAGES = {
    "missing": "required",
    "string_too_long": "at most {max_length} characters",
    "string_too_short": "at least {min_length} characters",
    "too_long": "at most {max_length} items",
    "too_short": "at least {min_length} items",
    "string_type": "must be text",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "enum": "must be one of {expected}",
    "literal_error": "must be one of {expected}",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON list",
    "extra_forbidden": "not a field of the forsendelse",
    "uuid_type": "must be a UUID",
    "uuid_parsing": "must be a UUID",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "datetime_type": "must be an ISO 8601 time with a UTC offset",
    "datetime_parsing": "must be an ISO 8601 time with a UTC offset",
    "datetime_from_date_parsing": "must be an ISO 8601 time with a UTC offset",
    "timezone_aware": "must have a UTC offset",
    "value_error": "{error}",
}


def pydantic_message(error: Mapping[str, Any]) -> str:
    """A pydantic error's message (an item of ``ValidationError.errors()``) in
    plain words, without Python's names for types."""
    template = _PYDANTIC_MESSAGES.get(str(error.get("type")))
    context = dict(error.get("ctx") or {})
    if template is not None:
        try:
            return template.format(**context)
        except (KeyError, IndexError):
            pass
    message = str(error.get("msg", ""))
    message = re.sub(r"^Value error, ", "", message)
    message = re.sub(r"dictionary or instance of \w+", "JSON object", message)
    return message.replace("Input should be", "must be").replace("Field required", "required")


def _validation_problems(exc: ValidationError) -> errors.ForsendelseValidationError:
    from svarut import errors

    return errors.ForsendelseValidationError(
        [
            errors.Problem(".".join(str(p) for p in e["loc"]) or "forsendelse", e["type"], pydantic_message(e))
            for e in exc.errors()
        ]
    )


def failure(exc: Exception) -> CliError:
    """The one-line message and exit code for ``exc``."""
    from pydantic import ValidationError

    from svarut import errors

    if isinstance(exc, ValidationError):
        exc = _validation_problems(exc)
    if isinstance(exc, errors.ForsendelseValidationError):
        return rejected(exc.problems)
    if isinstance(exc, errors.SendOutcomeUnknownError):
        ref = f"eksternReferanse {exc.ekstern_referanse!r}" if exc.ekstern_referanse else "no eksternReferanse"
        how = "settle it with `svarut avklar`" if exc.ekstern_referanse else "look it up in SvarUt"
        return OutcomeUnknown(
            f"outcome unknown: SvarUt may have accepted the forsendelse ({ref}); {how} before sending "
            f"it again. Cause: {exc.cause}"
        )
    if isinstance(exc, errors.DuplicateForsendelseError):
        return DuplicateFailure(f"SvarUt already has this forsendelse: {exc}")
    if isinstance(exc, errors.VentPaStatusTimeoutError):
        return WaitTimedOut(str(exc))
    if isinstance(exc, errors.ForsendelseNotFoundError):
        return NotFound(str(exc))
    if isinstance(exc, (errors.KeystoreError, ConfigFileError)):
        return UsageFailure(str(exc))
    if isinstance(exc, errors.SvarUtError):
        return CliError(str(exc))
    if isinstance(exc, OSError) and exc.strerror:
        # "[Errno 2] No such file or directory: '/x'" is Python's way of saying it.
        where = exc.filename if exc.filename is not None else ""
        return UsageFailure(f"{where}: {exc.strerror}" if where else exc.strerror)
    if isinstance(exc, (ValueError, OSError)):
        # Bad settings (a URL, a UUID, a missing file) from the client's constructors.
        return UsageFailure(str(exc) or type(exc).__name__)
    return CliError(f"unexpected error: {type(exc).__name__}: {exc}")


@dataclass
class State:
    """What the group's options give every command."""

    flags: dict[str, str | None]
    config_path: Path | None
    verbose: bool
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve(flags=self.flags, config_path=self.config_path, environ=self.environ)
        return self._settings

    def konto_id(self, flag: UUID | None) -> UUID:
        if flag is not None:
            return flag
        value = self.settings.get("SVARUT_KONTO_ID")
        if not value:
            raise usage_error("no konto: give --konto, or set " + Settings.how_to_set("SVARUT_KONTO_ID"))
        try:
            return UUID(value)
        except ValueError:
            raise usage_error(
                f"SVARUT_KONTO_ID (from the {self.settings.sources.get('SVARUT_KONTO_ID')}) is not a UUID"
            ) from None

    @contextmanager
    def client(self, **options: Any) -> Iterator[SvarUtClient]:
        settings = self.settings
        missing = settings.missing()
        if missing:
            raise usage_error("missing settings: " + ", ".join(Settings.how_to_set(n) for n in missing))
        from svarut._client import SvarUtClient

        with SvarUtClient.from_env(environ=settings.values, **options) as client:
            yield client


konto_option = click.option("--konto", type=click.UUID, help="The konto (account) to use [SVARUT_KONTO_ID].")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")

#: The group's options that set a setting, by the setting's name: what a printed command repeats.
GROUP_FLAGS = {
    "SVARUT_ENVIRONMENT": "--environment",
    "SVARUT_BASE_URL": "--base-url",
    "SVARUT_INTEGRASJON_ID": "--integrasjon-id",
    "MASKINPORTEN_CLIENT_ID": "--maskinporten-client-id",
    "MASKINPORTEN_KEYSTORE": "--keystore",
}


def avklar_command(state: State | None, *, konto_id: object, ekstern_referanse: str, sendt: datetime | None) -> str:
    """The ``svarut avklar`` command that settles a send with an unknown
    outcome, shell-quoted, with the group options this run was given (none of
    them a secret: passwords are never flags), so it asks the same SvarUt."""
    words = ["svarut"]
    if state is not None:
        if state.config_path is not None:
            words += ["--config", str(state.config_path)]
        for name, flag in GROUP_FLAGS.items():
            if value := state.flags.get(name):
                words += [flag, value]
    words += ["avklar", "--konto", str(konto_id), "--ekstern-referanse", ekstern_referanse]
    if sendt is not None:
        words += ["--sendt", format_time(sendt)]
    return shlex.join(words)


def format_time(value: datetime) -> str:
    """An aware time as ISO 8601 in UTC with its offset and microseconds
    (``2026-05-04T08:15:00.123000+00:00``; a naive one is taken as UTC, as the
    client takes it): the one format of every time the CLI prints, in text and
    JSON. Always the same width, so columns line up and a script needs one
    pattern; to the microsecond, so a ``--sendt`` printed back loses nothing."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+|\d+(?:\.\d+)?")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """An option's length of time (a click callback): ``20m``, ``90s``,
    ``1h30m``, ``1.5h``, ``2d``; a bare number is seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    if not _DURATION.fullmatch(text):
        raise click.BadParameter(f"{value!r} is not a duration: e.g. 20m, 90s, 1h30m, or seconds", ctx, param)
    parts = _DURATION_PART.findall(text)
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts) if parts else float(text)
    return timedelta(seconds=seconds)


def timestamp(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An option's ISO 8601 time with a UTC offset (a click callback):
    ``2026-05-04T10:15:00+02:00``, ``...Z``. A time without one is refused
    rather than guessed: read in the wrong zone it would move the settle
    window by hours."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-05-04T10:15:00+02:00", ctx, param
        ) from None
    if parsed.utcoffset() is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset: add one (e.g. {parsed.isoformat()}+02:00, or Z for UTC)", ctx, param
        )
    return parsed.astimezone(UTC)
