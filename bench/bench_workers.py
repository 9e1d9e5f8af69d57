"""Benchmark of batch sending by several workers on one PostgreSQL journal:
4 worker processes at concurrency 8 against 1 process at concurrency 8, on the
same letters, to a receiver that takes 100 ms to answer a send, as SvarUt does.

    python bench/bench_workers.py [--letters 10000] [--rounds 1] [--quick] [--strict] [--json FILE]

What it starts, all on 127.0.0.1 and all stopped at the end: a throwaway
PostgreSQL cluster (Debian's binaries, ``/usr/lib/postgresql/<version>/bin``;
under root the cluster belongs to ``nobody``, as in ``tests/postgres_server.py``,
since initdb refuses root) with ``pg_stat_statements`` preloaded, and
``bench/sink.py --delay 0.1``. Every letter carries its own 20 KB PDF, and the
manifest is the one ``bench_batch.py`` writes.

Each worker is a separate process (this file with ``--worker``) running
``svarut.batch.run``, what ``svarut batch run`` runs, with a ``postgresql://``
journal: the CLI itself would need Maskinporten credentials, which the sink
does not serve. Every run gets a fresh database. Runs alternate (1 worker,
4 workers, ``--rounds`` times) since the machine may be shared; the ratio is
the median of the paired ratios.

Two clocks, each with its own row and the target ≥ 3.5× the throughput of one
worker: the wall clock (from starting the first worker process to the last
one's exit, so the 4 workers' start-up and the manifest's check count: the
first worker checks and loads it, the others wait for that) and the
sink's (from the first body byte it received to the last: the sending alone).

After every run, a letter sent twice fails the bench loudly: the sink must
have received exactly one request per letter, and the journal must hold every
letter as sent with distinct forsendelse ids (the sink answers each request
with a fresh uuid, so N requests and N distinct recorded ids mean one send
each).

The claim statements' share: ``pg_stat_statements`` ``total_exec_time`` of
the statements that claim letters (the ``FOR UPDATE SKIP LOCKED`` select and
the update and select that follow it in the claim's transaction) in the
4-worker runs, over the sum of the 4 workers' wall times; the journal's
statements in all (commits included) alongside, but for the time workers
wait for the journal's load lock (``pg_advisory_lock``: the first worker
checks and loads the manifest, the others wait for it, then find it
recorded and check nothing), which is shown on its own. Server-side execution time
only: the round trips to the server are the workers' own time.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START = time.time()  # the worker's own start, before its imports

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_batch import Sink, make_letters  # noqa: E402  (bench_batch.py's manifest and sink, the same letters)

ROOT = HERE.parent
KONTO = "00000000-0000-4000-8000-000000000001"
WORKERS = 4
CONCURRENCY = 8
DELAY = 0.1
MIN_RATIO = 3.5
UNPRIVILEGED = "nobody"
POSTGRES_HINT = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install -y postgresql"


def _env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [e.get("PYTHONPATH")])])
    return e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """A throwaway cluster in ``root`` on a free port, with pg_stat_statements preloaded."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.port = _free_port()
        self.data = root / "data"

    @staticmethod
    def find() -> Path | None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found and shutil.which("initdb"):
            found = [str(shutil.which("initdb"))]
        return Path(found[-1]).parent if found else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", UNPRIVILEGED, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, user=UNPRIVILEGED)
        made = self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr}")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=100 "
            "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
        )
        started = self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )
        if started.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr}{log}")

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def cpu(self) -> float:
        """CPU seconds of the cluster so far: the postmaster, its live children and the ones it reaped."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return 0.0
        total = _proc_cpu(postmaster, children=True)
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children")
        for pid in children.read_text().split() if children.exists() else []:
            total += _proc_cpu(int(pid))
        return total

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")  # a name of ours, not input
        with psycopg.connect(self.url(name), autocommit=True) as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            db.execute("SELECT pg_stat_statements_reset()")
        return self.url(name)


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds of a process (all its threads), and with ``children`` those of its reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (all cores, /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # guest time is already in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


# --- one worker, in its own process -----------------------------------------


def worker(url: str, manifest: Path, journal: str, concurrency: int) -> dict[str, Any]:
    import svarut
    import svarut.batch

    imported = time.time()
    first: list[float] = []

    def progress(_: svarut.batch.Progress) -> None:
        if not first:
            first.append(time.time())

    cpu = time.process_time()
    with svarut.SvarUtClient(base_url=url, environment="test") as client:
        summary = svarut.batch.run(
            client, manifest, konto_id=KONTO, journal=journal, concurrency=concurrency, progress=progress
        )
    end = time.time()
    return {
        "start": START,
        "imported": imported,
        "first_progress": first[0] if first else None,
        "end": end,
        "seconds": end - START,
        "cpu": time.process_time() - cpu,
        "counts": summary.counts,
    }


# --- measuring --------------------------------------------------------------


CLAIM_SQL = """
SELECT
    COALESCE(SUM(total_exec_time) FILTER (WHERE query LIKE '%SKIP LOCKED%'
        OR query LIKE 'UPDATE batch_letter SET worker = %'
        OR (query LIKE 'SELECT ref, line, kind, letter%' AND query LIKE '%WHERE ref IN (%')), 0),
    COALESCE(SUM(calls) FILTER (WHERE query LIKE '%SKIP LOCKED%'), 0),
    COALESCE(SUM(total_exec_time) FILTER (WHERE query NOT LIKE '%pg_advisory_lock%'), 0),
    COALESCE(SUM(total_exec_time) FILTER (WHERE query LIKE '%pg_advisory_lock%'), 0)
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def run_workers(
    pg: Postgres, sink: Sink, manifest: Path, letters: int, processes: int, concurrency: int, name: str
) -> dict[str, Any]:
    import psycopg

    journal = pg.create_database(name)
    sink.reset()
    command = [sys.executable, __file__, "--worker", "--url", sink.api, "--manifest", str(manifest)]
    command += ["--journal", journal, "--concurrency", str(concurrency)]
    sink0, postgres0, machine0 = _proc_cpu(sink.proc.pid), pg.cpu(), _machine_cpu()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            for q in procs:
                if q.poll() is None:
                    q.kill()
            raise RuntimeError(f"a worker failed (exit {p.returncode}):\n{err}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    busy, total = (after - before for after, before in zip(_machine_cpu(), machine0, strict=True))
    cpu = {
        "workers": sum(r["cpu"] for r in results),
        "sink": _proc_cpu(sink.proc.pid) - sink0,
        "postgres": pg.cpu() - postgres0,
        "machine_busy": busy,
        "machine_cores_busy": busy / wall,
        "machine_busy_share": busy / total if total else 0.0,
    }
    received, sink_span = sink.received()
    with psycopg.connect(journal, autocommit=True) as db:
        row = db.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'sent'), COUNT(DISTINCT forsendelse_id), "
            "COALESCE(SUM(attempts), 0) FROM batch_letter"
        ).fetchone()
        assert row is not None
        rows, sent, distinct_ids, retries = (int(x) for x in row)
        stats = db.execute(CLAIM_SQL).fetchone()
        assert stats is not None
        claim_ms, claims, journal_ms, lock_ms = float(stats[0]), int(stats[1]), float(stats[2]), float(stats[3])
    problems = []
    if received != letters:
        problems.append(f"the sink received {received} sends for {letters} letters")
    if rows != letters or sent != letters:
        problems.append(f"the journal has {rows} letters, {sent} sent, of {letters}")
    if distinct_ids != letters:
        problems.append(f"the journal has {distinct_ids} distinct forsendelse ids for {letters} letters")
    if problems:
        raise RuntimeError(f"{processes} worker(s): a letter was not sent exactly once: " + "; ".join(problems))
    return {
        "processes": processes,
        "concurrency": concurrency,
        "wall": wall,
        "sink_span": sink_span,
        "received": received,
        "retries": retries,
        "claims": claims,
        "claim_ms": claim_ms,
        "journal_ms": journal_ms,
        "load_lock_ms": lock_ms,
        "cpu": cpu,
        "workers": results,
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'case':<52} {'value':>8} {'baseline':>8} {'ratio':>6} {'target':>7}  result")
    for row in rows:
        value = "-" if row["value"] is None else f"{row['value']:.1f}"
        base = "-" if row["baseline"] is None else f"{row['baseline']:.1f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        print(f"{row['case']:<52} {value:>8} {base:>8} {ratio:>6} {'≥ ' + str(row['target']):>7}  {row['result']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, help="letters per run [10000, a run as big as a real one; --quick: 800]")
    parser.add_argument("--rounds", type=int, help="runs of each, alternating [1]")
    parser.add_argument("--quick", action="store_true", help="800 letters, 1 round")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--json", type=Path, help="write the rows and raw runs here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--journal", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.url, args.manifest, args.journal, args.concurrency)))
        return 0
    # A worker's start (imports, the manifest's check or the wait for it) is a fixed cost of
    # about 2 s: at 3,000 letters it alone keeps 4 workers under 3.5x one on the wall clock.
    letters = args.letters or (800 if args.quick else 10_000)
    rounds = max(1, args.rounds or 1)
    began = time.perf_counter()
    names = {"wall": "wall clock", "sink": "sink clock"}
    bin_dir = Postgres.find()
    rows: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {"one": [], "many": []}
    if bin_dir is None:
        print(POSTGRES_HINT)
        rows = [
            {"case": f"{WORKERS} workers x {CONCURRENCY} vs 1 x {CONCURRENCY}, {names[c]} (letters/s)", "value": None,
             "baseline": None, "ratio": None, "target": MIN_RATIO, "result": "MISS (no PostgreSQL)"}
            for c in names
        ]  # fmt: skip
    else:
        with tempfile.TemporaryDirectory(prefix="svarut-bench-workers-") as tmp:
            # Its own directory, not one inside ours: under root the cluster's owner must reach it.
            pg_root = Path(tempfile.mkdtemp(prefix="svarut-bench-pg-"))
            pg = Postgres(bin_dir, pg_root)
            sink = Sink(DELAY)
            try:
                pg.start()
                manifest = make_letters(Path(tmp), letters)
                print(
                    f"{letters} letters of 20 KB, sink answering after {DELAY * 1000:.0f} ms; "
                    f"{rounds} round(s) of 1 worker x {CONCURRENCY}, then {WORKERS} workers x {CONCURRENCY}",
                    flush=True,
                )
                for r in range(rounds):
                    for key, processes in (("one", 1), ("many", WORKERS)):
                        run = run_workers(pg, sink, manifest, letters, processes, CONCURRENCY, f"bench_{key}_{r}")
                        runs[key].append(run)
                        print(
                            f"  round {r + 1}: {processes} worker(s): {run['wall']:.1f} s wall "
                            f"({letters / run['wall']:.0f} letters/s), sink {run['sink_span']:.1f} s "
                            f"({letters / run['sink_span']:.0f} letters/s)",
                            flush=True,
                        )
            finally:
                sink.close()
                pg.stop()
                shutil.rmtree(pg_root, ignore_errors=True)
        pairs = list(zip(runs["one"], runs["many"], strict=True))
        for clock, key in (("wall", "wall"), ("sink", "sink_span")):
            ratio = statistics.median(one[key] / many[key] for one, many in pairs)
            rows.append({
                "case": f"{WORKERS} workers x {CONCURRENCY} vs 1 x {CONCURRENCY}, {names[clock]} (letters/s)",
                "value": letters / statistics.median(m[key] for m in runs["many"]),
                "baseline": letters / statistics.median(o[key] for o in runs["one"]),
                "ratio": ratio, "target": MIN_RATIO, "result": "PASS" if ratio >= MIN_RATIO else "MISS",
            })  # fmt: skip
    print()
    print_rows(rows)
    if runs["many"]:
        print()
        for key, label in (("one", "1 worker"), (("many"), f"{WORKERS} workers")):
            share = [
                (r["claim_ms"] / 1000 / sum(w["seconds"] for w in r["workers"]),
                 r["journal_ms"] / 1000 / sum(w["seconds"] for w in r["workers"]))
                for r in runs[key]
            ]  # fmt: skip
            claims = statistics.median(r["claims"] for r in runs[key])

            def med(name: str, rs: list[dict[str, Any]] = runs[key]) -> float:
                return float(statistics.median(r["cpu"][name] for r in rs))

            def phase(a: str, b: str, rs: list[dict[str, Any]] = runs[key]) -> float:
                """The median over runs and workers of a worker's time from ``a`` to ``b`` (a worker
                that never reached ``a``, one that got no letter of a small run, has no such time)."""
                times = [(w[b] or w["end"]) - w[a] for r in rs for w in r["workers"] if w[a] is not None]
                return float(statistics.median(times)) if times else 0.0

            ours = med("workers") + med("sink") + med("postgres")
            wall = statistics.median(r["wall"] for r in runs[key])
            lock_wait = statistics.median(r["load_lock_ms"] / 1000 for r in runs[key])
            print(
                f"{label:>9}: claim statements {statistics.median(s[0] for s in share):.2%} of the workers' wall "
                f"time ({claims:.0f} claims), journal statements in all {statistics.median(s[1] for s in share):.2%}"
                f" (besides {lock_wait:.1f} s waiting for the load lock, all workers)"
            )
            print(
                f"{'':>9}  a worker's time: imports {phase('start', 'imported'):.1f} s, manifest check and load "
                f"(or the wait for it) to the first answer {phase('imported', 'first_progress'):.1f} s, "
                f"sending to exit {phase('first_progress', 'end'):.1f} s"
            )
            print(
                f"{'':>9}  CPU seconds: workers {med('workers'):.1f}, sink {med('sink'):.1f}, "
                f"PostgreSQL {med('postgres'):.1f} ({ours / wall:.2f} cores); the machine was "
                f"{med('machine_busy_share'):.0%} busy ({med('machine_cores_busy'):.2f} of {os.cpu_count()} cores, "
                "all processes)"
            )
    elapsed = time.perf_counter() - began
    print(f"\n{elapsed:.0f} s")
    if args.json:
        result = {"rows": rows, "runs": runs, "letters": letters, "rounds": rounds, "seconds": elapsed}
        args.json.write_text(json.dumps(result, indent=1))
    missed = any(row["result"] != "PASS" for row in rows)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
