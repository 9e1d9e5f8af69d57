"""The simulator in the foreground (``python -m svarut.simulator`` and
``svarut simulator``): start it, print the settings a client needs (lines for
the user's shell, or one JSON line, on stdout; prose on stderr), and serve
until Ctrl-C or SIGTERM. Imports go one way: the caller makes the
:class:`~svarut.simulator.facade.Simulator`; this module names it only in
annotations, so reading :data:`SHELLS` loads no server.

The lines for each shell (``--shell``; the default is the platform's,
:func:`default_shell`) set one variable each, quoted so that the shell reads
back exactly the value, whatever it holds:

``posix``
    ``export NAME='value'`` (:func:`shlex.quote`), for ``eval "$(...)"``.
``powershell``
    ``$env:NAME = 'value'``: a single-quoted string, in which PowerShell
    expands nothing; a quote inside is doubled. PowerShell takes the
    typographic single quotes (U+2018 to U+201B) as quotes too, so they are
    doubled as well.
``cmd``
    ``set "NAME=value"``, for a batch file (``call simulator.cmd``): inside
    the quotes ``&``, ``|``, ``<``, ``>``, ``^`` and parentheses are plain
    characters, and ``%`` is doubled, as a batch file needs. A ``"`` or a line
    break cannot be written safely there (neither can be in a Windows path);
    such a value is refused, naming the variable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from svarut.simulator.facade import Simulator

__all__ = [
    "SHELLS",
    "Shell",
    "connection_info",
    "default_shell",
    "export_line",
    "exports",
    "run_until_interrupted",
    "settings",
]

Shell = Literal["posix", "powershell", "cmd"]
SHELLS: tuple[Shell, ...] = get_args(Shell)
# Characters PowerShell ends a single-quoted string at: the ASCII quote and the typographic ones.
_POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"

# How to take the lines into the shell that runs the client, and how to stop the simulator.
_USAGE: dict[Shell, str] = {
    "posix": '  eval "$(python -m svarut.simulator &)"   # then: kill "$SVARUT_SIMULATOR_PID"',
    "powershell": (
        "  paste them into the PowerShell that runs the client, or keep them in a file:\n"
        "  python -m svarut.simulator --shell powershell > simulator.ps1   # in one window\n"
        "  . .\\simulator.ps1                                               # in the other"
    ),
    "cmd": (
        "  keep them in a batch file and call it:\n"
        "  python -m svarut.simulator --shell cmd > simulator.cmd   (in one window)\n"
        "  call simulator.cmd                                      (in the other)"
    ),
}


def default_shell() -> Shell:
    """The shell whose lines are printed when none is asked for: PowerShell on
    Windows (the shell it opens by default), a POSIX shell elsewhere."""
    return "powershell" if os.name == "nt" else "posix"


def connection_info(sim: Simulator, shell: Shell = "posix") -> str:
    """Where ``sim`` is, for a person to read (the lines to set are :func:`exports`)."""
    return "\n".join(
        [
            f"SvarUt simulator running at {sim.url}",
            f"  page:                {sim.page_url}",
            f"  SvarUt API:          {sim.base_url}",
            f"  Maskinporten issuer: {sim.maskinporten_issuer}",
            f"  token endpoint:      {sim.token_endpoint}",
            f"  SvarUt certificate:  {sim.sertifikat_url}",
            "",
            f"The lines on stdout ({shell}) point a client (or the svarut command) at it:",
            _USAGE[shell],
        ]
    )


def export_line(name: str, value: str, shell: Shell = "posix") -> str:
    """One line that sets the environment variable ``name`` to ``value`` in
    ``shell``, quoted so the shell reads back exactly ``value``.

    Raises:
        ValueError: ``value`` cannot be written for cmd (a ``"`` or a line break),
            or ``shell`` is not one of :data:`SHELLS`.
    """
    if shell == "posix":
        return f"export {name}={shlex.quote(value)}"
    if shell == "powershell":
        quoted = "".join(c * 2 if c in _POWERSHELL_QUOTES else c for c in value)
        return f"$env:{name} = '{quoted}'"
    if shell == "cmd":
        if any(c in value for c in '"\r\n'):
            what = "a double quote" if '"' in value else "a line break"
            raise ValueError(
                f"{name} holds {what}, which a cmd set line cannot carry safely; use --shell powershell or --json"
            )
        return f'set "{name}={value.replace("%", "%%")}"'
    raise ValueError(f"shell must be one of {', '.join(SHELLS)}, got {shell!r}")


def settings(sim: Simulator) -> dict[str, str]:
    """What a client needs to reach ``sim`` (:meth:`Simulator.environ`), and
    ``SVARUT_SIMULATOR_PID`` to stop it."""
    return {**sim.environ(), "SVARUT_SIMULATOR_PID": str(os.getpid())}


def exports(sim: Simulator, shell: Shell = "posix") -> str:
    """:func:`settings` as lines that set environment variables in ``shell``."""
    return "\n".join(export_line(name, value, shell) for name, value in settings(sim).items())


def _detach(out: Any) -> None:
    """Close ``out`` (after the connection details) unless it is a terminal, so a
    reader of the pipe, such as the shell's ``$(...)``, sees its end while the simulator runs on."""
    out.flush()
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        return
    if os.isatty(fd):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_until_interrupted(
    sim: Simulator,
    *,
    out: Any,
    ready: Literal["text", "json"] = "text",
    err: Any = None,
    shell: Shell | None = None,
) -> None:
    """Start ``sim``, print how to reach it to ``out`` (lines for ``shell``,
    default :func:`default_shell`, or with ``ready="json"`` one JSON line) and
    nothing else, then close ``out`` unless it is a terminal; the prose for a
    person goes to ``err`` (default stderr). Serve until Ctrl-C or SIGTERM, then stop."""
    err = sys.stderr if err is None else err
    shell = default_shell() if shell is None else shell
    if shell not in SHELLS:
        raise ValueError(f"shell must be one of {', '.join(SHELLS)}, got {shell!r}")
    if threading.current_thread() is threading.main_thread():
        # A service manager's SIGTERM stops it as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
    with sim:
        if ready == "json":
            print(json.dumps({"url": sim.url, **settings(sim)}), file=out, flush=True)
        else:
            print(exports(sim, shell), file=out, flush=True)
            print(connection_info(sim, shell) + "\n\nCtrl-C stops it.", file=err, flush=True)
        _detach(out)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
