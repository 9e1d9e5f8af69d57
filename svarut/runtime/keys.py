"""Naming a key that cannot be used, for the message that refuses it: one
wording for the keystore's private keys and SvarUt's certificate's public ones."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519

__all__ = ["describe_key"]


def describe_key(key: object) -> str:
    """``key``'s kind, as "an EC key (secp256r1)", "a DSA key", ...; public or private."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return f"an EC key ({key.curve.name})"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return "an Ed25519 key"
    if isinstance(key, (ed448.Ed448PublicKey, ed448.Ed448PrivateKey)):
        return "an Ed448 key"
    if isinstance(key, (dsa.DSAPublicKey, dsa.DSAPrivateKey)):
        return "a DSA key"
    return f"a {type(key).__name__}"
