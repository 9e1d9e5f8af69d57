"""The async loop of a batch run (:func:`arun`): ``concurrency`` sender
tasks fed by one claiming task, with the blocking journal called in worker
threads."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from svarut.batch import journal as j
from svarut.batch._letter import (
    CLAIM_PER_SENDER,
    DEFAULT_LEASE,
    Batch,
    BatchStoppedError,
    Pacer,
    Progress,
    Summary,
)
from svarut.batch.settle import Settled, asettle_journal, settle_window
from svarut.runtime import instrumentation
from svarut.runtime.client import AsyncAPIClient
from svarut.utfall import AVKLARING_VINDU


async def arun(
    client: AsyncAPIClient,
    manifest: str | Path,
    *,
    konto_id: UUID | str,
    journal: str | Path | j.Journal | None = None,
    concurrency: int = 4,
    rate: float | None = None,
    resend_unknown: bool = False,
    skip_invalid: bool = False,
    lease: float = DEFAULT_LEASE,
    progress: Callable[[Progress], None] | None = None,
    settle_after: timedelta | float | None = AVKLARING_VINDU,
    on_settled: Callable[[Settled], None] | None = None,
) -> Summary:
    """:func:`run` with an :class:`~svarut.AsyncSvarUtClient`: ``concurrency`` tasks.

    The arguments, the result and the errors are those of :func:`run`; the
    journal is worked in a thread, so the event loop is not blocked.

    >>> summary = await svarut.batch.arun(async_client, "brev.jsonl", konto_id=konto_id)  # doctest: +SKIP
    """
    manifest = Path(manifest)
    window = None if settle_after is None else settle_window(settle_after)
    jn = await anyio.to_thread.run_sync(j.open_given, journal, manifest)
    try:
        batch = Batch(client, manifest, journal=jn, konto_id=konto_id, lease=lease, progress=progress)
        skipped = await anyio.to_thread.run_sync(
            lambda: batch.prepare(skip_invalid=skip_invalid, single_runner=jn.single_runner)
        )
        settled = None if window is None else await asettle_journal(client, jn, window=window, on_settled=on_settled)
        await anyio.to_thread.run_sync(lambda: batch.queue(resend_unknown=resend_unknown))
        jn.gather(max(1, concurrency))
        pacer = Pacer(rate)
        send, receive = anyio.create_memory_object_stream[j.Row](max(1, concurrency))

        async def sender(rows: MemoryObjectReceiveStream[j.Row]) -> None:
            async with rows:
                async for row in rows:
                    try:
                        await _asend(batch, client, row, pacer)
                        if rows.statistics().current_buffer_used == 0:
                            # No next intent to commit them with: as in the sync loop.
                            await anyio.to_thread.run_sync(batch.journal.flush)
                    finally:
                        batch.inflight -= 1  # on the event loop: no lock needed

        async def feeder() -> None:
            async with send:
                while True:
                    found = await anyio.to_thread.run_sync(
                        batch.next_claim, min(256, max(1, concurrency) * CLAIM_PER_SENDER)
                    )
                    if found is None:
                        if batch.inflight == 0:
                            return
                        await anyio.sleep(0.02)  # our letters on the wire may come back to be tried again
                        continue
                    if isinstance(found, float):
                        await anyio.sleep(found)
                        continue
                    for row in found:
                        batch.inflight += 1
                        await send.send(row)

        async def renewer() -> None:
            # This worker's leases live as long as it does, however long a send takes.
            while True:
                await anyio.sleep(batch.lease / 3)
                await anyio.to_thread.run_sync(lambda: batch.journal.renew(lease=batch.lease))

        try:
            with instrumentation.batch_run(batch, konto_id=konto_id):
                async with anyio.create_task_group() as outer:
                    outer.start_soon(renewer)
                    async with anyio.create_task_group() as tg:
                        for _ in range(max(1, concurrency)):
                            tg.start_soon(sender, receive.clone())
                        receive.close()
                        tg.start_soon(feeder)
                    outer.cancel_scope.cancel()
        finally:
            batch.stop.set()
            await anyio.to_thread.run_sync(batch.journal.release)
        if batch.fatal is not None:
            if isinstance(batch.fatal, BatchStoppedError):
                batch.fatal.summary = await anyio.to_thread.run_sync(batch.summary, skipped, settled)
            raise batch.fatal
        return await anyio.to_thread.run_sync(batch.summary, skipped, settled)
    finally:
        await anyio.to_thread.run_sync(jn.close)


async def _asend(batch: Batch, client: AsyncAPIClient, row: j.Row, pacer: Pacer) -> None:
    if batch.stop.is_set():
        return
    if delay := pacer.delay():
        await anyio.to_thread.run_sync(batch.journal.flush)
        await anyio.sleep(delay)
        if batch.stop.is_set():
            return  # stopped while this letter waited for its turn: it has not started
    with instrumentation.letter(batch, row.line, ekstern_referanse=row.ekstern_referanse):
        intent = batch.journal.announce(row.ref, lease=batch.lease)  # hands the intent to the writer; no I/O here
        prepared = await anyio.to_thread.run_sync(batch.ready, row, client, intent)
        if prepared is None:
            return
        began = time.monotonic()
        try:
            with batch.journal.on_the_wire():
                result = await client.send_prepared(prepared)
        except Exception as exc:
            failure, on_the_wire = exc, time.monotonic() - began
            await anyio.to_thread.run_sync(lambda: batch.outcome(row, None, failure, on_the_wire=on_the_wire))
        else:
            await anyio.to_thread.run_sync(batch.outcome, row, result, None)
