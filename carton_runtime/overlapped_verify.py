"""Verification overlapped with loading: sha256 on a helper thread while the runner reads.

Builds on ``carton_format.integrity`` (the mismatch error, chunk sizes); what this module adds
is the threading that lets a cold load cost about max(hash, load) instead of hash + load.

Two shapes, both hashing with ``hashlib`` (OpenSSL, which releases the GIL for the whole call):

* :class:`RangeHasher` hashes a range of a file that is used in place (a file of an unpacked
  directory): one ``hashlib`` call over an ``mmap``, started before the runner begins parsing.
* :class:`CopyHasher` copies a range of one file into a new file on the calling thread
  (``copy_file_range``, chunk by chunk) while the helper thread hashes the *destination* right
  behind it.  So the bytes that are hashed are the bytes the runner reads and the cache keeps.
  Hashing the source instead would let a writer that changes the archive during the copy get
  bytes nobody checked into the cache, where they would be trusted from then on.

The GIL matters because ``torch.jit.load`` holds it for its whole parse: a helper thread that
needs the GIL between two ``hashlib`` calls would sit idle until torch is done.  During the copy,
the calling thread holds the GIL only for a moment between chunks, so the helper hashes what was
copied so far in small pieces (``readinto`` a 256 KiB buffer: reading the destination through an
``mmap`` while it is being written slowed the copy down by half).  When the copy is done,
:meth:`CopyHasher.copy` returns only once the helper has started its last call, which hashes
everything still left in one go through an ``mmap``, while the caller parses.

Measured on a 2-vCPU VM with a 100 MB model: the copy takes about 36 ms alone and 50 ms with
the hashing beside it, and about 64% of the bytes are hashed by the time it ends, so the rest is
hashed while torch parses (45-50 ms) and the load ends when torch is done.  Hashing the archive
in one call instead, beside the copy, was about 5% faster, but it checks the archive's bytes, not
the bytes that end up in the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from carton_format.integrity import CHUNK_SIZE, PARALLEL_MIN, check_sha256, mismatch_error

from .errors import CartonRuntimeError

COPY_CHUNK = 2 * CHUNK_SIZE  # the copy publishes its progress to the hasher this often
READ_CHUNK = PARALLEL_MIN  # the hasher reads the copy in pieces this big while the copy runs
BOUNCE_CHUNK = 2 * CHUNK_SIZE  # read/write fallback where copy_file_range cannot be used


class _Background:
    """A daemon thread computing ``self.digest``; ``result()`` joins it and returns the hex
    digest, or raises ``E-RUNTIME-SOURCE`` if the file could not be read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.digest: str | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._guarded, name="carton-verify", daemon=True)

    def _guarded(self) -> None:
        try:
            self.digest = self._hash()
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self.error = exc
        finally:
            self._done()

    def _hash(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _done(self) -> None:
        pass

    def result(self) -> str:
        self._thread.join()
        if self.error is not None:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"cannot read {self._path}: {self.error}")
        assert self.digest is not None
        return self.digest


class RangeHasher(_Background):
    """sha256 of ``length`` bytes of ``path`` from ``offset``, on a thread started here.

    The constructor returns once the thread is about to enter its single ``hashlib`` call, so
    that a caller going on to hold the GIL (``torch.jit.load``) does not stall it."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__(path)
        self._offset, self._length = offset, length
        self._started = threading.Event()
        self._thread.start()
        self._started.wait()

    def _done(self) -> None:
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


class CopyHasher(_Background):
    """Copy ``length`` bytes of ``src`` from ``offset`` into a new file ``dest`` and hash what
    was written.  Call :meth:`copy` (on the calling thread), then :meth:`result`."""

    def __init__(self, src: Path, offset: int, length: int, dest: Path) -> None:
        super().__init__(dest)
        self._src, self._offset, self._length, self._dest = src, offset, length, dest
        self._cond = threading.Condition()
        self._copied = 0  # bytes of dest written so far (guarded by _cond)
        self._finished = False  # the copy ended, successfully or not (guarded by _cond)
        self._last_call = threading.Event()  # the hasher is in its final hashlib call, or ended
        with open(dest, "wb") as fh:
            fh.truncate(length)  # full size up front (the hasher's final mmap); it never reads past _copied
        self._thread.start()

    # -- the hasher thread ----------------------------------------------------------------------

    def _done(self) -> None:
        self._last_call.set()

    def _hash(self) -> str:
        digest = hashlib.sha256()
        done = 0
        with open(self._dest, "rb", buffering=0) as fh:
            buf = bytearray(READ_CHUNK)
            while True:
                copied, finished = self._wait_for(done)
                if finished:
                    if copied != self._length:
                        raise OSError("the copy did not complete")
                    return self._hash_rest(fh.fileno(), digest, done)
                fh.seek(done)
                with memoryview(buf) as view:  # while the copy runs: read what it wrote, in pieces
                    while done < copied:
                        n = fh.readinto(view[: min(READ_CHUNK, copied - done)])
                        if not n:
                            raise OSError(f"{self._dest} is shorter than what was copied")
                        digest.update(view[:n])
                        done += n

    def _hash_rest(self, fd: int, digest: Any, done: int) -> str:
        """The bytes left once the copy is over, in one ``hashlib`` call on an ``mmap``, so
        that a caller then holding the GIL for long does not stall it."""
        if done == self._length:
            self._last_call.set()
            return digest.hexdigest()
        with mmap.mmap(fd, self._length, access=mmap.ACCESS_READ) as mm, memoryview(mm)[done:] as rest:
            self._last_call.set()
            digest.update(rest)
        return digest.hexdigest()

    def _wait_for(self, done: int) -> tuple[int, bool]:
        """Block until the copy got past ``done`` bytes or ended; (bytes copied, ended)."""
        with self._cond:
            while self._copied == done and not self._finished:
                self._cond.wait()
            return self._copied, self._finished

    # -- the calling thread ----------------------------------------------------------------------

    def copy(self) -> None:
        """Copy on this thread; returns when the hasher has started on the last bytes."""
        try:
            with open(self._src, "rb") as fin, open(self._dest, "r+b") as fout:
                self._copy(fin, fout)
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify()
            self._last_call.wait()

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
                fout.flush()  # the hasher reads the file, not this object's buffer
                done += n
                self._progress(done)

    def _progress(self, done: int) -> None:
        with self._cond:
            self._copied = done
            self._cond.notify()


Hasher = RangeHasher | CopyHasher


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


__all__ = ["COPY_CHUNK", "CopyHasher", "RangeHasher", "verified_on_exit"]
