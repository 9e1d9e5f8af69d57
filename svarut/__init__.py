"""fiks-svarut: a client for KS Fiks SvarUt REST API v3.

>>> from svarut import SvarUtClient, AsyncSvarUtClient, models

Errors live in :mod:`svarut.errors` (the tree is drawn in
:mod:`svarut.runtime.errors`), authentication in :mod:`svarut.auth`,
encryption in :mod:`svarut.kryptering`. The API speaks SvarUt's Norwegian:
forsendelse, mottaker, konto, eksternReferanse, kryptert, avsender, digitalId
and utfall are explained in the :doc:`glossary </glossary>`.

The names below are imported on first use (PEP 562), as pydantic does: the
models and clients take a tenth of a second to build, which a program that
only imports ``svarut`` (a CLI's ``--help``, a test collection) need not pay.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# A library's warnings go where the application sends its logs, not to stderr by default.
logging.getLogger("svarut").addHandler(logging.NullHandler())

_EXPORTS = {
    "AsyncSvarUtClient": "svarut._client",
    # httpx2.Timeouts, made (and httpx2 imported) when first read.
    "DEFAULT_LOOKUP_TIMEOUT": "svarut.runtime.base_client",
    "DEFAULT_TIMEOUT": "svarut.runtime.base_client",
    "File": "svarut.runtime.files",
    "ForsendelseRules": "svarut.runtime.validation",
    "NO_RETRIES": "svarut.runtime.retry",
    "NOT_GIVEN": "svarut.runtime.client",
    "RetryPolicy": "svarut.runtime.retry",
    "SERVERS": "svarut.generated",
    "Statuser": "svarut._client",
    "SvarUtClient": "svarut._client",
    "TERMINAL_STATUSES": "svarut._client",
    "errors": "svarut.errors",
    "models": "svarut.generated.models",
    "statuses": "svarut.statuses",
}

__all__ = [
    "DEFAULT_LOOKUP_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "NO_RETRIES",
    "SERVERS",
    "TERMINAL_STATUSES",
    "AsyncSvarUtClient",
    "File",
    "ForsendelseRules",
    "RetryPolicy",
    "Statuser",
    "SvarUtClient",
    "__version__",
    "errors",
    "models",
    "statuses",
]

if TYPE_CHECKING:
    from svarut import errors, statuses
    from svarut._client import TERMINAL_STATUSES, AsyncSvarUtClient, Statuser, SvarUtClient
    from svarut.generated import SERVERS, models
    from svarut.runtime.base_client import DEFAULT_LOOKUP_TIMEOUT, DEFAULT_TIMEOUT
    from svarut.runtime.client import NOT_GIVEN
    from svarut.runtime.files import File
    from svarut.runtime.retry import NO_RETRIES, RetryPolicy
    from svarut.runtime.validation import ForsendelseRules


def __getattr__(name: str) -> Any:
    try:
        target = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'svarut' has no attribute {name!r}") from None
    try:
        module = importlib.import_module(target)
        value = module if module.__name__.rsplit(".", 1)[-1] == name else getattr(module, name)
    except Exception as exc:
        # An AttributeError escaping __getattr__ reads as "no such name": `from
        # svarut import X` would then say only "cannot import name 'X'". Name the cause.
        raise ImportError(f"cannot import svarut.{name} from {target}: {type(exc).__name__}: {exc}") from exc
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
