"""Atomic output files: written beside the target, fsynced, then moved into place.

An existing file is replaced only when asked (``overwrite=True``), and never when it appeared
while the new one was being written; a failure leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import CartonFormatError


def output_path(target: object) -> Path:
    """The output path argument as a Path (E-ARG-INVALID for anything but a str or PathLike)."""
    if isinstance(target, str) and target or isinstance(target, os.PathLike):
        return Path(target)
    raise CartonFormatError("E-ARG-INVALID", f"the output path must be a non-empty str or path, not {target!r}")


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse early (before any work) when ``target`` cannot be written."""
    if target.exists() and not overwrite:
        raise CartonFormatError("E-OUTPUT-EXISTS", f"{target} exists; pass overwrite=True to replace it")
    if target.is_dir():
        raise CartonFormatError("E-OUTPUT-EXISTS", f"{target} is a directory")


@contextlib.contextmanager
def atomic_output(target: Path, *, overwrite: bool) -> Iterator[tuple[BinaryIO, Path]]:
    """``(file, temporary path)`` to write; on a clean exit the file is fsynced, given the
    umask's permissions and moved to ``target``; on an exception it is removed."""
    check_target(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise CartonFormatError("E-IO", f"{target}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        _commit(tmp, target, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _commit(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished temporary file into place without clobbering unless asked."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if target appeared meanwhile: never overwrite silently
    except FileExistsError:
        raise CartonFormatError("E-OUTPUT-EXISTS", f"{target} was created while writing; not replaced") from None
    except OSError:
        if target.exists():
            raise CartonFormatError("E-OUTPUT-EXISTS", f"{target} exists") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


__all__ = ["atomic_output", "check_target", "output_path"]
