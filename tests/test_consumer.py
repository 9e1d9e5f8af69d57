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
                return [str(s.status) for s in await client.hent_statuser(konto_id=konto, id=ids)]
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
