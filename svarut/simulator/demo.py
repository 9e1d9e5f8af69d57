"""``make demo`` / ``python -m svarut.simulator.demo``: a letter's whole journey, locally.

Starts the simulator, sends a letter with two PDF documents to a (synthetic)
person through the real client (the Maskinporten stand-in issues the token,
the integration headers ride along), waits with ``vent_pa_status`` until the
letter reaches a terminal status, prints each status with its time, and stops
the simulator. Needs nothing but the installed package; takes a few seconds.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TextIO

from svarut import models
from svarut._client import TERMINAL_STATUSES
from svarut.simulator.facade import Simulator

__all__ = ["main", "minimal_pdf"]

# A synthetic test person (Tenor): accepted with environment="test" only.
MOTTAKER = models.Mottaker(navn="Kari Nordmann", digital_id="21883649874")
STEP_SECONDS = 0.4


def minimal_pdf(text: str) -> bytes:
    """A small, valid one-page PDF showing ``text`` (ASCII)."""
    safe = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    stream = b"BT /F1 18 Tf 72 720 Td (" + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def run(*, out: TextIO, step_seconds: float = STEP_SECONDS, timeout: float = 30.0) -> int:
    """The demo; returns the exit status (0 once the letter reached a terminal status)."""
    with tempfile.TemporaryDirectory(prefix="svarut-demo-") as tmp, Simulator(step_seconds=step_seconds) as sim:
        print(f"SvarUt simulator running at {sim.url} (page: {sim.page_url})", file=out)
        folder = Path(tmp)
        vedtak = folder / "vedtak.pdf"
        vedlegg = folder / "vedlegg.pdf"
        vedtak.write_bytes(minimal_pdf("Vedtak om byggetillatelse"))
        vedlegg.write_bytes(minimal_pdf("Situasjonskart"))
        forsendelse = models.PersonForsendelse(
            tittel="Vedtak om byggetillatelse",
            mottaker=MOTTAKER,
            dokumenter=[
                models.PersonDokument(filnavn=vedtak.name, mime_type="application/pdf"),
                models.PersonDokument(filnavn=vedlegg.name, mime_type="application/pdf"),
            ],
            ekstern_referanse="demo-sak-2026-0042",
        )
        with sim.client() as client:
            forsendelse_id = client.send_til_person(
                konto_id=sim.konto_id,
                forsendelse=forsendelse,
                dokumenter={vedtak.name: vedtak, vedlegg.name: vedlegg},
            )
            token = sim.maskinporten.issued[-1]
            print(f"Maskinporten stand-in issued a token to client {token.client_id!r} (scope {token.scope})", file=out)
            print(f"Sent forsendelse {forsendelse_id} with 2 documents to {MOTTAKER.navn}", file=out)
            for document in sim.get(forsendelse_id).documents:
                print(f"  {document.filnavn}: {document.size} bytes, sha256 {document.sha256[:16]}…", file=out)
            print("Waiting for a terminal status (vent_pa_status) ...", file=out)
            final = client.vent_pa_status(
                konto_id=sim.konto_id, ids=[forsendelse_id], timeout=timeout, interval=step_seconds / 2
            )[forsendelse_id]
        record = sim.get(forsendelse_id)
        print("Journey:", file=out)
        for change in record.history:
            offset = (change.at - record.received_at).total_seconds()
            local = change.at.astimezone()
            print(f"  {local:%H:%M:%S}.{local.microsecond // 1000:03d}  +{offset:.1f}s  {change.status}", file=out)
        terminal = str(final.status) in TERMINAL_STATUSES
        print(
            f"Final status seen by the client: {final.status} ({'terminal' if terminal else 'not terminal'})", file=out
        )
    return 0 if terminal else 1


def main() -> None:
    sys.exit(run(out=sys.stdout))


if __name__ == "__main__":
    main()
