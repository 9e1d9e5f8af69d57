"""Batch sending: thousands of letters from a manifest, with a durable journal,
so that a crash at any point loses none and sends none twice.

>>> import svarut, svarut.batch
>>> with svarut.SvarUtClient.from_env() as client:  # doctest: +SKIP
...     problems = svarut.batch.check("brev.jsonl", client=client)
...     summary = svarut.batch.run(client, "brev.jsonl", konto_id=konto_id, concurrency=8)
...     settled = svarut.batch.settle(client, journal="brev.jsonl.journal.sqlite")
...     svarut.batch.status(client, journal="brev.jsonl.journal.sqlite")
...     rows = list(svarut.batch.report("brev.jsonl.journal.sqlite"))

``await svarut.batch.arun(async_client, ...)`` is :func:`run` for the async
client (:func:`asettle` for :func:`settle`). The manifest format is in
:mod:`svarut.batch.manifest`, the journal and its states in
:mod:`svarut.batch.journal` (its backends side by side in
:mod:`svarut.batch._journals`: SQLite, and PostgreSQL for several workers),
the loops in :mod:`svarut.batch.runner`, settling unknown
outcomes by asking SvarUt in :mod:`svarut.batch.settle`; the README's "Batch
sending" says what each choice risks.
"""

from svarut.batch.journal import (
    DUPLICATE_CONFIRMED,
    REFUSED,
    SENDING,
    SENT,
    SKIPPED,
    STATES,
    UNKNOWN,
    WAITING,
    Journal,
    JournalError,
    open_journal,
)
from svarut.batch.manifest import BatchProblem
from svarut.batch.runner import (
    BatchInterruptedError,
    BatchStoppedError,
    ManifestInvalidError,
    Progress,
    ReportRow,
    Summary,
    arun,
    asettle,
    check,
    default_journal,
    report,
    run,
    settle,
    status,
)
from svarut.batch.settle import Settled, SettleSummary

__all__ = [
    "DUPLICATE_CONFIRMED",
    "REFUSED",
    "SENDING",
    "SENT",
    "SKIPPED",
    "STATES",
    "UNKNOWN",
    "WAITING",
    "BatchInterruptedError",
    "BatchProblem",
    "BatchStoppedError",
    "Journal",
    "JournalError",
    "ManifestInvalidError",
    "Progress",
    "ReportRow",
    "SettleSummary",
    "Settled",
    "Summary",
    "arun",
    "asettle",
    "check",
    "default_journal",
    "open_journal",
    "report",
    "run",
    "settle",
    "status",
]
