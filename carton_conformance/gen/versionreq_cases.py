"""``versionreq`` cases: a requirement and a version -> match, no match, or invalid requirement.

Ground truth is the Rust crate semver 1.0.20 (the original's VersionReq): most pairs come from
its own tests (tests/test_version_req.rs), the rest from the desugaring table of spec section 15.
"""

from __future__ import annotations

import re

from .registry import Case, Registry

# (requirement, normalised form or None, versions that match, versions that do not)
MATCHES: list[tuple[str, str | None, list[str], list[str], list[str]]] = [
    # semver tests/test_version_req.rs
    ("1.0.0", "^1.0.0", ["1.0.0", "1.1.0"], ["0.9.9", "1.0.0-pre"], ["FMT-VREQ-6", "FMT-VREQ-7"]),
    ("=1.0.0", "=1.0.0", ["1.0.0"], ["1.0.1", "1.0.0-pre"], ["FMT-VREQ-6"]),
    ("=0.1.0-beta2.a", "=0.1.0-beta2.a", ["0.1.0-beta2.a"], ["0.1.0", "0.1.0-beta2"], ["FMT-VREQ-5", "FMT-VREQ-7"]),
    ("=0.1.0+meta", "=0.1.0", ["0.1.0", "0.1.0+any"], [], ["FMT-VREQ-5", "FMT-VREQ-7"]),
    (">= 1.0.0", ">=1.0.0", ["1.0.0", "2.0.0"], ["0.1.0", "2.0.0-pre"], ["FMT-VREQ-3", "FMT-VREQ-7"]),
    (">= 2.1.0-alpha2", ">=2.1.0-alpha2", ["2.1.0-alpha3", "3.0.0"], ["2.1.0-alpha1", "3.0.0-alpha2"], ["FMT-VREQ-7"]),
    ("< 1.0.0", "<1.0.0", ["0.1.0"], ["1.0.0", "0.9.9-alpha"], ["FMT-VREQ-6", "FMT-VREQ-7"]),
    ("<= 2.1.0-alpha2", "<=2.1.0-alpha2", ["2.1.0-alpha1", "2.0.0"], ["2.1.0", "2.0.0-alpha2"], ["FMT-VREQ-7"]),
    (">1.0.0-alpha, <1.0.0", ">1.0.0-alpha, <1.0.0", ["1.0.0-beta"], [], ["FMT-VREQ-7"]),
    (">1.0.0-alpha, <1.0", ">1.0.0-alpha, <1.0", [], ["1.0.0-beta"], ["FMT-VREQ-7"]),
    ("> 0.0.9, <= 2.5.3", ">0.0.9, <=2.5.3", ["0.0.10", "2.5.3"], ["0.0.8", "2.5.4"], ["FMT-VREQ-1", "FMT-VREQ-6"]),
    ("0.3.0, 0.4.0", "^0.3.0, ^0.4.0", [], ["0.3.0", "0.4.0"], ["FMT-VREQ-6"]),
    (">=0.5.1-alpha3, <0.6", ">=0.5.1-alpha3, <0.6", ["0.5.1-beta", "0.5.5"], ["0.5.2-alpha3", "0.6.0"], ["FMT-VREQ-7"]),
    ("~1", None, ["1.0.0", "1.1.1"], ["2.9.0", "0.9.1"], ["FMT-VREQ-6"]),
    ("~1.2", None, ["1.2.1"], ["1.3.0", "1.1.1"], ["FMT-VREQ-6"]),
    ("~1.2.2", None, ["1.2.4"], ["1.2.1", "1.9.0"], ["FMT-VREQ-6"]),
    ("~1.2.3-beta.2", None, ["1.2.3-beta.4", "1.2.4"], ["1.2.3-beta.1", "1.2.4-beta.2"], ["FMT-VREQ-7"]),
    ("^1", None, ["1.1.2"], ["2.9.0", "1.0.1-pre"], ["FMT-VREQ-6"]),
    ("^1.1", None, ["1.2.1"], ["1.0.1"], ["FMT-VREQ-6"]),
    ("^1.1.2", None, ["1.1.4", "1.2.1"], ["1.1.1", "1.1.3-alpha1"], ["FMT-VREQ-6"]),
    ("^0.1.2", None, ["0.1.4"], ["0.2.0-pre", "0.1.2-beta"], ["FMT-VREQ-6"]),
    ("^0.5.1-alpha3", None, ["0.5.1-alpha4", "0.5.5"], ["0.5.2-alpha3", "0.6.0"], ["FMT-VREQ-7"]),
    ("^0.0.2", None, ["0.0.2"], ["0.0.3"], ["FMT-VREQ-6"]),
    ("^0.0", None, ["0.0.2"], ["0.1.4"], ["FMT-VREQ-6"]),
    ("^0", None, ["0.9.1"], ["1.1.1"], ["FMT-VREQ-6"]),
    ("^1.4.2-beta.5", None, ["1.4.2-c", "1.4.3"], ["1.4.2-beta.4", "1.4.3-beta.5"], ["FMT-VREQ-7"]),
    ("*", "*", ["0.0.9", "2.9.0"], ["1.0.0-pre"], ["FMT-VREQ-1", "FMT-VREQ-6", "FMT-VREQ-8"]),
    ("x", "*", ["1.0.1"], [], ["FMT-VREQ-1", "FMT-VREQ-8"]),
    ("X", "*", ["1.0.1"], [], ["FMT-VREQ-1", "FMT-VREQ-8"]),
    ("1.*", "1.*", ["1.3.0"], ["0.0.9", "1.2.0-pre"], ["FMT-VREQ-4"]),
    ("1.x", "1.*", ["1.2.0"], ["2.0.0"], ["FMT-VREQ-4", "FMT-VREQ-8"]),
    ("1.*.*", "1.*", ["1.2.0"], ["2.0.0"], ["FMT-VREQ-4", "FMT-VREQ-8"]),
    ("1.2.*", "1.2.*", ["1.2.4"], ["1.3.0", "1.2.2-pre"], ["FMT-VREQ-4"]),
    ("1.2.X", "1.2.*", ["1.2.0"], ["1.3.0"], ["FMT-VREQ-4", "FMT-VREQ-8"]),
    ("0.*.*", "0.*", ["0.5.0"], [], ["FMT-VREQ-4", "FMT-VREQ-8"]),
    ("=2.1.1-really.0", None, ["2.1.1-really.0"], [], ["FMT-VREQ-5"]),
    # spec section 15 desugaring table
    ("=1.2", "=1.2", ["1.2.9"], ["1.3.0"], ["FMT-VREQ-6"]),
    ("=1", "=1", ["1.9.9"], ["2.0.0"], ["FMT-VREQ-6"]),
    (">1.2.3", ">1.2.3", ["1.2.4"], ["1.2.3"], ["FMT-VREQ-6"]),
    (">1.2", ">1.2", ["1.3.0"], ["1.2.9"], ["FMT-VREQ-6"]),
    (">1", ">1", ["2.0.0"], ["1.9.9"], ["FMT-VREQ-6"]),
    (">=1.2", ">=1.2", ["1.2.0"], ["1.1.9"], ["FMT-VREQ-6"]),
    ("<1.2", "<1.2", ["1.1.9"], ["1.2.0"], ["FMT-VREQ-6"]),
    ("<=1.2", "<=1.2", ["1.2.9"], ["1.3.0"], ["FMT-VREQ-6"]),
    ("<=1", "<=1", ["1.9.9"], ["2.0.0"], ["FMT-VREQ-6"]),
    ("~1.2.3", "~1.2.3", ["1.2.9"], ["1.3.0", "1.2.2"], ["FMT-VREQ-6"]),
    ("^0.0.3", "^0.0.3", ["0.0.3"], ["0.0.4"], ["FMT-VREQ-6"]),
    ("2.0", "^2.0", ["2.13.0"], ["3.0.0"], ["FMT-VREQ-6", "FMT-VREQ-8"]),
    (">=1.*", ">=1", ["1.0.0"], ["0.9.0"], ["FMT-VREQ-4", "FMT-VREQ-8"]),
    ("<2.3.*", "<2.3", ["2.2.9"], ["2.3.0"], ["FMT-VREQ-4", "FMT-VREQ-8"]),
    ("=2.13", "=2.13", ["2.13.0", "2.13.1+cpu"], ["2.14.0", "2.13.0-rc1"], ["FMT-VREQ-6", "FMT-VREQ-7"]),
    (">=2.0.0, <3", ">=2.0.0, <3", ["2.1.0+cu118"], ["3.0.0"], ["FMT-VREQ-6", "FMT-VREQ-7"]),
    ("  >=1.0.0 , <2  ", ">=1.0.0, <2", ["1.5.0"], [], ["FMT-VREQ-3", "FMT-VREQ-8"]),
    ("18446744073709551615", "^18446744073709551615", ["18446744073709551615.0.0"], [], ["FMT-VREQ-2"]),
    ("^1.2.3+build.7", "^1.2.3", ["1.2.3"], [], ["FMT-VREQ-5", "FMT-VREQ-8"]),
    ("1.2.3-0a.x-y", "^1.2.3-0a.x-y", ["1.2.3-0a.x-y"], [], ["FMT-VREQ-5"]),
    (", ".join(f">={i}" for i in range(32)), None, ["31.0.0"], ["30.0.0"], ["FMT-VREQ-1"]),
]

# (name, requirement, requirement ids)
INVALID: list[tuple[str, str, list[str]]] = [
    ("empty", "", ["FMT-VREQ-1"]),
    ("trailing-comma", "> 0.1.0,", ["FMT-VREQ-1"]),
    ("empty-comparator", "> 0.3.0, ,", ["FMT-VREQ-1"]),
    ("hyphen-range", "1.2.3 - 2.3.4", ["FMT-VREQ-1"]),
    ("logical-or", "=1.2.3 || =2.3.4", ["FMT-VREQ-1"]),
    ("space-separated-comparators", "> 0.0.9 <= 2.5.3", ["FMT-VREQ-1"]),
    ("33-comparators", ", ".join(f">={i}" for i in range(33)), ["FMT-VREQ-1"]),
    ("v-prefix", "v1.2.3", ["FMT-VREQ-1"]),
    ("wildcard-then-comparator", "*, 0.20.0-any", ["FMT-VREQ-1", "FMT-VREQ-4"]),
    ("comparator-then-wildcard", "0.20.0-any, *", ["FMT-VREQ-1", "FMT-VREQ-4"]),
    ("nul", "\0", ["FMT-VREQ-2"]),
    ("operator-twice", ">= >= 0.0.2", ["FMT-VREQ-2"]),
    ("operator-ge-eq", ">== 0.0.2", ["FMT-VREQ-2"]),
    ("operator-eq-gt", "=>1.0", ["FMT-VREQ-2"]),
    ("operator-eq-eq", "==1.0", ["FMT-VREQ-2"]),
    ("letters", "a.0.0", ["FMT-VREQ-2"]),
    ("operator-alone", ">=", ["FMT-VREQ-2"]),
    ("leading-zero-major", "01.2.3", ["FMT-VREQ-2"]),
    ("leading-zero-minor", "1.02", ["FMT-VREQ-2"]),
    ("major-overflow", "18446744073709551616", ["FMT-VREQ-2"]),
    ("missing-minor", "1.", ["FMT-VREQ-2"]),
    ("four-parts", "1.2.3.4", ["FMT-VREQ-2"]),
    ("negative", "-1", ["FMT-VREQ-2"]),
    ("leading-tab", "\t1.0", ["FMT-VREQ-3"]),
    ("trailing-newline", "1.0\n", ["FMT-VREQ-3"]),
    ("space-inside-version", "1. 0", ["FMT-VREQ-3"]),
    ("no-break-space", ">=1.0,\u00a0<2", ["FMT-VREQ-3"]),
    ("wildcard-major-then-number", "*.1", ["FMT-VREQ-4"]),
    ("wildcard-minor-then-number", "1.*.1", ["FMT-VREQ-4"]),
    ("operator-wildcard-minor-then-number", ">=1.*.1", ["FMT-VREQ-4"]),
    ("wildcard-then-dot", "1.*.", ["FMT-VREQ-4"]),
    ("empty-pre-release", "1.0.0-", ["FMT-VREQ-5"]),
    ("pre-release-leading-zero", "1.2.3-01", ["FMT-VREQ-5"]),
    ("build-empty-identifier", "1.2.3+4.", ["FMT-VREQ-5"]),
    ("build-non-ascii", "1.2.3+4\u00ff", ["FMT-VREQ-5"]),
    ("pre-release-after-minor", "1.2-beta", ["FMT-VREQ-5"]),
    ("pre-release-empty-identifier", "1.2.3-a..b", ["FMT-VREQ-5"]),
]

_OPS = [(">=", "ge"), ("<=", "le"), (">", "gt"), ("<", "lt"), ("=", "eq"), ("~", "tilde"), ("^", "caret"), ("*", "star")]


def slug(text: str) -> str:
    s = re.sub(r"[A-Z]", lambda m: f"-up-{m.group(0).lower()}-", text).replace("+", "-plus-")
    for op, word in _OPS:
        s = s.replace(op, f"-{word}-")
    s = re.sub(r"[^A-Za-z0-9.]+", "-", s).strip("-").lower()
    s = re.sub(r"-+", "-", s)
    return s[:60].rstrip("-.") or "empty"


def generate(reg: Registry) -> None:
    used: set[str] = set()

    def unique(base: str) -> str:
        name, k = base, 2
        while name in used:
            name = f"{base}-{k}"
            k += 1
        used.add(name)
        return name

    for req, normalised, yes, no, reqs in MATCHES:
        for version, result in [*((v, "match") for v in yes), *((v, "nomatch") for v in no)]:
            name = unique(f"{result}/{slug(req)}--{slug(version)}")
            expect = {"result": result}
            if normalised is not None:
                expect["normalized"] = normalised
            verb = "matches" if result == "match" else "does not match"
            reg.add(Case(f"versionreq/{name}", "versionreq", f"{version!r} {verb} the requirement {req!r}.", reqs, expect,
                         fields={"requirement": req, "version": version}))
    for name, req, reqs in INVALID:
        name = unique(f"invalid/{name}")
        reg.add(Case(f"versionreq/{name}", "versionreq", f"{req!r} is not a valid requirement.", reqs,
                     {"result": "invalid", "categories": ["versionreq"], "codes": ["E-VERSIONREQ-INVALID"]},
                     fields={"requirement": req, "version": "1.0.0"}))

__all__ = [
    "INVALID",
    "MATCHES",
    "generate",
    "slug",
]
