"""What a consumer gets: the wheel installs with only the runtime
dependencies, imports, and type-checks user code under ``mypy --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("fiks_svarut-*.whl")
    return built


def test_wheel_holds_the_package_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "svarut/py.typed" in names
    assert "svarut/generated/models.py" in names
    assert "svarut/runtime/multipart.py" in names
    assert not [n for n in names if n.startswith(("generator/", "tests/", "templates/", "specs/"))]
    (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert zipfile.ZipFile(wheel).read(license_file) == (ROOT / "LICENSE").read_bytes()
    (metadata_file,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    metadata = zipfile.ZipFile(wheel).read(metadata_file).decode()
    assert "License-Expression: MIT" in metadata and "Project-URL: SvarUt specs, https://" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata


def test_installs_in_a_fresh_venv_without_dev_tools(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout.lower()
    for dev_only in ("datamodel-code-generator", "jinja2", "ruff", "mypy", "pytest", "requests"):
        assert f"{dev_only}==" not in installed, f"{dev_only} must not be a runtime dependency"
    script = textwrap.dedent(
        """
        import svarut
        from svarut import models
        client = svarut.SvarUtClient(base_url="https://test.svarut.ks.no/api")
        assert callable(client.send_til_person) and callable(client.hent_status)
        client.close()
        models.PersonForsendelse(tittel="t", mottaker=models.Mottaker(navn="n", digital_id="21883649874"))
        print("ok", svarut.__version__)
        """
    )
    # Run outside the source tree so the installed package, not ./svarut, is imported.
    result = subprocess.run(
        [python, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.stdout.startswith("ok ")

    # One version number: the metadata's is __version__, and so is `svarut --version`'s.
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"{wheel}[cli]"], check=True)
    versions = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata, svarut; print(importlib.metadata.version('fiks-svarut'), svarut.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
    ).stdout.split()
    assert versions == [versions[0]] * 2 and wheel.name.startswith(f"fiks_svarut-{versions[0]}-")
    command = subprocess.run(
        [env_dir / "bin" / "svarut", "--version"], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    assert command.stdout == f"svarut, version {versions[0]}\n"


def test_user_code_type_checks_with_python_field_names(tmp_path: Path) -> None:
    user = tmp_path / "user_code.py"
    user.write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from uuid import UUID

            import svarut
            from svarut import models


            def send(client: svarut.SvarUtClient, konto: UUID) -> UUID:
                forsendelse = models.PersonForsendelse(
                    tittel="Vedtak",
                    mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
                    dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
                    kun_digital_levering=False,
                )
                return client.send_til_person(
                    konto_id=konto, forsendelse=forsendelse, dokumenter={"vedtak.pdf": Path("vedtak.pdf")}
                )


            async def status(client: svarut.AsyncSvarUtClient, konto: UUID, ids: list[UUID]) -> list[str]:
                return [str(s.status) for s in await client.hent_statuser(konto_id=konto, ids=ids)]
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_names_are_all_importable() -> None:
    import svarut

    assert set(svarut.__all__) == {*svarut._EXPORTS, "__version__"}
    for name in svarut.__all__:
        assert getattr(svarut, name) is not None
    assert svarut.models.PersonForsendelse.__name__ == "PersonForsendelse"


def test_a_misspelled_constructor_option_fails_type_checking(tmp_path: Path) -> None:
    user = tmp_path / "options.py"
    user.write_text(
        textwrap.dedent(
            """
            import httpx2

            import svarut
            from svarut.runtime.retry import RetryPolicy

            ok = svarut.SvarUtClient.from_env(http_client=httpx2.Client(), retry=RetryPolicy(), validate=False)
            ok_async = svarut.AsyncSvarUtClient.from_env(http_client=httpx2.AsyncClient())
            typo = svarut.SvarUtClient.from_env(retyr=RetryPolicy())
            typo_too = svarut.SvarUtClient(base_url="https://test.svarut.ks.no/api", http_clinet=httpx2.Client())
            wrong_kind = svarut.SvarUtClient.for_environment(
                "test", integrasjon_id="x", integrasjon_passord="y", http_client=httpx2.AsyncClient()
            )
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--no-error-summary", str(user)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 3, result.stdout
    assert ':9: error: Unexpected keyword argument "retyr"' in errors[0]
    assert ':10: error: Unexpected keyword argument "http_clinet"' in errors[1]
    assert ':12: error: Argument "http_client" to "for_environment"' in errors[2] and "AsyncClient" in errors[2]


def _kryptert_forsendelse() -> Any:
    from svarut import models

    return models.PersonForsendelse(
        tittel="Eget HTTP-oppsett",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
        dokumenter=[models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
    )


def test_from_env_uses_your_http_client_for_every_request(svarut_simulator: Any) -> None:
    import httpx2

    import svarut
    from svarut.runtime import kryptering

    kryptering.clear_sertifikat_cache()  # so this client fetches the certificate itself
    seen: list[str] = []
    http = httpx2.Client(event_hooks={"request": [lambda request: seen.append(f"{request.method} {request.url.path}")]})
    with svarut.SvarUtClient.from_env(environ=svarut_simulator.environ(), http_client=http) as client:
        forsendelse_id = client.send_til_person(
            konto_id=svarut_simulator.konto_id,
            forsendelse=_kryptert_forsendelse(),
            dokumenter={"vedtak.pdf": b"%PDF-1.7\n%%EOF\n"},
            kryptering=True,
        )
    konto = svarut_simulator.konto_id
    assert seen == [  # the certificate while the send is prepared, then the token and the send
        "GET /forsendelse/publickey/hent",
        "POST /maskinporten/token",
        f"POST /api/v3/kontoer/{konto}/forsendelser/person",
    ], seen
    assert svarut_simulator.get(forsendelse_id).metadata["kryptert"] is True
    assert not http.is_closed  # yours: left open
    http.close()


@pytest.mark.anyio
async def test_async_from_env_uses_your_async_http_client(svarut_simulator: Any) -> None:
    import httpx2

    import svarut
    from svarut.runtime import kryptering

    kryptering.clear_sertifikat_cache()
    seen: list[str] = []

    async def hook(request: httpx2.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    async with httpx2.AsyncClient(event_hooks={"request": [hook]}) as http:
        async with svarut.AsyncSvarUtClient.from_env(environ=svarut_simulator.environ(), http_client=http) as client:
            await client.send_til_person(
                konto_id=svarut_simulator.konto_id,
                forsendelse=_kryptert_forsendelse(),
                dokumenter={"vedtak.pdf": b"%PDF-1.7\n%%EOF\n"},
                kryptering=True,
            )
        assert not http.is_closed
    # Maskinporten tokens are fetched by the token provider's own sync client
    # (one token for every thread and event loop), never by an AsyncClient.
    assert [s.split(" /")[1].split("/")[0] for s in seen] == ["forsendelse", "api"], seen


def test_insecure_tls_with_your_own_http_client_is_refused() -> None:
    import httpx2

    import svarut
    from svarut.auth import StaticToken

    with pytest.raises(ValueError, match="set verify= on your own http_client"), httpx2.Client() as http:
        svarut.SvarUtClient.for_environment(
            "test",
            integrasjon_id="x",
            integrasjon_passord="y",
            token_provider=StaticToken("t"),
            http_client=http,
            insecure_disable_tls_verification=True,
        )
