"""A throwaway copy of the project, relocked and regenerated from other specs,
for the tests that change the specs under the whole product
(``test_spec_history.py``, ``test_spec_evolution.py``).

:func:`copy_project` copies the sources (not ``.venv``, ``.git`` or caches);
:func:`relock` runs ``python -m generator update-specs`` inside the copy, as a
maintainer would; :func:`generate` runs ``python -m generator generate``;
:func:`run_in` runs Python in a subprocess with the copy first on
``PYTHONPATH``, so ``import svarut`` is the copy's. :data:`SEND_SCRIPT` sends
one forsendelse of every kind the copy's specs have to the copy's simulator.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from generator_helpers import HISTORY, OFFICIAL_SPECS

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["HISTORY", "OFFICIAL_SPECS", "copy_project", "generate", "relock", "run_in", "write_lock"]
_IGNORED = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "*.egg-info", "results*.json"
)


def copy_project(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=_IGNORED)
    return dest


def _env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVARUT_", "MASKINPORTEN_", "PYTHON"))}
    return {**env, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}


def run_in(copy: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python *args`` in ``copy``, with the copy first on the path."""
    return subprocess.run(
        [sys.executable, *args], cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=timeout
    )


def relock(copy: Path, specs_dir: Path, commit: str) -> subprocess.CompletedProcess[str]:
    """``update-specs`` in ``copy``: lock the spec files of ``specs_dir`` as ``commit``."""
    return run_in(
        copy,
        "-m",
        "generator",
        "--specs-dir",
        str(OFFICIAL_SPECS),
        "--lock",
        str(copy / "specs" / "lock.json"),
        "update-specs",
        "--commit",
        commit,
        "--from-dir",
        str(specs_dir),
    )


def write_lock(copy: Path, specs_dir: Path, commit: str) -> None:
    """Lock exactly the spec files in ``specs_dir`` (a lock written by hand,
    for a set of files ``update-specs`` cannot reach from today's lock)."""
    lock_path = copy / "specs" / "lock.json"
    lock = json.loads(lock_path.read_text())
    entries = []
    for entry in lock["specs"]:
        path = specs_dir / entry["file"]
        if path.exists():
            entries.append(
                {**entry, "upstream_commit": commit, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            )
    lock.pop("references", None)  # the versions locked by hand reference no other document
    lock_path.write_text(json.dumps({**lock, "specs": entries}, indent=2) + "\n")


def generate(copy: Path, specs_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_in(copy, "-m", "generator", "--specs-dir", str(specs_dir), "generate")


#: Run in a copy: one send of every kind in SEND_OPERATIONS, with the sync and
#: the async client, to the copy's simulator, then the status of each. Prints a
#: JSON summary on its last line.
SEND_SCRIPT = r"""
import json
import sys
from datetime import date, datetime, timedelta, timezone
from uuid import uuid4

import anyio

import svarut
from svarut import statuses, utfall
from svarut.generated import SEND_OPERATIONS
from svarut.simulator import Simulator

PDF = b"%PDF-1.7\n% spec history\n%%EOF\n"
# Values a rule checks beyond the spec's types (a valid test fødselsnummer,
# organisasjonsnummer, a file name and type), by the spec's field name; by
# (kind, field) where the kinds differ. Besides the required fields, a
# forsendelse gets these where its model has them. The sends run the pre-send
# rules (validate=True, the default): they are part of what must follow the spec.
SAMPLES = {
    "fodselsnummer": "21883649874",
    ("person", "digitalId"): "21883649874",
    ("organisasjon", "digitalId"): "974760673",
    "filnavn": "brev.pdf",
    "mimeType": "application/pdf",
    "postnummer": "0150",
    "poststed": "OSLO",
    "landkode": "NO",
    "telefonnummer": "22334455",
}


def value(kind, name, schema, defs):
    if "$ref" in schema:
        return value(kind, name, defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ((kind, name), name):
        if key in SAMPLES:
            return SAMPLES[key]
    if "anyOf" in schema:
        return value(kind, name, next(s for s in schema["anyOf"] if s.get("type") != "null"), defs)
    if "allOf" in schema:
        return value(kind, name, schema["allOf"][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind_of = schema.get("type")
    if kind_of == "object" or "properties" in schema:
        props = schema.get("properties", {})
        wanted = [p for p in props if p in schema.get("required", []) or p in SAMPLES or (kind, p) in SAMPLES]
        return {p: value(kind, p, props[p], defs) for p in wanted}
    if kind_of == "array":
        return [value(kind, name, schema.get("items", {}), defs) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind_of in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind_of == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid4())
    if fmt == "date-time":
        return (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    if fmt == "date":
        return (date.today() + timedelta(days=2)).isoformat()
    return "x" * max(schema.get("minLength", 1), 1)


def minimal(op, tittel):
    schema = op.model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    data = value(op.kind, "", schema, defs)
    data["tittel"] = tittel
    files = svarut.File(filnavn="brev.pdf", content=PDF, mime_type="application/pdf")
    if op.described_by:
        item = op.document_model.model_json_schema(by_alias=True)
        data[op.described_by] = [value(op.kind, "", item, {**defs, **item.get("$defs", {})})]
        files = {"brev.pdf": PDF}
    return op.model.model_validate(data), files


def send_all(client, konto_id, flavour):
    sent = {}
    for kind, op in SEND_OPERATIONS.items():
        forsendelse, files = minimal(op, f"{flavour} {kind}")
        method = getattr(client, op.method_name)
        sent[kind] = (method, op.arguments(konto_id=konto_id, forsendelse=forsendelse, files=files))
    return sent


def check_statuses(waited, ids):
    ended = {str(i): str(s.status) for i, s in waited.items()}
    assert set(ended) == {str(i) for i in ids}, ended
    assert all(statuses.is_terminal(s) for s in ended.values()), ended
    return ended


def no_status_search(exc):
    assert "have no status search" in str(exc), exc
    return "no status search"


async def run_async(sim):
    ids = {}
    async with sim.async_client() as client:
        for kind, (method, kwargs) in send_all(client, sim.konto_id, "async").items():
            ids[kind] = await method(**kwargs)
        try:
            waited = await client.vent_pa_status(konto_id=sim.konto_id, ids=list(ids.values()), interval=0.05)
        except statuses.StatusSearchUnavailableError as exc:
            return ids, no_status_search(exc)
    return ids, check_statuses(waited, ids.values())


with Simulator(step_seconds=0) as sim:
    ids = {}
    with sim.client() as client:
        for kind, (method, kwargs) in send_all(client, sim.konto_id, "sync").items():
            ids[kind] = method(**kwargs)
        try:
            sync_statuses = check_statuses(
                client.vent_pa_status(konto_id=sim.konto_id, ids=list(ids.values()), interval=0.05), ids.values()
            )
        except statuses.StatusSearchUnavailableError as exc:
            sync_statuses = no_status_search(exc)
    async_ids, async_statuses = anyio.run(run_async, sim)
    assert statuses.has_status_search() == (sync_statuses != "no status search")
    received = {str(r.id): r.channel for r in sim.received}
    for kind, forsendelse_id in [*ids.items(), *async_ids.items()]:
        assert received[str(forsendelse_id)] == kind, (kind, received)
    # Settling an unknown outcome: by the eksternRef lookup where the specs have it.
    first = sim.received[0]
    with sim.client() as client:
        try:
            found = client.avklar_utfall(konto_id=sim.konto_id, ekstern_referanse=first.ekstern_referanse, sendt=None)
            avklar = found.tilstand
            assert found.forsendelse_id == first.id, found
        except utfall.LookupUnavailableError as exc:
            assert "no eksternRef lookup" in str(exc), exc
            avklar = "no lookup"
    summary = {"kinds": sorted(SEND_OPERATIONS), "sync": sync_statuses, "async": async_statuses, "avklar": avklar}
    print(json.dumps(summary))
"""
