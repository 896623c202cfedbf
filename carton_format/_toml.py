"""Bounded TOML parsing and deterministic TOML writing.

Parsing untrusted TOML is capped *before* the parser runs: documents larger than the byte limit
are refused, and a cheap pre-scan refuses pathological key dotting and nesting, which make pure
Python TOML parsers super-linear (see shared/reference/archive-security.md, 2.6).  Writing uses
tomli-w, whose output (tables as ``[a.b]`` headers, arrays of tables, no dotted keys) is accepted
by the original's toml 0.5 parser.
"""

from __future__ import annotations

import re
from typing import Any

import tomli
import tomli_w

from .errors import CartonFormatError
from .limits import DEFAULT_LIMITS, Limits

# Strings and comments, so that brackets and dots inside them do not count.  Every alternative
# matches at its opening quote whether or not the string is terminated (it then ends at the line
# end or the end of the data), and quantifiers are possessive: the scan is linear on any input,
# where a plain "re-try at the next quote" scan is quadratic on inputs like `"\"\"\"...`.
# Multi-line strings may end with up to two extra quotes (`""""` closes after a content quote).
_STRING_OR_COMMENT = re.compile(
    rb'"""(?:[^"\\]|\\.?|"(?!""))*+(?:"{3,5}|\Z)'
    rb"|'''(?:[^']|'(?!''))*+(?:'{3,5}|\Z)"
    rb'|"(?:[^"\\\n]|\\.?)*+(?:"|(?=\n)|\Z)'
    rb"|'[^'\n]*+(?:'|(?=\n)|\Z)"
    rb"|#[^\n]*+",
    re.S,
)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DOTTED_RUNS: dict[int, re.Pattern[bytes]] = {}


def _skeleton(data: bytes) -> bytes:
    """The document with every string replaced by ``s`` and every comment removed."""
    return _STRING_OR_COMMENT.sub(lambda m: b"" if m.group().startswith(b"#") else b"s", data)


def _prescan(data: bytes, member: str, limits: Limits) -> None:
    """Refuse documents whose bracket nesting or key dotting exceeds the limits.

    Runs at regex speed over the whole document (the Python loop only sees brackets), so it
    costs a fraction of the parse it protects; it only needs to be conservative: a broken
    document may over-count, the real parser still validates everything.
    """
    skeleton = _skeleton(data)
    depth = max_depth = 0
    for byte in skeleton.translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > max_depth:
                max_depth = depth
                if max_depth > limits.max_toml_nesting:
                    raise CartonFormatError(
                        "E-LIMIT-TOML-NESTING",
                        f"arrays/tables nest more than {limits.max_toml_nesting} levels deep",
                        member=member,
                    )
        elif depth:
            depth -= 1
    parts = limits.max_toml_key_parts
    if parts not in _DOTTED_RUNS:
        _DOTTED_RUNS[parts] = re.compile(rb"(?:[A-Za-z0-9_-]+[ \t]*\.[ \t]*){%d,}" % parts)
    if _DOTTED_RUNS[parts].search(skeleton):
        raise CartonFormatError("E-LIMIT-TOML-NESTING", f"a dotted key has more than {parts} parts", member=member)


def parse_toml(data: bytes, member: str, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Parse an untrusted TOML document into plain Python values.

    Errors: E-LIMIT-TOML-SIZE, E-LIMIT-TOML-NESTING, E-TOML-SYNTAX (including invalid UTF-8, a
    byte-order mark and duplicate keys).
    """
    if len(data) > limits.max_toml_bytes:
        raise CartonFormatError(
            "E-LIMIT-TOML-SIZE",
            f"is {len(data)} bytes, more than the limit of {limits.max_toml_bytes}",
            member=member,
        )
    if data.startswith(b"\xef\xbb\xbf"):
        raise CartonFormatError("E-TOML-SYNTAX", "starts with a byte-order mark", member=member)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CartonFormatError(
            "E-TOML-SYNTAX", f"is not valid UTF-8 (byte {exc.start})", member=member
        ) from None
    _prescan(data, member, limits)
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise CartonFormatError("E-TOML-SYNTAX", str(exc), member=member) from None
    except RecursionError:
        raise CartonFormatError(
            "E-LIMIT-TOML-NESTING", "nests too deeply to parse", member=member
        ) from None
    except (ValueError, OverflowError) as exc:  # e.g. absurd dates tomli cannot represent
        raise CartonFormatError("E-TOML-SYNTAX", str(exc), member=member) from None


def dump_toml(document: dict[str, Any]) -> bytes:
    """Serialise a document deterministically as UTF-8 TOML.

    Within each table the plain values come first, then sub-tables and arrays of tables, each in
    the given key order.  Arrays of tables are always written with ``[[name]]`` headers (as the
    original's serializer does): tomli-w would inline the short ones, which moves them before
    every table and makes the layout depend on value lengths.  Values are formatted by tomli-w.
    """
    return _table_text(document, "").encode("utf-8")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _value(key)


def _value(value: Any) -> str:
    return tomli_w.dumps({"k": value}, multiline_strings=False)[len("k = ") : -1]


def _table_text(table: dict[str, Any], name: str) -> str:
    literals = "".join(
        f"{_key(k)} = {_value(v)}\n" for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)
    )
    blocks = [literals] if literals else []
    for k, v in table.items():
        full = f"{name}.{_key(k)}" if name else _key(k)
        if isinstance(v, dict):
            blocks.append(f"[{full}]\n" + _table_text(v, full))
        elif _is_table_array(v):
            blocks += [f"[[{full}]]\n" + _table_text(item, full) for item in v]
    return "\n".join(blocks)

__all__ = ["dump_toml", "parse_toml"]
