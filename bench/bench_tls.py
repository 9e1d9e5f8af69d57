"""Benchmark of big uploads over TLS to a receiver that is not the bottleneck:
the sync and the async client against curl, both sending to nginx.

    python bench/bench_tls.py [--quick] [--rounds 7] [--strict] [--json FILE]

``bench.py``'s TLS figures are bounded by its Python sink, which decrypts at
about 550 MB/s on a small machine. Here the receiver is nginx (Debian's
``nginx-light``; without it the bench says how to install it and counts every
row as a MISS), started for the run from a configuration in a temporary
directory (``nginx_sink.py``), with a CA and a 127.0.0.1 certificate made for
the run by ``svarut.simulator.keys.tls_certificates``. nginx answers a send
``200 {"id": "<uuid>"}`` only after it has read the whole body, and logs each
request's ``$request_length``, ``$request_time`` and ``$status``: every
upload must be logged with status 200 and the length that was sent (curl's
``%{size_upload}`` plus its headers; for the client, the document bytes plus
the multipart framing and headers, at most 64 KB more).
The upload is bench.py's case 1/2: 350 MB in 7 random PDF files (``--quick``:
35 MB), shared with bench.py under ``$TMPDIR/svarut-bench-data``. The clients
trust the run's CA as a user would (``http_client=httpx2.Client(verify=
ssl.create_default_context(cafile=ca))``, ``httpx2.AsyncClient`` for the async
client); curl runs as bench.py runs it (``curl -F ... --cacert ca``). Each
client lives in its own long-lived worker process (this file with
``--worker``), warmed up by one small send, and is told when to send, so one
round is: curl, sync client, curl, async client. The machine may be shared,
so the figures are medians over the rounds.

Two clocks, each with its own row and target (≥ 0.95× curl): the sender's
(the client call's wall time; curl's own ``%{time_total}``, no process
start-up) and nginx's (``$request_time``: from the request's first byte to
the log write after the answer, millisecond resolution). Throughput is the
document bytes over the time. Printed alongside, for reading a miss: the
sender's CPU seconds per upload (curl's, from ``os.times``; the client
worker's ``process_time``) and nginx's worker CPU per upload over its
``$request_time`` (well below 1: nginx was not the bound).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from nginx_sink import INSTALL_HINT, NginxSink, nginx_binary  # noqa: E402 (bench/ is not a package)

MB = 1_000_000
MIB = 1024 * 1024
N_DOCS = 7
PDF_MAGIC = b"%PDF-1.7\n"
KONTO = "7b4f3f2e-4a51-4f0c-9a70-1f9a1d2c3b4e"
CURL = shutil.which("curl") or "/usr/bin/curl"
MIN_RATIO = 0.95
SETTLE = 0.2
# The multipart framing and request headers the client adds to the document bytes, at most.
MAX_OVERHEAD = 64 * 1024


def _env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [e.get("PYTHONPATH")])])
    return e


def metadata(names: list[str], ref: str = "bench") -> dict[str, Any]:
    """The forsendelse as it goes on the wire, as bench/worker.py writes it."""
    return {
        "tittel": "Vedtak om byggesak",
        "mottaker": {"navn": "Kari Nordmann", "digitalId": "01019010046"},
        "dokumenter": [{"filnavn": n, "mimeType": "application/pdf"} for n in names],
        "eksternReferanse": ref,
    }


def data_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "svarut-bench-data"
    d.mkdir(exist_ok=True)
    return d


def documents(total_mb: int) -> tuple[list[Path], Path]:
    """7 random files totalling ``total_mb`` MB and the forsendelse JSON for curl:
    the same files bench.py makes (same place, names and seed), so either reuses the other's."""
    d = data_dir() / f"{total_mb}mb"
    d.mkdir(exist_ok=True)
    size = total_mb * MB // N_DOCS
    files = [d / f"dokument-{i + 1}.pdf" for i in range(N_DOCS)]
    rng = random.Random(total_mb)
    for f in files:
        if f.exists() and f.stat().st_size == size:
            with f.open("rb") as fh:
                if fh.read(len(PDF_MAGIC)) == PDF_MAGIC:
                    continue
        tmp = f.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            out.write(PDF_MAGIC)  # the pre-send rules sniff the type: random bytes behind a PDF header
            left = size - len(PDF_MAGIC)
            while left:
                n = min(left, 8 * MIB)
                out.write(rng.randbytes(n))
                left -= n
        tmp.replace(f)
    meta = d / "forsendelse.json"
    meta.write_text(json.dumps(metadata([f.name for f in files])))
    return files, meta


# --- the client side, in its own process ------------------------------------


def worker(mode: str, url: str, cafile: str, files: list[Path], warm: Path) -> None:
    """Send ``files`` once per line read from stdin; print a JSON line per send."""
    import ssl

    import httpx2

    import svarut
    from svarut import models

    names = [f.name for f in files]
    docs = dict(zip(names, files, strict=True))
    context = ssl.create_default_context(cafile=cafile)

    def forsendelse(ref: str, names: list[str]) -> Any:
        return models.PersonForsendelse.model_validate(metadata(names, ref))

    def report(i: int, seconds: float, cpu: float, answer: object) -> None:
        print(json.dumps({"seconds": seconds, "cpu": cpu, "id": str(answer), "ref": f"tls-{mode}-{i}"}), flush=True)

    if mode == "sync":
        with svarut.SvarUtClient(base_url=url, http_client=httpx2.Client(verify=context, timeout=300)) as client:
            client.send_til_person(
                konto_id=KONTO, forsendelse=forsendelse("warm", [warm.name]), dokumenter={warm.name: warm}
            )
            print("READY", flush=True)
            for i, _ in enumerate(sys.stdin):
                f = forsendelse(f"tls-{mode}-{i}", names)
                cpu, t = time.process_time(), time.perf_counter()
                answer = client.send_til_person(konto_id=KONTO, forsendelse=f, dokumenter=docs)
                report(i, time.perf_counter() - t, time.process_time() - cpu, answer)
        return

    async def run() -> None:
        http = httpx2.AsyncClient(verify=context, timeout=300)
        async with svarut.AsyncSvarUtClient(base_url=url, http_client=http) as client:
            warm_letter = forsendelse("warm", [warm.name])
            await client.send_til_person(konto_id=KONTO, forsendelse=warm_letter, dokumenter={warm.name: warm})
            print("READY", flush=True)
            i = 0
            # Reading stdin blocks, but only between sends: nothing else runs on this loop.
            while sys.stdin.readline():
                f = forsendelse(f"tls-{mode}-{i}", names)
                cpu, t = time.process_time(), time.perf_counter()
                answer = await client.send_til_person(konto_id=KONTO, forsendelse=f, dokumenter=docs)
                report(i, time.perf_counter() - t, time.process_time() - cpu, answer)
                i += 1

    asyncio.run(run())


class Worker:
    """A client worker process, sending when told."""

    def __init__(self, mode: str, sink: NginxSink, ca: Path, files: list[Path], warm: Path) -> None:
        self.mode = mode
        job = {"mode": mode, "url": sink.api, "cafile": str(ca), "files": [str(f) for f in files], "warm": str(warm)}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_env(),
            cwd=data_dir(),  # not the checkout: "" on sys.path must not shadow the checkout under test
            text=True,
        )
        self._expect("READY")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.mode} worker died (exit {self.proc.wait(10)})")
        return line

    def _expect(self, word: str) -> None:
        line = self._line()
        if line.strip() != word:
            raise RuntimeError(f"{self.mode} worker: expected {word}, got {line!r}")

    def send(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("send\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self._line())
        return result

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# --- measuring --------------------------------------------------------------


def curl_send(sink: NginxSink, ca: Path, files: list[Path], meta: Path) -> dict[str, Any]:
    """bench.py's curl baseline: its own %{time_total} (no process start-up), and its CPU."""
    args = [CURL, "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_upload} %{http_code}", "--cacert", str(ca)]
    args += ["-F", f"forsendelse=@{meta};type=application/json"]
    for f in files:
        args += ["-F", f"dokumenter=@{f};type=application/pdf"]
    args.append(f"{sink.api}/v3/kontoer/{KONTO}/forsendelser/person")
    before = os.times()
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=600).stdout.split()
    after = os.times()
    if out[2] != "200":
        raise RuntimeError(f"curl got HTTP {out[2]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"seconds": float(out[0]), "upload": int(out[1]), "cpu": cpu}


def nginx_worker_cpu(sink: NginxSink) -> float:
    """CPU seconds used so far by nginx's worker processes (children of its master)."""
    assert sink.proc is not None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    children = Path(f"/proc/{sink.proc.pid}/task/{sink.proc.pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def logged(sink: NginxSink, who: str, low: int, high: int) -> dict[str, Any]:
    """The one request nginx logged for the send just made, checked: status 200, all bytes read."""
    deadline = time.monotonic() + 10
    entries = sink.requests()
    while not entries and time.monotonic() < deadline:
        time.sleep(0.01)  # the log line is written as the request ends, just after the answer
        entries = sink.requests()
    if len(entries) != 1:
        raise RuntimeError(f"{who}: nginx logged {len(entries)} requests for one send: {entries}")
    entry = entries[0]
    # nginx frees the body's buffer after the log line: not during the next send.
    time.sleep(SETTLE)
    if entry["status"] != 200 or not low <= entry["length"] <= high:
        raise RuntimeError(
            f"{who}: nginx logged status {entry['status']}, {entry['length']} bytes; expected {low}-{high}"
        )
    return entry


def measure(sink: NginxSink, ca: Path, files: list[Path], meta: Path, rounds: int) -> dict[str, dict[str, list[float]]]:
    doc_bytes = sum(f.stat().st_size for f in files)
    warm = data_dir() / "brev-tls-warm.pdf"
    warm.write_bytes(PDF_MAGIC + b"warm up\n%%EOF\n")
    samples: dict[str, dict[str, list[float]]] = {
        who: {"sender": [], "nginx": [], "cpu": [], "nginx_busy": []} for who in ("curl", "sync", "async")
    }
    workers = {mode: Worker(mode, sink, ca, files, warm) for mode in ("sync", "async")}
    sink.requests()  # the warm-up sends
    try:
        for r in range(rounds):
            for mode in ("sync", "async"):
                cpu0 = nginx_worker_cpu(sink)
                c = curl_send(sink, ca, files, meta)
                # curl's upload size is the body; its headers come on top.
                entry = logged(sink, "curl", c["upload"], c["upload"] + 4096)
                _add(samples["curl"], doc_bytes, c["seconds"], c["cpu"], entry, nginx_worker_cpu(sink) - cpu0)
                cpu0 = nginx_worker_cpu(sink)
                s = workers[mode].send()
                entry = logged(sink, mode, doc_bytes, doc_bytes + MAX_OVERHEAD)
                _add(samples[mode], doc_bytes, s["seconds"], s["cpu"], entry, nginx_worker_cpu(sink) - cpu0)
            print(
                f"  round {r + 1}/{rounds}: "
                + ", ".join(f"{who} {samples[who]['sender'][-1]:.0f} MB/s" for who in ("curl", "sync", "async")),
                flush=True,
            )
    finally:
        for w in workers.values():
            w.close()
    return samples


def _add(
    into: dict[str, list[float]], doc_bytes: int, seconds: float, cpu: float, entry: dict[str, Any], busy: float
) -> None:
    into["sender"].append(doc_bytes / seconds / MB)
    into["nginx"].append(doc_bytes / max(float(entry["time"]), 0.001) / MB)
    into["cpu"].append(cpu)
    into["nginx_busy"].append(busy / max(float(entry["time"]), 0.001))


# --- report -----------------------------------------------------------------


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'case':<44} {'value':>9} {'baseline':>9} {'ratio':>6} {'target':>7}  result")
    for row in rows:
        value = "-" if row["value"] is None else f"{row['value']:.0f}"
        base = "-" if row["baseline"] is None else f"{row['baseline']:.0f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(f"{row['case']:<44} {value:>9} {base:>9} {ratio:>6} {'≥ ' + str(row['target']):>7}  {row['result']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="35 MB uploads, 3 rounds")
    parser.add_argument("--rounds", type=int, help="rounds of (curl, sync, curl, async) [7; --quick: 3]")
    parser.add_argument("--mb", type=int, help="upload size in MB [350; --quick: 35]")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--json", type=Path, help="write the rows and raw samples here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        worker(job["mode"], job["url"], job["cafile"], [Path(f) for f in job["files"]], Path(job["warm"]))
        return 0
    size = args.mb or (35 if args.quick else 350)
    rounds = max(1, args.rounds or (3 if args.quick else 7))
    started = time.perf_counter()
    cases = [(mode, clock) for mode in ("sync", "async") for clock in ("sender", "nginx")]
    rows: list[dict[str, Any]] = []
    samples: dict[str, Any] = {}
    binary = nginx_binary()
    if binary is None:
        print(INSTALL_HINT)
        rows = [
            {"case": f"{mode} {size} MB vs curl -F, {clock} clock (MB/s)", "value": None, "baseline": None,
             "ratio": None, "target": MIN_RATIO, "result": "MISS (no nginx)"}
            for mode, clock in cases
        ]  # fmt: skip
    else:
        from svarut.simulator.keys import tls_certificates

        files, meta = documents(size)
        with (
            tempfile.TemporaryDirectory(prefix="svarut-bench-tls-certs-") as certs_dir,
            tempfile.TemporaryDirectory(prefix="svarut-bench-nginx-") as root,
        ):
            certs = tls_certificates(Path(certs_dir))
            with NginxSink(certs, Path(root), binary) as sink:
                print(
                    f"nginx on {sink.url}; {size} MB in {N_DOCS} documents, {rounds} rounds of curl, sync, curl, async"
                )
                samples = measure(sink, certs.ca, files, meta, rounds)
        for mode, clock in cases:
            value = statistics.median(samples[mode][clock])
            base = statistics.median(samples["curl"][clock])
            ratio = value / base
            rows.append({
                "case": f"{mode} {size} MB vs curl -F, {clock} clock (MB/s)",
                "value": value, "baseline": base, "ratio": ratio, "target": MIN_RATIO,
                "result": "PASS" if ratio >= MIN_RATIO else "MISS",
            })  # fmt: skip
    print()
    print_rows(rows)
    if samples:
        print()
        curl_cpu = statistics.median(samples["curl"]["cpu"])
        for who in ("curl", "sync", "async"):
            s = samples[who]
            cpu = statistics.median(s["cpu"])
            print(
                f"{who:>5}: sender CPU {cpu:.2f} s per upload ({cpu / curl_cpu:.2f}× curl's; {size / cpu:.0f} MB "
                f"per CPU second), nginx worker busy {statistics.median(s['nginx_busy']):.0%} of its $request_time"
            )
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s")
    if args.json:
        result = {"rows": rows, "samples": samples, "mb": size, "rounds": rounds, "seconds": elapsed}
        args.json.write_text(json.dumps(result, indent=1))
    missed = any(row["result"] != "PASS" for row in rows)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
