"""The settings file the ``svarut`` command and :meth:`SvarUtClient.from_config
<svarut.SvarUtClient.from_config>` read, and how settings from flags, the
environment and that file are merged.

Every setting has the environment variable name ``SvarUtClient.from_env``
reads (plus ``SVARUT_KONTO_ID``), and a key in the config file::

    # config.toml in the platform's config directory (see default_config_path), or a path given
    environment = "test"                 # SVARUT_ENVIRONMENT
    base_url = "https://..."             # SVARUT_BASE_URL (optional)
    konto_id = "..."                     # SVARUT_KONTO_ID
    integrasjon_id = "..."               # SVARUT_INTEGRASJON_ID
    integrasjon_passord = "..."          # SVARUT_INTEGRASJON_PASSORD (better kept in the environment)

    [maskinporten]
    client_id = "..."                    # MASKINPORTEN_CLIENT_ID
    keystore = "virksomhet.p12"          # MASKINPORTEN_KEYSTORE, relative to this file
    keystore_password = "..."            # MASKINPORTEN_KEYSTORE_PASSWORD
    # certificate, kid, scopes, resource, consumer_org, issuer, token_endpoint: MASKINPORTEN_*

Where the file is looked for by default (:func:`config_paths`, the first that
exists): on Linux and other Unix ``$XDG_CONFIG_HOME/svarut/config.toml``
(``~/.config/svarut/config.toml``); on macOS
``~/Library/Application Support/svarut/config.toml``, then the XDG place; on
Windows ``%APPDATA%\\svarut\\config.toml``, then the XDG place.

Unknown keys are an error (a typo should not silently drop a setting).
Values are never printed. This is library code: the command's module
(``svarut.cli.config``) re-exports it, and nothing here imports the command.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svarut.runtime.errors import ConfigurationError

__all__ = [
    "KEYS",
    "REQUIRED",
    "ConfigFileError",
    "Settings",
    "config_paths",
    "default_config_path",
    "load_config_file",
    "missing_error",
    "resolve",
]

#: config-file key -> environment variable
KEYS: dict[str, str] = {
    "environment": "SVARUT_ENVIRONMENT",
    "base_url": "SVARUT_BASE_URL",
    "konto_id": "SVARUT_KONTO_ID",
    "integrasjon_id": "SVARUT_INTEGRASJON_ID",
    "integrasjon_passord": "SVARUT_INTEGRASJON_PASSORD",
    "maskinporten.client_id": "MASKINPORTEN_CLIENT_ID",
    "maskinporten.keystore": "MASKINPORTEN_KEYSTORE",
    "maskinporten.keystore_password": "MASKINPORTEN_KEYSTORE_PASSWORD",
    "maskinporten.certificate": "MASKINPORTEN_CERTIFICATE",
    "maskinporten.kid": "MASKINPORTEN_KID",
    "maskinporten.scopes": "MASKINPORTEN_SCOPES",
    "maskinporten.resource": "MASKINPORTEN_RESOURCE",
    "maskinporten.consumer_org": "MASKINPORTEN_CONSUMER_ORG",
    "maskinporten.issuer": "MASKINPORTEN_ISSUER",
    "maskinporten.token_endpoint": "MASKINPORTEN_TOKEN_ENDPOINT",
}
_KEY_OF = {env: key for key, env in KEYS.items()}
# Files named in the config file are found relative to it.
_PATH_KEYS = frozenset({"maskinporten.keystore", "maskinporten.certificate"})

#: What a client for SvarUt needs, whatever sets it.
REQUIRED = (
    "SVARUT_ENVIRONMENT",
    "SVARUT_INTEGRASJON_ID",
    "SVARUT_INTEGRASJON_PASSORD",
    "MASKINPORTEN_CLIENT_ID",
    "MASKINPORTEN_KEYSTORE",
)


class ConfigFileError(ConfigurationError):
    """The config file cannot be read or has keys it should not have."""


def _home(environ: Mapping[str, str]) -> Path:
    # HOME first, as expanduser reads it, so a caller's environ (a test, a service) decides.
    return Path(environ.get("HOME") or environ.get("USERPROFILE") or os.path.expanduser("~"))


def config_paths(environ: Mapping[str, str], *, platform: str | None = None) -> list[Path]:
    """Where the config file is looked for, most specific first: the
    platform's own config directory, then the XDG one (``$XDG_CONFIG_HOME``,
    by default ``~/.config``), which many tools use on every platform.

    Args:
        environ: The environment (``APPDATA``, ``XDG_CONFIG_HOME``, ``HOME``).
        platform: ``sys.platform`` (default: this one's).
    """
    platform = sys.platform if platform is None else platform
    xdg = Path(environ.get("XDG_CONFIG_HOME") or _home(environ) / ".config") / "svarut" / "config.toml"
    if platform == "win32":
        appdata = environ.get("APPDATA")
        roaming = Path(appdata) if appdata else _home(environ) / "AppData" / "Roaming"
        return [roaming / "svarut" / "config.toml", xdg]
    if platform == "darwin":
        return [_home(environ) / "Library" / "Application Support" / "svarut" / "config.toml", xdg]
    return [xdg]


def default_config_path(environ: Mapping[str, str], *, platform: str | None = None) -> Path:
    """The config file used when none is named: the first of
    :func:`config_paths` that exists, else the first (where to create one)."""
    paths = config_paths(environ, platform=platform)
    return next((p for p in paths if p.is_file()), paths[0])


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, name + ".")
        else:
            flat[name] = value
    return flat


def load_config_file(path: Path) -> dict[str, str]:
    """The settings in the TOML file ``path``, by environment variable name."""
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
    except OSError as exc:
        raise ConfigFileError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"the config file {path} is not valid TOML: {exc}") from None
    values: dict[str, str] = {}
    unknown = []
    for key, value in _flatten(table).items():
        if key not in KEYS:
            unknown.append(key)
            continue
        if key == "maskinporten.scopes" and isinstance(value, list):
            value = " ".join(str(v) for v in value)
        if not isinstance(value, str):
            raise ConfigFileError(f"the config file {path}: {key} must be a string")
        if key in _PATH_KEYS and not value.lstrip().startswith("-----BEGIN"):
            value = str((path.parent / Path(value).expanduser()).resolve())
        values[KEYS[key]] = value
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise ConfigFileError(f"the config file {path} has unknown keys {', '.join(sorted(unknown))} (known: {known})")
    return values


@dataclass
class Settings:
    """The merged settings, by environment variable name, and where each came from."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The value of setting ``name`` (an environment variable name), or None."""
        return self.values.get(name) or None

    def missing(self, names: tuple[str, ...] = REQUIRED) -> list[str]:
        """The settings of ``names`` that nothing set."""
        return [n for n in names if not self.values.get(n)]

    @staticmethod
    def how_to_set(name: str) -> str:
        """How a person sets ``name``: the variable, and its config-file key."""
        key = _KEY_OF.get(name)
        return f"{name} (environment, or {key!r} in the config file)" if key else name


def resolve(*, flags: Mapping[str, str | None], config_path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Flags (by variable name) over ``environ`` over the config file.

    ``config_path`` None means the default file, if it exists; a path given
    explicitly must exist.
    """
    settings = Settings()
    path = config_path if config_path is not None else default_config_path(environ)
    if config_path is not None or path.is_file():
        for name, value in load_config_file(path).items():
            settings.values[name] = value
            settings.sources[name] = f"config file {path}"
    for name in KEYS.values():
        if environ.get(name):
            settings.values[name] = environ[name]
            settings.sources[name] = "environment"
    for name, flag in flags.items():
        if flag:
            settings.values[name] = flag
            settings.sources[name] = "flag"
    return settings


def missing_error(missing: list[str]) -> ConfigurationError:
    """The error for settings nothing set, naming each and how to set it."""
    return ConfigurationError(
        f"missing setting{'s' * (len(missing) > 1)}: {', '.join(Settings.how_to_set(n) for n in missing)}",
        missing=missing,
    )
