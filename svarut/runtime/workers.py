"""Worker threads for the async client's sends, started off the event loop.

``anyio.to_thread`` and ``concurrent.futures`` start a new worker thread on
the thread that submits the work, and ``Thread.start`` waits until the new
thread runs, which takes a turn of the GIL. When 200 sends start at once
while other threads are busy, those waits stalled the event loop for up to
half a second. Here the event loop only puts the job in a queue; a thread
that is needed is started by a starter thread, and a thread idle for
:data:`IDLE_SECONDS` ends.

Each job runs in a copy of the submitting task's context (as anyio copies
it), so the caller's OpenTelemetry span is current in the thread too.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# How long an idle worker waits for another job before it ends.
IDLE_SECONDS = 10.0


class WorkerThreads:
    """A growing set of daemon threads running jobs submitted from an event loop.

    Daemon threads, so that a send abandoned by a cancelled task does not keep
    the interpreter from exiting; :meth:`close` ends the idle ones at once.
    """

    def __init__(self, *, name: str = "svarut-send") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # workers waiting for a job
        self._queued = 0  # jobs no worker has taken yet
        self._starting = 0  # workers asked for and not yet waiting
        self._threads = 0
        self._closed = False
        self._start_requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._starter: threading.Thread | None = None

    @property
    def threads(self) -> int:
        """How many worker threads there are now."""
        return self._threads

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread. If the waiting task is cancelled,
        the wait is abandoned at once; a job that had not started is skipped."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()

        def job() -> None:
            if future.cancelled():  # the caller has gone before the job started
                return
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # handed to the waiting task, whatever it is
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

        self._submit(job)
        return await future

    def _submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("Cannot send a request, as the client has been closed.")
            self._queued += 1
            start = self._queued > self._idle + self._starting
            if start:
                self._starting += 1
        self._jobs.put(job)
        if start:
            self._request_start()

    def _request_start(self) -> None:
        if self._starter is None:
            with self._lock:
                if self._starter is None:
                    # The only thread the event loop starts itself, once.
                    self._starter = threading.Thread(
                        target=self._start_workers, name=f"{self._name}-starter", daemon=True
                    )
                    self._starter.start()
        self._start_requests.put(True)

    def _start_workers(self) -> None:
        while self._start_requests.get():
            with self._lock:
                self._threads += 1
            threading.Thread(target=self._work, name=f"{self._name}-{self._threads}", daemon=True).start()

    def _work(self) -> None:
        with self._lock:
            self._starting -= 1
            self._idle += 1
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queued > 0:  # a job arrived as the wait ended: take it
                        continue
                    self._idle -= 1
                    self._threads -= 1
                return
            if job is None:
                with self._lock:
                    self._idle -= 1
                    self._threads -= 1
                return
            with self._lock:
                self._queued -= 1
                self._idle -= 1
            try:
                job()
            finally:
                with self._lock:
                    self._idle += 1

    def close(self) -> None:
        """End the idle workers and the starter; busy ones end after their job."""
        with self._lock:
            self._closed = True
            threads = self._threads + self._starting
        for _ in range(threads):
            self._jobs.put(None)
        if self._starter is not None:
            self._start_requests.put(False)


def _settle(future: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
