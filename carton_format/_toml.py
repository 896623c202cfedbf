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

import numpy as np
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


#: Bytes per regex pass of the skeleton scan: re.sub keeps ~170 bytes per match until it joins
#: its pieces, so a whole document of tiny strings would cost ~85x its size; 64 KiB at a time
#: costs a few MiB whatever the document.
_SCAN_CHUNK = 1 << 16
_NUL_TO_S = bytes.maketrans(b"\0", b"s")


class _TooManyTokens(Exception):
    def __init__(self, count: int) -> None:
        self.count = count


def _scan_end(data: bytes, pos: int) -> int:
    """Where the chunk starting at ``pos`` ends: just after its last newline (outside strings
    and comments but for multi-line strings), else after its last comma (outside strings in
    an array of them), else at the chunk size.  Only a guess: _skeleton checks it."""
    if len(data) - pos <= _SCAN_CHUNK:
        return len(data)
    for separator in (b"\n", b","):
        found = data.rfind(separator, pos, pos + _SCAN_CHUNK)
        if found > pos:
            return found + 1
    return pos + _SCAN_CHUNK


def _skeleton(data: bytes, max_tokens: int | None = None) -> bytes:
    """The document with every string and every comment replaced by ``s``.

    A constant replacement keeps the scan in C (a callback per match costs more than the parse
    it protects: ~0.7 s per million strings).  A comment becoming ``s`` changes no count: it
    holds no bracket, and it ends at a newline, which ends any dotted key before it.  The scan
    goes chunk by chunk (memory: the skeleton, at most the document's size, plus a few MiB);
    a chunk whose last token may go on past its end is cut before that token, which starts
    outside every token, so every chunk is tokenised as the whole document is.

    With ``max_tokens``, raises ``_TooManyTokens`` as soon as the document has more tokens
    than that (strings, comments, commas, equals signs, opening brackets), before the rest is
    scanned.
    """
    pieces = []
    tokens = 0
    pos, size = 0, len(data)
    while pos < size:
        end = _scan_end(data, pos)
        out, count = _STRING_OR_COMMENT.subn(b"\0", data[pos:end])
        if end < size and out.endswith(b"\0"):  # the last token may be cut (or the document has a NUL)
            last = None
            for last in _STRING_OR_COMMENT.finditer(data, pos, end):  # noqa: B007 - only the last one is needed
                pass
            if last is not None and last.end() == end:
                if last.start() > pos:
                    end = last.start()
                    out, count = _STRING_OR_COMMENT.subn(b"\0", data[pos:end])
                else:  # one token from pos past the chunk: take it whole
                    whole = _STRING_OR_COMMENT.match(data, pos)
                    end = whole.end() if whole else end
                    out, count = b"\0", 1
        if max_tokens is not None:
            tokens += count + out.count(b",") + out.count(b"=") + out.count(b"[")
            if tokens > max_tokens:
                raise _TooManyTokens(tokens)
        pieces.append(out)
        pos = end
    return b"".join(pieces).translate(_NUL_TO_S)


_DEPTH_CHUNK = 1 << 18
#: Up to this many brackets the walk is a Python loop (a few microseconds), beyond it numpy.
_DEPTH_LOOP_MAX = 512


def _max_depth(brackets: bytes) -> int:
    """The deepest nesting of a sequence of ``[{`` (openers) and ``]}`` (closers), where a
    closer at depth 0 is ignored (the document is broken; the parser will say so).

    That walk, clamped at 0, is the unclamped running sum minus its running minimum (taken
    with 0), so numpy computes it in chunks: ~50x faster than a Python loop over millions of
    ``[[input]]`` brackets, in bounded memory.
    """
    if len(brackets) <= _DEPTH_LOOP_MAX:  # a usual document: a loop costs less than numpy's set-up
        best = level = 0
        for byte in brackets:
            if byte & 2:  # [ or {
                level += 1
                best = max(best, level)
            elif level:
                level -= 1
        return best
    best = level = low = 0
    for start in range(0, len(brackets), _DEPTH_CHUNK):
        chunk = np.frombuffer(brackets, np.uint8, count=min(_DEPTH_CHUNK, len(brackets) - start), offset=start)
        steps = ((chunk >> 1) & 1).astype(np.int64) * 2 - 1  # [ 0x5B and { 0x7B have bit 1 set, ] and } not
        running = np.cumsum(steps) + level
        lows = np.minimum(np.minimum.accumulate(running), low)
        best = max(best, int((running - lows).max()))
        level, low = int(running[-1]), int(lows[-1])
    return best


def _prescan(data: bytes, member: str, limits: Limits, max_values: int | None = None, values_code: str = "E-LIMIT-TENSOR") -> None:
    """Refuse documents whose bracket nesting or key dotting exceeds the limits, or (with
    ``max_values``) that hold more values than that.

    Runs at regex speed over the whole document (the Python loop only sees brackets), so it
    costs a fraction of the parse it protects; it only needs to be conservative: a broken
    document may over-count, the real parser still validates everything.  ``max_values`` is
    checked on tokens, as the scan goes: strings, comments, and commas, equals signs and
    opening brackets outside them (an array of N strings has about 2N of them), at most
    2 x ``max_values`` + 8, so a file of a hundred million commas is refused after a few.
    """
    try:
        skeleton = _skeleton(data, None if max_values is None else 2 * max_values + 8)
    except _TooManyTokens as exc:
        raise CartonFormatError(
            values_code, f"holds more than {max_values} values ({exc.count}+ tokens, counted before parsing)", member=member
        ) from None
    if _max_depth(skeleton.translate(None, _NOT_BRACKETS)) > limits.max_toml_nesting:
        raise CartonFormatError(
            "E-LIMIT-TOML-NESTING",
            f"arrays/tables nest more than {limits.max_toml_nesting} levels deep",
            member=member,
        )
    parts = limits.max_toml_key_parts
    if parts not in _DOTTED_RUNS:
        # Linear: with blanks removed (a conservative over-count: words joined by blanks alone
        # become one part, and only where the document is broken), a run of parts is tried once,
        # from its first part (never after a word character or a dot), each part atomically.  A
        # backtracking search from every character of a long key was quadratic: a 40 KB key
        # took 13 s, a 1 MiB one hours.
        _DOTTED_RUNS[parts] = re.compile(rb"(?<![A-Za-z0-9_.-])(?:[A-Za-z0-9_-]++\.){%d}" % parts)
    if _DOTTED_RUNS[parts].search(skeleton.translate(None, b" \t")):
        raise CartonFormatError("E-LIMIT-TOML-NESTING", f"a dotted key has more than {parts} parts", member=member)


def parse_toml(
    data: bytes, member: str, limits: Limits = DEFAULT_LIMITS, *, max_values: int | None = None, values_code: str = "E-LIMIT-TENSOR"
) -> dict[str, Any]:
    """Parse an untrusted TOML document into plain Python values.

    Errors: E-LIMIT-TOML-SIZE, E-LIMIT-TOML-NESTING, E-TOML-SYNTAX (including invalid UTF-8, a
    byte-order mark and duplicate keys); ``values_code`` when ``max_values`` is given and the
    document holds more values than that (counted before parsing, see ``_prescan``).
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
    _prescan(data, member, limits, max_values, values_code)
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
