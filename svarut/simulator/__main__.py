"""``python -m svarut.simulator``: run the simulator until Ctrl-C (or SIGTERM).

Prints the environment variables a client needs as ``export`` lines on
stdout, and nothing else there, then closes stdout (unless it is a terminal),
so a shell can take them while the simulator runs on::

    eval "$(python -m svarut.simulator --step-seconds 0.5 &)"
    python my_app.py                    # SvarUtClient.from_env() finds the simulator
    kill "$SVARUT_SIMULATOR_PID"

The URLs and other prose go to stderr. ``--json`` prints the settings as one
JSON line instead (for scripts and tests). The ``svarut simulator`` command
does the same with click; this entry point needs only the standard library.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from svarut.simulator.facade import Simulator
from svarut.simulator.runner import run_until_interrupted


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
    parser.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    simulator = Simulator(port=args.port, step_seconds=args.step_seconds, not_digital=args.not_digital)
    run_until_interrupted(simulator, out=sys.stdout, ready="json" if args.json else "text")


if __name__ == "__main__":
    main()
