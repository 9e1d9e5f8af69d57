"""The measured side of the benchmarks, run by ``bench.py`` in a fresh interpreter.

    python bench/worker.py '<json job>'

Prints one JSON line with the figures. Each job runs in its own process so the
client's memory is measured from a clean start (after imports and a warm-up
send) and neither the sink nor the orchestrator shares its GIL.

Jobs (``kind``):

- ``big``: ``sends`` multipart sends of the files in ``files`` (sync or async
  client), timed one by one; peak RSS growth over all of them; with
  ``heartbeat``, the largest gap seen by a 10 ms ticker on the event loop.
- ``small``: ``n`` sends of one 20 KB document, by the client (``impl=client``)
  or by raw httpx2 posting prebuilt bodies (``impl=httpx2``), sequentially or at
  ``concurrency``.
- ``profile``: ``small`` under cProfile; prints the top functions to stderr.

With ``cafile`` in the job the sink speaks HTTPS: every client, ours and the
raw httpx2 baselines alike, trusts that CA the way a user would configure it,
through ``http_client=httpx2.Client(verify=ssl_context)``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

KONTO = "7b4f3f2e-4a51-4f0c-9a70-1f9a1d2c3b4e"


def http_options(job: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for an ``httpx2.Client``/``AsyncClient`` of this job."""
    if not job.get("cafile"):
        return {}
    import ssl

    return {"verify": ssl.create_default_context(cafile=job["cafile"]), "timeout": 60.0}


def client_options(job: dict[str, Any], *, asynchronous: bool) -> dict[str, Any]:
    """Keyword arguments for our client: its own httpx2 client, unless TLS needs the CA."""
    options = http_options(job)
    if not options:
        return {}
    import httpx2

    return {"http_client": (httpx2.AsyncClient if asynchronous else httpx2.Client)(**options)}


# --- memory ---------------------------------------------------------------


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0])  # KiB
    return out


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


class Memory:
    """Peak RSS growth from now on: VmHWM (reset through /proc/self/clear_refs
    where Linux allows it) and ru_maxrss."""

    def __init__(self) -> None:
        gc.collect()
        before = _proc_status()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        start = _proc_status()
        self.rss0 = start["VmRSS"]
        self.hwm0 = start["VmRSS"] if self.reset else before["VmHWM"]
        self.maxrss0 = _maxrss_kib()

    def growth(self) -> dict[str, Any]:
        end = _proc_status()
        return {
            "hwm_reset": self.reset,
            "rss_start_kib": self.rss0,
            "hwm_growth_kib": end["VmHWM"] - self.hwm0,
            "maxrss_growth_kib": _maxrss_kib() - self.maxrss0,
            "rss_end_growth_kib": end["VmRSS"] - self.rss0,
        }


# --- payloads -------------------------------------------------------------


def metadata(names: list[str], ref: str = "bench") -> dict[str, Any]:
    """The forsendelse as it goes on the wire (the spec's field names)."""
    return {
        "tittel": "Vedtak om byggesak",
        "mottaker": {"navn": "Kari Nordmann", "digitalId": "01019010046"},  # valid control digits
        "dokumenter": [{"filnavn": n, "mimeType": "application/pdf"} for n in names],
        "eksternReferanse": ref,
    }


def _forsendelse(models: Any, names: list[str], ref: str) -> Any:
    return models.PersonForsendelse.model_validate(metadata(names, ref))


def prebuilt_body(names_and_data: list[tuple[str, bytes]], ref: str) -> tuple[bytes, str]:
    """A multipart body laid out as the client lays it out, built up front."""
    boundary = uuid.uuid4().hex
    meta = json.dumps(metadata([n for n, _ in names_and_data], ref), separators=(",", ":")).encode()
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="forsendelse"\r\n'
        f"Content-Type: application/json\r\n\r\n".encode(),
        meta,
        b"\r\n",
    ]
    for name, data in names_and_data:
        parts += [
            f'--{boundary}\r\nContent-Disposition: form-data; name="dokumenter"; filename="{name}"\r\n'
            f"Content-Type: application/pdf\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# --- jobs -----------------------------------------------------------------


def big(job: dict[str, Any]) -> dict[str, Any]:
    import svarut
    from svarut import models

    files = [Path(p) for p in job["files"]]
    names = [p.name for p in files]
    warm = Path(job["warmup_file"])
    base_url = job["url"]
    times: list[float] = []
    gaps: list[float] = []
    floor: list[float] = []

    if job["client"] == "sync":
        with svarut.SvarUtClient(base_url=base_url, **client_options(job, asynchronous=False)) as client:
            client.send_til_person(
                konto_id=KONTO, forsendelse=_forsendelse(models, [warm.name], "warm"), dokumenter={warm.name: warm}
            )
            mem = Memory()
            for i in range(job["sends"]):
                forsendelse = _forsendelse(models, names, f"big-{i}")
                t = time.perf_counter()
                client.send_til_person(
                    konto_id=KONTO, forsendelse=forsendelse, dokumenter=dict(zip(names, files, strict=True))
                )
                times.append(time.perf_counter() - t)
            growth = mem.growth()
    else:

        async def run() -> dict[str, Any]:
            async with svarut.AsyncSvarUtClient(base_url=base_url, **client_options(job, asynchronous=True)) as client:
                await client.send_til_person(
                    konto_id=KONTO,
                    forsendelse=_forsendelse(models, [warm.name], "warm"),
                    dokumenter={warm.name: warm},
                )
                if job.get("heartbeat"):
                    # The machine's floor: the same ticker while a plain thread pushes the
                    # same bytes through a socket in C (sendfile; TLS: sendall), no client.
                    stop = asyncio.Event()
                    ticker = asyncio.create_task(_heartbeat(stop, floor))
                    await asyncio.sleep(0)
                    await asyncio.to_thread(_raw_upload, base_url, files, job.get("cafile"))
                    stop.set()
                    await ticker
                mem = Memory()
                for i in range(job["sends"]):
                    forsendelse = _forsendelse(models, names, f"big-{i}")
                    stop = asyncio.Event()
                    ticker = asyncio.create_task(_heartbeat(stop, gaps)) if job.get("heartbeat") else None
                    await asyncio.sleep(0)
                    t = time.perf_counter()
                    await client.send_til_person(
                        konto_id=KONTO, forsendelse=forsendelse, dokumenter=dict(zip(names, files, strict=True))
                    )
                    times.append(time.perf_counter() - t)
                    stop.set()
                    if ticker is not None:
                        await ticker
                return mem.growth()

        growth = asyncio.run(run())
    return {
        "times": times,
        "body_file_bytes": sum(p.stat().st_size for p in files),
        "max_gap_ms": max(gaps) * 1000 if gaps else None,
        "floor_max_gap_ms": max(floor) * 1000 if floor else None,
        "ticks": len(gaps),
        **growth,
    }


def _raw_upload(url: str, files: list[Path], cafile: str | None) -> None:
    """One POST of ``files`` to the sink through a bare socket, the bytes moved in C."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    total = sum(p.stat().st_size for p in files)
    with socket.create_connection(("127.0.0.1", port)) as plain:
        sock = plain
        if cafile:
            sock = ssl.create_default_context(cafile=cafile).wrap_socket(plain, server_hostname="127.0.0.1")
        sock.sendall(b"POST /raw HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        buf = bytearray(256 * 1024)
        view = memoryview(buf)
        for path in files:
            with open(path, "rb", buffering=0) as f:
                if sock is plain:
                    sock.sendfile(f)
                else:
                    while n := f.readinto(buf):
                        sock.sendall(view[:n])
        sock.recv(64)
        if sock is not plain:
            sock.close()


async def _heartbeat(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


def small(job: dict[str, Any]) -> dict[str, Any]:
    n, warmup, concurrency = job["n"], job.get("warmup", 50), job.get("concurrency", 1)
    pdf = Path(job["pdf"])
    url = job["url"]
    if job["impl"] == "client":
        import svarut
        from svarut import models

        validate = bool(job.get("validate", True))
        # The letters are built before the clock starts: the figure is the client's work.
        letters = [_forsendelse(models, [pdf.name], f"small-{i}") for i in range(n + warmup)]
        docs = {pdf.name: pdf}
        if job["mode"] == "sync":
            with svarut.SvarUtClient(
                base_url=url, validate=validate, **client_options(job, asynchronous=False)
            ) as client:

                def send_sync(letter: Any) -> None:
                    client.send_til_person(konto_id=KONTO, forsendelse=letter, dokumenter=docs)

                return _run_sync(send_sync, letters, warmup)

        async def run_async() -> dict[str, Any]:
            options = client_options(job, asynchronous=True)
            async with svarut.AsyncSvarUtClient(base_url=url, validate=validate, **options) as client:

                async def send(letter: Any) -> None:
                    await client.send_til_person(konto_id=KONTO, forsendelse=letter, dokumenter=docs)

                return await _run_async(send, letters, warmup, concurrency)

        return asyncio.run(run_async())

    import httpx2

    data = pdf.read_bytes()
    send_url = f"{url}/v3/kontoer/{KONTO}/forsendelser/person"
    bodies = [prebuilt_body([(pdf.name, data)], f"small-{i}") for i in range(n + warmup)]
    base_headers = {"User-Agent": "fiks-svarut-python", "Accept": "application/json"}
    if job["mode"] == "sync":
        with httpx2.Client(**http_options(job)) as http:

            def post_sync(body: tuple[bytes, str]) -> None:
                r = http.post(send_url, content=body[0], headers={**base_headers, "Content-Type": body[1]})
                r.raise_for_status()
                r.json()

            return _run_sync(post_sync, bodies, warmup)

    async def run_httpx() -> dict[str, Any]:
        async with httpx2.AsyncClient(**http_options(job)) as http:

            async def post(body: tuple[bytes, str]) -> None:
                r = await http.post(send_url, content=body[0], headers={**base_headers, "Content-Type": body[1]})
                r.raise_for_status()
                r.json()

            return await _run_async(post, bodies, warmup, concurrency)

    return asyncio.run(run_httpx())


def _run_sync(send: Any, items: list[Any], warmup: int) -> dict[str, Any]:
    for item in items[:warmup]:
        send(item)
    timed = items[warmup:]
    t = time.perf_counter()
    for item in timed:
        send(item)
    total = time.perf_counter() - t
    return {"total_s": total, "n": len(timed)}


async def _run_async(send: Any, items: list[Any], warmup: int, concurrency: int) -> dict[str, Any]:
    async def drain(batch: list[Any]) -> None:
        it = iter(batch)

        async def worker() -> None:
            for item in it:
                await send(item)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    await drain(items[:warmup])
    timed = items[warmup:]
    gaps: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_heartbeat(stop, gaps))
    await asyncio.sleep(0)
    t = time.perf_counter()
    await drain(timed)
    total = time.perf_counter() - t
    stop.set()
    await ticker
    return {"total_s": total, "n": len(timed), "max_gap_ms": max(gaps) * 1000 if gaps else None}


def profile(job: dict[str, Any]) -> dict[str, Any]:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    result = small(job)
    prof.disable()
    stats = pstats.Stats(prof, stream=sys.stderr)
    stats.sort_stats(job.get("sort", "tottime")).print_stats(job.get("top", 30))
    return result


def main() -> None:
    job = json.loads(sys.argv[1])
    result = {"big": big, "small": small, "profile": profile}[job["kind"]](job)
    import svarut

    result["svarut_file"] = svarut.__file__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
