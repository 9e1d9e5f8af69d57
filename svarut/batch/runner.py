"""Running a batch: check the manifest, load it into the journal, settle the
letters earlier runs left unknown (:mod:`svarut.batch.settle`), send every
letter not yet sent (sync: threads; async: tasks), follow their statuses.

This module is the runner's face; each concern has its own module:

- :mod:`svarut.batch._letter`: what is decided per letter, without waiting
  on I/O, shared by both loops: the send's arguments from a journal row, and
  which state an outcome leaves the letter in;
- :mod:`svarut.batch._threads`: the sync loop, :func:`run`;
- :mod:`svarut.batch._tasks`: the async loop, :func:`arun`;
- :mod:`svarut.batch._commands`: :func:`check`, :func:`settle`,
  :func:`status` and :func:`report`, which send nothing.
"""

from svarut.batch._commands import (
    REPORT_FIELDS,
    ReportRow,
    asettle,
    check,
    report,
    report_json_line,
    settle,
    status,
)
from svarut.batch._letter import (
    CLAIM_PER_SENDER,
    DEFAULT_LEASE,
    IDLE_POLL,
    RECOVER_EVERY,
    RETRY_BASE,
    RETRY_MAX,
    STOP_AFTER_ALIKE,
    BatchInterruptedError,
    BatchStoppedError,
    ManifestInvalidError,
    Progress,
    Summary,
)
from svarut.batch._tasks import arun
from svarut.batch._threads import run
from svarut.batch.journal import default_journal

__all__ = [
    "CLAIM_PER_SENDER",
    "DEFAULT_LEASE",
    "IDLE_POLL",
    "RECOVER_EVERY",
    "REPORT_FIELDS",
    "RETRY_BASE",
    "RETRY_MAX",
    "STOP_AFTER_ALIKE",
    "BatchInterruptedError",
    "BatchStoppedError",
    "ManifestInvalidError",
    "Progress",
    "ReportRow",
    "Summary",
    "arun",
    "asettle",
    "check",
    "default_journal",
    "report",
    "report_json_line",
    "run",
    "settle",
    "status",
]
