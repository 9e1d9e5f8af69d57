"""Issue 22, item 10: an async client says how it is to be used. A sync
``with`` is refused with "use `async with`", and a client that opened
connections and was never closed warns (ResourceWarning, naming it) when it
is collected, instead of leaking its sockets silently."""

from __future__ import annotations

import gc
import uuid
import warnings

import httpx2
import pytest
from conftest import RecordingServer

import svarut

pytestmark = pytest.mark.anyio


def test_a_sync_with_on_the_async_client_says_use_async_with() -> None:
    client = svarut.AsyncSvarUtClient(base_url="https://svarut.example/api")
    with (
        pytest.raises(TypeError, match=r"AsyncSvarUtClient is asynchronous: use `async with`, not `with`"),
        client,  # the refusal comes from entering it
    ):
        pass


async def test_an_opened_client_never_closed_warns_naming_it(server: RecordingServer) -> None:
    client = svarut.AsyncSvarUtClient(base_url=server.base_url)
    await client.hent_statuser(konto_id=uuid.uuid4(), ids=[uuid.uuid4()])
    with pytest.warns(
        ResourceWarning, match=rf"AsyncSvarUtClient\(base_url='{server.base_url}'\) was used and never closed"
    ):
        del client
        gc.collect()


async def test_no_warning_when_closed_never_opened_or_not_its_own_http_client(server: RecordingServer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        async with svarut.AsyncSvarUtClient(base_url=server.base_url) as closed:
            await closed.hent_statuser(konto_id=uuid.uuid4(), ids=[uuid.uuid4()])
        never_opened = svarut.AsyncSvarUtClient(base_url=server.base_url)
        async with httpx2.AsyncClient() as http:
            theirs = svarut.AsyncSvarUtClient(base_url=server.base_url, http_client=http)
            await theirs.hent_statuser(konto_id=uuid.uuid4(), ids=[uuid.uuid4()])
            del closed, never_opened, theirs
            gc.collect()
