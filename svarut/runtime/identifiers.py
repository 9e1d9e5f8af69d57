"""Norwegian identifiers, checked as the pre-send rules check them: the
fødselsnummer and d-nummer (:func:`fodselsnummer_problem`, by today's rule and
the one for numbers issued from 2032) and the organisasjonsnummer
(:func:`organisasjonsnummer_problem`). Messages never quote the number."""

from __future__ import annotations

import operator

__all__ = ["fodselsnummer_problem", "organisasjonsnummer_problem", "valid_fodselsnummer", "valid_organisasjonsnummer"]

_FNR_WEIGHTS = ((3, 7, 6, 1, 8, 9, 4, 5, 2, 1), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1))
# Remainders of the first weighted sum (9 digits and k1) accepted from 2032; today's numbers have 0.
_FNR_K1_REMAINDERS = frozenset({0, 1, 2, 3})
_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 control digit for ``digits``, or None where none exists."""
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return None if remainder == 1 else (11 - remainder) % 11


def _digits(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and value.isascii() and value.isdigit()


def _not_digits(value: object, length: int) -> str:
    """Why ``value`` is not ``length`` digits. Spaces get their own word: a
    number copied from a letter or a spreadsheet often has them (``218836
    49874``), and "must be 11 digits" alone does not say what to change."""
    if isinstance(value, str) and any(c.isspace() for c in value):
        return f"must be {length} digits without spaces: remove the spaces"
    return f"must be {length} digits"


def _weighted(digits: bytes, weights: tuple[int, ...]) -> int:
    """The weighted sum mod 11 of the first ``len(weights)`` of ``digits``: ASCII
    digits (checked by _digits), each byte its digit plus 48 ('0'). Summing the
    bytes and taking 48 times the weights off spares an int() per digit, which
    was most of a pre-send check of a fødselsnummer."""
    total: int = sum(map(operator.mul, digits, weights)) - 48 * sum(weights)
    return total % 11


def fodselsnummer_problem(value: object, *, synthetic: bool = False) -> str | None:
    """Why ``value`` is not a fødselsnummer or d-nummer, or None if it is one.

    ``synthetic`` also accepts Skatteetaten's synthetic test numbers (Tenor),
    whose month has 80 added.

    The control digits k1 and k2 (digits 10 and 11), with the weights
    ``w1 = 3 7 6 1 8 9 4 5 2`` and ``w2 = 5 4 3 2 7 6 5 4 3 2``:

    - k1: ``(Σ w1·d[1..9] + k1) mod 11`` is 0 for numbers issued until 2031,
      and may also be 1, 2 or 3 for numbers issued from 1 January 2032
      (Skatteetaten: Nytt fødselsnummer fra 2032). The new rule includes the
      old one, so a number passes if either holds.
    - k2: ``(Σ w2·d[1..10] + k2) mod 11`` is 0, as before.

    The date part (DDMM) is still checked; nothing else (such as gender or
    age) is read from the number.
    """
    if not _digits(value, 11):
        return _not_digits(value, 11)
    assert isinstance(value, str)
    digits = value.encode("ascii")  # ASCII digits (checked above): each byte is its digit + 48
    day, month = digits[0] * 10 + digits[1] - 528, digits[2] * 10 + digits[3] - 528  # 528 = 48 * 11
    if 41 <= day <= 71:
        day -= 40  # d-nummer
    if synthetic and 81 <= month <= 92:
        month -= 80
    if not (1 <= day <= 31 and 1 <= month <= 12):
        hint = "" if synthetic or not 81 <= month <= 92 else "; a synthetic test number is accepted only in test"
        return f"does not start with a valid date (DDMMYY; day +40 for a d-nummer){hint}"
    k1_ok = _weighted(digits, _FNR_WEIGHTS[0]) in _FNR_K1_REMAINDERS
    if not k1_ok or _weighted(digits, _FNR_WEIGHTS[1]) != 0:
        return "has wrong control digits (check for a typo)"
    return None


def organisasjonsnummer_problem(value: object) -> str | None:
    """Why ``value`` is not an organisasjonsnummer, or None if it is one."""
    if not _digits(value, 9):
        return _not_digits(value, 9)
    assert isinstance(value, str)
    if _mod11(value[:8], _ORGNR_WEIGHTS) != int(value[8]):
        return "has a wrong control digit (check for a typo)"
    return None


def valid_fodselsnummer(value: str, *, synthetic: bool = False) -> bool:
    """True if ``value`` is a well-formed fødselsnummer or d-nummer."""
    return fodselsnummer_problem(value, synthetic=synthetic) is None


def valid_organisasjonsnummer(value: str) -> bool:
    """True if ``value`` is a well-formed organisasjonsnummer."""
    return organisasjonsnummer_problem(value) is None
