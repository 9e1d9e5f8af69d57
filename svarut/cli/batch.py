"""``svarut batch``: check and send a manifest of letters with a durable
journal, settle the letters whose outcome is unknown by asking SvarUt,
follow their statuses, and report letter by letter (:mod:`svarut.batch` does
the work)."""

from __future__ import annotations

import csv
import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from svarut.cli import EXIT_API_ERROR, EXIT_FAILED, EXIT_OUTCOME_UNKNOWN
from svarut.cli.common import State, ValidationFailure, duration, konto_option, usage_error

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta

    from svarut.batch import Progress, Settled, SettleSummary, Summary

#: ``batch run``: letters were refused (by the pre-send rules or by SvarUt) or skipped; none is unknown.
EXIT_REFUSED = EXIT_FAILED

EPILOG = """\b
Exit codes of batch run:
  0  every letter is sent (or confirmed to have arrived before)
  1  letters are still waiting (SvarUt or the network failed); run again
  2  usage or configuration error
  3  the manifest does not check: nothing was sent (batch check lists why)
  4  letters with an unknown outcome remain that SvarUt could not settle: run again
     after the window, look them up (batch report), or --resend-unknown
  6  letters were refused or skipped (and none is unknown)
batch check: 0 when every line checks, 3 otherwise.
batch settle: 0 when no letter is left unknown, 4 otherwise.
"""

settle_after_option = click.option(
    "--settle-after",
    "settle_after",
    callback=duration,
    metavar="DURATION",
    help="How long after a letter's attempt began SvarUt having no forsendelse with its eksternReferanse "
    "proves it did not arrive, so it is sent again (20m, 90s, 1h30m; a bare number is seconds) "
    "[default: 20m: SvarUt may take 15 minutes to answer a send].",
)

journal_option = click.option(
    "--journal",
    "journal_target",
    metavar="PATH|URL",
    help="SQLite file or postgresql:// URL [default: MANIFEST.journal.sqlite].",
)


@click.group(epilog=EPILOG)
def batch() -> None:
    """Send a manifest of letters (JSON Lines), resumably, none twice."""


def _manifest_argument(f: Any) -> Any:
    return click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))(f)


def _check_client(state: State) -> Any:
    """A client that only checks: the configured environment's rules; it never connects."""
    from svarut._client import SvarUtClient

    environment = state.settings.get("SVARUT_ENVIRONMENT") or "prod"
    return SvarUtClient(base_url="https://svarut.invalid/api", environment=environment)


@batch.command("check")
@_manifest_argument
@click.pass_obj
def check_command(state: State, manifest: Path) -> None:
    """Check every line of MANIFEST as a send would, sending nothing; list every problem."""
    from svarut.batch.manifest import check_letters

    count = bad = problems = 0
    with _check_client(state) as client:
        for letter, _ in check_letters(manifest, client=client, konto_id=UUID(int=0)):
            count += 1
            if letter.problems:
                bad += 1
                problems += len(letter.problems)
                for problem in letter.problems:
                    click.echo(str(problem))
    if bad:
        raise ValidationFailure(f"{bad} of {count} letters do not check ({problems} problems)")
    click.echo(f"{count} letters check", err=True)


class _ProgressLine:
    """The progress line on stderr, at most a few times a second."""

    def __init__(self) -> None:
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, progress: Progress, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.25 if self._tty else 2.0):
            return
        self._last = now
        end = "\n" if final or not self._tty else ""
        click.echo(("\r" if self._tty else "") + str(progress) + end, err=True, nl=False)


@batch.command("run", epilog=EPILOG)
@_manifest_argument
@journal_option
@konto_option
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True, help="Sends at a time.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="At most this many sends a second.")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send letters whose outcome SvarUt could not settle (no eksternReferanse, or uavklart) again, "
    "relying on SvarUt to refuse an identical repeat.",
)
@settle_after_option
@click.option("--skip-invalid", is_flag=True, help="Send the lines that check, skip (and report) the rest.")
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds a worker's claim lives without renewal (PostgreSQL: when a dead worker's letters are taken over).",
)
@click.pass_obj
def run_command(
    state: State,
    manifest: Path,
    journal_target: str | None,
    konto: UUID | None,
    concurrency: int,
    rate: float | None,
    resend_unknown: bool,
    settle_after: timedelta | None,
    skip_invalid: bool,
    lease: float,
) -> None:
    """Send every letter of MANIFEST not yet sent, recording each in the journal.

    Stop it at any time (Ctrl-C lets the sends on the wire finish) and run it
    again: it resumes. First the letters earlier runs left unknown are
    settled, as batch settle does: those SvarUt has become sent, those it
    surely does not have (none found, the attempt older than --settle-after)
    are sent again. The rest are held, not resent, unless --resend-unknown.
    """
    from svarut import batch as b
    from svarut.utfall import AVKLARING_VINDU

    konto_id = state.konto_id(konto)
    progress = _ProgressLine()
    # A service manager's SIGTERM stops the run as Ctrl-C does: the sends on the wire finish and are recorded.
    signal.signal(signal.SIGTERM, _interrupt)
    with state.client() as client:
        try:
            summary = b.run(
                client,
                manifest,
                konto_id=konto_id,
                journal=journal_target,
                concurrency=concurrency,
                rate=rate,
                resend_unknown=resend_unknown,
                skip_invalid=skip_invalid,
                lease=lease,
                progress=progress,
                settle_after=AVKLARING_VINDU if settle_after is None else settle_after,
                on_settled=_print_settled(err=True),
            )
        except b.ManifestInvalidError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            raise ValidationFailure(
                f"the manifest has {len(exc.problems)} problem(s); nothing was sent (--skip-invalid sends the rest)"
            ) from None
        except b.JournalError as exc:
            raise usage_error(str(exc)) from None
    for problem in summary.skipped_problems:
        click.echo(f"skipped: {problem}", err=True)
    if summary.settled is not None:
        _settle_summary(summary.settled)
    _finish(summary)


def _print_settled(*, err: bool) -> Callable[[Settled], None]:
    """A callback printing one line per letter settling looked at: ref, outcome, id or ids found, why."""

    def show(settled: Settled) -> None:
        outcome = settled.tilstand or "lookup-failed"
        if not settled.recorded:
            outcome += " (changed meanwhile: not recorded)"
        ids = settled.forsendelse_id or ",".join(settled.found) or "-"
        click.echo(f"{settled.ref}\t{outcome}\t{settled.state}\t{ids}\t{settled.reason}", err=err)

    return show


def _settle_summary(settled: SettleSummary) -> None:
    if settled.settled or settled.stopped:
        click.echo(str(settled), err=True)
    if settled.stopped:
        click.echo(f"settling stopped: {settled.stopped}", err=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _finish(summary: Summary) -> None:
    """Exit with the code the journal's counts call for (see EPILOG)."""
    from svarut import batch as b

    counts = summary.counts
    click.echo(" ".join(f"{state}={n}" for state, n in counts.items() if n), err=True)
    if counts[b.UNKNOWN]:
        _exit(EXIT_OUTCOME_UNKNOWN, f"{counts[b.UNKNOWN]} letter(s) with unknown outcome: see `svarut batch report`")
    if counts[b.WAITING] or counts[b.SENDING]:
        _exit(EXIT_API_ERROR, f"{counts[b.WAITING] + counts[b.SENDING]} letter(s) not sent yet: run again")
    skipped = len({p.line for p in summary.skipped_problems}) or counts[b.SKIPPED]
    if counts[b.REFUSED] or skipped:
        _exit(EXIT_REFUSED, f"{counts[b.REFUSED]} letter(s) refused, {skipped} line(s) skipped")


def _exit(code: int, message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@batch.command("settle", epilog=EPILOG)
@journal_option
@settle_after_option
@click.pass_obj
def settle_command(state: State, journal_target: str | None, settle_after: timedelta | None) -> None:
    """Settle the letters the journal holds as unknown, sending nothing.

    Asks SvarUt for each by the eksternReferanse it was sent with. Exactly one
    forsendelse has it: the letter is sent, with that id. None, and the
    attempt began longer ago than --settle-after: it did not arrive, and the
    next batch run sends it again. Anything else (several have it, or none
    yet) stays unknown, with what was found; batch report shows how each was
    settled. A lookup that fails settles nothing. Prints a line per letter:
    ref, outcome, state now, id(s) found, why.
    """
    from svarut import batch as b
    from svarut.utfall import AVKLARING_VINDU

    if journal_target is None:
        raise usage_error("give --journal (the path or URL batch run used)")
    with state.client() as client:
        try:
            settled = b.settle(
                client,
                journal=journal_target,
                settle_after=AVKLARING_VINDU if settle_after is None else settle_after,
                on_settled=_print_settled(err=False),
            )
        except b.JournalError as exc:
            raise usage_error(str(exc)) from None
    _settle_summary(settled)
    if resend := sum(s.recorded and s.state == b.WAITING for s in settled.settled):
        click.echo(f"{resend} letter(s) did not arrive: the next `svarut batch run` sends them again", err=True)
    if settled.unknown:
        _exit(EXIT_OUTCOME_UNKNOWN, f"{settled.unknown} letter(s) still unknown: see `svarut batch report`")


@batch.command("status")
@journal_option
@click.option("--follow", is_flag=True, help="Keep polling until every sent letter has a terminal status.")
@click.option(
    "--interval", type=click.FloatRange(min=0.01), default=10.0, show_default=True, help="Seconds between polls."
)
@click.pass_obj
def status_command(state: State, journal_target: str | None, follow: bool, interval: float) -> None:
    """Fetch the status of every sent letter in the journal, storing each change with its time."""
    from svarut import batch as b

    if journal_target is None:
        raise usage_error("give --journal (the path or URL batch run used)")

    def changed(row: Any, value: str, when: str) -> None:
        click.echo(f"{row.ref}\t{row.forsendelse_id}\t{value}\t{when}")

    with state.client() as client:
        try:
            counts = b.status(client, journal=journal_target, follow=follow, interval=interval, on_change=changed)
        except b.JournalError as exc:
            raise usage_error(str(exc)) from None
    click.echo(" ".join(f"{s}={n}" for s, n in sorted(counts.items())), err=True)


@batch.command("report")
@journal_option
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one object per letter.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line.")
def report_command(journal_target: str | None, as_json: bool, as_csv: bool) -> None:
    """Per letter: ref, state, forsendelse id, eksternReferanse, latest status and time, error,
    documents' SHA-256, when its last attempt began, and how an unknown outcome was settled
    (settled: mottatt, ikke_mottatt or uavklart; when; the ids found; why)."""
    from svarut import batch as b
    from svarut.batch.runner import REPORT_FIELDS

    if journal_target is None:
        raise usage_error("give --journal (the path or URL batch run used)")
    if as_json and as_csv:
        raise usage_error("give --json or --csv, not both")
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer is not None:
        writer.writerow(REPORT_FIELDS)
    try:
        for record in b.report(journal_target):
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
                continue
            sha, found = record["dokumenter_sha256"], record["settled_found"]
            values = {
                **record,
                "dokumenter_sha256": json.dumps(sha, sort_keys=True) if sha else None,
                "settled_found": ",".join(found) if found else None,
            }
            if writer is not None:
                writer.writerow(["" if values[k] is None else values[k] for k in REPORT_FIELDS])
            else:
                click.echo("\t".join("-" if values[k] is None else str(values[k]) for k in REPORT_FIELDS))
    except b.JournalError as exc:
        raise usage_error(str(exc)) from None
