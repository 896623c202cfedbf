"""A deterministic, streaming zip writer.

Deterministic: fixed timestamps (1980-01-01 00:00:00), fixed attributes and versions, no extra
fields except zip64 where needed, entries in call order: the same inputs give the same bytes.

Streaming: member data goes through in chunks of a few MiB (peak memory does not grow with the
member); the local header is written first with placeholder CRC/sizes and patched afterwards by
seeking back, so no data descriptors are needed.  SHA-256 and CRC-32 are computed while the data
passes (CRC-32 and the file write overlap SHA-256 on a worker thread, see ``hashing``).  Stored
members from regular files are copied by the kernel and hashed behind the copy (``filecopy``).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from .._paths import check_member_path, collision_key
from ..errors import CartonFormatError
from ..integrity import CHUNK_SIZE, DigestPair
from ..limits import DEFAULT_LIMITS, Limits
from . import filecopy
from .codecs import make_encoder
from .records import (
    CREATE_UNIX,
    FLAG_UTF8,
    LOCAL_SIZE,
    METHOD_DEFLATE,
    METHOD_STORED,
    METHOD_ZSTD,
    S_IFLNK,
    S_IFREG,
    SUPPORTED_METHODS,
    U16_MAX,
    U32_MAX,
    CentralHeader,
    EndRecord,
    pack_central,
    pack_eocd,
    pack_local,
    pack_zip64_eocd,
    pack_zip64_extra,
    pack_zip64_locator,
)

log = logging.getLogger(__name__)

#: DOS date 1980-01-01 and time 00:00:00: the earliest representable, and the same every run.
DOS_DATE = 0x0021
DOS_TIME = 0
#: "Version made by": Unix, APPNOTE 6.3 (the version that defines method 93, zstd).
VERSION_MADE_BY = (CREATE_UNIX << 8) | 63
VERSION_NEEDED = {METHOD_STORED: 10, METHOD_DEFLATE: 20, METHOD_ZSTD: 63}
VERSION_ZIP64 = 45
FILE_ATTR = (S_IFREG | 0o644) << 16
SYMLINK_ATTR = (S_IFLNK | 0o777) << 16
#: A compressed member can exceed its input a little (incompressible data): reserve zip64 in the
#: local header when the input is this close to 4 GiB.
_EXPANSION_MARGIN = 16 * 1024 * 1024


@dataclass(frozen=True)
class WrittenMember:
    """What was written for one member (``sha256`` is lowercase hex of the uncompressed bytes)."""

    name: str
    method: int
    sha256: str
    crc32: int
    size: int
    compressed_size: int


@dataclass(frozen=True)
class _Record:
    raw_name: bytes
    flags: int
    method: int
    version_needed: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    header_offset: int
    external_attr: int


class ZipWriter:
    """Writes members to a seekable binary file positioned at offset 0; :meth:`close` writes the
    central directory (it does not close the file).  ``force_zip64`` writes zip64 extras and end
    records even for small archives (tests, conformance fixtures).

    ``progress`` (an attribute too, so it may change between members) is called on the
    caller's thread with the size of each chunk of member data (uncompressed) once it is
    handed on to be written: a few calls per member of CHUNK_SIZE, enough to move a bar."""

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        force_zip64: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        chunk_size: int = CHUNK_SIZE,
        progress: Callable[[int], Any] | None = None,
    ) -> None:
        try:
            start = fileobj.tell()
        except (OSError, AttributeError, io.UnsupportedOperation) as exc:
            raise CartonFormatError("E-ARG-INVALID", f"the zip writer needs a seekable file: {exc}") from None
        if start != 0:
            raise CartonFormatError("E-ARG-INVALID", f"the zip writer needs a file positioned at 0, not {start}")
        self._f = fileobj
        self._force_zip64 = force_zip64
        self._limits = limits
        self._chunk_size = chunk_size
        self.progress = progress
        self._buffer: bytearray | None = None
        self._pos = 0
        self._records: list[_Record] = []
        self._names: dict[str, str] = {}  # collision key -> name
        self._files: set[str] = set()  # collision keys of non-directory members
        self._dirs: set[str] = set()  # collision keys of their parent directories
        self._closed = False
        self._broken = False

    # -- public API ------------------------------------------------------------------------

    def add_stream(
        self,
        name: str,
        src: IO[bytes],
        *,
        method: int,
        size_hint: int | None = None,
        level: int | None = None,
        zstd_content_size: bool = True,
    ) -> WrittenMember:
        """Stream ``src`` to its end into member ``name``.

        ``size_hint`` (the exact size, if known) decides whether the local header needs a zip64
        field, and is written into zstd frame headers when ``zstd_content_size``; a source of a
        different size then fails with ``E-ARG-INVALID`` (and the member is rolled back).
        """
        return self._add(
            name,
            self._chunks_of(src, name),
            method=method,
            size=size_hint,
            level=level,
            zstd_content_size=zstd_content_size,
            external_attr=FILE_ATTR,
            source=src,
        )

    def add_bytes(
        self,
        name: str,
        data: bytes | bytearray | memoryview,
        *,
        method: int,
        level: int | None = None,
        zstd_content_size: bool = True,
    ) -> WrittenMember:
        view = memoryview(data).cast("B")
        step = self._chunk_size
        chunks = (view[i : i + step] for i in range(0, len(view), step))
        return self._add(
            name, chunks, method=method, size=len(view), level=level,
            zstd_content_size=zstd_content_size, external_attr=FILE_ATTR,
        )

    def add_file(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        method: int,
        level: int | None = None,
        zstd_content_size: bool = True,
    ) -> WrittenMember:
        try:
            src = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with block below
        except OSError as exc:
            raise CartonFormatError("E-IO", f"{os.fspath(path)}: {exc.strerror or exc}", member=name) from None
        with src:
            try:
                size = os.fstat(src.fileno()).st_size
            except OSError as exc:  # pragma: no cover - fstat of an open file
                raise CartonFormatError("E-IO", f"{os.fspath(path)}: {exc.strerror or exc}", member=name) from None
            return self.add_stream(
                name, src, method=method, size_hint=size, level=level, zstd_content_size=zstd_content_size
            )

    def add_symlink(self, name: str, target: str) -> WrittenMember:
        """A Unix symlink member (stored; data = ``target``, relative to the link's directory).

        As in the original writer, only links under ``model/`` whose target stays in ``model/``
        are allowed.  The returned hashes are of the link text; the MANIFEST records the target's.
        """
        self._check_symlink(name, target)
        data = target.encode("utf-8")
        chunks = iter([memoryview(data)]) if data else iter([])
        return self._add(
            name, chunks, method=METHOD_STORED, size=len(data), level=None,
            zstd_content_size=False, external_attr=SYMLINK_ATTR,
        )

    def close(self) -> None:
        """Write the central directory and end records (idempotent)."""
        if self._closed:
            return
        self._check_usable()
        try:
            self._write_central_directory()
        except OSError as exc:
            self._broken = True
            raise CartonFormatError("E-IO", f"writing the central directory failed: {_os_message(exc)}") from None
        self._closed = True

    def __enter__(self) -> ZipWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._broken = True

    # -- members ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise CartonFormatError("E-ARG-INVALID", "the zip writer is closed")
        if self._broken:
            raise CartonFormatError("E-ARG-INVALID", "the zip writer failed earlier and cannot continue")

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str):
            raise CartonFormatError("E-ARG-INVALID", f"member names are str, not {type(name).__name__}")
        check_member_path(name, self._limits)
        key = collision_key(name)
        if key in self._names:
            raise CartonFormatError("E-ZIP-DUPLICATE", f"collides with member {self._names[key]!r}", member=name)
        if key in self._dirs:
            raise CartonFormatError("E-ZIP-DUPLICATE", "is already the directory of another member", member=name)
        parts = name.split("/")
        for i in range(1, len(parts)):
            if collision_key("/".join(parts[:i])) in self._files:
                raise CartonFormatError("E-ZIP-DUPLICATE", f"its directory {'/'.join(parts[:i])!r} is a member", member=name)
        if len(self._records) >= self._limits.max_entries:
            raise CartonFormatError("E-LIMIT-ENTRY-COUNT", f"more than {self._limits.max_entries} members", member=name)

    def _remember(self, name: str) -> None:
        key = collision_key(name)
        self._names[key] = name
        self._files.add(key)
        parts = name.split("/")
        for i in range(1, len(parts)):
            self._dirs.add(collision_key("/".join(parts[:i])))

    def _check_symlink(self, name: str, target: str) -> None:
        def bad(why: str) -> CartonFormatError:
            return CartonFormatError("E-ARG-INVALID", f"symlink -> {target!r}: {why}", member=name)

        if not isinstance(name, str) or not name.startswith("model/"):
            raise bad("symlink members are allowed only under model/")
        if not isinstance(target, str) or not target:
            raise bad("empty target")
        if target.startswith("/") or "\\" in target or (len(target) > 1 and target[1] == ":"):
            raise bad("the target must be a relative '/'-separated path")
        if any(ord(c) < 0x20 or c == "\x7f" for c in target) or target.endswith("/"):
            raise bad("the target must name a file")
        parts = name.split("/")[:-1]
        for part in target.split("/"):
            if part == "..":
                if not parts:
                    raise bad("the target escapes the archive")
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        if parts[:1] != ["model"] or len(parts) < 2:
            raise bad("the target escapes model/")

    def _chunks_of(self, src: IO[bytes], name: str) -> Iterator[memoryview | bytes]:
        """Chunks of ``src`` read into one reused buffer (each is consumed before the next read).

        A read error is ``E-IO`` saying so, told apart from a write error of the output."""
        if self._buffer is None:
            self._buffer = bytearray(self._chunk_size)
        buf = self._buffer
        view = memoryview(buf)
        readinto = getattr(src, "readinto", None)
        while True:
            try:
                if readinto is not None:
                    n = readinto(buf)
                    data = view[:n] if n else None
                else:
                    data = src.read(len(buf)) or None
            except OSError as exc:
                raise CartonFormatError("E-IO", f"reading the source failed: {_os_message(exc)}", member=name) from None
            if data is None:
                return
            yield data

    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            n = self._f.write(view)
            if n is None or n >= len(view):
                break
            if n <= 0:
                raise OSError("the file accepted no bytes")
            view = view[n:]
        self._pos += total

    def _add(
        self,
        name: str,
        chunks: Iterator[memoryview | bytes],
        *,
        method: int,
        size: int | None,
        level: int | None,
        zstd_content_size: bool,
        external_attr: int,
        source: IO[bytes] | None = None,
    ) -> WrittenMember:
        self._check_usable()
        if method not in SUPPORTED_METHODS:
            raise CartonFormatError("E-ARG-INVALID", f"compression method must be 0, 8 or 93, not {method!r}", member=name)
        self._check_name(name)
        raw_name = name.encode("utf-8")
        flags = 0 if raw_name.isascii() else FLAG_UTF8
        margin = 0 if method == METHOD_STORED else _EXPANSION_MARGIN
        zip64_local = self._force_zip64 or size is None or size + margin >= U32_MAX
        version_needed = VERSION_NEEDED[method]
        if zip64_local:
            version_needed = max(version_needed, VERSION_ZIP64)
        offset = self._pos
        try:
            self._write_all(
                pack_local(
                    version_needed=version_needed,
                    flags=flags,
                    method=method,
                    mtime=DOS_TIME,
                    mdate=DOS_DATE,
                    crc32=0,
                    compressed_size=U32_MAX if zip64_local else 0,
                    uncompressed_size=U32_MAX if zip64_local else 0,
                    name=raw_name,
                    extra=pack_zip64_extra([0, 0]) if zip64_local else b"",
                )
            )
            digest = self._kernel_copy(source, size) if method == METHOD_STORED and source is not None else None
            if digest is not None:
                csize = digest.size
            else:
                if self.progress is not None:
                    chunks = _reported(chunks, self.progress)
                digest, csize = self._write_data(name, chunks, method, size, level, zstd_content_size)
            usize = digest.size
            if size is not None and usize != size:
                raise CartonFormatError(
                    "E-ARG-INVALID", f"the source gave {usize} bytes, {size} were announced", member=name
                )
            if not zip64_local and max(usize, csize) >= U32_MAX:
                raise CartonFormatError(
                    "E-ARG-INVALID", "the member reached 4 GiB but its size_hint said it would not", member=name
                )
            self._patch_local(offset, raw_name, zip64_local, digest.crc32(), csize, usize)
        except BaseException as exc:
            # An OSError may come from the hash worker thread (the sink writes there): DigestPair
            # re-raises it here, on the caller's thread.
            self._rollback(offset)
            if isinstance(exc, OSError):
                raise CartonFormatError("E-IO", f"writing failed: {_os_message(exc)}", member=name) from None
            raise
        self._remember(name)
        self._records.append(
            _Record(raw_name, flags, method, version_needed, digest.crc32(), csize, usize, offset, external_attr)
        )
        return WrittenMember(name, method, digest.sha256_hex(), digest.crc32(), usize, csize)

    def _kernel_copy(self, src: IO[bytes], size: int | None) -> DigestPair | None:
        """A stored member from a regular file, copied by the kernel and hashed behind the copy
        (see ``filecopy``); None when that does not apply (nothing written, ``src`` unmoved)."""
        try:
            src_fd, out_fd = src.fileno(), self._f.fileno()
            if not filecopy.usable(src_fd, out_fd, size):
                return None
            src_offset = src.tell()
            self._f.flush()
        except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
            return None  # not a file with a descriptor: the read/write path
        digest = filecopy.kernel_copy(src_fd, src_offset, out_fd, self._pos, self.progress)
        if digest is None:
            return None
        self._pos += digest.size
        self._f.seek(self._pos)
        src.seek(src_offset + digest.size)  # read to its end, as the read/write path leaves it
        return digest

    def _write_data(
        self,
        name: str,
        chunks: Iterator[memoryview | bytes],
        method: int,
        size: int | None,
        level: int | None,
        zstd_content_size: bool,
    ) -> tuple[DigestPair, int]:
        if method == METHOD_STORED:
            start = self._pos
            digest = DigestPair(sink=self._write_all)
            for chunk in chunks:
                digest.update(chunk)
            return digest, self._pos - start
        encoder = make_encoder(method, level, size if zstd_content_size else None)
        assert encoder is not None
        csize = 0

        def compress_and_write(chunk: memoryview | bytes) -> None:
            # runs on the hash worker (zlib and zstd release the GIL), overlapping SHA-256
            nonlocal csize
            out = encoder.compress(chunk)
            if out:
                self._write_all(out)
                csize += len(out)

        digest = DigestPair(sink=compress_and_write)
        try:
            for chunk in chunks:
                digest.update(chunk)
            out = encoder.flush()
        except (CartonFormatError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - zstd: "Src size is incorrect" when size_hint was wrong
            raise CartonFormatError(
                "E-ARG-INVALID", f"compression failed (does size_hint match the data?): {exc}", member=name
            ) from None
        self._write_all(out)
        return digest, csize + len(out)

    def _patch_local(self, offset: int, raw_name: bytes, zip64_local: bool, crc: int, csize: int, usize: int) -> None:
        end = self._pos
        f = self._f
        f.seek(offset + 14)
        if zip64_local:
            f.write(crc.to_bytes(4, "little"))
            f.seek(offset + LOCAL_SIZE + len(raw_name) + 4)
            f.write(usize.to_bytes(8, "little") + csize.to_bytes(8, "little"))
        else:
            f.write(crc.to_bytes(4, "little") + csize.to_bytes(4, "little") + usize.to_bytes(4, "little"))
        f.seek(end)

    def _rollback(self, offset: int) -> None:
        """Cut a failed member off so the writer can go on with the next one.

        When that fails too (a buffered file whose seek must first flush what a full disk
        refused) the writer refuses further use; the caller has the original error already, so
        this is no more than a debug message."""
        try:
            self._f.seek(offset)
            self._f.truncate()
            self._pos = offset
        except Exception as exc:  # noqa: BLE001 - the file is in an unknown state: refuse further use
            log.debug("could not roll back a failed member at offset %d: %s", offset, exc)
            self._broken = True

    # -- central directory -----------------------------------------------------------------

    def _write_central_directory(self) -> None:
        force = self._force_zip64
        cd_offset = self._pos
        parts: list[bytes] = []
        for r in self._records:
            parts.append(
                central_entry(
                    r.raw_name, method=r.method, flags=r.flags, crc32=r.crc32, compressed_size=r.compressed_size,
                    uncompressed_size=r.uncompressed_size, header_offset=r.header_offset, version_needed=r.version_needed,
                    external_attr=r.external_attr, force_zip64=force,
                )
            )
        cd = b"".join(parts)
        self._write_all(cd)
        count, cd_size = len(self._records), len(cd)
        self._write_all(end_records(count, cd_size, cd_offset, force))
        log.debug("wrote central directory: %d members, %d bytes at %d", count, cd_size, cd_offset)


def central_entry(
    raw_name: bytes,
    *,
    method: int,
    flags: int,
    crc32: int,
    compressed_size: int,
    uncompressed_size: int,
    header_offset: int,
    version_needed: int,
    external_attr: int,
    force_zip64: bool = False,
) -> bytes:
    """One central directory header.  Both sizes go into the zip64 extra whenever it exists (as
    CPython does): readers of the original's era (async_zip, mid-2023) parse the extra with a
    fixed layout and need both sizes before the offset.  Still APPNOTE-exact: a field is present
    iff its header field is 0xFFFFFFFF."""
    offset_big = force_zip64 or header_offset >= U32_MAX
    sizes_big = force_zip64 or offset_big or max(uncompressed_size, compressed_size) >= U32_MAX
    big = [sizes_big, sizes_big, offset_big]
    values = [uncompressed_size, compressed_size, header_offset]
    extra = pack_zip64_extra([v for v, b in zip(values, big) if b])
    usize, csize, offset = (U32_MAX if b else v for v, b in zip(values, big))
    header = CentralHeader(
        version_made_by=VERSION_MADE_BY,
        version_needed=max(version_needed, VERSION_ZIP64) if extra else version_needed,
        flags=flags,
        method=method,
        mtime=DOS_TIME,
        mdate=DOS_DATE,
        crc32=crc32,
        compressed_size=csize,
        uncompressed_size=usize,
        name_length=len(raw_name),
        extra_length=len(extra),
        comment_length=0,
        disk_start=0,
        internal_attr=0,
        external_attr=external_attr,
        header_offset=offset,
    )
    return pack_central(header, raw_name, extra)


def end_records(count: int, cd_size: int, cd_offset: int, force_zip64: bool = False) -> bytes:
    """The records after a central directory of ``count`` entries and ``cd_size`` bytes at
    ``cd_offset``: the zip64 end record and locator when anything needs them, then the end record."""
    zip64 = force_zip64 or count >= U16_MAX or cd_size >= U32_MAX or cd_offset >= U32_MAX
    out = b""
    if zip64:
        end64 = EndRecord(0, 0, count, count, cd_size, cd_offset)
        out += pack_zip64_eocd(end64, version_made_by=VERSION_MADE_BY, version_needed=VERSION_ZIP64)
        out += pack_zip64_locator(cd_offset + cd_size)

    def clamp(value: int, sentinel: int) -> int:
        return sentinel if force_zip64 or value >= sentinel else value

    end = EndRecord(0, 0, clamp(count, U16_MAX), clamp(count, U16_MAX), clamp(cd_size, U32_MAX), clamp(cd_offset, U32_MAX))
    return out + pack_eocd(end)


def _reported(chunks: Iterator[memoryview | bytes], progress: Callable[[int], Any]) -> Iterator[memoryview | bytes]:
    """``chunks``, calling ``progress(len(chunk))`` as each one is taken."""
    for chunk in chunks:
        yield chunk
        progress(len(chunk))


def _os_message(exc: OSError) -> str:
    """The operating system's words for an error (``No space left on device``)."""
    return exc.strerror or str(exc) or type(exc).__name__


__all__ = [
    "DOS_DATE",
    "DOS_TIME",
    "FILE_ATTR",
    "SYMLINK_ATTR",
    "VERSION_MADE_BY",
    "VERSION_NEEDED",
    "VERSION_ZIP64",
    "WrittenMember",
    "ZipWriter",
]
