"""Benchmark of batch sending: ``svarut.batch.run`` (what ``svarut batch run``
runs, with a SQLite journal) against the same letters sent by the same client
at the same concurrency in a plain loop, to ``bench/sink.py``.

    python bench/bench_batch.py [--letters 10000] [--concurrency 4] [--repeat 3] [--quick]

Prints, for each size (1,000 and the full count), the median time of both,
the throughput ratio batch/plain on two clocks (the median of the paired
ratios): the sender's wall time, which includes the batch run's check of the
whole manifest before its first send (target ≥ 0.8 at the full count; the
1,000-letter row is there for the memory comparison, and its ratio, where the
run's fixed start and end weigh more, is for information), and the sink's, from the
first body byte it received to the last, which shows the sending alone; how
long the batch run took to check and load the manifest (until its first
answer), the CPU time of each, and the peak RSS growth of the batch run
(target: flat from 1,000 to 10,000 letters). The sink must have received
every letter exactly once in each run. Plain and batch runs alternate,
``--repeat`` times each, since the machine may be shared. Each measurement
runs in its own process so that its peak RSS is its own. Every letter carries
its own 20 KB PDF, as a real batch would.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KONTO = "00000000-0000-4000-8000-000000000001"
FNR = "21883649874"
DOC_SIZE = 20 * 1024
MIN_RATIO = 0.8


def _env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [e.get("PYTHONPATH")])])
    return e


class Sink:
    """bench/sink.py in its own process (``--delay``: seconds before it answers
    a send); it exits when our end of its stdin closes."""

    def __init__(self, delay: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sink.py"), "--port", "0", "--delay", str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"sink did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.api = self.url + "/api"

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/_reset", method="POST"), timeout=10).read()  # noqa: S310 (our own sink)

    def received(self) -> tuple[int, float]:
        """Requests received since the reset, and the seconds from the first body byte to the last."""
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as r:  # noqa: S310 (our own sink)
            stats: dict[str, Any] = json.loads(r.read())
        bodies = stats["bodies"]
        span = max(b[1] for b in bodies) - min(b[0] for b in bodies) if bodies else 0.0
        return int(stats["requests"]), span

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def make_letters(directory: Path, count: int) -> Path:
    manifest = directory / f"brev-{count}.jsonl"
    docs = directory / "docs"
    docs.mkdir(exist_ok=True)
    with manifest.open("w") as f:
        for i in range(count):
            doc = docs / f"brev-{i}.pdf"
            if not doc.exists():
                head = b"%PDF-1.7\n% letter " + str(i).encode() + b"\n"
                doc.write_bytes(head + b"x" * (DOC_SIZE - len(head) - 6) + b"\n%%EOF")
            line = {
                "ref": f"brev-{i}",
                "kind": "person",
                "forsendelse": {
                    "tittel": f"Vedtak {i}",
                    "mottaker": {"navn": "Kari Nordmann", "digitalId": FNR},
                    "dokumenter": [{"filnavn": "vedtak.pdf", "mimeType": "application/pdf"}],
                },
                "dokumenter": {"vedtak.pdf": f"docs/brev-{i}.pdf"},
            }
            f.write(json.dumps(line) + "\n")
    return manifest


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker(mode: str, url: str, manifest: Path, concurrency: int) -> dict[str, Any]:
    """One measurement, in this process: ``batch`` or ``plain``."""
    import svarut
    import svarut.batch
    from svarut.generated import SEND_OPERATIONS

    with svarut.SvarUtClient(base_url=url, environment="test") as client:
        before = _rss_kib()
        cpu = time.process_time()
        start = time.perf_counter()
        first: list[float] = []
        if mode == "batch":
            journal = manifest.with_suffix(".sqlite")
            journal.unlink(missing_ok=True)

            def progress(_: svarut.batch.Progress) -> None:
                if not first:
                    first.append(time.perf_counter() - start)

            summary = svarut.batch.run(
                client, manifest, konto_id=KONTO, journal=journal, concurrency=concurrency, progress=progress
            )
            sent = summary.counts["sent"]
        else:
            op = SEND_OPERATIONS["person"]

            def send(text: str) -> None:
                line = json.loads(text)
                files = {name: manifest.parent / rel for name, rel in line["dokumenter"].items()}
                forsendelse = op.model.model_validate(line["forsendelse"])
                getattr(client, op.method_name)(**op.arguments(konto_id=KONTO, forsendelse=forsendelse, files=files))

            with manifest.open() as f, ThreadPoolExecutor(concurrency) as pool:
                sent = sum(1 for _ in pool.map(send, f))
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode,
        "sent": sent,
        "seconds": seconds,
        "cpu": cpu,
        "first_answer": first[0] if first else 0.0,
        "rss_growth_kib": max(0, peak - before),
    }


def measure(mode: str, sink: Sink, manifest: Path, concurrency: int) -> dict[str, Any]:
    sink.reset()
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            mode,
            "--url",
            sink.api,
            "--manifest",
            str(manifest),
            "--concurrency",
            str(concurrency),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} worker failed: {out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout)
    result["received"], result["sink_seconds"] = sink.received()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--quick", action="store_true", help="1,000 and 2,000 letters")
    parser.add_argument("--worker", choices=["batch", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args.manifest, args.concurrency)))
        return 0
    sizes = [1_000, 2_000] if args.quick else [1_000, args.letters]
    sink = Sink()
    ok = True
    growth = {}
    try:
        with tempfile.TemporaryDirectory(prefix="svarut-bench-batch-") as tmp:
            print(
                f"{'letters':>8} {'plain s':>8} {'batch s':>8} {'ratio':>6} {'sink ratio':>10} {'check s':>8} "
                f"{'plain cpu':>9} {'batch cpu':>9} {'batch RSS growth':>17}"
            )
            for n in sizes:
                manifest = make_letters(Path(tmp), n)
                plains, batches = [], []
                for _ in range(max(1, args.repeat)):
                    plains.append(measure("plain", sink, manifest, args.concurrency))
                    batches.append(measure("batch", sink, manifest, args.concurrency))
                    for run in (plains[-1], batches[-1]):
                        if run["sent"] != n or run["received"] != n:
                            raise RuntimeError(f"{run['mode']}: sent {run['sent']}, received {run['received']} of {n}")
                pairs = list(zip(plains, batches, strict=True))
                ratio = statistics.median(p["seconds"] / b["seconds"] for p, b in pairs)
                sink_ratio = statistics.median(p["sink_seconds"] / b["sink_seconds"] for p, b in pairs)

                def med(runs: list[dict[str, Any]], key: str) -> float:
                    return float(statistics.median(r[key] for r in runs))

                growth[n] = max(b["rss_growth_kib"] for b in batches) / 1024
                if n == max(sizes):
                    ok &= ratio >= MIN_RATIO
                print(
                    f"{n:>8} {med(plains, 'seconds'):>8.2f} {med(batches, 'seconds'):>8.2f} {ratio:>6.2f} "
                    f"{sink_ratio:>10.2f} "
                    f"{med(batches, 'first_answer'):>8.2f} {med(plains, 'cpu'):>9.2f} {med(batches, 'cpu'):>9.2f} "
                    f"{growth[n]:>13.1f} MiB"
                )
    finally:
        sink.close()
    low, high = min(sizes), max(sizes)
    print(
        f"throughput ratio target ≥ {MIN_RATIO} (batch/plain) at {high:,} letters; "
        f"RSS growth {growth[low]:.1f} → {growth[high]:.1f} MiB"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
