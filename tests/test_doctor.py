"""``svarut doctor`` against a real simulator on 127.0.0.1, with each link of
the chain broken in turn: a keystore with the wrong password, an expired
certificate, a scope the client lacks, a wrong integration password, a konto
without access, a skewed clock, and a TLS certificate the trust does not
cover. Keys, keystores and certificates are made in the test."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, pkcs12

from svarut import doctor
from svarut.cli.app import cli
from svarut.simulator import Simulator, generate_key_pair
from svarut.simulator.keys import SIMULATED_ORGNR, KeyPair, tls_certificates

KEYSTORE_PASSWORD = "ks-" + secrets.token_urlsafe(12)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(storage_dir=tmp_path / "sim", step_seconds=0) as simulator:
        yield simulator


def settings(sim: Simulator, tmp_path: Path, **overrides: str | None) -> dict[str, str | None]:
    """The environment of a ``svarut`` run against ``sim``: none of the
    caller's own SvarUt settings, no config file to find."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**cleared, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **sim.environ(), **overrides}


def run_doctor(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", *args], env=env, catch_exceptions=False)


def lines(result: Result) -> dict[str, str]:
    """The line of each link, by link name."""
    found = {}
    for line in result.output.splitlines():
        mark, _, rest = line.partition(" ")
        number, link = rest.split()[:2]
        assert mark in ("ok", "warn", "FAIL", "skip") and number.isdigit(), line
        found[link] = line
    return found


def assert_no_secrets(result: Result, *passwords: str) -> None:
    for password in passwords:
        assert password not in result.output


def pem_keystore(tmp_path: Path, pair: KeyPair, name: str = "virksomhet.pem") -> str:
    return str(pair.write_pem(tmp_path / name))


# --- a healthy setup ---------------------------------------------------------------------------


def test_every_link_holds_against_a_healthy_simulator(sim: Simulator, tmp_path: Path) -> None:
    result = run_doctor(settings(sim, tmp_path))
    assert result.exit_code == 0, result.output
    shown = lines(result)
    assert list(shown) == list(doctor.LINKS)
    assert all(line.startswith("ok ") for line in shown.values()), result.output
    assert f"organisation number {SIMULATED_ORGNR}" in shown["keystore"]
    assert "'ks:fiks'" in shown["maskinporten"]
    assert str(sim.konto_id) in shown["svarut"]
    assert "SVARUT_INTEGRASJON_PASSORD" in shown["configuration"]  # where it is set, not what it is
    assert_no_secrets(result, sim.integrasjon_passord)
    # The harmless status search is the only SvarUt call, and changed nothing.
    assert [r.operation for r in sim.requests if r.path.startswith("/api/")] == ["status"]
    assert sim.received == []


def test_json_is_one_document_for_scripts(sim: Simulator, tmp_path: Path) -> None:
    result = run_doctor(settings(sim, tmp_path, MASKINPORTEN_KEYSTORE_PASSWORD=KEYSTORE_PASSWORD), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["broken"] is None
    assert [link["link"] for link in report["links"]] == list(doctor.LINKS)
    assert {link["status"] for link in report["links"]} == {"ok"}
    configured = report["links"][0]["details"]["settings"]
    assert configured["SVARUT_INTEGRASJON_PASSORD"] == {"source": "environment", "value": None}
    assert configured["MASKINPORTEN_KEYSTORE_PASSWORD"]["value"] is None
    assert configured["SVARUT_KONTO_ID"]["value"] == str(sim.konto_id)
    assert report["links"][1]["details"]["organisasjonsnummer"] == SIMULATED_ORGNR
    assert_no_secrets(result, sim.integrasjon_passord, KEYSTORE_PASSWORD)


def test_settings_from_a_flag_and_a_config_file_say_so(sim: Simulator, tmp_path: Path) -> None:
    env = settings(sim, tmp_path)
    passord = env.pop("SVARUT_INTEGRASJON_PASSORD")
    env["SVARUT_INTEGRASJON_PASSORD"] = None
    config = tmp_path / "svarut.toml"
    config.write_text(f'integrasjon_passord = "{passord}"\n')
    konto = env.pop("SVARUT_KONTO_ID")
    env["SVARUT_KONTO_ID"] = None
    result = CliRunner().invoke(
        cli, ["--config", str(config), "doctor", "--json", "--konto", str(konto)], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    configured = json.loads(result.output)["links"][0]["details"]["settings"]
    assert configured["SVARUT_INTEGRASJON_PASSORD"]["source"] == f"config file {config}"
    assert configured["SVARUT_KONTO_ID"]["source"] == "flag"
    assert_no_secrets(result, str(passord))


def test_diagnose_from_python(sim: Simulator) -> None:
    report = doctor.diagnose(sim.environ())
    assert report.ok and report.broken is None
    assert report["tls"].status == "ok" and "plain HTTP" in report["tls"].summary


# --- each link broken in turn ------------------------------------------------------------------


def test_missing_settings_are_a_configuration_error(tmp_path: Path, sim: Simulator) -> None:
    env = settings(sim, tmp_path, SVARUT_INTEGRASJON_PASSORD="")
    env["SVARUT_KONTO_ID"] = None
    result = run_doctor(env)
    assert result.exit_code == 2, result.output
    shown = lines(result)
    assert shown["configuration"].startswith("FAIL")
    assert "SVARUT_INTEGRASJON_PASSORD" in shown["configuration"] and "--konto" in shown["configuration"]
    assert all(shown[link].startswith("skip") for link in doctor.LINKS[1:])


def test_an_unreadable_config_file_is_a_configuration_error(tmp_path: Path, sim: Simulator) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("environment = \n")
    result = CliRunner().invoke(
        cli, ["--config", str(broken), "doctor", "--json"], env=settings(sim, tmp_path), catch_exceptions=False
    )
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["broken"] == "configuration" and "TOML" in report["links"][0]["summary"]


def test_wrong_keystore_password(sim: Simulator, tmp_path: Path) -> None:
    pair = sim.keys.client
    keystore = tmp_path / "virksomhet.p12"
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"virksomhet", pair.private_key, pair.certificate, None, BestAvailableEncryption(KEYSTORE_PASSWORD.encode())
        )
    )
    wrong = "feil-" + secrets.token_urlsafe(12)
    result = run_doctor(
        settings(sim, tmp_path, MASKINPORTEN_KEYSTORE=str(keystore), MASKINPORTEN_KEYSTORE_PASSWORD=wrong)
    )
    assert result.exit_code == 1, result.output
    shown = lines(result)
    assert shown["keystore"].startswith("FAIL  2 keystore")
    assert "the password is wrong" in shown["keystore"] and "Fix: set MASKINPORTEN_KEYSTORE_PASSWORD" in result.output
    assert shown["maskinporten"].startswith("skip")
    assert_no_secrets(result, wrong, KEYSTORE_PASSWORD, sim.integrasjon_passord)
    # The right password opens it, and Maskinporten takes its certificate.
    right = run_doctor(
        settings(sim, tmp_path, MASKINPORTEN_KEYSTORE=str(keystore), MASKINPORTEN_KEYSTORE_PASSWORD=KEYSTORE_PASSWORD)
    )
    assert right.exit_code == 0, right.output
    assert_no_secrets(right, KEYSTORE_PASSWORD)


def test_expired_certificate(sim: Simulator, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    expired = generate_key_pair(
        "Utløpt virksomhet", not_valid_before=now - timedelta(days=400), not_valid_after=now - timedelta(days=2)
    )
    result = run_doctor(settings(sim, tmp_path, MASKINPORTEN_KEYSTORE=pem_keystore(tmp_path, expired)))
    assert result.exit_code == 1, result.output
    shown = lines(result)
    assert shown["keystore"].startswith("FAIL") and "expired on" in shown["keystore"]
    assert "Fix: renew the virksomhetssertifikat" in shown["keystore"]


def test_maskinporten_refuses_an_expired_certificate_as_invalid_client(sim: Simulator) -> None:
    # The client's keystore refuses to sign with it; Maskinporten refuses it all the same.
    now = datetime.now(UTC)
    expired = generate_key_pair(
        "Utløpt", not_valid_before=now - timedelta(days=400), not_valid_after=now - timedelta(days=2)
    )
    issued = int(time.time())
    claims = {
        "aud": sim.maskinporten_issuer,
        "iss": sim.maskinporten_client_id,
        "scope": "ks:fiks",
        "iat": issued,
        "exp": issued + 60,
        "jti": str(uuid.uuid4()),
    }
    x5c = [base64.b64encode(expired.certificate.public_bytes(Encoding.DER)).decode()]
    assertion = jwt.encode(claims, expired.private_key, algorithm="RS256", headers={"typ": None, "x5c": x5c})
    response = httpx2.post(
        sim.token_endpoint, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client" and "expired" in response.json()["error_description"]


def test_certificate_expiring_soon_is_a_warning(sim: Simulator, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    soon = generate_key_pair(
        "Snart utløpt", organization_number=SIMULATED_ORGNR, not_valid_after=now + timedelta(days=10)
    )
    result = run_doctor(settings(sim, tmp_path, MASKINPORTEN_KEYSTORE=pem_keystore(tmp_path, soon)))
    assert result.exit_code == 0, result.output
    shown = lines(result)
    assert (
        shown["keystore"].startswith("warn") and "expires in" in shown["keystore"] and "Fix: renew" in shown["keystore"]
    )


def test_scope_the_client_lacks(tmp_path: Path) -> None:
    with Simulator(storage_dir=tmp_path / "sim", maskinporten_scopes=["ks:annet"]) as sim:
        result = run_doctor(settings(sim, tmp_path))
    assert result.exit_code == 1, result.output
    shown = lines(result)
    assert shown["maskinporten"].startswith("FAIL  3 maskinporten") and "invalid_scope" in shown["maskinporten"]
    assert "Fix: give the integration the scope ks:fiks in Samarbeidsportalen" in shown["maskinporten"]
    assert shown["clock"].startswith("ok")  # the token request was answered: its Date was read
    assert shown["svarut"].startswith("skip")


def test_unknown_maskinporten_client(sim: Simulator, tmp_path: Path) -> None:
    result = run_doctor(settings(sim, tmp_path, MASKINPORTEN_CLIENT_ID="ukjent-klient"))
    assert result.exit_code == 1
    assert "invalid_client" in lines(result)["maskinporten"] and "MASKINPORTEN_CLIENT_ID" in result.output


def test_wrong_integration_password(sim: Simulator, tmp_path: Path) -> None:
    wrong = "feil-" + secrets.token_urlsafe(16)
    result = run_doctor(settings(sim, tmp_path, SVARUT_INTEGRASJON_PASSORD=wrong))
    assert result.exit_code == 1, result.output
    shown = lines(result)
    # The simulator answers 403 with its reason, as it answers the client.
    assert shown["svarut"].startswith("FAIL  5 svarut") and "wrong integration credentials" in shown["svarut"]
    assert "Fix: check SVARUT_INTEGRASJON_ID and SVARUT_INTEGRASJON_PASSORD" in shown["svarut"]
    assert shown["sertifikat"].startswith("skip")
    assert_no_secrets(result, wrong, sim.integrasjon_passord)


def test_konto_without_access(sim: Simulator, tmp_path: Path) -> None:
    other = uuid.uuid4()
    result = run_doctor(settings(sim, tmp_path), "--konto", str(other))
    assert result.exit_code == 1, result.output
    shown = lines(result)
    assert shown["svarut"].startswith("FAIL") and f"no access to konto {other}" in shown["svarut"]
    assert "Fiks Forvaltning" in shown["svarut"]


def test_clock_far_off_breaks_the_token_and_says_so(tmp_path: Path) -> None:
    # Maskinporten's clock 5 minutes ahead: this machine's is 5 minutes behind, so its assertions have expired.
    with Simulator(storage_dir=tmp_path / "sim", clock_offset=300) as sim:
        result = run_doctor(settings(sim, tmp_path), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    token, clock = report["links"][2], report["links"][3]
    assert token["status"] == "fail" and "invalid_grant" in token["summary"] and "clock" in token["summary"]
    assert clock["status"] == "fail" and re.search(r"\b(299|300)\.\d s behind", clock["summary"])
    assert "Maskinporten refuses" in clock["summary"] and "NTP" in clock["fix"]
    assert -310 < clock["details"]["skew_seconds"] < -290
    assert report["broken"] == "maskinporten"
    assert [link["status"] for link in report["links"][4:]] == ["skipped"] * 3


def test_clock_somewhat_off_is_a_warning(tmp_path: Path) -> None:
    # 20 s behind Maskinporten: its assertions are still taken, but it is worth fixing.
    with Simulator(storage_dir=tmp_path / "sim", clock_offset=20) as sim:
        result = run_doctor(settings(sim, tmp_path))
    assert result.exit_code == 0, result.output
    clock = lines(result)["clock"]
    assert clock.startswith("warn  4 clock") and "behind" in clock and "Fix: sync" in clock


# --- TLS ------------------------------------------------------------------------------------


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate a throwaway CA signed, and that CA."""
    certs = tls_certificates(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/api", certs.ca
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_tls_not_trusted_names_the_issuer_and_the_fix(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca = https_server
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = doctor.check_tls([url])
    assert result.status == "fail"
    assert "fiks-svarut throwaway CA" in result.summary
    assert result.fix is not None and "TLS-inspecting proxy" in result.fix and "SSL_CERT_FILE" in result.fix
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    trusted = doctor.check_tls([url])
    assert trusted.status == "ok" and "fiks-svarut throwaway CA" in trusted.summary and str(ca) in trusted.summary


class TlsFront:
    """A TLS-terminating front on 127.0.0.1 for a plain-HTTP server, as a
    reverse proxy (or a TLS-inspecting one) stands in front of a service:
    its certificate is signed by a throwaway CA no default trust has."""

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        self._target = target_port
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> TlsFront:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepting.join()
        for thread in self._threads:
            thread.join()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(connection,))
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(connection)
            connection.settimeout(5)
            try:
                front = stack.enter_context(self._context.wrap_socket(connection, server_side=True))
            except (ssl.SSLError, OSError):
                return  # the client refused the certificate: what the test is about
            back = stack.enter_context(socket.create_connection(("127.0.0.1", self._target)))
            with contextlib.suppress(OSError):
                self._pipe(front, back)

    def _pipe(self, front: ssl.SSLSocket, back: socket.socket) -> None:
        while not self._stop.is_set():
            # Bytes TLS already decrypted wait in the SSL object, where select cannot see them.
            ready = [front] if front.pending() else select.select([front, back], [], [], 0.05)[0]
            for source in ready:
                data = source.recv(65536)
                if not data:
                    return
                (back if source is front else front).sendall(data)


@pytest.fixture
def tls_front(sim: Simulator, tmp_path: Path) -> Iterator[tuple[TlsFront, Path]]:
    certs = tls_certificates(tmp_path / "front")
    with TlsFront(sim.port, certs.cert, certs.key) as front:
        yield front, certs.ca


def over_tls(sim: Simulator, tmp_path: Path, front: TlsFront, **trust: str | None) -> dict[str, str | None]:
    # The issuer stays the simulator's own (it is the assertions' aud); the requests go through the front.
    root = f"https://127.0.0.1:{front.port}"
    return settings(
        sim,
        tmp_path,
        SVARUT_BASE_URL=root + "/api",
        MASKINPORTEN_TOKEN_ENDPOINT=root + sim.token_path,
        **trust,
    )


def test_a_certificate_the_trust_lacks_is_named_with_its_issuer(
    sim: Simulator, tmp_path: Path, tls_front: tuple[TlsFront, Path]
) -> None:
    front, _ = tls_front
    result = run_doctor(over_tls(sim, tmp_path, front, SSL_CERT_FILE=None, SSL_CERT_DIR=None))
    assert result.exit_code == 1, result.output
    shown = lines(result)
    # The token request is the first to meet the certificate.
    assert shown["maskinporten"].startswith("FAIL") and "TLS:" in shown["maskinporten"]
    assert "issuer CN=fiks-svarut throwaway CA" in shown["maskinporten"]
    assert "Fix: a TLS-inspecting proxy? set SSL_CERT_FILE" in shown["maskinporten"]
    assert shown["svarut"].startswith("skip")


def test_every_link_holds_over_tls_with_the_ca_in_ssl_cert_file(
    sim: Simulator, tmp_path: Path, tls_front: tuple[TlsFront, Path]
) -> None:
    front, ca = tls_front
    result = run_doctor(over_tls(sim, tmp_path, front, SSL_CERT_FILE=str(ca), SSL_CERT_DIR=None), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    tls = report["links"][6]
    assert tls["status"] == "ok" and f"SSL_CERT_FILE={ca}" in tls["summary"]
    assert tls["details"]["servers"] == {f"https://127.0.0.1:{front.port}": {"issuer": "CN=fiks-svarut throwaway CA"}}
    assert report["links"][5]["details"]["url"] == f"https://127.0.0.1:{front.port}/forsendelse/publickey/hent"
