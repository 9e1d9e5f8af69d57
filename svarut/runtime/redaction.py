"""Taking the client's own secrets out of what a server sent back.

A gateway may echo the request's headers in its error body, as a JSON field
(``"IntegrasjonPassord": "..."``), in HTML, or in prose (``password o was
wrong``). Everything derived from such a body is redacted before an error
holds it.

Only whole tokens are replaced, not every substring. A short password such as
``o`` would otherwise turn ``wrong IntegrasjonId`` into ``wr[redacted]ng
Integrasj[redacted]nId``: the redaction would garble the message *and* spell
out the password to whoever reads it. A secret is replaced where it stands on
its own: its neighbours on either side are not letters or digits (the start
or end of the body, a space, a quote, ``=``, ``:``, ``<``, a JSON escape such
as ``\\n``...). That covers every way an echo puts a value the client sent: a
header line, an exact JSON string value, a value inside a larger string, a
word in a sentence. What is left unredacted is a secret glued to letters or
digits (``passwordo``), which is no echo of a value but part of another word.

A secret that is also an ordinary word of the message (a password ``feil``
in ``feil i forespørselen``) is still replaced there: an echo and a word look
the same, and a garbled sentence is better than a leaked password.
"""

from __future__ import annotations

REDACTED = "[redacted]"

# JSON escapes that end in a letter or digit: after one of them, a secret
# starts a new token of the decoded string though a letter precedes it in the
# JSON text (``"\no"`` is a newline and ``o``).
_JSON_ESCAPES = ("\\b", "\\f", "\\n", "\\r", "\\t")


def redact(body: bytes, secrets: tuple[bytes, ...]) -> bytes:
    """``body`` with every whole-token occurrence of each of ``secrets``
    (longest first, as :func:`svarut.runtime.errors.request_secrets` gives
    them) replaced by ``[redacted]``. Bytes that are not UTF-8 pass through
    unchanged; a body already redacted stays as it is."""
    if not secrets or not any(secret in body for secret in secrets):
        return body
    # surrogateescape: any byte string comes back exactly, UTF-8 or not.
    text = body.decode("utf-8", errors="surrogateescape")
    for secret in secrets:
        word = secret.decode("utf-8", errors="surrogateescape")
        if word and word in text:
            # A marker already there is not searched again: a secret such as
            # "redacted" would otherwise nest markers on every pass.
            text = REDACTED.join(_redact_piece(piece, word) for piece in text.split(REDACTED))
    return text.encode("utf-8", errors="surrogateescape")


def _redact_piece(text: str, secret: str) -> str:
    out: list[str] = []
    start = 0
    at = text.find(secret)
    while at >= 0:
        end = at + len(secret)
        if _starts_token(text, at, secret) and _ends_token(text, end, secret):
            out += (text[start:at], REDACTED)
            start = end
            at = text.find(secret, end)
        else:
            at = text.find(secret, at + 1)
    out.append(text[start:])
    return "".join(out)


def _starts_token(text: str, at: int, secret: str) -> bool:
    if at == 0 or not secret[0].isalnum() or not text[at - 1].isalnum():
        return True
    return text.endswith(_JSON_ESCAPES, 0, at) or _after_unicode_escape(text, at)


def _ends_token(text: str, end: int, secret: str) -> bool:
    return end == len(text) or not secret[-1].isalnum() or not text[end].isalnum()


def _after_unicode_escape(text: str, at: int) -> bool:
    """Whether ``text[:at]`` ends in a JSON ``\\uXXXX`` escape."""
    escape = text[max(at - 6, 0) : at]
    return len(escape) == 6 and escape.startswith("\\u") and all(c in "0123456789abcdefABCDEF" for c in escape[2:])
