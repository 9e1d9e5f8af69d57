"""The progress line of ``svarut send`` on stderr: bytes, rate and ETA while
the documents upload, then how long SvarUt has been working on the answer
(that can take minutes).

It is shown when stderr is a terminal and the documents total more than
:data:`THRESHOLD` bytes; ``SVARUT_PROGRESS=1`` forces it on (any size, any
stderr) and ``SVARUT_PROGRESS=0`` off. Documents are read through
:class:`ProgressReader`, which counts each byte once by the furthest position
reached (the client sniffs a file's start, and may read it again after a
token refresh).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

__all__ = ["THRESHOLD", "ProgressLine", "ProgressReader", "wanted"]

THRESHOLD = 4 * 1024 * 1024
# Redraw at most this often while uploading, and this often while waiting.
_UPLOAD_REDRAW = 0.2
_WAIT_REDRAW = 1.0
ENV = "SVARUT_PROGRESS"


def wanted(total: int, stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether to show progress for an upload of ``total`` bytes to ``stream``."""
    forced = environ.get(ENV, "").strip().lower()
    if forced in {"1", "true", "yes", "on"}:
        return True
    if forced in {"0", "false", "no", "off"}:
        return False
    return total > THRESHOLD and stream.isatty()


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


class ProgressLine:
    """One line on ``stream``, rewritten in place: uploading, then waiting."""

    def __init__(self, total: int, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._drawn_at = -1.0
        self._uploaded_at: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._width = 0

    def _draw(self, text: str) -> None:
        with self._lock:
            padding = " " * max(0, self._width - len(text))
            self._stream.write("\r" + text + padding)
            self._stream.flush()
            self._width = len(text)

    def update(self, n: int) -> None:
        """``n`` more bytes were read for sending."""
        self.done += n
        now = self._clock()
        finished = self.done >= self.total
        if not finished and now - self._drawn_at < _UPLOAD_REDRAW:
            return
        self._drawn_at = now
        elapsed = max(now - self._started, 1e-6)
        rate = self.done / elapsed
        percent = 100 * self.done / self.total if self.total else 100.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        self._draw(
            f"uploading {_size(self.done)} / {_size(self.total)} ({percent:.0f}%)  {_size(rate)}/s  ETA {_clock(eta)}"
        )
        if finished and self._uploaded_at is None:
            self._uploaded_at = now
            self._draw_waiting()
            self._ticker = threading.Thread(target=self._tick, name="svarut-progress", daemon=True)
            self._ticker.start()

    def _draw_waiting(self) -> None:
        assert self._uploaded_at is not None
        upload = self._uploaded_at - self._started
        waited = self._clock() - self._uploaded_at
        self._draw(f"uploaded {_size(self.total)} in {_clock(upload)}; waiting for SvarUt {_clock(waited)}")

    def _tick(self) -> None:
        while not self._stop.wait(_WAIT_REDRAW):
            self._draw_waiting()

    def close(self) -> None:
        """The answer came (or the send failed): end the line."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._width:
            with self._lock:
                self._stream.write("\n")
                self._stream.flush()


class ProgressReader(io.RawIOBase):
    """A file that reports to a :class:`ProgressLine` as it is read, by the
    furthest position reached."""

    def __init__(self, raw: io.FileIO, line: ProgressLine | Any) -> None:
        super().__init__()
        self._raw = raw
        self._line = line
        self._furthest = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        n = self._raw.readinto(buffer)
        position = self._raw.tell()
        if position > self._furthest:
            self._line.update(position - self._furthest)
            self._furthest = position
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()
        super().close()
