"""Which Maskinporten goes with which SvarUt, and which URLs may carry credentials.

KS runs SvarUt in a test and a production environment, and each takes tokens
from its own Maskinporten. Every URL here can be overridden (for a local
stand-in, or a proxy), but credentials go over HTTPS unless the host is this
machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import httpx2

EnvironmentName = Literal["test", "prod"]


@dataclass(frozen=True)
class Environment:
    """A SvarUt environment and the Maskinporten that issues its tokens."""

    name: str
    svarut_base_url: str
    maskinporten_issuer: str
    """The issuer URL, with its trailing slash: the ``aud`` of every assertion."""

    @property
    def maskinporten_token_endpoint(self) -> str:
        """The token endpoint of its Maskinporten: the issuer's ``/token``."""
        return token_endpoint_of(self.maskinporten_issuer)


ENVIRONMENTS: dict[str, Environment] = {
    "test": Environment("test", "https://test.svarut.ks.no/api", "https://test.maskinporten.no/"),
    "prod": Environment("prod", "https://svarut.ks.no/api", "https://maskinporten.no/"),
}


def environment(name: str) -> Environment:
    """The environment called ``name`` ("test" or "prod").

    Args:
        name: ``"test"`` or ``"prod"``.

    Returns:
        Its :class:`Environment`: SvarUt's URL and Maskinporten's issuer.

    Raises:
        ValueError: An unknown name.

    >>> environment("test").svarut_base_url
    'https://test.svarut.ks.no/api'
    """
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        known = ", ".join(repr(n) for n in ENVIRONMENTS)
        raise ValueError(f"unknown SvarUt environment {name!r}; expected one of {known}") from None


def normalize_issuer(issuer: str) -> str:
    """Maskinporten's issuer ends in a slash, and ``aud`` must match it exactly."""
    return issuer if issuer.endswith("/") else issuer + "/"


def token_endpoint_of(issuer: str) -> str:
    return normalize_issuer(issuer) + "token"


def require_secure_url(url: str, *, what: str) -> str:
    """``url`` if it is HTTPS, or HTTP to this machine; else ValueError.

    Credentials (assertions, tokens, the integration password) would travel in
    the clear over plain HTTP to anywhere else.
    """
    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL:
        raise ValueError(f"{what} is not a valid URL: {url!r}") from None
    if parsed.scheme == "https" and parsed.host:
        return url
    if parsed.scheme == "http" and _is_loopback(parsed.host):
        return url
    raise ValueError(f"{what} must be an https:// URL (plain http only to localhost), got {url!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
