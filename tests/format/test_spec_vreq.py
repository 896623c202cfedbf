"""Section 15 (version requirements), one table per rule; test_version_req.py holds the full
port of semver 1.0.20's own tests and the property tests."""

from __future__ import annotations

import pytest

from carton_format.errors import CartonFormatError
from carton_format.version_req import VersionReq


def _invalid(text: str) -> None:
    with pytest.raises(CartonFormatError) as err:
        VersionReq.parse(text)
    assert err.value.code == "E-VERSIONREQ-INVALID"


GRAMMAR = {
    "FMT-VREQ-1": (
        ["*", "x", "X", "1", ">=1, <2", ", ".join(["^1"] * 32)],
        ["", " ", "1 || 2", "1.0 - 2.0", "v1.0", ", ".join(["^1"] * 33), "1,", ",1", "1,,2"],
    ),
    "FMT-VREQ-2": (
        ["=1.2.3", ">1", ">=1.2", "<1.2.3", "<=0", "~1.2", "^0.0.1", "1.2.3", "0.0.0", "18446744073709551615.0.0"],
        ["==1", "=>1", "!1", "01", "1.02", "1.2.03", "18446744073709551616", "1.2.3.4", "a", "1.a"],
    ),
    "FMT-VREQ-3": (
        [" >=1", ">= 1", "1 , 2", "1 ,2", "1, 2 ", "   =   1.2.3   "],
        ["\t1", "1\n", ">=1.\u00a02", "1. 2", "1 .2", ">=\t1", "1\u3000"],
    ),
    "FMT-VREQ-4": (
        ["1.*", "1.2.x", "1.*.*", "1.X.X", ">=1.*", "<2.3.*", "~1.x"],
        ["*.1", "1.*.2", "*.*", "1.x.1", "x.1.2", "*, 1", "1, *"],
    ),
    "FMT-VREQ-5": (
        ["1.2.3-alpha.1", "1.2.3-0", "1.2.3-a-b.c", "1.2.3+build.5", "1.2.3-rc.1+b.01", ">=1.2.3-x+y"],
        ["1.2-alpha", "1-alpha", "1.2.3-", "1.2.3-a..b", "1.2.3-01", "1.2.3+", "1.2.3+a..b", "1.2.3-a_b", "1.2+b", "1.*-rc"],
    ),
}


@pytest.mark.parametrize(
    ("valid", "text"),
    [
        pytest.param(valid, text, marks=pytest.mark.spec(rid), id=f"{rid}-{'ok' if valid else 'bad'}-{text!r}")
        for rid, (good, bad) in GRAMMAR.items()
        for valid, texts in ((True, good), (False, bad))
        for text in texts
    ],
)
def test_grammar(valid: bool, text: str) -> None:
    if valid:
        VersionReq.parse(text)
    else:
        _invalid(text)


@pytest.mark.spec("FMT-VREQ-5")
def test_build_metadata_is_ignored() -> None:
    assert VersionReq.parse("=1.2.3+build") == VersionReq.parse("=1.2.3")
    assert VersionReq.parse("=1.2.3+build").matches("1.2.3+other")


# (requirement, matching versions, non-matching versions): the desugaring table of section 15
MATCHING = [
    ("=1.2.3", ["1.2.3", "1.2.3+b"], ["1.2.4", "1.2.3-rc"]),
    ("=1.2", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9"]),
    ("=1", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.9"]),
    (">1.2.3", ["1.2.4", "2.0.0"], ["1.2.3"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    (">1", ["2.0.0"], ["1.9.9"]),
    (">=1.2", ["1.2.0"], ["1.1.9"]),
    ("<1.2", ["1.1.9"], ["1.2.0"]),
    ("<=1.2", ["1.2.9"], ["1.3.0"]),
    ("<=1", ["1.9.9"], ["2.0.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("~1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("~1", ["1.0.0", "1.7.0"], ["2.0.0"]),
    ("^1.2.3", ["1.2.3", "1.9.0"], ["2.0.0", "1.2.2"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("^1.2", ["1.2.0", "1.9.9"], ["2.0.0"]),
    ("^0.2", ["0.2.0", "0.2.9"], ["0.3.0"]),
    ("^0.0", ["0.0.0", "0.0.9"], ["0.1.0"]),
    ("^1", ["1.0.0", "1.9.9"], ["2.0.0"]),
    ("1.2.3", ["1.5.0"], ["2.0.0"]),
    ("1.2.*", ["1.2.5"], ["1.3.0"]),
    ("1.*", ["1.5.0"], ["2.0.0"]),
    ("*", ["0.0.0", "99.0.0"], ["1.0.0-rc"]),
    (">=1.*", ["1.0.0", "5.0.0"], ["0.9.0"]),
    ("<2.3.*", ["2.2.9"], ["2.3.0"]),
    (">=1.0, <2.0", ["1.5.0"], ["2.0.0", "0.9.9"]),
]


@pytest.mark.spec("FMT-VREQ-6")
@pytest.mark.parametrize(("req", "yes", "no"), MATCHING)
def test_matching(req: str, yes: list[str], no: list[str]) -> None:
    parsed = VersionReq.parse(req)
    assert [v for v in yes if not parsed.matches(v)] == []
    assert [v for v in no if parsed.matches(v)] == []


@pytest.mark.spec("FMT-VREQ-7")
@pytest.mark.parametrize(
    ("req", "version", "expected"),
    [
        (">=2.0", "2.1.0-rc.1", False),  # no comparator with a pre-release on 2.1.0
        (">=2.1.0-rc.1", "2.1.0-rc.2", True),
        (">=2.1.0-rc.1", "2.1.0-rc.0", False),  # SemVer precedence
        (">=2.1.0-rc.1", "2.2.0-rc.1", False),  # another MAJOR.MINOR.PATCH
        (">=2.1.0-alpha, <3", "2.1.0-beta", True),
        (">=2.1.0-rc.10", "2.1.0-rc.9", False),  # numeric identifiers compare as numbers
        (">=2.1.0-rc.1", "2.1.0-rc.1+cu118", True),  # build metadata ignored
        ("*", "2.1.0-rc.1", False),
    ],
)
def test_prereleases(req: str, version: str, expected: bool) -> None:
    assert VersionReq.parse(req).matches(version) is expected


@pytest.mark.spec("FMT-VREQ-8")
@pytest.mark.parametrize(
    ("text", "normalised"),
    [(">= 2.0.0", ">=2.0.0"), ("2.0", "^2.0"), ("1.x", "1.*"), (">=1.*", ">=1"), ("X", "*"), ("1.2.3-rc+b", "^1.2.3-rc"),
     (" <2 ,>=1.0.0-a ", "<2, >=1.0.0-a"), ("1.2.X", "1.2.*"), ("=1.*.*", "=1")],  # fmt: skip
)
def test_normalised_form(text: str, normalised: str) -> None:
    assert str(VersionReq.parse(text)) == normalised
    assert str(VersionReq.parse(normalised)) == normalised
