"""What every ``svarut`` command shares: the settings and client
(:class:`State`), the options for the konto and JSON output, and how an
exception becomes one line and an exit code (:func:`failure`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from svarut.cli import (
    EXIT_API_ERROR,
    EXIT_DUPLICATE,
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

# The client (pydantic, httpx, the models) is imported by the commands that
# talk to SvarUt, not at start-up: ``svarut --help`` and a usage error stay quick.


class CliError(click.ClickException):
    """One line on stderr (preceded by ``detail`` with ``-v``); its class sets the exit code."""

    exit_code = EXIT_API_ERROR

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.detail = detail

    def show(self, file: Any = None) -> None:
        out = file or sys.stderr
        if self.detail:
            click.echo(self.detail.rstrip(), file=out)
        click.echo(f"Error: {self.format_message()}", file=out)


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


def usage_error(message: str) -> CliError:
    return UsageFailure(message)


def describe_problems(problems: Sequence[errors.Problem]) -> str:
    """The one line for a forsendelse refused before sending."""
    count = len(problems)
    listed = "; ".join(str(p) for p in problems)
    return f"forsendelse rejected before sending ({count} problem{'s' * (count != 1)}): {listed}"


def _validation_problems(exc: ValidationError) -> errors.ForsendelseValidationError:
    from svarut import errors

    return errors.ForsendelseValidationError(
        [errors.Problem(".".join(str(p) for p in e["loc"]) or "forsendelse", e["type"], e["msg"]) for e in exc.errors()]
    )


def failure(exc: Exception) -> CliError:
    """The one-line message and exit code for ``exc``."""
    from pydantic import ValidationError

    from svarut import errors

    if isinstance(exc, ValidationError):
        exc = _validation_problems(exc)
    if isinstance(exc, errors.ForsendelseValidationError):
        return ValidationFailure(describe_problems(exc.problems))
    if isinstance(exc, errors.SendOutcomeUnknownError):
        ref = f"eksternReferanse {exc.ekstern_referanse!r}" if exc.ekstern_referanse else "no eksternReferanse"
        return OutcomeUnknown(
            f"outcome unknown: SvarUt may have accepted the forsendelse ({ref}); look it up before sending "
            f"it again. Cause: {exc.cause}"
        )
    if isinstance(exc, errors.DuplicateForsendelseError):
        return DuplicateFailure(f"SvarUt already has this forsendelse: {exc}")
    if isinstance(exc, errors.VentPaStatusTimeoutError):
        return WaitTimedOut(str(exc))
    if isinstance(exc, (errors.KeystoreError, ConfigFileError)):
        return UsageFailure(str(exc))
    if isinstance(exc, errors.SvarUtError):
        return CliError(str(exc))
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
