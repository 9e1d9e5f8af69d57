"""Encrypted sends end to end: ``kryptering=True`` fetches SvarUt's
certificate from the SvarUt host, streams each document as CMS with an exact
Content-Length, sets ``kryptert``, and the real ``openssl cms -decrypt`` on the
receiving side gets the documents back byte for byte."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from requests_toolbelt.multipart.decoder import MultipartDecoder

from svarut import kryptering as k
from svarut import models
from svarut.errors import ForsendelseValidationError
from svarut.simulator.keys import generate_key_pair

pytestmark = pytest.mark.anyio

KONTO = uuid.uuid4()


@pytest.fixture(scope="module")
def svarut_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    pair = generate_key_pair("SvarUt test")
    d = tmp_path_factory.mktemp("svarut-key")
    (d / "key.pem").write_bytes(pair.private_key_pem)
    (d / "cert.pem").write_bytes(pair.certificate_pem)
    return d / "key.pem", d / "cert.pem", pair.certificate_pem


@pytest.fixture(autouse=True)
def _fresh_cache():
    k.clear_sertifikat_cache()
    yield
    k.clear_sertifikat_cache()


def decrypt(der: bytes, key: Path, cert: Path, tmp: Path) -> bytes:
    src, out = tmp / "in.der", tmp / "out.bin"
    src.write_bytes(der)
    subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", src, "-inkey", key, "-recip", cert, "-out", out],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


async def test_encrypted_send_decrypts_on_the_other_side(api, server, svarut_key, tmp_path):
    key, cert, pem = svarut_key
    vedtak = b"%PDF-1.7\n" + bytes(range(256)) * 5000
    vedlegg = tmp_path / "vedlegg.pdf"
    vedlegg.write_bytes(b"%PDF-1.4\n" + b"x" * 31)  # 40 bytes: a whole number of AES blocks
    forsendelse = models.PersonForsendelse(
        tittel="Fortrolig",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        sikkerhetsniva=models.Sikkerhetsniva.HOYESTE,
        dokumenter=[
            models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf"),
            models.PersonDokument(filnavn="vedlegg.pdf", mime_type="application/pdf"),
        ],
    )
    server.reply(200, pem, headers={"Content-Type": "application/x-pem-file"})

    await api(
        "send_til_person",
        client_options={"validate": True, "environment": "test"},
        konto_id=KONTO,
        forsendelse=forsendelse,
        dokumenter={"vedtak.pdf": vedtak, "vedlegg.pdf": vedlegg},
        kryptering=True,
    )

    fetch, send = server.requests
    assert (fetch.method, fetch.path) == ("GET", "/forsendelse/publickey/hent")
    assert int(send.headers["Content-Length"]) == len(send.body)
    parts = MultipartDecoder(send.body, send.headers["Content-Type"]).parts
    metadata = json.loads(parts[0].content)
    assert metadata["kryptert"] is True
    assert [decrypt(p.content, key, cert, tmp_path) for p in parts[1:]] == [vedtak, vedlegg.read_bytes()]
    assert all(p.content != plain for p, plain in zip(parts[1:], [vedtak, vedlegg.read_bytes()], strict=True))


async def test_hoyeste_without_encryption_is_refused_before_sending(api, server):
    forsendelse = models.PersonForsendelse(
        tittel="Fortrolig",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        sikkerhetsniva=models.Sikkerhetsniva.HOYESTE,
        dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
    )
    with pytest.raises(ForsendelseValidationError) as caught:
        await api(
            "send_til_person",
            client_options={"validate": True, "environment": "test"},
            konto_id=KONTO,
            forsendelse=forsendelse,
            dokumenter={"vedtak.pdf": b"%PDF-1.7"},
        )
    assert [p.rule for p in caught.value.problems] == ["hoyeste_requires_kryptert"]
    assert server.requests == []
