"""``svarut avklar``: settle a send whose outcome was unknown by asking SvarUt
whether it has a forsendelse with that eksternReferanse
(``client.avklar_utfall``, :mod:`svarut.utfall`).

The answer is the exit code: 0 received (the id is printed), 8 not received
(sending again is safe), 4 still unknown. ``svarut send`` prints the exact
command when its outcome is unknown.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from svarut.cli.common import (
    NotReceived,
    OutcomeUnknown,
    State,
    duration,
    format_time,
    json_option,
    konto_option,
    timestamp,
    usage_error,
)

if TYPE_CHECKING:
    from svarut.utfall import Utfall

__all__ = ["avklar", "utfall_json"]

# A --sendt this far ahead of this machine's clock is a mistake, not clock skew.
_FUTURE_SLACK = timedelta(minutes=5)


def utfall_json(utfall: Utfall, *, konto_id: UUID) -> dict[str, Any]:
    """An :class:`~svarut.utfall.Utfall` as JSON: ids as strings, times ISO 8601 in UTC."""
    return {
        "tilstand": utfall.tilstand,
        "konto_id": str(konto_id),
        "ekstern_referanse": utfall.ekstern_referanse,
        "forsendelse_id": None if utfall.forsendelse_id is None else str(utfall.forsendelse_id),
        "funnet": [str(i) for i in utfall.funnet],
        "grunn": utfall.grunn,
        "sendt": None if utfall.sendt is None else format_time(utfall.sendt),
        "sjekket": format_time(utfall.sjekket),
        "trygt_a_sende_pa_nytt": utfall.trygt_a_sende_pa_nytt,
    }


@click.command(
    epilog="""\b
Exit codes:
  0  received (mottatt): SvarUt has exactly one forsendelse with the reference; its id is printed
  8  not received (ikke_mottatt): none, and the attempt began longer ago than --vindu: safe to send again
  4  still unknown (uavklart): several forsendelser have the reference, or none yet while the
     attempt is recent, or none and --sendt was not given
  1  the lookup failed (SvarUt or the network): nothing is settled
"""
)
@konto_option
@click.option(
    "--ekstern-referanse",
    required=True,
    help="The eksternReferanse the forsendelse was sent with, exactly (svarut send prints it).",
)
@click.option(
    "--sendt",
    callback=timestamp,
    metavar="TIME",
    help="When the attempt began: ISO 8601 with a UTC offset (2026-05-04T10:15:00+02:00, or Z for UTC); a "
    "time without one is refused. Without --sendt, SvarUt having none settles nothing (exit 4).",
)
@click.option(
    "--vindu",
    callback=duration,
    metavar="DURATION",
    help="How long after the attempt began SvarUt having none proves it did not take the letter "
    "(20m, 90s, 1h30m; a bare number is seconds) [default: 20m: SvarUt may take 15 minutes to answer a send].",
)
@json_option
@click.pass_obj
def avklar(
    state: State,
    konto: UUID | None,
    ekstern_referanse: str,
    sendt: datetime | None,
    vindu: timedelta | None,
    as_json: bool,
) -> None:
    """Settle a send whose outcome is unknown: does SvarUt have the forsendelse?

    Looks up the konto's forsendelser with the eksternReferanse. Exactly one:
    received (prints its id). None, and the attempt began longer ago than
    --vindu: not received, so sending it again cannot make a second copy.
    Anything else stays unknown: ask again later, or look in SvarUt.
    """
    from svarut import errors, utfall

    if sendt is not None and sendt > datetime.now(UTC) + _FUTURE_SLACK:
        raise usage_error(f"--sendt {format_time(sendt)} is in the future")
    konto_id = state.konto_id(konto)
    window = utfall.AVKLARING_VINDU if vindu is None else vindu
    with state.client() as client:
        try:
            answer = client.avklar_utfall(
                konto_id=konto_id, ekstern_referanse=ekstern_referanse, sendt=sendt, vindu=window
            )
        except errors.ForsendelseValidationError as exc:
            raise usage_error(
                "--ekstern-referanse: " + "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
            ) from None
    if as_json:
        click.echo(json.dumps(utfall_json(answer, konto_id=konto_id), ensure_ascii=False))
    if answer.tilstand == "mottatt":
        if not as_json:
            click.echo(str(answer.forsendelse_id))
        return
    if answer.tilstand == "ikke_mottatt":
        raise NotReceived(f"not received: {answer.grunn}; sending it again cannot make a second copy")
    found = f" (found: {', '.join(str(i) for i in answer.funnet)})" if answer.funnet else ""
    raise OutcomeUnknown(f"still unknown: {answer.grunn}{found}")
