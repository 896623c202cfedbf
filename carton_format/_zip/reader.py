"""A strict, bounded zip reader for Carton archives.

Strict: anything a careful reader would have to guess about (prefixes, trailing data, an ambiguous
end record,
overlapping or misplaced members, local headers that disagree with the central directory,
encryption, odd file types, unsafe names) is rejected with a stable error code instead of being
"corrected", so every conforming reader sees the same members with the same bytes.

Bounded: opening touches only the tail of the file (one read of up to 64 KiB, plus one read for a
central directory that does not fit), caps every declared size before reading data, and member
streams never decode more than the declared size, in chunks of at most 1 MiB.

Works over any seekable binary file object (local file, or a remote range-request file):
``bytes_read`` / ``read_calls`` count what was fetched.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
import threading
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

from .._paths import check_member_path, collision_key
from ..errors import CartonError, CartonFormatError
from ..integrity import PARALLEL_MIN, Crc32
from ..limits import DEFAULT_LIMITS, Limits
from .codecs import make_decoder
from .records import (
    CENTRAL_SIG_BYTES,
    CENTRAL_SIZE,
    CREATE_UNIX,
    DATA_DESCRIPTOR_SIG,
    EOCD_SIG_BYTES,
    EOCD_SIZE,
    FLAG_DATA_DESCRIPTOR,
    FLAG_ENCRYPTED,
    FLAG_MASKED_HEADER,
    FLAG_PATCHED,
    FLAG_STRONG_ENCRYPTION,
    FLAG_UTF8,
    FLAGS_ALLOWED,
    LOCAL_SIG_BYTES,
    LOCAL_SIZE,
    METHOD_AES,
    METHOD_STORED,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    SUPPORTED_METHODS,
    U16_MAX,
    U32_MAX,
    UNICODE_PATH_EXTRA_ID,
    ZIP64_EOCD_SIG_BYTES,
    ZIP64_EOCD_SIZE,
    ZIP64_EXTRA_ID,
    ZIP64_LOCATOR_SIG_BYTES,
    ZIP64_LOCATOR_SIZE,
    CentralHeader,
    EndRecord,
    iter_extras,
    parse_central,
    parse_eocd,
    parse_local,
    parse_zip64_eocd,
    parse_zip64_locator,
    resolve_zip64,
)

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB

#: One read at open time: the EOCD plus room for a maximal (65,535-byte) archive comment.
TAIL_BYTES = 64 * KiB + EOCD_SIZE
#: Decoded bytes produced per decoder call.
OUTPUT_CHUNK = 1 * MiB
#: Members up to this compressed size are fetched together with their local header (one read).
SMALL_MEMBER = 256 * KiB
#: Room for a local extra field that the central directory does not announce (zip64: 20 bytes).
LOCAL_EXTRA_GUESS = 32
#: Highest "version needed to extract" defined by APPNOTE 6.3 (CPython's limit too).
MAX_VERSION_NEEDED = 63
#: Symlink chains longer than this are treated as loops (the Linux limit).
MAX_SYMLINK_HOPS = 40
#: Largest symlink member (its data is a path).
MAX_SYMLINK_BYTES = 4 * KiB
#: Minimal data descriptor: crc + 32-bit sizes, no signature.
MIN_DESCRIPTOR = 12

_FILE_TYPES = {
    0o010000: "FIFO",
    0o020000: "character device",
    0o060000: "block device",
    0o140000: "socket",
}


@dataclass(frozen=True)
class ZipEntry:
    """One member as the central directory declares it (zip64 values resolved)."""

    name: str
    method: int
    flags: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    header_offset: int
    external_attr: int
    create_system: int
    is_dir: bool
    is_symlink: bool
    raw_name: bytes = field(default=b"", repr=False)

    @property
    def mode(self) -> int:
        """Unix mode bits (0 when the creator is not Unix)."""
        return self.external_attr >> 16 if self.create_system == CREATE_UNIX else 0


@dataclass(frozen=True)
class _Local:
    """What a local header says about where the member's bytes are."""

    data_start: int
    data_end: int
    prefetched: bytes  # leading data bytes already fetched with the header
    has_descriptor: bool
    descriptor_zip64: bool


@dataclass(frozen=True)
class ZipDirectory:
    """What opening a zip learnt from its end records and central directory, all checked:
    immutable, so a reader of the same unchanged file may start from it (:mod:`..file_memo`)."""

    size: int
    cd_offset: int
    cd_size: int
    zip64: bool
    comment_length: int
    commented_members: tuple[str, ...]
    entries: tuple[ZipEntry, ...]
    limit: tuple[tuple[str, int], ...]  # name -> next member's offset (or the CD start)


class ZipReader:
    """Strict reader over a seekable binary file; see the module docstring.

    ``entries`` is in central-directory order, which is verified to be offset order.
    ``directory``: what an earlier reader of the same, unchanged file found (its checks hold).
    """

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        limits: Limits = DEFAULT_LIMITS,
        name_for_errors: str | None = None,
        directory: ZipDirectory | None = None,
    ) -> None:
        self._f = fileobj
        self._limits = limits
        self._label = name_for_errors
        self.owns_file = False
        self._closed = False
        self._lock = threading.Lock()
        self._fd: int | None = None
        if isinstance(fileobj, io.FileIO) and hasattr(os, "pread"):
            self._fd = fileobj.fileno()  # positional reads: thread-safe, no seek
        self.bytes_read = 0
        self.read_calls = 0
        self.size = 0
        self.cd_offset = 0
        self.cd_size = 0
        self.zip64 = False
        self.comment_length = 0  # the archive comment's length (allowed, ignored)
        self.commented_members: list[str] = []  # members whose central header has a comment
        self.entries: list[ZipEntry] = []
        self._by_name: dict[str, ZipEntry] = {}
        self._limit: dict[str, int] = {}  # name -> next member's offset (or the CD start)
        self._sorted_names: list[str] = []
        if directory is not None:
            self._restore(directory)
            return
        try:
            self._load()
        except CartonError:  # format and transport (runtime) errors keep their code
            raise
        except Exception as exc:
            raise self._internal(exc) from exc

    def directory(self) -> ZipDirectory:
        """What this reader's open found (for :mod:`..file_memo`)."""
        return ZipDirectory(
            self.size, self.cd_offset, self.cd_size, self.zip64, self.comment_length, tuple(self.commented_members),
            tuple(self.entries), tuple(self._limit.items()),
        )

    def _restore(self, d: ZipDirectory) -> None:
        self.size, self.cd_offset, self.cd_size, self.zip64, self.comment_length = d.size, d.cd_offset, d.cd_size, d.zip64, d.comment_length
        self.commented_members = list(d.commented_members)
        self.entries = list(d.entries)
        self._by_name = {e.name: e for e in d.entries}
        self._limit = dict(d.limit)
        self._sorted_names = sorted(self._by_name)

    @classmethod
    def open_path(
        cls, path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
    ) -> ZipReader:
        """Open ``path`` and own the file (closed by :meth:`close`)."""
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the returned reader
        except OSError as exc:
            raise CartonFormatError("E-IO", f"{os.fspath(path)}: {exc.strerror or exc}") from None
        try:
            reader = cls(f, limits=limits, name_for_errors=os.fspath(path))
        except BaseException:
            f.close()
            raise
        reader.owns_file = True
        return reader

    # -- public API ------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        return self._limits

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> ZipEntry | None:
        return self._by_name.get(name)

    def open(self, name_or_entry: str | ZipEntry) -> ZipMemberStream:
        """A stream of the member's decoded bytes, verified (size, CRC, descriptor) at its end.

        Symlink members yield their link text; see :meth:`open_resolved`.
        """
        entry = self._entry(name_or_entry)
        try:
            local = self._read_local(entry, min(entry.compressed_size, SMALL_MEMBER))
            return ZipMemberStream(self, entry, local)
        except CartonError:  # format and transport (runtime) errors keep their code
            raise
        except Exception as exc:
            raise self._internal(exc, entry.name) from exc

    def open_resolved(self, name: str) -> ZipMemberStream:
        """Like :meth:`open`, following symlink members to their final target."""
        return self.open(self.resolve_symlink(name))

    def read_member(self, name: str | ZipEntry, max_bytes: int, *, limit_code: str = "E-LIMIT-MEMBER-SIZE") -> bytes:
        """The whole member, refused with ``limit_code`` before any read when it declares more
        than ``max_bytes`` (e.g. ``E-LIMIT-TOML-SIZE`` for a TOML document)."""
        entry = self._entry(name)
        if entry.uncompressed_size > max_bytes:
            raise CartonFormatError(
                limit_code,
                f"member declares {entry.uncompressed_size} bytes; at most {max_bytes} are allowed here",
                member=entry.name,
            )
        with self.open(entry) as stream:
            return stream.read()

    def resolve_symlink(self, name: str) -> str:
        """Follow symlink members the way the original reader does; return the final member name.

        The link data is a path relative to the link's directory; it is normalised and must name
        an existing regular member under ``model/``.  Absolute, escaping, dangling, directory and
        looping (repeat or more than 40 hops) targets raise ``E-ZIP-SYMLINK``.
        """
        entry = self._entry(name)
        seen = {entry.name}
        chain = [entry.name]
        for _ in range(MAX_SYMLINK_HOPS + 1):
            if not entry.is_symlink:
                return entry.name
            target = self._link_target(entry, name)
            entry = self._follow(entry.name, target, name)
            if entry.name in seen:
                raise CartonFormatError(
                    "E-ZIP-SYMLINK", f"symlink loop: {' -> '.join(chain + [entry.name])}", member=name
                )
            seen.add(entry.name)
            chain.append(entry.name)
        raise CartonFormatError(
            "E-ZIP-SYMLINK", f"symlink chain is longer than {MAX_SYMLINK_HOPS} links", member=name
        )

    def data_span(self, name_or_entry: str | ZipEntry) -> tuple[int, int]:
        """(offset, length) of the member's stored (possibly compressed) bytes in the file, from
        its checked local header: where a zero-copy consumer may read a stored member."""
        entry = self._entry(name_or_entry)
        try:
            local = self._read_local(entry, 0)
        except CartonError:  # format and transport (runtime) errors keep their code
            raise
        except Exception as exc:
            raise self._internal(exc, entry.name) from exc
        return local.data_start, entry.compressed_size

    def link_text(self, name: str) -> str:
        """The target text of a symlink member (not resolved)."""
        entry = self._entry(name)
        if not entry.is_symlink:
            raise CartonFormatError("E-ARG-INVALID", "is not a symlink member", member=entry.name)
        return self._link_target(entry, entry.name)

    def check_layout(self) -> None:
        """Deep check: members, in offset order, tile the file from offset 0 to the central
        directory with no gap and no overlap (reads every local header)."""
        try:
            pos = 0
            for entry in self.entries:
                if entry.header_offset > pos:
                    raise CartonFormatError(
                        "E-ZIP-UNACCOUNTED-DATA",
                        self._where(f"{entry.header_offset - pos} unaccounted bytes at offset {pos}"),
                        member=entry.name,
                    )
                if entry.header_offset < pos:
                    raise CartonFormatError(
                        "E-ZIP-OVERLAP", f"local header at {entry.header_offset} overlaps the previous member", member=entry.name
                    )
                local = self._read_local(entry, 0)
                pos = local.data_end
                if local.has_descriptor:
                    limit = self._limit[entry.name]
                    lengths = self._descriptor_lengths(entry, local)
                    pos += limit - pos if (limit - pos) in lengths else min(lengths)
            if pos != self.cd_offset:
                if pos < self.cd_offset:
                    raise CartonFormatError(
                        "E-ZIP-UNACCOUNTED-DATA",
                        self._where(f"{self.cd_offset - pos} unaccounted bytes before the central directory"),
                    )
                raise CartonFormatError(  # pragma: no cover - excluded by the per-member limits
                    "E-ZIP-OVERLAP", self._where("the last member overlaps the central directory")
                )
        except CartonError:  # format and transport (runtime) errors keep their code
            raise
        except Exception as exc:
            raise self._internal(exc) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.owns_file:
            self._f.close()

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- I/O -------------------------------------------------------------------------------

    def _where(self, message: str) -> str:
        return f"{self._label}: {message}" if self._label else message

    def _internal(self, exc: BaseException, member: str | None = None) -> CartonFormatError:
        """Last-resort conversion so callers only ever see CartonFormatError."""
        if isinstance(exc, OSError):
            return CartonFormatError("E-IO", self._where(str(exc.strerror or exc)), member=member)
        log.error("internal error while reading zip: %r", exc, exc_info=exc)
        return CartonFormatError(
            "E-ZIP-MALFORMED", self._where(f"internal error while reading: {type(exc).__name__}: {exc}"), member=member
        )

    def _read_at(self, offset: int, n: int, member: str | None = None) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer only at end of file)."""
        if n <= 0:
            return b""
        if self._closed:
            raise CartonFormatError("E-ARG-INVALID", "the zip reader is closed", member=member)
        chunks: list[bytes] = []
        got = 0
        try:
            if self._fd is not None:
                while got < n:
                    data = os.pread(self._fd, n - got, offset + got)
                    self.read_calls += 1
                    if not data:
                        break
                    chunks.append(data)
                    got += len(data)
            else:
                with self._lock:
                    self._f.seek(offset)
                    while got < n:
                        data = self._f.read(n - got)
                        self.read_calls += 1
                        if not data:
                            break
                        chunks.append(data)
                        got += len(data)
        except OSError as exc:
            raise CartonFormatError("E-IO", self._where(f"read failed: {exc.strerror or exc}"), member=member) from None
        self.bytes_read += got
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _read_exact(self, offset: int, n: int, member: str | None = None) -> bytes:
        data = self._read_at(offset, n, member)
        if len(data) != n:
            raise CartonFormatError(
                "E-ZIP-TRUNCATED", self._where(f"file ends at {offset + len(data)}, {n - len(data)} bytes early"), member=member
            )
        return data

    def _readinto_at(self, offset: int, view: memoryview, member: str | None) -> None:
        """Fill ``view`` from ``offset`` (stored members: no intermediate copy)."""
        n = len(view)
        got = 0
        try:
            if self._fd is not None and hasattr(os, "preadv"):
                while got < n:
                    k = os.preadv(self._fd, [view[got:]], offset + got)
                    self.read_calls += 1
                    if not k:
                        break
                    got += k
            else:
                with self._lock:
                    self._f.seek(offset)
                    readinto = getattr(self._f, "readinto", None)
                    while got < n:
                        if readinto is not None:
                            k = readinto(view[got:])
                        else:
                            data = self._f.read(n - got)
                            k = len(data)
                            view[got : got + k] = data
                        self.read_calls += 1
                        if not k:
                            break
                        got += k
        except OSError as exc:
            raise CartonFormatError("E-IO", self._where(f"read failed: {exc.strerror or exc}"), member=member) from None
        self.bytes_read += got
        if got != n:
            raise CartonFormatError("E-ZIP-TRUNCATED", f"file ends {n - got} bytes early", member=member)

    # -- open: end records and central directory --------------------------------------------

    def _err(self, code: str, message: str, member: str | None = None) -> CartonFormatError:
        return CartonFormatError(code, self._where(message) if member is None else message, member=member)

    def _load(self) -> None:
        try:
            size = self._f.seek(0, io.SEEK_END)
            if size is None:  # some file-like objects do not return the position
                size = self._f.tell()
        except OSError as exc:
            raise self._err("E-IO", f"cannot seek: {exc.strerror or exc}") from None
        self.size = size
        if size < EOCD_SIZE:
            raise self._err("E-ZIP-NOT-ZIP", f"not a zip archive ({size} bytes, too short for an end record)")
        tail_start = max(0, size - TAIL_BYTES)
        tail = self._read_exact(tail_start, size - tail_start)
        in_tail = self._find_eocd(tail)
        eocd_pos = tail_start + in_tail
        end = parse_eocd(tail, in_tail)
        self.comment_length = end.comment_length
        if end.disk_number or end.cd_disk:
            raise self._err("E-ZIP-MULTIDISK", "multi-disk (split) archives are not supported")

        def peek(offset: int, n: int) -> bytes:
            if offset >= tail_start:
                return tail[offset - tail_start : offset - tail_start + n]
            return self._read_at(offset, n)

        locator_pos = eocd_pos - ZIP64_LOCATOR_SIZE
        if locator_pos >= 0 and peek(locator_pos, 4) == ZIP64_LOCATOR_SIG_BYTES:
            end, cd_end = self._zip64_end(end, locator_pos, peek)
            self.zip64 = True
        else:
            if end.cd_size == U32_MAX or end.cd_offset == U32_MAX:
                raise self._err("E-ZIP-ZIP64", "the end record needs zip64 end records, which are missing")
            cd_end = eocd_pos
        if end.entries_on_disk != end.entries_total:
            raise self._err("E-ZIP-MULTIDISK", "the end record counts entries on other disks")
        count, cd_size, cd_offset = end.entries_total, end.cd_size, end.cd_offset
        if count > self._limits.max_entries:
            raise self._err("E-LIMIT-ENTRY-COUNT", f"{count} members (limit {self._limits.max_entries})")
        if cd_size > self._limits.max_central_directory_bytes:
            raise self._err(
                "E-LIMIT-CD-SIZE", f"central directory of {cd_size} bytes (limit {self._limits.max_central_directory_bytes})"
            )
        if cd_offset + cd_size != cd_end:
            raise self._misplaced_cd(count, cd_size, cd_offset, cd_end, peek)
        if count == 0 and cd_offset != 0:
            raise self._err("E-ZIP-CD-MISMATCH", f"the end record declares no members but {cd_offset} bytes precede it")
        if count * CENTRAL_SIZE > cd_size:
            raise self._err("E-ZIP-CD-MISMATCH", f"{count} entries cannot fit in a {cd_size}-byte central directory")
        self.cd_offset, self.cd_size = cd_offset, cd_size
        if cd_offset >= tail_start:
            cd = tail[cd_offset - tail_start : cd_end - tail_start]
        else:
            cd = self._read_exact(cd_offset, tail_start - cd_offset) + tail[: cd_end - tail_start]
        self.entries = self._parse_cd(cd, count)
        self._check_entries()

    def _find_eocd(self, tail: bytes) -> int:
        """Where the end record starts in ``tail``: the one signature whose comment length reaches
        exactly the end of the file (FMT-ZIP-1).  A comment that holds a second such record is
        ambiguous (two readers could see two archives), so it is refused."""
        candidates = []
        pos = tail.rfind(EOCD_SIG_BYTES)
        last_seen = pos
        while pos >= 0:
            after = len(tail) - pos - EOCD_SIZE
            if after >= 0 and int.from_bytes(tail[pos + 20 : pos + 22], "little") == after:
                candidates.append(pos)
            pos = tail.rfind(EOCD_SIG_BYTES, 0, pos)
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise self._err(
                "E-ZIP-MALFORMED",
                f"ambiguous end record: the archive comment holds another end record (at {len(tail) - candidates[0]} "
                f"and {len(tail) - candidates[1]} bytes from the end)",
            )
        if last_seen < 0:
            hint = ""
            if self._read_at(0, 4) == LOCAL_SIG_BYTES:
                hint = "; it starts like one, so it is probably truncated (an interrupted download or copy?)"
            raise self._err("E-ZIP-NOT-ZIP", f"not a zip archive (no end of central directory record){hint}")
        after = len(tail) - last_seen - EOCD_SIZE
        if after < 0:
            raise self._err("E-ZIP-TRUNCATED", "the file ends inside the end of central directory record")
        comment_length = int.from_bytes(tail[last_seen + 20 : last_seen + 22], "little")
        if comment_length > after:
            raise self._err("E-ZIP-TRUNCATED", "the file ends inside the archive comment")
        raise self._err("E-ZIP-UNACCOUNTED-DATA", f"{after - comment_length} bytes follow the end record")

    def _zip64_end(self, end: EndRecord, locator_pos: int, peek: Any) -> tuple[EndRecord, int]:
        locator = peek(locator_pos, ZIP64_LOCATOR_SIZE)
        disk, record_pos, disks = parse_zip64_locator(locator)
        if disk != 0 or disks > 1:
            raise self._err("E-ZIP-MULTIDISK", "the zip64 locator refers to another disk")
        expected = locator_pos - ZIP64_EOCD_SIZE
        if record_pos != expected or expected < 0:
            raise self._err(
                "E-ZIP-ZIP64", f"the zip64 locator points to {record_pos}, but the zip64 end record must be at {expected}"
            )
        record = peek(expected, ZIP64_EOCD_SIZE)
        if record[:4] != ZIP64_EOCD_SIG_BYTES:
            raise self._err("E-ZIP-ZIP64", f"no zip64 end record at {expected}")
        record_size, end64 = parse_zip64_eocd(record)
        if record_size != ZIP64_EOCD_SIZE - 12:
            raise self._err("E-ZIP-ZIP64", f"zip64 end record declares {record_size} bytes (extensible data is not supported)")
        if end64.disk_number or end64.cd_disk:
            raise self._err("E-ZIP-MULTIDISK", "the zip64 end record refers to another disk")
        pairs = [
            (end.entries_on_disk, end64.entries_on_disk, U16_MAX),
            (end.entries_total, end64.entries_total, U16_MAX),
            (end.cd_size, end64.cd_size, U32_MAX),
            (end.cd_offset, end64.cd_offset, U32_MAX),
        ]
        for value32, value64, sentinel in pairs:
            if value32 != sentinel and value32 != value64:
                raise self._err("E-ZIP-ZIP64", "the end record and the zip64 end record disagree")
        return end64, expected

    def _misplaced_cd(self, count: int, cd_size: int, cd_offset: int, cd_end: int, peek: Any) -> CartonFormatError:
        """The central directory does not end where the end records begin: say why."""
        declared_end = cd_offset + cd_size
        if declared_end < cd_end and peek(declared_end, 4) in (EOCD_SIG_BYTES, ZIP64_EOCD_SIG_BYTES):
            return self._err("E-ZIP-UNACCOUNTED-DATA", f"{cd_end - declared_end} bytes follow an earlier end record")
        real_start = cd_end - cd_size
        shift = real_start - cd_offset
        if (
            count
            and shift > 0
            and peek(real_start, 4) == CENTRAL_SIG_BYTES
            and peek(shift, 4) == LOCAL_SIG_BYTES  # every offset is off by the same prefix
        ):
            return self._err(
                "E-ZIP-UNACCOUNTED-DATA",
                f"{real_start - cd_offset} bytes precede the archive (offsets are relative to a later start)",
            )
        return self._err(
            "E-ZIP-CD-MISMATCH",
            f"the central directory ({cd_size} bytes at {cd_offset}) does not end where the end record begins ({cd_end})",
        )

    def _parse_cd(self, cd: bytes, count: int) -> list[ZipEntry]:
        entries: list[ZipEntry] = []
        pos = 0
        end = len(cd)
        for index in range(count):
            if pos + CENTRAL_SIZE > end:
                raise self._err("E-ZIP-CD-MISMATCH", f"the central directory holds fewer than the {count} entries declared")
            if cd[pos : pos + 4] != CENTRAL_SIG_BYTES:
                raise self._err("E-ZIP-MALFORMED", f"central directory entry {index} has a bad signature")
            header = parse_central(cd, pos)
            name_end = pos + CENTRAL_SIZE + header.name_length
            extra_end = name_end + header.extra_length
            next_pos = extra_end + header.comment_length
            if next_pos > end:
                raise self._err("E-ZIP-CD-MISMATCH", f"central directory entry {index} runs past the central directory")
            entries.append(self._entry_from(header, cd[pos + CENTRAL_SIZE : name_end], cd[name_end:extra_end]))
            pos = next_pos
        if pos != end:
            raise self._err("E-ZIP-CD-MISMATCH", f"{end - pos} bytes follow the {count} central directory entries declared")
        return entries

    def _decode_name(self, raw: bytes, flags: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            flagged = "UTF-8 flag is set" if flags & FLAG_UTF8 else "not UTF-8 (legacy code page?)"
            raise self._err("E-ZIP-NAME-ENCODING", f"member name {raw!r} is not valid UTF-8 ({flagged})") from None

    def _check_unicode_path(self, extras: list[tuple[int, bytes]], raw: bytes, name: str) -> None:
        """A 0x7075 (Info-ZIP Unicode Path) field must agree with the name, or tools disagree."""
        for hid, data in extras:
            if hid != UNICODE_PATH_EXTRA_ID:
                continue
            ok = len(data) >= 5 and data[0] == 1 and int.from_bytes(data[1:5], "little") == zlib.crc32(raw)
            if ok:
                try:
                    ok = data[5:].decode("utf-8") == name
                except UnicodeDecodeError:
                    ok = False
            if not ok:
                raise CartonFormatError("E-ZIP-NAME-ENCODING", "the Unicode Path extra field disagrees with the name", member=name)

    def _entry_from(self, h: CentralHeader, raw: bytes, extra: bytes) -> ZipEntry:
        name = self._decode_name(raw, h.flags)
        is_dir = name.endswith("/")
        check_member_path(name, self._limits, is_dir=is_dir)
        if (h.version_needed & 0xFF) > MAX_VERSION_NEEDED:
            raise CartonFormatError("E-ZIP-MALFORMED", f"needs zip version {(h.version_needed & 0xFF) / 10:.1f}", member=name)
        if h.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADER) or h.method == METHOD_AES:
            raise CartonFormatError("E-ZIP-ENCRYPTED", "encrypted members are not supported", member=name)
        if h.flags & FLAG_PATCHED:
            raise CartonFormatError("E-ZIP-METHOD", "compressed patched data (flag bit 5) is not supported", member=name)
        if h.flags & ~FLAGS_ALLOWED & 0xFFFF:
            raise CartonFormatError("E-ZIP-MALFORMED", f"unknown general purpose flags 0x{h.flags:04x}", member=name)
        if h.method not in SUPPORTED_METHODS:
            raise CartonFormatError("E-ZIP-METHOD", f"compression method {h.method} is not stored, deflate or zstd", member=name)
        if h.comment_length:
            self.commented_members.append(name)
        extras = iter_extras(extra, name)
        zip64 = [data for hid, data in extras if hid == ZIP64_EXTRA_ID]
        if len(zip64) > 1:
            raise CartonFormatError("E-ZIP-MALFORMED", "more than one zip64 extra field", member=name)
        values = [h.uncompressed_size, h.compressed_size, h.header_offset, h.disk_start]
        sentinels = [U32_MAX, U32_MAX, U32_MAX, U16_MAX]
        if zip64:
            values = resolve_zip64(zip64[0], values, sentinels, exact=True, member=name)
        elif any(v == s for v, s in zip(values, sentinels)):
            raise CartonFormatError("E-ZIP-MALFORMED", "a 0xFFFFFFFF field without a zip64 extra field", member=name)
        usize, csize, offset, disk = values
        if disk != 0:
            raise CartonFormatError("E-ZIP-MULTIDISK", "member starts on another disk", member=name)
        self._check_unicode_path(extras, raw, name)

        create_system = h.version_made_by >> 8
        is_symlink = False
        if create_system == CREATE_UNIX:
            kind = (h.external_attr >> 16) & S_IFMT
            if kind == S_IFLNK:
                if is_dir:
                    raise CartonFormatError("E-ZIP-SYMLINK", "a directory entry cannot be a symlink", member=name)
                if not name.startswith("model/"):
                    raise CartonFormatError("E-ZIP-SYMLINK", "symlink members are allowed only under model/", member=name)
                is_symlink = True
            elif kind == S_IFDIR:
                if not is_dir:
                    raise CartonFormatError("E-ZIP-NOT-REGULAR", "directory mode on a name without a trailing '/'", member=name)
            elif kind not in (0, S_IFREG):
                what = _FILE_TYPES.get(kind, f"file type 0o{kind:o}")
                raise CartonFormatError("E-ZIP-NOT-REGULAR", f"member is a {what}", member=name)
        if is_dir and usize:
            raise CartonFormatError("E-ZIP-NOT-REGULAR", "directory entry holds data", member=name)
        if h.method == METHOD_STORED and csize != usize:
            raise CartonFormatError(
                "E-ZIP-MALFORMED", f"stored member declares {csize} compressed but {usize} uncompressed bytes", member=name
            )
        limits = self._limits
        if usize > limits.max_member_bytes:
            raise CartonFormatError(
                "E-LIMIT-MEMBER-SIZE", f"member declares {usize} bytes (limit {limits.max_member_bytes})", member=name
            )
        if usize > limits.ratio_floor_bytes and usize > csize * limits.max_compression_ratio:
            raise CartonFormatError(
                "E-LIMIT-RATIO",
                f"member declares {usize} bytes from {csize} compressed (ratio limit {limits.max_compression_ratio})",
                member=name,
            )
        return ZipEntry(
            name=name,
            method=h.method,
            flags=h.flags,
            crc32=h.crc32,
            compressed_size=csize,
            uncompressed_size=usize,
            header_offset=offset,
            external_attr=h.external_attr,
            create_system=create_system,
            is_dir=is_dir,
            is_symlink=is_symlink,
            raw_name=raw,
        )

    def _check_entries(self) -> None:
        """Cross-entry rules from the central directory alone: duplicates, totals, placement."""
        keys: dict[str, str] = {}
        total = 0
        for e in self.entries:
            if e.name in self._by_name:
                raise CartonFormatError("E-ZIP-DUPLICATE", "two members have this name", member=e.name)
            key = collision_key(e.name)
            if key in keys:
                raise CartonFormatError(
                    "E-ZIP-DUPLICATE", f"collides with {keys[key]!r} after case folding / normalisation", member=e.name
                )
            keys[key] = e.name
            self._by_name[e.name] = e
            total += e.uncompressed_size
            if total > self._limits.max_total_bytes:
                raise self._err(
                    "E-LIMIT-TOTAL-SIZE", f"members declare more than {self._limits.max_total_bytes} bytes in total"
                )
        # A file that is also a parent directory of another member cannot be extracted.  Sorted
        # keys keep this linear in the central directory size (no per-prefix strings).
        by_key = sorted(keys.items())
        sorted_keys = [k for k, _ in by_key]
        for key, name in by_key:
            if not name.endswith("/"):
                other = _first_under(sorted_keys, key)
                if other is not None:
                    raise CartonFormatError(
                        "E-ZIP-DUPLICATE", f"is a file but also the directory of {by_key[other][1]!r}", member=name
                    )
        self._sorted_names = sorted(self._by_name)

        cd_start = self.cd_offset
        for previous, e in zip(self.entries, self.entries[1:]):
            if e.header_offset <= previous.header_offset:
                raise CartonFormatError(
                    "E-ZIP-OVERLAP",
                    f"local header offset {e.header_offset} is not after {previous.name!r}'s "
                    "(shared data, or a central directory out of offset order)",
                    member=e.name,
                )
        previous_end = 0
        for i, e in enumerate(self.entries):
            offset = e.header_offset
            if offset >= self.size:
                raise CartonFormatError("E-ZIP-TRUNCATED", f"local header offset {offset} is past the end of the file", member=e.name)
            if offset >= cd_start:
                raise CartonFormatError(
                    "E-ZIP-OVERLAP", f"local header offset {offset} lies in the central directory or end records", member=e.name
                )
            if i == 0 and offset != 0:
                raise CartonFormatError(
                    "E-ZIP-UNACCOUNTED-DATA", self._where(f"{offset} bytes precede the first member"), member=e.name
                )
            if offset < previous_end:
                raise CartonFormatError("E-ZIP-OVERLAP", f"local header at {offset} overlaps the previous member", member=e.name)
            minimal_end = offset + LOCAL_SIZE + len(e.raw_name) + e.compressed_size
            if e.flags & FLAG_DATA_DESCRIPTOR:
                minimal_end += MIN_DESCRIPTOR
            if minimal_end > cd_start:
                raise CartonFormatError("E-ZIP-OVERLAP", "member data runs into the central directory", member=e.name)
            previous_end = minimal_end
            self._limit[e.name] = self.entries[i + 1].header_offset if i + 1 < len(self.entries) else cd_start

    # -- members ---------------------------------------------------------------------------

    def _entry(self, name_or_entry: str | ZipEntry) -> ZipEntry:
        name = name_or_entry.name if isinstance(name_or_entry, ZipEntry) else name_or_entry
        entry = self._by_name.get(name) if isinstance(name, str) else None
        if entry is None or (isinstance(name_or_entry, ZipEntry) and entry != name_or_entry):
            raise CartonFormatError("E-ARG-INVALID", "no such member in this archive", member=str(name))
        return entry

    def _read_local(self, entry: ZipEntry, prefetch: int) -> _Local:
        """Read and check the local header (plus ``prefetch`` data bytes in the same read)."""
        name = entry.name
        offset = entry.header_offset
        header_guess = LOCAL_SIZE + len(entry.raw_name) + LOCAL_EXTRA_GUESS
        buf = self._read_at(offset, min(header_guess + prefetch, self.size - offset), name)
        if len(buf) < LOCAL_SIZE:
            raise CartonFormatError("E-ZIP-TRUNCATED", "the file ends inside a local header", member=name)
        if buf[:4] != LOCAL_SIG_BYTES:
            raise CartonFormatError("E-ZIP-HEADER-MISMATCH", f"no local header at offset {offset}", member=name)
        lh = parse_local(buf)
        header_len = LOCAL_SIZE + lh.name_length + lh.extra_length
        if offset + header_len > self.size:
            raise CartonFormatError("E-ZIP-TRUNCATED", "the file ends inside a local header", member=name)
        if len(buf) < header_len:
            buf += self._read_exact(offset + len(buf), header_len - len(buf), name)
        raw_name = buf[LOCAL_SIZE : LOCAL_SIZE + lh.name_length]
        if raw_name != entry.raw_name:
            raise CartonFormatError("E-ZIP-HEADER-MISMATCH", f"local header names {raw_name!r}", member=name)
        if lh.method != entry.method:
            raise CartonFormatError(
                "E-ZIP-HEADER-MISMATCH", f"local header says method {lh.method}, central directory {entry.method}", member=name
            )
        if (lh.flags ^ entry.flags) & ~FLAG_DATA_DESCRIPTOR:
            raise CartonFormatError(
                "E-ZIP-HEADER-MISMATCH", f"local flags 0x{lh.flags:04x} differ from central 0x{entry.flags:04x}", member=name
            )
        extras = iter_extras(buf[LOCAL_SIZE + lh.name_length : header_len], name)
        zip64 = [data for hid, data in extras if hid == ZIP64_EXTRA_ID]
        if len(zip64) > 1:
            raise CartonFormatError("E-ZIP-MALFORMED", "more than one zip64 extra field in the local header", member=name)
        self._check_unicode_path(extras, raw_name, name)
        has_descriptor = bool(lh.flags & FLAG_DATA_DESCRIPTOR)
        if not has_descriptor:
            usize, csize = lh.uncompressed_size, lh.compressed_size
            if U32_MAX in (usize, csize):
                if not zip64:
                    raise CartonFormatError(
                        "E-ZIP-MALFORMED", "local sizes are 0xFFFFFFFF without a zip64 extra field", member=name
                    )
                usize, csize = resolve_zip64(zip64[0], [usize, csize], [U32_MAX, U32_MAX], exact=False, member=name)
            if (lh.crc32, csize, usize) != (entry.crc32, entry.compressed_size, entry.uncompressed_size):
                raise CartonFormatError(
                    "E-ZIP-HEADER-MISMATCH",
                    f"local header says crc {lh.crc32:08x}, {csize} -> {usize} bytes; central directory says "
                    f"crc {entry.crc32:08x}, {entry.compressed_size} -> {entry.uncompressed_size} bytes",
                    member=name,
                )
        data_start = offset + header_len
        data_end = data_start + entry.compressed_size
        if data_end + (MIN_DESCRIPTOR if has_descriptor else 0) > self._limit[name]:
            raise CartonFormatError(
                "E-ZIP-OVERLAP", "member data (after a longer local header) runs into the next member", member=name
            )
        return _Local(
            data_start=data_start,
            data_end=data_end,
            prefetched=buf[header_len : header_len + entry.compressed_size],
            has_descriptor=has_descriptor,
            descriptor_zip64=bool(zip64),
        )

    def _descriptor_lengths(self, entry: ZipEntry, local: _Local) -> list[int]:
        """Lengths of the data descriptor readings that agree with the central directory."""
        n = min(24, self._limit[entry.name] - local.data_end)
        buf = self._read_at(local.data_end, n, entry.name)
        want = (entry.crc32, entry.compressed_size, entry.uncompressed_size)
        lengths = []
        for base in (4, 0):
            if base and int.from_bytes(buf[:4], "little") != DATA_DESCRIPTOR_SIG:
                continue
            for width in (8, 4) if local.descriptor_zip64 else (4,):
                need = base + 4 + 2 * width
                if len(buf) < need:
                    continue
                crc = int.from_bytes(buf[base : base + 4], "little")
                csize = int.from_bytes(buf[base + 4 : base + 4 + width], "little")
                usize = int.from_bytes(buf[base + 4 + width : need], "little")
                if (crc, csize, usize) == want:
                    lengths.append(need)
        if not lengths:
            raise CartonFormatError("E-ZIP-HEADER-MISMATCH", "data descriptor disagrees with the central directory", member=entry.name)
        return lengths

    def _link_target(self, link: ZipEntry, origin: str) -> str:
        if link.uncompressed_size > MAX_SYMLINK_BYTES:
            raise CartonFormatError("E-ZIP-SYMLINK", f"symlink {link.name} is longer than {MAX_SYMLINK_BYTES} bytes", member=origin)
        data = self.read_member(link, MAX_SYMLINK_BYTES)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise CartonFormatError("E-ZIP-SYMLINK", f"symlink {link.name} target is not UTF-8", member=origin) from None

    def _follow(self, link_name: str, target: str, origin: str) -> ZipEntry:
        def bad(why: str) -> CartonFormatError:
            return CartonFormatError("E-ZIP-SYMLINK", f"symlink {link_name} -> {target!r}: {why}", member=origin)

        if not target:
            raise bad("empty target")
        if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
            raise bad("absolute target")
        if "\\" in target or any(ord(c) < 0x20 or c == "\x7f" for c in target):
            raise bad("target contains a backslash or control character")
        if target.endswith("/"):
            raise bad("directory target")
        parts = link_name.split("/")[:-1]
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise bad("target escapes the archive")
                parts.pop()
            else:
                parts.append(part)
        resolved = "/".join(parts)
        if not resolved.startswith("model/"):
            raise bad("target escapes model/")
        entry = self._by_name.get(resolved)
        if entry is None:
            if _first_under(self._sorted_names, resolved) is not None:
                raise bad("directory target")
            raise bad("target does not exist")
        if entry.is_dir:
            raise bad("directory target")
        return entry


def _first_under(sorted_names: list[str], directory: str) -> int | None:
    """Index of the first name inside ``directory`` (i.e. starting with ``directory/``), if any."""
    prefix = directory + "/"
    i = bisect.bisect_left(sorted_names, prefix)
    return i if i < len(sorted_names) and sorted_names[i].startswith(prefix) else None


class _MemberData:
    """The compressed bytes of one member: a prefetched head, then positional reads."""

    def __init__(self, reader: ZipReader, start: int, length: int, prefetched: bytes, member: str) -> None:
        self._reader = reader
        self._pos = start
        self._left = length
        self._head = memoryview(prefetched)
        self._member = member

    def read(self, n: int) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        if n <= 0:
            return b""
        if len(self._head):
            part = self._head[:n]
            self._head = self._head[len(part) :]
            rest = n - len(part)
            tail = self._reader._read_exact(self._pos + len(part), rest, self._member) if rest else b""
            data = bytes(part) + tail if tail else bytes(part)
        else:
            data = self._reader._read_exact(self._pos, n, self._member)
        self._pos += n
        self._left -= n
        return data

    def readinto(self, view: memoryview) -> int:
        n = min(len(view), self._left)
        if n <= 0:
            return 0
        k = min(len(self._head), n)
        if k:
            view[:k] = self._head[:k]
            self._head = self._head[k:]
        if n > k:
            self._reader._readinto_at(self._pos + k, view[k:n], self._member)
        self._pos += n
        self._left -= n
        return n


class ZipMemberStream(io.RawIOBase):
    """Decoded bytes of one member.  At its end the size, the CRC-32 and (if any) the data
    descriptor are checked: the read that reaches the end raises instead of returning data that
    failed.  ``read(n)`` returns exactly ``n`` bytes unless the member ends first."""

    def __init__(self, reader: ZipReader, entry: ZipEntry, local: _Local) -> None:
        super().__init__()
        self._reader = reader
        self.entry = entry
        self._local = local
        self._left = entry.uncompressed_size
        self._data = _MemberData(reader, local.data_start, entry.compressed_size, local.prefetched, entry.name)
        self._stored = entry.method == METHOD_STORED
        self._decoder = make_decoder(entry.method, self._data, entry.name)
        self._crc = Crc32()
        self._finished = False
        self._error: CartonError | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    def readable(self) -> bool:
        return True

    def _fail(self, exc: BaseException) -> CartonError:
        if isinstance(exc, CartonError):
            err = exc
        else:
            err = self._reader._internal(exc, self.entry.name)
        self._error = err
        return err

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed member stream")
        if self._error is not None:
            raise self._error

    def read(self, n: int | None = -1) -> bytes:
        self._check_open()
        if n is None or n < 0:
            return self.readall()
        try:
            n = min(n, self._left)
            if n == 0:
                if self._left == 0:
                    self._finish()
                return b""
            if self._stored:
                data = self._data.read(n)
            else:
                chunks = []
                got = 0
                while got < n:
                    chunk = self._decoder.read(min(n - got, OUTPUT_CHUNK))
                    if not chunk:
                        raise CartonFormatError(
                            "E-ZIP-SIZE-MISMATCH",
                            f"data decodes to {self.entry.uncompressed_size - self._left + got} bytes, "
                            f"{self.entry.uncompressed_size} declared",
                            member=self.entry.name,
                        )
                    chunks.append(chunk)
                    got += len(chunk)
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._left -= len(data)
            self._crc.update(data)
            if self._left == 0:
                self._finish()
            return data
        except Exception as exc:  # noqa: BLE001 - last-resort conversion into a coded error
            raise self._fail(exc) from None

    def readall(self) -> bytes:
        self._check_open()
        if self._stored:
            return self.read(self._left)
        chunks = []
        while True:
            chunk = self.read(OUTPUT_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def readinto(self, buffer: Any) -> int:
        self._check_open()
        view = memoryview(buffer).cast("B")
        if not self._stored or len(view) >= PARALLEL_MIN:
            # Through an immutable bytes object, so that its CRC-32 runs on the worker thread
            # while the caller processes the buffer (one memcpy is cheaper than a serial CRC).
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        try:
            n = min(len(view), self._left)
            if n == 0:
                if self._left == 0:
                    self._finish()
                return 0
            self._data.readinto(view[:n])
            self._left -= n
            self._crc.update(view[:n])
            if self._left == 0:
                self._finish()
            return n
        except Exception as exc:  # noqa: BLE001 - last-resort conversion into a coded error
            raise self._fail(exc) from None

    def _finish(self) -> None:
        """All declared bytes were produced: no more may follow, and they must be the right ones."""
        if self._finished:
            return
        entry = self.entry
        if not self._stored:
            if self._decoder.read(1):
                raise CartonFormatError(
                    "E-ZIP-SIZE-MISMATCH",
                    f"data decodes to more than the {entry.uncompressed_size} bytes declared",
                    member=entry.name,
                )
            self._decoder.finish()
        crc = self._crc.value()
        if crc != entry.crc32:
            raise CartonFormatError(
                "E-ZIP-CRC", f"CRC-32 is {crc:08x}, the headers say {entry.crc32:08x}", member=entry.name
            )
        if self._local.has_descriptor:
            self._reader._descriptor_lengths(entry, self._local)
        self._finished = True


__all__ = ["ZipEntry", "ZipMemberStream", "ZipReader"]
