"""The check on a caller's ``http_client=``: an ``httpx2.Client`` (an
``httpx2.AsyncClient`` for the async client), nothing else.

The client is built on httpx2. A client of the older ``httpx`` package, which
it used before, has the same API under another name but is not interchangeable:
it refuses httpx2's request objects (``TypeError: Invalid type for url``) at
the first send, after the letter was built and checked, and its errors are
``httpx`` ones, which the client's error handling (retry or not, "may have
arrived") does not see. So it is refused when the client is made, with what
to pass instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import httpx2

# The packages whose clients look like httpx2's but are not: the one fiks-svarut used up to 0.2.
_OLD_PACKAGES = ("httpx", "httpcore")


def require_http_client(
    given: object,
    expected: type[httpx2.Client] | type[httpx2.AsyncClient] | Literal["Client", "AsyncClient"],
    *,
    owner: str,
) -> None:
    """Raise :class:`TypeError` unless ``given`` is None or an ``expected``
    (the class, or its name in httpx2: with a name, a client made without an
    ``http_client`` does not import httpx2).

    ``owner`` names what took it (``SvarUtClient``, ``MaskinportenTokenProvider``, ...).
    """
    if given is None:
        return
    import httpx2

    if isinstance(expected, str):
        expected = httpx2.Client if expected == "Client" else httpx2.AsyncClient
    if isinstance(given, expected):
        return
    cls = type(given)
    name = f"{cls.__module__}.{cls.__qualname__}"
    want = f"httpx2.{expected.__name__}"
    if cls.__module__.split(".")[0] in _OLD_PACKAGES:
        raise TypeError(
            f"{owner}(http_client=...) takes an {want}, not an {name}: fiks-svarut is built on httpx2, "
            f"and a client of the older httpx package cannot carry its requests. "
            f"`import httpx2` and make the same client with {want}(...): it takes the same arguments "
            "(verify=, cert=, proxy=, limits=, timeout=, ...)"
        )
    if isinstance(given, (httpx2.Client, httpx2.AsyncClient)):
        raise TypeError(f"{owner}(http_client=...) takes an {want}, not an {name}")
    raise TypeError(f"{owner}(http_client=...) takes an {want}, not {name}")
