"""Lazily loaded tensors and misc files: metadata reads never touch their bytes."""

from __future__ import annotations

import threading
from typing import IO, Callable

import numpy as np


class LazyTensor:
    """A tensor stored in ``tensor_data/``; ``load()`` reads (and hash-verifies) it once.

    ``dtype`` and ``shape`` come from ``tensor_data/index.toml`` and are known without reading
    the tensor file.  For nested tensors ``load()`` returns a list of arrays.
    """

    __slots__ = ("name", "dtype", "shape", "_loader", "_value", "_lock")

    def __init__(self, name: str, dtype: str, shape: tuple[int, ...] | None, loader: Callable[[], object]):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self._loader = loader
        self._value: object = None
        self._lock = threading.Lock()

    def load(self) -> np.ndarray | list[np.ndarray]:
        with self._lock:
            if self._value is None:
                self._value = self._loader()
            return self._value  # type: ignore[return-value]

    def __array__(self, dtype=None, copy=None):  # noqa: ANN001 - numpy protocol
        value = self.load()
        if isinstance(value, list):
            raise TypeError("a nested tensor is a list of arrays, not one array")
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyTensor(name={self.name!r}, dtype={self.dtype!r}, shape={self.shape!r})"


class LazyMiscFile:
    """A file under ``misc/``; ``read()`` returns its bytes (hash-verified), ``open()`` streams."""

    __slots__ = ("path", "size", "_opener")

    def __init__(self, path: str, size: int | None, opener: Callable[[], IO[bytes]]):
        self.path = path
        self.size = size
        self._opener = opener

    def open(self) -> IO[bytes]:
        return self._opener()

    def read(self) -> bytes:
        with self._opener() as stream:
            return stream.read()

    def __repr__(self) -> str:
        return f"LazyMiscFile(path={self.path!r}, size={self.size!r})"
