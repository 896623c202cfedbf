"""A minimal zip parser written from APPNOTE 6.3, independent of ``carton_format``.

The spec tests use it to inspect what ``carton_format`` writes, so that a bug shared by our writer
and our reader cannot hide.  It parses the end record, the central directory and every local
header, and refuses (AssertionError) anything it does not understand.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EOCD = struct.Struct("<IHHHHIIH")
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
LOCAL = struct.Struct("<IHHHHHIIIHH")


@dataclass(frozen=True)
class Local:
    version_needed: int
    flags: int
    method: int
    mtime: int
    mdate: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    raw_name: bytes
    extra: bytes
    data_start: int


@dataclass(frozen=True)
class Entry:
    raw_name: bytes
    version_made_by: int
    version_needed: int
    flags: int
    method: int
    mtime: int
    mdate: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    disk_start: int
    internal_attr: int
    external_attr: int
    header_offset: int
    extra: bytes
    comment: bytes
    local: Local

    @property
    def name(self) -> str:
        return self.raw_name.decode("utf-8")

    @property
    def end(self) -> int:
        """Offset just past the member's data (no data descriptors are expected)."""
        return self.local.data_start + self.compressed_size


@dataclass(frozen=True)
class RawZip:
    data: bytes
    entries: list[Entry]
    disk_number: int
    cd_disk: int
    entries_on_disk: int
    entries_total: int
    cd_size: int
    cd_offset: int
    comment: bytes
    has_zip64_records: bool

    def payload(self, entry: Entry) -> bytes:
        return self.data[entry.local.data_start : entry.end]

    def by_name(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries}


def parse(data: bytes) -> RawZip:
    """Parse a zip without zip64 records, comments or data descriptors (what Carton writers emit
    for archives under 4 GiB); asserts on anything else."""
    eocd_at = len(data) - EOCD.size
    sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment_len = EOCD.unpack_from(data, eocd_at)
    assert sig == 0x06054B50, "the file does not end with an end of central directory record"
    comment = data[eocd_at + EOCD.size :]
    assert len(comment) == comment_len
    has_zip64 = data[eocd_at - 20 : eocd_at - 16] == b"PK\x06\x07"
    entries = []
    pos = cd_offset
    for _ in range(total):
        fields = CENTRAL.unpack_from(data, pos)
        assert fields[0] == 0x02014B50, f"bad central header signature at {pos}"
        (_, made_by, needed, flags, method, mtime, mdate, crc, csize, usize, nlen, xlen, clen, disk_start, iattr, eattr, offset) = fields
        start = pos + CENTRAL.size
        raw_name = data[start : start + nlen]
        extra = data[start + nlen : start + nlen + xlen]
        entry_comment = data[start + nlen + xlen : start + nlen + xlen + clen]
        pos = start + nlen + xlen + clen
        entries.append(
            Entry(raw_name, made_by, needed, flags, method, mtime, mdate, crc, csize, usize, disk_start, iattr, eattr, offset,
                  extra, entry_comment, _local(data, offset))
        )  # fmt: skip
    assert pos == cd_offset + cd_size, "the central directory does not have its declared size"
    return RawZip(data, entries, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment, has_zip64)


def _local(data: bytes, offset: int) -> Local:
    fields = LOCAL.unpack_from(data, offset)
    assert fields[0] == 0x04034B50, f"bad local header signature at {offset}"
    _, needed, flags, method, mtime, mdate, crc, csize, usize, nlen, xlen = fields
    start = offset + LOCAL.size
    return Local(needed, flags, method, mtime, mdate, crc, csize, usize, data[start : start + nlen],
                 data[start + nlen : start + nlen + xlen], start + nlen + xlen)  # fmt: skip
