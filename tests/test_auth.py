"""Authentication against real local servers: a Maskinporten stand-in that
verifies every assertion as Maskinporten would, and a SvarUt stand-in that
checks the three headers. Keys and certificates are made here with
``cryptography``; where it can check our work, the real ``openssl`` CLI does."""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import json
import logging
import pickle
import shutil
import ssl
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from maskinporten_server import (
    MaskinportenStandIn,
    Response,
    SvarUtStandIn,
    serve,
)

import svarut
from svarut import models
from svarut.auth import (
    ENVIRONMENTS,
    AccessToken,
    CertificateExpiryWarning,
    Keystore,
    KeystoreError,
    MaskinportenConfig,
    MaskinportenConnectionError,
    MaskinportenError,
    MaskinportenTokenError,
    MaskinportenTokenProvider,
    StaticToken,
    SvarUtAuth,
    TokenProvider,
)
from svarut.errors import APIConnectionError, AuthenticationError, SvarUtError
from svarut.runtime import multipart
from svarut.runtime.retry import NO_RETRIES

CLIENT_ID = "7b3f1c2e-0000-4000-8000-00000000c11e"
INTEGRASJON_ID = "5f0e8a4c-1111-4222-8333-444455556666"
PASSORD = "hemmelig-integrasjonspassord-9f8e7d"
KEYSTORE_PASSWORD = "keystore-pw-Æøå-1234"
KONTO_ID = uuid.UUID("0a1b2c3d-0000-4000-8000-000000000001")
OPENSSL = shutil.which("openssl")

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


# --- keys and certificates -------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cn),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    key: Any,
    *,
    subject: str,
    issuer_key: Any,
    issuer: str,
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + 365 * DAY,
    ca: bool = False,
    ip: str | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    ca_key: rsa.RSAPrivateKey
    ca: x509.Certificate
    key: rsa.RSAPrivateKey
    leaf: x509.Certificate
    other_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    ec_leaf: x509.Certificate

    def leaf_for(self, key: Any, **kwargs: Any) -> x509.Certificate:
        return _cert(key, subject="Testkommune", issuer_key=self.ca_key, issuer="Test CA", **kwargs)


@pytest.fixture(scope="module")
def pki() -> Pki:
    def rsa_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    ca_key = rsa_key()
    ca = _cert(ca_key, subject="Test CA", issuer_key=ca_key, issuer="Test CA", ca=True)
    key = rsa_key()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(key, subject="Testkommune", issuer_key=ca_key, issuer="Test CA")
    ec_leaf = _cert(ec_key, subject="Testkommune", issuer_key=ca_key, issuer="Test CA")
    return Pki(ca_key, ca, key, leaf, rsa_key(), ec_key, ec_leaf)


def _pem_key(key: Any, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    pem: bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return pem


def _pem_certs(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write_p12(
    path: Path,
    key: Any,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    *,
    password: str = KEYSTORE_PASSWORD,
    legacy: bool = False,
) -> Path:
    if legacy:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password.encode())
        )
    else:
        encryption = serialization.BestAvailableEncryption(password.encode())
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"virksomhet", key, cert, chain or None, encryption))
    return path


@pytest.fixture
def p12(tmp_path: Path, pki: Pki) -> Path:
    return write_p12(tmp_path / "virksomhet.p12", pki.key, pki.leaf, [pki.ca])


@pytest.fixture
def keystore(p12: Path) -> Keystore:
    return Keystore.load(p12, password=KEYSTORE_PASSWORD)


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, check=False)


needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed")


# --- servers -----------------------------------------------------------------------


@pytest.fixture
def maskinporten(pki: Pki) -> Iterator[MaskinportenStandIn]:
    standin = MaskinportenStandIn(trusted_ca=[pki.ca], clients={CLIENT_ID: {"ks:fiks", "ks:annet"}})
    with serve(standin) as url:
        standin.issuer = url + "/"
        yield standin
    assert standin.rejections == [], "the client sent a grant Maskinporten would refuse"


@pytest.fixture
def svarut_server(maskinporten: MaskinportenStandIn) -> Iterator[tuple[SvarUtStandIn, str]]:
    standin = SvarUtStandIn(maskinporten, INTEGRASJON_ID, PASSORD)
    with serve(standin) as url:
        yield standin, url + "/api"
    assert standin.rejections == [], "the client sent a request without the right credentials"


def config(maskinporten: MaskinportenStandIn, keystore: Keystore, **kwargs: Any) -> MaskinportenConfig:
    return MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore, issuer=maskinporten.issuer, **kwargs)


def forsendelse() -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel="Vedtak om byggesak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
    )


PDF = b"%PDF-1.7\n% vedtak\n%%EOF\n"


def sync_client(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore, **kwargs: Any
) -> svarut.SvarUtClient:
    return svarut.SvarUtClient.for_environment(
        "test",
        integrasjon_id=INTEGRASJON_ID,
        integrasjon_passord=PASSORD,
        maskinporten=config(maskinporten, keystore, **kwargs),
        base_url=svarut_server[1],
    )


def async_client(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore, **kwargs: Any
) -> svarut.AsyncSvarUtClient:
    return svarut.AsyncSvarUtClient.for_environment(
        "test",
        integrasjon_id=INTEGRASJON_ID,
        integrasjon_passord=PASSORD,
        maskinporten=config(maskinporten, keystore, **kwargs),
        base_url=svarut_server[1],
    )


def _multipart_streams_are_marked() -> bool:
    body = multipart.encode(metadata_part="f", metadata_json=b"{}", file_part="d", documents=[])
    return getattr(body.sync_stream(), "replayable", None) is True


needs_replay_marker = pytest.mark.skipif(
    not _multipart_streams_are_marked(),
    reason="multipart streams do not yet say they are replayable (the proposed runtime/multipart.py patch)",
)


# --- keystores -----------------------------------------------------------------------


@needs_openssl
def test_modern_pkcs12_with_aes_loads_leaf_first(p12: Path, pki: Pki) -> None:
    info = openssl("pkcs12", "-info", "-noout", "-in", str(p12), "-passin", f"pass:{KEYSTORE_PASSWORD}")
    assert b"AES-256-CBC" in info.stderr + info.stdout  # really the modern PBES2 encryption

    keystore = Keystore.load(p12, password=KEYSTORE_PASSWORD)

    assert keystore.certificate == pki.leaf
    assert keystore.chain == (pki.ca,)
    assert keystore.kid is None


@needs_openssl
def test_legacy_pkcs12_from_the_openssl_cli_rc2_and_3des(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "key.pem").write_bytes(_pem_key(pki.key))
    (tmp_path / "chain.pem").write_bytes(_pem_certs(pki.leaf, pki.ca))
    out = tmp_path / "legacy.pfx"
    made = openssl(
        "pkcs12", "-export", "-legacy", "-inkey", str(tmp_path / "key.pem"), "-in", str(tmp_path / "chain.pem"),
        "-passout", f"pass:{KEYSTORE_PASSWORD}", "-out", str(out),
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl cannot write legacy PKCS#12: {made.stderr.decode(errors='replace')}")
    info = openssl("pkcs12", "-info", "-noout", "-legacy", "-in", str(out), "-passin", f"pass:{KEYSTORE_PASSWORD}")
    assert b"RC2" in info.stderr + info.stdout

    keystore = Keystore.load(out, password=KEYSTORE_PASSWORD)

    assert keystore.certificate == pki.leaf
    assert keystore.chain == (pki.ca,)


def test_legacy_pkcs12_with_3des(tmp_path: Path, pki: Pki) -> None:
    path = write_p12(tmp_path / "legacy.p12", pki.key, pki.leaf, [pki.ca], legacy=True)

    keystore = Keystore.from_pkcs12(path, password=KEYSTORE_PASSWORD.encode())

    assert keystore.certificate == pki.leaf


def test_wrong_password_is_named_and_not_echoed(p12: Path) -> None:
    with pytest.raises(KeystoreError, match="password is wrong") as caught:
        Keystore.load(p12, password="not-the-password")
    assert "not-the-password" not in str(caught.value)
    assert str(p12) in str(caught.value)

    with pytest.raises(KeystoreError, match="no password was given"):
        Keystore.load(p12)


def test_java_keystore_is_detected_with_the_keytool_command(tmp_path: Path) -> None:
    jks = tmp_path / "virksomhet.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02" + b"\x00" * 64)

    with pytest.raises(KeystoreError) as caught:
        Keystore.load(jks, password="x")

    message = str(caught.value)
    assert "Java keystore (JKS)" in message
    assert f"keytool -importkeystore -srckeystore {jks} -destkeystore {tmp_path / 'virksomhet.p12'}" in message
    assert "-deststoretype PKCS12" in message


def test_garbage_is_not_a_keystore(tmp_path: Path) -> None:
    path = tmp_path / "noe.p12"
    path.write_bytes(b"this is no keystore")
    with pytest.raises(KeystoreError, match="not a PKCS#12 keystore"):
        Keystore.load(path, password="x")
    with pytest.raises(KeystoreError, match="cannot read the file"):
        Keystore.load(tmp_path / "missing.p12", password="x")


def test_pem_key_and_certificate_chain_in_any_order(tmp_path: Path, pki: Pki) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(_pem_key(pki.key, KEYSTORE_PASSWORD))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(_pem_certs(pki.ca, pki.leaf))

    keystore = Keystore.from_pem(key=key, certificate=chain, password=KEYSTORE_PASSWORD)

    assert keystore.certificate == pki.leaf
    assert keystore.chain == (pki.ca,)


def test_pem_key_and_chain_in_one_file(tmp_path: Path, pki: Pki) -> None:
    combined = tmp_path / "virksomhet.pem"
    combined.write_bytes(_pem_certs(pki.leaf, pki.ca) + _pem_key(pki.key))

    keystore = Keystore.load(combined)

    assert keystore.certificate == pki.leaf
    assert Keystore.load(combined.read_text()).certificate == pki.leaf  # PEM text, e.g. from a secret


def test_key_material_mistaken_for_a_path_is_not_echoed(p12: Path) -> None:
    blob = base64.b64encode(p12.read_bytes()).decode()
    with pytest.raises(KeystoreError, match="cannot read the file") as caught:
        Keystore.load(blob, password=KEYSTORE_PASSWORD)
    assert blob[:40] not in str(caught.value)


def test_pem_errors(tmp_path: Path, pki: Pki) -> None:
    encrypted = tmp_path / "key.pem"
    encrypted.write_bytes(_pem_key(pki.key, KEYSTORE_PASSWORD) + _pem_certs(pki.leaf))
    with pytest.raises(KeystoreError, match="encrypted; give its password"):
        Keystore.load(encrypted)
    with pytest.raises(KeystoreError, match="password is wrong"):
        Keystore.load(encrypted, password="feil")
    key_only = tmp_path / "key-only.pem"
    key_only.write_bytes(_pem_key(pki.key))
    with pytest.raises(KeystoreError, match=r"no PEM certificate found.*from_kid"):
        Keystore.load(key_only)


@pytest.mark.parametrize("form", ["p12", "pem"])
def test_non_rsa_key_is_refused(tmp_path: Path, pki: Pki, form: str) -> None:
    if form == "p12":
        path = write_p12(tmp_path / "ec.p12", pki.ec_key, pki.ec_leaf, [pki.ca])
    else:
        path = tmp_path / "ec.pem"
        path.write_bytes(_pem_key(pki.ec_key) + _pem_certs(pki.ec_leaf))

    with pytest.raises(KeystoreError, match=r"EC key \(secp256r1\).*need an RSA key"):
        Keystore.load(path, password=KEYSTORE_PASSWORD if form == "p12" else None)


def test_key_that_does_not_match_the_certificate(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(KeystoreError, match="does not belong to the certificate"):
        Keystore.from_pem(key=_pem_key(pki.other_key), certificate=_pem_certs(pki.leaf, pki.ca))


def test_expired_certificate_is_refused(tmp_path: Path, pki: Pki) -> None:
    expired = pki.leaf_for(pki.key, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    path = write_p12(tmp_path / "expired.p12", pki.key, expired, [pki.ca])

    with pytest.raises(KeystoreError, match=r"expired on .*Renew the virksomhetssertifikat"):
        Keystore.load(path, password=KEYSTORE_PASSWORD)


def test_certificate_expiring_within_30_days_warns(tmp_path: Path, pki: Pki) -> None:
    soon = pki.leaf_for(pki.key, not_after=NOW + 10 * DAY)
    path = write_p12(tmp_path / "soon.p12", pki.key, soon, [pki.ca])

    with pytest.warns(CertificateExpiryWarning, match=r"expires on .*\(\d+ days from now\)"):
        keystore = Keystore.load(path, password=KEYSTORE_PASSWORD)
    assert keystore.certificate == soon


def test_kid_mode_has_no_certificate(pki: Pki) -> None:
    keystore = Keystore.from_kid(key=_pem_key(pki.key), kid="min-nokkel-1")

    assert keystore.certificate is None
    assert keystore.jwt_headers() == {"kid": "min-nokkel-1"}
    with pytest.raises(KeystoreError, match="need an RSA key"):
        Keystore.from_kid(key=_pem_key(pki.ec_key), kid="ec")


def test_keystore_repr_and_pickle_keep_the_key_in(keystore: Keystore, p12: Path) -> None:
    assert repr(keystore).startswith(f"Keystore(source={str(p12)!r}, subject='CN=Testkommune")
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(keystore)


# --- the assertion -------------------------------------------------------------------


def test_assertion_has_exactly_the_grant_fields(keystore: Keystore, pki: Pki) -> None:
    provider = MaskinportenTokenProvider(MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore), environment="test")
    before = int(time.time())

    assertion = provider.assertion()

    header = jwt.get_unverified_header(assertion)
    assert set(header) == {"alg", "x5c"}  # no typ, no kid
    assert header["alg"] == "RS256"
    der = [c.public_bytes(serialization.Encoding.DER) for c in (pki.leaf, pki.ca)]
    assert header["x5c"] == [base64.b64encode(d).decode() for d in der]  # standard base64, leaf first
    claims = jwt.decode(assertion, pki.key.public_key(), algorithms=["RS256"], audience="https://test.maskinporten.no/")
    assert set(claims) == {"aud", "iss", "scope", "iat", "exp", "jti"}
    assert claims["iss"] == CLIENT_ID
    assert claims["scope"] == "ks:fiks"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 120
    assert uuid.UUID(claims["jti"]).version == 4
    assert jwt.decode(provider.assertion(), options={"verify_signature": False})["jti"] != claims["jti"]


def test_optional_claims_and_scopes_only_when_configured(keystore: Keystore) -> None:
    provider = MaskinportenTokenProvider(
        MaskinportenConfig(
            client_id=CLIENT_ID,
            keystore=keystore,
            scopes="ks:fiks ks:annet",
            resource="https://svarut.ks.no",
            consumer_org="987654321",
            assertion_lifetime=60,
        ),
        environment="prod",
    )

    claims = jwt.decode(provider.assertion(), options={"verify_signature": False})

    assert claims["aud"] == "https://maskinporten.no/"
    assert claims["scope"] == "ks:fiks ks:annet"
    assert claims["resource"] == "https://svarut.ks.no"
    assert claims["consumer_org"] == "987654321"
    assert claims["exp"] - claims["iat"] == 60


@needs_openssl
def test_x5c_leaf_is_a_certificate_openssl_reads(keystore: Keystore) -> None:
    provider = MaskinportenTokenProvider(MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore), environment="test")
    leaf = base64.b64decode(jwt.get_unverified_header(provider.assertion())["x5c"][0], validate=True)

    result = openssl("x509", "-inform", "DER", "-noout", "-subject", stdin=leaf)

    assert result.returncode == 0, result.stderr
    assert b"CN" in result.stdout and b"Testkommune" in result.stdout


@needs_openssl
def test_assertion_signature_verifies_with_openssl(tmp_path: Path, keystore: Keystore, pki: Pki) -> None:
    provider = MaskinportenTokenProvider(MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore), environment="test")
    head, payload, signature = provider.assertion().split(".")
    (tmp_path / "signed").write_bytes(f"{head}.{payload}".encode())
    (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    (tmp_path / "leaf.pem").write_bytes(_pem_certs(pki.leaf))
    (tmp_path / "pub.pem").write_bytes(openssl("x509", "-in", str(tmp_path / "leaf.pem"), "-pubkey", "-noout").stdout)

    result = openssl(
        "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature", str(tmp_path / "sig"),
        str(tmp_path / "signed"),
    )  # fmt: skip

    assert result.returncode == 0 and b"Verified OK" in result.stdout, result.stdout + result.stderr


def test_config_is_checked(keystore: Keystore) -> None:
    with pytest.raises(ValueError, match=r"assertion_lifetime must be 1\.\.120"):
        MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore, assertion_lifetime=121)
    with pytest.raises(ValueError, match="must be an https:// URL"):
        MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore, issuer="http://maskinporten.example/")
    with pytest.raises(ValueError, match="scopes"):
        MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore, scopes=[])
    with pytest.raises(ValueError, match="environment='test'"):
        MaskinportenTokenProvider(MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore))
    with pytest.raises(ValueError, match="unknown SvarUt environment 'staging'"):
        MaskinportenTokenProvider(MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore), environment="staging")


# --- the token provider against the Maskinporten stand-in ----------------------------------


def test_token_is_fetched_once_and_cached(maskinporten: MaskinportenStandIn, keystore: Keystore) -> None:
    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:
        first = provider.get_access_token()
        second = provider.get_access_token()

    assert first == second
    assert first.scope == "ks:fiks"
    assert first.expires_in == maskinporten.expires_in
    assert maskinporten.requests == 1
    (grant,) = maskinporten.grants
    assert grant.token == first.access_token
    assert set(grant.header) == {"alg", "x5c"}
    assert grant.claims["aud"] == maskinporten.issuer


def test_cache_is_keyed_by_scope_resource_and_consumer_org(
    maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:
        tokens = {
            provider.get_token(),
            provider.get_access_token(scopes=["ks:annet"]).access_token,
            provider.get_access_token(resource="https://svarut.ks.no").access_token,
            provider.get_access_token(consumer_org="987654321").access_token,
        }
        assert provider.get_access_token(scopes="ks:annet").access_token in tokens

    assert len(tokens) == 4
    assert maskinporten.requests == 4
    assert maskinporten.grants[2].claims["resource"] == "https://svarut.ks.no"
    assert "resource" not in maskinporten.grants[0].claims


def test_token_is_refreshed_a_margin_before_it_expires(maskinporten: MaskinportenStandIn, keystore: Keystore) -> None:
    now = [1000.0]
    with MaskinportenTokenProvider(config(maskinporten, keystore, refresh_margin=30), clock=lambda: now[0]) as p:
        first = p.get_token()
        now[0] += maskinporten.expires_in - 30 - 1
        assert p.get_token() == first
        now[0] += 2
        second = p.get_token()

    assert second != first
    assert maskinporten.requests == 2


def test_margin_is_at_most_half_a_short_token_lifetime(maskinporten: MaskinportenStandIn, keystore: Keystore) -> None:
    maskinporten.expires_in = 10
    now = [0.0]
    with MaskinportenTokenProvider(config(maskinporten, keystore, refresh_margin=30), clock=lambda: now[0]) as p:
        first = p.get_token()
        now[0] = 4.9
        assert p.get_token() == first
        now[0] = 5.0
        assert p.get_token() != first


def test_expiry_counts_from_before_the_request(maskinporten: MaskinportenStandIn, keystore: Keystore) -> None:
    ticks = iter([100.0, 200.0])  # read before the request, then the next cache lookup
    with MaskinportenTokenProvider(config(maskinporten, keystore, refresh_margin=0), clock=lambda: next(ticks)) as p:
        p.get_token()
        cached = p._cache[p._key(None, None, None)]
    assert cached.refresh_at == 100.0 + maskinporten.expires_in


def test_invalidate_drops_only_that_token(maskinporten: MaskinportenStandIn, keystore: Keystore) -> None:
    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:
        first = provider.get_token()
        provider.invalidate("some-other-token")
        assert provider.get_token() == first
        provider.invalidate(first)
        assert provider.get_token() != first
    assert maskinporten.requests == 2


def test_100_threads_with_an_empty_cache_make_one_token_request(
    maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    maskinporten.delay = 0.3
    barrier = threading.Barrier(100)
    tokens: list[str] = []
    errors: list[BaseException] = []

    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:

        def ask() -> None:
            try:
                barrier.wait()
                tokens.append(provider.get_token())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert len(tokens) == 100 and len(set(tokens)) == 1
    assert maskinporten.requests == 1


@pytest.mark.anyio
async def test_100_tasks_with_an_empty_cache_make_one_token_request(
    maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    maskinporten.delay = 0.3
    async with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:
        tokens = await asyncio.gather(*(provider.aget_token() for _ in range(100)))

    assert len(set(tokens)) == 1
    assert maskinporten.requests == 1


def test_threads_and_successive_event_loops_sharing_a_provider_make_one_token_request(
    maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    maskinporten.delay = 0.3
    barrier = threading.Barrier(21)
    tokens: list[str] = []
    failures: list[BaseException] = []

    async def batch(provider: MaskinportenTokenProvider) -> list[str]:
        return list(await asyncio.gather(*(provider.aget_token() for _ in range(5))))

    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:

        def ask(own_loop: bool) -> None:
            try:
                barrier.wait()
                tokens.extend(asyncio.run(batch(provider)) if own_loop else [provider.get_token()])
            except BaseException as exc:
                failures.append(exc)

        # 20 threads, half of them each on an event loop of its own, and in the
        # main thread 4 event loops one after another (asyncio.run per batch).
        threads = [threading.Thread(target=ask, args=(i % 2 == 0,)) for i in range(20)]
        for thread in threads:
            thread.start()
        barrier.wait()
        for _ in range(4):
            tokens.extend(asyncio.run(batch(provider)))
        for thread in threads:
            thread.join()

    assert failures == []
    assert len(tokens) == 10 + 10 * 5 + 4 * 5 and len(set(tokens)) == 1
    assert maskinporten.requests == 1


def test_a_provider_refreshes_on_a_later_event_loop_than_the_one_it_first_served(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    now = [0.0]
    provider = MaskinportenTokenProvider(config(maskinporten, keystore), clock=lambda: now[0])

    async def status_call() -> None:
        async with svarut.AsyncSvarUtClient.for_environment(
            "test",
            integrasjon_id=INTEGRASJON_ID,
            integrasjon_passord=PASSORD,
            token_provider=provider,
            base_url=svarut_server[1],
        ) as client:
            await client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])

    try:
        asyncio.run(status_call())
        asyncio.run(status_call())  # the cached token, on a new loop
        assert maskinporten.requests == 1
        now[0] += 3600.0  # the token is due for refresh; the first loop is closed
        asyncio.run(status_call())
        assert maskinporten.requests == 2
    finally:
        provider.close()


def test_callers_waiting_on_a_failed_token_request_share_its_error(
    maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    maskinporten.delay = 0.3
    maskinporten.failures.append(Response(503, b"Service Unavailable", "text/plain"))
    barrier = threading.Barrier(20)
    outcomes: list[BaseException | str] = []

    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:

        def ask() -> None:
            barrier.wait()
            try:
                outcomes.append(provider.get_token())
            except BaseException as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert maskinporten.requests == 1
        assert all(isinstance(o, MaskinportenTokenError) and o.status_code == 503 for o in outcomes)
        assert provider.get_token()  # a later call tries again

    assert maskinporten.requests == 2


@pytest.mark.anyio
async def test_tasks_waiting_on_a_failed_token_request_share_its_error(
    maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    maskinporten.delay = 0.3
    maskinporten.failures.append(Response(503, b"Service Unavailable", "text/plain"))
    async with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:
        outcomes = await asyncio.gather(*(provider.aget_token() for _ in range(20)), return_exceptions=True)
        assert maskinporten.requests == 1
        assert all(isinstance(o, MaskinportenTokenError) for o in outcomes)
        assert await provider.aget_token()

    assert maskinporten.requests == 2


def test_oauth_error_names_maskinportens_reason(maskinporten: MaskinportenStandIn, keystore: Keystore) -> None:
    maskinporten.failures.append(
        Response(400, json.dumps({"error": "invalid_grant", "error_description": "Invalid assertion"}).encode())
    )
    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:
        with pytest.raises(MaskinportenTokenError) as caught:
            provider.get_token()
        assert provider.get_token()  # nothing cached from the failure; the next grant works

    error = caught.value
    assert (error.status_code, error.error, error.error_description) == (400, "invalid_grant", "Invalid assertion")
    assert "invalid_grant: Invalid assertion" in str(error)
    assert CLIENT_ID in str(error)


def test_unknown_client_is_refused_by_the_standin(maskinporten: MaskinportenStandIn, keystore: Keystore) -> None:
    cfg = MaskinportenConfig(client_id="ukjent-klient", keystore=keystore, issuer=maskinporten.issuer)
    with MaskinportenTokenProvider(cfg) as provider, pytest.raises(MaskinportenTokenError) as caught:
        provider.get_token()

    assert caught.value.error == "invalid_client"
    assert "unknown client 'ukjent-klient'" in str(caught.value)
    maskinporten.rejections.clear()  # expected


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (503, b"<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html"),
        (500, b"", "text/plain"),
        (502, b'["not", "an", "object"]', "application/json"),
    ],
)
def test_server_errors_and_odd_bodies_become_token_errors_with_status(
    maskinporten: MaskinportenStandIn, keystore: Keystore, status: int, body: bytes, content_type: str
) -> None:
    maskinporten.failures.append(Response(status, body, content_type))
    with (
        MaskinportenTokenProvider(config(maskinporten, keystore)) as provider,
        pytest.raises(MaskinportenTokenError) as caught,
    ):
        provider.get_token()

    assert caught.value.status_code == status
    assert caught.value.error is None
    assert f"with {status}" in str(caught.value)
    if body.startswith(b"<html>"):
        assert "503 Service Unavailable" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>ok</html>", "is not a JSON object"),
        (b'{"token_type": "Bearer"}', "has no access_token"),
        (b'{"access_token": "leaky-token-123", "expires_in": "soon"}', "has no valid expires_in"),
    ],
)
def test_unreadable_token_responses(
    maskinporten: MaskinportenStandIn, keystore: Keystore, body: bytes, problem: str
) -> None:
    maskinporten.failures.append(Response(200, body))
    with (
        MaskinportenTokenProvider(config(maskinporten, keystore)) as provider,
        pytest.raises(MaskinportenTokenError, match=problem) as caught,
    ):
        provider.get_token()
    assert "leaky-token-123" not in str(caught.value)


def test_unreachable_token_endpoint(keystore: Keystore) -> None:
    with serve(object()) as url:
        pass  # the port is free again: nothing listens there now
    cfg = MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore, issuer=url + "/")
    with MaskinportenTokenProvider(cfg) as provider, pytest.raises(MaskinportenConnectionError, match="ConnectError"):
        provider.get_token()


def test_kid_mode_against_the_standin(maskinporten: MaskinportenStandIn, pki: Pki) -> None:
    maskinporten.kids["min-nokkel-1"] = pki.other_key.public_key()
    keystore = Keystore.from_kid(key=_pem_key(pki.other_key, "pw"), kid="min-nokkel-1", password="pw")

    with MaskinportenTokenProvider(config(maskinporten, keystore)) as provider:
        provider.get_token()

    assert maskinporten.grants[0].header == {"alg": "RS256", "kid": "min-nokkel-1"}


def test_token_endpoint_defaults_to_the_issuers_and_can_be_overridden(keystore: Keystore) -> None:
    plain = MaskinportenTokenProvider(
        MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore, issuer="http://127.0.0.1:9")
    )
    assert (plain.issuer, plain.token_endpoint) == ("http://127.0.0.1:9/", "http://127.0.0.1:9/token")
    other = MaskinportenTokenProvider(
        MaskinportenConfig(
            client_id=CLIENT_ID, keystore=keystore, issuer="https://mp.example/", token_endpoint="https://tok.example/t"
        )
    )
    assert (other.issuer, other.token_endpoint) == ("https://mp.example/", "https://tok.example/t")


# --- environments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "svarut_url", "issuer", "token_endpoint"),
    [
        (
            "test",
            "https://test.svarut.ks.no/api",
            "https://test.maskinporten.no/",
            "https://test.maskinporten.no/token",
        ),
        ("prod", "https://svarut.ks.no/api", "https://maskinporten.no/", "https://maskinporten.no/token"),
    ],
)
def test_each_svarut_environment_pairs_with_its_maskinporten(
    keystore: Keystore, name: str, svarut_url: str, issuer: str, token_endpoint: str
) -> None:
    with svarut.SvarUtClient.for_environment(
        name,
        integrasjon_id=INTEGRASJON_ID,
        integrasjon_passord=PASSORD,
        maskinporten=MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore),
    ) as client:
        provider = client._owned_token_provider
        assert client.base_url == svarut_url
        assert provider is not None
        assert (provider.issuer, provider.token_endpoint) == (issuer, token_endpoint)
    assert svarut_url in {url for url, _ in svarut.SERVERS}
    assert ENVIRONMENTS[name].maskinporten_token_endpoint == token_endpoint


def test_for_environment_argument_errors(keystore: Keystore) -> None:
    cfg = MaskinportenConfig(client_id=CLIENT_ID, keystore=keystore)
    with pytest.raises(ValueError, match="either maskinporten"):
        svarut.SvarUtClient.for_environment("test", integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD)
    with pytest.raises(ValueError, match="not both"):
        svarut.SvarUtClient.for_environment(
            "test",
            integrasjon_id=INTEGRASJON_ID,
            integrasjon_passord=PASSORD,
            maskinporten=cfg,
            token_provider=StaticToken("t"),
        )
    with pytest.raises(ValueError, match="integrasjon_id must be a UUID"):
        svarut.SvarUtClient.for_environment("test", integrasjon_id="abc", integrasjon_passord=PASSORD, maskinporten=cfg)
    with pytest.raises(ValueError, match="base_url must be an https:// URL"):
        svarut.SvarUtClient.for_environment(
            "test",
            integrasjon_id=INTEGRASJON_ID,
            integrasjon_passord=PASSORD,
            maskinporten=cfg,
            base_url="http://svarut.example/api",
        )


# --- SvarUt calls ------------------------------------------------------------------------------


def test_sync_client_sends_the_three_headers_on_send_and_status(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    with sync_client(svarut_server, maskinporten, keystore) as client:
        forsendelse_id = client.send_til_person(
            konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": PDF}
        )
        status = client.hent_status(konto_id=KONTO_ID, forsendelse_id=forsendelse_id)

    assert status.id == forsendelse_id
    send, search = standin.calls
    assert send.path.endswith("/forsendelser/person") and send.headers["content-type"].startswith("multipart/")
    assert search.path.endswith("/forsendelser/status/sok")
    (grant,) = maskinporten.grants
    for call in (send, search):
        assert call.headers["authorization"] == f"Bearer {grant.token}"
        assert call.headers["integrasjonid"] == INTEGRASJON_ID
        assert call.headers["integrasjonpassord"] == PASSORD


@pytest.mark.anyio
async def test_async_client_sends_the_three_headers_on_send_and_status(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    async with async_client(svarut_server, maskinporten, keystore) as client:
        forsendelse_id = await client.send_til_person(
            konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": PDF}
        )
        await client.hent_status(konto_id=KONTO_ID, forsendelse_id=forsendelse_id)

    (grant,) = maskinporten.grants
    assert len(standin.calls) == 2
    for call in standin.calls:
        assert call.headers["authorization"] == f"Bearer {grant.token}"
        assert call.headers["integrasjonid"] == INTEGRASJON_ID
        assert call.headers["integrasjonpassord"] == PASSORD


def test_a_401_fetches_a_new_token_and_retries_once(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    with sync_client(svarut_server, maskinporten, keystore) as client:
        client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        standin.reject_next = 1
        client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])

    first, rejected, retried = standin.calls
    assert rejected.token == first.token == maskinporten.grants[0].token
    assert retried.token == maskinporten.grants[1].token != rejected.token
    assert retried.body == rejected.body


@needs_replay_marker
def test_a_401_on_a_send_replays_the_multipart_body(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore, tmp_path: Path
) -> None:
    standin, _ = svarut_server
    pdf = tmp_path / "vedtak.pdf"
    pdf.write_bytes(PDF * 1000)
    standin.reject_next = 1
    with sync_client(svarut_server, maskinporten, keystore) as client:
        client.send_til_person(konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": pdf})

    rejected, retried = standin.calls
    assert retried.token != rejected.token
    assert retried.body == rejected.body and PDF * 1000 in retried.body


@needs_replay_marker
@pytest.mark.anyio
async def test_a_401_on_an_async_send_replays_the_multipart_body(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    standin.reject_next = 1
    async with async_client(svarut_server, maskinporten, keystore) as client:
        await client.send_til_person(konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": PDF})

    rejected, retried = standin.calls
    assert retried.token != rejected.token and retried.body == rejected.body


def test_two_401s_raise_authentication_error_after_two_requests(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    standin.reject_next = 2
    with sync_client(svarut_server, maskinporten, keystore) as client, pytest.raises(AuthenticationError):
        client.hent_status(konto_id=KONTO_ID, forsendelse_id=uuid.uuid4())

    assert len(standin.calls) == 2
    assert len(maskinporten.grants) == 2


@pytest.mark.anyio
async def test_two_401s_raise_authentication_error_after_two_async_requests(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    standin.reject_next = 2
    async with async_client(svarut_server, maskinporten, keystore) as client:
        with pytest.raises(AuthenticationError):
            await client.hent_status(konto_id=KONTO_ID, forsendelse_id=uuid.uuid4())
        assert len(standin.calls) == 2
        standin.reject_next = 1
        await client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])

    assert len(standin.calls) == 4
    assert standin.calls[3].token == maskinporten.grants[-1].token != standin.calls[2].token


class OneShot(io.RawIOBase):
    """A pipe-like document: readable once, not seekable."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_body_that_cannot_be_replayed_is_not_retried(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    standin.reject_next = 1
    with sync_client(svarut_server, maskinporten, keystore) as client, pytest.raises(AuthenticationError):
        client.send_til_person(
            konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": io.BufferedReader(OneShot(PDF))}
        )

    assert len(standin.calls) == 1
    assert len(maskinporten.grants) == 1


def test_tokens_are_refreshed_when_they_expire(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    maskinporten.expires_in = 2
    with sync_client(svarut_server, maskinporten, keystore, refresh_margin=0.5) as client:
        client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        time.sleep(1.6)
        client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])

    assert [c.token for c in standin.calls] == [g.token for g in maskinporten.grants[:1] * 2 + maskinporten.grants[1:]]
    assert len(maskinporten.grants) == 2


def test_a_token_error_stops_the_call_before_svarut(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, _ = svarut_server
    maskinporten.failures.append(
        Response(400, b'{"error": "invalid_scope", "error_description": "Scope ikke tildelt"}')
    )
    with (
        sync_client(svarut_server, maskinporten, keystore) as client,
        pytest.raises(MaskinportenTokenError, match="invalid_scope: Scope ikke tildelt") as caught,
    ):
        client.send_til_person(konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": PDF})

    assert isinstance(caught.value, SvarUtError) and isinstance(caught.value, MaskinportenError)
    assert standin.calls == []


def test_from_env(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, p12: Path, tmp_path: Path, pki: Pki
) -> None:
    standin, url = svarut_server
    environ = {
        "SVARUT_ENVIRONMENT": "test",
        "SVARUT_INTEGRASJON_ID": INTEGRASJON_ID,
        "SVARUT_INTEGRASJON_PASSORD": PASSORD,
        "SVARUT_BASE_URL": url,
        "MASKINPORTEN_CLIENT_ID": CLIENT_ID,
        "MASKINPORTEN_KEYSTORE": str(p12),
        "MASKINPORTEN_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD,
        "MASKINPORTEN_ISSUER": maskinporten.issuer,
        "MASKINPORTEN_SCOPES": "ks:fiks ks:annet",
        "MASKINPORTEN_CONSUMER_ORG": "987654321",
    }
    with svarut.SvarUtClient.from_env(environ=environ, headers={"X-Kilde": "test"}, retry=NO_RETRIES) as client:
        client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        assert client._retry is NO_RETRIES

    claims = maskinporten.grants[0].claims
    assert (claims["scope"], claims["consumer_org"]) == ("ks:fiks ks:annet", "987654321")
    assert standin.calls[0].headers["integrasjonpassord"] == PASSORD
    assert standin.calls[0].headers["x-kilde"] == "test"

    # PEM key + separate certificate, and kid mode
    (tmp_path / "key.pem").write_bytes(_pem_key(pki.key))
    (tmp_path / "cert.pem").write_bytes(_pem_certs(pki.leaf))
    pem_env = {**environ, "MASKINPORTEN_KEYSTORE": str(tmp_path / "key.pem"), "MASKINPORTEN_KEYSTORE_PASSWORD": ""}
    cfg = MaskinportenConfig.from_env({**pem_env, "MASKINPORTEN_CERTIFICATE": str(tmp_path / "cert.pem")})
    assert cfg.keystore.certificate == pki.leaf
    assert MaskinportenConfig.from_env({**pem_env, "MASKINPORTEN_KID": "k1"}).keystore.kid == "k1"


@pytest.mark.anyio
async def test_async_from_env_reports_every_missing_variable() -> None:
    with pytest.raises(ValueError) as caught:
        svarut.AsyncSvarUtClient.from_env(environ={"SVARUT_ENVIRONMENT": "test", "MASKINPORTEN_CLIENT_ID": "x"})
    assert str(caught.value) == (
        "missing environment variables: SVARUT_INTEGRASJON_ID, SVARUT_INTEGRASJON_PASSORD, MASKINPORTEN_KEYSTORE"
    )


class GatewayToken:
    """A token provider of one's own: here, a gateway that hands out Maskinporten's tokens."""

    def __init__(self, upstream: MaskinportenTokenProvider) -> None:
        self.upstream = upstream
        self.calls = 0
        self.invalidated: list[str] = []

    def get_token(self) -> str:
        self.calls += 1
        return self.upstream.get_token()

    async def aget_token(self) -> str:
        self.calls += 1
        return await self.upstream.aget_token()

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        self.upstream.invalidate(token)


@pytest.mark.anyio
async def test_a_custom_token_provider(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, url = svarut_server
    async with MaskinportenTokenProvider(config(maskinporten, keystore)) as upstream:
        gateway = GatewayToken(upstream)
        assert isinstance(gateway, TokenProvider)
        standin.reject_next = 1
        async with svarut.AsyncSvarUtClient.for_environment(
            "test", integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=gateway, base_url=url
        ) as client:
            await client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])

    assert gateway.calls == 2
    assert gateway.invalidated == [maskinporten.grants[0].token]
    assert standin.calls[1].token == maskinporten.grants[1].token


def test_static_token_with_svarut_auth(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    standin, url = svarut_server
    with MaskinportenTokenProvider(config(maskinporten, keystore)) as upstream:
        token = upstream.get_token()
    auth = SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=StaticToken(token))
    with svarut.SvarUtClient(base_url=url, auth=auth) as client:
        client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        standin.reject_next = 1
        with pytest.raises(AuthenticationError):  # the same token again would not help: no retry
            client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])

    assert [c.token for c in standin.calls] == [token, token]
    assert repr(StaticToken(token)) == "StaticToken(<hidden>)"
    with pytest.raises(TypeError, match="get_token"):
        SvarUtAuth(integrasjon_id=INTEGRASJON_ID, integrasjon_passord=PASSORD, token_provider=object())  # type: ignore[arg-type]


def test_closing_the_client_closes_the_token_clients(
    svarut_server: tuple[SvarUtStandIn, str], maskinporten: MaskinportenStandIn, keystore: Keystore
) -> None:
    client = sync_client(svarut_server, maskinporten, keystore)
    client.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
    provider = client._owned_token_provider
    assert provider is not None and provider._http is not None
    client.close()
    assert provider._http.is_closed


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_tls(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A certificate for 127.0.0.1 that no trust store knows."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert(key, subject="127.0.0.1", issuer_key=pki.ca_key, issuer="Test CA", ip="127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    (folder / "server.pem").write_bytes(_pem_certs(cert, pki.ca) + _pem_key(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem")
    return context


def test_tls_is_verified_by_default_and_the_switch_applies_only_where_given(
    pki: Pki, keystore: Keystore, server_tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    maskinporten = MaskinportenStandIn(trusted_ca=[pki.ca], clients={CLIENT_ID: {"ks:fiks"}})
    standin = SvarUtStandIn(maskinporten, INTEGRASJON_ID, PASSORD)
    with serve(maskinporten, tls=server_tls) as mp_url, serve(standin, tls=server_tls) as svarut_url:
        maskinporten.issuer = mp_url + "/"

        def client(*, maskinporten_insecure: bool, svarut_insecure: bool) -> svarut.SvarUtClient:
            return svarut.SvarUtClient.for_environment(
                "test",
                integrasjon_id=INTEGRASJON_ID,
                integrasjon_passord=PASSORD,
                maskinporten=config(maskinporten, keystore, insecure_disable_tls_verification=maskinporten_insecure),
                base_url=svarut_url + "/api",
                insecure_disable_tls_verification=svarut_insecure,
                retry=NO_RETRIES,  # a refused certificate is a ConnectError, which is otherwise retried
            )

        with (
            client(maskinporten_insecure=False, svarut_insecure=True) as c,
            pytest.raises(MaskinportenConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            c.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        assert maskinporten.requests == 0

        with (
            client(maskinporten_insecure=True, svarut_insecure=False) as c,
            pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            c.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        assert len(maskinporten.grants) == 1 and standin.calls == []

        with caplog.at_level(logging.WARNING), client(maskinporten_insecure=True, svarut_insecure=True) as c:
            c.hent_statuser(konto_id=KONTO_ID, ids=[uuid.uuid4()])
        assert len(standin.calls) == 1
        assert "TLS certificate verification is DISABLED for SvarUt" in caplog.text
        assert "TLS certificate verification is DISABLED for Maskinporten" in caplog.text
    assert maskinporten.rejections == standin.rejections == []


# --- secrets --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_secrets_never_reach_logs_reprs_or_error_messages(
    svarut_server: tuple[SvarUtStandIn, str],
    maskinporten: MaskinportenStandIn,
    pki: Pki,
    p12: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    standin, _ = svarut_server
    caplog.set_level(logging.DEBUG)
    for name in ("httpx2", "httpcore2", "svarut", "svarut.auth"):
        caplog.set_level(logging.DEBUG, logger=name)
    seen: list[str] = []

    def record(thing: object) -> None:
        seen.append(repr(thing))
        seen.append(str(thing))
        if isinstance(thing, BaseException):
            seen.append("".join(traceback.format_exception(thing)))

    keystore = Keystore.load(p12, password=KEYSTORE_PASSWORD)
    with sync_client(svarut_server, maskinporten, keystore) as client:
        forsendelse_id = client.send_til_person(
            konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": PDF}
        )
        standin.reject_next = 1
        client.hent_status(konto_id=KONTO_ID, forsendelse_id=forsendelse_id)
        standin.reject_next = 2
        with pytest.raises(AuthenticationError) as auth_error:
            client.hent_status(konto_id=KONTO_ID, forsendelse_id=forsendelse_id)
        record(auth_error.value)
        maskinporten.failures.append(
            Response(400, b'{"error": "invalid_grant", "error_description": "Invalid assertion"}')
        )
        assert client._owned_token_provider is not None
        record(client._owned_token_provider)
        client._owned_token_provider.invalidate(maskinporten.grants[-1].token)
        with pytest.raises(MaskinportenTokenError) as token_error:
            client.hent_status(konto_id=KONTO_ID, forsendelse_id=forsendelse_id)
        record(token_error.value)
        record(client)
        record(client._auth)

    async with async_client(svarut_server, maskinporten, keystore) as aclient:
        await aclient.send_til_person(konto_id=KONTO_ID, forsendelse=forsendelse(), dokumenter={"vedtak.pdf": PDF})
        standin.reject_next = 1
        await aclient.hent_status(konto_id=KONTO_ID, forsendelse_id=forsendelse_id)
        assert aclient._owned_token_provider is not None
        record(await aclient._owned_token_provider.aget_access_token())

    with pytest.raises(KeystoreError) as wrong_password:
        Keystore.load(p12, password=KEYSTORE_PASSWORD + "x")
    record(wrong_password.value)
    record(keystore)
    record(config(maskinporten, keystore))
    record(AccessToken(access_token=maskinporten.grants[0].token, expires_in=120, scope="ks:fiks"))
    environ_settings = {"SVARUT_ENVIRONMENT": "test", "SVARUT_INTEGRASJON_PASSORD": PASSORD}
    with pytest.raises(ValueError) as missing:
        svarut.SvarUtClient.from_env(environ=environ_settings)
    record(missing.value)

    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: POST" in logs and "send_request_headers" in logs  # httpx2 and httpcore2 did log
    haystack = logs + "\n".join(seen)
    secrets = {
        "IntegrasjonPassord": PASSORD,
        "keystore password": KEYSTORE_PASSWORD,
        "private key": _pem_key(pki.key).decode().splitlines()[5],
    }
    for i, grant in enumerate(maskinporten.grants):
        secrets[f"token {i}"] = grant.token
        secrets[f"assertion {i}"] = grant.assertion
        secrets[f"assertion signature {i}"] = grant.assertion.rsplit(".", 1)[1]
    assert len(maskinporten.grants) >= 5
    leaked = [name for name, secret in secrets.items() if secret in haystack]
    assert leaked == []
