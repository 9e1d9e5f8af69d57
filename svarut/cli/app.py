"""The click application behind ``svarut``: the command group (which turns
every error into one line and an exit code), and the ``status``, ``wait``,
``encrypt`` and ``simulator`` commands. ``send`` lives in
:mod:`svarut.cli.send`, ``avklar`` in :mod:`svarut.cli.avklar`, ``batch`` in
:mod:`svarut.cli.batch`, what they share in :mod:`svarut.cli.common`."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

import svarut
from svarut.cli import EXIT_FAILED, flags
from svarut.cli.avklar import avklar
from svarut.cli.common import (
    CliError,
    Interrupted,
    NotFound,
    State,
    WaitTimedOut,
    after_ctrl_c,
    failure,
    format_time,
    json_option,
    konto_option,
    usage_error,
)
from svarut.cli.send import send

if TYPE_CHECKING:
    from svarut import models

EPILOG = """\b
Exit codes:
  0  success
  1  SvarUt, Maskinporten or the network failed
  2  usage or configuration error
  3  validation error: the forsendelse breaks a rule, nothing was sent
  4  outcome unknown: SvarUt may have the forsendelse; settle it first (svarut avklar)
  5  wait timed out
  6  wait: a forsendelse ended in a failure status (AVVIST, IKKE_LEVERT, FEILET_UNDER_MOTTAK)
  7  duplicate: SvarUt already has this forsendelse (an earlier attempt arrived)
  8  avklar: not received, SvarUt does not have the forsendelse; safe to send again
  9  not found: SvarUt has no forsendelse with that id (status)
130  interrupted (Ctrl-C); send exits 4 instead once the forsendelse began to go out

\b
Settings: flags, then environment variables (SVARUT_ENVIRONMENT,
SVARUT_BASE_URL, SVARUT_KONTO_ID, SVARUT_INTEGRASJON_ID,
SVARUT_INTEGRASJON_PASSORD, MASKINPORTEN_CLIENT_ID, MASKINPORTEN_KEYSTORE,
MASKINPORTEN_KEYSTORE_PASSWORD, ...), then --config or the config file in
the platform's config directory (Linux: ~/.config/svarut/config.toml;
macOS: ~/Library/Application Support/svarut/config.toml; Windows:
%APPDATA%\\svarut\\config.toml).
"""


class SvarUtGroup(click.Group):
    """Turns any error of a command into one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as given:
            # A command that turned an error into its message itself: -v still shows what caused it.
            state = ctx.obj if isinstance(ctx.obj, State) else None
            cause = given.__cause__
            if state is not None and state.verbose and cause is not None and given.detail is None:
                given.detail = "".join(traceback.format_exception(cause))
            raise
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            # click would print "Aborted!" and exit 1, the code of a failed SvarUt call.
            after_ctrl_c()
            raise Interrupted("interrupted") from None
        except Exception as exc:
            error = failure(exc)
            state = ctx.obj if isinstance(ctx.obj, State) else None
            if state is not None and state.verbose:
                error.detail = "".join(traceback.format_exception(exc))
            raise error from exc


def _configure_logging(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
        logging.getLogger("svarut").setLevel(logging.DEBUG)
        logging.getLogger("httpx2").setLevel(logging.INFO)


@click.group(cls=SvarUtGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file (default: svarut/config.toml in the platform's config directory, e.g. ~/.config).",
)
@click.option("--environment", type=click.Choice(["test", "prod"]), help="SvarUt environment [SVARUT_ENVIRONMENT].")
@click.option("--base-url", help="SvarUt API root, overriding the environment's [SVARUT_BASE_URL].")
@click.option("--integrasjon-id", help="The integration's id [SVARUT_INTEGRASJON_ID].")
@click.option("--maskinporten-client-id", help="Maskinporten client id [MASKINPORTEN_CLIENT_ID].")
@click.option(
    "--keystore",
    type=click.Path(dir_okay=False, path_type=Path),
    help=".p12 or PEM keystore for Maskinporten [MASKINPORTEN_KEYSTORE].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log requests; show details and tracebacks of errors.")
@click.version_option(svarut.__version__, prog_name="svarut")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    environment: str | None,
    base_url: str | None,
    integrasjon_id: str | None,
    maskinporten_client_id: str | None,
    keystore: Path | None,
    verbose: bool,
) -> None:
    """Send letters with KS Fiks SvarUt and follow their status."""
    _configure_logging(verbose)
    ctx.obj = State(
        flags={
            "SVARUT_ENVIRONMENT": environment,
            "SVARUT_BASE_URL": base_url,
            "SVARUT_INTEGRASJON_ID": integrasjon_id,
            "MASKINPORTEN_CLIENT_ID": maskinporten_client_id,
            "MASKINPORTEN_KEYSTORE": str(keystore) if keystore else None,
        },
        config_path=config_path,
        verbose=verbose,
    )


def _print_statuses(statuser: Iterable[models.ForsendelseStatus], *, as_json: bool) -> None:
    items = list(statuser)
    if as_json:
        rows = []
        for s in items:
            row = s.model_dump(mode="json", by_alias=True)
            # pydantic writes "Z"; every time the CLI prints is format_time's, in text and JSON alike.
            row[flags.field_alias(type(s), "siste_status_endring")] = format_time(s.siste_status_endring)
            rows.append(row)
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for s in items:
        click.echo(f"{s.id}\t{s.status}\t{format_time(s.siste_status_endring)}")


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=click.UUID)
@konto_option
@json_option
@click.pass_obj
def status(state: State, ids: tuple[UUID, ...], konto: UUID | None, as_json: bool) -> None:
    """Print the status of each forsendelse ID."""
    konto_id = state.konto_id(konto)
    with state.client() as client:
        statuser = client.hent_statuser(konto_id=konto_id, ids=list(ids))
    _print_statuses(statuser, as_json=as_json)
    if statuser.mangler:
        raise NotFound(f"SvarUt has no forsendelse {', '.join(str(i) for i in statuser.mangler)} on konto {konto_id}")


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=click.UUID)
@konto_option
@click.option(
    "--until",
    multiple=True,
    metavar="STATUS",
    help="Also stop at STATUS (repeatable, e.g. AKSEPTERT); terminal statuses always stop.",
)
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True, help="Seconds to wait.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=2.0,
    show_default=True,
    help="Seconds between polls (backs off).",
)
@json_option
@click.pass_obj
def wait(
    state: State,
    ids: tuple[UUID, ...],
    konto: UUID | None,
    until: tuple[str, ...],
    timeout: float,
    interval: float,
    as_json: bool,
) -> None:
    """Wait until every forsendelse ID reaches a terminal status (or reaches or passes one of --until).

    Exits 6 when a forsendelse ended in a failure status (AVVIST, IKKE_LEVERT, FEILET_UNDER_MOTTAK).
    """
    from svarut import errors, models, statuses

    statuses.require_status_search()
    known = statuses.spec_statuses() or ()
    names = [s.upper() for s in until]
    if unknown := [s for s in names if s not in known]:
        raise usage_error(f"--until {', '.join(unknown)}: not a status; one of {', '.join(sorted(known))}")
    wanted = [models.Status(s) for s in names]
    konto_id = state.konto_id(konto)
    with state.client() as client:
        try:
            result = client.vent_pa_status(
                konto_id=konto_id, ids=list(ids), until=wanted or None, timeout=timeout, interval=interval
            )
        except errors.VentPaStatusTimeoutError as exc:
            _print_statuses(exc.statuser.values(), as_json=as_json)
            raise WaitTimedOut(
                f"timed out after {timeout:g} s; still waiting for {', '.join(str(i) for i in exc.ventende)}"
            ) from exc
    _print_statuses(result.values(), as_json=as_json)
    if failed := [s for s in result.values() if statuses.is_failure(s)]:
        raise _LetterFailed(", ".join(f"{s.id} ended in {s.status}" for s in failed))


class _LetterFailed(CliError):
    """``wait`` saw a forsendelse end in a failure status."""

    exit_code = EXIT_FAILED


@cli.command()
@click.option(
    "--sertifikat",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SvarUt's certificate (PEM or DER file).",
)
@click.option(
    "--environment",
    "from_environment",
    type=click.Choice(["test", "prod"]),
    help="Fetch SvarUt's certificate from this environment.",
)
@click.option("--base-url", "from_base_url", help="Fetch SvarUt's certificate from the SvarUt at this URL.")
@click.option(
    "--key-transport",
    type=click.Choice(["oaep", "pkcs1v15"]),
    default="oaep",
    show_default=True,
    help="RSA key transport.",
)
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def encrypt(
    state: State,
    sertifikat: Path | None,
    from_environment: str | None,
    from_base_url: str | None,
    key_transport: str,
    input_path: Path,
    output_path: Path,
) -> None:
    """Encrypt INPUT for SvarUt (CMS, as kryptert forsendelser carry it) into OUTPUT.

    Without --sertifikat, --environment or --base-url the certificate is
    fetched from the configured SvarUt (SVARUT_BASE_URL or SVARUT_ENVIRONMENT).
    """
    import httpx2

    from svarut import errors
    from svarut.runtime import kryptering

    if sum(x is not None for x in (sertifikat, from_environment, from_base_url)) > 1:
        raise usage_error("give one of --sertifikat, --environment and --base-url")
    if not output_path.parent.is_dir():
        # Before fetching a certificate for nothing.
        raise usage_error(f"OUTPUT {output_path}: the directory {output_path.parent} does not exist")
    if sertifikat is not None:
        try:
            certificate = kryptering.SvarUtSertifikat.load(sertifikat)
        except errors.SertifikatError as exc:
            raise usage_error(str(exc)) from None
    else:
        source = from_environment or from_base_url
        if source is None:
            source = state.settings.get("SVARUT_BASE_URL") or state.settings.get("SVARUT_ENVIRONMENT")
        if source is None:
            raise usage_error("give --sertifikat, --environment or --base-url (or configure SVARUT_BASE_URL)")
        with httpx2.Client(timeout=30.0) as http:
            certificate = kryptering.hent_sertifikat(http, kryptering.sertifikat_url(source))
    written = kryptering.encrypt_path(
        input_path, output_path, certificate, key_transport="pkcs1v15" if key_transport == "pkcs1v15" else "oaep"
    )
    click.echo(
        f"encrypted {input_path} -> {output_path} ({written} bytes) for certificate serial {certificate.serial_hex}",
        err=True,
    )


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port on 127.0.0.1 (default: a free one).")
@click.option(
    "--step-seconds", type=click.FloatRange(min=0), default=2.0, show_default=True, help="Seconds per status step."
)
@click.option(
    "--not-digital", multiple=True, metavar="FODSELSNUMMER", help="A person without a digital mailbox (repeatable)."
)
@click.option(
    "--shell",
    type=click.Choice(["posix", "powershell", "cmd"]),  # svarut.simulator.runner.SHELLS (tests/test_simulator.py)
    help="Print the settings as lines for this shell: export NAME='value' (posix), $env:NAME = 'value' "
    '(powershell), set "NAME=value" (cmd, for a batch file). Default: powershell on Windows, else posix.',
)
@click.option("--json", "as_json", is_flag=True, help="Print the settings as one JSON object instead.")
def simulator(port: int, step_seconds: float, not_digital: tuple[str, ...], shell: str | None, as_json: bool) -> None:
    """Run a local SvarUt (and Maskinporten) until Ctrl-C.

    Prints the settings a client needs on stdout (as lines for your shell, or
    JSON with --json), its URLs on stderr.
    """
    from svarut.cli.simulator import run_simulator

    if threading.current_thread() is threading.main_thread():
        # Started in the background by a shell, SIGINT arrives ignored; Ctrl-C must stop it all the same.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    run_simulator(port=port, step_seconds=step_seconds, not_digital=not_digital, shell=shell, as_json=as_json)


cli.add_command(send)
cli.add_command(avklar)
cli.add_command(__import__("svarut.cli.batch", fromlist=["batch"]).batch)
cli.add_command(__import__("svarut.cli.doctor", fromlist=["doctor"]).doctor)
