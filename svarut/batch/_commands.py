"""What the batch commands do besides sending: :func:`check` a manifest,
:func:`settle` (and :func:`asettle`) the unknown outcomes a journal holds,
follow the :func:`status` of the letters sent, and :func:`report` every
letter. None of them sends a letter."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from uuid import UUID

import anyio.to_thread

from svarut.batch import journal as j
from svarut.batch.manifest import BatchProblem, check_letters
from svarut.batch.settle import Settled, SettleSummary, asettle_journal, settle_journal, settle_window
from svarut.runtime.client import BaseClient
from svarut.utfall import AVKLARING_VINDU

if TYPE_CHECKING:
    from svarut._client import SvarUtClient

log = logging.getLogger("svarut.batch")


def check(
    manifest: str | Path, *, client: BaseClient | None = None, konto_id: UUID | str | None = None
) -> list[BatchProblem]:
    """Every problem of every line of ``manifest``, sending nothing. The
    pre-send rules are ``client``'s (default: a client for the production
    rules that never connects).

    Args:
        manifest: The manifest file (:mod:`svarut.batch.manifest`).
        client: The client whose pre-send rules apply; it is not called.
        konto_id: The konto to check the letters for (default: a placeholder).

    Returns:
        Each problem as a :class:`BatchProblem` (line, field, rule, message);
        empty when every line checks.

    Raises:
        OSError: The manifest cannot be read.

    >>> for problem in svarut.batch.check("brev.jsonl"):  # doctest: +SKIP
    ...     print(problem)
    """
    if client is None:
        from svarut._client import SvarUtClient

        client = SvarUtClient(base_url="https://svarut.invalid/api")
    problems: list[BatchProblem] = []
    for letter, _ in check_letters(Path(manifest), client=client, konto_id=konto_id or UUID(int=0)):
        problems += letter.problems
    return problems


def settle(
    client: SvarUtClient,
    *,
    journal: str | Path | j.Journal,
    settle_after: timedelta | float = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> SettleSummary:
    """Settle the letters ``journal`` holds as unknown, sending nothing: ask
    SvarUt for each by the eksternReferanse it was sent with
    (``client.avklar_utfall``, window ``settle_after``). Found once: sent,
    with SvarUt's id; not found although the attempt began longer ago than
    the window: waiting, and the next :func:`run` sends it again; anything
    else stays unknown, with what was found. Letters a runner that died left
    sending are unknown first (SQLite: every one, as this holds the journal;
    PostgreSQL: those whose lease has expired). See :mod:`svarut.batch.settle`.

    Args:
        client: A :class:`~svarut.SvarUtClient` for the konto of the journal.
        journal: The journal: a SQLite path, a ``postgresql://`` URL, or an
            open :class:`Journal` (left open).
        settle_after: The window, a timedelta or seconds (default
            :data:`svarut.utfall.AVKLARING_VINDU`).
        on_settled: Called with each :class:`Settled` letter.

    Returns:
        A :class:`SettleSummary`: what became of each letter asked about.

    Raises:
        JournalError: The journal does not exist, or another runner holds it.
        ValueError: ``settle_after`` is negative.

    A lookup that fails raises nothing: that letter stays unknown, and when
    the lookup itself is unavailable the summary's ``stopped`` says why.

    >>> settled = svarut.batch.settle(client, journal="brev.jsonl.journal.sqlite")  # doctest: +SKIP
    """
    window = settle_window(settle_after)
    if not isinstance(journal, j.Journal):
        j.must_exist(journal)
    jn = journal if isinstance(journal, j.Journal) else j.open_journal(journal)
    try:
        if not isinstance(journal, j.Journal):
            jn.open_existing()
        _recover_for_settling(jn)
        return settle_journal(client, jn, window=window, on_settled=on_settled)
    finally:
        if not isinstance(journal, j.Journal):
            jn.close()


async def asettle(
    client: Any,
    *,
    journal: str | Path | j.Journal,
    settle_after: timedelta | float = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> SettleSummary:
    """:func:`settle` with an :class:`~svarut.AsyncSvarUtClient`; the
    arguments, result and errors are :func:`settle`'s."""
    window = settle_window(settle_after)
    given = isinstance(journal, j.Journal)
    if not isinstance(journal, j.Journal):
        j.must_exist(journal)
    jn = journal if isinstance(journal, j.Journal) else await anyio.to_thread.run_sync(j.open_journal, journal)
    try:
        if not given:
            await anyio.to_thread.run_sync(jn.open_existing)
        await anyio.to_thread.run_sync(_recover_for_settling, jn)
        return await asettle_journal(client, jn, window=window, on_settled=on_settled)
    finally:
        if not given:
            await anyio.to_thread.run_sync(jn.close)


def _recover_for_settling(jn: j.Journal) -> None:
    # Only a journal held by this process alone may say that every letter sending was left by a dead runner.
    alone = jn.single_runner and jn.exclusive
    if recovered := jn.recover(all_sending=alone):
        log.info("%d letter(s) a runner left sending are unknown now", len(recovered))


def status(
    client: SvarUtClient,
    *,
    journal: str | Path | j.Journal,
    follow: bool = False,
    interval: float = 10.0,
    page: int = 1000,
    on_change: Callable[[j.Row, str, str], None] | None = None,
) -> dict[str, int]:
    """Fetch the status of every sent letter not yet in a terminal status,
    storing each change with its time; with ``follow``, repeat every
    ``interval`` seconds until all are terminal.

    Args:
        client: A :class:`~svarut.SvarUtClient` for the journal's konto.
        journal: The journal (a SQLite path, a ``postgresql://`` URL, or an
            open :class:`Journal`); read alongside a running batch.
        follow: Repeat until every sent letter is in a terminal status.
        interval: Seconds between rounds when following.
        page: Letters read from the journal at a time.
        on_change: Called with the journal row, the old and the new status of
            each letter whose status changed.

    Returns:
        The number of letters per latest status.

    Raises:
        JournalError: The journal does not exist, or nothing was sent with it.
        StatusSearchUnavailableError: The specs have no status search.
        APIError: A status request failed.

    >>> svarut.batch.status(client, journal="brev.jsonl.journal.sqlite")  # doctest: +SKIP
    {'LEST': 950, 'SENDT_PRINT': 50}
    """
    from svarut._client import TERMINAL_STATUSES

    terminal = set(TERMINAL_STATUSES)
    if not isinstance(journal, j.Journal):
        j.must_exist(journal)
    jn = journal if isinstance(journal, j.Journal) else j.open_journal(journal, exclusive=False)
    try:
        if not isinstance(journal, j.Journal):
            jn.open_existing()
        if jn.konto_id is None:
            raise j.JournalError("the journal has no konto yet: nothing was sent with it")
        while True:
            open_rows = 0
            for chunk in _chunks(
                (r for r in jn.rows(states=[j.SENT]) if r.forsendelse_id and r.status not in terminal), page
            ):
                found = client.hent_statuser(konto_id=jn.konto_id, ids=[r.forsendelse_id or "" for r in chunk])
                by_id = {str(s.id): s for s in found}
                for row in chunk:
                    s = by_id.get(row.forsendelse_id or "")
                    if s is None:
                        open_rows += 1
                        continue
                    value, when = str(s.status), s.siste_status_endring.isoformat()
                    if jn.record_status(row.ref, row.forsendelse_id or "", value, when) and on_change:
                        on_change(row, value, when)
                    if value not in terminal:
                        open_rows += 1
            if not follow or open_rows == 0:
                break
            time.sleep(interval)
        counts: dict[str, int] = {}
        for row in jn.rows(states=[j.SENT]):
            key = row.status or "(none yet)"
            counts[key] = counts.get(key, 0) + 1
        return counts
    finally:
        if not isinstance(journal, j.Journal):
            jn.close()


def _chunks(rows: Iterable[j.Row], size: int) -> Iterator[list[j.Row]]:
    chunk: list[j.Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


REPORT_FIELDS = (
    "ref",
    "state",
    "forsendelse_id",
    "ekstern_referanse",
    "status",
    "status_time",
    "error",
    "dokumenter_sha256",
    "attempt_started",
    "settled",
    "settled_at",
    "settled_found",
    "settled_reason",
)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


class ReportRow(TypedDict):
    """One letter of :func:`report`: the CSV columns and the JSON keys, in order."""

    ref: str
    state: str
    forsendelse_id: str | None
    ekstern_referanse: str | None
    status: str | None
    status_time: str | None
    error: str | None
    dokumenter_sha256: dict[str, str | None] | None
    attempt_started: str | None
    settled: str | None
    settled_at: str | None
    settled_found: list[str] | None
    settled_reason: str | None


def report(journal: str | Path | j.Journal) -> Iterator[ReportRow]:
    """One record per letter, in manifest order: ref, state, forsendelse id,
    eksternReferanse, latest status and its time, error, the documents'
    SHA-256 (for a letter whose outcome is unknown), when its last attempt
    began, and, for a letter whose outcome was unknown, how SvarUt settled
    it: ``settled`` (mottatt, ikke_mottatt, uavklart), ``settled_at``, the
    ids found (``settled_found``) and why (``settled_reason``). Times are ISO
    8601 in UTC.

    Args:
        journal: The journal (a SQLite path, a ``postgresql://`` URL, or an
            open :class:`Journal`); read without taking it over.

    Returns:
        An iterator of one :class:`ReportRow` per letter, read lazily.

    Raises:
        JournalError: The journal does not exist.

    >>> import csv, sys  # doctest: +SKIP
    >>> rows = list(svarut.batch.report("brev.jsonl.journal.sqlite"))  # doctest: +SKIP
    >>> csv.DictWriter(sys.stdout, fieldnames=rows[0]).writerows(rows)  # doctest: +SKIP
    """
    if not isinstance(journal, j.Journal):
        j.must_exist(journal)
    jn = journal if isinstance(journal, j.Journal) else j.open_journal(journal, exclusive=False)
    try:
        if not isinstance(journal, j.Journal):
            jn.open_existing()
        for row in jn.rows():
            yield {
                "ref": row.ref,
                "state": row.state,
                "forsendelse_id": row.forsendelse_id,
                "ekstern_referanse": row.ekstern_referanse,
                "status": row.status,
                "status_time": row.status_time,
                "error": row.error,
                "dokumenter_sha256": row.dokumenter_sha256,
                "attempt_started": _iso(row.attempt_started),
                "settled": row.settled,
                "settled_at": _iso(row.settled_at),
                "settled_found": row.settled_found,
                "settled_reason": row.settled_reason,
            }
    finally:
        if not isinstance(journal, j.Journal):
            jn.close()


def report_json_line(record: ReportRow) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)
