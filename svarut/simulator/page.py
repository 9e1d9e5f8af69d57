"""The simulator's read-only HTML page: every forsendelse received, with its
documents and status history. Every value is passed through
:func:`html.escape`, since titles, names and filenames come from clients."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from svarut.simulator.records import ReceivedForsendelse

__all__ = ["render_page"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
code, .mono { font-family: ui-monospace, monospace; font-size: .9em; }
ol { margin: 0; padding-left: 1.2rem; }
.muted { color: #777; }
"""


def _documents(record: ReceivedForsendelse) -> str:
    items = []
    for doc in record.documents:
        detail = f"{doc.size} bytes, sha256 {doc.sha256[:16]}…"
        if doc.plaintext_sha256 is not None:
            detail += f"; decrypted {doc.plaintext_size} bytes, sha256 {doc.plaintext_sha256[:16]}…"
        kind = escape(doc.mime_type or "?")
        items.append(f"<li>{escape(doc.filnavn)} <span class='muted'>({kind}; {escape(detail)})</span></li>")
    return f"<ol>{''.join(items)}</ol>"


def _history(record: ReceivedForsendelse) -> str:
    steps = "".join(
        f"<li>{escape(str(change.status))} <span class='muted'>{escape(change.at.isoformat(timespec='milliseconds'))}"
        "</span></li>"
        for change in record.history
    )
    return f"<ol>{steps}</ol>"


def render_page(*, records: Sequence[ReceivedForsendelse], base_url: str, refresh_seconds: int = 2) -> bytes:
    """The page listing ``records``, newest first; it reloads every ``refresh_seconds``."""
    rows = "".join(
        "<tr>"
        f"<td class='mono'>{escape(str(r.id))}<br><span class='muted'>konto {escape(str(r.konto_id))}</span></td>"
        f"<td>{escape(r.channel)}{' 🔒' if r.kryptert else ''}</td>"
        f"<td>{escape(r.tittel)}</td>"
        f"<td>{escape(r.mottaker)}</td>"
        f"<td>{_documents(r)}</td>"
        f"<td>{_history(r)}</td>"
        "</tr>"
        for r in reversed(records)
    )
    if not rows:
        rows = "<tr><td colspan='6' class='muted'>No forsendelser yet.</td></tr>"
    html = (
        "<!doctype html><html lang='no'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{int(refresh_seconds)}'>"
        f"<title>SvarUt simulator</title><style>{_STYLE}</style></head><body>"
        f"<h1>SvarUt simulator</h1><p>API: <code>{escape(base_url)}</code> · {len(records)} forsendelse(r) · "
        "<a href='/simulator/forsendelser'>JSON</a></p>"
        "<table><thead><tr><th>id</th><th>kanal</th><th>tittel</th><th>mottaker</th><th>dokumenter</th>"
        f"<th>statushistorikk</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    )
    return html.encode("utf-8")
