"""Cargo-style version requirements, bit-for-bit compatible with Rust ``semver`` 1.0.20.

Carton stores ``runner.required_framework_version`` as the ``Display`` form of a Rust
``semver::VersionReq`` and selects a runner by ``VersionReq::matches(framework_version)``.  A
Python reader/writer therefore has to accept exactly the strings Rust accepts, print exactly what
Rust prints, and match exactly what Rust matches; otherwise a carton written by one side is
rejected, renormalised or bound to a different runner by the other.

What python-semver gives us and what it does not:

* Precedence of pre-release identifiers and the ``semver.Version`` value type come from
  python-semver (``Version.compare``).
* The *requirement* grammar (operators, partial versions, ``*``/``x``/``X`` wildcards, commas,
  space rules, the 32-comparator limit) and Cargo's matching rules are not python-semver's:
  ``semver.Version.match()`` implements a different, single-comparator language.  Parsing and
  evaluation are therefore a direct, line-by-line port of ``src/parse.rs`` and ``src/eval.rs``.
* Versions are also parsed by the port (``parse_version``) rather than ``Version.parse``,
  because Rust rejects numbers above ``u64::MAX`` and only accepts ASCII digits; python-semver
  accepts both.  The validated parts are then handed to ``semver.Version``.

Error messages are Rust's ``Display`` text (e.g. ``"unexpected character 'a' while parsing major
version number"``), prefixed with the offending input.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import semver

from .errors import CartonFormatError

__all__ = ["Op", "Comparator", "VersionReq", "parse_version", "MAX_COMPARATORS", "U64_MAX"]

U64_MAX = 2**64 - 1
MAX_COMPARATORS = 32  # parse.rs: a 33rd comparator is "excessive number of version comparators"

# Rust's ``Position`` names, used verbatim in error messages.
_MAJOR = "major version number"
_MINOR = "minor version number"
_PATCH = "patch version number"
_PRE = "pre-release identifier"
_BUILD = "build metadata"


class Op(str, Enum):
    """Comparator operator.  The value is the operator as written (``WILDCARD`` prints as ``I.*``)."""

    EXACT = "="
    GREATER = ">"
    GREATER_EQ = ">="
    LESS = "<"
    LESS_EQ = "<="
    TILDE = "~"
    CARET = "^"
    WILDCARD = "*"

    def __str__(self) -> str:
        return self.value


class _ParseError(Exception):
    """Internal: a Rust ``semver::Error``; the public functions wrap it in CartonFormatError."""


def _quoted_char(ch: str) -> str:
    r"""Rust's ``{:?}`` for a char: ``'a'``, ``'\0'``, ``'\n'``, ``'\u{301}'``.

    Exact for ASCII; for other non-printable characters Python's ``isprintable`` stands in for
    Rust's printability table, so the escaping of exotic characters may differ.
    """
    special = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", "'": "\\'"}
    if ch in special:
        return f"'{special[ch]}'"
    if ch.isprintable() and unicodedata.category(ch) not in ("Mn", "Me"):
        return f"'{ch}'"
    return "'\\u{%x}'" % ord(ch)


def _unexpected_char(pos: str, ch: str) -> _ParseError:
    return _ParseError(f"unexpected character {_quoted_char(ch)} while parsing {pos}")


def _unexpected_char_after(pos: str, ch: str) -> _ParseError:
    return _ParseError(f"unexpected character {_quoted_char(ch)} after {pos}")


_UNEXPECTED_AFTER_WILDCARD = "unexpected character after wildcard in version req"


# --- lexical helpers: each takes the remaining text and returns (value, rest), like parse.rs ---


def _numeric_identifier(text: str, pos: str) -> tuple[int, str]:
    """ASCII digits, no leading zero, at most u64::MAX (parse.rs ``numeric_identifier``)."""
    length = 0
    value = 0
    while length < len(text) and "0" <= text[length] <= "9":
        if value == 0 and length > 0:
            raise _ParseError(f"invalid leading zero in {pos}")
        value = value * 10 + (ord(text[length]) - 48)
        if value > U64_MAX:
            raise _ParseError(f"value of {pos} exceeds u64::MAX")
        length += 1
    if length > 0:
        return value, text[length:]
    if text:
        raise _unexpected_char(pos, text[0])
    raise _ParseError(f"unexpected end of input while parsing {pos}")


def _wildcard(text: str) -> tuple[str, str] | None:
    """``*``, ``x`` or ``X`` at the start of ``text``: (the char, rest)."""
    if text[:1] in ("*", "x", "X"):
        return text[0], text[1:]
    return None


def _dot(text: str, pos: str) -> str:
    if text.startswith("."):
        return text[1:]
    if text:
        raise _unexpected_char_after(pos, text[0])
    raise _ParseError(f"unexpected end of input while parsing {pos}")


def _is_ident_char(ch: str) -> bool:
    return ("A" <= ch <= "Z") or ("a" <= ch <= "z") or ("0" <= ch <= "9") or ch == "-"


def _identifier(text: str, pos: str) -> tuple[str, str]:
    """Dot-separated ``[0-9A-Za-z-]+`` segments (parse.rs ``identifier``).

    Returns ("", text) when nothing identifier-like starts here; the callers turn an empty
    identifier after ``-``/``+`` into "empty identifier segment".  Numeric pre-release segments
    may not have leading zeros; build metadata segments may.
    """
    accumulated = 0
    while True:
        start = accumulated
        end = start
        has_nondigit = False
        while end < len(text) and _is_ident_char(text[end]):
            has_nondigit = has_nondigit or not ("0" <= text[end] <= "9")
            end += 1
        boundary = text[end] if end < len(text) else None
        if end == start:
            if accumulated == 0 and boundary != ".":
                return "", text
            raise _ParseError(f"empty identifier segment in {pos}")
        if pos == _PRE and end - start > 1 and not has_nondigit and text[start] == "0":
            raise _ParseError(f"invalid leading zero in {pos}")
        if boundary == ".":
            accumulated = end + 1
        else:
            return text[:end], text[end:]


def _pre_and_build(text: str, pos: str) -> tuple[str, str, str, str]:
    """Optional ``-pre`` then ``+build`` after a full ``I.J.K``: (pre, build, rest, position)."""
    pre = build = ""
    if text.startswith("-"):
        pos = _PRE
        pre, text = _identifier(text[1:], _PRE)
        if not pre:
            raise _ParseError(f"empty identifier segment in {_PRE}")
    if text.startswith("+"):
        pos = _BUILD
        build, text = _identifier(text[1:], _BUILD)
        if not build:
            raise _ParseError(f"empty identifier segment in {_BUILD}")
    return pre, build, text, pos


def _cmp_pre(a: str, b: str) -> int:
    """Rust ``Prerelease`` ordering (empty = release = greatest), via python-semver precedence."""
    if a == b:
        return 0
    return semver.Version(0, 0, 0, a or None).compare(semver.Version(0, 0, 0, b or None))


def _shorten(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _invalid(message: str) -> CartonFormatError:
    return CartonFormatError("E-VERSIONREQ-INVALID", message)


# --- versions -------------------------------------------------------------------------------


def _parse_version(text: str) -> semver.Version:
    """Port of ``impl FromStr for Version``; raises _ParseError."""
    if not text:
        raise _ParseError("empty string, expected a semver version")
    major, text = _numeric_identifier(text, _MAJOR)
    text = _dot(text, _MAJOR)
    minor, text = _numeric_identifier(text, _MINOR)
    text = _dot(text, _MINOR)
    patch, text = _numeric_identifier(text, _PATCH)
    pre, build, text, pos = _pre_and_build(text, _PATCH)
    if text:
        raise _unexpected_char_after(pos, text[0])
    return semver.Version(major, minor, patch, pre or None, build or None)


def parse_version(text: str) -> semver.Version:
    """Parse a strict SemVer 2.0 version exactly like Rust ``Version::parse``.

    ``"2.13.0+cpu"`` is valid (build metadata kept on the value, ignored by matching).  Partial
    versions (``"2.0"``), a leading ``v``, spaces, leading zeros and numbers above u64::MAX raise
    ``CartonFormatError("E-ARG-INVALID")``.
    """
    if not isinstance(text, str):
        raise CartonFormatError("E-ARG-INVALID", f"a version must be a string, not {type(text).__name__}")
    try:
        return _parse_version(text)
    except _ParseError as exc:
        raise CartonFormatError("E-ARG-INVALID", f"invalid version {_shorten(text)}: {exc}") from None


def _coerce_version(version: str | semver.Version) -> semver.Version:
    """Accept a string or a python-semver Version; re-validate the latter with Rust's rules.

    python-semver lets a Version hold values Rust cannot represent (``prerelease="01"``, numbers
    above u64::MAX), so it is round-tripped through ``parse_version`` to stay within Rust's domain.
    """
    if isinstance(version, semver.Version):
        return parse_version(str(version))
    if isinstance(version, str):
        return parse_version(version)
    raise CartonFormatError(
        "E-ARG-INVALID", f"a version must be a string or semver.Version, not {type(version).__name__}"
    )


# --- comparators ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparator:
    """One comparator of a requirement, the fields of Rust ``semver::Comparator``.

    ``minor``/``patch`` are None for partial versions (``^1``, ``>=1.2``, ``1.*``).  ``pre`` is
    only allowed with a patch; build metadata is dropped at parse time as in Rust.  Invariants are
    checked on construction so that every value displays to a string that parses back to itself
    (Rust would happily display ``Comparator{op: Wildcard, patch: Some(3)}`` as ``1.2.3``).
    """

    op: Op
    major: int
    minor: int | None = None
    patch: int | None = None
    pre: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "op", Op(self.op))
        except ValueError:
            raise _invalid(f"unknown comparator operator {self.op!r}") from None
        for name in ("major", "minor", "patch"):
            value = getattr(self, name)
            if value is None and name != "major":
                continue
            if type(value) is not int or not 0 <= value <= U64_MAX:
                raise _invalid(f"{name} must be an integer in 0..=u64::MAX, not {value!r}")
        if self.patch is not None and self.minor is None:
            raise _invalid("a comparator with a patch number needs a minor number")
        if self.op is Op.WILDCARD and self.patch is not None:
            raise _invalid("a wildcard comparator cannot have a patch number")
        if not isinstance(self.pre, str):
            raise _invalid(f"pre must be a string, not {type(self.pre).__name__}")
        if self.pre:
            if self.patch is None:
                raise _invalid("a pre-release needs a full major.minor.patch")
            try:
                _pre, rest = _identifier(self.pre, _PRE)
                if rest:
                    raise _ParseError(f"unexpected character in {_PRE}")
            except _ParseError as exc:
                raise _invalid(f"invalid pre-release {_shorten(self.pre)}: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> Comparator:
        """Parse a single comparator like Rust ``Comparator::parse`` (no commas, no bare ``*``)."""
        if not isinstance(text, str):
            raise _invalid(f"a comparator must be a string, not {type(text).__name__}")
        try:
            comparator, pos, rest = _comparator(text.lstrip(" "))
            if rest:
                raise _unexpected_char_after(pos, rest[0])
        except _ParseError as exc:
            raise _invalid(f"invalid comparator {_shorten(text)}: {exc}") from None
        return comparator

    def matches(self, version: str | semver.Version) -> bool:
        """Rust ``Comparator::matches``: the comparator alone, with the pre-release rule."""
        ver = _coerce_version(version)
        return _matches_impl(self, ver) and (not ver.prerelease or _pre_is_compatible(self, ver))

    def __str__(self) -> str:
        """Rust ``Display``: ``^1.2``, ``>=1.2.3-rc.1``, ``1.*``, ``1.2.*``."""
        out = ("" if self.op is Op.WILDCARD else self.op.value) + str(self.major)
        if self.minor is not None:
            out += f".{self.minor}"
            if self.patch is not None:
                out += f".{self.patch}"
                if self.pre:
                    out += f"-{self.pre}"
            elif self.op is Op.WILDCARD:
                out += ".*"
        elif self.op is Op.WILDCARD:
            out += ".*"
        return out


_OPS = (  # longest first, as parse.rs ``op`` checks ">=" before ">"
    (">=", Op.GREATER_EQ),
    ("<=", Op.LESS_EQ),
    ("=", Op.EXACT),
    (">", Op.GREATER),
    ("<", Op.LESS),
    ("~", Op.TILDE),
    ("^", Op.CARET),
)


def _comparator(text: str) -> tuple[Comparator, str, str]:
    """Port of parse.rs ``comparator``: (comparator, last position parsed, rest after spaces)."""
    op, default_op = Op.CARET, True  # no operator means caret
    for symbol, candidate in _OPS:
        if text.startswith(symbol):
            op, default_op, text = candidate, False, text[len(symbol) :]
            break
    text = text.lstrip(" ")

    pos = _MAJOR
    major, text = _numeric_identifier(text, pos)
    minor = patch = None
    has_wildcard = False

    if text.startswith("."):
        pos = _MINOR
        text = text[1:]
        if (wild := _wildcard(text)) is not None:
            has_wildcard = True
            if default_op:
                op = Op.WILDCARD
            text = wild[1]
        else:
            minor, text = _numeric_identifier(text, pos)

    if text.startswith("."):
        pos = _PATCH
        text = text[1:]
        if (wild := _wildcard(text)) is not None:
            if default_op:
                op = Op.WILDCARD
            text = wild[1]
        elif has_wildcard:
            raise _ParseError(_UNEXPECTED_AFTER_WILDCARD)
        else:
            patch, text = _numeric_identifier(text, pos)

    pre = ""
    if patch is not None:
        pre, _build, text, pos = _pre_and_build(text, pos)  # build metadata is discarded, as in Rust

    return Comparator(op, major, minor, patch, pre), pos, text.lstrip(" ")


# --- evaluation: port of eval.rs ------------------------------------------------------------


def _matches_exact(cmp: Comparator, ver: semver.Version) -> bool:
    if ver.major != cmp.major:
        return False
    if cmp.minor is not None and ver.minor != cmp.minor:
        return False
    if cmp.patch is not None and ver.patch != cmp.patch:
        return False
    return _cmp_pre(ver.prerelease or "", cmp.pre) == 0


def _matches_greater(cmp: Comparator, ver: semver.Version) -> bool:
    if ver.major != cmp.major:
        return ver.major > cmp.major
    if cmp.minor is None:
        return False
    if ver.minor != cmp.minor:
        return ver.minor > cmp.minor
    if cmp.patch is None:
        return False
    if ver.patch != cmp.patch:
        return ver.patch > cmp.patch
    return _cmp_pre(ver.prerelease or "", cmp.pre) > 0


def _matches_less(cmp: Comparator, ver: semver.Version) -> bool:
    if ver.major != cmp.major:
        return ver.major < cmp.major
    if cmp.minor is None:
        return False
    if ver.minor != cmp.minor:
        return ver.minor < cmp.minor
    if cmp.patch is None:
        return False
    if ver.patch != cmp.patch:
        return ver.patch < cmp.patch
    return _cmp_pre(ver.prerelease or "", cmp.pre) < 0


def _matches_tilde(cmp: Comparator, ver: semver.Version) -> bool:
    if ver.major != cmp.major:
        return False
    if cmp.minor is not None and ver.minor != cmp.minor:
        return False
    if cmp.patch is not None and ver.patch != cmp.patch:
        return ver.patch > cmp.patch
    return _cmp_pre(ver.prerelease or "", cmp.pre) >= 0


def _matches_caret(cmp: Comparator, ver: semver.Version) -> bool:
    if ver.major != cmp.major:
        return False
    minor = cmp.minor
    if minor is None:
        return True
    patch = cmp.patch
    if patch is None:
        return ver.minor >= minor if cmp.major > 0 else ver.minor == minor
    if cmp.major > 0:
        if ver.minor != minor:
            return ver.minor > minor
        if ver.patch != patch:
            return ver.patch > patch
    elif minor > 0:
        if ver.minor != minor:
            return False
        if ver.patch != patch:
            return ver.patch > patch
    elif ver.minor != minor or ver.patch != patch:
        return False
    return _cmp_pre(ver.prerelease or "", cmp.pre) >= 0


def _matches_impl(cmp: Comparator, ver: semver.Version) -> bool:
    op = cmp.op
    if op is Op.EXACT or op is Op.WILDCARD:
        return _matches_exact(cmp, ver)
    if op is Op.GREATER:
        return _matches_greater(cmp, ver)
    if op is Op.GREATER_EQ:
        return _matches_exact(cmp, ver) or _matches_greater(cmp, ver)
    if op is Op.LESS:
        return _matches_less(cmp, ver)
    if op is Op.LESS_EQ:
        return _matches_exact(cmp, ver) or _matches_less(cmp, ver)
    if op is Op.TILDE:
        return _matches_tilde(cmp, ver)
    return _matches_caret(cmp, ver)


def _pre_is_compatible(cmp: Comparator, ver: semver.Version) -> bool:
    """A pre-release version may only match via a comparator on the same x.y.z with a pre-release."""
    return cmp.major == ver.major and cmp.minor == ver.minor and cmp.patch == ver.patch and bool(cmp.pre)


# --- requirements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionReq:
    """A comma-separated AND of comparators; no comparators (``*``) matches every release.

    Equality and hashing are structural over ``comparators``; because Comparator enforces its
    invariants, that is the same as comparing the normalised ``str()`` forms.
    """

    comparators: tuple[Comparator, ...] = ()

    STAR: ClassVar[VersionReq]

    def __post_init__(self) -> None:
        comparators = tuple(self.comparators)
        if not all(isinstance(c, Comparator) for c in comparators):
            raise _invalid("comparators must be Comparator instances")
        if len(comparators) > MAX_COMPARATORS:
            raise _invalid("excessive number of version comparators")
        object.__setattr__(self, "comparators", comparators)

    @classmethod
    def parse(cls, text: str) -> VersionReq:
        """Parse like Rust ``VersionReq::parse``; errors are ``CartonFormatError("E-VERSIONREQ-INVALID")``."""
        if not isinstance(text, str):
            raise _invalid(f"a version requirement must be a string, not {type(text).__name__}")
        try:
            return cls(_version_req(text))
        except _ParseError as exc:
            raise _invalid(f"invalid version requirement {_shorten(text)}: {exc}") from None

    def matches(self, version: str | semver.Version) -> bool:
        """Rust ``VersionReq::matches``: every comparator matches, plus the pre-release rule.

        A pre-release version (e.g. ``2.2.0-a0``) only matches if some comparator names the same
        ``major.minor.patch`` with a pre-release, so ``>=2.0`` does not pick up nightlies.  Build metadata (``+cpu``) is
        ignored.  A bad version string raises ``CartonFormatError("E-ARG-INVALID")``.
        """
        ver = _coerce_version(version)
        if not all(_matches_impl(cmp, ver) for cmp in self.comparators):
            return False
        return not ver.prerelease or any(_pre_is_compatible(cmp, ver) for cmp in self.comparators)

    def __str__(self) -> str:
        """Rust ``Display``: ``*`` for no comparators, else comparators joined by ``", "``."""
        return ", ".join(map(str, self.comparators)) if self.comparators else "*"

    def __repr__(self) -> str:
        return f"VersionReq({str(self)!r})"


VersionReq.STAR = VersionReq(())


def _version_req(text: str) -> tuple[Comparator, ...]:
    """Port of ``impl FromStr for VersionReq`` and the recursive ``version_req``.

    Only ASCII spaces are skipped (not tabs or newlines): before the requirement, after an
    operator, after a comparator and after a comma.  A lone ``*``/``x``/``X`` is the whole
    requirement or an error.
    """
    text = text.lstrip(" ")
    if (wild := _wildcard(text)) is not None:
        ch, rest = wild
        rest = rest.lstrip(" ")
        if not rest:
            return ()
        if rest.startswith(","):
            raise _ParseError(f"wildcard req ({ch}) must be the only comparator in the version req")
        raise _ParseError(_UNEXPECTED_AFTER_WILDCARD)

    comparators: list[Comparator] = []
    while True:
        try:
            comparator, pos, rest = _comparator(text)
        except _ParseError:
            if (wild := _wildcard(text)) is not None:
                after = wild[1].lstrip(" ")
                if not after or after.startswith(","):
                    raise _ParseError(
                        f"wildcard req ({wild[0]}) must be the only comparator in the version req"
                    ) from None
            raise
        comparators.append(comparator)
        if not rest:
            return tuple(comparators)
        if not rest.startswith(","):
            raise _ParseError(f"expected comma after {pos}, found {_quoted_char(rest[0])}")
        text = rest[1:].lstrip(" ")
        if len(comparators) == MAX_COMPARATORS:
            raise _ParseError("excessive number of version comparators")
