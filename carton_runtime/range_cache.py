"""A block cache and a seekable read-only file over any ``fetcher(start, end) -> bytes``.

This is the transport-independent half of reading an archive lazily (the HTTP half is
:mod:`carton_runtime.http_range`), split the way fsspec's ``caching`` module separates a cache
strategy from the function that fetches byte ranges.  Keeping it free of HTTP means the read-ahead
and eviction policy can be tested with an in-memory fetcher, and any other transport that can
fetch byte ranges can reuse it.

:class:`TailBlockCache` holds the tail of the file (fetched by whoever opened it, together with
the size) and a bounded LRU of blocks fetched later; :class:`RangeFile` is the ``io.RawIOBase``
the format layer's zip reader reads through.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from .errors import CartonRuntimeError

KiB = 1024
MiB = 1024 * KiB

#: Smallest fetch for a read that misses (read-ahead for local headers).
MIN_FETCH = 64 * KiB
#: Block cache bound (bytes) for ranges fetched after the tail.
BLOCK_CACHE_BYTES = 16 * MiB

#: ``fetcher(start, end)`` returns bytes [start, end) of the file, exactly ``end - start`` of them.
Fetcher = Callable[[int, int], bytes]


class RangeReader(Protocol):
    """What :class:`RangeFile` reads through: ``read(pos, n)`` returns bytes [pos, pos + n)."""

    def read(self, pos: int, n: int) -> bytes:
        """Bytes [pos, pos + n), cut short at the end of the file."""
        ...


class TailBlockCache:
    """The file's tail plus an LRU of fetched blocks, filling misses through ``fetcher``.

    A read inside the tail never fetches.  A miss fetches from ``pos`` at least ``min_fetch``
    bytes (or what was asked, if more), stopping where the tail starts; a fetch of at most
    ``max_bytes // 4`` bytes is remembered as a block, and the oldest blocks are dropped while
    the blocks hold more than ``max_bytes``.  A fetcher that returns the wrong number of bytes
    raises ``error_code`` (default ``E-RUNTIME-HTTP``; ``name``, e.g. the URL, starts the message).  Thread-safe.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        size: int,
        tail_start: int,
        tail: bytes,
        *,
        min_fetch: int = MIN_FETCH,
        max_bytes: int = BLOCK_CACHE_BYTES,
        name: str = "range cache",
        error_code: str = "E-RUNTIME-HTTP",
    ) -> None:
        if not 0 <= tail_start <= size or tail_start + len(tail) != size:
            raise ValueError(f"the tail ({len(tail)} bytes at {tail_start}) must end the file ({size} bytes)")
        if min_fetch < 1 or max_bytes < 0:
            raise ValueError("min_fetch must be positive and max_bytes not negative")
        self.fetcher = fetcher
        self.size = size
        self.tail_start = tail_start
        self.min_fetch = min_fetch
        self.max_bytes = max_bytes
        self.name = name
        self.error_code = error_code
        self._tail = tail
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._block_bytes = 0
        self._lock = threading.RLock()

    @property
    def block_bytes(self) -> int:
        """Bytes held in blocks (the tail not counted)."""
        return self._block_bytes

    @property
    def block_count(self) -> int:
        """Blocks held (the tail not counted)."""
        return len(self._blocks)

    def read(self, pos: int, n: int) -> bytes:
        """Bytes [pos, pos + n), cut short at the end of the file."""
        if pos < 0 or n < 0:
            raise ValueError(f"negative position or length ({pos}, {n})")
        n = max(0, min(n, self.size - pos))
        if n == 0:
            return b""
        with self._lock:
            hit = self._cached(pos, n)
            if hit is not None:
                return hit
            # Fetch what is missing: up to the tail (which is cached already), at least min_fetch.
            end = min(max(pos + n, pos + self.min_fetch), self.tail_start)
            data = self._fetch(pos, end)
            if end - pos <= self.max_bytes // 4:
                self._remember(pos, data)
            if pos + n > end:  # the read runs into the cached tail
                return data + self._tail[: pos + n - end]
            return data[:n]

    def _cached(self, pos: int, n: int) -> bytes | None:
        if pos >= self.tail_start:
            off = pos - self.tail_start
            return self._tail[off : off + n]
        for start, block in self._blocks.items():
            if start <= pos and pos + n <= start + len(block):
                self._blocks.move_to_end(start)
                return block[pos - start : pos - start + n]
        return None

    def _fetch(self, start: int, end: int) -> bytes:
        data = self.fetcher(start, end)
        if len(data) != end - start:
            raise CartonRuntimeError(
                self.error_code, f"{self.name}: asked for bytes [{start}, {end}), got {len(data)} bytes instead of {end - start}"
            )
        return bytes(data)

    def _remember(self, start: int, block: bytes) -> None:
        old = self._blocks.pop(start, None)
        if old is not None:
            self._block_bytes -= len(old)
        self._blocks[start] = block
        self._block_bytes += len(block)
        while self._block_bytes > self.max_bytes and self._blocks:
            _, dropped = self._blocks.popitem(last=False)
            self._block_bytes -= len(dropped)


class RangeFile(io.RawIOBase):
    """A read-only, seekable file of ``size`` bytes whose reads go to ``cache.read(pos, n)``.

    Reads (and the position they move) are serialised by a lock, so threads may share it.
    """

    def __init__(self, cache: RangeReader, size: int) -> None:
        super().__init__()
        if size < 0:
            raise ValueError("negative size")
        self.cache = cache
        self.size = size
        self._pos = 0
        self._lock = threading.RLock()

    def readable(self) -> bool:
        """A range file is always readable."""
        return True

    def seekable(self) -> bool:
        """A range file is always seekable."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (``whence``: ``io.SEEK_SET``, ``SEEK_CUR`` or ``SEEK_END``); returns the new one."""
        with self._lock:
            if whence == io.SEEK_SET:
                pos = offset
            elif whence == io.SEEK_CUR:
                pos = self._pos + offset
            elif whence == io.SEEK_END:
                pos = self.size + offset
            else:
                raise ValueError(f"invalid whence {whence}")
            if pos < 0:
                raise ValueError("negative seek position")
            self._pos = pos
            return pos

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; returns the bytes read (0 at the end)."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes from the current position (the rest when ``n`` is None or negative)."""
        with self._lock:
            if n is None or n < 0:
                n = self.size - self._pos
            n = max(0, min(n, self.size - self._pos))
            if n == 0:
                return b""
            data = self.cache.read(self._pos, n)
            self._pos += len(data)
            return data

    def readall(self) -> bytes:
        """Everything from the current position to the end."""
        return self.read(-1)


__all__ = ["BLOCK_CACHE_BYTES", "MIN_FETCH", "Fetcher", "RangeFile", "RangeReader", "TailBlockCache"]
