"""``svarut batch``: check and send a manifest of letters with a durable
journal, settle the letters whose outcome is unknown by asking SvarUt,
follow their statuses, and report letter by letter (:mod:`svarut.batch` does
the work)."""

from __future__ import annotations

import contextlib
import csv
import errno
import itertools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

import click

from svarut.cli import EXIT_API_ERROR, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OUTCOME_UNKNOWN
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
  130  Ctrl-C twice: the sends on the wire were not waited for (the next run settles them)
Ctrl-C once starts no new letter, lets the sends on the wire finish, and exits as above.
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


def _optional_manifest_argument(f: Any) -> Any:
    return click.argument(
        "manifest", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[MANIFEST]"
    )(f)


def _journal_of(manifest: Path | None, journal_target: str | None) -> str:
    """The journal a command reads: --journal, else the manifest's (as batch run keeps it)."""
    from svarut.batch import default_journal

    if journal_target is not None:
        return journal_target
    if manifest is None:
        raise usage_error("give the manifest (its journal is MANIFEST.journal.sqlite) or --journal PATH|URL")
    return str(default_journal(manifest))


def _report_command(manifest: Path, journal_target: str | None) -> str:
    """The ``batch report`` command for this run's journal, to print: a
    journal URL may carry a password, so it is not repeated."""
    if journal_target is None:
        return f"svarut batch report {manifest}"
    if "://" in journal_target:
        return "svarut batch report --journal URL"
    return f"svarut batch report --journal {journal_target}"


@click.group(epilog=EPILOG)
def batch() -> None:
    """Send a manifest of letters (JSON Lines), resumably, none twice."""


def _manifest_argument(f: Any) -> Any:
    return click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))(f)


def _check_client(state: State) -> Any:
    """A client that only checks: the configured environment's rules; it never connects."""
    from svarut._client import SvarUtClient

    environment = state.settings.get("SVARUT_ENVIRONMENT") or "prod"
    if environment not in ("test", "prod"):
        raise usage_error(f"SVARUT_ENVIRONMENT must be test or prod, got {environment!r}")
    return SvarUtClient(base_url="https://svarut.invalid/api", environment="test" if environment == "test" else "prod")


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
    """The progress line on stderr, at most a few times a second: on a
    terminal rewritten in place (cleared to its end, so a shorter line leaves
    nothing of the longer one), else a line every few seconds."""

    def __init__(self) -> None:
        self._last = 0.0
        self._tty = sys.stderr.isatty()
        # The senders report from their threads; reentrant, since the Ctrl-C handler ends the line in
        # the main thread, which may be reporting itself (letters a dead runner left, made unknown).
        self._lock = threading.RLock()
        self._shown: str | None = None  # the text last drawn
        self._latest: str | None = None  # the newest text, drawn or not
        self._open = False  # a line is drawn on the terminal and not ended

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._latest = str(progress)
            now = time.monotonic()
            if now - self._last < (0.25 if self._tty else 2.0):
                return
            self._last = now
            self._draw()

    def _draw(self) -> None:
        assert self._latest is not None
        if self._tty:
            click.echo(f"\r{self._latest}\x1b[K", err=True, nl=False)
            self._open = True
        else:
            click.echo(self._latest, err=True)
        self._shown = self._latest

    def end(self) -> None:
        """Show the last counts, and end the line: what follows starts on a line of its own."""
        with self._lock:
            if self._latest is not None and self._latest != self._shown:
                self._draw()
            if self._open:
                click.echo("", err=True)
                self._open = False


class _Interrupts:
    """SIGINT and SIGTERM during batch run. The first raises
    KeyboardInterrupt, which the runner takes as: start no new letter, let
    the sends on the wire finish and record them. It says so first: a person
    waiting for minutes-long sends should know why nothing happens, and that
    a second Ctrl-C leaves them. The second raises again: the runner stops
    waiting."""

    def __init__(self, progress: _ProgressLine) -> None:
        self._progress = progress
        self.count = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count == 1:
            self._progress.end()
            click.echo(
                "Stopping: no new letters; waiting for the sends on the wire to be answered and recorded "
                "(Ctrl-C again to stop at once: they are left sending, and the next run settles them).",
                err=True,
            )
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        # Installed even where SIGINT came ignored (a job started in the background by a script):
        # batch run must stop gracefully, by either signal, wherever it runs.
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


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

    Stop it at any time (Ctrl-C lets the sends on the wire finish; a second
    Ctrl-C leaves them to be settled next time) and run it again: it resumes.
    First the letters earlier runs left unknown are settled, as batch settle
    does: those SvarUt has become sent, those it surely does not have (none
    found, the attempt older than --settle-after) are sent again. The rest
    are held, not resent, unless --resend-unknown.
    """
    from svarut import batch as b
    from svarut.utfall import AVKLARING_VINDU

    konto_id = state.konto_id(konto)
    progress = _ProgressLine()
    # A service manager's SIGTERM stops the run as Ctrl-C does: the sends on the wire finish and are recorded.
    with _Interrupts(progress).installed(), state.client() as client:
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
        except b.BatchInterruptedError as exc:
            progress.end()
            if exc.summary is None:
                left = "letters may be left" if exc.left_sending is None else f"{exc.left_sending} letter(s) left"
                _exit(
                    EXIT_INTERRUPTED,
                    f"interrupted: {left} sending, their outcome unknown; "
                    "the next `svarut batch run` settles them by asking SvarUt",
                )
            summary = exc.summary
        except b.BatchStoppedError as exc:
            progress.end()
            if exc.summary is not None:
                click.echo(_counts(exc.summary.counts), err=True)
            _exit(EXIT_API_ERROR, f"{exc}. Fix it and run again")
        except KeyboardInterrupt:
            # Before any letter was claimed: checking the manifest, or settling (which only asks).
            progress.end()
            _exit(EXIT_INTERRUPTED, "interrupted before sending began: no letter was sent")
    progress.end()
    for problem in summary.skipped_problems:
        click.echo(f"skipped: {problem}", err=True)
    if summary.settled is not None:
        _settle_summary(summary.settled)
    _finish(summary, report=_report_command(manifest, journal_target))


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


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{state}={n}" for state, n in counts.items() if n) or "no letters"


def _finish(summary: Summary, *, report: str) -> None:
    """Exit with the code the journal's counts call for (see EPILOG)."""
    from svarut import batch as b

    counts = summary.counts
    click.echo(_counts(counts), err=True)
    skipped = len({p.line for p in summary.skipped_problems}) or counts[b.SKIPPED]
    if counts[b.REFUSED] and (counts[b.UNKNOWN] or counts[b.WAITING] or counts[b.SENDING]):
        # The exit code below speaks of the worse news; the refusals are still to be read.
        click.echo(f"{counts[b.REFUSED]} letter(s) refused: `{report}` says why", err=True)
    if counts[b.UNKNOWN]:
        _exit(EXIT_OUTCOME_UNKNOWN, f"{counts[b.UNKNOWN]} letter(s) with unknown outcome: see `{report}`")
    if counts[b.WAITING] or counts[b.SENDING]:
        last = f" (the last attempt failed: {summary.last_error})" if summary.last_error else ""
        _exit(EXIT_API_ERROR, f"{counts[b.WAITING] + counts[b.SENDING]} letter(s) not sent yet{last}: run again")
    if counts[b.REFUSED] or skipped:
        _exit(EXIT_REFUSED, f"{counts[b.REFUSED]} letter(s) refused, {skipped} line(s) skipped: `{report}` says why")


def _exit(code: int, message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@batch.command("settle", epilog=EPILOG)
@_optional_manifest_argument
@journal_option
@settle_after_option
@click.pass_obj
def settle_command(
    state: State, manifest: Path | None, journal_target: str | None, settle_after: timedelta | None
) -> None:
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

    journal = _journal_of(manifest, journal_target)
    with state.client() as client:
        try:
            settled = b.settle(
                client,
                journal=journal,
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
@_optional_manifest_argument
@journal_option
@click.option("--follow", is_flag=True, help="Keep polling until every sent letter has a terminal status.")
@click.option(
    "--interval", type=click.FloatRange(min=0.01), default=10.0, show_default=True, help="Seconds between polls."
)
@click.pass_obj
def status_command(
    state: State, manifest: Path | None, journal_target: str | None, follow: bool, interval: float
) -> None:
    """Fetch the status of every sent letter in the journal of MANIFEST (or
    --journal), storing each change with its time."""
    from svarut import batch as b

    journal = _journal_of(manifest, journal_target)

    def changed(row: Any, value: str, when: str) -> None:
        click.echo(f"{row.ref}\t{row.forsendelse_id}\t{value}\t{when}")

    with state.client() as client:
        try:
            counts = b.status(client, journal=journal, follow=follow, interval=interval, on_change=changed)
        except b.JournalError as exc:
            raise usage_error(str(exc)) from None
    click.echo(" ".join(f"{s}={n}" for s, n in sorted(counts.items())), err=True)


@batch.command("report")
@_optional_manifest_argument
@journal_option
@click.option("--jsonl", "as_jsonl", is_flag=True, help="JSON Lines: one JSON object per letter, a line each.")
@click.option(
    "--json", "as_json", is_flag=True, help="Deprecated (removed in the next release): --jsonl, which it prints."
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line.")
def report_command(
    manifest: Path | None, journal_target: str | None, as_jsonl: bool, as_json: bool, as_csv: bool
) -> None:
    """Per letter of the journal of MANIFEST (or --journal): ref, state,
    forsendelse id, eksternReferanse, latest status and time, error,
    documents' SHA-256, when its last attempt began, and how an unknown
    outcome was settled (settled: mottatt, ikke_mottatt or uavklart; when;
    the ids found; why). Text (tab-separated, a header line first), --csv or
    --jsonl. Reading stops quietly when the reader does (| head)."""
    from svarut import batch as b
    from svarut.batch.runner import REPORT_FIELDS

    journal = _journal_of(manifest, journal_target)
    if as_json:
        click.echo("--json is deprecated (it prints JSON Lines): use --jsonl", err=True)
    if (as_jsonl or as_json) and as_csv:
        raise usage_error("give --jsonl or --csv, not both")
    records = b.report(journal)
    try:
        first = next(records, None)  # the journal is opened here: its errors come before any output
    except b.JournalError as exc:
        raise usage_error(str(exc)) from None
    with _quiet_on_closed_pipe():
        writer = csv.writer(sys.stdout) if as_csv else None
        if writer is not None:
            writer.writerow(REPORT_FIELDS)
        elif not (as_jsonl or as_json):
            click.echo("\t".join(REPORT_FIELDS))
        try:
            for record in itertools.chain([first] if first is not None else [], records):
                if as_jsonl or as_json:
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
            sys.stdout.flush()
        except b.JournalError as exc:
            raise usage_error(str(exc)) from None


@contextlib.contextmanager
def _quiet_on_closed_pipe() -> Iterator[None]:
    """Stop quietly, with 0, when stdout's reader has gone (``| head``): the
    usual way of a command whose output was cut short on purpose."""
    try:
        yield
    except OSError as exc:
        if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EPIPE:
            raise
        # Python flushes stdout again at exit and would complain: point it at nothing first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        sys.exit(0)
