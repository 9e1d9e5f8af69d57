"""Shared helpers for the generator and spec-lock tests: the official specs,
a tiny real HTTP server on 127.0.0.1, a strict multipart parser, and the CLI."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from generator import specs as _specs
from generator.refs import bundle, documents_of

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "specs" / "lock.json"
GENERATED = ROOT / "svarut" / "generated"
SEND = "forsendelse-send-api-v3.json"
STATUS = "forsendelse-status-api-v3.json"
LOOKUP = "forsendelse-eksternref-api-v2.json"
REF = "#/components/schemas/"

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


# --- specs -------------------------------------------------------------------

# Found exactly as the generator finds them (SVARUT_SPECS_DIR, ../shared/specs
# and the folders below it, else the download pinned to the locked commit), and
# verified against the lock; with them, the documents they reference by URL.
_RAW = _specs.load_locked()
_REFERENCES = _specs.read_references()
_DOCUMENTS = _specs.load_references()
#: Every locked file (specs and referenced documents) by file name.
_LOCKED_FILES = {**_RAW, **{r.file: _DOCUMENTS[r.published_url] for r in _REFERENCES}}


def _specs_directory() -> Path:
    """A directory holding every locked file, for the tests and the generator
    subprocesses that read them from disk."""
    explicit = os.environ.get("SVARUT_SPECS_DIR")
    shared = _specs.SHARED_SPECS
    below = sorted(p for p in shared.glob("**/") if p != shared) if shared.is_dir() else []
    for candidate in (Path(explicit) if explicit else None, shared, *below):
        if candidate and all(_read(candidate / name) == data for name, data in _LOCKED_FILES.items()):
            return candidate
    # No one folder holds them all (a download, or the locked files spread over ../shared/specs):
    # keep one copy for this checkout.
    cache = ROOT / ".pytest_cache" / "svarut-specs"
    cache.mkdir(parents=True, exist_ok=True)
    for name, data in _LOCKED_FILES.items():
        (cache / name).write_bytes(data)
    return cache


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _history_directory() -> Path:
    """Every upstream version of the specs: beside the locked ones (``<specs>/history``),
    the folder the locked ones are a version in (``history/17-…``), or ``../shared/specs/history``."""
    for candidate in (OFFICIAL_SPECS / "history", OFFICIAL_SPECS.parent, _specs.SHARED_SPECS / "history"):
        if (candidate / "README.md").is_file() and any(candidate.glob("[0-9][0-9]-*")):
            return candidate
    return OFFICIAL_SPECS / "history"


OFFICIAL_SPECS = _specs_directory()
#: Every upstream version of the specs (``../shared/specs/history``), where it is at hand.
HISTORY = _history_directory()


def require_history() -> Path:
    """:data:`HISTORY`, or skip the test where the specs came without it (a
    download); in CI, where ``../shared`` is always laid out, its absence fails."""
    if not HISTORY.is_dir():
        message = f"the upstream spec history is not at {HISTORY}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return HISTORY


def specs_in(folder: Path) -> dict[str, Any]:
    """The specs in ``folder`` (one upstream version), as the generator sees them:
    a document the others reference by URL (``fiks-common.json``) resolved into
    them, not a spec of its own."""
    parsed = {p.name: json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))}
    urls = {url.rsplit("/", 1)[-1]: url for url in documents_of(parsed)}
    documents = {url: parsed.pop(name) for name, url in urls.items() if name in parsed}
    return bundle(parsed, documents)


def locked_documents() -> dict[str, bytes]:
    """The locked documents the specs reference by URL, by file name."""
    return {r.file: _DOCUMENTS[r.published_url] for r in _REFERENCES}


#: Every locked spec file, by name (the send, status and eksternRef lookup specs today).
SPEC_FILES = tuple(_RAW)


def official_raw() -> dict[str, bytes]:
    return dict(_RAW)


# As the generator sees them: the documents they reference by URL resolved into them.
_PARSED = bundle(
    {name: json.loads(data) for name, data in official_raw().items()},
    {url: json.loads(data) for url, data in _DOCUMENTS.items()},
)


def official_specs() -> dict[str, Any]:
    """A fresh deep copy of the parsed official specs (file name -> JSON), with
    the documents they reference by URL resolved into them (:func:`generator.refs.bundle`)."""
    return copy.deepcopy(_PARSED)


def dump(spec: Any) -> bytes:
    return json.dumps(spec, indent=2, ensure_ascii=False).encode()


def write_specs(directory: Path, specs: Mapping[str, Any], raw: Mapping[str, bytes] | None = None) -> Path:
    """Write parsed specs (re-serialized) and/or raw bytes into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        (directory / name).write_bytes(dump(spec))
    for name, data in (raw or {}).items():
        (directory / name).write_bytes(data)
    return directory


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def schemas(specs: Mapping[str, Any], file: str = SEND) -> dict[str, Any]:
    result: dict[str, Any] = specs[file]["components"]["schemas"]
    return result


def error_response() -> dict[str, Any]:
    return {"description": "Feil", "content": {"application/json": {"schema": ref("ErrorMessage")}}}


def konto_parameter() -> dict[str, Any]:
    return {"name": "kontoId", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


# --- a real HTTP server on 127.0.0.1 ------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# (status, content type, body)
Reply = tuple[int, str, bytes]
Responder = Callable[[Recorded], Reply]


def _read_chunked(rfile: Any) -> bytes:
    out = b""
    while True:
        size = int(rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return out
        out += rfile.read(size)
        rfile.readline()


@dataclass
class LocalServer:
    """A threaded HTTP/1.0 server answering every request with ``respond``
    and recording what it received."""

    respond: Responder
    requests: list[Recorded] = field(default_factory=list)

    def __enter__(self) -> LocalServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = self.headers.get("Content-Length")
                if length is not None:
                    body = self.rfile.read(int(length))
                elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = _read_chunked(self.rfile)
                else:
                    body = b""
                record = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                owner.requests.append(record)
                status, content_type, data = owner.respond(record)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"


def static_files(files: Mapping[str, bytes]) -> Responder:
    """Serve ``files`` (URL path -> bytes) with GET; anything else is a 404."""

    def respond(request: Recorded) -> Reply:
        if request.method == "GET" and request.path in files:
            return 200, "application/json", files[request.path]
        return 404, "text/plain", b"not found"

    return respond


def json_reply(value: Any, status: int = 200) -> Responder:
    return lambda request: (status, "application/json", json.dumps(value).encode())


# --- multipart ------------------------------------------------------------------


@dataclass(frozen=True)
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def parse_multipart(body: bytes, content_type: str) -> list[FormPart]:
    """A strict parser for the body the runtime's encoder writes."""
    match = re.fullmatch(r'multipart/form-data; boundary="?([^";]+)"?', content_type)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    assert body.startswith(delimiter + b"\r\n"), body[:80]
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n"), body[-80:]
    chunks = body.split(delimiter)
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n"
    parts = []
    for chunk in chunks[1:-1]:
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n")
        head, sep, content = chunk[2:-2].partition(b"\r\n\r\n")
        assert sep, chunk[:200]
        headers = {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = dict(re.findall(r'(\w+)="([^"]*)"', headers["content-disposition"]))
        parts.append(FormPart(params["name"], params.get("filename"), headers.get("content-type"), content))
    return parts


# --- the CLI ----------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """The environment for a CLI run: no proxies, and the specs the tests found
    (``--specs-dir`` still overrides them)."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["SVARUT_SPECS_DIR"] = str(OFFICIAL_SPECS)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        cwd=ROOT,
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def iter_files(directory: Path) -> Iterator[Path]:
    """The regular files directly in ``directory`` (no caches)."""
    return (p for p in sorted(directory.iterdir()) if p.is_file())
