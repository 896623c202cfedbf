"""Tests for carton_format.version_req against Rust semver 1.0.20.

The tables below are a port of every case in dtolnay/semver@1.0.20 ``tests/test_version_req.rs``
(plus the ``Version::parse`` cases of ``tests/test_version.rs``); the Rust error messages are
compared verbatim.  Hypothesis then checks display/parse round trips, agreement with an
independent desugaring into bounds, and that no input raises anything but CartonFormatError.
"""

from __future__ import annotations

import pytest
import semver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carton_format.errors import CartonFormatError
from carton_format.version_req import U64_MAX, Comparator, Op, VersionReq, parse_version

# --------------------------------------------------------------------------------------------
# Port of tests/test_version_req.rs
# --------------------------------------------------------------------------------------------

# (requirement, expected Display or None when the Rust test does not check it,
#  versions that must match, versions that must not match)
MATCH_CASES: list[tuple[str, str | None, list[str], list[str]]] = [
    # test_basic
    ("1.0.0", "^1.0.0", ["1.0.0", "1.1.0", "1.0.1"], ["0.9.9", "0.10.0", "0.1.0", "1.0.0-pre", "1.0.1-pre"]),
    # test_exact
    ("=1.0.0", "=1.0.0", ["1.0.0"], ["1.0.1", "0.9.9", "0.10.0", "0.1.0", "1.0.0-pre"]),
    ("=0.9.0", "=0.9.0", ["0.9.0"], ["0.9.1", "1.9.0", "0.0.9", "0.9.0-pre"]),
    ("=0.0.2", "=0.0.2", ["0.0.2"], ["0.0.1", "0.0.3", "0.0.2-pre"]),
    ("=0.1.0-beta2.a", "=0.1.0-beta2.a", ["0.1.0-beta2.a"], ["0.9.1", "0.1.0", "0.1.1-beta2.a", "0.1.0-beta2"]),
    ("=0.1.0+meta", "=0.1.0", ["0.1.0", "0.1.0+meta", "0.1.0+any"], []),
    # test_greater_than
    (">= 1.0.0", ">=1.0.0", ["1.0.0", "2.0.0"], ["0.1.0", "0.0.1", "1.0.0-pre", "2.0.0-pre"]),
    (
        ">= 2.1.0-alpha2",
        ">=2.1.0-alpha2",
        ["2.1.0-alpha2", "2.1.0-alpha3", "2.1.0", "3.0.0"],
        ["2.0.0", "2.1.0-alpha1", "2.0.0-alpha2", "3.0.0-alpha2"],
    ),
    # test_less_than
    ("< 1.0.0", "<1.0.0", ["0.1.0", "0.0.1"], ["1.0.0", "1.0.0-beta", "1.0.1", "0.9.9-alpha"]),
    (
        "<= 2.1.0-alpha2",
        None,
        ["2.1.0-alpha2", "2.1.0-alpha1", "2.0.0", "1.0.0"],
        ["2.1.0", "2.2.0-alpha1", "2.0.0-alpha2", "1.0.0-alpha2"],
    ),
    (">1.0.0-alpha, <1.0.0", None, ["1.0.0-beta"], []),
    (">1.0.0-alpha, <1.0", None, [], ["1.0.0-beta"]),
    (">1.0.0-alpha, <1", None, [], ["1.0.0-beta"]),
    # test_multiple
    ("> 0.0.9, <= 2.5.3", ">0.0.9, <=2.5.3", ["0.0.10", "1.0.0", "2.5.3"], ["0.0.8", "2.5.4"]),
    ("0.3.0, 0.4.0", "^0.3.0, ^0.4.0", [], ["0.0.8", "0.3.0", "0.4.0"]),
    ("<= 0.2.0, >= 0.5.0", "<=0.2.0, >=0.5.0", [], ["0.0.8", "0.3.0", "0.5.1"]),
    ("0.1.0, 0.1.4, 0.1.6", "^0.1.0, ^0.1.4, ^0.1.6", ["0.1.6", "0.1.9"], ["0.1.0", "0.1.4", "0.2.0"]),
    (
        ">=0.5.1-alpha3, <0.6",
        ">=0.5.1-alpha3, <0.6",
        ["0.5.1-alpha3", "0.5.1-alpha4", "0.5.1-beta", "0.5.1", "0.5.5"],
        ["0.5.1-alpha1", "0.5.2-alpha3", "0.5.5-pre", "0.5.0-pre", "0.6.0", "0.6.0-pre"],
    ),
    # test_tilde
    ("~1", None, ["1.0.0", "1.0.1", "1.1.1"], ["0.9.1", "2.9.0", "0.0.9"]),
    ("~1.2", None, ["1.2.0", "1.2.1"], ["1.1.1", "1.3.0", "0.0.9"]),
    ("~1.2.2", None, ["1.2.2", "1.2.4"], ["1.2.1", "1.9.0", "1.0.9", "2.0.1", "0.1.3"]),
    (
        "~1.2.3-beta.2",
        None,
        ["1.2.3", "1.2.4", "1.2.3-beta.2", "1.2.3-beta.4"],
        ["1.3.3", "1.1.4", "1.2.3-beta.1", "1.2.4-beta.2"],
    ),
    # test_caret
    ("^1", None, ["1.1.2", "1.1.0", "1.2.1", "1.0.1"], ["0.9.1", "2.9.0", "0.1.4", "1.0.0-beta1", "0.1.0-alpha", "1.0.1-pre"]),
    ("^1.1", None, ["1.1.2", "1.1.0", "1.2.1"], ["0.9.1", "2.9.0", "1.0.1", "0.1.4"]),
    (
        "^1.1.2",
        None,
        ["1.1.2", "1.1.4", "1.2.1"],
        ["0.9.1", "2.9.0", "1.1.1", "0.0.1", "1.1.2-alpha1", "1.1.3-alpha1", "2.9.0-alpha1"],
    ),
    ("^0.1.2", None, ["0.1.2", "0.1.4"], ["0.9.1", "2.9.0", "1.1.1", "0.0.1", "0.1.2-beta", "0.1.3-alpha", "0.2.0-pre"]),
    (
        "^0.5.1-alpha3",
        None,
        ["0.5.1-alpha3", "0.5.1-alpha4", "0.5.1-beta", "0.5.1", "0.5.5"],
        ["0.5.1-alpha1", "0.5.2-alpha3", "0.5.5-pre", "0.5.0-pre", "0.6.0"],
    ),
    ("^0.0.2", None, ["0.0.2"], ["0.9.1", "2.9.0", "1.1.1", "0.0.1", "0.1.4"]),
    ("^0.0", None, ["0.0.2", "0.0.0"], ["0.9.1", "2.9.0", "1.1.1", "0.1.4"]),
    ("^0", None, ["0.9.1", "0.0.2", "0.0.0"], ["2.9.0", "1.1.1"]),
    (
        "^1.4.2-beta.5",
        None,
        ["1.4.2", "1.4.3", "1.4.2-beta.5", "1.4.2-beta.6", "1.4.2-c"],
        ["0.9.9", "2.0.0", "1.4.2-alpha", "1.4.2-beta.4", "1.4.3-beta.5"],
    ),
    # test_wildcard
    ("*", "*", ["0.9.1", "2.9.0", "0.0.9", "1.0.1", "1.1.1"], ["1.0.0-pre"]),
    ("1.*", "1.*", ["1.2.0", "1.2.1", "1.1.1", "1.3.0"], ["0.0.9", "1.2.0-pre"]),
    ("1.2.*", "1.2.*", ["1.2.0", "1.2.2", "1.2.4"], ["1.9.0", "1.0.9", "2.0.1", "0.1.3", "1.2.2-pre"]),
    # test_pre
    ("=2.1.1-really.0", None, ["2.1.1-really.0"], []),
    # test_cargo3202
    ("0.*.*", "0.*", ["0.5.0"], []),
    ("0.0.*", "0.0.*", [], []),
]

# test_wildcard / test_eq_hash: groups of spellings that parse to equal requirements.
EQUAL_GROUPS: list[list[str]] = [
    ["*", "x", "X"],
    ["1.*", "1.x", "1.X", "1.*.*"],
    ["1.2.*", "1.2.x", "1.2.X"],
    ["^1", "^1"],
]
UNEQUAL_PAIRS: list[tuple[str, str]] = [("^1", "^2")]

# (requirement, Rust error message)
REQ_ERRORS: list[tuple[str, str]] = [
    # test_multiple
    ("> 0.1.0,", "unexpected end of input while parsing major version number"),
    ("> 0.3.0, ,", "unexpected character ',' while parsing major version number"),
    ("1.2.3 - 2.3.4", "expected comma after patch version number, found '-'"),
    (
        ", ".join(f">{i}" for i in range(1, 34)),
        "excessive number of version comparators",
    ),
    # test_whitespace_delimited_comparator_sets
    ("> 0.0.9 <= 2.5.3", "expected comma after patch version number, found '<'"),
    # test_wildcard
    ("", "unexpected end of input while parsing major version number"),
    # test_logical_or
    ("=1.2.3 || =2.3.4", "expected comma after patch version number, found '|'"),
    ("1.1 || =1.2.3", "expected comma after minor version number, found '|'"),
    ("6.* || 8.* || >= 10.*", "expected comma after minor version number, found '|'"),
    # test_parse
    ("\0", "unexpected character '\\0' while parsing major version number"),
    (">= >= 0.0.2", "unexpected character '>' while parsing major version number"),
    (">== 0.0.2", "unexpected character '=' while parsing major version number"),
    ("a.0.0", "unexpected character 'a' while parsing major version number"),
    ("1.0.0-", "empty identifier segment in pre-release identifier"),
    (">=", "unexpected end of input while parsing major version number"),
    # test_digit_after_wildcard
    ("*.1", "unexpected character after wildcard in version req"),
    ("1.*.1", "unexpected character after wildcard in version req"),
    (">=1.*.1", "unexpected character after wildcard in version req"),
    # test_wildcard_and_another
    ("*, 0.20.0-any", "wildcard req (*) must be the only comparator in the version req"),
    ("0.20.0-any, *", "wildcard req (*) must be the only comparator in the version req"),
    ("0.20.0-any, *, 1.0", "wildcard req (*) must be the only comparator in the version req"),
]

# test_comparator_parse: (comparator, Display)
COMPARATOR_CASES: list[tuple[str, str]] = [
    ("1.2.3-alpha", "^1.2.3-alpha"),
    ("2.X", "2.*"),
    ("2", "^2"),
    ("2.x.x", "2.*"),
]
COMPARATOR_ERRORS: list[tuple[str, str]] = [
    ("1.2.3-01", "invalid leading zero in pre-release identifier"),
    ("1.2.3+4.", "empty identifier segment in build metadata"),
    (">", "unexpected end of input while parsing major version number"),
    ("1.", "unexpected end of input while parsing minor version number"),
    ("1.*.", "unexpected character after wildcard in version req"),
    ("1.2.3+4ÿ", "unexpected character 'ÿ' after build metadata"),
]

# test_leading_digit_in_pre_and_build: every operator with these suffixes must parse.
LEADING_DIGIT_SUFFIXES = ["-1a", "+1a", "-01a", "+01", "-1+1", "-1-1+1-1-1", "-1a+1a", "-1a-1a+1a-1a-1a"]
LEADING_DIGIT_CASES = [
    f"{op} 1.2.3{suffix}" for op in ["=", ">", ">=", "<", "<=", "~", "^"] for suffix in LEADING_DIGIT_SUFFIXES
]

# Port of tests/test_version.rs test_parse (Version::parse).
VERSION_ERRORS: list[tuple[str, str]] = [
    ("", "empty string, expected a semver version"),
    ("  ", "unexpected character ' ' while parsing major version number"),
    ("1", "unexpected end of input while parsing major version number"),
    ("1.2", "unexpected end of input while parsing minor version number"),
    ("1.2.3-", "empty identifier segment in pre-release identifier"),
    ("a.b.c", "unexpected character 'a' while parsing major version number"),
    ("1.2.3 abc", "unexpected character ' ' after patch version number"),
    ("1.2.3-01", "invalid leading zero in pre-release identifier"),
    ("1.2.3++", "empty identifier segment in build metadata"),
    ("07", "invalid leading zero in major version number"),
    ("111111111111111111111.0.0", "value of major version number exceeds u64::MAX"),
    ("8\0", "unexpected character '\\0' after major version number"),
]
VERSION_OK: list[tuple[str, tuple[int, int, int, str | None, str | None]]] = [
    ("1.2.3", (1, 2, 3, None, None)),
    ("1.2.3-alpha1", (1, 2, 3, "alpha1", None)),
    ("1.2.3+build5", (1, 2, 3, None, "build5")),
    ("1.2.3+5build", (1, 2, 3, None, "5build")),
    ("1.2.3-alpha1+build5", (1, 2, 3, "alpha1", "build5")),
    ("1.2.3-1.alpha1.9+build5.7.3aedf", (1, 2, 3, "1.alpha1.9", "build5.7.3aedf")),
    ("1.2.3-0a.alpha1.9+05build.7.3aedf", (1, 2, 3, "0a.alpha1.9", "05build.7.3aedf")),
    ("0.4.0-beta.1+0851523", (0, 4, 0, "beta.1", "0851523")),
]

RUST_CASE_COUNT = (
    sum(1 + (display is not None) + len(yes) + len(no) for _, display, yes, no in MATCH_CASES)
    + sum(len(group) - 1 for group in EQUAL_GROUPS)
    + len(UNEQUAL_PAIRS)
    + len(REQ_ERRORS)
    + len(COMPARATOR_CASES)
    + len(COMPARATOR_ERRORS)
    + len(LEADING_DIGIT_CASES)
    + len(VERSION_ERRORS)
    + len(VERSION_OK)
)


def _error(func, *args) -> CartonFormatError:
    with pytest.raises(CartonFormatError) as info:
        func(*args)
    return info.value


@pytest.mark.parametrize("text,display,yes,no", MATCH_CASES)
@pytest.mark.spec("FMT-VREQ-6", "FMT-VREQ-7", "FMT-VREQ-8")
def test_rust_matches(text: str, display: str | None, yes: list[str], no: list[str]) -> None:
    req = VersionReq.parse(text)
    if display is not None:
        assert str(req) == display
    for version in yes:
        assert req.matches(version), version
        assert req.matches(semver.Version.parse(version)), version
    for version in no:
        assert not req.matches(version), version


@pytest.mark.parametrize("group", EQUAL_GROUPS)
@pytest.mark.spec("FMT-VREQ-4")
def test_rust_equal_spellings(group: list[str]) -> None:
    reqs = [VersionReq.parse(text) for text in group]
    assert all(req == reqs[0] and hash(req) == hash(reqs[0]) for req in reqs)


@pytest.mark.parametrize("a,b", UNEQUAL_PAIRS)
def test_rust_unequal(a: str, b: str) -> None:
    assert VersionReq.parse(a) != VersionReq.parse(b)


@pytest.mark.parametrize("text,message", REQ_ERRORS)
@pytest.mark.spec("FMT-VREQ-1", "FMT-VREQ-2", "FMT-VREQ-4", "FMT-VREQ-5")
def test_rust_req_errors(text: str, message: str) -> None:
    err = _error(VersionReq.parse, text)
    assert err.code == "E-VERSIONREQ-INVALID"
    assert err.message.endswith(": " + message), err.message


@pytest.mark.parametrize("text,display", COMPARATOR_CASES)
@pytest.mark.spec("FMT-VREQ-8")
def test_rust_comparator_parse(text: str, display: str) -> None:
    assert str(Comparator.parse(text)) == display


@pytest.mark.parametrize("text,message", COMPARATOR_ERRORS)
@pytest.mark.spec("FMT-VREQ-2", "FMT-VREQ-5")
def test_rust_comparator_errors(text: str, message: str) -> None:
    err = _error(Comparator.parse, text)
    assert err.code == "E-VERSIONREQ-INVALID"
    assert err.message.endswith(": " + message), err.message


@pytest.mark.parametrize("text", LEADING_DIGIT_CASES)
@pytest.mark.spec("FMT-VREQ-5")
def test_rust_leading_digit_in_pre_and_build(text: str) -> None:
    VersionReq.parse(text)


@pytest.mark.parametrize("text,message", VERSION_ERRORS)
def test_rust_version_errors(text: str, message: str) -> None:
    err = _error(parse_version, text)
    assert err.code == "E-ARG-INVALID"
    assert err.message.endswith(": " + message), err.message


@pytest.mark.parametrize("text,parts", VERSION_OK)
def test_rust_version_ok(text: str, parts: tuple) -> None:
    version = parse_version(text)
    assert (version.major, version.minor, version.patch, version.prerelease, version.build) == parts


def test_rust_case_count() -> None:
    assert RUST_CASE_COUNT == 382


# --------------------------------------------------------------------------------------------
# Carton-specific and edge cases (derived from parse.rs / eval.rs, not from Rust's test file)
# --------------------------------------------------------------------------------------------

EXTRA_DISPLAY: list[tuple[str, str]] = [
    ("=2.0", "=2.0"),
    (">= 2.0.0", ">=2.0.0"),
    ("2.0", "^2.0"),
    ("  >=  1.2.3-rc.1+build , <2  ", ">=1.2.3-rc.1, <2"),
    ("=1.*", "=1"),  # a wildcard after an explicit operator just truncates
    (">=1.x.X", ">=1"),
    ("^1.2.*", "^1.2"),
    ("~ 0.*", "~0"),
    ("1.*, 2.*", "1.*, 2.*"),  # wildcard *comparators* may be combined; only a bare * may not
    (f"{U64_MAX}.{U64_MAX}.{U64_MAX}", f"^{U64_MAX}.{U64_MAX}.{U64_MAX}"),
    (", ".join(f">{i}" for i in range(1, 33)), ", ".join(f">{i}" for i in range(1, 33))),
]

EXTRA_ERRORS: list[tuple[str, str]] = [
    ("v1.0", "unexpected character 'v' while parsing major version number"),
    (">=1.0.0 <2", "expected comma after patch version number, found '<'"),
    ("01", "invalid leading zero in major version number"),
    ("1.00", "invalid leading zero in minor version number"),
    ("18446744073709551616", "value of major version number exceeds u64::MAX"),
    ("1.18446744073709551616", "value of minor version number exceeds u64::MAX"),
    ("\t1.0", "unexpected character '\\t' while parsing major version number"),  # only ' ' is skipped
    ("1.0\n", "expected comma after minor version number, found '\\n'"),
    ("1.2+build", "expected comma after minor version number, found '+'"),  # build needs x.y.z
    ("1.2.*-pre", "expected comma after patch version number, found '-'"),
    ("1.2.3.4", "expected comma after patch version number, found '.'"),
    ("1.2.x.x", "expected comma after patch version number, found '.'"),
    ("xyz", "unexpected character after wildcard in version req"),
    ("* ,", "wildcard req (*) must be the only comparator in the version req"),
    ("1, X", "wildcard req (X) must be the only comparator in the version req"),
    ("1, xy", "unexpected character 'x' while parsing major version number"),
    (">=*", "unexpected character '*' while parsing major version number"),
    ("> = 1", "unexpected character '=' while parsing major version number"),
    ("1.2.3-a..b", "empty identifier segment in pre-release identifier"),
    ("1.2.3-é", "empty identifier segment in pre-release identifier"),
    (", ".join(f">{i}" for i in range(1, 33)) + ",", "excessive number of version comparators"),
]


@pytest.mark.parametrize("text,display", EXTRA_DISPLAY)
@pytest.mark.spec("FMT-VREQ-3", "FMT-VREQ-8")
def test_extra_display(text: str, display: str) -> None:
    req = VersionReq.parse(text)
    assert str(req) == display
    assert VersionReq.parse(display) == req


@pytest.mark.parametrize("text,message", EXTRA_ERRORS)
@pytest.mark.spec("FMT-VREQ-1", "FMT-VREQ-2", "FMT-VREQ-3", "FMT-VREQ-4", "FMT-VREQ-5")
def test_extra_errors(text: str, message: str) -> None:
    err = _error(VersionReq.parse, text)
    assert err.code == "E-VERSIONREQ-INVALID"
    assert err.message.endswith(": " + message), err.message


@pytest.mark.parametrize(
    "text,version,expected",
    [
        (">= 2.0.0", "2.13.0+cpu", True),  # the torch pack test requirement
        ("=2.0", "2.0.1+cu118", True),
        ("=2.0", "2.1.0", False),
        (">=2.0", "2.2.0-a0", False),  # nightlies excluded
        ("^2", "2.2.0-a0", False),
        (">=2.2.0-a0", "2.2.0-a0", True),
        ("*", "18446744073709551615.0.0", True),
        ("^18446744073709551615", "18446744073709551615.1.0", True),
        (">18446744073709551615", "18446744073709551615.0.0", False),
        ("=1.2, >=1.2.5-alpha", "1.2.5-beta", False),  # "=1.2" rejects every pre-release
        ("^1.2, >=1.2.5-alpha", "1.2.5-beta", True),  # "^1.2" does not
        (">1.2, =1.3.0-alpha", "1.3.0-alpha", True),  # ">1.2" starts at 1.3.0-0
    ],
)
@pytest.mark.spec("FMT-VREQ-6", "FMT-VREQ-7")
def test_extra_matches(text: str, version: str, expected: bool) -> None:
    assert VersionReq.parse(text).matches(version) is expected


def test_star_and_api() -> None:
    assert VersionReq.STAR == VersionReq.parse("*") == VersionReq()
    assert str(VersionReq.STAR) == "*" and VersionReq.STAR.comparators == ()
    assert VersionReq.STAR.matches("0.0.0") and not VersionReq.STAR.matches("1.0.0-rc.1")
    req = VersionReq.parse(">=1.2.3-rc.1, <2")
    assert req.comparators == (Comparator(Op.GREATER_EQ, 1, 2, 3, "rc.1"), Comparator(Op.LESS, 2))
    assert req == VersionReq((Comparator(">=", 1, 2, 3, "rc.1"), Comparator("<", 2)))
    assert {req: 1}[VersionReq.parse(str(req))] == 1
    for version in ["0.0.1", "0.1.0", "1.0.0"]:  # Rust test_any
        assert VersionReq.STAR.matches(version)
    assert repr(req) == "VersionReq('>=1.2.3-rc.1, <2')"
    assert Comparator.parse("=1.2").matches("1.2.9") and not Comparator.parse("=1.2").matches("1.2.9-a")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"op": "!", "major": 1},
        {"op": "=", "major": -1},
        {"op": "=", "major": U64_MAX + 1},
        {"op": "=", "major": True},
        {"op": "=", "major": 1, "patch": 1},
        {"op": "*", "major": 1, "minor": 2, "patch": 3},
        {"op": "=", "major": 1, "minor": 2, "pre": "a"},
        {"op": "=", "major": 1, "minor": 2, "patch": 3, "pre": "01"},
        {"op": "=", "major": 1, "minor": 2, "patch": 3, "pre": "a b"},
    ],
)
def test_comparator_invariants(kwargs: dict) -> None:
    assert _error(lambda: Comparator(**kwargs)).code == "E-VERSIONREQ-INVALID"


def test_too_many_comparators_constructed() -> None:
    assert _error(lambda: VersionReq((Comparator("^", 1),) * 33)).code == "E-VERSIONREQ-INVALID"


@pytest.mark.parametrize(
    "bad", ["2.0", "v2.0.0", " 2.0.0", "2.0.0 ", "1.2.3-01", "٣.0.0", "1٣.0.0", "18446744073709551616.0.0", None, 2]
)
def test_matches_bad_version(bad: object) -> None:
    assert _error(VersionReq.parse("*").matches, bad).code == "E-ARG-INVALID"


def test_matches_rejects_semver_values_rust_cannot_hold() -> None:
    req = VersionReq.parse("*")
    assert _error(req.matches, semver.Version(1, 2, 3, prerelease="01")).code == "E-ARG-INVALID"
    assert _error(req.matches, semver.Version(U64_MAX + 1, 0, 0)).code == "E-ARG-INVALID"
    assert req.matches(semver.Version(1, 2, 3, build="cpu"))


def test_non_string_requirement() -> None:
    assert _error(VersionReq.parse, None).code == "E-VERSIONREQ-INVALID"
    assert _error(VersionReq.parse, b"1.0").code == "E-VERSIONREQ-INVALID"


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
_numeric_ident = st.integers(0, 10**25).map(str)
_alnum_ident = st.tuples(
    st.text(_ALNUM, max_size=4), st.sampled_from("abcxyzXY-"), st.text(_ALNUM, max_size=4)
).map("".join)
_pre = st.lists(_numeric_ident | _alnum_ident, min_size=1, max_size=3).map(".".join)
_build = st.lists(st.text(_ALNUM, min_size=1, max_size=4), min_size=1, max_size=3).map(".".join)
_wide_num = st.integers(0, 5) | st.integers(0, U64_MAX) | st.just(U64_MAX)


@st.composite
def _comparators(draw, num=_wide_num, pre=_pre) -> Comparator:
    op = draw(st.sampled_from(list(Op)))
    parts = draw(st.integers(1, 2 if op is Op.WILDCARD else 3))
    minor = draw(num) if parts >= 2 else None
    patch = draw(num) if parts == 3 else None
    prerelease = draw(pre) if patch is not None and draw(st.booleans()) else ""
    return Comparator(op, draw(num), minor, patch, prerelease)


_reqs = st.lists(_comparators(), max_size=32).map(lambda cs: VersionReq(tuple(cs)))

_spaces = st.text(" ", max_size=2)
_wild = st.sampled_from("*xX")


@st.composite
def _spelling(draw, cmp: Comparator) -> str:
    """A random non-normalised spelling of ``cmp`` that Rust accepts."""
    if cmp.op is Op.WILDCARD:
        head = f"{cmp.major}" if cmp.minor is None else f"{cmp.major}.{cmp.minor}"
        tails = [f".{draw(_wild)}"] + ([f".{draw(_wild)}.{draw(_wild)}"] if cmp.minor is None else [])
        return head + draw(st.sampled_from(tails))
    op = cmp.op.value if cmp.op is not Op.CARET else draw(st.sampled_from(["^", ""]))
    text = op + (draw(_spaces) if op else "") + str(cmp.major)
    if cmp.minor is None:
        if op and draw(st.booleans()):  # ">=1.*" and ">=1.*.*" mean ">=1"
            text += f".{draw(_wild)}" + (f".{draw(_wild)}" if draw(st.booleans()) else "")
        return text
    text += f".{cmp.minor}"
    if cmp.patch is None:
        if op and draw(st.booleans()):
            text += f".{draw(_wild)}"
        return text
    text += f".{cmp.patch}" + (f"-{cmp.pre}" if cmp.pre else "")
    if draw(st.booleans()):
        text += f"+{draw(_build)}"
    return text


@st.composite
def _spelled_reqs(draw) -> tuple[VersionReq, str]:
    req = draw(_reqs)
    if not req.comparators:
        return req, draw(_spaces) + draw(_wild) + draw(_spaces)
    parts = [draw(_spaces) + draw(_spelling(c)) + draw(_spaces) for c in req.comparators]
    return req, ",".join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_reqs)
@pytest.mark.spec("FMT-VREQ-8")
def test_prop_display_round_trip(req: VersionReq) -> None:
    text = str(req)
    again = VersionReq.parse(text)
    assert again == req and hash(again) == hash(req)
    assert str(again) == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spelled_reqs())
@pytest.mark.spec("FMT-VREQ-3", "FMT-VREQ-4")
def test_prop_spellings_parse_to_same_req(case: tuple[VersionReq, str]) -> None:
    req, text = case
    assert VersionReq.parse(text) == req


# --- (2) independent reference: desugar every comparator into half-open bounds ----------------


def _v(major: int, minor: int, patch: int, pre: str | None = None) -> semver.Version:
    return semver.Version(major, minor, patch, pre)


def _floor(major: int, minor: int = 0, patch: int = 0) -> semver.Version:
    """Smallest version with this prefix: x.y.z-0 ("0" is the least pre-release)."""
    return _v(major, minor, patch, "0")


def _ref_comparator(c: Comparator, v: semver.Version) -> bool:
    """Cargo semantics as bounds, written independently of eval.rs.

    Full ``x.y.z[-pre]``: ordinary semver order against V; ``~``/``^`` are [V, next-0).
    Partial ``x`` / ``x.y`` stands for the set S of versions with that prefix, [lo, hi) with
    lo = x.y.0-0 and hi = the next prefix's -0.  ``=``, ``*``, ``~`` and the "equal" half of
    ``>=``/``<=`` only take *release* versions from S; ``>``, ``<`` and ``^`` ignore pre-releases
    (the global pre-release rule filters those).
    """
    op = c.op
    if c.patch is not None:
        full = _v(c.major, c.minor, c.patch, c.pre or None)
        order = v.compare(full)
        if op is Op.EXACT:
            return order == 0
        if op is Op.GREATER:
            return order > 0
        if op is Op.GREATER_EQ:
            return order >= 0
        if op is Op.LESS:
            return order < 0
        if op is Op.LESS_EQ:
            return order <= 0
        if op is Op.TILDE:
            return order >= 0 and v < _floor(c.major, c.minor + 1)
        assert op is Op.CARET
        if c.major > 0:
            upper = _floor(c.major + 1)
        elif c.minor > 0:
            upper = _floor(0, c.minor + 1)
        else:
            upper = _floor(0, 0, c.patch + 1)
        return order >= 0 and v < upper
    lo = _floor(c.major, c.minor or 0)
    hi = _floor(c.major + 1) if c.minor is None else _floor(c.major, c.minor + 1)
    in_set = lo <= v < hi
    release_in_set = in_set and not v.prerelease
    if op in (Op.EXACT, Op.WILDCARD, Op.TILDE):
        return release_in_set
    if op is Op.GREATER:
        return v >= hi
    if op is Op.GREATER_EQ:
        return release_in_set or v >= hi
    if op is Op.LESS:
        return v < lo
    if op is Op.LESS_EQ:
        return v < lo or release_in_set
    assert op is Op.CARET
    if c.minor is not None and c.major > 0:
        return lo <= v < _floor(c.major + 1)
    return in_set


def _ref_matches(req: VersionReq, v: semver.Version) -> bool:
    if not all(_ref_comparator(c, v) for c in req.comparators):
        return False
    if not v.prerelease:
        return True
    return any(c.pre and (c.major, c.minor, c.patch) == (v.major, v.minor, v.patch) for c in req.comparators)


_small_pre = st.sampled_from(["alpha", "alpha.1", "beta", "0", "1", "rc.2", "a-b"])


@st.composite
def _req_and_version(draw) -> tuple[VersionReq, semver.Version]:
    """A version and up to 4 comparators all on or next to it, so that the pre-release rule,
    partial versions and caret's 0.x special cases interact often."""
    anchor = [draw(st.integers(0, 2)) for _ in range(3)]

    def near(i: int) -> int:
        return max(0, anchor[i] + draw(st.sampled_from([0, 0, 0, -1, 1])))

    comparators = []
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(list(Op)))
        parts = draw(st.integers(1, 2 if op is Op.WILDCARD else 3))
        minor = near(1) if parts >= 2 else None
        patch = near(2) if parts == 3 else None
        pre = draw(_small_pre) if patch is not None and draw(st.booleans()) else ""
        comparators.append(Comparator(op, near(0), minor, patch, pre))
    version = semver.Version(*anchor, draw(st.none() | _small_pre), draw(st.none() | st.just("cpu")))
    return VersionReq(tuple(comparators)), version


@settings(max_examples=2000, deadline=None)
@given(_req_and_version())
@pytest.mark.spec("FMT-VREQ-6", "FMT-VREQ-7")
def test_prop_matches_agrees_with_bounds(case: tuple[VersionReq, semver.Version]) -> None:
    req, version = case
    expected = _ref_matches(req, version)
    assert req.matches(version) is expected
    assert req.matches(str(version)) is expected
    if len(req.comparators) == 1:
        assert req.comparators[0].matches(version) is expected


def _small_universe() -> list[Comparator]:
    comparators = []
    for op in Op:
        for major in range(3):
            comparators.append(Comparator(op, major))
            for minor in range(3):
                comparators.append(Comparator(op, major, minor))
                if op is not Op.WILDCARD:
                    for patch in range(3):
                        for pre in ("", "alpha"):
                            comparators.append(Comparator(op, major, minor, patch, pre))
    return comparators


@pytest.mark.spec("FMT-VREQ-6", "FMT-VREQ-7")
def test_exhaustive_small_universe_agrees_with_bounds() -> None:
    """Every comparator over {0,1,2} x {"", alpha} against every nearby version, alone and
    paired with ``=version`` (which lets a pre-release version through the pre-release rule,
    so the comparator's own treatment of pre-releases is what decides)."""
    versions = [
        semver.Version(major, minor, patch, pre)
        for major in range(3)
        for minor in range(3)
        for patch in range(3)
        for pre in (None, "0", "alpha", "beta")
    ]
    for cmp in _small_universe():
        for version in versions:
            reqs = [VersionReq((cmp,))]
            if version.prerelease:
                reqs.append(VersionReq((cmp, Comparator(Op.EXACT, *version.to_tuple()[:4]))))
            for req in reqs:
                assert req.matches(version) is _ref_matches(req, version), (str(req), str(version))


# --- python-semver's pre-release precedence equals Rust's impl Ord for Prerelease -------------


def _rust_pre_cmp(a: str, b: str) -> int:
    """Port of impls.rs ``Ord for Prerelease`` (empty = release = greatest)."""
    if not a or not b:
        return (not a) - (not b)
    left, right = a.split("."), b.split(".")
    for x, y in zip(left, right):
        if x.isdigit() and y.isdigit():
            key_x, key_y = (len(x), x), (len(y), y)
        elif x.isdigit() or y.isdigit():
            return -1 if x.isdigit() else 1
        else:
            key_x, key_y = x, y
        if key_x != key_y:
            return -1 if key_x < key_y else 1
    return (len(left) > len(right)) - (len(left) < len(right))


@settings(max_examples=500, deadline=None)
@given(st.just("") | _pre, st.just("") | _pre)
@pytest.mark.spec("FMT-VREQ-7")
def test_prop_prerelease_order_matches_rust(a: str, b: str) -> None:
    req = VersionReq((Comparator(Op.GREATER, 1, 0, 0, a),)) if a else VersionReq.parse(">1.0.0")
    version = f"1.0.0-{b}" if b else "1.0.0"
    # ">1.0.0-a" matches 1.0.0-b exactly when b > a (same x.y.z, so the pre-release rule passes)
    assert req.matches(version) is (_rust_pre_cmp(b, a) > 0 and (bool(a) or not b))


# --- (3) arbitrary text only ever raises CartonFormatError -----------------------------------

_grammar_text = st.text(" ,.*xX^~<>=-+0123456789abv|\t\0é", max_size=40)


@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=40) | _grammar_text)
def test_prop_random_text_only_carton_errors(text: str) -> None:
    for func in (VersionReq.parse, Comparator.parse, parse_version, VersionReq.parse("*").matches):
        try:
            result = func(text)
        except CartonFormatError as exc:
            assert exc.code in ("E-VERSIONREQ-INVALID", "E-ARG-INVALID")
            continue
        if isinstance(result, VersionReq):  # whatever is accepted normalises to a fixed point
            assert VersionReq.parse(str(result)) == result
            assert str(VersionReq.parse(str(result))) == str(result)
