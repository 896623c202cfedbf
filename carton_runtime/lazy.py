"""The original's async value classes: lazy tensors and misc files, and the SelfTest / Example
that hold them.

``LazyLoadedTensor.get()`` and ``LazyLoadedMiscFile.read(size_bytes=None)`` are awaitables, as in
``cartonml``.  ``carton_format.read(..., lazy=ASYNC_LAZY)`` builds them (and this module's
SelfTest / Example) directly, so the async API never rebuilds metadata; the blocking API uses the
format layer's own classes.  :class:`SelfTest` and :class:`Example` built by a user wrap their
values on construction and on assignment, as the original's do, so ``await st.inputs["x"].get()``
works on a test that was never packed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
from typing import IO, Any, Callable

import numpy as np

import carton_format as cf
from carton_format.lazy import is_misc_value


def _fresh(value: Any) -> Any:
    """A writable copy of a loaded tensor value (a list of copies for a nested tensor)."""
    if isinstance(value, list):
        return [np.array(item, copy=True) for item in value]
    return np.array(value, copy=True)


class LazyLoadedTensor(cf.LazyTensor):
    """A self-test or example tensor; ``await t.get()`` loads it once (hash-verified).
    ``load()`` is the blocking equivalent."""

    __slots__ = ()

    async def get(self) -> Any:
        """The tensor's value, loaded (once, on a worker thread) and verified; like the
        original, every call returns a fresh writable copy (a list of copies when nested)."""
        value = self._value if self._value is not None else await asyncio.to_thread(self.load)
        return _fresh(value)

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

    def reopened(self) -> "LazyLoadedMiscFile":
        """Another handle on the same file whose reads start over (what each ``model.info`` holds)."""
        return type(self)(self.path, self.size, self._opener)

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


_VALUES = cf.LazyFactories(tensor=LazyLoadedTensor, misc_file=LazyLoadedMiscFile)


def _wrap_map(mapping: Any, key: str, *, optional: bool, misc_ok: bool) -> Any:
    """``{name: value}`` with each value as this module's lazy class (lazy values of the async
    family are kept as they are); E-ARG-INVALID for what the original would refuse."""
    if mapping is None and optional:
        return None
    if not isinstance(mapping, dict):
        raise cf.CartonFormatError("E-ARG-INVALID", f"must be a dict of name -> value, not {type(mapping).__name__}", key=key)
    wrapped = {}
    for name, value in mapping.items():
        if not misc_ok and is_misc_value(value):
            raise cf.CartonFormatError("E-ARG-INVALID", "self test values are tensors (numpy arrays), not misc files", key=f"{key}.{name}")
        wrapped[name] = _VALUES.wrap(value)
    return wrapped


class SelfTest(cf.SelfTest):
    """The original's ``SelfTest(inputs, name=None, description=None, expected_out=None)``:
    ``inputs`` / ``expected_out`` hold :class:`LazyLoadedTensor` (``await t.get()``), also after
    assigning numpy arrays to them.  A ``carton_format.SelfTest``, so every API packs it."""

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "inputs" or key == "expected_out":
            value = _wrap_map(value, key, optional=key == "expected_out", misc_ok=False)
        object.__setattr__(self, key, value)


class Example(cf.Example):
    """The original's ``Example(inputs, sample_out, name=None, description=None)``: arrays
    become :class:`LazyLoadedTensor`, bytes :class:`LazyLoadedMiscFile` (``await f.read()``),
    on construction and on assignment.  A ``carton_format.Example``, so every API packs it."""

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "inputs" or key == "sample_out":
            value = _wrap_map(value, key, optional=False, misc_ok=True)
        object.__setattr__(self, key, value)


def fresh_streams(info: cf.CartonInfo) -> cf.CartonInfo:
    """A shallow copy of ``info`` whose misc files (in ``misc_files`` and in examples) are new
    handles, read from their start: the original's ``model.info`` builds a new CartonInfo on
    every access.  Tensors (loaded once, copied on ``get()``) are shared."""

    def reopen(value: Any) -> Any:
        return value.reopened() if isinstance(value, LazyLoadedMiscFile) else value

    def reopen_map(mapping: Any) -> Any:
        return {k: reopen(v) for k, v in mapping.items()} if isinstance(mapping, dict) else mapping

    misc = reopen_map(info.misc_files)
    examples = info.examples
    if examples:
        examples = [dataclasses.replace(e, inputs=reopen_map(e.inputs), sample_out=reopen_map(e.sample_out)) for e in examples]
    return dataclasses.replace(info, misc_files=misc, examples=examples)


#: The reader factories for the async API (its lazy values, SelfTest and Example).
ASYNC_LAZY = cf.LazyFactories(tensor=LazyLoadedTensor, misc_file=LazyLoadedMiscFile, self_test=SelfTest, example=Example)

__all__ = ["ASYNC_LAZY", "Example", "LazyLoadedMiscFile", "LazyLoadedTensor", "SelfTest", "fresh_streams"]
