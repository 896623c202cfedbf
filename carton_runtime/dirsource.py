"""Unpacked cartons: a directory laid out like an archive (MANIFEST, carton.toml, model/...).

The format layer reads zip containers only; :class:`DirReader` offers the part of its zip
reader's interface that ``carton_format.CartonArchive`` uses, over the files of a directory, so
an unpacked carton gets exactly the same checks (MANIFEST set and hashes, carton.toml schema,
tensor index, LINKS).  Symbolic links are followed, as the original's local filesystem did;
names are checked with the format layer's member-path rules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import carton_format as cf
from carton_format.paths import check_member_path


@dataclass(frozen=True)
class DirEntry:
    """What CartonArchive needs from a zip entry."""

    name: str
    uncompressed_size: int
    path: Path
    is_dir: bool = False
    is_symlink: bool = False
    method: int = 0

    @property
    def compressed_size(self) -> int:
        return self.uncompressed_size


class DirReader:
    """Read-only view of an unpacked carton directory (duck-types the zip reader)."""

    def __init__(self, root: str | os.PathLike[str], limits: cf.Limits = cf.DEFAULT_LIMITS):
        self.root = Path(root)
        self._limits = limits
        self.bytes_read = 0
        self.read_calls = 0
        self.entries: list[DirEntry] = []
        self._by_name: dict[str, DirEntry] = {}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames.sort()
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                name = path.relative_to(self.root).as_posix()
                check_member_path(name)
                try:
                    st = path.stat()
                except OSError as exc:
                    raise cf.CartonFormatError("E-IO", f"{path}: {exc.strerror or exc}", member=name) from None
                if not path.is_file():
                    raise cf.CartonFormatError("E-ZIP-NOT-REGULAR", f"{path} is not a regular file", member=name)
                entry = DirEntry(name, st.st_size, path)
                self.entries.append(entry)
                self._by_name[name] = entry
                if len(self.entries) > limits.max_entries:
                    raise cf.CartonFormatError("E-LIMIT-ENTRY-COUNT", f"more than {limits.max_entries} files in {self.root}")

    @property
    def limits(self) -> cf.Limits:
        return self._limits

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> DirEntry | None:
        return self._by_name.get(name)

    def file_path(self, name: str) -> Path:
        return self._entry(name).path

    def _entry(self, name_or_entry: str | DirEntry) -> DirEntry:
        name = name_or_entry.name if isinstance(name_or_entry, DirEntry) else name_or_entry
        entry = self._by_name.get(name)
        if entry is None:
            raise cf.CartonFormatError("E-ARG-INVALID", "no such file in this directory", member=str(name))
        return entry

    def open(self, name_or_entry: str | DirEntry) -> IO[bytes]:
        entry = self._entry(name_or_entry)
        self.read_calls += 1
        try:
            return open(entry.path, "rb")
        except OSError as exc:
            raise cf.CartonFormatError("E-IO", f"{entry.path}: {exc.strerror or exc}", member=entry.name) from None

    def open_resolved(self, name: str) -> IO[bytes]:
        return self.open(name)

    def read_member(self, name: str | DirEntry, max_bytes: int, *, limit_code: str = "E-LIMIT-MEMBER-SIZE") -> bytes:
        entry = self._entry(name)
        if entry.uncompressed_size > max_bytes:
            raise cf.CartonFormatError(limit_code, f"file has {entry.uncompressed_size} bytes; at most {max_bytes} are allowed here", member=entry.name)
        with self.open(entry) as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise cf.CartonFormatError(limit_code, f"file grew past {max_bytes} bytes", member=entry.name)
        self.bytes_read += len(data)
        return data

    def resolve_symlink(self, name: str) -> str:
        return self._entry(name).name

    def check_layout(self) -> None:
        """Nothing to check: a directory has no container layout."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "DirReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_dir(root: str | os.PathLike[str], *, verify_hashes: bool = False, fetch_linked=None, limits: cf.Limits = cf.DEFAULT_LIMITS) -> cf.CartonArchive:  # noqa: ANN001
    """``carton_format.read`` for an unpacked carton directory."""
    reader = DirReader(root, limits)
    archive = cf.CartonArchive(reader, limits=limits, fetch_linked=fetch_linked)  # type: ignore[arg-type]
    if verify_hashes:
        archive.verify()
    return archive


__all__ = ["DirEntry", "DirReader", "read_dir"]
