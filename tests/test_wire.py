"""What the clients put on the wire, checked against a real HTTP server.

Every test that talks to the server runs for the sync and the async client
(the ``api`` fixture); multipart bodies are read back with requests-toolbelt's
decoder, which shares no code with the client's encoder.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
import uuid
from typing import Any
from urllib.parse import unquote

import pydantic
import pytest
from requests_toolbelt.multipart.decoder import BodyPart, MultipartDecoder

import svarut
from svarut import File, models
from svarut.errors import APITimeoutError, ForsendelseNotFoundError, ForsendelseValidationError
from svarut.runtime.files import Source, SourceChangedError
from svarut.runtime.retry import NO_RETRIES

pytestmark = pytest.mark.anyio

KONTO = uuid.UUID("0b0f1d53-6a4c-4a65-8a0e-5c1b3c0f9a11")
SENDS = "/api/v3/kontoer/{konto}/forsendelser/{what}"


# --- helpers ----------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def person(*filnavn: str, mime_type: str = "application/pdf") -> models.PersonForsendelse:
    return models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn=name, mime_type=mime_type) for name in filnavn],
    )


def parts(request: Any) -> tuple[BodyPart, ...]:
    return MultipartDecoder(request.body, request.headers["Content-Type"]).parts


def header(part: BodyPart, name: str) -> str:
    return part.headers[name.encode()].decode()


def disposition(part: BodyPart) -> dict[str, str]:
    value = header(part, "Content-Disposition")
    assert value.startswith("form-data;"), value
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


GENERATED_REFERANSE = re.compile(r"fiks-svarut-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def metadata_of(request: Any) -> dict[str, Any]:
    """The ``forsendelse`` part as sent, less the eksternReferanse the client gave a
    forsendelse without one (checked to be a fresh ``fiks-svarut-<uuid4>``)."""
    first = parts(request)[0]
    assert disposition(first) == {"name": "forsendelse"}
    assert header(first, "Content-Type") == "application/json"
    metadata: dict[str, Any] = json.loads(first.content)
    referanse = metadata.pop("eksternReferanse")
    assert GENERATED_REFERANSE.fullmatch(referanse), referanse
    return metadata


def documents_of(request: Any) -> list[tuple[str, str, str, bytes]]:
    """(part name, filename, content type, content) of each document part, in wire order."""
    out = []
    for part in parts(request)[1:]:
        d = disposition(part)
        out.append((d["name"], unquote(d["filename"]), header(part, "Content-Type"), part.content))
    return out


def assert_exact_length(request: Any) -> None:
    assert "Transfer-Encoding" not in request.headers
    assert int(request.headers["Content-Length"]) == len(request.body)
    boundary = request.headers["Content-Type"].split("boundary=")[1]
    assert request.body.endswith(f"--{boundary}--\r\n".encode())


class ThreadRecordingReader(io.RawIOBase):
    """A binary file that notes the thread of every read, seek and tell."""

    def __init__(self, data: bytes, *, seekable: bool) -> None:
        super().__init__()
        self._buf = io.BytesIO(data)
        self._seekable = seekable
        self.threads: set[int] = set()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def readinto(self, b: Any) -> int:
        self.threads.add(threading.get_ident())
        return self._buf.readinto(b)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.threads.add(threading.get_ident())
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self._buf.seek(offset, whence)

    def tell(self) -> int:
        self.threads.add(threading.get_ident())
        if not self._seekable:
            raise io.UnsupportedOperation("tell")
        return self._buf.tell()


# --- the four sends -----------------------------------------------------------

MOTTAKER_ORG = models.Mottaker(navn="Kommunen", digital_id="910229028")


def _nhn() -> models.NhnForsendelse:
    return models.NhnForsendelse(
        tittel="Epikrise",
        mottakertype=models.NhnMottakertype.HER_ID,
        mottaker_her_id=8142519,
        avsender_kontakt=models.NhnAvsenderKontakt(fornavn="Ola", etternavn="Lege", telefonnummer="12345678"),
        pasient=models.NhnPasient(fodselsnummer="21883649874", fornavn="Kari", etternavn="Nordmann"),
    )


SEND_CASES = {
    "person": ("send_til_person", person("brev.pdf"), "dokumenter"),
    "organisasjon": (
        "send_til_organisasjon",
        models.OrganisasjonForsendelse(
            tittel="Melding",
            mottaker=MOTTAKER_ORG,
            dokumenter=[models.OrganisasjonDokument(filnavn="brev.pdf", mime_type="application/pdf")],
        ),
        "dokumenter",
    ),
    "print": (
        "send_til_print",
        models.PrintForsendelse(
            tittel="Brev",
            mottaker=models.Postadresse(navn="Kari", adresse=models.Adresse(adresselinje1="Gata 1", poststed="Oslo")),
            dokumenter=[models.PrintDokument(filnavn="brev.pdf", mime_type="application/pdf")],
        ),
        "dokumenter",
    ),
    "nhn": ("send_til_nhn", _nhn(), "dokument"),
}


@pytest.mark.parametrize("what", SEND_CASES)
async def test_send_posts_multipart_to_its_endpoint_and_returns_the_id(api, server, what):
    method, forsendelse, part_name = SEND_CASES[what]
    content = b"%PDF-1.7\n" + os.urandom(2000)
    if part_name == "dokument":
        documents = {"dokument": File(filnavn="brev.pdf", content=content, mime_type="application/pdf")}
    else:
        documents = {"dokumenter": {"brev.pdf": content}}
    answer = uuid.uuid4()
    server.reply(200, {"id": str(answer)})

    result = await api(method, konto_id=str(KONTO), forsendelse=forsendelse, **documents)

    assert result == answer
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == SENDS.format(konto=KONTO, what=what)
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert metadata_of(request) == forsendelse.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert [(n, f, t, sha(c)) for n, f, t, c in documents_of(request)] == [
        (part_name, "brev.pdf", "application/pdf", sha(content))
    ]
    assert_exact_length(request)


async def test_nhn_takes_a_path_named_by_its_file(api, server, tmp_path):
    path = tmp_path / "epikrise.pdf"
    path.write_bytes(b"%PDF-1.4 epikrise")

    await api("send_til_nhn", konto_id=KONTO, forsendelse=_nhn(), dokument=path)

    [request] = server.requests
    assert documents_of(request) == [("dokument", "epikrise.pdf", "application/pdf", b"%PDF-1.4 epikrise")]


# --- the multipart body ---------------------------------------------------------


async def test_metadata_goes_first_by_alias_and_documents_follow_in_metadata_order(api, server, tmp_path):
    forsendelse = models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari", digital_id="21883649874"),
        dokumenter=[
            models.PersonDokument(filnavn="1-bytes.pdf", mime_type="application/pdf", skal_signeres=True),
            models.PersonDokument(filnavn="2-path.txt", mime_type="text/plain", skal_ekskluderes_fra_utskrift=True),
            models.PersonDokument(
                filnavn="3-file.xml", mime_type="application/xml", skal_ekskluderes_fra_utskrift=True
            ),
        ],
        kun_digital_levering=False,
    )
    data = {name: os.urandom(5000) for name in ("1-bytes.pdf", "2-path.txt", "3-file.xml")}
    (tmp_path / "2-path.txt").write_bytes(data["2-path.txt"])
    (tmp_path / "3-file.xml").write_bytes(data["3-file.xml"])

    with (tmp_path / "3-file.xml").open("rb") as opened:
        # given in the reverse of the metadata's order
        dokumenter = {"3-file.xml": opened, "2-path.txt": tmp_path / "2-path.txt", "1-bytes.pdf": data["1-bytes.pdf"]}
        await api("send_til_person", konto_id=KONTO, forsendelse=forsendelse, dokumenter=dokumenter)

    [request] = server.requests
    meta = metadata_of(request)
    assert meta == {
        "tittel": "Vedtak",
        "mottaker": {"navn": "Kari", "digitalId": "21883649874"},
        "kunDigitalLevering": False,
        "dokumenter": [
            {"filnavn": "1-bytes.pdf", "mimeType": "application/pdf", "skalSigneres": True},
            {"filnavn": "2-path.txt", "mimeType": "text/plain", "skalEkskluderesFraUtskrift": True},
            {"filnavn": "3-file.xml", "mimeType": "application/xml", "skalEkskluderesFraUtskrift": True},
        ],
    }
    assert [(n, f, t, sha(c)) for n, f, t, c in documents_of(request)] == [
        ("dokumenter", "1-bytes.pdf", "application/pdf", sha(data["1-bytes.pdf"])),
        ("dokumenter", "2-path.txt", "text/plain", sha(data["2-path.txt"])),
        ("dokumenter", "3-file.xml", "application/xml", sha(data["3-file.xml"])),
    ]


# Every control character, quotes, backslashes, æøå, a combining accent, U+2028, a BOM and an emoji.
AWKWARD_TEXT = "".join(chr(i) for i in range(0x80)) + ' "sitat" \\ æøå ÆØÅ e\u0301 \u2028\u2029 \ufeff 😀'


async def test_the_metadata_part_is_json_dumps_of_the_forsendelse_byte_for_byte(api, server):
    # The part is written by pydantic-core's serializer (a fifth of json's CPU): the same bytes as
    # json.dumps(ensure_ascii=False) writes, which the client wrote before, and SvarUt reads.
    forsendelse = models.PersonForsendelse(
        tittel=AWKWARD_TEXT,
        mottaker=models.Mottaker(navn=AWKWARD_TEXT[-40:], digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="brev.pdf", mime_type="application/pdf")],
        ekstern_referanse="ref-1",
        kun_digital_levering=True,
    )
    dokumenter = {"brev.pdf": b"%PDF-1.7\n" + os.urandom(100)}
    await api("send_til_person", konto_id=KONTO, forsendelse=forsendelse, dokumenter=dokumenter)
    [request] = server.requests
    expected = forsendelse.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert parts(request)[0].content == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()


def test_metadata_json_writes_what_json_dumps_writes() -> None:
    from svarut.runtime.base_client import metadata_json

    values: list[Any] = [AWKWARD_TEXT, "", 0, -1, 2**63, 2**64 + 5, -(2**70), True, False, None, [], {}]
    metadata = {"a": values, "b": {"c": values, "d": [{"e": v} for v in values]}}
    assert metadata_json(metadata) == json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()
    with pytest.raises(UnicodeEncodeError):  # as json's bytes fail: a lone surrogate is no UTF-8
        metadata_json({"tittel": "\ud800"})


def _part_heads(request: Any) -> list[list[bytes]]:
    """The raw header lines of each part, split on the boundary by hand."""
    boundary = request.headers["Content-Type"].split("boundary=")[1].encode()
    sections = request.body.split(b"--" + boundary)
    assert sections[0] == b""
    assert sections[-1] == b"--\r\n"
    heads = []
    for section in sections[1:-1]:
        assert section.startswith(b"\r\n")
        head, _, _ = section[2:].partition(b"\r\n\r\n")
        heads.append(head.split(b"\r\n"))
    return heads


async def test_awkward_filenames_cannot_break_the_part_headers(api, server):
    names = ["brev æøå ÆØÅ.pdf", 'sitat "x".pdf', "linje\r\nX-Injected: ja.pdf"]
    contents = {name: f"innhold {i}".encode() for i, name in enumerate(names)}

    await api("send_til_person", konto_id=KONTO, forsendelse=person(*names), dokumenter=contents)

    [request] = server.requests
    assert _part_heads(request)[1:] == [
        [
            'Content-Disposition: form-data; name="dokumenter"; filename="brev æøå ÆØÅ.pdf"'.encode(),
            b"Content-Type: application/pdf",
        ],
        [
            b'Content-Disposition: form-data; name="dokumenter"; filename="sitat %22x%22.pdf"',
            b"Content-Type: application/pdf",
        ],
        [
            b'Content-Disposition: form-data; name="dokumenter"; filename="linje%0D%0AX-Injected: ja.pdf"',
            b"Content-Type: application/pdf",
        ],
    ]
    assert b"\nX-Injected" not in request.body
    assert [(f, c) for _, f, _, c in documents_of(request)] == list(contents.items())
    assert [d["filnavn"] for d in metadata_of(request)["dokumenter"]] == names


@pytest.mark.parametrize("kind", ["bytes", "path", "seekable file"])
async def test_known_sizes_are_sent_with_exact_content_length(api, server, tmp_path, kind):
    data = os.urandom(100_000)
    path = tmp_path / "a.pdf"
    path.write_bytes(data)
    with path.open("rb") as opened:
        source = {"bytes": data, "path": path, "seekable file": opened}[kind]
        await api("send_til_person", konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": source})

    [request] = server.requests
    assert_exact_length(request)
    assert documents_of(request)[0][3] == data


async def test_pipe_is_sent_chunked_and_arrives_intact(api, server):
    data = os.urandom(300_000)  # more than a pipe buffer holds
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), os.fdopen(write_fd, "wb") as out:  # BrokenPipe: the client gave up
            out.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            await api("send_til_person", konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": pipe})
    finally:
        feeder.join()

    [request] = server.requests
    assert request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in request.headers
    assert documents_of(request) == [("dokumenter", "a.pdf", "application/pdf", data)]


async def test_unseekable_file_object_is_sent_chunked_and_arrives_intact(api, server):
    data = os.urandom(50_000)
    source = ThreadRecordingReader(data, seekable=False)

    await api("send_til_person", konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": source})

    [request] = server.requests
    assert request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in request.headers
    assert documents_of(request)[0][3] == data


async def test_large_path_streams_intact(api, server, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 12345)
    path = tmp_path / "stor.pdf"
    path.write_bytes(data)

    await api("send_til_person", konto_id=KONTO, forsendelse=person("stor.pdf"), dokumenter={"stor.pdf": path})

    [request] = server.requests
    assert_exact_length(request)
    assert sha(documents_of(request)[0][3]) == sha(data)


async def test_seekable_file_is_sent_from_its_current_position(api, server, tmp_path):
    data = os.urandom(10_000)
    path = tmp_path / "a.pdf"
    path.write_bytes(data)
    with path.open("rb") as opened:
        opened.seek(1234)
        await api("send_til_person", konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": opened})

    [request] = server.requests
    assert_exact_length(request)
    assert documents_of(request)[0][3] == data[1234:]


@pytest.mark.parametrize("seekable", [True, False], ids=["seekable", "unseekable"])
async def test_async_client_reads_files_off_the_event_loop(server, seekable):
    loop_thread = threading.get_ident()
    data = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024)  # several chunks
    source = ThreadRecordingReader(data, seekable=seekable)

    # With the pre-send rules on, which sniff the file's first bytes, too.
    async with svarut.AsyncSvarUtClient(base_url=server.base_url, environment="test") as client:
        await client.send_til_person(konto_id=KONTO, forsendelse=person("a.pdf"), dokumenter={"a.pdf": source})

    assert source.threads, "the file was never read"
    assert loop_thread not in source.threads
    assert sha(documents_of(server.requests[0])[0][3]) == sha(data)


# --- rejected before sending ------------------------------------------------------


async def test_missing_and_extra_documents_are_reported_together_and_nothing_is_sent(api, server):
    with pytest.raises(ForsendelseValidationError) as caught:
        await api(
            "send_til_person",
            konto_id=KONTO,
            forsendelse=person("a.pdf", "mangler.pdf"),
            dokumenter={"a.pdf": b"a", "ekstra.pdf": b"x"},
        )

    problems = {p.rule: p for p in caught.value.problems}
    assert set(problems) == {"document_missing", "document_not_described"}
    assert "mangler.pdf" in problems["document_missing"].message
    assert problems["document_missing"].field == "dokumenter[1].filnavn"
    assert "ekstra.pdf" in problems["document_not_described"].message
    assert "mangler.pdf" in str(caught.value) and "ekstra.pdf" in str(caught.value)
    assert server.requests == []


async def test_duplicated_filnavn_is_rejected_and_nothing_is_sent(api, server):
    with pytest.raises(ForsendelseValidationError) as caught:
        await api("send_til_person", konto_id=KONTO, forsendelse=person("a.pdf", "a.pdf"), dokumenter={"a.pdf": b"a"})

    assert [(p.field, p.rule) for p in caught.value.problems] == [("dokumenter[1].filnavn", "filename_unique")]
    assert server.requests == []


@pytest.mark.parametrize("what", ["person", "nhn"])
async def test_mime_type_with_crlf_is_rejected_and_nothing_is_sent(api, server, what):
    bad = "application/pdf\r\nX-Injected: ja"
    if what == "nhn":
        call = {"forsendelse": _nhn(), "dokument": File(filnavn="a.pdf", content=b"a", mime_type=bad)}
    else:
        call = {"forsendelse": person("a.pdf", mime_type=bad), "dokumenter": {"a.pdf": b"a"}}

    with pytest.raises(ForsendelseValidationError) as caught:
        await api(f"send_til_{what}", konto_id=KONTO, **call)

    assert [p.rule for p in caught.value.problems] == ["content_type"]
    assert server.requests == []


@pytest.mark.parametrize("method", ["send_til_person", "hent_statuser"])
async def test_konto_id_must_be_a_uuid_and_nothing_is_sent(api, server, method):
    call = (
        {"ids": [uuid.uuid4()]}
        if method == "hent_statuser"
        else {"forsendelse": person("a.pdf"), "dokumenter": {"a.pdf": b"a"}}
    )
    with pytest.raises(ForsendelseValidationError) as caught:
        await api(method, konto_id="../../admin", **call)

    assert [(p.field, p.rule) for p in caught.value.problems] == [("kontoId", "uuid")]
    assert server.requests == []


# --- status ----------------------------------------------------------------------


async def test_hent_statuser_posts_json_and_reads_known_and_unknown_statuses(api, server):
    lest, ny = uuid.uuid4(), uuid.uuid4()
    server.reply(
        200,
        {
            "statuser": [
                {"id": str(lest), "sisteStatusEndring": "2024-05-02T10:00:00.008+02:00", "status": "LEST", "nytt": 1},
                {"id": str(ny), "sisteStatusEndring": "2024-05-03T08:00:00Z", "status": "NY_STATUS"},
            ],
            "nesteSide": None,
        },
    )

    statuser = await api("hent_statuser", konto_id=KONTO, ids=[lest, str(ny)])

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == SENDS.format(konto=KONTO, what="status/sok")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"id": [str(lest), str(ny)]}

    assert [s.id for s in statuser] == [lest, ny]
    assert statuser[0].status is models.Status.LEST
    assert statuser[0].siste_status_endring.isoformat() == "2024-05-02T10:00:00.008000+02:00"
    assert statuser[1].status == "NY_STATUS"
    assert not isinstance(statuser[1].status, models.Status)


async def test_hent_status_returns_the_one_status(api, server):
    wanted = uuid.uuid4()

    status = await api("hent_status", konto_id=KONTO, forsendelse_id=str(wanted))

    assert status.id == wanted
    assert status.status is models.Status.MOTTATT
    assert json.loads(server.requests[0].body) == {"id": [str(wanted)]}


@pytest.mark.parametrize("answer", ["none", "another"])
async def test_hent_status_raises_not_found_without_a_status_for_it(api, server, answer):
    statuser = []
    if answer == "another":
        statuser = [{"id": str(uuid.uuid4()), "sisteStatusEndring": "2024-05-02T10:00:00Z", "status": "LEST"}]
    server.reply(200, {"statuser": statuser})

    with pytest.raises(ForsendelseNotFoundError):
        await api("hent_status", konto_id=KONTO, forsendelse_id=uuid.uuid4())


# --- models --------------------------------------------------------------------------


def test_request_models_reject_unknown_keywords():
    with pytest.raises(pydantic.ValidationError, match="digtal_id"):
        models.Mottaker(navn="Kari", digital_id="21883649874", digtal_id="21883649874")
    with pytest.raises(pydantic.ValidationError, match="skalSignere"):
        models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf", skalSignere=True)


def test_request_models_are_built_by_field_name_or_spec_alias():
    by_name = models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf", skal_signeres=True)
    by_alias = models.PersonDokument.model_validate(
        {"filnavn": "a.pdf", "mimeType": "application/pdf", "skalSigneres": True}
    )
    assert by_name == by_alias
    assert models.Mottaker(navn="Kari", digitalId="21883649874").digital_id == "21883649874"
    assert models.Mottaker(navn="Kari", digital_id="21883649874").model_dump() == {
        "navn": "Kari",
        "digitalId": "21883649874",
        "adresse": None,
    }


# --- timeouts --------------------------------------------------------------------


async def test_per_call_timeout_overrides_the_client_timeout(api, server):
    server.reply(200, {"statuser": []}, delay=1.0)

    with pytest.raises(APITimeoutError):
        # No retries: the status search would otherwise be asked again.
        await api(
            "hent_statuser", client_options={"retry": NO_RETRIES}, konto_id=KONTO, ids=[uuid.uuid4()], timeout=0.2
        )

    assert len(server.requests) == 1  # it was the answer that was late, not the connection


# --- documents that change under the client ----------------------------------------


@pytest.mark.parametrize("change", [b"kort", b"x" * 1500], ids=["shrinks", "grows"])
def test_source_notices_a_file_that_changed_size(tmp_path, change):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"x" * 1000)
    source = Source(path, label="a.pdf")
    path.write_bytes(change)

    with pytest.raises(SourceChangedError, match=r"a\.pdf"):
        b"".join(source.iter_bytes())


@pytest.mark.parametrize("change", [b"kort", b"x" * 1500], ids=["shrinks", "grows"])
async def test_send_fails_rather_than_corrupt_the_body_when_a_file_changes(api, server, tmp_path, change):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"x" * 1000)

    def change_file(_prepared: Any) -> None:  # runs after the size is measured, before sending
        path.write_bytes(change)

    with pytest.raises(SourceChangedError):
        await api(
            "send_til_person",
            client_options={"checks": [change_file]},
            konto_id=KONTO,
            forsendelse=person("a.pdf"),
            dokumenter={"a.pdf": path},
        )

    assert server.requests == []
