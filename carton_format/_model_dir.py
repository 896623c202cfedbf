"""Walking a model directory for packing: which files go under ``model/`` and how.

Mirrors the original writer: symlinks whose target lies inside the model directory become
symlink members (relative target), symlinks pointing outside are stored as the target's
content, directory symlinks are followed.  Dangling links, loops and special files are errors,
never silently dropped.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from ._paths import check_member_path, collision_key
from .errors import CartonFormatError

MODEL_PREFIX = "model/"


@dataclass(frozen=True)
class ModelFile:
    """One member under model/: either a regular file's source path or a symlink target."""

    member: str
    source: Path | None = None  # regular content to store
    size: int = 0
    link_target: str | None = None  # relative link text, for symlink members
    link_member: str | None = None  # archive path the link resolves to


def _model_error(message: str, path: Path | str) -> CartonFormatError:
    return CartonFormatError("E-MODEL-DIR", f"{path}: {message}")


def _member_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise _model_error("file name is not valid UTF-8", path) from None
    name = MODEL_PREFIX + rel
    try:
        check_member_path(name)
    except CartonFormatError as exc:
        raise _model_error(f"cannot be stored in an archive: {exc.message}", path) from None
    return name


def walk_model_dir(model_dir: str | os.PathLike[str]) -> list[ModelFile]:
    """All members for ``model_dir``, sorted by archive path (UTF-8 bytes)."""
    root = Path(model_dir)
    if not root.is_dir():
        raise CartonFormatError("E-ARG-INVALID", f"model_dir {root} is not a directory")
    real_root = Path(os.path.realpath(root))
    files: list[ModelFile] = []
    visited_dirs: set[str] = set()

    def walk(directory: Path, logical: Path) -> None:
        real = os.path.realpath(directory)
        if real in visited_dirs:
            raise _model_error("directory symlink loop", directory)
        visited_dirs.add(real)
        try:
            children = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise CartonFormatError("E-IO", f"{directory}: {exc.strerror or exc}") from None
        for child in children:
            path = Path(child.path)
            logical_path = logical / child.name
            member = _member_name(root, logical_path)
            if child.is_symlink():
                files.extend(_symlink_member(path, member, real_root, walk, logical_path))
                continue
            mode = child.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                walk(path, logical_path)
            elif stat.S_ISREG(mode):
                files.append(ModelFile(member, source=path, size=child.stat().st_size))
            else:
                raise _model_error("is not a regular file, directory or symlink", path)
        visited_dirs.discard(real)

    walk(root, root)
    files.sort(key=lambda f: f.member.encode("utf-8"))
    seen: dict[str, str] = {}
    for f in files:
        key = collision_key(f.member)
        if key in seen:
            raise _model_error(f"collides with {seen[key]!r} on case-insensitive file systems", f.member)
        seen[key] = f.member
    return files


def _symlink_member(path: Path, member: str, real_root: Path, walk, logical_path: Path) -> list[ModelFile]:  # noqa: ANN001
    try:
        target = Path(os.path.realpath(path, strict=True))
    except (OSError, RuntimeError):
        raise _model_error("dangling symlink or symlink loop", path) from None
    if target.is_dir():
        walk(path, logical_path)
        return []
    if not target.is_file():
        raise _model_error("symlink to something that is not a regular file", path)
    inside = target == real_root or real_root in target.parents
    if not inside:
        return [ModelFile(member, source=target, size=target.stat().st_size)]
    target_member = MODEL_PREFIX + target.relative_to(real_root).as_posix()
    link_text = posixpath.relpath(target_member, posixpath.dirname(member))
    return [ModelFile(member, link_target=link_text, link_member=target_member)]

__all__ = ["MODEL_PREFIX", "ModelFile", "walk_model_dir"]
