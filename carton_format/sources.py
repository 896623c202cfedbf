"""Archive sources: where an archive's members come from, behind one small interface.

A reader never cares whether members live in a zip file, a remote zip read through range
requests, or an unpacked directory: it asks an :class:`ArchiveSource` for the member list, for a
member's bytes and for symlink targets, and everything above (MANIFEST, carton.toml, tensors,
hashes) is checked the same way whatever the source.  Modelled on pypa/installer's
``WheelSource``.

Two implementations ship: :class:`ZipSource` (a ``.carton`` zip over a path or any seekable
binary file object, local or remote) and :class:`DirectorySource` (an unpacked carton).  To add
a source, either hand :class:`ZipSource` a seekable file object over the new transport (that is
all a remote zip needs), or implement the protocol for a new layout and return it from
:func:`open_source`.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, BinaryIO, Literal, Protocol, Sequence, runtime_checkable
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from .errors import CartonFormatError, Finding
from .limits import DEFAULT_LIMITS, Limits, checked_limits

MemberKind = Literal["file", "symlink", "directory"]


@dataclass(frozen=True)
class MemberInfo:
    """One member as its source declares it, before any content is read.

    ``size`` is the decoded size, ``stored_size`` the bytes it occupies in the container and
    ``method`` how they are stored (``stored``, ``deflate``, ``zstd``; ``file`` for a file of a
    directory).
    """

    name: str
    size: int
    stored_size: int
    method: str
    kind: MemberKind = "file"

    @property
    def is_symlink(self) -> bool:
        """True for a symlink member."""
        return self.kind == "symlink"

    @property
    def is_dir(self) -> bool:
        """True for a directory entry."""
        return self.kind == "directory"


@dataclass(frozen=True)
class StoredSpan:
    """Where a member's bytes lie, uncompressed, in a local file: ``length`` bytes of ``path``
    from ``offset``.  ``whole_file`` means the span is the entire file (a directory member), so
    a consumer that needs a file of its own can use ``path`` in place."""

    path: Path
    offset: int
    length: int
    whole_file: bool = False


@runtime_checkable
class ArchiveSource(Protocol):
    """What readers need from a container.  Names are archive paths (``model/model.pt``).

    Every method raises only ``CartonFormatError``.  Streams returned by :meth:`open` check what
    the container itself can check (zip: sizes and CRC-32) when they reach their end; MANIFEST
    hashes are checked above, by the reader.
    """

    #: a human-readable location for messages (a path or a URL)
    location: str

    def members(self) -> Sequence[MemberInfo]:
        """Every member, directories included, in container order."""
        ...

    def member(self, name: str) -> MemberInfo | None:
        """The member called ``name``, or None."""
        ...

    def open(self, name: str) -> BinaryIO:
        """A stream of the member's decoded content, symlinks followed."""
        ...

    def resolve_symlink(self, name: str) -> str:
        """The member a name finally refers to (itself unless it is a symlink member)."""
        ...

    def link_text(self, name: str) -> str:
        """A symlink member's target as stored (relative to the link's directory)."""
        ...

    def stored_span(self, name: str) -> StoredSpan | None:
        """Where the member's content lies uncompressed in a local file (symlinks followed), for
        zero-copy use; None when it does not (compressed, remote, in memory)."""
        ...

    def container_warnings(self) -> list[Finding]:
        """Warnings about the container itself (zip: comments), reported with the archive's."""
        ...

    def check_container(self) -> None:
        """Deep structural checks of the container (zip: members tile the file); no-op when the
        layout has none."""
        ...

    def close(self) -> None:
        """Release what the source holds open (a zip source's file, if it opened it)."""
        ...


def read_member(source: ArchiveSource, name: str, max_bytes: int, *, limit_code: str = "E-LIMIT-MEMBER-SIZE") -> bytes:
    """A whole member, refused with ``limit_code`` before reading when it declares more than
    ``max_bytes``, and again if its content turns out longer."""
    info = source.member(source.resolve_symlink(name))
    if info is None:
        raise CartonFormatError("E-ARG-INVALID", "no such member", member=name)
    if info.size > max_bytes:
        raise CartonFormatError(limit_code, f"member declares {info.size} bytes; at most {max_bytes} are allowed here", member=name)
    with source.open(name) as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CartonFormatError(limit_code, f"member is larger than {max_bytes} bytes", member=name)
    return data


PathOrFile = str | os.PathLike[str] | IO[bytes]
"""What ``read()``, ``validate()`` and :func:`open_source` accept besides an ArchiveSource: a
path to a ``.carton`` file or to an unpacked directory, or an open seekable binary file."""


#: ``scheme://``: two letters at least, so that a Windows drive (``C:/``) is never a scheme.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
#: Entry points that open URLs: the name is the scheme, the value ``opener(url, limits) ->
#: ArchiveSource``.  The runtime registers ``http`` and ``https``; an object-store package can
#: register ``s3`` the same way, and every reader of the format layer (``read``, ``validate``,
#: ``carton info|ls|validate``) takes such URLs from then on.  An opener named ``*`` (the
#: runtime's, for fsspec's protocols) is tried for a scheme no opener is named after.
SOURCE_ENTRY_POINTS = "carton.sources"
FALLBACK_SOURCE = "*"


def _open_url(url: str, limits: Limits) -> ArchiveSource:
    scheme = _URL.match(url).group(1).lower()  # type: ignore[union-attr]
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise CartonFormatError("E-ARG-INVALID", f"file:// URLs must name a local path, not host {parts.netloc!r}")
        return open_source(url2pathname(unquote(parts.path)), limits)
    named = entry_points(group=SOURCE_ENTRY_POINTS, name=scheme)
    for ep in named or entry_points(group=SOURCE_ENTRY_POINTS, name=FALLBACK_SOURCE):
        try:
            opener = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, not raised raw
            raise CartonFormatError("E-ARG-INVALID", f"the {scheme}:// source ({ep.value}) cannot be loaded: {exc}") from None
        return opener(url, limits)
    raise CartonFormatError(
        "E-ARG-INVALID",
        f"no installed source opens {scheme}:// URLs (carton_runtime adds http and https: pip install 'carton-py[runtime]')",
    )


def open_source(source: PathOrFile | ArchiveSource, limits: Limits = DEFAULT_LIMITS) -> ArchiveSource:
    """The ArchiveSource for a path (zip file or directory), a seekable binary file, or a source
    (returned as is)."""
    from ._directory import DirectorySource
    from ._zip.source import ZipSource

    limits = checked_limits(limits)
    if isinstance(source, io.TextIOBase):
        raise CartonFormatError("E-ARG-INVALID", "source is a text-mode file; open the archive in binary mode ('rb')")
    if isinstance(source, str) and _URL.match(source):
        return _open_url(source, limits)
    if isinstance(source, (str, os.PathLike)):
        if not os.fspath(source):
            raise CartonFormatError("E-ARG-INVALID", "the archive path is empty")
        path = Path(source)
        if path.is_dir():
            return DirectorySource(path, limits=limits)
        if not path.is_file():
            raise CartonFormatError("E-IO", f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
        return ZipSource.open_path(path, limits=limits)
    if isinstance(source, ArchiveSource):
        return source
    if hasattr(source, "read") and hasattr(source, "seek"):
        return ZipSource(source, limits=limits)
    raise CartonFormatError("E-ARG-INVALID", f"expected a path, a seekable binary file or an ArchiveSource, not {type(source).__name__}")


__all__ = ["ArchiveSource", "MemberInfo", "MemberKind", "PathOrFile", "StoredSpan", "open_source", "read_member"]
