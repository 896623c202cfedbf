"""Stored members from regular files: copied by the kernel, hashed right behind the copy.

The zip writer's general path reads each chunk into Python, hashes it and writes it back out.
For a stored member whose source is a regular file the bytes need not pass through Python at
all: ``os.copy_file_range`` (else ``os.sendfile``) copies them from the source into the archive
at the member's offset, chunk by chunk, while a helper thread hashes what was *written*: it maps
each finished window of the archive (page cache, just written) and runs SHA-256 there while the
shared hash worker runs CRC-32 on the same window (:class:`~carton_format.integrity.DigestPair`;
both release the GIL), then unmaps it, so peak memory stays at one window.

Why hash the archive rather than the source: the MANIFEST sha256 and the zip CRC must describe
exactly the bytes in the archive.  Hashing the source would need proof that it did not change
while it was copied, and size + mtime + ctime are no proof (timestamps tick coarsely, a writer
through ``mmap`` need not update them in time).  Reading the archive back costs no more than
reading the source (both are in the page cache), and no concurrent writer can make the hashes
disagree with the archive.  On file systems where ``copy_file_range`` shares extents (XFS,
btrfs) the read-back may come from disk; the copy itself is then almost free.

Each chunk's disk write is started as soon as it is copied (``sync_file_range``), so the fsync
that makes the archive durable overlaps the copy instead of following it.

``METHODS`` lists the kernel copies tried, in order; when none applies (another platform, a
source on a file system that supports neither) :func:`kernel_copy` returns None before writing
anything and the writer takes its read/write path.  Tests narrow ``METHODS`` to force a path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import mmap
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..integrity import CHUNK_SIZE, DigestPair

#: Bytes per copy call (the hasher is told of the progress this often).
COPY_CHUNK = 2 * CHUNK_SIZE
#: Bytes of the archive mapped (and hashed) at a time by the helper thread.
HASH_WINDOW = CHUNK_SIZE
#: Below this a member goes through the read/write path: a thread and a mapping cost more.
MIN_SIZE = 1024 * 1024
#: The kernel copies tried in order ("copy_file_range", "sendfile"); () disables kernel copies.
METHODS: tuple[str, ...] = ("copy_file_range", "sendfile") if sys.platform.startswith("linux") else ()

#: Start the disk write of each copied chunk at once (``sync_file_range``): the archive is
#: fsynced before it is renamed into place, and that fsync then finds little left to write.
EARLY_WRITEBACK = sys.platform.startswith("linux")
#: Map the archive's windows with MAP_POPULATE (one call fills the page tables, not a fault a page).
_MAP_FLAGS = getattr(mmap, "MAP_SHARED", 0) | getattr(mmap, "MAP_POPULATE", 0)

#: errno values meaning "this copy does not work for these files": try the next way.
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.ETXTBSY}


def usable(src_fd: int, out_fd: int, size_hint: int | None) -> bool:
    """Whether a kernel copy may be tried: a regular source file big enough, and an archive
    file that is regular and readable too (the hasher reads it back)."""
    if not METHODS or (size_hint is not None and size_hint < MIN_SIZE):
        return False
    try:
        import fcntl

        src, out = os.fstat(src_fd), os.fstat(out_fd)
        flags = fcntl.fcntl(out_fd, fcntl.F_GETFL)
    except (ImportError, OSError):
        return False
    readable = flags & os.O_ACCMODE == os.O_RDWR and not flags & os.O_APPEND  # positioned writes, read back
    return stat.S_ISREG(src.st_mode) and stat.S_ISREG(out.st_mode) and readable and src.st_size >= MIN_SIZE


class _BehindHasher:
    """SHA-256 + CRC-32 of ``out_fd`` from ``start``, following the copy's published progress."""

    def __init__(self, out_fd: int, start: int) -> None:
        self._fd, self._start = out_fd, start
        self._cond = threading.Condition()
        self._copied = 0  # guarded by _cond
        self._finished = False  # guarded by _cond
        self.digest = DigestPair()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="carton-copy-hasher", daemon=True)
        self._thread.start()

    def advance(self, copied: int) -> None:
        with self._cond:
            self._copied = copied
            self._cond.notify()

    def finish(self) -> DigestPair:
        """Wait for the hashing of everything copied; re-raise what the thread hit."""
        with self._cond:
            self._finished = True
            self._cond.notify()
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.digest

    def _run(self) -> None:
        try:
            done = 0
            while True:
                with self._cond:
                    while self._copied == done and not self._finished:
                        self._cond.wait()
                    copied, finished = self._copied, self._finished
                while done < copied:
                    n = min(HASH_WINDOW, copied - done)
                    self._hash_window(self._start + done, n)
                    done += n
                if finished and done == copied:
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread by finish()
            self.error = exc

    def _hash_window(self, offset: int, n: int) -> None:
        base = offset - offset % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(self._fd, offset + n - base, flags=_MAP_FLAGS, prot=mmap.PROT_READ, offset=base) as mm:
            with memoryview(mm) as whole, whole[offset - base :] as window:
                self.digest.update(window)


class _Copier:
    """One kernel copy way after another, from ``src_fd`` at ``src_offset`` into ``out_fd``
    at ``out_offset``; a plain read/write finishes what the kernel ways leave."""

    def __init__(self, src_fd: int, src_offset: int, out_fd: int, out_offset: int) -> None:
        self._src, self._src_offset, self._out, self._out_offset = src_fd, src_offset, out_fd, out_offset
        self.ways = [m for m in METHODS if hasattr(os, m)]
        self._buf: bytearray | None = None

    def step(self, done: int) -> int:
        """Copy the next chunk from ``done`` bytes in; the bytes copied (0 at the end)."""
        while self.ways:
            try:
                return self._kernel(self.ways[0], done)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                self.ways.pop(0)
                if done == 0 and not self.ways:
                    return -1  # no kernel way works here: nothing written, the caller falls back
        return self._bounce(done)

    def _kernel(self, way: str, done: int) -> int:
        if way == "copy_file_range":
            return os.copy_file_range(self._src, self._out, COPY_CHUNK, self._src_offset + done, self._out_offset + done)
        os.lseek(self._out, self._out_offset + done, os.SEEK_SET)
        return os.sendfile(self._out, self._src, self._src_offset + done, COPY_CHUNK)

    def _bounce(self, done: int) -> int:
        if self._buf is None:
            self._buf = bytearray(COPY_CHUNK)
        with memoryview(self._buf) as view:
            n = os.preadv(self._src, [view], self._src_offset + done)
            written = 0
            while written < n:
                k = os.pwrite(self._out, view[written:n], self._out_offset + done + written)
                if k <= 0:
                    raise OSError(errno.EIO, "the archive accepted no bytes")
                written += k
        return n

    def at_end(self, done: int) -> bool:
        """Whether the source really ends at ``done`` (a kernel copy that stops early on a file
        system reporting no size is finished with read/write)."""
        if not os.pread(self._src, 1, self._src_offset + done):
            return True
        self.ways = []
        return False


_SYNC_FILE_RANGE_WRITE = 2


@functools.lru_cache(maxsize=1)
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (the os module has no binding), or None."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _start_writeback(fd: int, offset: int, n: int) -> None:
    """Ask the kernel to start writing these bytes to disk now (it does not wait for them);
    where it cannot, the fsync at the end writes everything."""
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, offset, n, _SYNC_FILE_RANGE_WRITE)


def kernel_copy(
    src_fd: int, src_offset: int, out_fd: int, out_offset: int, progress: Callable[[int], Any] | None = None
) -> DigestPair | None:
    """Copy ``src_fd`` from ``src_offset`` to its end into ``out_fd`` at ``out_offset``; the
    SHA-256/CRC-32 of the bytes written (read back from ``out_fd``), or None when no kernel copy
    works for these files (then nothing was written).  ``progress(n)`` is called on this thread
    after each chunk.  ``OSError`` for a failed copy (what was written is the caller's to cut)."""
    copier = _Copier(src_fd, src_offset, out_fd, out_offset)
    if not copier.ways:
        return None
    first = copier.step(0)
    if first < 0:
        return None
    hasher = _BehindHasher(out_fd, out_offset)
    done, n = 0, first
    try:
        while n or not copier.at_end(done):
            done += n
            if n:
                hasher.advance(done)
                if EARLY_WRITEBACK:
                    _start_writeback(out_fd, out_offset + done - n, n)
                if progress is not None:
                    progress(n)
            n = copier.step(done)
    except BaseException:
        with contextlib.suppress(BaseException):  # the copy's error is the one to report
            hasher.finish()
        raise
    return hasher.finish()


__all__ = ["COPY_CHUNK", "HASH_WINDOW", "METHODS", "MIN_SIZE", "kernel_copy", "usable"]
