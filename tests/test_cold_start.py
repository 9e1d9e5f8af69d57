"""A cold start pays for what it uses: ``import svarut``, making a client and
building a letter with ``svarut.models`` do not import httpx2 (nor httpcore2),
which the client imports when it makes its first request; and that first
request, made afterwards in the same interpreter, goes out as ever.

Each case runs in a fresh interpreter, since this one has httpx2 loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import RecordingServer

import svarut
from svarut.runtime import base_client, retry

ROOT = Path(__file__).resolve().parent.parent
HTTP_PACKAGES = ("httpx2", "httpcore2")


_PRELUDE = """
import json, sys
def http_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in {packages!r})
"""

_LETTER = """models.PersonForsendelse(
    tittel="Vedtak",
    mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
    dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
)
"""

_USABLE = (
    _PRELUDE
    + """
from svarut import AsyncSvarUtClient, SvarUtClient, models
sync_client = SvarUtClient(base_url={url!r}, environment="test")
async_client = AsyncSvarUtClient(base_url={url!r}, environment="test")
letter = """
    + _LETTER
    + """
loaded = {{"made": http_modules()}}
{send}
print(json.dumps(loaded))
"""
)

_SEND = """
import asyncio
documents = {"a.pdf": b"%PDF-1.7\\n% a letter\\n%%EOF\\n"}
konto_id = "c3a2e5a1-2b7e-4a56-9f0b-1f2d3c4b5a69"
with sync_client:
    loaded["sync_id"] = str(sync_client.send_til_person(konto_id=konto_id, forsendelse=letter, dokumenter=documents))
async def send_async():
    async with async_client:
        return await async_client.send_til_person(konto_id=konto_id, forsendelse=letter, dokumenter=documents)
loaded["async_id"] = str(asyncio.run(send_async()))
loaded["sent"] = http_modules()
"""


def _run(script: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_import_svarut_does_not_import_httpx2() -> None:
    script = _PRELUDE.format(packages=HTTP_PACKAGES) + "import svarut\nprint(json.dumps(http_modules()))"
    assert _run(script) == []


def test_a_client_and_a_letter_do_not_import_httpx2() -> None:
    script = _USABLE.format(packages=HTTP_PACKAGES, url="http://127.0.0.1:9/api", send="")
    assert _run(script)["made"] == []


def test_the_first_send_after_a_cold_start_goes_out(server: RecordingServer) -> None:
    script = _USABLE.format(packages=HTTP_PACKAGES, url=server.base_url, send=_SEND)
    loaded = _run(script)
    assert loaded["made"] == []
    assert "httpx2" in loaded["sent"]
    assert loaded["sync_id"] != loaded["async_id"]
    sends = [r for r in server.requests if r.method == "POST"]
    assert len(sends) == 2
    for request in sends:
        assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
        assert int(request.headers["Content-Length"]) == len(request.body)
        assert b"%PDF-1.7\r\n" not in request.body and b"%PDF-1.7\n% a letter\n%%EOF\n" in request.body


def test_the_default_timeouts_are_httpx2_timeouts() -> None:
    # Made on first read; the same objects every time, and a client's defaults are them.
    assert isinstance(svarut.DEFAULT_TIMEOUT, httpx2.Timeout)
    assert isinstance(svarut.DEFAULT_LOOKUP_TIMEOUT, httpx2.Timeout)
    assert svarut.DEFAULT_TIMEOUT is base_client.DEFAULT_TIMEOUT
    assert svarut.DEFAULT_TIMEOUT.as_dict() == {"connect": 10.0, "read": 960.0, "write": 960.0, "pool": 10.0}
    assert svarut.DEFAULT_LOOKUP_TIMEOUT.as_dict() == {"connect": 10.0, "read": 60.0, "write": 60.0, "pool": 10.0}
    with svarut.SvarUtClient(base_url="http://127.0.0.1:9/api") as client:
        assert client.timeout is svarut.DEFAULT_TIMEOUT
        assert client.lookup_timeout is svarut.DEFAULT_LOOKUP_TIMEOUT
    with svarut.SvarUtClient(base_url="http://127.0.0.1:9/api", timeout=5, lookup_timeout=None) as client:
        assert client.timeout == httpx2.Timeout(5)
        assert client.lookup_timeout == httpx2.Timeout(None)
    given = httpx2.Timeout(3.0, connect=1.0)
    with svarut.SvarUtClient(base_url="http://127.0.0.1:9/api", timeout=given) as client:
        assert client.timeout is given


def test_a_timeout_given_as_httpx2_takes_is_converted_when_the_client_is_made() -> None:
    phases = (1.0, 2.0, 3.0, 4.0)
    with svarut.SvarUtClient(base_url="http://127.0.0.1:9/api", timeout=phases) as client:  # type: ignore[arg-type]
        assert client._timeout == httpx2.Timeout(phases)
        assert client.timeout == httpx2.Timeout(phases)


def test_the_constants_made_on_first_read_are_still_there() -> None:
    not_sent = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.UnsupportedProtocol)
    assert not_sent == retry.NOT_SENT
    from svarut.runtime import multipart, streams

    assert multipart.SyncStream is streams.SyncStream and multipart.AsyncStream is streams.AsyncStream
    assert issubclass(streams.SyncStream, httpx2.SyncByteStream)
    assert issubclass(streams.AsyncStream, httpx2.AsyncByteStream)
    with pytest.raises(AttributeError):
        _ = base_client.NO_SUCH_NAME  # type: ignore[attr-defined]
