"""Issue 22, items 4 and 5: the public API's types say what it takes and
gives, checked the way a user's code is, by running mypy on a small user file."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

USER_CODE = """
import uuid
from pathlib import Path

from svarut import AsyncSvarUtClient, SvarUtClient, models
from svarut.generated import SEND_OPERATIONS


def wait(client: SvarUtClient, konto: uuid.UUID, fid: uuid.UUID) -> None:
    client.vent_pa_status(konto_id=konto, ids=[fid], until={"AKSEPTERT"})
    client.vent_pa_status(konto_id=konto, ids=[fid], until={models.Status.LEVERT_ALTINN, "LEST"})
    client.vent_pa_status(konto_id=konto, ids=[fid], until="AKSEPTERT")  # E: a bare str
    client.vent_pa_status(konto_id=konto, ids=[fid], until={"AKSEPTRT"})  # E: not a status
    client.vent_pa_status(konto_id=konto, ids=[fid], terminal={"FERDIG"})  # E: not a status


def send(client: SvarUtClient, forsendelse: models.PersonForsendelse) -> None:
    op = SEND_OPERATIONS["person"]
    reveal_type(op)  # R: svarut.runtime.operations.SendOperation[svarut.generated.models.PersonForsendelse]
    prepared = op.prepare(client, konto_id="k", forsendelse=forsendelse, dokumenter={"brev.pdf": Path("brev.pdf")})
    reveal_type(prepared)  # R: svarut.runtime.request_types.Prepared[uuid.UUID]
    reveal_type(client.send_prepared(prepared))  # R: uuid.UUID
    nhn = models.NhnForsendelse.model_construct()
    op.prepare(client, konto_id="k", forsendelse=nhn, dokumenter=Path("x"))  # E: another operation's model
    reveal_type(SEND_OPERATIONS[input()])  # R: svarut.runtime.operations.SendOperation[pydantic.main.BaseModel]


async def asend(client: AsyncSvarUtClient, forsendelse: models.PrintForsendelse) -> None:
    prepared = SEND_OPERATIONS["print"].prepare(client, konto_id="k", forsendelse=forsendelse, dokumenter={})
    reveal_type(await client.send_prepared(prepared))  # R: uuid.UUID


def status(client: SvarUtClient) -> None:
    found = client.hent_status(konto_id="k", forsendelse_id="f")
    reveal_type(found.status)  # R: svarut.generated.models.Status | svarut.generated.models.UnknownValue


SvarUtClient(base_url="https://svarut.example", environment="prod")
SvarUtClient(base_url="https://svarut.example", environment="tset")  # E: not an environment
SvarUtClient.for_environment("production", integrasjon_id="i", integrasjon_passord="p")  # E: not an environment
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], str]:
    folder = tmp_path_factory.mktemp("user")
    code = textwrap.dedent(USER_CODE)
    (folder / "user.py").write_text(code)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(folder / "cache"), "user.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return code.splitlines(), done.stdout + done.stderr


def _marked(lines: list[str], mark: str) -> dict[int, str]:
    return {n: line.split(f"# {mark}:", 1)[1].strip() for n, line in enumerate(lines, 1) if f"# {mark}:" in line}


def test_mypy_rejects_exactly_the_marked_lines(mypy_output: tuple[list[str], str]) -> None:
    lines, output = mypy_output
    errors = {int(m[1]) for m in re.finditer(r"^user\.py:(\d+): error:", output, re.M)}
    assert errors == set(_marked(lines, "E")), output


def test_the_public_results_have_precise_types(mypy_output: tuple[list[str], str]) -> None:
    lines, output = mypy_output
    revealed = {int(m[1]): m[2] for m in re.finditer(r'^user\.py:(\d+): note: Revealed type is "(.*)"$', output, re.M)}
    assert revealed == _marked(lines, "R"), output
    assert "Any" not in " ".join(revealed.values())
