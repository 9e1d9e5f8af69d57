"""A worker that joins a journal already holding its manifest (the same
bytes, checked with no problems, loaded, its documents unchanged) neither
checks nor loads it again, and still sends only what is left, none twice; a
changed manifest, one recorded with problems, changed documents, or a
journal from before the record are checked as before. On SQLite and on a
real PostgreSQL server."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres_server import postgres_server, postgres_url  # noqa: F401 (fixtures)
from test_batch_helpers import (
    check_report_against_simulator,
    letters,
    person_line,
    received_by_ekstern,
    write_manifest,
    write_pdf,
)

import svarut.batch
from svarut.batch import _letter
from svarut.batch import journal as j
from svarut.batch.manifest import Fingerprint, check_letters, documents_fingerprint, manifest_sha256
from svarut.simulator.pytest_plugin import SvarUtSimulatorFixture


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The manifests the batch runner checked (``check_letters``), in order."""
    seen: list[Path] = []
    original = _letter.check_letters

    def counting(manifest: Path, **kwargs: Any) -> Iterator[Any]:
        seen.append(manifest)
        return original(manifest, **kwargs)

    monkeypatch.setattr(_letter, "check_letters", counting)
    return seen


class Stop(Exception):
    pass


def _stop_after(sent: int) -> Any:
    def progress(p: svarut.batch.Progress) -> None:
        if p.sent >= sent:
            raise Stop

    return progress


def _recorded(target: str) -> list[tuple[Any, ...]]:
    with svarut.batch.open_journal(target, exclusive=False) as jn:
        jn.open_existing()
        with jn._transaction() as cur:
            return [
                tuple(r)
                for r in jn._execute(
                    cur, "SELECT sha256, problems, loaded IS NOT NULL FROM batch_manifest ORDER BY sha256"
                ).fetchall()
            ]


def _run(sim: SvarUtSimulatorFixture, manifest: Path, journal: str, **kwargs: Any) -> svarut.batch.Summary:
    return svarut.batch.run(sim.client, manifest, konto_id=sim.konto_id, journal=journal, **kwargs)


def test_a_worker_joining_the_same_manifest_does_not_check_it_and_sends_only_what_is_left(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path, journal_target: str, checks: list[Path]
) -> None:
    manifest = letters(tmp_path, 10)
    with pytest.raises(Stop):
        _run(svarut_simulator, manifest, journal_target, concurrency=1, progress=_stop_after(3))
    assert len(checks) == 1 and len(svarut_simulator.received) == 3
    assert _recorded(journal_target) == [(manifest_sha256(manifest), 0, True)]

    # Nor are the documents opened before the sends (a send reads its own).
    opened: list[str] = []
    original = svarut.batch.manifest._path

    def path(letter: Any, field_name: str, rel: Any, **kwargs: Any) -> Path | None:
        if kwargs["open_files"]:
            opened.append(str(rel))
        return original(letter, field_name, rel, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(svarut.batch.manifest, "_path", path)
        summary = _run(svarut_simulator, manifest, journal_target, concurrency=4)
    assert len(checks) == 1 and opened == []
    assert summary.done and summary.counts[j.SENT] == 10 and summary.skipped_problems == []
    assert len(svarut_simulator.received) == 10
    check_report_against_simulator(list(svarut.batch.report(journal_target)), svarut_simulator)


def test_a_changed_manifest_is_checked_again(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path, journal_target: str, checks: list[Path]
) -> None:
    write_pdf(tmp_path / "brev.pdf")
    first = [person_line(f"L{i}") for i in range(3)]
    v1 = write_manifest(tmp_path / "v1.jsonl", first)
    v2 = write_manifest(tmp_path / "v2.jsonl", [*first, person_line("L3")])
    assert _run(svarut_simulator, v1, journal_target).counts[j.SENT] == 3
    assert len(checks) == 1
    # Other bytes: checked, and the new letter sent.
    assert _run(svarut_simulator, v2, journal_target).counts[j.SENT] == 4
    assert len(checks) == 2
    # The first manifest again: its record no longer holds (another manifest was loaded since).
    assert [loaded for _, _, loaded in _recorded(journal_target)].count(True) == 1
    assert _run(svarut_simulator, v1, journal_target).counts[j.SENT] == 4
    assert len(checks) == 3
    _run(svarut_simulator, v1, journal_target)
    assert len(checks) == 3
    assert sorted(received_by_ekstern(svarut_simulator).values()) == [1, 1, 1, 1]


def test_a_manifest_recorded_with_problems_is_checked_again(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path, journal_target: str, checks: list[Path]
) -> None:
    write_pdf(tmp_path / "brev.pdf")
    manifest = write_manifest(
        tmp_path / "brev.jsonl",
        [person_line("ok"), {**person_line("gone"), "dokumenter": {"brev.pdf": "gone.pdf"}}],
    )
    first = _run(svarut_simulator, manifest, journal_target, skip_invalid=True)
    assert len(checks) == 1 and [p.ref for p in first.skipped_problems] == ["gone"]
    assert _recorded(journal_target) == [(manifest_sha256(manifest), 1, True)]
    again = _run(svarut_simulator, manifest, journal_target, skip_invalid=True)
    assert len(checks) == 2 and again.skipped_problems == first.skipped_problems
    with pytest.raises(svarut.batch.ManifestInvalidError):
        _run(svarut_simulator, manifest, journal_target)
    assert len(checks) == 3
    assert len(svarut_simulator.received) == 1


def test_documents_written_or_gone_since_the_check_make_it_checked_again(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path, journal_target: str, checks: list[Path]
) -> None:
    manifest = letters(tmp_path, 3)
    document = tmp_path / "brev.pdf"
    with svarut_simulator.new_client(integrasjon_passord="not the password") as refused:
        for expected in (1, 2):
            with pytest.raises(svarut.batch.BatchStoppedError):
                svarut.batch.run(refused, manifest, konto_id=svarut_simulator.konto_id, journal=journal_target)
            assert len(checks) == expected
            # Written since (a new modification time): the next worker checks the manifest again.
            stat = document.stat()
            os.utime(document, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    # Gone: the whole manifest is refused, as before, not its letters one by one.
    document.unlink()
    with pytest.raises(svarut.batch.ManifestInvalidError):
        _run(svarut_simulator, manifest, journal_target)
    assert len(checks) == 3 and svarut_simulator.received == []
    assert {r["state"] for r in svarut.batch.report(journal_target)} == {j.WAITING}


def test_a_journal_from_before_the_record_works(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path, journal_target: str, checks: list[Path]
) -> None:
    manifest = letters(tmp_path, 4)
    with (
        svarut_simulator.new_client(integrasjon_passord="not the password") as refused,
        pytest.raises(svarut.batch.BatchStoppedError),
    ):
        svarut.batch.run(refused, manifest, konto_id=svarut_simulator.konto_id, journal=journal_target)
    with svarut.batch.open_journal(journal_target, exclusive=False) as jn:
        jn.open_existing()
        with jn._transaction() as cur:
            jn._execute(cur, "DROP TABLE batch_manifest")
    # Nothing recorded: checked as before, and recorded from then on.
    with pytest.raises(Stop):
        _run(svarut_simulator, manifest, journal_target, concurrency=1, progress=_stop_after(2))
    assert len(checks) == 2
    assert _recorded(journal_target) == [(manifest_sha256(manifest), 0, True)]
    assert _run(svarut_simulator, manifest, journal_target).done
    assert len(checks) == 2
    check_report_against_simulator(list(svarut.batch.report(journal_target)), svarut_simulator)
    assert len(svarut_simulator.received) == 4


def test_workers_starting_together_check_the_manifest_once(
    svarut_simulator: SvarUtSimulatorFixture,
    tmp_path: Path,
    postgres_url: str,  # noqa: F811 (the fixture imported above)
    checks: list[Path],
) -> None:
    # The first to take the journal's load lock checks and loads; the others wait for it, then find
    # the manifest recorded.
    manifest = letters(tmp_path, 40)
    start = threading.Barrier(3)
    summaries: list[svarut.batch.Summary] = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with svarut_simulator.new_client() as client:
                start.wait()
                summaries.append(
                    svarut.batch.run(
                        client, manifest, konto_id=svarut_simulator.konto_id, journal=postgres_url, concurrency=2
                    )
                )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == [] and len(summaries) == 3
    assert len(checks) == 1
    assert all(s.skipped_problems == [] for s in summaries)
    assert len(svarut_simulator.received) == 40
    check_report_against_simulator(list(svarut.batch.report(postgres_url)), svarut_simulator)


def test_the_check_takes_the_documents_fingerprint_a_joining_worker_compares(
    svarut_simulator: SvarUtSimulatorFixture, tmp_path: Path
) -> None:
    # The check fingerprints each document as it opens it, with no pass of its own: for a manifest
    # that checks, the same fingerprint a joining worker takes with a stat per document.
    write_pdf(tmp_path / "brev.pdf")
    write_pdf(tmp_path / "annet.pdf", "annet")
    manifest = write_manifest(
        tmp_path / "brev.jsonl",
        [person_line("a"), person_line("b", filnavn="annet.pdf", path="annet.pdf"), person_line("c")],
    )
    taken = Fingerprint()
    found = check_letters(
        manifest, client=svarut_simulator.client, konto_id=svarut_simulator.konto_id, fingerprint=taken
    )
    assert [letter.problems for letter, _ in found] == [[], [], []]
    assert taken.hexdigest() == documents_fingerprint(manifest)
    stat = (tmp_path / "annet.pdf").stat()
    os.utime(tmp_path / "annet.pdf", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert documents_fingerprint(manifest) not in (None, taken.hexdigest())


def test_a_worker_waiting_for_the_check_takes_the_fingerprint_meanwhile(
    svarut_simulator: SvarUtSimulatorFixture,
    tmp_path: Path,
    postgres_url: str,  # noqa: F811 (the fixture imported above)
    checks: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # While the first worker holds the load lock, the second fingerprints the documents, then finds the
    # manifest recorded and checks nothing.
    manifest = letters(tmp_path, 6)
    fingerprinted = threading.Event()
    original = _letter.documents_fingerprint

    def fingerprint(path: Path) -> str | None:
        fingerprinted.set()
        return original(path)

    monkeypatch.setattr(_letter, "documents_fingerprint", fingerprint)
    summaries: list[svarut.batch.Summary] = []
    failures: list[BaseException] = []

    def second() -> None:
        try:
            with svarut_simulator.new_client() as client:
                summaries.append(
                    svarut.batch.run(client, manifest, konto_id=svarut_simulator.konto_id, journal=postgres_url)
                )
        except BaseException as exc:
            failures.append(exc)

    with j.open_journal(postgres_url) as first:
        batch = _letter.Batch(
            svarut_simulator.client,
            manifest,
            journal=first,
            konto_id=svarut_simulator.konto_id,
            lease=60,
            progress=None,
        )
        first.setup(konto_id=str(svarut_simulator.konto_id))
        with first.loading():
            thread = threading.Thread(target=second)
            thread.start()
            assert fingerprinted.wait(60), "the waiting worker did not take the fingerprint while it waited"
            assert batch._check_and_load(manifest_sha256(manifest), skip_invalid=False) == []
        thread.join(120)
    assert failures == [] and len(summaries) == 1 and summaries[0].done
    assert len(checks) == 1
    assert sorted(received_by_ekstern(svarut_simulator).values()) == [1] * 6
