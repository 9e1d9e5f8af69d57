"""The documentation site seen in a real browser (issue 23, `make docs-check`).

The site is built (or taken from ``SVARUT_DOCS_SITE``, a site `make docs`
already built), served by a real HTTP server on 127.0.0.1, and opened in
headless Chromium (Debian's ``chromium``): screenshots of the start page, the
API reference page of ``SvarUtClient`` and the batch guide must be real
1280x900 images with something on them; the sidebar navigation of the start
page must lead to pages that exist; and the search page must list results
once its JavaScript ran.

The screenshots go to ``SVARUT_DOCS_SCREENSHOTS`` (`make docs-check`:
``site/screenshots/``) so a person can look at them, else to a temporary
folder. Without ``chromium`` the tests skip, and fail in CI (``CI`` set).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WIDTH, HEIGHT = 1280, 900
CHROMIUM_TIMEOUT = 60


# --- the browser ---------------------------------------------------------------


def require_chromium() -> str:
    """Debian's ``chromium``, or skip where it is not installed; in CI (``.ci/run``
    installs it) its absence fails."""
    found = shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_chromium(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a fresh profile, no proxy, nothing from the network but 127.0.0.1."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-proxy-server",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=CHROMIUM_TIMEOUT,
        )
    return result


def screenshot(chromium: str, url: str, path: Path) -> Path:
    path.unlink(missing_ok=True)
    result = run_chromium(
        chromium,
        f"--screenshot={path}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--virtual-time-budget=3000",
        url,
    )
    assert result.returncode == 0 and path.is_file(), f"no screenshot of {url}:\n{result.stderr[-2000:]}"
    return path


def dump_dom(chromium: str, url: str) -> str:
    """The page's DOM after its scripts ran."""
    result = run_chromium(chromium, "--virtual-time-budget=5000", "--dump-dom", url)
    assert result.returncode == 0 and "<html" in result.stdout, f"no DOM of {url}:\n{result.stderr[-2000:]}"
    return result.stdout


# --- the images ------------------------------------------------------------------


def png_rows(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the (filtered) scanlines of a PNG, read from its chunks."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        crc = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc, f"{path.name}: bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0, f"{path.name}: unexpected PNG format (depth {depth}, interlace {interlace})"
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    assert len(raw) == stride * height, f"{path.name}: {len(raw)} bytes of pixels for {width}x{height}"
    return width, height, [raw[i : i + stride] for i in range(0, len(raw), stride)]


def distinct_rows(path: Path) -> int:
    """How many different scanlines the image has: 1 or 2 for a blank page, hundreds for text."""
    width, height, rows = png_rows(path)
    assert (width, height) == (WIDTH, HEIGHT), f"{path.name} is {width}x{height}, not {WIDTH}x{HEIGHT}"
    return len(set(rows))


# --- the pages ---------------------------------------------------------------------


# Elements without an end tag in HTML.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Links(HTMLParser):
    """The ``href`` of every ``<a>`` inside the first element with the given class (or id)."""

    def __init__(self, *, cls: str | None = None, id: str | None = None) -> None:
        super().__init__()
        self.cls, self.id = cls, id
        self.depth = 0  # > 0 while inside the container
        self.hrefs: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done or tag in VOID:
            return
        a = dict(attrs)
        if self.depth:
            self.depth += 1
            if tag == "a" and a.get("href"):
                self.hrefs.append(a["href"] or "")
        elif (self.cls and self.cls in (a.get("class") or "").split()) or (self.id and a.get("id") == self.id):
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and not self.done and tag not in VOID:
            self.depth -= 1
            self.done = self.depth == 0


def links_in(page: str, **where: str) -> list[str]:
    parser = Links(**where)
    parser.feed(page)
    return parser.hrefs


def fetch(url: str) -> int:
    """The HTTP status of ``url``, straight to the local server (no proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def site(chromium: str, docs_site: Path) -> Path:
    """The built site (the session's one build, or ``SVARUT_DOCS_SITE`` from `make docs`)."""
    return docs_site


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    """The site served over HTTP on 127.0.0.1 (a free port), from a background thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def client_page(site: Path) -> str:
    """The reference page that documents ``SvarUtClient``, relative to the site."""
    pages = [p for p in sorted(site.rglob("*.html")) if 'id="svarut.SvarUtClient"' in p.read_text(errors="replace")]
    assert pages, "no page of the site documents svarut.SvarUtClient"
    return pages[0].relative_to(site).as_posix()


@pytest.fixture(scope="module")
def shots(
    chromium: str, site: Path, base_url: str, client_page: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The screenshots, taken side by side: the three pages, and a blank page to compare them with."""
    folder = Path(os.environ.get("SVARUT_DOCS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    blank_dir = tmp_path_factory.mktemp("blank")
    (blank_dir / "blank.html").write_text("<!doctype html><html><body></body></html>")
    targets = {
        "start": (base_url, folder / "start.png"),
        # The page from its top: with a #fragment, headless --screenshot renders the scrolled page
        # with a blank band above it (Chromium 156).
        "client": (f"{base_url}{client_page}", folder / "api-svarutclient.png"),
        "batch": (f"{base_url}batch.html", folder / "batch-guide.png"),
        "blank": ((blank_dir / "blank.html").as_uri(), blank_dir / "blank.png"),
    }
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        futures = {name: pool.submit(screenshot, chromium, url, path) for name, (url, path) in targets.items()}
        return {name: future.result() for name, future in futures.items()}


# --- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["start", "client", "batch"])
def test_screenshot_is_a_real_page_not_a_blank_one(shots: dict[str, Path], page: str) -> None:
    blank_rows, rows = distinct_rows(shots["blank"]), distinct_rows(shots[page])
    assert blank_rows <= 3, f"the blank reference render has {blank_rows} different rows"
    # Text, headings and the sidebar: most of the 900 rows differ from one another.
    assert rows >= 150, f"{shots[page].name}: only {rows} different rows of {HEIGHT}: a blank or near-blank page"
    assert shots[page].stat().st_size > 5 * shots["blank"].stat().st_size, (
        f"{shots[page].name} is as small as a blank page"
    )


def test_start_page_navigation_leads_to_pages_that_exist(chromium: str, base_url: str, client_page: str) -> None:
    dom = dump_dom(chromium, base_url)
    assert "fiks-svarut" in dom
    hrefs = links_in(dom, cls="sidebar-tree")
    targets = sorted({urllib.parse.urldefrag(urllib.parse.urljoin(base_url, h)).url for h in hrefs})
    assert f"{base_url}batch.html" in targets and f"{base_url}{client_page}" in targets, targets
    assert len(targets) >= 10, f"the sidebar links only {targets}"
    broken = {url: status for url in targets if (status := fetch(url)) != 200}
    assert not broken, f"sidebar links that do not load: {broken}"


def test_search_lists_results_after_its_javascript_ran(chromium: str, base_url: str) -> None:
    dom = dump_dom(chromium, f"{base_url}search.html?q=avklar_utfall")
    hrefs = links_in(dom, id="search-results")
    assert hrefs, "the search page shows no results for avklar_utfall (did its JavaScript run?)"
    pages = sorted({urllib.parse.urldefrag(urllib.parse.urljoin(f"{base_url}search.html", h)).url for h in hrefs})
    broken = {url: status for url in pages if (status := fetch(url)) != 200}
    assert not broken, f"search results that do not load: {broken}"
    assert any(re.search(r"/(batch|unknown-outcomes|reference/svarut)\.html", url) for url in pages), pages
