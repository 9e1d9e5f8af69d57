"""Issue 22, items 8 and 19 (config part): ``from_env`` says which settings
are missing with an error of the client's tree, an application reads the
``svarut`` command's config file (``from_config``, ``from_env(config=...)``),
and that file is looked for in the platform's config directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import svarut
from svarut import _config, errors
from svarut.cli import config as cli_config


def _toml(settings: dict[str, str], *, keystore: str) -> str:
    return f"""
environment = "test"
base_url = "{settings["SVARUT_BASE_URL"]}"
integrasjon_id = "{settings["SVARUT_INTEGRASJON_ID"]}"
integrasjon_passord = "{settings["SVARUT_INTEGRASJON_PASSORD"]}"

[maskinporten]
client_id = "{settings["MASKINPORTEN_CLIENT_ID"]}"
keystore = "{keystore}"
issuer = "{settings["MASKINPORTEN_ISSUER"]}"
token_endpoint = "{settings["MASKINPORTEN_TOKEN_ENDPOINT"]}"
"""


def _write_config(folder: Path, settings: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "virksomhet.pem").write_bytes(Path(settings["MASKINPORTEN_KEYSTORE"]).read_bytes())
    path = folder / "config.toml"
    path.write_text(_toml(settings, keystore="virksomhet.pem"))  # relative to the file
    return path


def test_from_env_names_every_missing_setting_with_an_error_of_the_tree(tmp_path: Path) -> None:
    environ = {"SVARUT_ENVIRONMENT": "test", "SVARUT_INTEGRASJON_PASSORD": "hemmelig"}
    with pytest.raises(errors.ConfigurationError) as caught:
        svarut.SvarUtClient.from_env(environ=environ)
    error = caught.value
    assert isinstance(error, errors.SvarUtError) and isinstance(
        error, ValueError
    )  # old `except ValueError` still holds
    assert error.missing == ["SVARUT_INTEGRASJON_ID", "MASKINPORTEN_CLIENT_ID", "MASKINPORTEN_KEYSTORE"]
    assert str(error) == (
        "missing environment variables: SVARUT_INTEGRASJON_ID, MASKINPORTEN_CLIENT_ID, MASKINPORTEN_KEYSTORE"
    )
    # With a config file, each is named with its key there too.
    config = tmp_path / "config.toml"
    config.write_text('integrasjon_id = "5f8a3a4e-1f0e-4d53-9a39-3b8a4b2f8e11"\n')
    with pytest.raises(errors.ConfigurationError) as caught:
        svarut.SvarUtClient.from_env(environ=environ, config=config)
    assert caught.value.missing == ["MASKINPORTEN_CLIENT_ID", "MASKINPORTEN_KEYSTORE"]
    message = str(caught.value)
    assert message.startswith("missing settings: MASKINPORTEN_CLIENT_ID (environment, or 'maskinporten.client_id'")
    assert "'maskinporten.keystore' in the config file" in message
    assert "hemmelig" not in message and "5f8a3a4e" not in message


def test_a_bad_environment_name_is_a_configuration_error() -> None:
    environ = {name: "x" for name in _config.REQUIRED} | {"SVARUT_ENVIRONMENT": "production"}
    with pytest.raises(errors.ConfigurationError, match="SVARUT_ENVIRONMENT must be test or prod, got 'production'"):
        svarut.SvarUtClient.from_env(environ=environ)


def test_an_application_reads_the_commands_config_file(svarut_simulator, tmp_path: Path) -> None:
    settings = svarut_simulator.environ()
    path = _write_config(tmp_path / "conf", settings)
    fid = svarut_simulator.client.send_til_person(
        konto_id=svarut_simulator.konto_id,
        forsendelse=svarut.models.PersonForsendelse(
            tittel="Vedtak",
            mottaker=svarut.models.Mottaker(navn="Kari Nordmann", digital_id="21883649874"),
            dokumenter=[svarut.models.PersonDokument(filnavn="vedtak.pdf", mime_type="application/pdf")],
        ),
        dokumenter={"vedtak.pdf": b"%PDF-1.7\n% config test\n%%EOF\n"},
    )

    with svarut.SvarUtClient.from_config(path, environ={}) as client:
        assert client.hent_status(konto_id=svarut_simulator.konto_id, forsendelse_id=fid).id == fid
    with svarut.SvarUtClient.from_env(environ={}, config=path) as client:
        assert client.hent_status(konto_id=svarut_simulator.konto_id, forsendelse_id=fid).id == fid
    # The environment beats the file, as for the command: a wrong password from the environment is used.
    wrong = {"SVARUT_INTEGRASJON_PASSORD": "feil-passord"}
    with svarut.SvarUtClient.from_config(path, environ=wrong) as client, pytest.raises(errors.APIStatusError):
        client.hent_status(konto_id=svarut_simulator.konto_id, forsendelse_id=fid)


def test_from_config_without_a_file_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    with pytest.raises(
        _config.ConfigFileError, match=f"no config file at {tmp_path / 'xdg' / 'svarut' / 'config.toml'}"
    ):
        svarut.SvarUtClient.from_config(environ=environ)
    with pytest.raises(errors.ConfigurationError, match=r"no config file at .*nowhere\.toml"):
        svarut.SvarUtClient.from_config(tmp_path / "nowhere.toml", environ=environ)


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("win32", ["appdata/svarut/config.toml", "home/.config/svarut/config.toml"]),
        ("darwin", ["home/Library/Application Support/svarut/config.toml", "home/.config/svarut/config.toml"]),
        ("linux", ["home/.config/svarut/config.toml"]),
    ],
)
def test_the_config_file_is_looked_for_in_the_platforms_config_directory(
    platform: str, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    environ = {"HOME": str(tmp_path / "home"), "APPDATA": str(tmp_path / "appdata")}
    assert _config.config_paths(environ) == [tmp_path / p for p in expected]
    # Nothing there yet: the first is where to create one.
    assert _config.default_config_path(environ) == tmp_path / expected[0]
    # XDG_CONFIG_HOME moves the XDG place on every platform.
    moved = _config.config_paths({**environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert moved[-1] == tmp_path / "xdg" / "svarut" / "config.toml"


def test_windows_without_appdata_uses_the_roaming_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    paths = _config.config_paths({"USERPROFILE": str(tmp_path)})
    assert paths[0] == tmp_path / "AppData" / "Roaming" / "svarut" / "config.toml"


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_the_command_and_from_config_find_the_same_file(
    platform: str, svarut_simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    environ = {"HOME": str(tmp_path / "home"), "APPDATA": str(tmp_path / "appdata")}
    folder = {
        "win32": tmp_path / "appdata" / "svarut",
        "darwin": tmp_path / "home" / "Library" / "Application Support" / "svarut",
        "linux": tmp_path / "home" / ".config" / "svarut",
    }[platform]
    path = _write_config(folder, svarut_simulator.environ())

    # The command's settings (flags over environment over file) come from the library's reader.
    settings = cli_config.resolve(flags={}, config_path=None, environ=environ)
    assert settings.sources["SVARUT_INTEGRASJON_ID"] == f"config file {path}"
    with svarut.SvarUtClient.from_config(environ=environ) as client:
        assert client.base_url == svarut_simulator.base_url.rstrip("/")
    if platform == "darwin":
        # ~/.config/svarut is found on macOS too, when Application Support has none.
        path.unlink()
        xdg = _write_config(tmp_path / "home" / ".config" / "svarut", svarut_simulator.environ())
        assert _config.default_config_path(environ) == xdg


def test_the_library_reads_the_config_file_without_importing_the_command() -> None:
    code = (
        "import sys, svarut._client, svarut._config\n"
        "svarut._client.SvarUtClient.from_config\n"
        "assert not [m for m in sys.modules if m == 'svarut.cli' or m.startswith('svarut.cli.')], sorted(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert cli_config.load_config_file is _config.load_config_file  # one reader, re-exported
