"""Atomic output files: written beside the target, fsynced, then moved into place.

An existing file is replaced only when asked (``overwrite=True``), and never when it appeared
while the new one was being written; a failure (a full disk, a write error, an exception of the
caller) leaves the target as it was and removes the temporary file.  Every operating-system
error is an ``E-IO`` CartonFormatError.

The temporary file is ``.{target name}.XXXXXXXX.tmp`` in the target's directory.  Its writer
holds an exclusive advisory lock (``flock``) on it from its creation until it is renamed or
removed, so a temporary file left behind by a writer that died (``kill -9``, a power cut) can be
told from one being written: every writer removes, before it starts, the stale temporary files
of its target directory (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import CartonFormatError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, so stale files are never removed
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
#: A temporary file younger than this (by its modification time) is never removed, even when
#: nobody holds its lock: it may be a writer's that has created it and not locked it yet, or one
#: of a writer on a file system without working locks.  A writer that is alive but slow keeps
#: its lock, whatever the age.
STALE_MIN_AGE_S = 600.0
#: The names ``tempfile.mkstemp`` gives: ``.{name}.`` + 8 characters of its alphabet + ``.tmp``.
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp", re.DOTALL)
#: What a carton temporary file starts with: nothing yet, or a zip local file header.
_ZIP_LOCAL_MAGIC = b"PK\x03\x04"
#: (device, inode) of the temporary files this process is writing: never stale, whatever the
#: locks say (POSIX-emulated flock, e.g. on NFS, does not conflict within one process).
_own_temps: set[tuple[int, int]] = set()
_own_temps_guard = threading.Lock()


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


def _io_error(target: Path, exc: OSError) -> CartonFormatError:
    return CartonFormatError("E-IO", f"{target}: {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_output(target: Path, *, overwrite: bool) -> Iterator[tuple[BinaryIO, Path]]:
    """``(file, temporary path)`` to write; on a clean exit the file is fsynced, given the
    umask's permissions and moved to ``target``; on an exception it is removed.

    The file is unbuffered (every ``write`` reaches the operating system at once, so an error
    such as ENOSPC surfaces at the call that caused it, never later from a buffer flush at
    close) and locked until it has been moved or removed.
    """
    check_target(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _io_error(target, exc) from None
    remove_stale_temp_files(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    except OSError as exc:
        raise _io_error(target, exc) from None
    tmp = Path(tmp_name)
    committed = False
    own: tuple[int, int] | None = None
    try:
        _lock(fd)
        st = os.fstat(fd)
        own = (st.st_dev, st.st_ino)
        with _own_temps_guard:
            _own_temps.add(own)
        fh = os.fdopen(fd, "w+b", buffering=0)
    except BaseException as exc:
        os.close(fd)
        _remove(tmp)
        _forget(own)
        if isinstance(exc, OSError):
            raise _io_error(target, exc) from None
        raise
    try:
        yield fh, tmp  # type: ignore[misc]
        try:
            os.fsync(fd)
            mode = 0o666 & ~_current_umask()
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            else:  # pragma: no cover - not POSIX
                os.chmod(tmp, mode)
        except OSError as exc:
            raise _io_error(target, exc) from None
        _commit(tmp, target, overwrite)
        committed = True
    finally:
        if not committed:
            _remove(tmp)
        try:
            fh.close()  # releases the lock, only now that the temporary name is gone
        except OSError as exc:  # pragma: no cover - nothing is buffered, and the data was fsynced
            log.debug("closing %s: %s", tmp, exc)
        _forget(own)


def _forget(own: tuple[int, int] | None) -> None:
    if own is not None:
        with _own_temps_guard:
            _own_temps.discard(own)


def _lock(fd: int) -> None:
    """Mark the temporary file as being written (see :func:`remove_stale_temp_files`)."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:  # a file system without flock: the minimum age still protects the file
        log.debug("cannot lock the temporary file: %s", exc)


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError as exc:  # the original error matters more; the next writer removes it
        log.warning("could not remove the temporary file %s: %s", tmp, exc.strerror or exc)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _commit(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished temporary file into place without clobbering unless asked."""
    try:
        if overwrite:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target)  # fails if target appeared meanwhile: never overwrite silently
        except FileExistsError:
            raise CartonFormatError("E-OUTPUT-EXISTS", f"{target} was created while writing; not replaced") from None
        except OSError:  # no hard links here (some file systems): check, then rename
            if target.exists():
                raise CartonFormatError("E-OUTPUT-EXISTS", f"{target} exists") from None
            os.replace(tmp, target)
            return
        tmp.unlink()
    except OSError as exc:
        raise _io_error(target, exc) from None


# -- temporary files left behind ---------------------------------------------------------------


def is_temp_name(name: str, target_name: str | None = None) -> bool:
    """Whether ``name`` is one :func:`atomic_output` gives its temporary files (for
    ``target_name``; for any ``.carton`` target, or any target at all, when None)."""
    match = _TEMP_NAME.fullmatch(name)
    if match is None:
        return False
    return target_name is None or match["name"] == target_name or match["name"].lower().endswith(".carton")


def remove_stale_temp_files(target: Path, *, min_age_s: float | None = None) -> list[Path]:
    """Remove the temporary files of writers that died, next to ``target``.

    Candidates are the files in ``target``'s directory named ``.{name}.XXXXXXXX.tmp`` where
    ``name`` is ``target``'s name or ends with ``.carton``.  One is removed only if all of these
    hold: it is a regular file (not a symlink) owned by this user; it was last modified at least
    ``min_age_s`` (default :data:`STALE_MIN_AGE_S`) ago; no writer of this process has it open;
    its exclusive lock can be taken, i.e. the process that wrote it is gone; and it is empty or
    starts like a zip.  Best effort: errors are logged and the file is left.  Returns the files
    removed.
    """
    if fcntl is None:  # pragma: no cover - not POSIX: a live writer cannot be told from a dead one
        return []
    min_age = STALE_MIN_AGE_S if min_age_s is None else min_age_s
    directory = target.parent
    removed: list[Path] = []
    try:
        with os.scandir(directory) as entries:
            candidates = [e.path for e in entries if is_temp_name(e.name, target.name)]
    except OSError as exc:
        log.debug("cannot list %s for stale temporary files: %s", directory, exc)
        return removed
    for path in candidates:
        try:
            if _remove_if_stale(path, min_age):
                removed.append(Path(path))
        except OSError as exc:
            log.debug("leaving %s: %s", path, exc)
    return removed


def _remove_if_stale(path: str, min_age: float) -> bool:
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or time.time() - st.st_mtime < min_age:
        return False
    with _own_temps_guard:
        if (st.st_dev, st.st_ino) in _own_temps:
            return False
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer holds it (or the file system has no locks): leave it
            return False
        locked = os.fstat(fd)
        now = os.lstat(path)
        same = {(x.st_dev, x.st_ino) for x in (st, locked, now)}
        if len(same) != 1 or time.time() - locked.st_mtime < min_age:
            return False  # replaced or written to since the first look
        head = os.pread(fd, len(_ZIP_LOCAL_MAGIC), 0)
        if head and head != _ZIP_LOCAL_MAGIC:
            return False  # not a carton being written: somebody else's file
        os.unlink(path)
        log.info("removed %s, a temporary file left by a writer that did not finish", path)
        return True
    finally:
        os.close(fd)


__all__ = [
    "STALE_MIN_AGE_S",
    "atomic_output",
    "check_target",
    "is_temp_name",
    "output_path",
    "remove_stale_temp_files",
]
