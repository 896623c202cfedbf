"""Integrity: the one place that hashes bytes and checks them against MANIFEST.

* :func:`mismatch_error` / :func:`check_sha256`: the ``E-MANIFEST-MISMATCH`` error, one text;
* :class:`VerifyingReader`: stream a member and check its sha256 when the stream ends;
* :func:`copy_with_hashing` / :func:`copy_verified`: copy a stream while hashing it, and check the
  result (optionally bounded, for downloads);
* :func:`hash_stream`, :func:`sha256_file`: plain digests; ``CHUNK_SIZE``: the bulk chunk size;
* :class:`DigestPair` / :class:`Crc32`: SHA-256 and CRC-32 of the same bytes computed
  concurrently (the zip layer's writer and reader).

Every byte of a member is hashed twice: SHA-256 for the MANIFEST and CRC-32 for the zip headers.
Done one after the other that costs ~1.5x a SHA-256 pass.  Both ``hashlib`` and ``zlib.crc32``
release the GIL on large buffers, so CRC-32 (plus an optional *sink*, e.g. the file write) runs on a
background thread while SHA-256 runs on the caller's thread.

One process-wide daemon thread runs the background jobs in FIFO order, which keeps each CRC chain
ordered without per-object threads (creating a thread per member would dominate for small members)
and without lifecycle problems (nothing to join, re-created after ``fork``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import queue
import threading
import zlib
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from .errors import CartonFormatError

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB

#: Chunk size the readers and writers use for bulk data.
CHUNK_SIZE = 4 * MiB
#: Below this size a chunk is processed inline: a thread hand-off costs more than it saves.
PARALLEL_MIN = 256 * KiB

Buffer = bytes | bytearray | memoryview


def _nbytes(data: Buffer) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


class _Worker:
    """A daemon thread running ``fn(arg)`` jobs in submission order."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._queue: queue.SimpleQueue[tuple[Callable[[Any], None], Any, threading.Lock]] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="carton-hash-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            fn, arg, done = self._queue.get()
            try:
                fn(arg)  # jobs record their own exceptions
            except BaseException:  # pragma: no cover - defensive, jobs catch everything
                log.exception("hash worker job failed")
            finally:
                done.release()

    def submit(self, fn: Callable[[Any], None], arg: Any) -> threading.Lock:
        """Queue a job; the returned lock is released when it has run (``acquire()`` waits)."""
        done = threading.Lock()
        done.acquire()
        self._queue.put((fn, arg, done))
        return done


_worker: _Worker | None = None
_worker_guard = threading.Lock()


def _get_worker() -> _Worker:
    global _worker
    w = _worker
    if w is not None and w.pid == os.getpid() and w.thread.is_alive():
        return w
    with _worker_guard:
        w = _worker
        if w is None or w.pid != os.getpid() or not w.thread.is_alive():
            w = _worker = _Worker()
        return w


class Crc32:
    """Running CRC-32.  Large ``bytes`` updates run asynchronously (their memory is immutable),
    so a caller can SHA-256 the same chunk meanwhile; mutable buffers are processed before
    :meth:`update` returns, so the caller may reuse them.  Chunks already handed back to the
    caller are kept alive only up to ``max_pending_bytes``, which keeps memory flat.
    """

    def __init__(self, *, parallel_min: int = PARALLEL_MIN, max_pending_bytes: int = CHUNK_SIZE) -> None:
        self._crc = 0
        self._parallel_min = parallel_min
        self._max_pending_bytes = max_pending_bytes
        self._pending: deque[tuple[threading.Lock, int]] = deque()
        self._pending_bytes = 0
        self._error: BaseException | None = None

    def _job(self, data: Buffer) -> None:
        if self._error is None:
            try:
                self._crc = zlib.crc32(data, self._crc)
            except BaseException as exc:  # noqa: BLE001 # pragma: no cover - crc32 of a buffer cannot fail; _drain re-raises
                self._error = exc

    def update(self, data: Buffer) -> None:
        """Add ``data`` to the CRC; a mutable buffer may be reused once this returns."""
        n = _nbytes(data)
        if not self._pending and n < self._parallel_min:
            self._crc = zlib.crc32(data, self._crc)
            return
        immutable = isinstance(data, bytes)
        if not immutable and n < self._parallel_min:
            data, immutable = bytes(data), True
        while self._pending and self._pending_bytes > self._max_pending_bytes:
            self._wait_oldest()
        self._pending.append((_get_worker().submit(self._job, data), n))
        self._pending_bytes += n
        if not immutable:
            self._drain()

    def _wait_oldest(self) -> None:
        done, n = self._pending.popleft()
        done.acquire()
        self._pending_bytes -= n

    def _drain(self) -> None:
        while self._pending:
            self._wait_oldest()
        if self._error is not None:
            raise self._error

    def value(self) -> int:
        """The CRC-32 of everything passed so far (waits for pending chunks)."""
        self._drain()
        return self._crc


class DigestPair:
    """SHA-256 and CRC-32 of a stream of chunks, plus an optional ``sink`` called with each chunk.

    CRC-32 and the sink run on the background worker while SHA-256 runs here, so the three overlap.
    :meth:`update` returns only when the chunk is fully processed: the caller may then reuse its
    buffer (e.g. ``readinto`` the next chunk).  The sink must consume the whole chunk (write all of
    it); its exceptions are re-raised from :meth:`update`.
    """

    def __init__(self, sink: Callable[[Buffer], Any] | None = None, *, parallel_min: int = PARALLEL_MIN) -> None:
        self._sha = hashlib.sha256()
        self._crc = 0
        self._size = 0
        self._sink = sink
        self._parallel_min = parallel_min
        self._error: BaseException | None = None
        self._closed = False

    def _job(self, chunk: Buffer) -> None:
        try:
            self._crc = zlib.crc32(chunk, self._crc)
            if self._sink is not None:
                self._sink(chunk)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread by update()
            self._error = exc

    def update(self, chunk: Buffer) -> None:
        """Hash ``chunk`` (and pass it to the sink); returns once the chunk is fully processed."""
        if self._closed:
            raise ValueError("DigestPair is closed")
        if self._error is not None:
            raise self._error
        n = _nbytes(chunk)
        if n < self._parallel_min:
            self._crc = zlib.crc32(chunk, self._crc)
            self._sha.update(chunk)
            if self._sink is not None:
                self._sink(chunk)
        else:
            done = _get_worker().submit(self._job, chunk)
            try:
                self._sha.update(chunk)
            finally:
                done.acquire()
            if self._error is not None:
                raise self._error
        self._size += n

    @property
    def size(self) -> int:
        """Bytes passed to :meth:`update` so far."""
        return self._size

    def sha256_hex(self) -> str:
        """SHA-256 of everything passed so far, as lowercase hex."""
        return self._sha.hexdigest()

    def sha256_digest(self) -> bytes:
        """SHA-256 of everything passed so far, as raw bytes."""
        return self._sha.digest()

    def crc32(self) -> int:
        """CRC-32 of everything passed so far."""
        return self._crc

    def close(self) -> None:
        """Refuse further updates (the shared worker thread lives on)."""
        self._closed = True

    def __enter__(self) -> DigestPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """Lowercase hex SHA-256 of bytes in memory (MANIFEST, small members, keys)."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE) -> str:
    """Lowercase hex SHA-256 of a file, read in large chunks into one reused buffer."""
    sha = hashlib.sha256()
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            sha.update(view[:n])
    return sha.hexdigest()


# -- verification against MANIFEST ---------------------------------------------------------------


def mismatch_error(member: str | None, expected: str, actual: str, *, origin: str | None = None) -> CartonFormatError:
    """``E-MANIFEST-MISMATCH`` for ``member`` (``origin``: where the bytes came from, e.g. a URL)."""
    where = f"{origin}: " if origin else ""
    return CartonFormatError("E-MANIFEST-MISMATCH", f"{where}sha256 is {actual}, MANIFEST says {expected}", member=member)


def check_sha256(member: str | None, expected: str, actual: str, *, origin: str | None = None) -> None:
    """Raise :func:`mismatch_error` unless the digests are equal."""
    if actual != expected:
        raise mismatch_error(member, expected, actual, origin=origin)


class VerifyingReader(io.RawIOBase):
    """Passes a stream's bytes through and checks their sha256 when the end is reached: the read
    that reaches the end raises ``E-MANIFEST-MISMATCH`` instead of returning ``b""``."""

    def __init__(self, raw: IO[bytes], expected: str, member: str, *, origin: str | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._expected = expected
        self._member = member
        self._origin = origin
        self._hash = hashlib.sha256()
        self._done = False

    def readable(self) -> bool:
        """A verifying reader is always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the stream; the read that reaches the end checks the sha256."""
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        if n:
            self._hash.update(data)
        elif not self._done:
            self._done = True
            check_sha256(self._member, self._expected, self._hash.hexdigest(), origin=self._origin)
        return n

    def close(self) -> None:
        """Close the underlying stream too."""
        try:
            self._raw.close()
        finally:
            super().close()


def verified_stream(raw: IO[bytes], expected: str, member: str, *, origin: str | None = None) -> io.BufferedReader:
    """:class:`VerifyingReader` with a ``CHUNK_SIZE`` buffer (what readers hand out)."""
    return io.BufferedReader(VerifyingReader(raw, expected, member, origin=origin), buffer_size=CHUNK_SIZE)


def copy_with_hashing(
    src: IO[bytes],
    dest: IO[bytes] | None,
    *,
    max_bytes: int | None = None,
    on_limit: Callable[[int], BaseException] | None = None,
    progress: Callable[[int], Any] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[str, int]:
    """Copy ``src`` to its end into ``dest`` (None: only hash); returns (sha256 hex, size).

    With ``max_bytes``, copying stops as soon as more bytes arrive, raising ``on_limit(max_bytes)``
    (``E-LIMIT-MEMBER-SIZE`` by default); ``progress(n)`` is called with each chunk's size."""
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = src.read(chunk_size if max_bytes is None else min(chunk_size, max_bytes + 1 - total))
        if not chunk:
            return digest.hexdigest(), total
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            if on_limit is not None:
                raise on_limit(max_bytes)
            raise CartonFormatError("E-LIMIT-MEMBER-SIZE", f"is larger than {max_bytes} bytes")
        digest.update(chunk)
        if dest is not None:
            dest.write(chunk)
        if progress is not None:
            progress(len(chunk))


def copy_verified(
    src: IO[bytes],
    dest: IO[bytes] | None,
    expected: str,
    member: str | None,
    *,
    origin: str | None = None,
    max_bytes: int | None = None,
    on_limit: Callable[[int], BaseException] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """:func:`copy_with_hashing`, then :func:`check_sha256`; returns the size copied.  The
    caller publishes ``dest`` only when this returns."""
    actual, size = copy_with_hashing(src, dest, max_bytes=max_bytes, on_limit=on_limit, progress=progress)
    check_sha256(member, expected, actual, origin=origin)
    return size


def hash_stream(src: IO[bytes], *, progress: Callable[[int], Any] | None = None) -> str:
    """sha256 hex of a stream read to its end."""
    return copy_with_hashing(src, None, progress=progress)[0]


__all__ = [
    "CHUNK_SIZE",
    "PARALLEL_MIN",
    "Crc32",
    "DigestPair",
    "VerifyingReader",
    "check_sha256",
    "copy_verified",
    "copy_with_hashing",
    "hash_stream",
    "mismatch_error",
    "sha256_file",
    "sha256_hex",
    "verified_stream",
]
