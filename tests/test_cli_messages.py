"""What ``svarut`` says, in a user's terms: the flag or argument to fix (not
the Python API's ``dokumenter={...}`` or pydantic's type names), one problem a
line, "remove the spaces" for an identifier with spaces, a not-found exit code
of its own, the output path in an error of ``encrypt``, and one time format in
text and JSON. The console script runs as a subprocess against the simulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from svarut.cli import EXIT_NOT_FOUND, EXIT_USAGE, EXIT_VALIDATION
from svarut.runtime import kryptering
from svarut.runtime.errors import ForsendelseValidationError
from svarut.runtime.identifiers import fodselsnummer_problem, organisasjonsnummer_problem
from svarut.runtime.multipart import DocumentProblem, match_documents
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture

SCRIPT = Path(sys.executable).with_name("svarut")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "svarut.cli"]
FNR = "21883649874"
PDF = b"%PDF-1.7\n% messages\n%%EOF\n"
# Python's words, which a user of the command line should never have to read.
PYTHON_TERMS = ("={", "Field required", "Input should", "instance of", "dictionary", "[Errno", "Traceback")
# The one time format: ISO 8601 in UTC, with microseconds and the offset.
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def env(svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path) -> dict[str, str]:
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_"))}
    return {**bare, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **svarut_simulator.environ()}


@pytest.fixture
def vedtak(tmp_path: Path) -> Path:
    path = tmp_path / "vedtak.pdf"
    path.write_bytes(PDF)
    return path


def person(*extra: str, fodselsnummer: str = FNR) -> list[str]:
    return [
        "send",
        "person",
        "--tittel",
        "Vedtak",
        "--mottaker-navn",
        "Kari Nordmann",
        "--fodselsnummer",
        fodselsnummer,
        *extra,
    ]


def problem_lines(stderr: str) -> list[str]:
    """The problems of a refused forsendelse, one a line after the line that counts them."""
    first, *rest = stderr.strip().splitlines()
    assert re.fullmatch(r"Error: forsendelse rejected before sending \(\d+ problems?\):", first), first
    return [line.strip() for line in rest]


def assert_plain(output: str) -> None:
    for term in PYTHON_TERMS:
        assert term not in output, (term, output)


# --- the documents: the DOKUMENTER argument, not dokumenter={...} -------------------------------


def test_documents_the_metadata_lists_and_the_files_given_disagree_name_the_argument_one_per_line(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], vedtak: Path, tmp_path: Path
) -> None:
    metadata = tmp_path / "forsendelse.json"
    listed = [{"filnavn": n, "mimeType": "application/pdf"} for n in ("vedtak.pdf", "vedlegg.pdf")]
    metadata.write_text(json.dumps({"dokumenter": listed}), encoding="utf-8")
    kart = tmp_path / "kart.pdf"
    kart.write_bytes(PDF)

    result = run(person("--metadata", str(metadata), str(vedtak), str(kart)), env)

    assert result.returncode == EXIT_VALIDATION, result.stderr
    assert_plain(result.stderr)
    missing, not_listed = problem_lines(result.stderr)
    assert missing.startswith("DOKUMENTER: ") and "give the file vedlegg.pdf as a DOKUMENTER argument" in missing
    assert not_listed.startswith("DOKUMENTER kart.pdf: ") and "does not list kart.pdf" in not_listed
    assert svarut_simulator.requests == []


def test_document_problems_carry_the_document_and_the_parameter_for_a_caller_to_phrase() -> None:
    metadata = {"dokumenter": [{"filnavn": "vedtak.pdf"}, {"filnavn": "vedlegg.pdf"}, {"filnavn": "vedtak.pdf"}]}
    with pytest.raises(ForsendelseValidationError) as raised:
        match_documents(metadata, "dokumenter", {"vedtak.pdf": PDF, "kart.pdf": PDF}, part_name="dokumenter")
    problems = {p.rule: p for p in raised.value.problems}
    assert all(isinstance(p, DocumentProblem) for p in problems.values())
    missing = problems["document_missing"]
    assert isinstance(missing, DocumentProblem)
    assert (missing.filnavn, missing.parameter, missing.described_by, missing.index) == (
        "vedlegg.pdf",
        "dokumenter",
        "dokumenter",
        1,
    )
    assert missing.field == "dokumenter[1].filnavn"  # as before, for the Python API
    extra = problems["document_not_described"]
    assert isinstance(extra, DocumentProblem) and (extra.filnavn, extra.index) == ("kart.pdf", None)
    twice = problems["filename_unique"]
    assert isinstance(twice, DocumentProblem) and (twice.filnavn, twice.index) == ("vedtak.pdf", 2)


# --- pydantic's words --------------------------------------------------------------------------


def test_model_errors_name_the_flags_in_plain_words(env: dict[str, str], vedtak: Path) -> None:
    no_mottaker = run(["send", "print", "--tittel", "Brev", str(vedtak)], env)
    assert no_mottaker.returncode == EXIT_VALIDATION
    assert_plain(no_mottaker.stderr)
    (line,) = problem_lines(no_mottaker.stderr)
    assert line.startswith("mottaker (--mottaker-navn, --adresselinje,") and ": required" in line

    wrong_types = run(person("--felt", 'kunDigitalLevering="kanskje"', "--felt", "konteringskode=5", str(vedtak)), env)
    assert wrong_types.returncode == EXIT_VALIDATION
    assert_plain(wrong_types.stderr)
    assert sorted(problem_lines(wrong_types.stderr)) == [
        "--kun-digital: must be true or false [bool_parsing]",
        "konteringskode: must be text [string_type]",
    ]


# --- identifiers -------------------------------------------------------------------------------


def test_an_identifier_with_spaces_says_remove_the_spaces(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], vedtak: Path
) -> None:
    assert "remove the spaces" in (fodselsnummer_problem("218836 49874") or "")
    assert "remove the spaces" in (fodselsnummer_problem("2188364987 ") or "")  # 11 characters, one a space
    assert "remove the spaces" in (organisasjonsnummer_problem("974 760 673") or "")
    assert fodselsnummer_problem("2188364987") == "must be 11 digits"

    result = run(person(str(vedtak), fodselsnummer="218836 49874"), env)
    assert result.returncode == EXIT_VALIDATION
    assert_plain(result.stderr)
    (line,) = problem_lines(result.stderr)
    assert line.startswith("--fodselsnummer: ") and "remove the spaces" in line
    assert "218836" not in result.stderr  # messages never quote the number
    assert svarut_simulator.requests == []


# --- status: not found -------------------------------------------------------------------------


def test_status_of_an_unknown_id_exits_not_found_and_prints_the_ones_it_has(env: dict[str, str], vedtak: Path) -> None:
    sent = run(person(str(vedtak)), env)
    assert sent.returncode == 0, sent.stderr
    known, unknown = sent.stdout.strip(), str(uuid.uuid4())

    result = run(["status", known, unknown], env)

    assert result.returncode == EXIT_NOT_FOUND == 9
    assert result.stdout.startswith(f"{known}\t")
    assert unknown in result.stderr and "has no forsendelse" in result.stderr
    assert "9  not found" in run(["--help"], env).stdout


# --- encrypt: the output path ------------------------------------------------------------------


def test_encrypt_into_a_missing_directory_names_the_output_path(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], vedtak: Path, tmp_path: Path
) -> None:
    certificate = tmp_path / "svarut.pem"
    certificate.write_bytes(svarut_simulator.simulator.keys.svarut.certificate_pem)
    output = tmp_path / "missing" / "vedtak.pdf.cms"

    result = run(["encrypt", "--sertifikat", str(certificate), str(vedtak), str(output)], env)

    assert result.returncode == EXIT_USAGE
    assert str(output) in result.stderr and "does not exist" in result.stderr
    assert ".tmp" not in result.stderr
    assert_plain(result.stderr)

    # The runtime's own error names it too, for an application that calls it.
    with pytest.raises(FileNotFoundError) as raised:
        kryptering.encrypt_path(vedtak, output, kryptering.SvarUtSertifikat.load(certificate))
    assert raised.value.filename == str(output) and ".tmp" not in str(raised.value)
    assert not output.parent.exists()


# --- one time format ---------------------------------------------------------------------------


def test_every_time_printed_has_one_format_in_text_and_json(
    svarut_simulator: SvarUtSimulatorFixture, env: dict[str, str], vedtak: Path
) -> None:
    sent = json.loads(run(person("--json", str(vedtak)), env).stdout)
    forsendelse_id, reference = sent["id"], sent["eksternReferanse"]
    times: list[str] = []

    for command in (["status"], ["wait"]):
        text = run([*command, forsendelse_id], env)
        assert text.returncode == 0, text.stderr
        times.append(text.stdout.strip().split("\t")[2])
        as_json = run([*command, "--json", forsendelse_id], env)
        (row,) = json.loads(as_json.stdout)
        times.append(row["sisteStatusEndring"])

    settled = json.loads(
        run(["avklar", "--json", "--ekstern-referanse", reference, "--sendt", "2026-05-04T10:15:00+02:00"], env).stdout
    )
    times += [settled["sendt"], settled["sjekket"]]

    svarut_simulator.scenarios.fail(500, only="send")
    unknown = run(person("--json", "--tittel", "Ukjent", str(vedtak)), env)
    assert unknown.returncode == 4, unknown.stderr
    printed = json.loads(unknown.stdout)
    times.append(printed["sendt"])
    command_sendt = printed["avklar"].split("--sendt ")[1]
    times.append(command_sendt)

    assert times and all(TIME.fullmatch(t) for t in times), times
    assert settled["sendt"] == "2026-05-04T08:15:00.000000+00:00"
