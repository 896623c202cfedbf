"""Zip record layouts (APPNOTE 6.3.10 section 4.3) shared by the reader and the writer.

Only parsing/packing of single records lives here; the policy (what is accepted) is in
``zip_reader``.  Parsers take ``bytes`` that the caller has already length-checked and never
raise anything but :class:`CartonFormatError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import CartonFormatError

LOCAL_SIG = 0x04034B50
CENTRAL_SIG = 0x02014B50
EOCD_SIG = 0x06054B50
ZIP64_EOCD_SIG = 0x06064B50
ZIP64_LOCATOR_SIG = 0x07064B50
DATA_DESCRIPTOR_SIG = 0x08074B50

LOCAL_STRUCT = struct.Struct("<IHHHHHIIIHH")
CENTRAL_STRUCT = struct.Struct("<IHHHHHHIIIHHHHHII")
EOCD_STRUCT = struct.Struct("<IHHHHIIH")
ZIP64_EOCD_STRUCT = struct.Struct("<IQHHIIQQQQ")
ZIP64_LOCATOR_STRUCT = struct.Struct("<IIQI")
EXTRA_HEADER = struct.Struct("<HH")

LOCAL_SIZE = LOCAL_STRUCT.size  # 30
CENTRAL_SIZE = CENTRAL_STRUCT.size  # 46
EOCD_SIZE = EOCD_STRUCT.size  # 22
ZIP64_EOCD_SIZE = ZIP64_EOCD_STRUCT.size  # 56
ZIP64_LOCATOR_SIZE = ZIP64_LOCATOR_STRUCT.size  # 20

LOCAL_SIG_BYTES = struct.pack("<I", LOCAL_SIG)
CENTRAL_SIG_BYTES = struct.pack("<I", CENTRAL_SIG)
EOCD_SIG_BYTES = struct.pack("<I", EOCD_SIG)
ZIP64_EOCD_SIG_BYTES = struct.pack("<I", ZIP64_EOCD_SIG)
ZIP64_LOCATOR_SIG_BYTES = struct.pack("<I", ZIP64_LOCATOR_SIG)

ZIP64_EXTRA_ID = 0x0001
UNICODE_PATH_EXTRA_ID = 0x7075

U16_MAX = 0xFFFF
U32_MAX = 0xFFFFFFFF

# General purpose flag bits.
FLAG_ENCRYPTED = 0x0001
FLAG_DATA_DESCRIPTOR = 0x0008
FLAG_PATCHED = 0x0020
FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8 = 0x0800
FLAG_MASKED_HEADER = 0x2000
#: Bits a reader may meet in an acceptable member: deflate/LZMA options (1, 2), descriptor, UTF-8.
FLAGS_ALLOWED = 0x0002 | 0x0004 | FLAG_DATA_DESCRIPTOR | FLAG_UTF8

METHOD_STORED = 0
METHOD_DEFLATE = 8
METHOD_ZSTD = 93
METHOD_AES = 99
SUPPORTED_METHODS = frozenset({METHOD_STORED, METHOD_DEFLATE, METHOD_ZSTD})

CREATE_UNIX = 3

S_IFMT = 0o170000
S_IFREG = 0o100000
S_IFDIR = 0o040000
S_IFLNK = 0o120000


@dataclass(frozen=True)
class EndRecord:
    """The fields of the EOCD (or zip64 EOCD) that locate the central directory."""

    disk_number: int
    cd_disk: int
    entries_on_disk: int
    entries_total: int
    cd_size: int
    cd_offset: int
    comment_length: int = 0


@dataclass(frozen=True)
class CentralHeader:
    """A central-directory file header, fixed part only (sizes before zip64 resolution)."""

    version_made_by: int
    version_needed: int
    flags: int
    method: int
    mtime: int
    mdate: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    name_length: int
    extra_length: int
    comment_length: int
    disk_start: int
    internal_attr: int
    external_attr: int
    header_offset: int


@dataclass(frozen=True)
class LocalHeader:
    """A local file header, fixed part only."""

    version_needed: int
    flags: int
    method: int
    mtime: int
    mdate: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    name_length: int
    extra_length: int


def malformed(message: str, member: str | None = None) -> CartonFormatError:
    return CartonFormatError("E-ZIP-MALFORMED", message, member=member)


def parse_eocd(buf: bytes, pos: int = 0) -> EndRecord:
    _sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment_len = EOCD_STRUCT.unpack_from(buf, pos)
    return EndRecord(disk, cd_disk, on_disk, total, cd_size, cd_offset, comment_len)


def parse_zip64_locator(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    """(disk holding the zip64 EOCD, its offset, total number of disks)."""
    _sig, disk, offset, disks = ZIP64_LOCATOR_STRUCT.unpack_from(buf, pos)
    return disk, offset, disks


def parse_zip64_eocd(buf: bytes, pos: int = 0) -> tuple[int, EndRecord]:
    """(size-of-record field, end record); the signature must have been checked."""
    _sig, rec_size, _made, _needed, disk, cd_disk, on_disk, total, cd_size, cd_offset = (
        ZIP64_EOCD_STRUCT.unpack_from(buf, pos)
    )
    return rec_size, EndRecord(disk, cd_disk, on_disk, total, cd_size, cd_offset)


def parse_central(buf: bytes, pos: int) -> CentralHeader:
    fields = CENTRAL_STRUCT.unpack_from(buf, pos)
    return CentralHeader(*fields[1:])


def parse_local(buf: bytes, pos: int = 0) -> LocalHeader:
    fields = LOCAL_STRUCT.unpack_from(buf, pos)
    return LocalHeader(*fields[1:])


def iter_extras(extra: bytes, member: str | None = None) -> list[tuple[int, bytes]]:
    """Split an extra field into (header id, data) pairs; any overrun is malformed."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    end = len(extra)
    while pos < end:
        if end - pos < 4:
            raise malformed(f"extra field has {end - pos} stray trailing bytes", member)
        hid, size = EXTRA_HEADER.unpack_from(extra, pos)
        pos += 4
        if pos + size > end:
            raise malformed(f"extra field 0x{hid:04x} declares {size} bytes but only {end - pos} remain", member)
        out.append((hid, extra[pos : pos + size]))
        pos += size
    return out


def resolve_zip64(
    data: bytes,
    values: list[int],
    sentinels: list[int],
    *,
    exact: bool,
    member: str | None = None,
) -> list[int]:
    """Replace each value equal to its sentinel by the next 8-byte field of a zip64 extra.

    APPNOTE 4.5.3: a field is present only when the header field holds 0xFFFFFFFF (0xFFFF for the
    disk number, which is 4 bytes in the extra), in the order usize, csize, offset, disk.
    ``exact`` demands no bytes beyond the needed fields (central directory); local headers may
    carry both sizes even when only one is needed.
    """
    out = list(values)
    pos = 0
    for i, (value, sentinel) in enumerate(zip(values, sentinels)):
        if value != sentinel:
            continue
        width = 4 if sentinel == U16_MAX else 8
        if pos + width > len(data):
            raise malformed("zip64 extra field is too short for the fields it must hold", member)
        out[i] = int.from_bytes(data[pos : pos + width], "little")
        pos += width
    if exact and pos != len(data):
        raise malformed(f"zip64 extra field has {len(data) - pos} unexpected bytes", member)
    return out


def pack_local(
    *,
    version_needed: int,
    flags: int,
    method: int,
    mtime: int,
    mdate: int,
    crc32: int,
    compressed_size: int,
    uncompressed_size: int,
    name: bytes,
    extra: bytes,
) -> bytes:
    return (
        LOCAL_STRUCT.pack(
            LOCAL_SIG,
            version_needed,
            flags,
            method,
            mtime,
            mdate,
            crc32,
            compressed_size,
            uncompressed_size,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def pack_central(header: CentralHeader, name: bytes, extra: bytes) -> bytes:
    h = header
    return (
        CENTRAL_STRUCT.pack(
            CENTRAL_SIG,
            h.version_made_by,
            h.version_needed,
            h.flags,
            h.method,
            h.mtime,
            h.mdate,
            h.crc32,
            h.compressed_size,
            h.uncompressed_size,
            len(name),
            len(extra),
            h.comment_length,
            h.disk_start,
            h.internal_attr,
            h.external_attr,
            h.header_offset,
        )
        + name
        + extra
    )


def pack_eocd(end: EndRecord) -> bytes:
    return EOCD_STRUCT.pack(
        EOCD_SIG,
        end.disk_number,
        end.cd_disk,
        end.entries_on_disk,
        end.entries_total,
        end.cd_size,
        end.cd_offset,
        end.comment_length,
    )


def pack_zip64_eocd(end: EndRecord, *, version_made_by: int, version_needed: int) -> bytes:
    return ZIP64_EOCD_STRUCT.pack(
        ZIP64_EOCD_SIG,
        ZIP64_EOCD_SIZE - 12,
        version_made_by,
        version_needed,
        end.disk_number,
        end.cd_disk,
        end.entries_on_disk,
        end.entries_total,
        end.cd_size,
        end.cd_offset,
    )


def pack_zip64_locator(eocd64_offset: int) -> bytes:
    return ZIP64_LOCATOR_STRUCT.pack(ZIP64_LOCATOR_SIG, 0, eocd64_offset, 1)


def pack_zip64_extra(values: list[int]) -> bytes:
    """A zip64 extra holding the given 8-byte values (already chosen by the caller)."""
    if not values:
        return b""
    body = b"".join(v.to_bytes(8, "little") for v in values)
    return EXTRA_HEADER.pack(ZIP64_EXTRA_ID, len(body)) + body

__all__ = [
    "CENTRAL_SIG",
    "CENTRAL_SIG_BYTES",
    "CENTRAL_SIZE",
    "CENTRAL_STRUCT",
    "CREATE_UNIX",
    "DATA_DESCRIPTOR_SIG",
    "EOCD_SIG",
    "EOCD_SIG_BYTES",
    "EOCD_SIZE",
    "EOCD_STRUCT",
    "EXTRA_HEADER",
    "FLAGS_ALLOWED",
    "FLAG_DATA_DESCRIPTOR",
    "FLAG_ENCRYPTED",
    "FLAG_MASKED_HEADER",
    "FLAG_PATCHED",
    "FLAG_STRONG_ENCRYPTION",
    "FLAG_UTF8",
    "LOCAL_SIG",
    "LOCAL_SIG_BYTES",
    "LOCAL_SIZE",
    "LOCAL_STRUCT",
    "METHOD_AES",
    "METHOD_DEFLATE",
    "METHOD_STORED",
    "METHOD_ZSTD",
    "SUPPORTED_METHODS",
    "S_IFDIR",
    "S_IFLNK",
    "S_IFMT",
    "S_IFREG",
    "U16_MAX",
    "U32_MAX",
    "UNICODE_PATH_EXTRA_ID",
    "ZIP64_EOCD_SIG",
    "ZIP64_EOCD_SIG_BYTES",
    "ZIP64_EOCD_SIZE",
    "ZIP64_EOCD_STRUCT",
    "ZIP64_EXTRA_ID",
    "ZIP64_LOCATOR_SIG",
    "ZIP64_LOCATOR_SIG_BYTES",
    "ZIP64_LOCATOR_SIZE",
    "ZIP64_LOCATOR_STRUCT",
    "CentralHeader",
    "EndRecord",
    "LocalHeader",
    "iter_extras",
    "malformed",
    "pack_central",
    "pack_eocd",
    "pack_local",
    "pack_zip64_eocd",
    "pack_zip64_extra",
    "pack_zip64_locator",
    "parse_central",
    "parse_eocd",
    "parse_local",
    "parse_zip64_eocd",
    "parse_zip64_locator",
    "resolve_zip64",
]
