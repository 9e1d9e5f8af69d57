"""Base classes of the generated models, and the checks the generated fields use.

Sent models reject unknown keyword arguments, so a typo fails at
construction instead of being silently dropped, and ``None`` means "leave the
field out" in JSON (``model_dump_json``, ``model_dump(mode="json")``): no field
in the specs is nullable, and SvarUt answers 400 to a ``null``. Received
models ignore fields the spec does not list yet, so a server that has moved
ahead of the spec does not break the client. Both are built by Python field
name (``digital_id``) and read and written by the spec's name (``digitalId``).
Validators are built on first use, not at import, so ``import svarut`` stays
quick.

The spec's ``pattern`` keywords are ECMA-262 regular expressions; the generator
(``generator/constraints.py``) rewrites them for the Rust ``regex`` engine that
pydantic-core runs (pinned below with ``regex_engine``), so ``\\d`` stays ASCII
and ``$`` matches only at the end. JSON Schema keywords pydantic has no
``Field`` argument for are the annotations at the end of this module, which the
generator appends to the fields that need them.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError, to_jsonable_python


class RequestModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        regex_engine="rust-regex",
        # Each class's validator is built when it is first used: a program that writes
        # one kind of letter builds those few models, not all of them (~8 ms of a cold start).
        defer_build=True,
    )

    # exclude_none at the top reaches every nested model in one pass of pydantic-core; a
    # wrap serializer on each model would cost a Python call per model (3x the dump time).
    def model_dump(self, *, mode: Literal["json", "python"] | str = "python", **kwargs: Any) -> dict[str, Any]:
        """As pydantic's, except that JSON mode leaves out fields that are None unless
        ``exclude_none=False`` is given (Python mode keeps them, as the attributes read)."""
        kwargs.setdefault("exclude_none", mode == "json")
        return super().model_dump(mode=mode, **kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        """As pydantic's, except that fields that are None are left out unless
        ``exclude_none=False`` is given."""
        kwargs.setdefault("exclude_none", True)
        return super().model_dump_json(**kwargs)


class ResponseModel(BaseModel):
    model_config = ConfigDict(
        extra="ignore", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True, defer_build=True
    )


# --- checks the generator attaches to fields ------------------------------------


def _json_key(item: Any) -> str:
    # JSON Schema compares items as JSON values: objects by their members, whatever their order.
    if isinstance(item, BaseModel):
        item = item.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json.dumps(to_jsonable_python(item), sort_keys=True, ensure_ascii=False)


def _unique_items(items: list[Any] | None) -> list[Any] | None:
    if items is None:
        return None
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first = seen.setdefault(_json_key(item), index)
        if first != index:
            raise PydanticCustomError(
                "unique_items",
                "items must be unique (uniqueItems): item {index} repeats item {first}",
                {"index": index, "first": first},
            )
    return items


#: ``uniqueItems: true``.
UniqueItems = AfterValidator(_unique_items)


def decimal_pattern(pattern: str) -> AfterValidator:
    """``pattern`` on an integer field: the spec means its decimal digits
    (``saksaar``: ``^[0-9]{4}$``). ``pattern`` is the generator's translation,
    which uses only syntax Python's ``re`` and Rust's ``regex`` read alike."""
    compiled = re.compile(pattern)

    def check(value: int | None) -> int | None:
        if value is not None and not compiled.search(str(value)):
            raise PydanticCustomError(
                "int_pattern_mismatch", "the number's digits must match pattern {pattern!r}", {"pattern": pattern}
            )
        return value

    return AfterValidator(check)


# RFC 3986 appendix A, as one expression; an IP literal's address is checked by ipaddress.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_URI_SYNTAX = rf"""
    (?P<scheme>[A-Za-z][A-Za-z0-9+\-.]*):
    (?:
        //(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?
        (?:\[(?P<literal>[^\[\]/?#@%]*)\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*)
        (?::[0-9]*)?
        (?:/{_PCHAR}*)*
      | /?(?:{_PCHAR}+(?:/{_PCHAR}*)*)?
    )
    (?:\?(?:{_PCHAR}|[/?])*)?
    (?:\#(?:{_PCHAR}|[/?])*)?
    """


# Compiled on first use, like ipaddress imported: ~2 ms of a cold start that few programs need.
@functools.cache
def _uri_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    uri = re.compile(_URI_SYNTAX, re.VERBOSE)
    ipv_future = re.compile(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")
    return uri, ipv_future


def _absolute_uri(value: str | None) -> str | None:
    if value is None:
        return None
    uri, ipv_future = _uri_patterns()
    match = uri.fullmatch(value)
    literal = match["literal"] if match else None
    if literal is not None and not ipv_future.fullmatch(literal):
        import ipaddress

        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            match = None
    if match is None:
        raise PydanticCustomError(
            "absolute_uri",
            "must be an absolute URI with a scheme (RFC 3986; RFC 2396 with RFC 2732's IPv6 literals), "
            "e.g. https://example.no/sak?id=1",
        )
    return value


#: A description that says "gyldig i henhold til RFC 2396 og RFC 2732" (bound in generator/constraints.py).
AbsoluteUri = AfterValidator(_absolute_uri)
