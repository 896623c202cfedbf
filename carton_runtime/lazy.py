"""The original's async lazy values, built by the format layer's reader through its factories.

``LazyLoadedTensor.get()`` and ``LazyLoadedMiscFile.read(size_bytes=None)`` are awaitables, as in
``cartonml``.  ``carton_format.read(..., lazy=ASYNC_LAZY)`` builds them directly, so the async API
never rebuilds metadata; the blocking API uses the format layer's own lazy classes.
"""

from __future__ import annotations

import asyncio
import io
import threading
from typing import IO, Any, Callable

import carton_format as cf


class LazyLoadedTensor(cf.LazyTensor):
    """A self-test or example tensor; ``await t.get()`` loads it once (hash-verified).
    ``load()`` is the blocking equivalent."""

    __slots__ = ()

    async def get(self) -> Any:
        """The tensor's value, loaded on a worker thread (an awaitable, as in ``cartonml``)."""
        return await asyncio.to_thread(self.load)

    def __repr__(self) -> str:
        return f"LazyLoadedTensor(dtype={self.dtype!r}, shape={self.shape!r})"


class LazyLoadedMiscFile:
    """A misc file; ``await f.read(size_bytes=None)`` reads it sequentially like the original
    (a second full ``read()`` returns ``b""``; reading past the end returns what is left)."""

    __slots__ = ("path", "size", "_opener", "_stream", "_lock")

    def __init__(self, path: str | None, size: int | None, opener: Callable[[], IO[bytes]]) -> None:
        self.path = path
        self.size = size
        self._opener = opener
        self._stream: IO[bytes] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> "LazyLoadedMiscFile":
        """Bytes already in memory."""
        data = bytes(data)
        return cls(None, len(data), lambda: io.BytesIO(data))

    def open(self) -> IO[bytes]:
        """A fresh stream of the whole file (verified at its end)."""
        return self._opener()

    def read_sync(self, size_bytes: int | None = None) -> bytes:
        """Blocking :meth:`read`: the next ``size_bytes`` bytes (all that is left when None)."""
        if size_bytes is not None and (isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 0):
            raise ValueError("size_bytes must be a non-negative int or None")
        with self._lock:
            if self._stream is None:
                self._stream = self._opener()
            return self._stream.read() if size_bytes is None else self._stream.read(size_bytes)

    async def read(self, size_bytes: int | None = None) -> bytes:
        """The next ``size_bytes`` bytes (all that is left when None), read on a worker thread."""
        return await asyncio.to_thread(self.read_sync, size_bytes)

    def __repr__(self) -> str:
        return f"LazyLoadedMiscFile(path={self.path!r}, size={self.size!r})"


#: The reader factories for the async API.
ASYNC_LAZY = cf.LazyFactories(tensor=LazyLoadedTensor, misc_file=LazyLoadedMiscFile)

__all__ = ["ASYNC_LAZY", "LazyLoadedMiscFile", "LazyLoadedTensor"]
