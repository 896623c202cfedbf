"""The async API, with the original ``cartonml`` package's names, argument names and defaults.

Every function returns an awaitable.  Blocking work (I/O, model loading) runs on a worker
thread so the event loop keeps running, as it did with the original's out-of-process runner.
Inference too, except for fast models: a thread hop costs tens of microseconds, so a model
whose recent inferences took less than ``INLINE_BELOW_S`` (1 ms) runs inline in the event
loop (blocking it for less than that), and goes back to the worker thread as soon as its
inferences get slower.  ``carton_runtime.sync`` has the same functions, blocking, with no
thread hop at all.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from typing import Any, Callable

import numpy as np

import carton_format as cf

from . import sync
from .lazy import ASYNC_LAZY, fresh_streams
from .loader import lazy_values
from .model import BlockingCarton, SealHandle
from .selftest import SelfTestResult

#: Inference calls run inline in the event loop while the model's recent calls took less.
INLINE_BELOW_S = 0.001
_UNKNOWN = float("inf")


class AsyncCarton:
    """A loaded model (async API; ``carton_runtime.Carton``, the original's name).  ``info`` has
    the original's async lazy values (``await t.get()``); ``sync`` is the same model, blocking."""

    def __init__(self, sync_model: BlockingCarton) -> None:
        self._sync = sync_model
        self._recent_s = _UNKNOWN  # moving average of call durations

    def _timed(self, fn: Any, arg: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(arg)
        finally:
            elapsed = time.perf_counter() - start
            recent = self._recent_s
            self._recent_s = elapsed if recent == _UNKNOWN else 0.8 * recent + 0.2 * elapsed

    async def _call(self, fn: Any, arg: Any) -> Any:
        if self._recent_s < INLINE_BELOW_S:
            return self._timed(fn, arg)
        return await asyncio.get_running_loop().run_in_executor(None, self._timed, fn, arg)

    @property
    def sync(self) -> BlockingCarton:
        """The same model with the blocking API."""
        return self._sync

    @property
    def info(self) -> cf.CartonInfo:
        """The model's metadata, load overrides merged in; its lazy values are awaitable.  Like
        the original's, each access gives a new CartonInfo whose misc files read from their start."""
        return fresh_streams(self._sync.info)

    @property
    def manifest_sha256(self) -> str | None:
        """Identifies the archive (None for ``load_unpacked``)."""
        return self._sync.manifest_sha256

    @property
    def device(self) -> Any:
        """The device the model was loaded on."""
        return self._sync.device

    async def infer(self, tensors: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the model on ``{name: numpy array}`` (inline when it is fast); returns ``{name: numpy array}``."""
        return await self._call(self._sync.infer, tensors)

    async def seal(self, tensors: dict[str, Any]) -> SealHandle:
        """Convert (and move to the device) inputs now; ``infer_with_handle`` runs them later."""
        return await self._call(self._sync.seal, tensors)

    async def infer_with_handle(self, handle: SealHandle) -> dict[str, np.ndarray]:
        """Run inputs sealed by :meth:`seal`; each handle works once."""
        return await self._call(self._sync.infer_with_handle, handle)

    def input_array(self, shape: Any, dtype: Any = "float32") -> np.ndarray:
        """An array to fill with an input, sent without a copy out of process (not awaitable:
        see :meth:`carton_runtime.sync.Carton.input_array`)."""
        return self._sync.input_array(shape, dtype)

    async def run_self_tests(self) -> list[SelfTestResult]:
        """Run every self test on a worker thread; one result per test."""
        return await asyncio.to_thread(self._sync.run_self_tests)

    def close(self) -> None:
        """Release the model; later calls raise ``E-RUNTIME-CLOSED``."""
        self._sync.close()

    async def __aenter__(self) -> "AsyncCarton":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._sync).replace("carton_runtime.sync.Carton", "carton_runtime.Carton")


def _async_twin(blocking: Callable[..., Any], wrap: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """The awaitable twin of a ``carton_runtime.sync`` function: same name, signature (argument
    names, order and defaults, visible to ``inspect.signature``) and docstring.  The work runs on
    a worker thread with the original's async lazy classes for metadata (``loader.lazy_values``,
    set in that thread's copy of the context only); ``wrap`` adapts the result (a blocking model
    becomes an :class:`AsyncCarton`)."""

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        lazy_values.set(ASYNC_LAZY)
        return blocking(*args, **kwargs)

    @functools.wraps(blocking)
    async def twin(*args: Any, **kwargs: Any) -> Any:
        result = await asyncio.to_thread(call, args, kwargs)
        return result if wrap is None else wrap(result)

    signature = inspect.signature(blocking)
    twin.__signature__ = signature.replace(return_annotation=wrap.__name__) if isinstance(wrap, type) else signature  # type: ignore[attr-defined]
    return twin


Carton = AsyncCarton
load = _async_twin(sync.load, AsyncCarton)
get_model_info = _async_twin(sync.get_model_info)
pack = _async_twin(sync.pack)
load_unpacked = _async_twin(sync.load_unpacked, AsyncCarton)
shrink = _async_twin(sync.shrink)


__all__ = ["AsyncCarton", "Carton", "get_model_info", "load", "load_unpacked", "pack", "shrink"]
