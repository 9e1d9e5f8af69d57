"""What a batch run decides per letter, shared by the sync loop
(:mod:`svarut.batch._threads`) and the async one (:mod:`svarut.batch._tasks`):
checking and loading the manifest into the journal, the send's arguments from
a journal row, which state an outcome leaves the letter in, what to claim
next, the pace, and the counts. Nothing here waits on SvarUt; the journal is
blocking (SQLite or psycopg), so the async loop calls this in worker threads.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from svarut.batch import journal as j
from svarut.batch.manifest import (
    REF_KEY,
    UNIQUE_RULE,
    BatchProblem,
    Fingerprint,
    check_letters,
    documents_fingerprint,
    identify,
    lines,
    manifest_sha256,
    operations,
    read_letter,
)
from svarut.batch.settle import SettleSummary
from svarut.runtime import errors
from svarut.runtime.client import EKSTERN_REFERANSE_KEY, BaseClient
from svarut.runtime.files import Source
from svarut.runtime.multipart import Document

if TYPE_CHECKING:
    from svarut.runtime.request_types import Prepared

log = logging.getLogger("svarut.batch")

DEFAULT_LEASE = 60.0
# Back-off after a send that surely did not arrive (connection refused, 429/503): doubles per attempt.
RETRY_BASE = 1.0
RETRY_MAX = 60.0
# How long a worker with nothing to claim waits before looking again.
IDLE_POLL = 0.5
# How often a worker sharing the journal looks for letters a dead worker left sending.
RECOVER_EVERY = 1.0
# Letters claimed at once, per sending thread or task: fewer claim transactions.
CLAIM_PER_SENDER = 16
# Attempts in a row that failed the same hopeless way (connection refused, no such host), with
# nothing answered in this run, after which the run stops rather than backing off for seconds.
STOP_AFTER_ALIKE = 3


class ManifestInvalidError(errors.SvarUtError, ValueError):
    """The manifest does not check; nothing was sent. ``problems`` lists them all."""

    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"the manifest has {len(problems)} problem(s), nothing was sent: {shown}{more}")


class LineRefused(Exception):
    """A claimed letter's manifest line no longer checks."""


class BatchStoppedError(errors.SvarUtError):
    """No letter can be sent until something is fixed: SvarUt or Maskinporten
    refused the integration (401/403), or every attempt of the run failed the
    same way (connection refused, no such host). The letters not sent are
    ``waiting``; ``summary`` has the journal's counts (None if unknown)."""

    summary: Summary | None = None


class BatchInterruptedError(KeyboardInterrupt):
    """Ctrl-C stopped a run (a :class:`KeyboardInterrupt`, so code that
    catches those still does).

    After the first one, no new letter was started and the sends on the wire
    were answered and recorded: ``summary`` has the journal's counts and
    ``left_sending`` is 0. After a second one, the run did not wait for them:
    ``summary`` is None and ``left_sending`` says how many letters are left
    ``sending`` (the next run makes them ``unknown`` and settles them), or
    None when that is not known (interrupted as the senders started, or as
    the run ended)."""

    def __init__(self, *, summary: Summary | None, left_sending: int | None) -> None:
        super().__init__()
        self.summary = summary
        self.left_sending = left_sending


@dataclass
class Progress:
    """Counts for the progress line: what this run did, and what is left."""

    sent: int = 0
    refused: int = 0
    unknown: int = 0
    retried: int = 0
    left: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Letters finished a second (sent, refused or unknown) since the run began."""
        elapsed = time.monotonic() - self.started
        return (self.sent + self.refused + self.unknown) / elapsed if elapsed > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.rate:.1f} letters/s, sent {self.sent}, refused {self.refused}, "
            f"unknown {self.unknown}, left {self.left}"
        )


@dataclass(frozen=True)
class Summary:
    """The journal's counts after a run: letters per state.

    ``counts`` maps each state (:data:`~svarut.batch.STATES`) to its number of
    letters, ``skipped_problems`` lists the problems of the lines a
    ``skip_invalid`` run left out, and ``settled`` what settling did first."""

    counts: dict[str, int]
    skipped_problems: list[BatchProblem] = field(default_factory=list)
    #: What settling the unknown letters did before sending (None: not asked to).
    settled: SettleSummary | None = None
    #: The last failure that left a letter waiting to be tried again (None: there was none).
    last_error: str | None = None

    @property
    def done(self) -> bool:
        """Whether every letter is sent (or confirmed to have arrived already):
        nothing waiting, refused, unknown or skipped."""
        return all(n == 0 for s, n in self.counts.items() if s not in (j.SENT, j.DUPLICATE_CONFIRMED))


class _Now:
    """No fingerprint given: :meth:`Batch._checked` takes it itself."""


_NOW = _Now()


class Pacer:
    """At most ``rate`` sends a second, shared by all workers."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def delay(self) -> float:
        if not self._interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
            return slot - now


class Batch:
    """One run of a manifest against a journal; everything but the I/O loops."""

    def __init__(
        self,
        client: BaseClient,
        manifest: Path,
        *,
        journal: j.Journal,
        konto_id: UUID | str,
        lease: float,
        progress: Callable[[Progress], None] | None,
    ) -> None:
        self.client = client
        self.manifest = manifest
        self.base_dir = manifest.parent
        self.journal = journal
        self.konto_id = str(konto_id)
        self.lease = lease
        self.progress = Progress()
        self._on_progress = progress
        self._progress_lock = threading.Lock()
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.single_runner = False
        self._last_recover = 0.0
        # The async loop's letters handed to senders and not yet done.
        self.inflight = 0
        self.last_error: str | None = None
        # Whether any attempt of this run got anything but a hopeless failure, and how many of
        # those came, all alike (their kind): see _hopeless.
        self._answered = False
        self._alike: tuple[str, str] | None = None
        self._alike_count = 0

    # --- before sending -----------------------------------------------------------

    def prepare(self, *, skip_invalid: bool, single_runner: bool) -> list[BatchProblem]:
        """Check the whole manifest, then record its letters; raises
        :class:`ManifestInvalidError` (nothing recorded, nothing sent) if it
        does not check, unless ``skip_invalid``. A manifest the journal holds
        already, checked with no problems (the same bytes, the same konto, its
        documents unchanged), is neither checked nor loaded again. Letters a
        dead runner left sending become unknown, to be settled next."""
        self.single_runner = single_runner
        self.journal.setup(konto_id=self.konto_id)
        digest = manifest_sha256(self.manifest)
        if self._checked(digest):
            problems: list[BatchProblem] = []
        else:
            # While another worker holds the lock (checking and loading, as likely as not, this very
            # manifest), this one takes the documents' fingerprint it will need then, rather than after.
            taken: list[str | None] = []
            with self.journal.loading(while_waiting=lambda: taken.append(documents_fingerprint(self.manifest))):
                # A worker that checked and loaded it while this one waited for the lock.
                checked = self._checked(digest, documents=taken[0] if taken else _NOW)
                problems = [] if checked else self._check_and_load(digest, skip_invalid=skip_invalid)
        if single_runner:
            self._recovered(self.journal.recover(all_sending=True))
            self.journal.release_all()
        return problems

    def _checked(self, digest: str, *, documents: str | _Now | None = _NOW) -> bool:
        """Whether the journal holds this manifest (``digest``) already,
        checked with no problems and loaded (and no load begun since), its
        documents as they were then (``documents``: their fingerprint, taken
        now if not given): checking and loading it again would find nothing
        and change nothing.

        Safe to skip: the letters are in the journal as this manifest's lines
        (same bytes, same line numbers, the journal's run id: loading them
        again would change no row), and the check is not the last word on a
        letter: at its own send, :meth:`ready` parses its line (the journal's
        copy) again and the client's pre-send rules check it and read its
        documents again (``prepare``, before the intent's commit is waited
        for), so a document changed after the first worker's check is
        refused then, before a byte of it is sent. ``skip_invalid`` does not matter: a manifest with
        no problems skips nothing either way, and one recorded with problems
        is always checked again. A document missing or written since the
        check (size or modification time) makes the whole manifest checked
        again, so such a worker refuses the manifest as before rather than
        refusing its letters one by one in a journal other workers share.

        A fingerprint taken while waiting for another worker's check is as
        good as one taken after it: each document's entry in the recorded one
        was taken as that check opened it, so a write before either is seen
        by both or makes them differ, and a write after both is one the
        check did not see either way (the send's own rules are the last word
        on it, as above)."""
        recorded = self.journal.checked_manifest(digest, konto_id=self.konto_id)
        if recorded is None or recorded[0] != 0:
            return False
        if isinstance(documents, _Now):
            documents = documents_fingerprint(self.manifest)
        if documents is None or recorded[1] != documents:
            return False
        log.info("manifest %s already checked and loaded into the journal: not checked again", digest[:12])
        return True

    def _check_and_load(self, digest: str, *, skip_invalid: bool) -> list[BatchProblem]:
        """Check the manifest and load its letters, then record it: under the
        journal's load lock, so that no other worker's load comes between."""
        # Taken by the check as it opens each document: one written after that changes the one recorded.
        documents = Fingerprint()
        problems: list[BatchProblem] = []
        for letter, _ in check_letters(
            self.manifest,
            client=self.client,
            konto_id=self.konto_id,
            run_id=self.journal.run_id,
            fingerprint=documents,
        ):
            problems += letter.problems
        if problems and not skip_invalid:
            raise ManifestInvalidError(problems)
        bad: dict[int, list[str]] = {}
        for p in problems:
            bad.setdefault(p.line, []).append(str(p))
        # A ref's later lines are not recorded: the letter under that ref is its first line's.
        repeated = {p.line for p in problems if p.field == REF_KEY and p.rule == UNIQUE_RULE}
        self.journal.forget_manifests()
        self.journal.load(self._new_letters(bad, repeated))
        # Recorded only once the load has committed, and only for the bytes checked and loaded.
        if manifest_sha256(self.manifest) == digest:
            # With problems, the fingerprint is of the lines that checked; it is never compared then.
            self.journal.record_manifest(
                digest, konto_id=self.konto_id, documents=documents.hexdigest(), problems=len(problems)
            )
        return problems

    def queue(self, *, resend_unknown: bool) -> None:
        """After settling: the letters this run sends. ``resend_unknown``
        adds the letters still unknown (those SvarUt could not settle)."""
        self.journal.retry_waiting()
        if resend_unknown:
            log.info("resending %d unknown letter(s)", self.journal.requeue_unknown())
        counts = self.journal.counts()
        self.progress.left = counts[j.WAITING] + counts[j.SENDING]

    def _new_letters(self, bad: dict[int, list[str]], repeated: set[int]) -> Iterator[j.NewLetter]:
        # A second, light pass (the check above ran the rules), so no letter is held in memory.
        for line, raw in lines(self.manifest):
            if line in repeated:
                continue
            found = identify(raw, run_id=self.journal.run_id)
            if found is None:
                continue  # nothing to record it under; the check reported it
            ref, kind, ekstern = found
            skipped = "; ".join(bad[line]) if line in bad else None
            yield j.NewLetter(ref, line, kind, raw, ekstern, skipped)

    def _recovered(self, rows: Iterable[j.Row]) -> None:
        """Add the documents' hashes to letters found ``sending`` after a
        crash, so a person can look them up."""
        for row in rows:
            self._count("unknown")
            try:
                _, arguments = read_letter(row.line, row.letter, base_dir=self.base_dir, run_id=self.journal.run_id)
            except Exception as exc:  # the hashes are a help, not a must
                log.debug("no hashes for %s: %s", row.ref, exc)
                continue
            if arguments is None:
                continue
            files = arguments["files"]
            paths = files if isinstance(files, dict) else {files.name: files}
            try:
                # Hashed as the client hashes the documents of a send whose outcome is unknown.
                hashes = {name: Document(name, "", Source(p, label=name)).sha256() for name, p in paths.items()}
                self.journal.set_hashes(row.ref, hashes)
            except (OSError, errors.SourceChangedError):
                continue

    # --- per letter ---------------------------------------------------------------

    def ready(self, row: j.Row, client: BaseClient, intent: j.Intent) -> Prepared[Any] | None:
        """Build a claimed letter's send (the client's checks, its body) while
        its ``intent`` is being committed, then wait for that: the send to go
        out, or None when it must not (the claim was lost, or the letter cannot
        be sent: recorded, and nothing went out)."""
        try:
            letter, arguments = read_letter(
                row.line, row.letter, base_dir=self.base_dir, run_id=self.journal.run_id, open_files=False
            )
            if arguments is None or letter.kind is None:
                # The manifest line no longer checks (edited since the letter was first recorded).
                raise LineRefused("; ".join(str(p) for p in letter.problems))
            prepared = operations()[letter.kind].prepare(
                client,
                konto_id=self.konto_id,
                forsendelse=arguments["forsendelse"],
                dokumenter=arguments["files"],
                kryptering=arguments["kryptering"],
            )
            sent = prepared.request.send.metadata.get(EKSTERN_REFERANSE_KEY) if prepared.request.send else None
            if sent != row.ekstern_referanse:
                # Settling looks the letter up by the journal's reference: it must be the one sent.
                raise LineRefused(
                    f"the send carries eksternReferanse {sent!r}, the journal {row.ekstern_referanse!r}; not sent"
                )
        except Exception as exc:
            if intent.wait():
                self.outcome(row, None, exc, sent_nothing=True)
            return None
        return prepared if intent.wait() else None

    def outcome(
        self,
        row: j.Row,
        result: UUID | None,
        exc: BaseException | None,
        *,
        sent_nothing: bool = False,
        on_the_wire: float = 0.0,
    ) -> None:
        """Record what a send did (after the last byte and the answer; with
        ``sent_nothing``, a send that failed before its first byte;
        ``on_the_wire``: seconds since the send was handed to the client). The
        answer is not waited for: it goes into the commit of this sender's
        next intent, or its flush before it waits for anything else (lost in
        a crash, the letter is found ``sending`` and becomes unknown: never
        sent twice)."""
        self._note(exc)
        if exc is None:
            self.journal.finish(row.ref, j.SENT, forsendelse_id=str(result), durable=False)
            self._count("sent")
        elif isinstance(exc, errors.DuplicateForsendelseError) and row.resend:
            # SvarUt refuses an identical repeat: the first attempt arrived.
            self.journal.finish(row.ref, j.DUPLICATE_CONFIRMED, error=str(exc), durable=False)
            self._count("sent")
        elif isinstance(exc, errors.SendOutcomeUnknownError):
            self.journal.finish(
                row.ref,
                j.UNKNOWN,
                error=str(exc),
                dokumenter_sha256=exc.dokumenter_sha256,
                attempt_age=_attempt_age(exc, on_the_wire),
                durable=False,
            )
            self._count("unknown")
        elif isinstance(
            exc,
            (
                errors.AuthenticationError,
                errors.PermissionDeniedError,
                errors.MaskinportenTokenError,
                errors.KeystoreError,
            ),
        ):
            # The integration is refused, not the letter: it did not arrive; stop the run.
            self.journal.finish(row.ref, j.WAITING, error=str(exc), retry_in=0.0, durable=False)
            who = "Maskinporten" if isinstance(exc, errors.MaskinportenError) else "SvarUt"
            if isinstance(exc, errors.KeystoreError):
                who = "the keystore"
            self._stop_run(BatchStoppedError(f"{who} refused the integration: {exc}"))
        elif isinstance(
            exc, (errors.APIConnectionError, errors.MaskinportenConnectionError, errors.KrypteringError)
        ) or (isinstance(exc, errors.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)):
            # The body never arrived whole (no connection, no token, no certificate to encrypt
            # for), or SvarUt turned it away: safe to send again later.
            delay = min(RETRY_BASE * 2**row.attempts, RETRY_MAX)
            self.journal.finish(row.ref, j.WAITING, error=str(exc), retry_in=delay, durable=False)
            self._count("retried")
            if (count := self._hopeless(exc)) is not None:
                self._stop_run(
                    BatchStoppedError(
                        f"{_who(exc)} cannot be reached: {count} attempts in a row failed the same way, "
                        f"so the run stopped; the last: {exc}"
                    )
                )
        elif isinstance(
            exc, (errors.ForsendelseValidationError, errors.APIStatusError, errors.SourceChangedError, LineRefused)
        ):
            self.journal.finish(row.ref, j.REFUSED, error=str(exc), durable=False)
            self._count("refused")
        elif isinstance(exc, OSError) or sent_nothing:
            # A document could not be read, or the send failed before its first byte: SvarUt cannot have it.
            self.journal.finish(row.ref, j.REFUSED, error=f"{type(exc).__name__}: {exc}", durable=False)
            self._count("refused")
        else:
            # Anything else: we cannot tell how far the send got, nor when its last attempt began (the
            # journal takes the time it records this, never too early).
            self.journal.finish(row.ref, j.UNKNOWN, error=f"{type(exc).__name__}: {exc}", durable=False)
            self._count("unknown")

    def _note(self, exc: BaseException | None) -> None:
        """Remember the last failure worth showing with "run again", and
        whether this run got anything but a hopeless failure."""
        with self._progress_lock:
            if exc is not None:
                plain = isinstance(exc, errors.SvarUtError)
                self.last_error = str(exc) if plain else f"{type(exc).__name__}: {exc}"
            if _unreachable(exc) is None:
                self._answered = True

    def _hopeless(self, exc: BaseException) -> int | None:
        """The number of attempts that failed alike, when every attempt of
        this run so far failed as ``exc`` did, hopelessly (a refused
        connection, a host that does not exist), :data:`STOP_AFTER_ALIKE`
        times or more: retrying for seconds cannot help. None otherwise."""
        cause = _unreachable(exc)
        with self._progress_lock:
            if cause is None or self._answered:
                return None
            kind = (type(exc).__name__, cause)
            if self._alike not in (None, kind):
                self._answered = True  # failing in more than one way: perhaps not hopeless
                return None
            self._alike, self._alike_count = kind, self._alike_count + 1
            return self._alike_count if self._alike_count >= STOP_AFTER_ALIKE else None

    def _stop_run(self, error: BatchStoppedError) -> None:
        self.fatal = self.fatal or error
        self.stop.set()

    def _count(self, what: str) -> None:
        with self._progress_lock:
            setattr(self.progress, what, getattr(self.progress, what) + 1)
            if what != "retried":
                self.progress.left = max(0, self.progress.left - 1)
            if self._on_progress is not None:
                self._on_progress(self.progress)

    def next_claim(self, limit: int) -> list[j.Row] | float | None:
        """Letters to send, or seconds to wait before asking again (letters
        are held by other workers or backing off), or None: nothing left."""
        if self.stop.is_set():
            return None
        if not self.single_runner and time.monotonic() - self._last_recover > RECOVER_EVERY:
            # Letters a dead worker was sending become unknown once its lease has expired.
            self._recovered(self.journal.recover(all_sending=False))
            self._last_recover = time.monotonic()
        rows = self.journal.claim(limit, lease=self.lease)
        if rows:
            return sorted(rows, key=lambda r: r.line)
        count, soonest = self.journal.pending()
        if count == 0:
            return None
        wait = IDLE_POLL if soonest is None else max(0.05, min(soonest - time.time(), IDLE_POLL * 4))
        return min(wait, self.lease / 4)

    def summary(self, skipped: list[BatchProblem], settled: SettleSummary | None) -> Summary:
        return Summary(self.journal.counts(), skipped, settled, self.last_error)


def _who(exc: BaseException) -> str:
    return "Maskinporten" if isinstance(exc, errors.MaskinportenError) else "SvarUt"


def _unreachable(exc: BaseException | None) -> str | None:
    """Why a connection could not be made, when no retry soon can help:
    "connection refused" or "no such host" (by the causes chained to
    ``exc``); None for anything else (a timeout, a reset: load may pass)."""
    if not isinstance(exc, (errors.APIConnectionError, errors.MaskinportenConnectionError)) or isinstance(
        exc, errors.APITimeoutError
    ):
        return None
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "no such host"
        cause = cause.__cause__ or cause.__context__
    return None


def _attempt_age(exc: errors.SendOutcomeUnknownError, on_the_wire: float) -> float:
    """How long ago the attempt that may have arrived began: by the client's
    wall clock (it may have tried more than once), but never longer than the
    send has been on the wire by the monotonic clock, so a wall clock that
    jumped cannot make the attempt look older than it is. Unknown: 0 (now)."""
    if exc.sendt is None:
        return 0.0
    began = exc.sendt if exc.sendt.tzinfo is not None else exc.sendt.replace(tzinfo=UTC)
    return max(0.0, min((datetime.now(UTC) - began).total_seconds(), on_the_wire))
