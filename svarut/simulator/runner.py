"""The simulator in the foreground (``python -m svarut.simulator`` and
``svarut simulator``): start it, print the settings a client needs (``export``
lines or one JSON line on stdout, prose on stderr), and serve until Ctrl-C or
SIGTERM. Imports go one way: this module imports the facade.
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
from typing import Any, Literal

from svarut.simulator.facade import Simulator

__all__ = ["connection_info", "exports", "run_until_interrupted"]


def connection_info(sim: Simulator) -> str:
    """Where ``sim`` is, for a person to read (the exports are :func:`exports`)."""
    return "\n".join(
        [
            f"SvarUt simulator running at {sim.url}",
            f"  page:                {sim.page_url}",
            f"  SvarUt API:          {sim.base_url}",
            f"  Maskinporten issuer: {sim.maskinporten_issuer}",
            f"  token endpoint:      {sim.token_endpoint}",
            f"  SvarUt certificate:  {sim.sertifikat_url}",
            "",
            "The export lines on stdout point a client (or the svarut command) at it:",
            '  eval "$(python -m svarut.simulator &)"   # then: kill "$SVARUT_SIMULATOR_PID"',
        ]
    )


def exports(sim: Simulator) -> str:
    """What a client needs to reach ``sim``, as shell ``export`` lines, and
    ``SVARUT_SIMULATOR_PID`` to stop it."""
    settings = {**sim.environ(), "SVARUT_SIMULATOR_PID": str(os.getpid())}
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in settings.items())


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
    sim: Simulator, *, out: Any, ready: Literal["text", "json"] = "text", err: Any = None
) -> None:
    """Start ``sim``, print how to reach it to ``out`` (``export`` lines, or
    with ``ready="json"`` one JSON line) and nothing else, then close ``out``
    unless it is a terminal; the prose for a person goes to ``err`` (default
    stderr). Serve until Ctrl-C or SIGTERM, then stop."""
    err = sys.stderr if err is None else err
    if threading.current_thread() is threading.main_thread():
        # A service manager's SIGTERM stops it as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
    with sim:
        if ready == "json":
            print(json.dumps({"url": sim.url, **sim.environ()}), file=out, flush=True)
        else:
            print(exports(sim), file=out, flush=True)
            print(connection_info(sim) + "\n\nCtrl-C stops it.", file=err, flush=True)
        _detach(out)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
