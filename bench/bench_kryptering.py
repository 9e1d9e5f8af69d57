"""Memory and throughput of the streaming CMS encryption, against OpenSSL.

    python bench/bench_kryptering.py [--size-mb 350] [--transport oaep] [--verify]

Writes a random file of ``--size-mb`` MiB to a temporary directory, encrypts
it file to file with :func:`svarut.kryptering.encrypt_path`, then with
``openssl cms -encrypt`` (same key transport, AES-256-CBC, DER) on the same
file, and prints the time, throughput and peak RSS growth of each and the
ratio. Peak RSS growth is the high-water mark during the encryption minus the
resident size just before it (the mark is reset first through
``/proc/self/clear_refs`` where Linux allows it, else ``ru_maxrss`` is
compared before and after). The target is under 32 MiB for any file size.
``--verify`` also decrypts our output with OpenSSL and compares SHA-256.

A benchmark, not a test: it needs ``openssl`` on PATH (or ``--openssl``) and
a few times the file size in free disk space.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from cryptography import x509

from svarut.kryptering import Kryptering, encrypt_path
from svarut.runtime.files import Source
from svarut.simulator.keys import generate_key_pair

MIB = 1024 * 1024
TARGET_RSS_GROWTH = 32 * MIB


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRss:
    """The growth of peak RSS over a block, in bytes."""

    def __enter__(self) -> PeakRss:
        self._reset = False
        try:
            # "5" resets VmHWM to the current RSS (Linux >= 4.0).
            Path("/proc/self/clear_refs").write_text("5")
            self._reset = _status_kib("VmHWM") is not None
        except OSError:
            pass
        self._before = (_status_kib("VmRSS") if self._reset else None) or _maxrss_kib()
        return self

    def __exit__(self, *exc: object) -> None:
        after = (_status_kib("VmHWM") if self._reset else None) or _maxrss_kib()
        self.growth = max(0, after - self._before) * 1024
        self.method = "VmHWM after clear_refs" if self._reset else "ru_maxrss"


def _maxrss_kib() -> int:
    # KiB on Linux, bytes on macOS.
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value // 1024 if sys.platform == "darwin" else value


def make_certificate(directory: Path) -> tuple[x509.Certificate, Path, Path]:
    pair = generate_key_pair("bench SvarUt")
    cert_pem, key_pem = directory / "cert.pem", directory / "key.pem"
    cert_pem.write_bytes(pair.certificate_pem)
    key_pem.write_bytes(pair.private_key_pem)
    return pair.certificate, cert_pem, key_pem


def write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def run(cmd: list[str]) -> float:
    started = time.perf_counter()
    # The command is built here from fixed arguments and our own temp paths.
    result = subprocess.run(cmd, check=False, capture_output=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {result.stderr.decode(errors='replace')}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=350, help="file size in MiB (default 350)")
    parser.add_argument("--transport", choices=["oaep", "pkcs1v15"], default="oaep")
    parser.add_argument("--openssl", default=shutil.which("openssl") or "/usr/bin/openssl")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    parser.add_argument("--verify", action="store_true", help="decrypt our output with openssl and compare")
    args = parser.parse_args(argv)
    size = args.size_mb * MIB

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-kryptering-") as tmp:
        directory = Path(tmp)
        cert, cert_pem, key_pem = make_certificate(directory)
        src, ours_out, theirs_out = directory / "plain.bin", directory / "ours.cms", directory / "openssl.cms"
        print(f"writing {args.size_mb} MiB of random data to {src} ...", flush=True)
        plain_sha = write_random(src, size)

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            kryptering = Kryptering(cert, key_transport=args.transport)
        kryptering.encrypt_bytes(b"warm-up")  # imports and first-use allocations out of the measurement

        with PeakRss() as file_rss:
            started = time.perf_counter()
            written = encrypt_path(src, ours_out, cert, key_transport=args.transport)
            ours_seconds = time.perf_counter() - started
        assert written == ours_out.stat().st_size == kryptering.encrypted_size(size)

        with PeakRss() as stream_rss:
            started = time.perf_counter()
            streamed = sum(len(c) for c in kryptering.wrap(Source(src, label=src.name)).iter_bytes())
            stream_seconds = time.perf_counter() - started
        assert streamed == written

        keyopts = (
            ["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"]
            if args.transport == "oaep"
            else []
        )
        # -keyopt applies to the -recip before it.
        openssl_cmd = [args.openssl, "cms", "-encrypt", "-binary", "-aes256", "-recip", str(cert_pem), *keyopts]
        # -stream first: RUSAGE_CHILDREN keeps the largest child so far. It
        # streams too, but writes indefinite-length BER, not DER.
        stream_seconds_ossl = run(
            [*openssl_cmd, "-stream", "-outform", "DER", "-in", str(src), "-out", str(theirs_out)]
        )
        stream_rss_ossl = _child_maxrss_bytes()
        openssl_seconds = run([*openssl_cmd, "-outform", "DER", "-in", str(src), "-out", str(theirs_out)])
        openssl_rss = _child_maxrss_bytes()
        theirs_size = theirs_out.stat().st_size

        mb = size / 1e6
        print(f"\nplaintext: {size} bytes ({args.size_mb} MiB), key transport {args.transport}, AES-256-CBC")
        print(f"{'':36} {'seconds':>8} {'MB/s':>8} {'peak RSS growth':>16}")
        print(
            f"{'svarut encrypt_path (file to file)':36} {ours_seconds:8.2f} {mb / ours_seconds:8.0f} "
            f"{file_rss.growth / MIB:13.1f} MiB"
        )
        print(
            f"{'svarut iter_bytes (to nowhere)':36} {stream_seconds:8.2f} {mb / stream_seconds:8.0f} "
            f"{stream_rss.growth / MIB:13.1f} MiB"
        )
        print(
            f"{'openssl cms -encrypt (file to file)':36} {openssl_seconds:8.2f} {mb / openssl_seconds:8.0f} "
            f"{openssl_rss / MIB:10.1f} MiB peak"
        )
        print(
            f"{'openssl cms -encrypt -stream (BER)':36} {stream_seconds_ossl:8.2f} {mb / stream_seconds_ossl:8.0f} "
            f"{stream_rss_ossl / MIB:10.1f} MiB peak"
        )
        print(f"\nthroughput ratio svarut/openssl (file to file, DER): {openssl_seconds / ours_seconds:.2f}")
        print(f"throughput ratio svarut/openssl -stream (file to file): {stream_seconds_ossl / ours_seconds:.2f}")
        same_size = "equal" if written == theirs_size else "DIFFER"
        print(f"output sizes: svarut {written}, openssl {theirs_size} ({same_size})")
        print(f"peak RSS measured by: {file_rss.method}")
        ok = file_rss.growth < TARGET_RSS_GROWTH and stream_rss.growth < TARGET_RSS_GROWTH
        print(f"peak RSS growth target < {TARGET_RSS_GROWTH // MIB} MiB: {'met' if ok else 'MISSED'}")

        if args.verify:
            back = directory / "back.bin"
            decrypt_seconds = run(
                [args.openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(ours_out),
                 "-inkey", str(key_pem), "-recip", str(cert_pem), "-out", str(back)]
            )  # fmt: skip
            same = sha256_file(back) == plain_sha
            print(f"openssl decrypts our output ({decrypt_seconds:.2f} s): {'identical' if same else 'MISMATCH'}")
            ok = ok and same
        return 0 if ok else 1


def _child_maxrss_bytes() -> int:
    value = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


if __name__ == "__main__":
    sys.exit(main())
