"""Member-name safety: the one place that decides whether an archive path is acceptable.

Every layer (zip reader, zip writer, MANIFEST, LINKS, references) calls :func:`check_member_path`
so that a traversal trick rejected in one place cannot slip through another (the ONNX lesson:
three CVEs from three slightly different path checks).
"""

from __future__ import annotations

import re
import unicodedata

from .errors import CartonFormatError
from .limits import DEFAULT_LIMITS, Limits

# U+0000-U+001F and U+007F: invisible, truncate names in some tools (NUL) or break terminals.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f]")
_DRIVE_RE = re.compile("^[A-Za-z]:")
_WINDOWS_FORBIDDEN = frozenset(':<>"|?*')
# Windows also treats the superscript digits as COM/LPT port numbers.
_PORT_DIGITS = "123456789\u00b9\u00b2\u00b3"
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{d}" for d in _PORT_DIGITS]
    + [f"LPT{d}" for d in _PORT_DIGITS]
)


def _unsafe(name: str, why: str) -> CartonFormatError:
    return CartonFormatError("E-PATH-UNSAFE", f"unsafe member path {name!r}: {why}", member=name)


def check_member_path(name: str, limits: Limits = DEFAULT_LIMITS, *, is_dir: bool = False) -> None:
    """Raise ``E-PATH-UNSAFE`` / ``E-LIMIT-PATH-LENGTH`` unless ``name`` is a safe relative path.

    Rejects rather than rewrites: silently "fixing" a name (as CPython's extractor does) hides the
    attack from the person validating the archive.  ``is_dir`` allows exactly one trailing ``/``.
    """
    if not isinstance(name, str) or not name:
        raise _unsafe(str(name), "empty name")
    if _CONTROL_RE.search(name):
        raise _unsafe(name, "contains a NUL or control character")
    if "\\" in name:
        raise _unsafe(name, "contains a backslash")
    if name.startswith("/"):
        raise _unsafe(name, "absolute path")
    if _DRIVE_RE.match(name):
        raise _unsafe(name, "starts with a drive letter")
    try:
        encoded_len = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise _unsafe(name, "not encodable as UTF-8 (lone surrogate)") from None
    body = name
    if is_dir:
        if not name.endswith("/"):
            raise _unsafe(name, "directory name does not end with '/'")
        body = name[:-1]
    parts = body.split("/")
    for part in parts:
        if part == "":
            raise _unsafe(name, "has an empty path component")
        if part in (".", ".."):
            raise _unsafe(name, f"has a {part!r} path component")
    if encoded_len > limits.max_path_bytes:
        raise CartonFormatError(
            "E-LIMIT-PATH-LENGTH",
            f"member path is {encoded_len} bytes long (limit {limits.max_path_bytes})",
            member=name,
        )
    if len(parts) > limits.max_path_depth:
        raise CartonFormatError(
            "E-LIMIT-PATH-LENGTH",
            f"member path is {len(parts)} components deep (limit {limits.max_path_depth})",
            member=name,
        )


def portability_problem(name: str) -> str | None:
    """Why ``name`` cannot be extracted on every OS (Windows is the strict one), or None.

    Used for the ``W-PATH-NONPORTABLE`` warning: such names are legal in the archive.
    """
    for part in name.rstrip("/").split("/"):
        if not part:
            continue
        bad = sorted(set(part) & _WINDOWS_FORBIDDEN)
        if bad:
            return f"component {part!r} contains {''.join(bad)!r}, which Windows forbids"
        if part[-1] in ". ":
            return f"component {part!r} ends with a dot or space, which Windows strips"
        stem = part.split(".", 1)[0].rstrip(" ").upper()
        if stem in _WINDOWS_RESERVED:
            return f"component {part!r} is a reserved device name on Windows"
    return None


def collision_key(name: str) -> str:
    """Key under which two names collide on case-insensitive / normalising file systems.

    Canonical caseless matching (NFD, casefold, NFD), returned in NFC for readability: macOS
    normalises, Windows and macOS fold case, so ``A.txt``/``a.txt`` or NFC/NFD forms of ``é``
    would overwrite each other on extraction.
    """
    folded = unicodedata.normalize("NFD", name).casefold()
    return unicodedata.normalize("NFC", folded)

__all__ = ["check_member_path", "collision_key", "portability_problem"]
