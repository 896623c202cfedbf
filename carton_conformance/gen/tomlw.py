"""A tiny deterministic TOML writer for the generator (case.toml files and archive documents).

Independent of tomli_w so that the committed bytes never change with a library upgrade.  It writes
only what the original's parser (toml-rs 0.5) reads: basic strings, integers, floats, booleans,
inline arrays and tables, ``[table]`` and ``[[array]]`` headers.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(k: str) -> str:
    return k if _BARE.match(k) else string(k)


def string(s: str) -> str:
    # JSON escapes (\" \\ \n \t \uXXXX ...) are all valid TOML basic-string escapes; DEL must be escaped too.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, Raw):
        return v.text
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


class Raw:
    """A value written verbatim (dates, malformed values for negative cases)."""

    def __init__(self, text: str):
        self.text = text


def _is_table(v: Any) -> bool:
    return isinstance(v, dict) and not isinstance(v, Inline)


def _is_array_of_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_is_table(x) for x in v)


class Inline(dict):
    """A dict written as an inline table instead of a [table] section."""


def dumps(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    _emit(lines, [], doc)
    text = "\n".join(lines).lstrip("\n")
    return text + "\n" if text else ""


def _emit(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    for k, v in table.items():
        if not _is_table(v) and not _is_array_of_tables(v):
            lines.append(f"{key(k)} = {value(v)}")
    for k, v in table.items():
        dotted = ".".join(key(p) for p in [*path, k])
        if _is_table(v):
            lines.append("")
            lines.append(f"[{dotted}]")
            _emit(lines, [*path, k], v)
        elif _is_array_of_tables(v):
            for item in v:
                lines.append("")
                lines.append(f"[[{dotted}]]")
                _emit(lines, [*path, k], item)

__all__ = [
    "Inline",
    "Raw",
    "dumps",
    "key",
    "string",
    "value",
]
