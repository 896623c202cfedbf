"""Lazily loaded tensors and misc files: metadata reads never touch their bytes.

``read()`` builds these through a :class:`LazyFactories` so that another API (the runtime's
async one) can get its own lazy classes straight from the reader instead of rebuilding the
metadata afterwards.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from typing import IO, Any, Callable

import numpy as np

from .dtypes import NESTED_DTYPE, carton_dtype_of


class LazyTensor:
    """A tensor stored in ``tensor_data/``; ``load()`` reads (and hash-verifies) it once.

    ``dtype`` and ``shape`` come from ``tensor_data/index.toml`` and are known without reading
    the tensor file.  For nested tensors ``load()`` returns a list of arrays.
    """

    __slots__ = ("name", "dtype", "shape", "_loader", "_value", "_lock")

    def __init__(self, name: str | None, dtype: str, shape: tuple[int, ...] | None, loader: Callable[[], object]) -> None:
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self._loader = loader
        self._value: object = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, value: Any) -> "LazyTensor":
        """An already loaded value (an array, or a list of arrays for a nested tensor)."""
        if isinstance(value, list):
            return cls(None, NESTED_DTYPE, None, lambda: value)
        array = np.asarray(value)
        return cls(None, carton_dtype_of(array, where="tensor"), tuple(array.shape), lambda: value)

    def load(self) -> np.ndarray | list[np.ndarray]:
        """The tensor's value, read (and verified) on the first call and kept."""
        with self._lock:
            if self._value is None:
                self._value = self._loader()
            return self._value  # type: ignore[return-value]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.load()
        if isinstance(value, list):
            raise TypeError("a nested tensor is a list of arrays, not one array")
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dtype={self.dtype!r}, shape={self.shape!r})"


class LazyMiscFile:
    """A file under ``misc/``; ``read()`` returns its bytes (hash-verified), ``open()`` streams."""

    __slots__ = ("path", "size", "_opener")

    def __init__(self, path: str | None, size: int | None, opener: Callable[[], IO[bytes]]) -> None:
        self.path = path
        self.size = size
        self._opener = opener

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> "LazyMiscFile":
        """Bytes already in memory."""
        data = bytes(data)
        return cls(None, len(data), lambda: io.BytesIO(data))

    def open(self) -> IO[bytes]:
        """A fresh stream of the whole file (verified at its end)."""
        return self._opener()

    def read(self) -> bytes:
        """The whole file (hash-verified)."""
        with self._opener() as stream:
            return stream.read()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, size={self.size!r})"


TensorFactory = Callable[[str | None, str, "tuple[int, ...] | None", Callable[[], object]], Any]
MiscFileFactory = Callable[[str | None, "int | None", Callable[[], IO[bytes]]], Any]


@dataclass(frozen=True)
class LazyFactories:
    """The constructors ``read()`` uses for lazy values (same arguments as LazyTensor and
    LazyMiscFile; both must provide ``of()`` for in-memory values), and optionally the
    SelfTest / Example subclasses it builds (None: the format layer's own)."""

    tensor: Any = LazyTensor
    misc_file: Any = LazyMiscFile
    self_test: Any = None
    example: Any = None

    def wrap(self, value: Any) -> Any:
        """An in-memory tensor or misc value as a lazy value of these classes (lazy values of
        any family are re-wrapped around their loader, so nothing is read now)."""
        if isinstance(value, LazyTensor):
            return value if type(value) is self.tensor else self.tensor(value.name, value.dtype, value.shape, value.load)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.misc_file.of(value)
        if is_misc_value(value):  # a lazy misc file of another family
            return value if type(value) is self.misc_file else self.misc_file(getattr(value, "path", None), getattr(value, "size", None), value.open)
        return self.tensor.of(value)


DEFAULT_LAZY = LazyFactories()


def is_misc_value(value: Any) -> bool:
    """True for misc-file values: bytes, or a lazy misc file of any family (it has ``open()``)."""
    return isinstance(value, (bytes, bytearray, memoryview)) or (
        not isinstance(value, (LazyTensor, np.ndarray, list, str, os.PathLike)) and callable(getattr(value, "open", None))
    )


def misc_bytes(value: Any) -> bytes:
    """The content of a misc-file value (see :func:`is_misc_value`)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    with value.open() as stream:
        return stream.read()

__all__ = ["DEFAULT_LAZY", "LazyFactories", "LazyMiscFile", "LazyTensor", "is_misc_value", "misc_bytes"]
