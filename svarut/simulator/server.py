"""The simulator's names where they were before it was split by concern;
import them from here or from their modules:

- :mod:`svarut.simulator.facade`: :class:`Simulator`, its settings and lifecycle;
- :mod:`svarut.simulator.intake`: the fake SvarUt (:data:`CHANNELS`,
  :class:`RequestRecord`, :data:`DUPLICATE_MESSAGE`, the error codes);
- :mod:`svarut.simulator.handler`: the HTTP server and request handler;
- :mod:`svarut.simulator.runner`: :func:`run_until_interrupted`, the foreground runner.
"""

from __future__ import annotations

from svarut.simulator.facade import DEFAULT_CLIENT_ID, MASKINPORTEN_PREFIX, Simulator
from svarut.simulator.handler import JSON_PATH, PAGE_PATHS
from svarut.simulator.intake import (
    API_PREFIX,
    CHANNELS,
    CODE_DECRYPTION,
    CODE_DOCUMENTS,
    CODE_FORBIDDEN,
    CODE_INTERNAL,
    CODE_INVALID,
    CODE_NOT_FOUND,
    CODE_PART_HEADER_TOO_BIG,
    CODE_SIMULATED,
    CODE_TOO_MANY_PARTS,
    CODE_UNAUTHENTICATED,
    DUPLICATE_MESSAGE,
    LOOKUP_ENDPOINTS,
    LOOKUP_PATTERNS,
    MAX_JSON_BYTES,
    STATUS_ENDPOINT,
    STATUS_PATTERN,
    Channel,
    RequestRecord,
)
from svarut.simulator.runner import connection_info, exports, run_until_interrupted

__all__ = [
    "API_PREFIX",
    "CHANNELS",
    "CODE_DECRYPTION",
    "CODE_DOCUMENTS",
    "CODE_FORBIDDEN",
    "CODE_INTERNAL",
    "CODE_INVALID",
    "CODE_NOT_FOUND",
    "CODE_PART_HEADER_TOO_BIG",
    "CODE_SIMULATED",
    "CODE_TOO_MANY_PARTS",
    "CODE_UNAUTHENTICATED",
    "DEFAULT_CLIENT_ID",
    "DUPLICATE_MESSAGE",
    "JSON_PATH",
    "LOOKUP_ENDPOINTS",
    "LOOKUP_PATTERNS",
    "MASKINPORTEN_PREFIX",
    "MAX_JSON_BYTES",
    "PAGE_PATHS",
    "STATUS_ENDPOINT",
    "STATUS_PATTERN",
    "Channel",
    "RequestRecord",
    "Simulator",
    "connection_info",
    "exports",
    "run_until_interrupted",
]
