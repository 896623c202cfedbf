"""Resource limits applied before any untrusted data is parsed or decompressed.

Every limit is checked against *declared* sizes first (central directory), and again against the
bytes actually produced, so a lying archive cannot make a reader allocate or inflate without bound.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB


@dataclass(frozen=True)
class Limits:
    """Caps for one read.  The defaults suit models up to hundreds of GiB."""

    max_entries: int = 100_000
    max_central_directory_bytes: int = 64 * MiB
    max_path_bytes: int = 1024
    max_path_depth: int = 64
    max_member_bytes: int = 1 * TiB
    max_total_bytes: int = 4 * TiB
    # A member whose uncompressed/compressed ratio exceeds this (and is larger than
    # ratio_floor_bytes) is treated as a decompression bomb.  zstd reaches ~32,500x on
    # all-zero data (zero-initialised weights), deflate ~1,030x, so legitimate archives stay
    # below 50,000x.  Output is also always capped by the declared size.
    max_compression_ratio: int = 50_000
    ratio_floor_bytes: int = 16 * MiB
    # LINKS downloads (the runtime): the body decoded from its Content-Encoding may grow to at
    # most max_download_ratio times the bytes received (checked once past ratio_floor_bytes) and
    # never beyond max_download_bytes (nor max_member_bytes).  1,100x is above what gzip and
    # deflate can reach at all (~1,032x), so only zstd or br bodies of almost nothing but one
    # repeated byte (bombs: ~32,000x and more) are refused.
    max_download_ratio: int = 1_100
    max_download_bytes: int = 512 * GiB
    max_manifest_bytes: int = 64 * MiB
    # TOML documents: carton.toml, tensor_data/index.toml, LINKS.
    max_toml_bytes: int = 16 * MiB
    max_toml_key_parts: int = 128
    max_toml_nesting: int = 64
    # A string tensor file (TOML) is read whole into memory; a numeric tensor is streamed by
    # validation and read straight into its array by load_tensor().  max_numeric_tensor_bytes
    # also caps a string tensor's array (numpy's fixed width: elements x longest x 4 bytes).
    max_string_tensor_bytes: int = 256 * MiB
    max_numeric_tensor_bytes: int = 4 * GiB
    # Elements of one string tensor (product(shape), checked before its file is read) and values
    # in its file (counted by a scan before it is parsed): each costs a Python object and parse
    # time, so the count is bounded apart from the file's bytes.  A million strings parse and
    # check in about a second; self tests and examples hold a few.
    max_string_tensor_elements: int = 1_000_000
    # validate() lists at most this many findings; the rest are counted (ValidationReport.
    # findings_omitted) and a warning says how many.  Checks that could produce millions of
    # findings (schema violations) stop looking once the list is full.
    max_findings: int = 1_000


DEFAULT_LIMITS = Limits()


def checked_limits(limits: object, argument: str = "limits") -> Limits:
    """``limits`` itself if it is a :class:`Limits` whose fields are all non-negative integers;
    otherwise ``E-ARG-INVALID`` naming ``argument`` (for the public entry points)."""
    from .errors import CartonFormatError

    if limits is DEFAULT_LIMITS:
        return DEFAULT_LIMITS
    if not isinstance(limits, Limits):
        raise CartonFormatError("E-ARG-INVALID", f"{argument} must be a carton_format.Limits, not {type(limits).__name__}")
    for f in fields(Limits):
        value = getattr(limits, f.name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CartonFormatError("E-ARG-INVALID", f"{argument}.{f.name} must be a non-negative int, not {value!r}")
    return limits


__all__ = [
    "DEFAULT_LIMITS",
    "GiB",
    "KiB",
    "Limits",
    "MiB",
    "TiB",
    "checked_limits",
]
