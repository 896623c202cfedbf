"""Bounded TOML parsing and the writer's output (FMT-TOML)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carton_format._toml import dump_toml, parse_toml
from carton_format.errors import CartonFormatError
from carton_format.limits import Limits

KEYS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.booleans(),
    st.datetimes(timezones=st.just(dt.timezone.utc)).map(lambda d: d.replace(microsecond=0)),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=12)
DOCS = st.dictionaries(KEYS, VALUES, max_size=5)


@settings(max_examples=200, deadline=None)
@given(DOCS)
@pytest.mark.spec("FMT-TOML-1")
def test_parse_write_parse_identity(doc: dict) -> None:
    text = dump_toml(doc)
    parsed = parse_toml(text, "x.toml")
    assert parsed == doc
    assert dump_toml(parsed) == text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
@pytest.mark.spec("FMT-READ-5")
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        parse_toml(data, "x.toml")
    except CartonFormatError as exc:
        assert exc.code in ("E-TOML-SYNTAX", "E-LIMIT-TOML-NESTING", "E-LIMIT-TOML-SIZE")


@pytest.mark.spec("FMT-LIMIT-8")
def test_size_cap_applies_before_parsing() -> None:
    with pytest.raises(CartonFormatError) as err:
        parse_toml(b"a = 1\n" * 100, "x.toml", Limits(max_toml_bytes=50))
    assert err.value.code == "E-LIMIT-TOML-SIZE"


@pytest.mark.parametrize(
    "data",
    [b"a" + b".a" * 200 + b" = 1", b"x = " + b"[" * 100 + b"]" * 100, b"x = " + b"{a = " * 100 + b"1" + b"}" * 100],
)
@pytest.mark.spec("FMT-LIMIT-9")
def test_nesting_caps(data: bytes) -> None:
    with pytest.raises(CartonFormatError) as err:
        parse_toml(data, "x.toml")
    assert err.value.code == "E-LIMIT-TOML-NESTING"


@pytest.mark.spec("FMT-LIMIT-9")
def test_brackets_inside_strings_do_not_count() -> None:
    doc = {"s": "[" * 500, "t": "'''[[[" * 50, "u": ["]" * 10]}
    assert parse_toml(dump_toml(doc), "x.toml") == doc


@pytest.mark.spec("FMT-TOML-1", "FMT-TOML-2")
def test_duplicate_keys_and_bom_rejected() -> None:
    for data in (b"a = 1\na = 2\n", b"\xef\xbb\xbfa = 1\n", b"a = '\xff'\n"):
        with pytest.raises(CartonFormatError) as err:
            parse_toml(data, "x.toml")
        assert err.value.code == "E-TOML-SYNTAX"


@pytest.mark.spec("FMT-LIMIT-9")
def test_dots_and_brackets_inside_strings_and_comments_do_not_count() -> None:
    dotted = ".".join(["a"] * 300)
    doc = {"description": dotted, "k": "[" * 100, "m": 'multi\n"""line' + "{" * 100}
    text = dump_toml(doc) + b"# " + b"[" * 100 + b" " + dotted.encode() + b"\n"
    assert parse_toml(text, "x.toml") == doc


@pytest.mark.spec("FMT-LIMIT-9")
@pytest.mark.parametrize(
    "data",
    [b'"' + b'\\"' * 50_000, b'"""' + b'"a' * 50_000, b"'''" + b"a'" * 50_000, b'"\'' * 50_000, b'"' + b"\\" * 50_000],
)
def test_unterminated_strings_are_rejected_as_syntax_errors(data: bytes) -> None:
    """Pathological quoting (quadratic for a naive pre-scan) ends in a plain syntax error."""
    with pytest.raises(CartonFormatError) as err:
        parse_toml(b"x = " + data, "x.toml")
    assert err.value.code == "E-TOML-SYNTAX"
