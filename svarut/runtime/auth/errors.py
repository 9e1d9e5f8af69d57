"""The errors and warnings of authentication, defined with the rest of the
tree in :mod:`svarut.runtime.errors` and named here for the auth modules."""

from svarut.runtime.errors import (
    CertificateExpiryWarning,
    KeystoreError,
    MaskinportenConnectionError,
    MaskinportenError,
    MaskinportenTokenError,
)

__all__ = [
    "CertificateExpiryWarning",
    "KeystoreError",
    "MaskinportenConnectionError",
    "MaskinportenError",
    "MaskinportenTokenError",
]
