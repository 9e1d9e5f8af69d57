"""The ``svarut`` command, end to end: the console script runs as a
subprocess against a simulator started by the test (the ``svarut_simulator``
fixture), configured the way a user configures it (environment variables or
a TOML file), and the test checks what it printed, its exit code, and what
the simulator received."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from html import escape
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import svarut
from svarut import models
from svarut.cli import flags
from svarut.cli.app import cli
from svarut.cli.config import KEYS
from svarut.cli.progress import ProgressLine, ProgressReader
from svarut.cli.send import _sources
from svarut.generated import SEND_OPERATIONS
from svarut.runtime.models import RequestModel
from svarut.simulator import cms
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture

SCRIPT = Path(sys.executable).with_name("svarut")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "svarut.cli"]
FNR = "21883649874"
ORGNR = "974760673"
PDF = b"%PDF-1.7\n% cli test\n%%EOF\n"


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """The environment without any SvarUt settings, and with no config file to find."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


@pytest.fixture
def env(svarut_simulator: SvarUtSimulatorFixture, bare_env: dict[str, str]) -> dict[str, str]:
    return {**bare_env, **svarut_simulator.environ()}


@pytest.fixture
def docs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "vedtak.pdf": PDF + b"vedtak",
        "kart.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        "data.bin": PDF + b"binary name, PDF content",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in files}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def person_args(*extra: str, tittel: str = "Vedtak") -> list[str]:
    return ["send", "person", "--tittel", tittel, "--mottaker-navn", "Kari Nordmann", "--fodselsnummer", FNR, *extra]


def test_help_documents_the_exit_codes(bare_env: dict[str, str]) -> None:
    result = run(["--help"], bare_env)
    assert result.returncode == 0
    for line in (
        "0  success",
        "2  usage or configuration error",
        "3  validation error",
        "4  outcome unknown",
        "5  wait",
        "6  wait: a forsendelse ended in a failure status",
        "7  duplicate",
        "8  avklar: not received",
    ):
        assert line in result.stdout
    send_help = run(["send", "person", "--help"], bare_env)
    assert "--fodselsnummer" in send_help.stdout and "--metadata" in send_help.stdout
    assert run(["--version"], bare_env).stdout.strip() == f"svarut, version {svarut.__version__}"


def test_send_with_flags_then_status_and_wait(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    args = person_args(
        "--ekskluder-fra-utskrift",
        "kart.png",
        "--mime-type",
        "data.bin=application/pdf",
        str(docs["vedtak.pdf"]),
        str(docs["kart.png"]),
        str(docs["data.bin"]),
    )
    sent = run(args, env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stderr == ""  # not a terminal: no progress bar, nothing extra
    forsendelse_id = uuid.UUID(sent.stdout.strip())
    record = svarut_simulator.get(forsendelse_id)
    assert [(d.filnavn, d.mime_type, d.sha256) for d in record.documents] == [
        ("vedtak.pdf", "application/pdf", sha(docs["vedtak.pdf"])),
        ("kart.png", "image/png", sha(docs["kart.png"])),
        ("data.bin", "application/pdf", sha(docs["data.bin"])),
    ]
    assert record.metadata["dokumenter"][1]["skalEkskluderesFraUtskrift"] is True
    assert record.metadata["mottaker"] == {"navn": "Kari Nordmann", "digitalId": FNR}
    assert record.metadata["eksternReferanse"].startswith("fiks-svarut-")  # to look it up by if the outcome is unknown

    status = run(["status", str(forsendelse_id)], env)
    assert status.returncode == 0, status.stderr
    line_id, value, when = status.stdout.strip().split("\t")
    assert line_id == str(forsendelse_id) and value in {s.value for s in models.Status}
    assert when.startswith(str(svarut_simulator.get(forsendelse_id).received_at.year))
    as_json = json.loads(run(["status", "--json", str(forsendelse_id)], env).stdout)
    assert as_json[0]["id"] == str(forsendelse_id) and "sisteStatusEndring" in as_json[0]

    waited = run(["wait", str(forsendelse_id), "--interval", "0.05", "--timeout", "20"], env)
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.split("\t")[1] == "LEST"


def test_wait_until_an_intermediate_status(env: dict[str, str], docs: dict[str, Path]) -> None:
    forsendelse_id = run(person_args(str(docs["vedtak.pdf"])), env).stdout.strip()
    waited = run(["wait", forsendelse_id, "--until", "akseptert", "--interval", "0.02"], env)
    assert waited.returncode == 0, waited.stderr
    # AKSEPTERT or a later step of the generated specs' person journey (SENDT_ALTINN, LEVERT_ALTINN or
    # LEST from spec version 16 on; SENDT_DIGITALT, VARSLET or LEST before it).
    person = next(j.statuses for j in svarut.statuses.journeys() if j.channel == "person")
    assert waited.stdout.split("\t")[1] in person[person.index("AKSEPTERT") :]


def test_send_with_a_metadata_file_that_flags_amend(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path], tmp_path: Path
) -> None:
    metadata = {
        "tittel": "fra fila",
        "mottaker": {"navn": "Kommunen", "digitalId": ORGNR},
        "dokumenter": [{"filnavn": "vedtak.pdf", "mimeType": "application/pdf", "dokumentType": "Vedtak"}],
        "korrelasjonsid": "sak-1",
    }
    path = tmp_path / "forsendelse.json"
    path.write_text(json.dumps(metadata))
    args = ["send", "organisasjon", "--metadata", str(path), "--tittel", "fra flagget", str(docs["vedtak.pdf"])]
    sent = run(args, env)
    assert sent.returncode == 0, sent.stderr
    record = svarut_simulator.get(sent.stdout.strip())
    assert record.channel == "organisasjon" and record.tittel == "fra flagget"
    assert record.metadata["dokumenter"][0]["dokumentType"] == "Vedtak" and record.metadata["korrelasjonsid"] == "sak-1"

    mismatch = run(["send", "organisasjon", "--metadata", str(path), str(docs["kart.png"])], env)
    assert mismatch.returncode == 3 and "kart.png" in mismatch.stderr


def test_send_nhn_print_and_kryptert(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    nhn = run(
        [
            "send",
            "nhn",
            "--tittel",
            "Epikrise",
            "--mottakertype",
            "HER_ID",
            "--her-id",
            "8142519",
            "--pasient-fodselsnummer",
            FNR,
            "--pasient-fornavn",
            "Kari",
            "--pasient-etternavn",
            "Nordmann",
            "--avsender-fornavn",
            "Ola",
            "--avsender-etternavn",
            "Lege",
            "--avsender-telefon",
            "12345678",
            str(docs["vedtak.pdf"]),
        ],
        env,
    )
    assert nhn.returncode == 0, nhn.stderr
    record = svarut_simulator.get(nhn.stdout.strip())
    assert record.channel == "nhn" and record.metadata["mottakerHerId"] == 8142519
    assert [d.filnavn for d in record.documents] == ["vedtak.pdf"]

    address = [
        "--adresselinje",
        "Storgata 1",
        "--adresselinje",
        "Leil. 2",
        "--postnummer",
        "0150",
        "--poststed",
        "Oslo",
    ]
    printed = run(
        ["send", "print", "--tittel", "Brev", "--mottaker-navn", "Kari", *address, str(docs["vedtak.pdf"])], env
    )
    assert printed.returncode == 0, printed.stderr
    adresse = svarut_simulator.get(printed.stdout.strip()).metadata["mottaker"]["adresse"]
    assert adresse == {
        "adresselinje1": "Storgata 1",
        "adresselinje2": "Leil. 2",
        "postnummer": "0150",
        "poststed": "Oslo",
    }

    encrypted = run(person_args("--kryptert", str(docs["vedtak.pdf"]), tittel="Kryptert"), env)
    assert encrypted.returncode == 0, encrypted.stderr
    (document,) = svarut_simulator.get(encrypted.stdout.strip()).documents
    assert document.plaintext_sha256 == sha(docs["vedtak.pdf"]) != document.sha256


def test_validation_failure_exits_3_and_sends_nothing(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    bad_fnr = run(
        [
            "send",
            "person",
            "--tittel",
            "T",
            "--mottaker-navn",
            "K",
            "--fodselsnummer",
            "12345678901",
            str(docs["vedtak.pdf"]),
        ],
        env,
    )
    assert bad_fnr.returncode == 3
    (line, problem) = bad_fnr.stderr.strip().splitlines()
    # The message names the flag to fix, not the spec path (mottaker.digitalId); one problem a line.
    assert line == "Error: forsendelse rejected before sending (1 problem):", line
    assert problem.startswith("  --fodselsnummer: "), problem
    no_tittel = run(["send", "person", "--mottaker-navn", "K", "--fodselsnummer", FNR, str(docs["vedtak.pdf"])], env)
    assert no_tittel.returncode == 3 and "--tittel: required" in no_tittel.stderr
    png_for_print = run(person_args(str(docs["kart.png"])), env)  # not a PDF, not excluded from print
    assert png_for_print.returncode == 3 and "[printable]" in png_for_print.stderr
    assert "--mime-type kart.png: " in png_for_print.stderr
    assert "set --ekskluder-fra-utskrift on the document or --kun-digital" in png_for_print.stderr
    bad_adresse = run(["send", "print", "--tittel", "T", "--mottaker-navn", "K", str(docs["vedtak.pdf"])], env)
    assert bad_adresse.returncode == 3
    assert "mottaker.adresse (--adresselinje, --postnummer, --poststed, --landkode): required" in bad_adresse.stderr
    assert svarut_simulator.requests == []  # not even a token was asked for


def test_api_errors_exit_1(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    assert run(person_args(str(docs["vedtak.pdf"])), env).returncode == 0
    duplicate = run(person_args(str(docs["vedtak.pdf"])), env)
    assert duplicate.returncode == 7 and "GJENTAGENDE_FORSENDELSE" in duplicate.stderr
    other_konto = run(["status", "--konto", str(uuid.uuid4()), str(uuid.uuid4())], env)
    assert other_konto.returncode == 1 and "403" in other_konto.stderr
    missing = run(["status", str(uuid.uuid4())], env)
    assert missing.returncode == 9 and "has no forsendelse" in missing.stderr


def test_outcome_unknown_exits_4(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    svarut_simulator.scenarios.fail(500, only="send")
    result = run(person_args("--ekstern-referanse", "sak-42", str(docs["vedtak.pdf"])), env)
    assert result.returncode == 4
    assert "outcome unknown" in result.stderr and "'sak-42'" in result.stderr
    assert f"vedtak.pdf sha256 {sha(docs['vedtak.pdf'])}" in result.stderr

    svarut_simulator.scenarios.fail(500, only="send")
    as_json = run(person_args("--json", str(docs["vedtak.pdf"])), env)
    assert as_json.returncode == 4
    printed = json.loads(as_json.stdout)
    assert printed["id"] is None and printed["outcome"] == "unknown"
    assert printed["eksternReferanse"].startswith("fiks-svarut-") and printed["eksternReferanse"] in as_json.stderr
    assert printed["sha256"] == {"vedtak.pdf": sha(docs["vedtak.pdf"])}


@pytest.mark.svarut_simulator(step_seconds=3600)
def test_wait_timeout_exits_5(env: dict[str, str], docs: dict[str, Path]) -> None:
    forsendelse_id = run(person_args(str(docs["vedtak.pdf"])), env).stdout.strip()
    result = run(["wait", forsendelse_id, "--timeout", "0.3", "--interval", "0.05"], env)
    assert result.returncode == 5
    assert result.stdout.startswith(f"{forsendelse_id}\tMOTTATT")
    assert "timed out" in result.stderr


def test_missing_settings_exit_2(bare_env: dict[str, str]) -> None:
    some_id = str(uuid.uuid4())
    missing = run(["status", "--konto", some_id, some_id], bare_env)
    assert missing.returncode == 2
    assert "SVARUT_INTEGRASJON_PASSORD" in missing.stderr and "MASKINPORTEN_KEYSTORE" in missing.stderr


def invoke(args: list[str], env: dict[str, str]) -> Any:
    """The command in this process (click's runner), for the many small cases."""
    unset: dict[str, str | None] = {name: None for name in KEYS.values()}
    return CliRunner().invoke(cli, args, env={**unset, "XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"], **env})


def test_configuration_errors_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    some_id = str(uuid.uuid4())
    no_konto = invoke(["status", some_id], {k: v for k, v in env.items() if k != "SVARUT_KONTO_ID"})
    assert no_konto.exit_code == 2 and "--konto" in no_konto.stderr
    assert invoke(["--config", str(tmp_path / "nope.toml"), "status", some_id], env).exit_code == 2
    typo = tmp_path / "typo.toml"
    typo.write_text('integrasjon_ide = "x"\n')
    result = invoke(["--config", str(typo), "status", some_id], env)
    assert result.exit_code == 2 and "integrasjon_ide" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("environment = \n")
    assert invoke(["--config", str(broken), "status", some_id], env).exit_code == 2
    assert invoke(["status", "not-a-uuid"], env).exit_code == 2  # click's usage error
    bad_keystore = invoke(["--keystore", str(typo), "status", some_id], env)
    assert bad_keystore.exit_code == 2 and "PEM" in bad_keystore.stderr
    bad_url = invoke(["--base-url", "http://example.org/api", "status", some_id], env)
    assert bad_url.exit_code == 2 and "https" in bad_url.stderr
    too_many_lines = invoke(
        [
            "send",
            "print",
            "--adresselinje",
            "1",
            "--adresselinje",
            "2",
            "--adresselinje",
            "3",
            "--adresselinje",
            "4",
            str(typo),
        ],
        env,
    )
    assert too_many_lines.exit_code == 2


def test_config_file_and_precedence(
    svarut_simulator: SvarUtSimulatorFixture, bare_env: dict[str, str], docs: dict[str, Path], tmp_path: Path
) -> None:
    settings = svarut_simulator.environ()
    folder = tmp_path / "xdg" / "svarut"
    folder.mkdir(parents=True)
    (folder / "virksomhet.pem").write_bytes(Path(settings["MASKINPORTEN_KEYSTORE"]).read_bytes())
    (folder / "config.toml").write_text(
        f"""
environment = "test"
base_url = "http://127.0.0.1:9/api"  # wrong on purpose: the environment overrides it
konto_id = "{settings["SVARUT_KONTO_ID"]}"
integrasjon_id = "{settings["SVARUT_INTEGRASJON_ID"]}"
integrasjon_passord = "{settings["SVARUT_INTEGRASJON_PASSORD"]}"

[maskinporten]
client_id = "{settings["MASKINPORTEN_CLIENT_ID"]}"
keystore = "virksomhet.pem"
issuer = "{settings["MASKINPORTEN_ISSUER"]}"
token_endpoint = "{settings["MASKINPORTEN_TOKEN_ENDPOINT"]}"
"""
    )
    env = {**bare_env, "SVARUT_BASE_URL": settings["SVARUT_BASE_URL"]}  # found at ~/.config/svarut/config.toml
    sent = run(person_args(str(docs["vedtak.pdf"])), env)
    assert sent.returncode == 0, sent.stderr
    assert svarut_simulator.get(sent.stdout.strip()).tittel == "Vedtak"
    flagged = run(["--integrasjon-id", str(uuid.uuid4()), "status", sent.stdout.strip()], env)
    assert flagged.returncode == 1 and "403" in flagged.stderr  # the flag beats the file


def test_secrets_are_never_printed(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    secret = env["SVARUT_INTEGRASJON_PASSORD"]
    svarut_simulator.scenarios.fail(500, only="send")
    outputs = [
        run(["-v", *person_args(str(docs["vedtak.pdf"]))], env),
        run(["-v", "status", "--konto", str(uuid.uuid4()), str(uuid.uuid4())], env),
        run(["-v", "status", str(uuid.uuid4())], {**env, "SVARUT_INTEGRASJON_PASSORD": secret + "x"}),
    ]
    assert [r.returncode for r in outputs] == [4, 1, 1]
    assert "Traceback" in outputs[0].stderr  # -v shows the details
    for result in outputs:
        assert secret not in result.stdout + result.stderr
        assert "PRIVATE KEY" not in result.stdout + result.stderr
        assert not re.search(r"Bearer [\w-]{20,}", result.stderr)


def test_encrypt(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path], tmp_path: Path
) -> None:
    certificate = tmp_path / "svarut.pem"
    certificate.write_bytes(svarut_simulator.simulator.keys.svarut.certificate_pem)
    keys = svarut_simulator.simulator.keys.svarut
    for args in (["--sertifikat", str(certificate)], ["--key-transport", "pkcs1v15"]):  # a file, or fetched from SvarUt
        out = tmp_path / f"vedtak-{len(args)}.cms"
        result = run(["encrypt", *args, str(docs["vedtak.pdf"]), str(out)], env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "" and "encrypted" in result.stderr
        decrypted = cms.decrypt_file(out, private_key=keys.private_key, certificate=keys.certificate)
        assert decrypted.sha256 == sha(docs["vedtak.pdf"])
    both = run(
        ["encrypt", "--sertifikat", str(certificate), "--environment", "test", str(docs["vedtak.pdf"]), "x"], env
    )
    assert both.returncode == 2
    assert run(["encrypt", "--sertifikat", str(docs["vedtak.pdf"]), str(docs["vedtak.pdf"]), "x"], env).returncode == 2


def test_simulator_command_runs_until_interrupted(bare_env: dict[str, str], docs: dict[str, Path]) -> None:
    # Started the way a shell starts a background job: SIGINT inherited as ignored.
    # The command restores Ctrl-C itself, so the SIGINT below stops it all the same.
    process = subprocess.Popen(
        ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *COMMAND, "simulator", "--step-seconds", "0"],
        env=bare_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        for line in process.stdout:
            if match := re.match(r"\s*export (\w+)=(\S+)", line):
                exports[match[1]] = match[2]
            if "Ctrl-C" in line:
                break
        assert set(exports) >= {"SVARUT_BASE_URL", "SVARUT_INTEGRASJON_PASSORD", "MASKINPORTEN_KEYSTORE"}
        with svarut.SvarUtClient.from_env(environ=exports) as client:
            forsendelse = models.PersonForsendelse(
                tittel="Via simulator-kommandoen",
                mottaker=models.Mottaker(navn="Kari", digital_id=FNR),
                dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
            )
            forsendelse_id = client.send_til_person(
                konto_id=exports["SVARUT_KONTO_ID"],
                forsendelse=forsendelse,
                dokumenter={"vedtak.pdf": docs["vedtak.pdf"]},
            )
            assert (
                client.hent_status(konto_id=exports["SVARUT_KONTO_ID"], forsendelse_id=forsendelse_id).status == "LEST"
            )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr = process.stderr.read() if process.stderr else ""
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert "received person forsendelse" in stderr


# --- in-process: the progress reader -----------------------------------------------------------


class FakeBar:
    def __init__(self) -> None:
        self.steps: list[int] = []

    def update(self, n_steps: int) -> None:
        self.steps.append(n_steps)


def test_progress_counts_each_byte_once(tmp_path: Path) -> None:
    path = tmp_path / "stor.pdf"
    path.write_bytes(PDF + bytes(3 * 1024 * 1024))
    bar = FakeBar()
    with io.BufferedReader(ProgressReader(io.FileIO(path, "rb"), bar), buffer_size=64 * 1024) as reader:
        assert reader.read(5) == b"%PDF-"  # the client sniffs the start...
        reader.seek(0)
        data = reader.read()  # ...then sends it all
        reader.seek(0)
        reader.read()  # and may send it again after a token refresh
    assert data == path.read_bytes()
    assert sum(bar.steps) == path.stat().st_size


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "stor.pdf"
    path.write_bytes(bytes(8 * 1024 * 1024))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delenv("SVARUT_PROGRESS", raising=False)
    from contextlib import ExitStack

    with ExitStack() as stack:
        assert _sources([path], stack) == {"stor.pdf": path}


# --- the send subcommands follow the specs --------------------------------------------------


def test_every_declared_flag_applies_to_a_send_operation_of_the_locked_spec() -> None:
    assert flags.unused_flags(SEND_OPERATIONS) == []
    for operation in SEND_OPERATIONS.values():
        if operation.document_model is not None:  # each file fills in its document's filnavn and mimeType
            fields = operation.document_model.model_fields
            assert {flags.DOCUMENT_NAME_FIELD, flags.DOCUMENT_TYPE_FIELD} <= set(fields), operation.kind


def test_a_flag_whose_path_left_every_model_fails_by_flag_and_path() -> None:
    class Bare(RequestModel):
        filnavn: str
        mime_type: str

    stripped = {kind: dataclasses.replace(op, model=Bare, document_model=Bare) for kind, op in SEND_OPERATIONS.items()}
    problems = flags.unused_flags(stripped)
    assert "--mottaker-navn: the forsendelse path mottaker.navn is in no send operation's model" in problems
    assert (
        "--ekskluder-fra-utskrift: the document path skalEkskluderesFraUtskrift is in no send operation's model"
        in problems
    )
    assert len(problems) == len(flags.FLAGS)  # every one of them
    gone = flags.Flag("--fodselsnummer", "mottaker.digitalId", "", kinds=frozenset({"person"}))
    without_person = {k: op for k, op in SEND_OPERATIONS.items() if k != "person"}
    assert flags.unused_flags(without_person, [gone]) == [
        "--fodselsnummer: restricted to person, which is no send operation",
        "--fodselsnummer: the forsendelse path mottaker.digitalId is in no send operation's model",
    ]


def test_each_send_operation_is_a_subcommand_with_the_flags_its_model_has(bare_env: dict[str, str]) -> None:
    listing = invoke(["send", "--help"], bare_env)
    assert listing.exit_code == 0, listing.output
    for kind, operation in SEND_OPERATIONS.items():
        assert re.search(rf"^  {kind}\s", listing.output, re.M), listing.output
        result = invoke(["send", kind, "--help"], bare_env)
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert " ".join(operation.summary.split())[:60] in text
        for binding in flags.FLAGS:
            offered = flags.applies(binding, kind, operation.model, operation.document_model)
            assert (f"{binding.flag} " in text or f"{binding.flag}," in text) == offered, (kind, binding.flag)
    nhn = " ".join(invoke(["send", "nhn", "--help"], bare_env).output.split())
    assert "[FASTLEGE|HER_ID]" in nhn  # the choices come from the model's enum
    assert "--her-id INTEGER" in nhn
    assert "--ekskluder-fra-utskrift" not in invoke(["send", "print", "--help"], bare_env).output


def test_felt_sets_any_field_and_json_prints_id_and_ekstern_referanse(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    result = run(
        [
            "send",
            "organisasjon",
            "--tittel",
            "Med felt",
            "--mottaker-navn",
            "Kommunen",
            "--orgnr",
            ORGNR,
            "--felt",
            'konteringskode="K-1"',
            "--felt",
            "forsendelsestype=Brev",  # not JSON: taken as text
            "--felt",
            'dokumenter[0].dokumentType="Vedtak"',
            "--json",
            str(docs["vedtak.pdf"]),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {"id", "eksternReferanse"}
    record = svarut_simulator.get(printed["id"])
    assert record.metadata["eksternReferanse"] == printed["eksternReferanse"]
    assert record.metadata["konteringskode"] == "K-1" and record.metadata["forsendelsestype"] == "Brev"
    assert record.metadata["dokumenter"][0]["dokumentType"] == "Vedtak"

    given = run(person_args("--ekstern-referanse", "sak-7", "--json", str(docs["vedtak.pdf"])), env)
    assert json.loads(given.stdout)["eksternReferanse"] == "sak-7"

    unknown = run([*person_args("--felt", "prioritet=1"), str(docs["vedtak.pdf"])], env)
    assert unknown.returncode == 2 and "--felt prioritet: the person forsendelse has no such field" in unknown.stderr
    no_element = run([*person_args("--felt", "dokumenter[3].skalSigneres=true"), str(docs["vedtak.pdf"])], env)
    assert no_element.returncode == 2 and "no element dokumenter[3]" in no_element.stderr


def test_forced_progress_shows_bytes_rate_eta_then_the_wait(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], tmp_path: Path
) -> None:
    big = tmp_path / "stor.pdf"
    big.write_bytes(PDF + bytes(2 * 1024 * 1024))
    result = run(person_args(str(big)), {**env, "SVARUT_PROGRESS": "1"})
    assert result.returncode == 0, result.stderr
    uuid.UUID(result.stdout.strip())  # stdout stays the id alone
    # One line rewritten with \r (text mode reads each \r as a line end).
    final = [part for part in re.split(r"[\r\n]", result.stderr) if part.strip()]
    uploading = [part for part in final if part.startswith("uploading")]
    assert uploading and re.match(r"uploading 2\.1 MB / 2\.1 MB \(100%\)\s+[\d.]+ [kMG]?B/s\s+ETA 0:00", uploading[-1])
    assert re.match(r"uploaded 2\.1 MB in \d+:\d\d; waiting for SvarUt \d+:\d\d", final[-1]), final[-1]
    assert result.stderr.endswith("\n")
    assert run(person_args(str(big), tittel="Uten"), {**env, "SVARUT_PROGRESS": "0"}).stderr == ""


def test_progress_line_with_a_clock() -> None:
    now = [100.0]
    out = io.StringIO()
    line = ProgressLine(4_000_000, out, clock=lambda: now[0])
    now[0] = 102.0
    line.update(1_000_000)
    assert out.getvalue() == "\ruploading 1.0 MB / 4.0 MB (25%)  500.0 kB/s  ETA 0:06"
    now[0] = 102.1
    line.update(1_000_000)  # redrawn at most five times a second
    assert out.getvalue().count("\r") == 1
    now[0] = 104.0
    line.update(2_000_000)
    upload, waiting = out.getvalue().split("\r")[-2:]
    assert upload.startswith("uploading 4.0 MB / 4.0 MB (100%)")
    # Padded to cover the longer line before it.
    assert waiting == "uploaded 4.0 MB in 0:04; waiting for SvarUt 0:00".ljust(len(upload.rstrip()))
    now[0] = 175.0
    line.close()
    assert out.getvalue().endswith("\n")


# --- the simulator's page ------------------------------------------------------------------


def test_simulator_page_shows_ekstern_referanse_rejections_and_document_links(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], docs: dict[str, Path]
) -> None:
    import httpx2

    args = person_args(
        "--kun-digital", "--ekstern-referanse", "sak-<99>", str(docs["vedtak.pdf"]), str(docs["data.bin"])
    )
    sent = run(args, env)
    assert sent.returncode == 0, sent.stderr
    forbidden = run(["status", "--konto", str(uuid.uuid4()), sent.stdout.strip()], env)  # 403: not this integration's
    assert forbidden.returncode == 1
    unauthorized = httpx2.post(f"{env['SVARUT_BASE_URL']}/v3/kontoer/{uuid.uuid4()}/forsendelser/person")
    assert unauthorized.status_code == 401

    page = httpx2.get(svarut_simulator.simulator.page_url).text
    assert "<td class='mono'>sak-&lt;99&gt;</td>" in page
    rejected = page[page.index("Rejected requests") :]
    assert rejected.count("<tr>") == 3  # the header, the 401 and the 403, not the 200s
    assert "<td>401</td>" in rejected and "<td>403</td>" in rejected
    for status in (401, 403):
        (request,) = [r for r in svarut_simulator.requests if r.status == status]
        assert request.error is not None and escape(request.error) in rejected
    links = re.findall(r"<a href='(/simulator/forsendelser/[^']+)'>([^<]+)</a>", page)
    assert [name for _, name in links] == ["vedtak.pdf", "data.bin"]
    for (link, name), expected in zip(links, (docs["vedtak.pdf"], docs["data.bin"]), strict=True):
        document = httpx2.get(svarut_simulator.simulator.url + link)
        assert document.status_code == 200 and document.content == expected.read_bytes()
        assert document.headers["content-type"] == (
            "application/pdf" if name == "vedtak.pdf" else "application/octet-stream"
        )
    missing = httpx2.get(f"{svarut_simulator.simulator.url}{links[0][0][:-1]}9")
    assert missing.status_code == 404
