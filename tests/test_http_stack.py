"""The HTTP stack: httpx2 and httpcore2, and the settings a user gives it.

- ``http_client=`` takes an httpx2 client. A client of the older ``httpx``
  package (this project's stack up to 0.2) is refused when the client is made,
  with what to pass: with httpx2's requests it would fail at the first send
  (``Invalid type for url``), and its errors are not the ones the client's
  retry and "may have arrived" decisions see. ``httpx`` is in the test extra
  for these tests only; the installed client never imports it (checked here,
  and tests/test_wheel.py checks that a clean install has no ``httpx``).
- The async client's sync twin (svarut/runtime/transport.py) reads httpcore2's
  pool: it must copy the caller's TLS context (custom CA, client certificate),
  limits and timeouts, and step aside for a proxy or mounts.
- The default trust is the operating system's store (truststore), and
  ``SSL_CERT_FILE`` still names another CA bundle.
"""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
import sys
import uuid
from dataclasses import astuple
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import svarut
from svarut import models
from svarut.auth import MaskinportenConfig, MaskinportenTokenProvider, StaticToken
from svarut.errors import SvarUtError
from svarut.runtime.transport import SyncTwin
from svarut.simulator.keys import throwaway_keys, tls_certificates

KONTO = uuid.UUID("0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11")
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64


def person() -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf")],
    )


# --- a plain httpx client ----------------------------------------------------------------

OLD_SYNC = r"takes an httpx2\.Client, not an httpx\.Client: .*`import httpx2`"
OLD_ASYNC = r"takes an httpx2\.AsyncClient, not an httpx\.AsyncClient: .*`import httpx2`"


def test_a_plain_httpx_client_is_refused_with_what_to_pass() -> None:
    with (
        httpx.Client() as http,
        pytest.raises(TypeError, match="^SvarUtClient" + r"\(http_client=\.\.\.\) " + OLD_SYNC),
    ):
        svarut.SvarUtClient(base_url="http://127.0.0.1:9/api", http_client=http)  # type: ignore[arg-type]


async def _async_refused() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(TypeError, match="^AsyncSvarUtClient" + r"\(http_client=\.\.\.\) " + OLD_ASYNC):
            svarut.AsyncSvarUtClient(base_url="http://127.0.0.1:9/api", http_client=http)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_plain_httpx_async_client_is_refused_with_what_to_pass() -> None:
    await _async_refused()


@pytest.mark.parametrize("cls", [svarut.SvarUtClient, svarut.AsyncSvarUtClient])
def test_for_environment_refuses_a_plain_httpx_client_before_anything_else(cls: Any) -> None:
    # Before: the token provider silently dropped it, and the first send failed.
    http = httpx.Client() if cls is svarut.SvarUtClient else httpx.AsyncClient()
    keys = throwaway_keys()
    maskinporten = MaskinportenConfig(client_id="c", keystore=keys.client.keystore())
    with pytest.raises(TypeError, match=OLD_SYNC if cls is svarut.SvarUtClient else OLD_ASYNC):
        cls.for_environment(
            "test",
            integrasjon_id=str(uuid.uuid4()),
            integrasjon_passord="p",
            maskinporten=maskinporten,
            http_client=http,
        )


def test_the_token_provider_refuses_a_plain_httpx_client() -> None:
    keys = throwaway_keys()
    config = MaskinportenConfig(client_id="c", keystore=keys.client.keystore())
    with httpx.Client() as http, pytest.raises(TypeError, match="^MaskinportenTokenProvider.*" + OLD_SYNC):
        MaskinportenTokenProvider(config, environment="test", http_client=http)  # type: ignore[arg-type]


def test_the_other_flavour_of_httpx2_client_is_refused_too() -> None:
    http = httpx2.AsyncClient()
    with pytest.raises(TypeError, match=r"takes an httpx2\.Client, not an httpx2\.AsyncClient"):
        svarut.SvarUtClient(base_url="http://127.0.0.1:9/api", http_client=http)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes an httpx2\.Client, not builtins\.str"):
        svarut.SvarUtClient(base_url="http://127.0.0.1:9/api", http_client="http://proxy")  # type: ignore[arg-type]


def test_a_subclass_of_an_httpx2_client_is_accepted() -> None:
    class Mine(httpx2.Client):
        pass

    with Mine() as http, svarut.SvarUtClient(base_url="http://127.0.0.1:9/api", http_client=http) as client:
        assert client._http is http


def test_the_client_imports_neither_httpx_nor_httpcore() -> None:
    # httpx is installed in the test venv (for the tests above): a stray `import httpx` would pass unnoticed.
    probe = (
        "import sys, svarut, svarut.simulator, svarut.cli, svarut.batch, svarut.auth, svarut.runtime.transport; "
        "svarut.SvarUtClient(base_url='http://127.0.0.1:9/api')._http; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore', 'certifi')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_svarut_source_names_no_httpx_outside_the_refusal() -> None:
    import re

    root = Path(svarut.__file__).parent
    hits = [
        f"{p.relative_to(root)}:{n}"
        for p in root.rglob("*.py")
        if p.name != "http_clients.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\bhttp(x|core)\b", line)
    ]
    assert hits == []


# --- the sync twin reads httpcore2's pool ----------------------------------------------


def test_the_twin_copies_tls_context_limits_and_timeouts() -> None:
    context = ssl.create_default_context()
    limits = httpx2.Limits(max_connections=7, max_keepalive_connections=3, keepalive_expiry=9.0)
    timeout = httpx2.Timeout(12.0, connect=3.0)
    http = httpx2.AsyncClient(verify=context, limits=limits, timeout=timeout, follow_redirects=False)
    twin = SyncTwin(http, None)
    assert twin.http is not None
    pool: Any = twin.http._transport._pool  # type: ignore[attr-defined]
    assert type(pool).__module__.split(".")[0] == "httpcore2"
    assert pool._ssl_context is context  # the same object: its CA, client certificate and options
    assert (pool._max_connections, pool._max_keepalive_connections, pool._keepalive_expiry) == (7, 3, 9.0)
    assert twin.http.timeout == timeout and twin.http.follow_redirects is False
    assert twin._limiter.total_tokens == 7
    twin.close()


def _hook(request: httpx2.Request) -> None:
    pass


@pytest.mark.parametrize(
    "options",
    [
        {"transport": httpx2.MockTransport(lambda request: httpx2.Response(200))},
        {"mounts": {"http://": httpx2.MockTransport(lambda request: httpx2.Response(200))}},
        {"event_hooks": {"request": [_hook]}},
    ],
    ids=["mock", "mounted-mock", "event-hooks"],
)
def test_the_twin_steps_aside_for_what_it_cannot_copy(options: dict[str, Any]) -> None:
    assert SyncTwin(httpx2.AsyncClient(**options), None).http is None


def _routes(http: Any) -> dict[str, str]:
    """Each mounted pattern and what it routes to: ``direct``, or the proxy's URL."""
    out = {}
    for pattern, transport in http._mounts.items():
        if transport is None:
            out[pattern.pattern] = "direct"
        else:
            url = transport._pool._proxy_url
            out[pattern.pattern] = f"{url.scheme.decode()}://{url.host.decode()}:{url.port}"
    return out


def test_the_twin_takes_the_routes_of_a_proxy_and_no_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "localhost,.intern.kommune.no,10.0.0.0/8")
    http = httpx2.AsyncClient()
    twin = SyncTwin(http, None)
    assert twin.http is not None
    assert _routes(twin.http) == _routes(http) and "https://" in _routes(http)
    proxy: Any = twin.http._mounts[next(p for p in twin.http._mounts if p.pattern == "https://")]
    assert type(proxy._pool).__name__ == "HTTPProxy"
    assert dict(proxy._pool._proxy_headers)[b"Proxy-Authorization"].startswith(b"Basic ")
    twin.close()


def test_no_proxy_alone_keeps_the_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    # As company networks set it: per-host direct routes, and no proxy at all.
    monkeypatch.setenv("no_proxy", "localhost,.intern.kommune.no,10.0.0.0/8")
    http = httpx2.AsyncClient()
    assert http._mounts  # httpx2 made routes from the environment
    twin = SyncTwin(http, None)
    assert twin.http is not None and set(_routes(twin.http).values()) == {"direct"}
    twin.close()


def test_the_clients_own_http_client_bounds_no_connections() -> None:
    async def made() -> Any:
        async with svarut.AsyncSvarUtClient(base_url="http://127.0.0.1:9/api") as client:
            twin = client._sync_twin()
            return client._http._transport._pool._max_connections, twin._limiter.total_tokens  # type: ignore[attr-defined]

    import anyio

    max_connections, tokens = anyio.run(made)
    assert max_connections >= sys.maxsize and tokens == float("inf")
    with svarut.SvarUtClient(base_url="http://127.0.0.1:9/api") as client:
        assert client._http._transport._pool._max_connections >= sys.maxsize  # type: ignore[attr-defined]


# --- TLS against a real server ---------------------------------------------------------


def _client_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed client certificate the server trusts directly."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fiks-svarut test client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "client.pem", directory / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(server: Any, tmp_path: Path) -> Any:
    """The recording server over TLS (a CA made for the test), asking for a client certificate."""
    ca, cert, key = astuple(tls_certificates(tmp_path))
    client_cert, client_key = _client_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(client_cert))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.ca, server.client_cert, server.client_key = ca, client_cert, client_key
    server.https_url = server.base_url.replace("http://", "https://")
    return server


def _mtls_context(tls_server: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls_server.ca))
    context.load_cert_chain(tls_server.client_cert, tls_server.client_key)
    return context


def test_sync_send_with_a_custom_ca_and_a_client_certificate(tls_server: Any) -> None:
    with (
        httpx2.Client(verify=_mtls_context(tls_server)) as http,
        svarut.SvarUtClient(base_url=tls_server.https_url, http_client=http, validate=False) as client,
    ):
        client.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
    [request] = tls_server.requests
    assert int(request.headers["Content-Length"]) == len(request.body) and PDF in request.body


@pytest.mark.anyio
async def test_async_send_through_the_twin_with_a_custom_ca_and_a_client_certificate(tls_server: Any) -> None:
    async with (
        httpx2.AsyncClient(verify=_mtls_context(tls_server)) as http,
        svarut.AsyncSvarUtClient(base_url=tls_server.https_url, http_client=http, validate=False) as client,
    ):
        await client.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
        assert client._twin is not None and client._twin.http is not None  # the twin sent it
    [request] = tls_server.requests
    assert int(request.headers["Content-Length"]) == len(request.body) and PDF in request.body


@pytest.mark.anyio
async def test_without_the_client_certificate_nothing_arrives(tls_server: Any) -> None:
    verify = ssl.create_default_context(cafile=str(tls_server.ca))
    async with (
        httpx2.AsyncClient(verify=verify) as http,
        svarut.AsyncSvarUtClient(
            base_url=tls_server.https_url, http_client=http, validate=False, retry=svarut.NO_RETRIES
        ) as client,
    ):
        with pytest.raises(SvarUtError):
            await client.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
    assert tls_server.requests == []


@pytest.fixture
def plain_tls_server(server: Any, tmp_path: Path) -> Any:
    ca, cert, key = astuple(tls_certificates(tmp_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.ca = ca
    server.https_url = server.base_url.replace("http://", "https://")
    return server


@pytest.mark.anyio
async def test_ssl_cert_file_still_names_the_ca_of_the_default_clients(
    plain_tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default trust is the OS store (truststore); SSL_CERT_FILE replaces it, as with httpx.
    monkeypatch.setenv("SSL_CERT_FILE", str(plain_tls_server.ca))
    with svarut.SvarUtClient(base_url=plain_tls_server.https_url, validate=False) as client:
        client.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
    async with svarut.AsyncSvarUtClient(base_url=plain_tls_server.https_url, validate=False) as aclient:
        await aclient.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
        assert aclient._twin is not None and aclient._twin.http is not None
    assert len(plain_tls_server.requests) == 2


# --- a proxy ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sends_go_through_the_callers_proxy(server: Any) -> None:
    # The recording server stands in for an HTTP proxy: the request line carries the absolute URL.
    proxy = server.base_url.removesuffix("/api")
    with (
        httpx2.Client(proxy=proxy) as http,
        svarut.SvarUtClient(base_url="http://svarut.invalid/api", http_client=http, validate=False) as client,
    ):
        client.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
    async with (
        httpx2.AsyncClient(proxy=proxy) as ahttp,
        svarut.AsyncSvarUtClient(base_url="http://svarut.invalid/api", http_client=ahttp, validate=False) as aclient,
    ):
        await aclient.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
        assert aclient._twin is not None and aclient._twin.http is not None  # the twin, through the same proxy
    paths = [r.path for r in server.requests]
    assert [p.split("/v3/")[0] for p in paths] == ["http://svarut.invalid/api"] * 2, paths
    assert all(int(r.headers["Content-Length"]) == len(r.body) for r in server.requests)


@pytest.mark.anyio
@pytest.mark.parametrize("no_proxy", [None, "localhost,.intern.kommune.no,10.0.0.0/8"])
async def test_a_proxy_from_the_environment_carries_the_async_clients_sends(
    server: Any, monkeypatch: pytest.MonkeyPatch, no_proxy: str | None
) -> None:
    # The recording server stands in for the company's proxy, with credentials in its URL.
    proxy = server.base_url.removesuffix("/api").replace("http://", "http://kommune:hemmelig@")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    async with svarut.AsyncSvarUtClient(base_url="http://svarut.invalid/api", validate=False) as aclient:
        await aclient.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
        assert aclient._twin is not None and aclient._twin.http is not None
    [request] = server.requests
    assert request.path.startswith("http://svarut.invalid/api/v3/")
    assert request.headers["Proxy-Authorization"].startswith("Basic ")
    assert int(request.headers["Content-Length"]) == len(request.body)


@pytest.mark.anyio
async def test_no_proxy_routes_the_async_clients_sends_direct_through_the_twin(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: a send through it would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.intern.kommune.no")
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, validate=False) as aclient:
        await aclient.send_til_person(konto_id=KONTO, forsendelse=person(), dokumenter={"a.pdf": PDF})
        assert aclient._twin is not None and aclient._twin.http is not None
    [request] = server.requests
    assert request.path.startswith("/api/v3/") and "Proxy-Authorization" not in request.headers


def test_static_token_clients_still_take_an_httpx2_client() -> None:
    with httpx2.Client() as http:
        client = svarut.SvarUtClient.for_environment(
            "test",
            integrasjon_id=str(uuid.uuid4()),
            integrasjon_passord="p",
            token_provider=StaticToken("t"),
            http_client=http,
        )
        assert client._http is http
        client.close()
