"""The zip container as an :class:`~carton_format.sources.ArchiveSource`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, BinaryIO

from ..errors import CartonFormatError, Finding
from ..file_memo import MAX_MEMBERS, Memo, file_identity
from ..limits import DEFAULT_LIMITS, Limits
from ..sources import MemberInfo, StoredSpan
from .reader import ZipDirectory, ZipEntry, ZipReader
from .records import METHOD_DEFLATE, METHOD_STORED, METHOD_ZSTD

METHOD_NAMES = {METHOD_STORED: "stored", METHOD_DEFLATE: "deflate", METHOD_ZSTD: "zstd"}
#: Checked central directories of unchanged local files, by identity and limits (see :mod:`..file_memo`).
_DIRECTORIES: Memo[ZipDirectory] = Memo()


def _member_info(entry: ZipEntry) -> MemberInfo:
    kind = "directory" if entry.is_dir else "symlink" if entry.is_symlink else "file"
    return MemberInfo(entry.name, entry.uncompressed_size, entry.compressed_size, METHOD_NAMES[entry.method], kind)


class ZipSource:
    """A ``.carton`` zip over a seekable binary file (a local file, or a remote one read through
    range requests).  ``path`` is set when the archive is a local file, which is what lets
    :meth:`stored_span` answer."""

    def __init__(
        self, fileobj: IO[bytes], *, limits: Limits = DEFAULT_LIMITS, path: Path | None = None, close_file: bool = False,
        identity: tuple[int, ...] | None = None,
    ) -> None:
        self.path = path
        self.location = str(path) if path is not None else str(getattr(fileobj, "name", None) or getattr(fileobj, "url", None) or "<stream>")
        #: the local file's identity (:func:`..file_memo.file_identity`): what memos of its parse are keyed by; None: no memo
        self.identity = identity
        key = None if identity is None else (identity, limits)
        directory = _DIRECTORIES.get(key)
        self._reader = ZipReader(fileobj, limits=limits, name_for_errors=str(path) if path is not None else None, directory=directory)
        if directory is None and key is not None and len(self._reader.entries) <= MAX_MEMBERS:
            _DIRECTORIES.put(key, self._reader.directory())
        self._reader.owns_file = close_file  # close() closes the file too (a remote file handed over)
        self._members = [_member_info(e) for e in self._reader.entries]
        self._by_name = {m.name: m for m in self._members}

    @classmethod
    def open_path(cls, path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> ZipSource:
        """Open a local archive file (closed by :meth:`close`)."""
        path = Path(path)
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the returned source
        except OSError as exc:
            raise CartonFormatError("E-IO", f"{path}: {exc.strerror or exc}") from None
        try:
            source = cls(f, limits=limits, path=path, identity=file_identity(f.fileno()))
        except BaseException:
            f.close()
            raise
        source._reader.owns_file = True
        return source

    @property
    def zip_reader(self) -> ZipReader:
        """The strict zip reader underneath (read counters: ``bytes_read``, ``read_calls``)."""
        return self._reader

    def members(self) -> list[MemberInfo]:
        return self._members

    def member(self, name: str) -> MemberInfo | None:
        return self._by_name.get(name)

    def open(self, name: str) -> BinaryIO:
        return self._reader.open_resolved(name)  # type: ignore[return-value]

    def resolve_symlink(self, name: str) -> str:
        return self._reader.resolve_symlink(name)

    def link_text(self, name: str) -> str:
        return self._reader.link_text(name)

    def stored_span(self, name: str) -> StoredSpan | None:
        if self.path is None:
            return None
        entry = self._reader.get(self._reader.resolve_symlink(name))
        if entry is None or entry.method != METHOD_STORED or entry.compressed_size != entry.uncompressed_size:
            return None
        offset, length = self._reader.data_span(entry)
        return StoredSpan(self.path, offset, length)

    def container_warnings(self) -> list[Finding]:
        reader = self._reader
        found = [Finding("W-ZIP-COMMENT", f"{name}'s central header has a comment (ignored)", member=name) for name in reader.commented_members]
        if reader.comment_length:
            found.insert(0, Finding("W-ZIP-COMMENT", f"the archive has a {reader.comment_length}-byte comment (ignored)"))
        return found

    def check_container(self) -> None:
        self._reader.check_layout()

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> ZipSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["METHOD_NAMES", "ZipSource"]
