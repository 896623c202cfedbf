"""Resource limits applied before any untrusted data is parsed or decompressed.

Every limit is checked against *declared* sizes first (central directory), and again against the
bytes actually produced, so a lying archive cannot make a reader allocate or inflate without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    max_manifest_bytes: int = 64 * MiB
    # TOML documents: carton.toml, tensor_data/index.toml, LINKS.
    max_toml_bytes: int = 16 * MiB
    max_toml_key_parts: int = 128
    max_toml_nesting: int = 64
    # String tensor files (TOML) and numeric tensor files are read whole into memory.
    max_string_tensor_bytes: int = 256 * MiB
    max_numeric_tensor_bytes: int = 4 * GiB


DEFAULT_LIMITS = Limits()

__all__ = [
    "DEFAULT_LIMITS",
    "GiB",
    "KiB",
    "Limits",
    "MiB",
    "TiB",
]
