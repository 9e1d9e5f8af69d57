"""The simulator's read-only HTML page: every forsendelse received (with its
eksternReferanse, its documents as links and its status history), and the
requests it turned away (400/401/403, with their error). Every value is
passed through :func:`html.escape`, since titles, names and filenames come
from clients.

The documents are served as received (ciphertext for a kryptert forsendelse)
at ``/simulator/forsendelser/{id}/dokumenter/{n}`` (n from 1), streamed from
disk.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from html import escape
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote
from uuid import UUID

from svarut.runtime.client import EKSTERN_REFERANSE_KEY
from svarut.simulator.records import ReceivedDocument, ReceivedForsendelse

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["REJECTED_STATUSES", "document_at", "document_url", "render_page", "send_document"]

#: The answers listed as rejected requests.
REJECTED_STATUSES = frozenset({400, 401, 403})
_DOCUMENT_PATH = re.compile(r"^/simulator/forsendelser/(?P<id>[0-9a-fA-F-]{36})/dokumenter/(?P<n>[1-9][0-9]*)$")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2rem; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
code, .mono { font-family: ui-monospace, monospace; font-size: .9em; }
ol { margin: 0; padding-left: 1.2rem; }
.muted { color: #777; }
"""


class _Request(Protocol):
    """What the page shows of a request the simulator answered (``intake.RequestRecord``)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def at(self) -> datetime: ...
    @property
    def error(self) -> str | None: ...


def document_url(record: ReceivedForsendelse, n: int) -> str:
    """Where the page links document ``n`` (from 1) of ``record``."""
    return f"/simulator/forsendelser/{record.id}/dokumenter/{n}"


def document_at(path: str, records: Sequence[ReceivedForsendelse]) -> ReceivedDocument | None:
    """The document a :func:`document_url` path names, or None."""
    match = _DOCUMENT_PATH.match(path)
    if match is None:
        return None
    wanted, n = UUID(match["id"]), int(match["n"])
    for record in records:
        if record.id == wanted and n <= len(record.documents):
            return record.documents[n - 1]
    return None


def send_document(handler: BaseHTTPRequestHandler, document: ReceivedDocument) -> None:
    """Answer with ``document`` as received, streamed from disk."""
    handler.send_response(200)
    handler.send_header("Content-Type", document.mime_type or "application/octet-stream")
    handler.send_header("Content-Length", str(document.size))
    handler.send_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(document.filnavn, safe='')}")
    handler.end_headers()
    with document.path.open("rb") as f:
        shutil.copyfileobj(f, handler.wfile, 1024 * 1024)


def _documents(record: ReceivedForsendelse) -> str:
    items = []
    for n, doc in enumerate(record.documents, start=1):
        detail = f"{doc.size} bytes, sha256 {doc.sha256[:16]}…"
        if doc.plaintext_sha256 is not None:
            detail += f"; decrypted {doc.plaintext_size} bytes, sha256 {doc.plaintext_sha256[:16]}…"
        kind = escape(doc.mime_type or "?")
        link = f"<a href='{escape(document_url(record, n))}'>{escape(doc.filnavn)}</a>"
        items.append(f"<li>{link} <span class='muted'>({kind}; {escape(detail)})</span></li>")
    return f"<ol>{''.join(items)}</ol>"


def _history(record: ReceivedForsendelse) -> str:
    steps = "".join(
        f"<li>{escape(str(change.status))} <span class='muted'>{escape(change.at.isoformat(timespec='milliseconds'))}"
        "</span></li>"
        for change in record.history
    )
    return f"<ol>{steps}</ol>"


def _rejected(requests: Sequence[_Request]) -> str:
    rows = "".join(
        "<tr>"
        f"<td class='mono'>{escape(r.at.isoformat(timespec='milliseconds'))}</td>"
        f"<td class='mono'>{escape(r.method)} {escape(r.path)}</td>"
        f"<td>{r.status}</td>"
        f"<td>{escape(r.error or '')}</td>"
        "</tr>"
        for r in reversed(requests)
        if r.status in REJECTED_STATUSES
    )
    if not rows:
        rows = "<tr><td colspan='4' class='muted'>None.</td></tr>"
    return (
        "<h2>Rejected requests</h2><table><thead><tr><th>time</th><th>request</th><th>status</th><th>error</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def render_page(
    *,
    records: Sequence[ReceivedForsendelse],
    base_url: str,
    requests: Sequence[_Request] = (),
    refresh_seconds: int = 2,
) -> bytes:
    """The page listing ``records`` and the rejected ``requests``, newest
    first; it reloads every ``refresh_seconds``."""
    rows = "".join(
        "<tr>"
        f"<td class='mono'>{escape(str(r.id))}<br><span class='muted'>konto {escape(str(r.konto_id))}</span></td>"
        f"<td>{escape(r.channel)}{' 🔒' if r.kryptert else ''}</td>"
        f"<td>{escape(r.tittel)}</td>"
        f"<td class='mono'>{escape(str(r.metadata.get(EKSTERN_REFERANSE_KEY) or '—'))}</td>"
        f"<td>{escape(r.mottaker)}</td>"
        f"<td>{_documents(r)}</td>"
        f"<td>{_history(r)}</td>"
        "</tr>"
        for r in reversed(records)
    )
    if not rows:
        rows = "<tr><td colspan='7' class='muted'>No forsendelser yet.</td></tr>"
    html = (
        "<!doctype html><html lang='no'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{int(refresh_seconds)}'>"
        f"<title>SvarUt simulator</title><style>{_STYLE}</style></head><body>"
        f"<h1>SvarUt simulator</h1><p>API: <code>{escape(base_url)}</code> · {len(records)} forsendelse(r) · "
        "<a href='/simulator/forsendelser'>JSON</a></p>"
        "<table><thead><tr><th>id</th><th>kanal</th><th>tittel</th>"
        f"<th>{EKSTERN_REFERANSE_KEY}</th><th>mottaker</th>"
        f"<th>dokumenter</th><th>statushistorikk</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{_rejected(requests)}</body></html>"
    )
    return html.encode("utf-8")
