"""Shared fixtures: a real HTTP server that records what the client sends, and
``api``, which makes one call through the sync or the async client.

``server`` listens on 127.0.0.1 (a free port) in a background thread. It keeps
every complete request in ``server.requests`` (method, path, headers, raw body,
read by ``Content-Length`` or ``Transfer-Encoding: chunked``) and answers with
the next reply queued by ``server.reply(...)``; with none queued it asks
``server.responder`` (a callable from the request to a ``Reply``, run in the
handler thread, so it may block) if set, and otherwise answers as SvarUt
would: a fresh ``{"id": ...}`` for a send, one ``MOTTATT`` status per
asked-for id for ``.../status/sok``, and nothing found for an eksternRef
lookup. Every reply closes its connection, so no handler thread outlives the
test.

The session finds the locked specs once, as the generator does
(``generator_helpers``); where they did not come from ``../shared/specs`` (a
fresh clone), the generator run in-process is pointed at the same copy.
"""

from __future__ import annotations

import collections
import json
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import svarut
from generator.specs import LOCK_PATH


@dataclass(frozen=True)
class Recorded:
    """One complete request as it arrived."""

    method: str
    path: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a client that stalls mid-request cannot hang the teardown
    server: RecordingServer

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):  # the client gave up mid-body: nothing complete arrived
            self.close_connection = True
            return
        request = Recorded(self.command, self.path, self.headers, body)
        self.server.requests.append(request)
        reply = self.server.next_reply(request)
        if reply.delay and self.server.stopping.wait(reply.delay):
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client stopped waiting (timeouts)
            self.close_connection = True

    do_GET = do_PUT = do_DELETE = do_POST

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline(1024).split(b";")[0], 16):
                chunk = self.rfile.read(size)
                if len(chunk) != size or self.rfile.read(2) != b"\r\n":
                    raise ValueError("incomplete chunk")
                chunks.append(chunk)
            while (line := self.rfile.readline(1024)) != b"\r\n":  # trailers
                if not line:
                    raise ValueError("incomplete trailer")
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if len(body) != length:
            raise ValueError("incomplete body")
        return body

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RecordingServer(ThreadingHTTPServer):
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self.responder: Callable[[Recorded], Reply] | None = None
        self._replies: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"

    def reply(
        self, status: int = 200, body: Any = b"", *, headers: dict[str, str] | None = None, delay: float = 0.0
    ) -> None:
        """Queue the answer to the next request; ``body`` may be bytes or anything JSON."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self._lock:
            self._replies.append(Reply(status, raw, headers or {}, delay))

    def next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self.responder is not None:
            return self.responder(request)
        if request.method == "GET" and "eksternRef=" in request.path:  # the eksternRef lookup: nothing found
            key = "forsendelser" if request.path.split("?")[0].endswith("/metadata") else "forsendelseIds"
            return Reply(body=json.dumps({key: []}).encode())
        if request.path.endswith("/status/sok"):
            ids = json.loads(request.body)["id"]
            statuser = [{"id": i, "sisteStatusEndring": "2024-05-02T10:00:00+02:00", "status": "MOTTATT"} for i in ids]
            return Reply(body=json.dumps({"statuser": statuser}).encode())
        return Reply(body=json.dumps({"id": str(uuid.uuid4())}).encode())


@pytest.fixture
def server():
    srv = RecordingServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        thread.join()
        srv.server_close()


@dataclass
class Api:
    """Calls one client method on a fresh sync or async client (``kind``)."""

    kind: str
    base_url: str

    async def __call__(self, method: str, /, *, client_options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        # These tests are about the wire, so they send what the pre-send rules
        # would refuse (quotes in filenames, say); the rules have their own tests.
        options = {"base_url": self.base_url, "validate": False, **(client_options or {})}
        if self.kind == "sync":
            with svarut.SvarUtClient(**options) as client:
                return getattr(client, method)(**kwargs)
        async with svarut.AsyncSvarUtClient(**options) as client:
            return await getattr(client, method)(**kwargs)


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, server: RecordingServer) -> Api:
    return Api(request.param, server.base_url)


@pytest.fixture(scope="session", autouse=True)
def _specs_found_once() -> Any:
    from generator_helpers import OFFICIAL_SPECS

    from generator import specs

    with pytest.MonkeyPatch.context() as patch:
        if OFFICIAL_SPECS != specs.SHARED_SPECS:
            patch.setattr(specs, "SHARED_SPECS", OFFICIAL_SPECS)
        yield


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variables and no SVARUT_SPECS_DIR, for tests that run the generator."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("SVARUT_SPECS_DIR", raising=False)


@pytest.fixture
def tmp_lock(tmp_path: Path) -> Path:
    """A copy of specs/lock.json that a test may relock."""
    path = tmp_path / "lock.json"
    shutil.copyfile(LOCK_PATH, path)
    return path


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built once a session with ``sphinx-build -W``
    (warnings are errors), or the one ``SVARUT_DOCS_SITE`` names (``make docs-check``)."""
    import os
    import subprocess
    import sys

    given = os.environ.get("SVARUT_DOCS_SITE")
    if given:
        site = Path(given).resolve()
        assert (site / "index.html").is_file(), f"SVARUT_DOCS_SITE={given} holds no built site"
        return site
    pytest.importorskip("sphinx", reason="sphinx is not installed (the docs extra; dev includes it)")
    root = Path(__file__).resolve().parent.parent
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(root / "docs"), str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stdout}\n{result.stderr}"
    return site
