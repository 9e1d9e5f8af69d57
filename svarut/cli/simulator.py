"""What ``svarut simulator`` does once click has read its flags: start the
simulator, print its settings for the user's shell (or as JSON), and serve
until Ctrl-C. The shells and their quoting are :mod:`svarut.simulator.runner`'s,
shared with ``python -m svarut.simulator``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from svarut.cli.common import usage_error

__all__ = ["run_simulator"]


def run_simulator(
    *, port: int, step_seconds: float, not_digital: Sequence[str], shell: str | None, as_json: bool
) -> None:
    """Run the simulator in the foreground until Ctrl-C (or SIGTERM).

    Raises:
        CliError: ``--shell`` and ``--json`` together (usage), or a setting the shell cannot carry.
    """
    # Imported here: `svarut --help` and the other commands need no server.
    from svarut.simulator.runner import SHELLS, run_until_interrupted
    from svarut.simulator.server import Simulator

    if shell is not None and as_json:
        raise usage_error("give --shell or --json, not both")
    if shell is not None and shell not in SHELLS:
        raise usage_error(f"--shell must be one of {', '.join(SHELLS)}, got {shell!r}")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("svarut.simulator").setLevel(logging.INFO)
    simulator = Simulator(port=port, step_seconds=step_seconds, not_digital=not_digital)
    try:
        run_until_interrupted(
            simulator,
            out=sys.stdout,
            ready="json" if as_json else "text",
            shell=None if shell is None else next(s for s in SHELLS if s == shell),
        )
    except ValueError as exc:  # a setting the chosen shell cannot carry
        raise usage_error(str(exc)) from None
