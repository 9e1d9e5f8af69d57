"""fiks-svarut: a client for KS Fiks SvarUt REST API v3.

>>> from svarut import SvarUtClient, AsyncSvarUtClient, models

Errors live in :mod:`svarut.errors` (the tree is drawn in
:mod:`svarut.runtime.errors`), authentication in :mod:`svarut.auth`,
encryption in :mod:`svarut.kryptering`.
"""

from svarut import errors
from svarut._client import TERMINAL_STATUSES, AsyncSvarUtClient, Statuser, SvarUtClient
from svarut.generated import SERVERS, models
from svarut.runtime.client import DEFAULT_TIMEOUT, NOT_GIVEN
from svarut.runtime.files import File
from svarut.runtime.retry import NO_RETRIES, RetryPolicy
from svarut.runtime.validation import ForsendelseRules

__version__ = "0.1.0"

__all__ = [
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
]
