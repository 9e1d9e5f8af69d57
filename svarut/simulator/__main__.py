"""``python -m svarut.simulator``: run the simulator until Ctrl-C (or SIGTERM).

Prints the environment variables a client needs on stdout, as lines for the
shell (``--shell posix|powershell|cmd``; default PowerShell on Windows, a POSIX
shell elsewhere), and nothing else there, then closes stdout (unless it is a
terminal), so a shell can take them while the simulator runs on::

    eval "$(python -m svarut.simulator --step-seconds 0.5 &)"
    python my_app.py                    # SvarUtClient.from_env() finds the simulator
    kill "$SVARUT_SIMULATOR_PID"

In PowerShell the lines are ``$env:NAME = 'value'``; for cmd, ``set
"NAME=value"`` (for a batch file: ``> simulator.cmd``, then ``call
simulator.cmd``). The URLs and other prose go to stderr. ``--json`` prints the
settings as one JSON line instead (for scripts and tests). The ``svarut
simulator`` command does the same with click; this entry point needs only the
standard library.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from svarut.simulator.runner import SHELLS, default_shell, run_until_interrupted


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m svarut.simulator",
        description="Run the SvarUt simulator (and its Maskinporten) on 127.0.0.1 until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--step-seconds", type=float, default=2.0, help="seconds per status step (default 2)")
    parser.add_argument(
        "--not-digital", action="append", default=[], metavar="FODSELSNUMMER", help="a person without a digital mailbox"
    )
    printed = parser.add_mutually_exclusive_group()
    printed.add_argument(
        "--shell",
        choices=SHELLS,
        default=None,
        help=f"print the settings as lines for this shell (default here: {default_shell()})",
    )
    printed.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    # Imported here: --help and a usage error need no server.
    from svarut.simulator.facade import Simulator

    simulator = Simulator(port=args.port, step_seconds=args.step_seconds, not_digital=args.not_digital)
    try:
        run_until_interrupted(simulator, out=sys.stdout, ready="json" if args.json else "text", shell=args.shell)
    except ValueError as exc:  # a setting the chosen shell cannot carry
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
