"""The original's async lazy values, as thin wrappers over the format layer's lazy values.

``LazyLoadedTensor.get()`` and ``LazyLoadedMiscFile.read(size_bytes=None)`` are awaitables, as
in ``cartonml``; the blocking equivalents stay available (``load()`` / ``read_sync()``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
from typing import IO, Any

import numpy as np

import carton_format as cf


class LazyLoadedTensor:
    """A self-test or example tensor; ``await t.get()`` loads it once (hash-verified)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any):
        self._inner = inner  # cf.LazyTensor, or an in-memory array / nested list

    @property
    def name(self) -> str | None:
        return getattr(self._inner, "name", None)

    @property
    def dtype(self) -> str:
        if isinstance(self._inner, cf.LazyTensor):
            return self._inner.dtype
        if isinstance(self._inner, list):
            return "nested"
        dtype = np.asarray(self._inner).dtype
        return "string" if dtype.kind in "UTO" else dtype.name

    @property
    def shape(self) -> Any:
        if isinstance(self._inner, cf.LazyTensor):
            return self._inner.shape
        return None if isinstance(self._inner, list) else tuple(np.asarray(self._inner).shape)

    def load(self) -> Any:
        """Blocking load."""
        if isinstance(self._inner, cf.LazyTensor):
            return self._inner.load()
        return self._inner

    async def get(self) -> Any:
        if isinstance(self._inner, cf.LazyTensor):
            return await asyncio.to_thread(self._inner.load)
        return self._inner

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.load()
        if isinstance(value, list):
            raise TypeError("a nested tensor is a list of arrays, not one array")
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyLoadedTensor(dtype={self.dtype!r}, shape={self.shape!r})"


class LazyLoadedMiscFile:
    """A misc file; ``await f.read(size_bytes=None)`` reads it sequentially like the original
    (a second full ``read()`` returns ``b""``; reading past the end returns what is left)."""

    __slots__ = ("_inner", "_stream", "_lock")

    def __init__(self, inner: Any):
        self._inner = inner  # cf.LazyMiscFile, or bytes
        self._stream: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str | None:
        return getattr(self._inner, "path", None)

    @property
    def size(self) -> int | None:
        if isinstance(self._inner, (bytes, bytearray, memoryview)):
            return len(self._inner)
        return getattr(self._inner, "size", None)

    def read_sync(self, size_bytes: int | None = None) -> bytes:
        with self._lock:
            if self._stream is None:
                if isinstance(self._inner, (bytes, bytearray, memoryview)):
                    self._stream = io.BytesIO(bytes(self._inner))
                else:
                    self._stream = self._inner.open()
            if size_bytes is None:
                return self._stream.read()
            if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 0:
                raise ValueError("size_bytes must be a non-negative int or None")
            return self._stream.read(size_bytes)

    async def read(self, size_bytes: int | None = None) -> bytes:
        return await asyncio.to_thread(self.read_sync, size_bytes)

    def __repr__(self) -> str:
        return f"LazyLoadedMiscFile(path={self.path!r}, size={self.size!r})"


def _tensor_map(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v if isinstance(v, (LazyLoadedTensor, LazyLoadedMiscFile)) else _wrap(v) for k, v in values.items()}


def _wrap(value: Any) -> Any:
    if isinstance(value, (cf.LazyMiscFile, bytes, bytearray, memoryview)):
        return LazyLoadedMiscFile(value)
    return LazyLoadedTensor(value)


def async_info(info: cf.CartonInfo) -> cf.CartonInfo:
    """The same CartonInfo with tensors and misc files as the original's async lazy classes."""
    self_tests = None
    if info.self_tests is not None:
        self_tests = [dataclasses.replace(t, inputs=_tensor_map(t.inputs), expected_out=_tensor_map(t.expected_out)) for t in info.self_tests]
    examples = None
    if info.examples is not None:
        examples = [dataclasses.replace(e, inputs=_tensor_map(e.inputs), sample_out=_tensor_map(e.sample_out)) for e in info.examples]
    misc = None
    if info.misc_files is not None:
        misc = {k: v if isinstance(v, LazyLoadedMiscFile) else LazyLoadedMiscFile(v) for k, v in info.misc_files.items()}
    return dataclasses.replace(info, self_tests=self_tests, examples=examples, misc_files=misc)


__all__ = ["LazyLoadedMiscFile", "LazyLoadedTensor", "async_info"]
