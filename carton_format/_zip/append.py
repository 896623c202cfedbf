"""Append one small stored member to an existing zip in place, without rewriting member data.

The new member's local header and data go where the central directory was; the old central
directory is copied byte for byte and one entry is added; the end records are rewritten and
read back.  Member
data and every existing central entry are untouched (their offsets do not move), so the cost is
the central directory plus the new member, whatever the archive's size.  When the archive's last
member already has the name, it is replaced (its bytes are overwritten): a member only appended
this way is replaced, never one in the middle (that would leave unaccounted bytes).

Deterministic like :class:`~carton_format._zip.writer.ZipWriter`: fixed timestamps, attributes
and versions.  On failure the file is put back as it was (the replaced tail is kept in memory:
it is the central directory and one small member).
"""

from __future__ import annotations

import logging
import os
import zlib
from typing import BinaryIO

from ..errors import CartonError, CartonFormatError
from ..limits import DEFAULT_LIMITS, Limits
from .reader import ZipReader
from .records import (
    CENTRAL_SIZE,
    METHOD_STORED,
    pack_local,
    parse_central,
)
from .writer import DOS_DATE, DOS_TIME, FILE_ATTR, VERSION_NEEDED, central_entry, end_records

log = logging.getLogger(__name__)

#: Appended members are small documents (a signature): refused above this.
MAX_APPENDED_BYTES = 16 * 1024 * 1024


def _last_central_start(cd: bytes) -> int:
    """Offset in ``cd`` of its last central header (0 for an empty directory)."""
    pos = last = 0
    while pos < len(cd):
        h = parse_central(cd, pos)
        last = pos
        pos += CENTRAL_SIZE + h.name_length + h.extra_length + h.comment_length
    return last


def _pread(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise CartonFormatError("E-ZIP-TRUNCATED", f"expected {n} bytes at offset {offset}, got {len(data)}")
    return data


def append_member(path: str | os.PathLike[str], name: str, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> None:
    """Add (or replace, when it is the last member) the stored member ``name`` holding ``data``
    to the zip at ``path``, in place."""
    try:
        f = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CartonFormatError("E-IO", f"{os.fspath(path)}: {exc.strerror or exc}") from None
    with f:
        append_to_open_zip(f, ZipReader(f, limits=limits, name_for_errors=os.fspath(path)), name, data, limits=limits)


def append_to_open_zip(f: BinaryIO, reader: ZipReader, name: str, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> None:
    """:func:`append_member` on a zip already open for update (``r+b``) and parsed by ``reader``
    (so a caller that has read the archive's metadata pays for its end records once)."""
    if len(data) > MAX_APPENDED_BYTES:
        raise CartonFormatError("E-ARG-INVALID", f"{name}: {len(data)} bytes is more than an appended member may hold")
    label = str(getattr(f, "name", "<zip>"))
    raw_name = name.encode("utf-8")
    entries = reader.entries
    write_at, count = reader.cd_offset, len(entries)
    existing = reader.get(name)
    if existing is not None:
        if entries[-1].name != name:
            raise CartonFormatError(
                "E-ARG-INVALID", f"{name} is in the archive but not its last member: it cannot be replaced in place", member=name
            )
        write_at, count = existing.header_offset, count - 1
    size = os.fstat(f.fileno()).st_size
    saved = _pread(f, write_at, size - write_at)  # what is overwritten (the directory included): put back on failure
    start = reader.cd_offset - write_at
    cd = saved[start : start + reader.cd_size]
    if existing is not None:
        cd = cd[: _last_central_start(cd)]
    local = pack_local(
        version_needed=VERSION_NEEDED[METHOD_STORED], flags=0, method=METHOD_STORED, mtime=DOS_TIME, mdate=DOS_DATE,
        crc32=zlib.crc32(data), compressed_size=len(data), uncompressed_size=len(data), name=raw_name, extra=b"",
    )
    new_cd = cd + central_entry(
        raw_name, method=METHOD_STORED, flags=0, crc32=zlib.crc32(data), compressed_size=len(data), uncompressed_size=len(data),
        header_offset=write_at, version_needed=VERSION_NEEDED[METHOD_STORED], external_attr=FILE_ATTR,
    )
    cd_offset = write_at + len(local) + len(data)
    tail = local + data + new_cd + end_records(count + 1, len(new_cd), cd_offset, reader.zip64)
    try:
        f.seek(write_at)
        f.write(tail)
        f.truncate(write_at + len(tail))
        os.fsync(f.fileno())
        check = ZipReader(f, limits=limits, name_for_errors=label)  # the end records and directory read back
        if [e.name for e in check.entries] != [e.name for e in entries if e.name != name] + [name]:
            raise CartonFormatError("E-INTERNAL", f"appending {name} gave an unexpected central directory")
    except (OSError, CartonError) as exc:
        _restore(f, write_at, saved)
        if isinstance(exc, OSError):
            raise CartonFormatError("E-IO", f"{label}: appending {name} failed: {exc.strerror or exc}") from None
        raise
    log.debug("appended %s (%d bytes) to %s at %d", name, len(data), label, write_at)


def _restore(f: BinaryIO, offset: int, saved: bytes) -> None:
    try:
        f.seek(offset)
        f.write(saved)
        f.truncate(offset + len(saved))
    except OSError as exc:  # pragma: no cover - the disk failed twice
        log.error("could not restore the archive after a failed append: %s", exc)


__all__ = ["MAX_APPENDED_BYTES", "append_member", "append_to_open_zip"]
