"""Reading a response body without trusting its size: the chunks up to a
limit, and whether the body went past it. One decision for every bounded read
(the client's responses, SvarUt's certificate), in a sync and an async twin.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable

__all__ = ["aread_bounded", "read_bounded"]


class _Budget:
    """Counts the bytes read so far against ``limit``."""

    __slots__ = ("left", "over")

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.over = False

    def admits(self, chunk: bytes) -> bool:
        """Whether ``chunk`` still fits; once one does not, nothing more is read."""
        self.left -= len(chunk)
        self.over = self.left < 0
        return not self.over


def read_bounded(chunks: Iterable[bytes], limit: int) -> tuple[bytes, bool]:
    """The chunks joined, stopping before the first that would take them past
    ``limit`` bytes, and whether one did (the body is then cut short)."""
    budget = _Budget(limit)
    kept = []
    for chunk in chunks:
        if not budget.admits(chunk):
            break
        kept.append(chunk)
    return b"".join(kept), budget.over


async def aread_bounded(chunks: AsyncIterable[bytes], limit: int) -> tuple[bytes, bool]:
    """:func:`read_bounded` over an async iterable."""
    budget = _Budget(limit)
    kept = []
    async for chunk in chunks:
        if not budget.admits(chunk):
            break
        kept.append(chunk)
    return b"".join(kept), budget.over
