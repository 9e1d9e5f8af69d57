"""Ctrl-C during ``svarut send``, through a real subprocess and a real SIGINT
against the simulator. Before a byte of the forsendelse went out nothing was
sent (exit 130); from the first byte on SvarUt may have it, so the outcome is
unknown (exit 4) and the command prints the eksternReferanse and the
``svarut avklar`` command that settles it.

Each test sends the signal only once the send is where the test wants it (the
token endpoint holds the request; the simulator holds its answer to a
forsendelse it kept), so nothing depends on timing."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from svarut.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_OUTCOME_UNKNOWN
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture

SCRIPT = Path(sys.executable).with_name("svarut")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "svarut.cli"]
FNR = "21883649874"
# How long a test waits for the send to reach the point it interrupts at: a safety net, not a timing claim.
PATIENCE = 60.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")


@pytest.fixture
def env(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> dict[str, str]:
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**bare, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **svarut_simulator.environ()}


@pytest.fixture
def vedtak(tmp_path: Path) -> Path:
    path = tmp_path / "vedtak.pdf"
    path.write_bytes(b"%PDF-1.7\n% interrupted\n%%EOF\n")
    return path


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*COMMAND, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def send_args(vedtak: Path, *extra: str) -> list[str]:
    return [
        "send",
        "person",
        "--tittel",
        "Vedtak",
        "--mottaker-navn",
        "Kari Nordmann",
        "--fodselsnummer",
        FNR,
        *extra,
        str(vedtak),
    ]


def interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=PATIENCE)


class HangingTokenEndpoint:
    """A Maskinporten token endpoint that takes the request and never answers:
    a send waiting for its token has not put a byte of the forsendelse on the wire."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/token"
        self.asked = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:  # closed by the test
            return
        self._held.append(conn)
        request = b""
        while b"\r\n\r\n" not in request and (chunk := conn.recv(65536)):
            request += chunk
        self.asked.set()

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def hanging_token_endpoint() -> Iterator[HangingTokenEndpoint]:
    endpoint = HangingTokenEndpoint()
    yield endpoint
    endpoint.close()


def test_ctrl_c_before_the_first_byte_says_nothing_was_sent_and_exits_130(
    svarut_simulator: SvarUtSimulatorFixture,
    env: dict[str, str],
    vedtak: Path,
    hanging_token_endpoint: HangingTokenEndpoint,
) -> None:
    process = start(send_args(vedtak), {**env, "MASKINPORTEN_TOKEN_ENDPOINT": hanging_token_endpoint.url})
    if not hanging_token_endpoint.asked.wait(PATIENCE):
        process.kill()
        pytest.fail(f"the send never asked for its token: {process.communicate()}")
    stdout, stderr = interrupt(process)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "nothing was sent" in stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr
    assert stdout == ""
    assert svarut_simulator.received == []
    assert not [r for r in svarut_simulator.requests if r.operation == "send"]


def wait_until_received(svarut_simulator: SvarUtSimulatorFixture, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not svarut_simulator.received:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the simulator never received the forsendelse: {process.communicate()}")
        time.sleep(0.02)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ctrl_c_after_the_body_went_out_is_an_unknown_outcome_with_the_command_that_settles_it(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], vedtak: Path, as_json: bool
) -> None:
    # SvarUt keeps the forsendelse, then holds its answer until the simulator stops.
    svarut_simulator.scenarios.slow(3600, only="send")
    process = start(send_args(vedtak, *(["--json"] if as_json else [])), env)
    wait_until_received(svarut_simulator, process)
    stdout, stderr = interrupt(process)

    assert process.returncode == EXIT_OUTCOME_UNKNOWN, stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr
    (received,) = svarut_simulator.received
    reference = received.metadata["eksternReferanse"]
    assert reference in stderr and "interrupted" in stderr
    command = next(line.strip() for line in stderr.splitlines() if line.strip().startswith("svarut "))
    words = shlex.split(command)
    assert words[words.index("--ekstern-referanse") + 1] == reference
    assert "--sendt" in words
    if as_json:
        printed = json.loads(stdout)
        assert printed["id"] is None and printed["outcome"] == "unknown"
        assert printed["eksternReferanse"] == reference and printed["avklar"] == command
    else:
        assert stdout == ""

    # The printed command settles it: SvarUt has the forsendelse.
    settled = subprocess.run([*COMMAND, *words[1:]], env=env, capture_output=True, text=True, timeout=PATIENCE)
    assert settled.returncode == EXIT_OK, settled.stderr
    assert settled.stdout.strip() == str(received.id)


def test_a_body_says_whether_its_latest_attempt_began_to_go_out() -> None:
    from svarut.runtime import multipart
    from svarut.runtime.files import Source

    document = multipart.Document("vedtak.pdf", "application/pdf", Source(b"%PDF-1.7\n" * 10, label="vedtak.pdf"))
    body = multipart.encode(
        metadata_part="forsendelse", metadata_json=b"{}", file_part="dokumenter", documents=[document]
    )
    assert not body.started and not body.completed
    stream = body.sync_stream()
    assert not body.started  # made for an attempt (its token may still be on the way): nothing out yet
    chunks = iter(stream)
    next(chunks)
    assert body.started and not body.completed
    assert list(chunks) == [] and body.completed
    body.sync_stream()  # the next attempt starts from nothing
    assert not body.started and not body.completed
