"""An unpacked carton (a directory laid out like an archive) as an ArchiveSource.

Names are checked with the same member-path rules as zip members, so an unpacked carton gets
exactly the checks an archive gets (MANIFEST set and hashes, carton.toml schema, tensor index,
LINKS).  Symbolic links are followed, as the original's local filesystem did, so every member is
a plain file; there is no container layout to check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from ._paths import check_member_path
from .errors import CartonFormatError, Finding
from .limits import DEFAULT_LIMITS, Limits
from .sources import MemberInfo, StoredSpan


class DirectorySource:
    """Read-only view of an unpacked carton directory."""

    def __init__(self, root: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self.read_calls = 0
        self._members: list[MemberInfo] = []
        self._paths: dict[str, Path] = {}
        if not self.root.is_dir():
            raise CartonFormatError("E-IO", f"{self.root}: not a directory")
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames.sort()
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                name = path.relative_to(self.root).as_posix()
                check_member_path(name, limits)
                try:
                    st = path.stat()
                except OSError as exc:
                    raise CartonFormatError("E-IO", f"{path}: {exc.strerror or exc}", member=name) from None
                if not path.is_file():
                    raise CartonFormatError("E-ZIP-NOT-REGULAR", f"{path} is not a regular file", member=name)
                self._members.append(MemberInfo(name, st.st_size, st.st_size, "file"))
                self._paths[name] = path
                if len(self._members) > limits.max_entries:
                    raise CartonFormatError("E-LIMIT-ENTRY-COUNT", f"more than {limits.max_entries} files in {self.root}")
        self._by_name = {m.name: m for m in self._members}

    def _path(self, name: str) -> Path:
        path = self._paths.get(name)
        if path is None:
            raise CartonFormatError("E-ARG-INVALID", "no such file in this directory", member=str(name))
        return path

    def members(self) -> list[MemberInfo]:
        return self._members

    def member(self, name: str) -> MemberInfo | None:
        return self._by_name.get(name)

    def open(self, name: str) -> BinaryIO:
        path = self._path(name)
        self.read_calls += 1
        try:
            return open(path, "rb")
        except OSError as exc:
            raise CartonFormatError("E-IO", f"{path}: {exc.strerror or exc}", member=name) from None

    def resolve_symlink(self, name: str) -> str:
        self._path(name)
        return name

    def link_text(self, name: str) -> str:
        raise CartonFormatError("E-ARG-INVALID", "a directory source has no symlink members (links are followed)", member=name)

    def stored_span(self, name: str) -> StoredSpan | None:
        path = self._path(name)
        return StoredSpan(path, 0, self._by_name[name].size, whole_file=True)

    def container_warnings(self) -> list[Finding]:
        return []

    def check_container(self) -> None:
        """Nothing to check: a directory has no container layout."""

    def close(self) -> None:
        pass

    def __enter__(self) -> DirectorySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DirectorySource"]
