"""Everything the locked specs' schemas state about a sent model is enforced
when the model is built, before anything is sent: every JSON Schema keyword
the specs use is either enforced or listed as documentation, patterns have
ECMA-262 meaning, and ``None`` is never sent as ``null``."""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests_toolbelt.multipart.decoder import MultipartDecoder

from generator import constraints
from generator.constraints import DESCRIBED_RULES, HANDLED, IGNORED, KEYWORDS, ConstraintError, ecma_to_rust
from generator.normalize import build_api
from generator.refs import load_bundled
from svarut import models
from svarut.runtime.models import RequestModel, decimal_pattern

SPECS = load_bundled()
API = build_api(SPECS)
SCHEMAS = API.schemas
REQUEST_MODELS = [n for n in API.request_models if "properties" in SCHEMAS[n]]
SETTINGS = settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


# --- None is never null ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_none_means_omitted_on_the_wire(api, server):
    forsendelse = models.PersonForsendelse(
        tittel="Vedtak",
        mottaker=models.Mottaker(navn="Kari Nordmann", digital_id="21883649874", adresse=None),
        dokumenter=[models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf", giroark_side=None)],
        konteringskode=None,
        ekstern_referanse=None,
        lenker=None,
    )

    await api(
        "send_til_person",
        konto_id=uuid.uuid4(),
        forsendelse=forsendelse,
        dokumenter={"a.pdf": b"%PDF-1.7"},
        client_options={"generate_ekstern_referanse": False},  # the bytes below are all the caller's
    )

    request = server.requests[0]
    first = MultipartDecoder(request.body, request.headers["Content-Type"]).parts[0]
    assert first.headers[b"Content-Disposition"] == b'form-data; name="forsendelse"'
    assert first.content == (
        b'{"tittel":"Vedtak","mottaker":{"navn":"Kari Nordmann","digitalId":"21883649874"},'
        b'"dokumenter":[{"filnavn":"a.pdf","mimeType":"application/pdf"}]}'
    )


def test_none_is_kept_in_python_dumps_and_dropped_in_json():
    mottaker = models.Mottaker(navn="Kari", digital_id="21883649874", adresse=None)
    assert mottaker.model_dump()["adresse"] is None
    assert "adresse" not in mottaker.model_dump(mode="json")
    assert mottaker.model_dump_json() == '{"navn":"Kari","digitalId":"21883649874"}'


# --- every keyword is known -----------------------------------------------------------------------


def _schemas_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object in a spec: components, and the ``schema`` of parameters, bodies and responses."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" or (key == "schemas" and isinstance(value, dict)):
                yield from _subschemas(value if key == "schema" else None, value if key == "schemas" else None)
            else:
                yield from _schemas_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas_in(value)


def _subschemas(schema: Any, named: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    for one in [schema] if named is None else list(named.values()):
        if not isinstance(one, dict):
            continue
        yield one
        for prop in one.get("properties", {}).values():
            yield from _subschemas(prop, None)
        for key in ("items", "additionalProperties", "not"):
            if isinstance(one.get(key), dict):
                yield from _subschemas(one[key], None)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in one.get(key, []):
                yield from _subschemas(sub, None)


def test_every_keyword_in_the_locked_specs_is_handled_or_ignored_on_purpose():
    used = {keyword for spec in SPECS.values() for schema in _schemas_in(spec) for keyword in schema}
    assert used, "found no schemas: the walk is broken"
    assert {"pattern", "uniqueItems", "format", "minLength"} <= used
    unknown = sorted(used - KEYWORDS.keys())
    assert unknown == [], f"keywords the generator does not handle: {unknown}; handle them in generator/constraints.py"


def test_only_documentation_keywords_are_ignored():
    assert not HANDLED.keys() & IGNORED.keys()
    assert set(IGNORED) == {"description", "example", "title", "externalDocs"}
    assert all(reason for reason in IGNORED.values())


def test_formats_in_the_specs_are_the_ones_the_generator_maps():
    formats = {s["format"] for spec in SPECS.values() for s in _schemas_in(spec) if "format" in s}
    assert formats <= {"uuid", "date-time", "int32", "int64", "binary"}, formats


# --- ECMA-262 patterns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digital_id",
    ["١٢٣٤٥٦٧٨٩", "۱۲۳۴۵۶۷۸۹", "１２３４５６７８９", "123456789\n", "\n123456789", "12345678९"],
    ids=["arabic-indic", "extended-arabic-indic", "fullwidth", "trailing-newline", "leading-newline", "devanagari"],
)
def test_pattern_d_means_ascii_digits_and_dollar_means_the_end(digital_id):
    with pytest.raises(pydantic.ValidationError) as caught:
        models.SvarSendesTil(
            navn="Kari",
            type="ORGANISASJON",
            digital_id=digital_id,
            adresse=models.Adresse(adresselinje1="Gate 1", poststed="Oslo"),
        )
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("digital_id",), "string_pattern_mismatch")]
    assert models.SvarSendesTil(
        navn="Kari",
        type="ORGANISASJON",
        digital_id="123456789",
        adresse=models.Adresse(adresselinje1="Gate 1", poststed="Oslo"),
    ).digital_id == ("123456789")


def test_every_generated_pattern_is_the_translation_of_the_spec_pattern():
    checked = 0
    for name in REQUEST_MODELS:
        fields = {f.serialization_alias or n: f for n, f in _model(name).model_fields.items()}
        for prop, schema in SCHEMAS[name]["properties"].items():
            if "pattern" in schema and schema.get("type") == "string":
                patterns = [m.pattern for m in fields[prop].metadata if getattr(m, "pattern", None)]
                assert patterns == [ecma_to_rust(schema["pattern"])], f"{name}.{prop}"
                checked += 1
    assert checked >= 6


@pytest.mark.parametrize(
    ("ecma", "matches", "refuses"),
    [
        (r"^\d+$", ["0123456789"], ["١", "１", "1\n", "1\r"]),
        (r"^\w+$", ["aZ_9"], ["æ", "é", "a\n"]),
        (r"^\s$", [" ", "\t", "\u00a0", "\u2028", "\ufeff", "\u3000", "\v"], ["\u0085", "\u180e", "a"]),
        (r"^\S\D\W$", ["aa-"], [" a-", "a1-", "aa_"]),
        (r"^.$", ["a", "æ", "\u0085"], ["\n", "\r", "\u2028", "\u2029"]),
        (r"^[\d&~[]$", ["5", "&", "~", "["], ["a", "]"]),
        (r"^\x41\u00e6$", ["Aæ"], ["A"]),
        (r"^(?:ab)+$", ["abab"], ["aba"]),
        (r"^[a-zA-Z0-9_\-.øæåØÆÅ]{0,20}$", ["Kode-1.æ", ""], ["a b", "a\n", "ü"]),
    ],
)
def test_translated_patterns_behave_as_ecma_262_in_rust_and_in_python_re(ecma, matches, refuses):
    translated = ecma_to_rust(ecma)

    class Probe(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(regex_engine="rust-regex")
        value: str = pydantic.Field(pattern=translated)

    for text in matches:
        assert Probe(value=text).value == text
        assert re.search(translated, text), text
    for text in refuses:
        with pytest.raises(pydantic.ValidationError):
            Probe(value=text)
        # Python's re is not the engine, but reads the translation alike except for "$".
        if not text.endswith("\n"):
            assert not re.search(translated, text), text


@pytest.mark.parametrize(
    "ecma", [r"\bword", r"(a)\1", r"(?=a)a", r"(?<name>a)", r"\p{L}", r"[]", r"[^]", r"\cA", r"[\D]", "a\\", "[a"]
)
def test_pattern_features_that_would_change_meaning_fail_generation(ecma):
    with pytest.raises(ConstraintError, match=re.escape("X.y: pattern")):
        ecma_to_rust(ecma, where="X.y")


# --- integers, uniqueness, described rules -----------------------------------------------------------


def dokument(**fields: Any) -> models.PersonDokument:
    return models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf", **fields)


def test_int32_and_int64_formats_are_bounds():
    assert dokument(giroark_side=2**31 - 1).giroark_side == 2**31 - 1
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 2147483647"):
        dokument(giroark_side=2**31)
    noark = models.NoarkMetadataFraAvleverendeSakssystem
    assert noark(journalpostnummer=2**63 - 1).journalpostnummer == 2**63 - 1
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 9223372036854775807"):
        noark(journalpostnummer=2**63)


def test_pattern_on_an_integer_applies_to_its_digits():
    # Specs up to c75eba9 gave the year fields a pattern (^[0-9]{4}$); the locked ones bound them by maximum.
    class Noark(RequestModel):
        saksaar: Annotated[int | None, pydantic.Field(ge=1000), decimal_pattern("^[0-9]{4}$")] = None

    assert Noark(saksaar=2024).saksaar == 2024
    with pytest.raises(pydantic.ValidationError) as caught:
        Noark(saksaar=20245)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("saksaar",), "int_pattern_mismatch")]


def test_the_year_fields_are_bounded_as_the_locked_spec_says():
    noark = models.NoarkMetadataForImport
    assert noark(saksaar=3000).saksaar == 3000
    with pytest.raises(pydantic.ValidationError) as caught:
        noark(saksaar=3001)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("saksaar",), "less_than_equal")]


def test_repeated_items_are_refused_where_the_spec_says_unique_items():
    mottaker = models.Mottaker(navn="Kari", digital_id="21883649874")
    doc = [dokument()]
    with pytest.raises(pydantic.ValidationError) as caught:
        models.PersonForsendelse(
            tittel="T", mottaker=mottaker, dokumenter=doc, eksponert_for=["21883649874", "974760673", "21883649874"]
        )
    (error,) = caught.value.errors()
    assert (error["loc"], error["type"]) == (("eksponert_for",), "unique_items")
    assert "item 2 repeats item 0" in error["msg"]
    ok = models.PersonForsendelse(tittel="T", mottaker=mottaker, dokumenter=doc, eksponert_for=["1", "2"])
    assert ok.eksponert_for == ["1", "2"]

    same = [models.Metadata(key="k", value="v"), models.Metadata.model_validate({"value": "v", "key": "k"})]
    with pytest.raises(pydantic.ValidationError, match="unique_items"):
        models.OrganisasjonDokument(filnavn="a.pdf", mime_type="application/pdf", ekstra_metadata=same)
    with pytest.raises(pydantic.ValidationError, match="unique_items"):
        models.NoarkMetadataFraAvleverendeSakssystem(ekstra_metadata=same)
    different = [models.Metadata(key="k", value="v"), models.Metadata(key="k", value="w")]
    assert len(models.NoarkMetadataFraAvleverendeSakssystem(ekstra_metadata=different).ekstra_metadata or []) == 2


@pytest.mark.parametrize(
    "url",
    [
        "https://example.no/sak?id=1&x=%C3%A6#del",
        "http://[2001:db8::1]:8080/x",
        "http://[::ffff:192.0.2.1]/",
        "http://[v1.fe]/",
        "mailto:post@example.no",
        "urn:isbn:978-82-00",
        "https://user:pw@example.no:443/",
    ],
)
def test_lenke_url_takes_absolute_uris_as_a_plain_str(url):
    lenke = models.Lenke(url=url, tekst="Les mer")
    assert lenke.url == url and type(lenke.url) is str


@pytest.mark.parametrize(
    "url",
    [
        "www.example.no",
        "/sak/1",
        "https://exa mple.no",
        "https://example.no/æ",
        "http://[::zz]/",
        "http://[fe80::1%25eth0]/",
        "http://[2001:db8::1/",
        "https://example.no/#a#b",
        "https://example.no/%zz",
        "1http://example.no",
        "https://example.no\n",
    ],
)
def test_lenke_url_refuses_what_is_not_an_absolute_uri(url):
    with pytest.raises(pydantic.ValidationError) as caught:
        models.Lenke(url=url, tekst="Les mer")
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("url",), "absolute_uri")]


def test_a_described_rule_fails_generation_when_the_description_no_longer_says_it():
    schemas = copy.deepcopy(SCHEMAS)
    schemas["Lenke"]["properties"]["url"]["description"] = "Lenke til ressurs."
    with pytest.raises(ConstraintError, match=r"Lenke\.url: bound to AbsoluteUri"):
        constraints.apply(schemas, API.request_models)
    del schemas["Lenke"]["properties"]["url"]
    with pytest.raises(ConstraintError, match=r"Lenke\.url"):
        constraints.apply(schemas, API.request_models)


def test_a_field_whose_description_states_a_known_rule_must_be_bound():
    schemas = copy.deepcopy(SCHEMAS)
    schemas["Metadata"]["properties"]["value"]["description"] = "En URL, gyldig i henhold til RFC 2396."
    with pytest.raises(ConstraintError, match=r"Metadata\.value: the description mentions 'RFC 2396'"):
        constraints.apply(schemas, API.request_models)


def test_the_rule_is_applied_only_where_bound():
    _, extras = constraints.apply(SCHEMAS, API.request_models)
    described = {(r.schema, r.field) for r in DESCRIBED_RULES}
    assert {k for k, v in extras.items() if "AbsoluteUri" in v} == described


def test_annotate_fails_when_a_field_is_missing_from_the_generated_code():
    with pytest.raises(ConstraintError, match="Lenke"):
        constraints.annotate("from svarut.runtime.models import RequestModel\n", {("Lenke", "url"): ["AbsoluteUri"]})


def test_response_models_stay_lenient():
    error = models.ErrorMessage.model_validate({"status": 2**40, "timestamp": 2**70})
    assert error.status == 2**40


# --- what pydantic coerces (the README states it) ---------------------------------------------------


def test_what_is_coerced_and_what_is_not():
    doc = models.PersonDokument.model_validate(
        {"filnavn": "a.pdf", "mimeType": "application/pdf", "skalSigneres": "true", "giroarkSide": "2"}
    )
    assert doc.skal_signeres is True and doc.giroark_side == 2
    for yes, no in (("yes", "no"), (1, 0)):
        pair = models.PersonDokument.model_validate(
            {"filnavn": "a.pdf", "mimeType": "application/pdf", "skalSigneres": yes, "skalEkskluderesFraUtskrift": no}
        )
        assert (pair.skal_signeres, pair.skal_ekskluderes_fra_utskrift) == (True, False)
    assert models.PersonDokument(filnavn="a.pdf", mime_type="application/pdf", giroark_side=2.0).giroark_side == 2
    hexed = "0a1b2c3d00004000800000000000001a"
    assert models.Forsendelser(id=[hexed]).model_dump(mode="json") == {"id": [str(uuid.UUID(hexed))]}
    for field, value in (("giroarkSide", "2.5"), ("giroarkSide", "to"), ("skalSigneres", "kanskje")):
        with pytest.raises(pydantic.ValidationError):
            models.PersonDokument.model_validate({"filnavn": "a.pdf", "mimeType": "application/pdf", field: value})
    with pytest.raises(pydantic.ValidationError, match="valid string"):
        models.Mottaker.model_validate({"navn": "Kari", "digitalId": 21883649874})
    with pytest.raises(pydantic.ValidationError, match="timezone"):
        models.PersonSignering.model_validate(
            {"signeringUtloper": "2030-01-01T12:00:00", "signaturType": models.PersonSignaturType.AUTENTISERT_SIGNATUR}
        )
    assert models.Mottaker(navn=" Kari ", digital_id="21883649874").navn == " Kari "  # not stripped


# --- the property test: every constraint of every sent model -----------------------------------------

INT_BOUNDS = constraints.INT_BOUNDS
BOUND_BY_DESCRIPTION = {(r.schema, r.field): r.annotation for r in DESCRIBED_RULES}


def _target(schema: dict[str, Any]) -> dict[str, Any]:
    return SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema


def _int_range(schema: dict[str, Any]) -> tuple[int, int]:
    low, high = INT_BOUNDS.get(schema.get("format", ""), (-(2**63), 2**63 - 1))
    return max(schema.get("minimum", low), low), min(schema.get("maximum", high), high)


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _valid_url() -> st.SearchStrategy[str]:
    # A generated text is rarely an absolute URI: the fields bound to that rule draw from ones that are.
    return st.sampled_from(["https://example.no/sak?id=1", "http://[2001:db8::1]/x", "urn:isbn:978-82-00"])


@functools.cache
def _object(name: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = SCHEMAS[name]
    required = set(schema.get("required", []))
    props = {
        p: _valid_url() if (name, p) in BOUND_BY_DESCRIPTION else valid(s) for p, s in schema["properties"].items()
    }
    return st.fixed_dictionaries(
        {p: s for p, s in props.items() if p in required},
        optional={p: s for p, s in props.items() if p not in required},
    )


def valid(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that satisfy every keyword of ``schema``, as the spec means them."""
    if "$ref" in schema and "properties" in _target(schema):
        return st.deferred(lambda: _object(schema["$ref"].rsplit("/", 1)[-1]))
    schema = _target(schema)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low, high = _int_range(schema)
        if "pattern" in schema:
            digits = ecma_to_rust(schema["pattern"])
            return st.from_regex(digits, fullmatch=True).map(int).filter(lambda v: low <= v <= high)
        return st.integers(low, high)
    if kind == "array":
        size = schema.get("maxItems", 3)
        unique = _json_key if schema.get("uniqueItems") else None
        return st.lists(
            valid(schema["items"]), min_size=schema.get("minItems", 0), max_size=min(size, 3), unique_by=unique
        )
    assert kind == "string", schema  # inline objects were hoisted into named models
    fmt = schema.get("format")
    if fmt == "uuid":
        return st.uuids().map(str)
    if fmt == "date-time":
        return st.sampled_from(["2024-05-02T10:00:00+02:00", "2030-01-01T12:00:00Z"])
    low, high = schema.get("minLength", 0), schema.get("maxLength", 50)
    if "pattern" in schema:
        return st.from_regex(ecma_to_rust(schema["pattern"]), fullmatch=True).filter(lambda s: low <= len(s) <= high)
    return st.text(st.characters(exclude_categories=("Cs",)), min_size=low, max_size=min(high, low + 12))


def _refuses(translated: str, value: str) -> bool:
    """Whether an ECMA-262 engine refuses ``value``: Python's re on the translation, with "$" made "end of input"."""
    return re.search(translated[:-1] + r"\Z" if translated.endswith("$") else translated, value) is None


def violating(schema: dict[str, Any], keyword: str, model: str, prop: str) -> st.SearchStrategy[Any]:
    """Values that break ``keyword`` of ``schema`` (and, where the keyword allows it, nothing else)."""
    target = _target(schema)
    kind = target.get("type")
    low_len, high_len = schema.get("minLength", 0), schema.get("maxLength", 10**6)
    if keyword in ("type", "$ref"):
        wrong = {
            "string": [[], {}],
            "integer": ["x", 1.5, []],
            "boolean": ["kanskje", 2, []],
            "array": ["x", 1, {}],
            "object": ["x", 1, []],
        }
        return st.sampled_from(wrong[kind if kind in wrong else "object"])
    if keyword == "enum":
        return st.text(max_size=12).filter(lambda v: v not in target["enum"])
    if keyword == "format":
        if schema["format"] == "uuid":
            return st.sampled_from(["", "not-a-uuid", "0a1b2c3d-0000-4000-8000-00000000000g"])
        if schema["format"] == "date-time":
            return st.sampled_from(["yesterday", "2030-01-01T12:00:00", "2030-13-01T00:00:00Z"])
        low, high = INT_BOUNDS[schema["format"]]
        choices = [high + 1] if "minimum" in schema else [high + 1, low - 1]
        return st.sampled_from(choices)
    if keyword == "minimum":
        return st.integers(schema["minimum"] - 1000, schema["minimum"] - 1)
    if keyword == "maximum":
        return st.integers(schema["maximum"] + 1, schema["maximum"] + 10**6)
    if keyword == "minLength":
        return st.text(st.characters(exclude_categories=("Cs",)), max_size=schema["minLength"] - 1)
    if keyword == "maxLength":
        extra = st.integers(1, 4)
        return st.tuples(st.sampled_from("abcøæå09_-."), extra).map(lambda c: c[0] * (high_len + c[1]))
    if keyword == "pattern":
        translated = ecma_to_rust(schema["pattern"])
        if kind == "integer":
            low, high = _int_range(schema)
            return st.integers(low, min(high, 10**9)).filter(lambda v: not re.search(translated, str(v)))
        # The spec's pattern read by Python's re yields Unicode digits and trailing newlines.
        return st.one_of(st.from_regex(schema["pattern"]), st.text(max_size=min(high_len, 30))).filter(
            lambda v: low_len <= len(v) <= high_len and _refuses(translated, v)
        )
    if keyword == "uniqueItems":
        return valid(schema["items"]).map(lambda item: [item, item])
    if keyword in ("maxItems", "minItems"):
        size = schema["maxItems"] + 1 if keyword == "maxItems" else schema["minItems"] - 1
        return st.lists(valid(schema["items"]), min_size=size, max_size=size, unique_by=_json_key)
    if keyword == "x-described":
        return st.sampled_from(["www.example.no", "https://exa mple.no", "http://[::zz]/", "/sak/1", "https://x.no/æ"])
    raise AssertionError(f"no violation for {keyword}")


VIOLATED = {"type", "$ref", "enum", "format", "minimum", "maximum", "minLength", "maxLength", "pattern"}
VIOLATED |= {"uniqueItems", "maxItems", "minItems"}
STRUCTURAL = {"properties", "items", "required", "anyOf", "default", "description", "example", "title", "nullable"}


def _cases() -> list[tuple[str, str, str | None, str]]:
    cases = []
    for name in REQUEST_MODELS:
        schema = SCHEMAS[name]
        for prop, pschema in schema["properties"].items():
            for keyword in sorted(set(pschema) & VIOLATED):
                if keyword == "format" and pschema["format"] == "binary":
                    continue
                cases.append((name, prop, None, keyword))
            if "enum" in _target(pschema) and "enum" not in pschema:
                cases.append((name, prop, None, "enum"))
            items = pschema.get("items", {})
            for keyword in sorted(set(items) & VIOLATED - {"$ref"}):
                cases.append((name, prop, "items", keyword))
            if prop in schema.get("required", []):
                cases.append((name, prop, None, "required"))
            if (name, prop) in BOUND_BY_DESCRIPTION:
                cases.append((name, prop, None, "x-described"))
        assert set(schema) - STRUCTURAL - {"type"} == set(), name
    return cases


CASES = _cases()


def test_the_property_cases_cover_every_constraint_keyword_the_sent_models_use():
    keywords = {c[3] for c in CASES}
    assert {"pattern", "uniqueItems", "format", "minLength", "maxLength", "minimum", "maxItems"} <= keywords
    assert {"required", "enum", "type", "x-described"} <= keywords
    assert len(CASES) > 150


def _model(name: str) -> type[pydantic.BaseModel]:
    model: type[pydantic.BaseModel] = getattr(models, name)
    return model


@pytest.mark.parametrize(("model", "prop", "where", "keyword"), CASES, ids=["-".join(filter(None, c)) for c in CASES])
@SETTINGS
@given(data=st.data())
def test_a_value_breaking_one_constraint_is_refused_at_construction(data, model, prop, where, keyword):
    payload = dict(data.draw(_object(model)))
    pschema = SCHEMAS[model]["properties"][prop]
    if keyword == "required":
        payload.pop(prop, None)
    elif where == "items":
        payload[prop] = [data.draw(violating(pschema["items"], keyword, model, prop))]
    else:
        payload[prop] = data.draw(violating(pschema, keyword, model, prop))

    with pytest.raises(pydantic.ValidationError) as caught:
        _model(model).model_validate(payload)
    assert prop in {e["loc"][0] for e in caught.value.errors()}, caught.value


@pytest.mark.parametrize("model", REQUEST_MODELS)
@settings(SETTINGS, max_examples=15)
@given(data=st.data())
def test_a_value_meeting_every_constraint_is_accepted_and_sent_as_given(data, model):
    payload = data.draw(_object(model))
    built = _model(model).model_validate(payload)
    assert json.loads(built.model_dump_json(exclude_unset=True)) == payload
