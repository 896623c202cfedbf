"""Verification overlapped with loading: sha256 on the other core while the runner reads.

Builds on ``carton_format.integrity`` (the mismatch error, chunk sizes); what this module adds
is the concurrency that lets a cold load cost about max(hash, load) instead of hash + load.

``torch.jit.load`` holds the GIL for its whole parse (measured: a thread hashing 1 MiB chunks
got 1 MB done during a 445 ms load), so a hasher beside it must not need the GIL:

* :class:`ProcessHasher` hashes a file range in a small child interpreter (``python -I -S``,
  about 15 ms to start), which reads the file from the page cache on its own core.  Its memory
  is its own: the runner's process keeps the peak RSS of the runner alone.  Used for ranges of
  at least ``PROCESS_MIN`` bytes.
* :class:`RangeHasher` is the in-process form, for small ranges and where no child interpreter
  can be started (an embedded Python, a sandbox): one ``hashlib`` call over an ``mmap`` (GIL
  released for the whole call), whose mapped pages do count in this process's RSS.
* :class:`CopyHasher` copies a range of one file into a new file (``copy_file_range``, in the
  kernel), then hashes the *destination* with one of the above while the runner parses it.  So
  the bytes that are hashed are the bytes the runner reads and the cache keeps: hashing the
  source instead would let a writer that changes the archive during the copy get bytes nobody
  checked into the cache, where they would be trusted from then on.

Measured on this 2-vCPU VM with a 438 MB model (``bench/load_bench.py``): the copy alone takes
about 150 ms (the disk makes it noisy), sha256 about 250 ms, ``torch.jit.load`` about 300 ms;
hashing behind the copy in a thread slowed the copy and, finished through an ``mmap`` during the
parse, raised the peak RSS by about 170 MiB (1.26x ``torch.jit.load`` in a fresh process).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO, Iterator

from carton_format.integrity import CHUNK_SIZE, check_sha256, mismatch_error

from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

COPY_CHUNK = 2 * CHUNK_SIZE  # the copy reports its progress this often
BOUNCE_CHUNK = 2 * CHUNK_SIZE  # read/write fallback where copy_file_range cannot be used
PROCESS_MIN = 32 * 1024 * 1024  # ranges this big are hashed in a child interpreter

# The child: sha256 of LENGTH bytes of PATH from OFFSET, printed in hex; exit 3 when the file
# is shorter.  It hashes the page cache through ``mmap`` (no copy into a buffer: the runner
# beside it is reading the same memory bus; the mapped pages count in the child's RSS only).
# With FOLLOW, the range is being written while it is hashed: stdin brings 8-byte little-endian
# counts of the bytes written so far, and the child never reads past the last count (exit 4
# when stdin ends before the range is complete: the copy failed).
_CHILD_CODE = """
import hashlib, mmap, os, struct, sys
path, offset, left = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
follow = len(sys.argv) > 4
ready = 0 if follow else left
digest = hashlib.sha256()
fd = os.open(path, os.O_RDONLY)
done = 0
while done < left:
    while ready <= done:
        msg = sys.stdin.buffer.read(8)
        if len(msg) < 8:
            sys.exit(4)
        ready = min(left, struct.unpack("<Q", msg)[0])
    start, end = offset + done, offset + ready
    if os.fstat(fd).st_size < end:
        sys.exit(3)
    base = start - start % mmap.ALLOCATIONGRANULARITY
    with mmap.mmap(fd, end - base, access=mmap.ACCESS_READ, offset=base) as mm:
        with memoryview(mm) as whole, whole[start - base:] as part:
            digest.update(part)
    done = ready
print(digest.hexdigest())
"""


class RangeHasher:
    """sha256 of ``length`` bytes of ``path`` from ``offset``, on a daemon thread started here;
    ``result()`` joins it (``E-RUNTIME-SOURCE`` if the file could not be read).

    The constructor returns once the thread is about to enter its single ``hashlib`` call, so
    that a caller going on to hold the GIL (``torch.jit.load``) does not stall it."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._path, self._offset, self._length = path, offset, length
        self.digest: str | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name="carton-verify", daemon=True)
        self._thread.start()
        self._started.wait()

    def _guarded(self) -> None:
        try:
            self.digest = self._hash()
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self.error = exc
        finally:
            self._started.set()

    def _hash(self) -> str:
        if self._length == 0:
            return hashlib.sha256(b"").hexdigest()
        with open(self._path, "rb") as fh:
            start = self._offset - self._offset % mmap.ALLOCATIONGRANULARITY
            with mmap.mmap(fh.fileno(), self._offset + self._length - start, access=mmap.ACCESS_READ, offset=start) as mm:
                with memoryview(mm)[self._offset - start :] as view:
                    self._started.set()
                    return hashlib.sha256(view).hexdigest()  # one call: the GIL is released

    def result(self) -> str:
        """The hex digest, once the thread is done."""
        self._thread.join()
        if self.error is not None:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"cannot read {self._path}: {self.error}")
        assert self.digest is not None
        return self.digest


def _child_interpreter() -> str | None:
    """This Python's own interpreter, when there is one to start (not an embedding host)."""
    exe = sys.executable
    if not exe or not os.path.basename(exe).lower().startswith("python"):
        return None
    return exe


class ProcessHasher:
    """sha256 of ``length`` bytes of ``path`` from ``offset``, computed by a child interpreter
    started here (see the module docstring); ``result()`` waits for it."""

    def __init__(self, path: Path, offset: int, length: int, interpreter: str, *, follow: bool = False) -> None:
        self._path = path
        self._outcome: str | CartonRuntimeError | None = None
        args = [interpreter, "-I", "-S", "-c", _CHILD_CODE, os.fspath(path), str(offset), str(length)]
        # Raises OSError when no process can be started; callers then hash in-process.
        self._child = subprocess.Popen(
            [*args, "follow"] if follow else args,
            stdin=subprocess.PIPE if follow else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
        )

    def written(self, n: int) -> None:
        """(``follow``) The first ``n`` bytes of the range are written and may be hashed."""
        stdin = self._child.stdin
        if stdin is None or self._child.poll() is not None:
            return  # not following, or the child is gone: result() says why
        try:
            stdin.write(struct.pack("<Q", n))
            stdin.flush()
        except OSError:
            pass

    def result(self) -> str:
        """The hex digest, once the child is done (``E-RUNTIME-SOURCE`` when it could not read);
        the child's stdin is closed first, so a child following a copy stops where it got."""
        if self._outcome is None:
            out, err = self._child.communicate()
            code = self._child.returncode
            if code == 0:
                self._outcome = out.decode("ascii").strip()
            else:
                reasons = {3: "it ended before the range did", 4: "the copy did not complete"}
                reason = reasons.get(code) or (err.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
                self._outcome = CartonRuntimeError("E-RUNTIME-SOURCE", f"cannot read {self._path}: {reason}")
        if isinstance(self._outcome, CartonRuntimeError):
            raise self._outcome
        return self._outcome


Hasher = RangeHasher | ProcessHasher


def hash_range(path: Path, offset: int, length: int) -> Hasher:
    """Start hashing ``length`` bytes of ``path`` from ``offset`` beside the caller: in a child
    interpreter for big ranges, else (or when none can be started) on a thread."""
    interpreter = _child_interpreter() if length >= PROCESS_MIN else None
    if interpreter is not None:
        try:
            return ProcessHasher(path, offset, length, interpreter)
        except OSError as exc:
            log.debug("cannot start a hashing process (%s); hashing %s in this process", exc, path)
    return RangeHasher(path, offset, length)


class CopyHasher:
    """Copy ``length`` bytes of ``src`` from ``offset`` into a new file ``dest`` and hash what
    was written.  Call :meth:`copy` (on the calling thread), then :meth:`result`.

    A big range is hashed by a child interpreter right behind the copy (it is told how far the
    copy got after each chunk and reads the destination up to there); a small one, or one with
    no child interpreter to start, is hashed on a thread once the copy is done."""

    def __init__(self, src: Path, offset: int, length: int, dest: Path) -> None:
        self._src, self._offset, self._length, self._dest = src, offset, length, dest
        self._error: str | None = None
        with open(dest, "wb"):
            pass
        self._behind: ProcessHasher | None = None
        interpreter = _child_interpreter() if length >= PROCESS_MIN else None
        if interpreter is not None:
            try:
                self._behind = ProcessHasher(dest, 0, length, interpreter, follow=True)
            except OSError as exc:
                log.debug("cannot start a hashing process (%s); hashing %s after the copy", exc, dest)
        self._hasher: Hasher | None = self._behind

    def copy(self) -> None:
        """Copy on this thread; returns with the hash of the copy under way beside the caller."""
        try:
            with open(self._src, "rb") as fin, open(self._dest, "r+b") as fout:
                self._copy(fin, fout)
        except BaseException as exc:
            self._error = f"the copy did not complete ({type(exc).__name__})"
            self._reap()
            raise
        if self._behind is None:
            self._hasher = hash_range(self._dest, 0, self._length)

    def result(self) -> str:
        """The sha256 of the copy (``E-RUNTIME-SOURCE`` when the copy failed)."""
        if self._error is not None:
            self._reap()
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"cannot hash {self._dest}: {self._error}")
        if self._hasher is None:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"cannot hash {self._dest}: copy() was not called")
        return self._hasher.result()

    def _reap(self) -> None:
        """After a failed copy: the child hashing behind it is told nothing more, so it stops; wait for it."""
        behind, self._behind = self._behind, None
        if behind is not None:
            try:
                behind.result()
            except CartonRuntimeError:
                pass

    def _progress(self, done: int) -> None:
        """``done`` bytes are copied (also a hook for tests that change the source mid-copy)."""
        if self._behind is not None:
            self._behind.written(done)

    def _copy(self, fin: BinaryIO, fout: BinaryIO) -> None:
        done, length, offset = 0, self._length, self._offset
        try:
            while done < length:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), min(length - done, COPY_CHUNK), offset + done, done)
                if n == 0:
                    raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{self._src} ended early")
                done += n
                self._progress(done)
        except (AttributeError, OSError):  # no copy_file_range (or not across these filesystems)
            fin.seek(offset + done)
            fout.seek(done)
            buf = bytearray(min(BOUNCE_CHUNK, length - done))
            while done < length:
                n = fin.readinto(memoryview(buf)[: length - done])
                if not n:
                    raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{self._src} ended early") from None
                fout.write(memoryview(buf)[:n])
                done += n
                self._progress(done)


@contextlib.contextmanager
def verified_on_exit(member: str, expected: str, hasher: Hasher) -> Iterator[None]:
    """The ``with`` block (the runner loading the bytes) runs while ``hasher`` is still hashing
    them; on exit the hash must match MANIFEST (``E-MANIFEST-MISMATCH`` otherwise, and the caller
    publishes nothing).  When the runner itself failed, the hash is awaited too: bytes that
    differ from MANIFEST are the cause worth reporting (a tampered TorchScript file usually makes
    torch fail to parse before the hash is done), so the mismatch is raised with the runner's
    error chained; matching bytes re-raise the runner's error unchanged."""
    try:
        yield
    except Exception as exc:
        actual = hasher.result()
        if actual != expected:
            raise mismatch_error(member, expected, actual) from exc
        raise
    check_sha256(member, expected, hasher.result())


__all__ = ["COPY_CHUNK", "PROCESS_MIN", "CopyHasher", "Hasher", "ProcessHasher", "RangeHasher", "hash_range", "verified_on_exit"]
