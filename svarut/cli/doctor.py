"""``svarut doctor``: check the setup link by link (:mod:`svarut.doctor`)
and print one line per link, or with ``--json`` one JSON document.

Exit codes: 0 when every link holds (warnings allowed), 2 when the
configuration link is broken (settings missing, malformed, or a config file
that cannot be read), 1 when any later link is broken."""

from __future__ import annotations

import json
from uuid import UUID

import click

from svarut.cli import EXIT_API_ERROR, EXIT_OK, EXIT_USAGE
from svarut.cli.common import State, json_option, konto_option
from svarut.cli.config import ConfigFileError

_MARK = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skipped": "skip"}


@click.command()
@konto_option
@json_option
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds for each request."
)
@click.pass_context
def doctor(ctx: click.Context, konto: UUID | None, as_json: bool, timeout: float) -> None:
    """Check the setup, link by link, and say what to do about the first broken one.

    \b
    1 configuration  the settings, and where each came from (never a secret's value)
    2 keystore       it opens; the certificate's validity and organisation number
    3 maskinporten   a token (Maskinporten's error codes explained)
    4 clock          this machine's clock against the token endpoint's Date
    5 svarut         the integration's credentials and its access to the konto
    6 sertifikat     SvarUt's encryption certificate, as an encrypted send fetches it
    7 tls            for https: the certificate chain, with the trust in use

    Exits 0 when every link holds (warnings allowed), 2 when the configuration
    is broken, 1 when a later link is.
    """
    from svarut import doctor as checks

    state = ctx.find_object(State)
    assert state is not None  # the group always makes one
    try:
        settings = state.settings
    except ConfigFileError as exc:
        report = checks.configuration_broken(str(exc))
    else:
        report = checks.diagnose(settings.values, sources=settings.sources, konto_id=konto, timeout=timeout)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        width = max(len(link) for link in checks.LINKS)
        for number, result in enumerate(report.links, start=1):
            line = f"{_MARK[result.status]:<5} {number} {result.link:<{width}}  {result.summary}"
            if result.fix and result.status in ("warn", "fail"):
                line += f". Fix: {result.fix}"
            click.echo(line)
    broken = report.broken
    if broken is None:
        ctx.exit(EXIT_OK)
    ctx.exit(EXIT_USAGE if broken.link == "configuration" else EXIT_API_ERROR)
