"""Build raw zip bytes field by field, so the conformance generator (and the tests:
``from carton_conformance.gen import zipcraft as zc``) can corrupt any field.

Independent of ``carton_format._zip.writer`` on purpose: a bug shared by the writer and the reader
would otherwise be invisible.  Everything defaults to a well-formed archive; every field can be
overridden, extra bytes can be put anywhere, and :class:`Built` tells where each record landed so
a test can patch bytes afterwards (:func:`patch`).  The committed case archives must regenerate
byte for byte: after a change here, run ``python -m carton_conformance generate`` and review the diff.

    >>> built = archive([member("a.txt", b"hi")]).build()
    >>> data = patch(built.data, built.eocd_offset + 10, "<H", 7)   # wrong entry count
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field, replace

import zstandard

LOCAL_SIG = 0x04034B50
CENTRAL_SIG = 0x02014B50
EOCD_SIG = 0x06054B50
ZIP64_EOCD_SIG = 0x06064B50
ZIP64_LOCATOR_SIG = 0x07064B50
DATA_DESCRIPTOR_SIG = 0x08074B50
U16 = 0xFFFF
U32 = 0xFFFFFFFF

STORED, DEFLATE, ZSTD = 0, 8, 93
UNIX = 3
S_IFREG, S_IFDIR, S_IFLNK = 0o100000, 0o040000, 0o120000
S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK = 0o010000, 0o020000, 0o060000, 0o140000


def unix_attr(mode: int) -> int:
    """external_attr for a Unix mode (type bits | permissions)."""
    return mode << 16


def compress(plain: bytes, method: int, *, level: int | None = None, zstd_content_size: bool = True) -> bytes:
    if method == STORED:
        return plain
    if method == DEFLATE:
        c = zlib.compressobj(6 if level is None else level, zlib.DEFLATED, -15)
        return c.compress(plain) + c.flush()
    if method == ZSTD:
        cctx = zstandard.ZstdCompressor(level=3 if level is None else level, write_content_size=zstd_content_size)
        if zstd_content_size:
            return cctx.compress(plain)
        obj = cctx.compressobj()  # streaming: no content size, like the original writer
        return obj.compress(plain) + obj.flush()
    raise ValueError(f"cannot compress with method {method}")


def extra_field(header_id: int, data: bytes) -> bytes:
    return struct.pack("<HH", header_id, len(data)) + data


def zip64_extra(*values: int) -> bytes:
    """Zip64 extended information extra field holding the given 8-byte values in order."""
    return extra_field(0x0001, b"".join(struct.pack("<Q", v) for v in values))


def unicode_path_extra(raw_name: bytes, unicode_name: str) -> bytes:
    """Info-ZIP Unicode Path extra (0x7075): version 1, CRC-32 of the raw name, UTF-8 name."""
    return extra_field(0x7075, b"\x01" + struct.pack("<I", zlib.crc32(raw_name)) + unicode_name.encode("utf-8"))


def data_descriptor(crc: int, csize: int, usize: int, *, signature: bool = True, zip64: bool = False) -> bytes:
    fmt = "<IQQ" if zip64 else "<III"
    body = struct.pack(fmt, crc, csize, usize)
    return (struct.pack("<I", DATA_DESCRIPTOR_SIG) if signature else b"") + body


@dataclass
class Member:
    """One member.  ``payload`` is what follows the local header (already compressed);
    ``plain`` the uncompressed content (defaults for CRC and size).  ``local_*`` fields override
    the local header only; the unprefixed ones apply to both headers."""

    name: bytes | str
    payload: bytes = b""
    plain: bytes | None = None
    method: int = STORED
    flags: int | None = None  # default: bit 11 when the name is not ASCII
    crc32: int | None = None
    compressed_size: int | None = None
    uncompressed_size: int | None = None
    version_made_by: int = (UNIX << 8) | 63
    version_needed: int = 20
    mtime: int = 0
    mdate: int = 0x21
    external_attr: int = 0
    internal_attr: int = 0
    disk_start: int = 0
    comment: bytes = b""
    local_extra: bytes = b""
    central_extra: bytes = b""
    zip64: bool = False  # sizes (and offset) in zip64 extras, 0xFFFFFFFF in the headers
    header_offset: int | None = None  # central directory's idea of the offset (default: real)
    gap_before: bytes = b""  # bytes before this member's local header
    data_descriptor: bytes | None = None  # appended after the payload (set flag bit 3 yourself)
    in_central: bool = True  # False: a local entry the central directory does not list
    local_name: bytes | str | None = None
    local_method: int | None = None
    local_flags: int | None = None
    local_crc32: int | None = None
    local_compressed_size: int | None = None
    local_uncompressed_size: int | None = None
    local_version_needed: int | None = None

    @property
    def raw_name(self) -> bytes:
        return self.name.encode("utf-8") if isinstance(self.name, str) else self.name

    def resolved(self) -> Member:
        plain = self.payload if self.plain is None else self.plain
        flags = self.flags
        if flags is None:
            flags = 0 if self.raw_name.isascii() else 0x0800
        return replace(
            self,
            plain=plain,
            flags=flags,
            crc32=zlib.crc32(plain) if self.crc32 is None else self.crc32,
            compressed_size=len(self.payload) if self.compressed_size is None else self.compressed_size,
            uncompressed_size=len(plain) if self.uncompressed_size is None else self.uncompressed_size,
        )


def member(
    name: bytes | str,
    plain: bytes = b"",
    method: int = STORED,
    *,
    level: int | None = None,
    zstd_content_size: bool = True,
    **overrides: object,
) -> Member:
    """A well-formed member holding ``plain`` compressed with ``method``; ``overrides`` set any
    :class:`Member` field (e.g. ``crc32=0``, ``local_method=8``).  For methods other than 0, 8
    and 93 ``plain`` is stored as is (the header still names ``method``)."""
    known = method in (STORED, DEFLATE, ZSTD)
    payload = compress(plain, method, level=level, zstd_content_size=zstd_content_size) if known else plain
    return Member(name=name, payload=payload, plain=plain, method=method, **overrides)  # type: ignore[arg-type]


@dataclass
class Built:
    """The bytes plus where each record starts (indices follow ``Archive.members``)."""

    data: bytes
    local_offsets: list[int]
    data_offsets: list[int]
    central_offsets: list[int | None]
    cd_offset: int
    cd_size: int
    eocd_offset: int
    zip64_eocd_offset: int | None = None
    zip64_locator_offset: int | None = None


@dataclass
class Archive:
    members: list[Member] = field(default_factory=list)
    prefix: bytes = b""  # before the first member; offsets account for it (like `zip -A`)
    before_cd: bytes = b""  # between the last member and the central directory
    comment: bytes = b""
    trailing: bytes = b""  # after the end record
    central_order: list[int] | None = None  # member indices in central-directory order
    extra_central: list[bytes] = field(default_factory=list)  # raw bytes appended to the CD
    # End of central directory overrides (None: computed).
    disk_number: int = 0
    cd_disk: int = 0
    entries_on_disk: int | None = None
    entries_total: int | None = None
    cd_size: int | None = None
    cd_offset: int | None = None
    comment_length: int | None = None
    # Zip64 end records.
    zip64_end: bool = False
    zip64_sentinels: bool = True  # the EOCD holds 0xFFFF/0xFFFFFFFF instead of the real values
    zip64_record_size: int = 44
    zip64_disk_number: int = 0
    zip64_cd_disk: int = 0
    zip64_entries_on_disk: int | None = None
    zip64_entries_total: int | None = None
    zip64_cd_size: int | None = None
    zip64_cd_offset: int | None = None
    zip64_extensible: bytes = b""
    locator_disk: int = 0
    locator_offset: int | None = None
    locator_total_disks: int = 1
    between_zip64_and_locator: bytes = b""

    def build(self) -> Built:
        out = bytearray(self.prefix)
        members = [m.resolved() for m in self.members]
        local_offsets: list[int] = []
        data_offsets: list[int] = []
        for m in members:
            out += m.gap_before
            local_offsets.append(len(out))
            out += _local_header(m)
            data_offsets.append(len(out))
            out += m.payload
            if m.data_descriptor is not None:
                out += m.data_descriptor
        out += self.before_cd
        cd_offset = len(out)
        order = self.central_order if self.central_order is not None else list(range(len(members)))
        central_offsets: list[int | None] = [None] * len(members)
        count = 0
        for i in order:
            m = members[i]
            if not m.in_central:
                continue
            central_offsets[i] = len(out)
            offset = local_offsets[i] if m.header_offset is None else m.header_offset
            out += _central_header(m, offset)
            count += 1
        for raw in self.extra_central:
            out += raw
        cd_size = len(out) - cd_offset
        zip64_eocd_offset = locator_offset = None
        if self.zip64_end:
            zip64_eocd_offset = len(out)
            out += struct.pack(
                "<IQHHIIQQQQ",
                ZIP64_EOCD_SIG,
                self.zip64_record_size,
                (UNIX << 8) | 63,
                45,
                self.zip64_disk_number,
                self.zip64_cd_disk,
                _pick(self.zip64_entries_on_disk, count),
                _pick(self.zip64_entries_total, count),
                _pick(self.zip64_cd_size, cd_size),
                _pick(self.zip64_cd_offset, cd_offset),
            )
            out += self.zip64_extensible + self.between_zip64_and_locator
            locator_offset = len(out)
            out += struct.pack(
                "<IIQI",
                ZIP64_LOCATOR_SIG,
                self.locator_disk,
                _pick(self.locator_offset, zip64_eocd_offset),
                self.locator_total_disks,
            )
        sentinel = self.zip64_end and self.zip64_sentinels
        eocd_offset = len(out)
        out += struct.pack(
            "<IHHHHIIH",
            EOCD_SIG,
            self.disk_number,
            self.cd_disk,
            _pick(self.entries_on_disk, U16 if sentinel else min(count, U16)),
            _pick(self.entries_total, U16 if sentinel else min(count, U16)),
            _pick(self.cd_size, U32 if sentinel else cd_size),
            _pick(self.cd_offset, U32 if sentinel else cd_offset),
            _pick(self.comment_length, len(self.comment)),
        )
        out += self.comment + self.trailing
        return Built(
            bytes(out), local_offsets, data_offsets, central_offsets, cd_offset, cd_size, eocd_offset,
            zip64_eocd_offset, locator_offset,
        )


def archive(members: list[Member], **kwargs: object) -> Archive:
    return Archive(members=members, **kwargs)  # type: ignore[arg-type]


def build(members: list[Member], **kwargs: object) -> bytes:
    """Shortcut: the bytes of an archive of ``members``."""
    return archive(members, **kwargs).build().data


def patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    """``data`` with ``struct.pack(fmt, *values)`` written at ``offset``."""
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, *values)
    return bytes(buf)


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


def _local_header(m: Member) -> bytes:
    raw_name = m.raw_name if m.local_name is None else (
        m.local_name.encode("utf-8") if isinstance(m.local_name, str) else m.local_name
    )
    csize = _pick(m.local_compressed_size, m.compressed_size)  # type: ignore[arg-type]
    usize = _pick(m.local_uncompressed_size, m.uncompressed_size)  # type: ignore[arg-type]
    extra = m.local_extra
    if m.zip64:
        extra = zip64_extra(usize, csize) + extra
        csize = usize = U32
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            LOCAL_SIG,
            _pick(m.local_version_needed, m.version_needed),
            _pick(m.local_flags, m.flags),  # type: ignore[arg-type]
            _pick(m.local_method, m.method),
            m.mtime,
            m.mdate,
            _pick(m.local_crc32, m.crc32),  # type: ignore[arg-type]
            csize,
            usize,
            len(raw_name),
            len(extra),
        )
        + raw_name
        + extra
    )


def _central_header(m: Member, offset: int) -> bytes:
    csize, usize = m.compressed_size, m.uncompressed_size
    extra = m.central_extra
    if m.zip64:
        extra = zip64_extra(usize, csize, offset) + extra  # type: ignore[arg-type]
        csize = usize = offset = U32
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            CENTRAL_SIG,
            m.version_made_by,
            m.version_needed,
            m.flags,
            m.method,
            m.mtime,
            m.mdate,
            m.crc32,
            csize,
            usize,
            len(m.raw_name),
            len(extra),
            len(m.comment),
            m.disk_start,
            m.internal_attr,
            m.external_attr,
            offset,
        )
        + m.raw_name
        + extra
        + m.comment
    )

__all__ = [
    "CENTRAL_SIG",
    "DATA_DESCRIPTOR_SIG",
    "EOCD_SIG",
    "LOCAL_SIG",
    "U16",
    "U32",
    "UNIX",
    "ZIP64_EOCD_SIG",
    "ZIP64_LOCATOR_SIG",
    "Archive",
    "Built",
    "Member",
    "archive",
    "build",
    "compress",
    "data_descriptor",
    "extra_field",
    "member",
    "patch",
    "unicode_path_extra",
    "unix_attr",
    "zip64_extra",
]
