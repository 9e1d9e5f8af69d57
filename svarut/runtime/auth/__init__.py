"""Authentication for SvarUt: the three headers, and the Maskinporten token behind one of them.

- :mod:`.svarut_auth`: :class:`SvarUtAuth`, the ``httpx2.Auth`` that adds
  ``Authorization``, ``IntegrasjonId`` and ``IntegrasjonPassord`` and retries
  once with a fresh token after a 401.
- :mod:`.tokens`: the :class:`TokenProvider` interface and :class:`StaticToken`.
- :mod:`.maskinporten`: the JWT bearer grant and its token cache.
- :mod:`.keystore`: the signing key and certificate (PKCS#12, PEM, kid).
- :mod:`.environments`: which Maskinporten goes with which SvarUt.

Its errors (:class:`MaskinportenError` and subclasses) are part of the one
tree in :mod:`svarut.runtime.errors`.

Like the rest of the runtime, nothing here knows the generated code.
"""

from svarut.runtime.auth.environments import ENVIRONMENTS, Environment, EnvironmentName, environment
from svarut.runtime.auth.keystore import EXPIRY_WARNING_DAYS, Keystore
from svarut.runtime.auth.maskinporten import AccessToken, MaskinportenConfig, MaskinportenTokenProvider
from svarut.runtime.auth.svarut_auth import SvarUtAuth
from svarut.runtime.auth.tokens import StaticToken, TokenProvider
from svarut.runtime.errors import (
    CertificateExpiryWarning,
    KeystoreError,
    MaskinportenConnectionError,
    MaskinportenError,
    MaskinportenTokenError,
)

__all__ = [
    "ENVIRONMENTS",
    "EXPIRY_WARNING_DAYS",
    "AccessToken",
    "CertificateExpiryWarning",
    "Environment",
    "EnvironmentName",
    "Keystore",
    "KeystoreError",
    "MaskinportenConfig",
    "MaskinportenConnectionError",
    "MaskinportenError",
    "MaskinportenTokenError",
    "MaskinportenTokenProvider",
    "StaticToken",
    "SvarUtAuth",
    "TokenProvider",
    "environment",
]
