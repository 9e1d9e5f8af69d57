"""The streams of a multipart body (:class:`~svarut.runtime.multipart.MultipartBody`)
as httpx2 sends them: a sync and an async ``httpx2`` byte stream that count
the bytes handed to the transport and say whether it took the last one.

Apart from :mod:`svarut.runtime.multipart` because they subclass httpx2's
streams: this module is imported (and httpx2 with it) when the first
request is made, not when a client is made or a letter is built.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import httpx2

from svarut.runtime.multipart import PREFETCH_SIZE, BodyStream, MultipartBody, Progress, StreamAborted


class SyncStream(BodyStream, httpx2.SyncByteStream):
    """Streams the body; ``completed`` turns true only once the transport has
    taken the last byte (the generator resumes after the final yield), so a
    failure with ``completed`` false means SvarUt cannot have the whole body.
    ``sent`` counts the bytes handed to the transport.

    ``abort``, when given, is checked before each write: a worker thread
    sending for a cancelled task stops there (see :class:`StreamAborted`)."""

    def __init__(self, body: MultipartBody, abort: threading.Event | None = None) -> None:
        self._body = body
        self._abort = abort
        self.progress = Progress()
        length = body.content_length
        self._ready = body.join() if length is not None and length <= PREFETCH_SIZE else None

    def __iter__(self) -> Iterator[bytes]:
        progress = self.progress
        progress.completed, progress.sent = False, 0
        abort = self._abort
        # The prefetched body serves the first pass only; a replay (after a 401) reads the sources again.
        ready, self._ready = self._ready, None
        for chunk in (ready,) if ready is not None else self._body:
            if abort is not None and abort.is_set():
                raise StreamAborted("the send was cancelled while its body was being written")
            progress.sent += len(chunk)
            yield chunk
        progress.completed = True


class AsyncStream(BodyStream, httpx2.AsyncByteStream):
    def __init__(self, body: MultipartBody) -> None:
        self._body = body
        self.progress = Progress()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        progress = self.progress
        progress.completed, progress.sent = False, 0
        async for chunk in self._body:
            progress.sent += len(chunk)
            yield chunk
        progress.completed = True
