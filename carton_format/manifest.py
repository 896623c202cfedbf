"""MANIFEST: one ``path=sha256`` line per file, the archive's content list and identity.

The manifest hash (sha256 of the exact MANIFEST bytes) identifies a model; LINKS never changes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._paths import check_member_path
from .errors import CartonFormatError
from .integrity import sha256_hex
from .limits import DEFAULT_LIMITS, Limits

MANIFEST_PATH = "MANIFEST"
LINKS_PATH = "LINKS"
#: The in-archive signature (spec section 18): outside MANIFEST, like LINKS.
SIGNATURE_PATH = "SIGNATURE"
UNLISTED_PATHS = frozenset({MANIFEST_PATH, LINKS_PATH, SIGNATURE_PATH})
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(text: str) -> bool:
    """True for a lowercase hex sha256 (64 characters)."""
    return _SHA256.fullmatch(text) is not None


@dataclass(frozen=True)
class Manifest:
    """Parsed MANIFEST: ``entries`` maps path -> lowercase hex sha256, in file order."""

    entries: dict[str, str]
    sha256: str
    sorted: bool = True
    raw: bytes = field(default=b"", repr=False)

    def hashes(self) -> set[str]:
        """Every distinct sha256 the manifest lists."""
        return set(self.entries.values())


def _syntax(line_no: int, message: str) -> CartonFormatError:
    return CartonFormatError("E-MANIFEST-SYNTAX", f"line {line_no}: {message}", member=MANIFEST_PATH)


def parse_manifest(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Manifest:
    """Parse and check MANIFEST bytes (syntax, paths, duplicates); order is reported, not enforced."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CartonFormatError("E-MANIFEST-SYNTAX", f"is not valid UTF-8 (byte {exc.start})", member=MANIFEST_PATH) from None
    if "\r" in text:
        raise CartonFormatError("E-MANIFEST-SYNTAX", "contains a carriage return (lines end with \\n only)", member=MANIFEST_PATH)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline; a missing one is tolerated
    entries: dict[str, str] = {}
    previous: bytes | None = None
    in_order = True
    for line_no, line in enumerate(lines, start=1):
        path, sep, digest = line.rpartition("=")
        if not sep:
            raise _syntax(line_no, f"{line[:80]!r} is not of the form path=sha256")
        if not is_sha256_hex(digest):
            raise _syntax(line_no, f"{digest[:80]!r} is not 64 lowercase hex digits")
        try:
            check_member_path(path, limits)
        except CartonFormatError as exc:
            raise CartonFormatError(exc.code, f"line {line_no}: {exc.message}", member=MANIFEST_PATH) from None
        if path in UNLISTED_PATHS:
            raise _syntax(line_no, f"{path} must not list itself")
        if path in entries:
            raise CartonFormatError("E-MANIFEST-DUPLICATE", f"line {line_no}: {path!r} is listed twice", member=MANIFEST_PATH)
        key = path.encode("utf-8")
        if previous is not None and key < previous:
            in_order = False
        previous = key
        entries[path] = digest
    return Manifest(entries, sha256_hex(data), in_order, data)


def format_manifest(entries: dict[str, str]) -> bytes:
    r"""MANIFEST bytes: byte-wise sorted by UTF-8 path, every line ending in ``\n``."""
    ordered = sorted(entries.items(), key=lambda item: item[0].encode("utf-8"))
    return "".join(f"{path}={digest}\n" for path, digest in ordered).encode("utf-8")

__all__ = [
    "LINKS_PATH",
    "MANIFEST_PATH",
    "SIGNATURE_PATH",
    "UNLISTED_PATHS",
    "Manifest",
    "format_manifest",
    "is_sha256_hex",
    "parse_manifest",
]
