"""fiks-svarut: a client for KS Fiks SvarUt REST API v3.

>>> from svarut import SvarUtClient, AsyncSvarUtClient, models

Errors live in :mod:`svarut.errors` (the tree is drawn in its docstring).
"""

from svarut import errors
from svarut._client import AsyncSvarUtClient, SvarUtClient
from svarut.generated import SERVERS, models
from svarut.runtime.client import DEFAULT_TIMEOUT, NOT_GIVEN
from svarut.runtime.files import File

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "SERVERS",
    "AsyncSvarUtClient",
    "File",
    "SvarUtClient",
    "__version__",
    "errors",
    "models",
]
