"""``svarut``: the SvarUt client on the command line (the ``cli`` extra: ``pip install '.[cli]'``).

Commands::

    svarut send KIND [flags] DOKUMENT...                             KIND: each send operation in the specs
    svarut status ID...                                              one line per id: id, status, time (UTC)
    svarut wait ID... [--until LEST] [--timeout 600]                 poll until a terminal (or wanted) status
    svarut avklar --ekstern-referanse R [--sendt TIME]               settle an unknown outcome: does SvarUt have it?
    svarut encrypt --sertifikat cert.pem|--environment test INPUT OUTPUT
    svarut simulator [--port N] [--shell posix|powershell|cmd|--json] a local SvarUt, until Ctrl-C
    svarut doctor [--konto ID] [--json]                              check the setup link by link

``svarut send person --konto ID --tittel T --mottaker-navn N --fodselsnummer F
vedtak.pdf`` builds the forsendelse from flags (filnavn from each file's name,
mimeType guessed from it, ``--mime-type kart.png=image/png`` to override);
``--metadata forsendelse.json`` starts from a JSON forsendelse instead (the
spec's camelCase names), ``--felt PATH=JSON`` sets any field, and flags
override both. The subcommands and their flags follow the specs
(:mod:`svarut.cli.send`, :mod:`svarut.cli.flags`). ``--kryptert`` encrypts
the documents for SvarUt's certificate. On a terminal, uploads over a few MB
show their progress on stderr, then the wait for SvarUt's answer.

Settings come from flags, then environment variables (the names
``SvarUtClient.from_env`` reads: ``SVARUT_ENVIRONMENT``, ``SVARUT_BASE_URL``,
``SVARUT_INTEGRASJON_ID``, ``SVARUT_INTEGRASJON_PASSORD``,
``MASKINPORTEN_CLIENT_ID``, ``MASKINPORTEN_KEYSTORE``, ... plus
``SVARUT_KONTO_ID``), then a TOML file (``--config PATH``, default
``svarut/config.toml`` in the platform's config directory, ``~/.config`` on
Linux; see :mod:`svarut.cli.config`). Passwords are
read from the environment or the file only, and never printed.

An error prints one line on stderr (``-v`` adds the details and the
traceback), and the exit code says what kind it was:

====  ==========================================================================
0     success
1     SvarUt, Maskinporten or the network failed (the message says which)
2     usage or configuration error
3     validation error: the forsendelse breaks a rule; nothing was sent
4     outcome unknown: SvarUt may have accepted the forsendelse; settle it
      (``send`` prints the ``svarut avklar`` command) before sending it again.
      ``avklar``: still unknown (uavklart: SvarUt has several with the
      reference, or none yet while the attempt is recent)
5     ``wait`` timed out before every forsendelse reached the status
6     ``wait``: a forsendelse ended in a failure status (AVVIST, IKKE_LEVERT,
      FEILET_UNDER_MOTTAK; see :mod:`svarut.statuses`); every status is printed
7     duplicate: SvarUt already has an identical forsendelse
      (GJENTAGENDE_FORSENDELSE), so an earlier attempt arrived
8     ``avklar``: not received (ikke_mottatt): SvarUt has no forsendelse with
      the reference, and the attempt began longer ago than the window; sending
      it again cannot make a second copy
9     not found: ``status``: SvarUt has no forsendelse with that id on the
      konto (the statuses it has are printed all the same)
130   interrupted (Ctrl-C). ``send`` exits 130 only when nothing of the
      forsendelse had gone out; interrupted after its first byte, it exits 4
      and prints the ``svarut avklar`` command
====  ==========================================================================

``svarut avklar`` exits 0 when SvarUt has exactly one forsendelse with the
reference (it prints its id), 8 or 4 as above, and 1 when the lookup itself
failed (nothing is settled then).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_DUPLICATE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_NOT_RECEIVED",
    "EXIT_OK",
    "EXIT_OUTCOME_UNKNOWN",
    "EXIT_USAGE",
    "EXIT_VALIDATION",
    "EXIT_WAIT_TIMEOUT",
    "main",
]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_VALIDATION = 3
EXIT_OUTCOME_UNKNOWN = 4
EXIT_WAIT_TIMEOUT = 5
EXIT_FAILED = 6
EXIT_DUPLICATE = 7
EXIT_NOT_RECEIVED = 8
EXIT_NOT_FOUND = 9
# The shell's code for a process ended by SIGINT (128 + 2), which a script already reads as "interrupted".
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> None:
    """The ``svarut`` console script."""
    try:
        from svarut.cli.app import cli
    except ModuleNotFoundError as exc:
        if exc.name != "click":
            raise
        print("svarut: the command line needs click: pip install 'fiks-svarut[cli]'", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    cli.main(args=list(argv) if argv is not None else None, prog_name="svarut")
