"""Where the ``svarut`` command finds its settings: flags, then environment
variables, then a TOML config file. The file and the merging are the
library's (:mod:`svarut._config`), so an application using
:meth:`SvarUtClient.from_config <svarut.SvarUtClient.from_config>` reads the
same file the command does; this module names them for the command.

The file is read only by commands that talk to SvarUt, so a broken file does
not stop ``svarut simulator`` or ``svarut encrypt --sertifikat``.
"""

from __future__ import annotations

from svarut._config import (
    KEYS,
    REQUIRED,
    ConfigFileError,
    Settings,
    config_paths,
    default_config_path,
    load_config_file,
    resolve,
)

__all__ = [
    "KEYS",
    "REQUIRED",
    "ConfigFileError",
    "Settings",
    "config_paths",
    "default_config_path",
    "load_config_file",
    "resolve",
]
