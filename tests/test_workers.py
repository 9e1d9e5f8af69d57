"""The async client's worker threads (svarut/runtime/workers.py): jobs run in
the submitting task's context, results and errors come back, a cancelled wait
is abandoned at once, and no thread is started on the event loop's thread
beyond the one starter (Thread.start waits for a GIL turn: 200 of them on the
loop stalled it)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import svarut
from svarut import models
from svarut.runtime.workers import WorkerThreads

KONTO = "7b4f3f2e-4a51-4f0c-9a70-1f9a1d2c3b4e"
PDF = b"%PDF-1.4\n" + b"x" * 2000
REQUEST = contextvars.ContextVar("REQUEST", default="none")


@pytest.fixture
def thread_starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Each Thread.start: (the starting thread's name, the new thread's name)."""
    starts: list[tuple[str, str]] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        starts.append((threading.current_thread().name, self.name))
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    yield starts


def test_jobs_run_in_the_callers_context_and_hand_back_results_and_errors() -> None:
    workers = WorkerThreads()

    def job(x: int) -> tuple[int, str, str]:
        return x * 2, REQUEST.get(), threading.current_thread().name

    def fails() -> None:
        raise ValueError("from the worker")

    async def main() -> None:
        REQUEST.set("brev-7")
        value, seen, name = await workers.run(job, 21)
        assert (value, seen) == (42, "brev-7") and name.startswith("svarut-send-")
        with pytest.raises(ValueError, match="from the worker"):
            await workers.run(fails)

    asyncio.run(main())
    workers.close()


def test_threads_are_started_off_the_event_loop_and_reused(thread_starts: list[tuple[str, str]]) -> None:
    workers = WorkerThreads()
    release = threading.Event()

    def job() -> str:
        release.wait(10)
        return threading.current_thread().name

    async def main() -> tuple[str, set[str], set[str]]:
        loop_thread = threading.current_thread().name
        tasks = [asyncio.ensure_future(workers.run(job)) for _ in range(40)]
        await asyncio.sleep(0.2)
        release.set()
        first = set(await asyncio.gather(*tasks))
        again = set(await asyncio.gather(*(workers.run(job) for _ in range(10))))
        return loop_thread, first, again

    loop_thread, first, again = asyncio.run(main())
    from_loop = [new for starter, new in thread_starts if starter == loop_thread]
    assert from_loop == ["svarut-send-starter"]  # the one the loop starts itself, once
    assert len(first) == 40  # 40 jobs waiting at once: 40 threads
    assert again <= first  # idle workers are reused
    workers.close()
    deadline = time.monotonic() + 5
    while any(t.name.startswith("svarut-send-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("svarut-send-")]


def test_a_cancelled_wait_is_abandoned_and_the_result_goes_nowhere() -> None:
    workers = WorkerThreads()
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def job() -> str:
        started.set()
        release.wait(10)
        finished.set()
        return "late"

    async def main() -> None:
        task = asyncio.ensure_future(workers.run(job))
        while not started.is_set():
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        while not finished.is_set():
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the worker's answer reaches the loop, and is dropped

    asyncio.run(main())
    workers.close()


def test_a_closed_pool_takes_no_job() -> None:
    workers = WorkerThreads()
    workers.close()

    async def main() -> None:
        with pytest.raises(RuntimeError, match="closed"):
            await workers.run(lambda: None)

    asyncio.run(main())


@pytest.mark.anyio
async def test_the_async_clients_concurrent_sends_start_no_thread_on_the_loop(
    server: Any, thread_starts: list[tuple[str, str]]
) -> None:
    letter = models.PersonForsendelse(
        tittel="t",
        mottaker=models.Mottaker(navn="n", digital_id="01019010046"),
        dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
    )
    loop_thread = threading.current_thread().name
    async with svarut.AsyncSvarUtClient(base_url=server.base_url) as client:

        async def send() -> None:
            await client.send_til_person(konto_id=KONTO, forsendelse=letter, dokumenter={"a.pdf": PDF})

        for _ in range(3):  # the recording server's listen backlog is socketserver's 5
            await asyncio.gather(*(send() for _ in range(5)))
        assert client._twin is not None and client._twin.http is not None
    assert len(server.requests) == 15
    started_on_loop = [new for starter, new in thread_starts if starter == loop_thread]
    # The starter, and anyio's worker for making the httpx2 client (once, before any send).
    assert len(started_on_loop) <= 2 and "svarut-send-starter" in started_on_loop, started_on_loop


# --- the twin's gate: at most two threads run Python at once ----------------------------


def test_threads_take_turns_and_give_them_up_while_they_wait() -> None:
    from svarut.runtime.transport import CpuGate

    gate = CpuGate(2)
    lock = threading.Lock()
    running = waiting = 0
    most_running = most_waiting = 0

    def job() -> None:
        nonlocal running, waiting, most_running, most_waiting
        for _ in range(3):
            with lock:
                running += 1
                most_running = max(most_running, running)
            time.sleep(0.002)  # Python work, holding the turn
            with lock:
                running -= 1
            assert gate.give_up()  # as a stream does before it blocks on its socket
            with lock:
                waiting += 1
                most_waiting = max(most_waiting, waiting)
            time.sleep(0.05)
            with lock:
                waiting -= 1
            gate.take_back()

    threads = [threading.Thread(target=gate.holding(job)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most_running <= 2
    assert most_waiting > 2  # the waits overlapped: a waiting thread holds no turn
    assert not gate.give_up()  # this thread holds none


def test_the_twin_gates_only_what_cannot_deadlock() -> None:
    import httpx2

    from svarut.runtime.transport import SyncTwin

    unbounded = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    twin = SyncTwin(httpx2.AsyncClient(limits=unbounded), None)
    assert twin.gate is not None
    pool: Any = twin.http._transport._pool  # type: ignore[union-attr]
    assert type(pool._network_backend).__name__ == "_GatedBackend"
    twin.close()
    # A bounded pool (a thread holding a turn could wait for a connection) or HTTP/2 (shared connections): no gate.
    assert SyncTwin(httpx2.AsyncClient(), None).gate is None
    http2 = httpx2.AsyncClient(limits=unbounded)
    http2._transport._pool._http2 = True  # type: ignore[attr-defined]  # as http2=True makes it, without h2 installed
    assert SyncTwin(http2, None).gate is None
