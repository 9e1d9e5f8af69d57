"""The public clients: the generated operations plus a few hand-written
conveniences that name specific operations (which the generator may not)."""

from __future__ import annotations

from uuid import UUID

from svarut.generated import AsyncOperations, SyncOperations, models
from svarut.runtime.client import NOT_GIVEN, NotGiven, TimeoutTypes
from svarut.runtime.errors import ForsendelseNotFoundError


def _only(statuser: list[models.ForsendelseStatus], forsendelse_id: UUID | str) -> models.ForsendelseStatus:
    wanted = UUID(str(forsendelse_id))
    for status in statuser:
        if status.id == wanted:
            return status
    raise ForsendelseNotFoundError(f"SvarUt returned no status for forsendelse {wanted}")


class SvarUtClient(SyncOperations):
    """Synchronous SvarUt client.

    >>> client = SvarUtClient(base_url="https://test.svarut.ks.no/api", auth=...)  # doctest: +SKIP

    Use it as a context manager, or call :meth:`close`, to release connections.
    """

    def hent_status(
        self, *, konto_id: UUID | str, forsendelse_id: UUID | str, timeout: TimeoutTypes | NotGiven = NOT_GIVEN
    ) -> models.ForsendelseStatus:
        """The status of one forsendelse; raises ForsendelseNotFoundError if SvarUt has none."""
        return _only(self.hent_statuser(konto_id=konto_id, id=[forsendelse_id], timeout=timeout), forsendelse_id)


class AsyncSvarUtClient(AsyncOperations):
    """Asynchronous SvarUt client; the same methods as :class:`SvarUtClient`, awaited."""

    async def hent_status(
        self, *, konto_id: UUID | str, forsendelse_id: UUID | str, timeout: TimeoutTypes | NotGiven = NOT_GIVEN
    ) -> models.ForsendelseStatus:
        """The status of one forsendelse; raises ForsendelseNotFoundError if SvarUt has none."""
        return _only(await self.hent_statuser(konto_id=konto_id, id=[forsendelse_id], timeout=timeout), forsendelse_id)
