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
import time
from typing import Any

import numpy as np

import carton_format as cf

from . import loader, pack as _pack
from .lazy import async_info
from .model import Carton as SyncCarton
from .model import SealHandle
from .selftest import SelfTestResult


#: Inference calls run inline in the event loop while the model's recent calls took less.
INLINE_BELOW_S = 0.001
_UNKNOWN = float("inf")


class Carton:
    """A loaded model (async API).  ``info`` has the original's async lazy values."""

    def __init__(self, sync_model: SyncCarton):
        self._sync = sync_model
        self._info: cf.CartonInfo | None = None
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
    def sync(self) -> SyncCarton:
        """The same model with the blocking API."""
        return self._sync

    @property
    def info(self) -> cf.CartonInfo:
        if self._info is None:
            self._info = async_info(self._sync.info)
        return self._info

    @property
    def manifest_sha256(self) -> str | None:
        return self._sync.manifest_sha256

    @property
    def device(self) -> Any:
        return self._sync.device

    async def infer(self, tensors: dict[str, Any]) -> dict[str, np.ndarray]:
        return await self._call(self._sync.infer, tensors)

    async def seal(self, tensors: dict[str, Any]) -> SealHandle:
        return await self._call(self._sync.seal, tensors)

    async def infer_with_handle(self, handle: SealHandle) -> dict[str, np.ndarray]:
        return await self._call(self._sync.infer_with_handle, handle)

    async def run_self_tests(self) -> list[SelfTestResult]:
        return await asyncio.to_thread(self._sync.run_self_tests)

    def close(self) -> None:
        self._sync.close()

    async def __aenter__(self) -> "Carton":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._sync).replace("carton_runtime.sync.Carton", "carton_runtime.Carton")


async def load(
    path: Any,
    visible_device: Any = None,
    override_runner_name: str | None = None,
    override_required_framework_version: str | None = None,
    override_runner_opts: dict[str, Any] | None = None,
) -> Carton:
    """Load a model from a .carton file, an unpacked directory, file:// or http(s):// URL."""
    model = await asyncio.to_thread(
        loader.load, path, visible_device, override_runner_name, override_required_framework_version, override_runner_opts
    )
    return Carton(model)


async def get_model_info(url_or_path: Any) -> cf.CartonInfo:
    """Metadata only (tensors and misc files stay lazy); remote archives use range requests."""
    info, _sha = await asyncio.to_thread(loader.get_model_info, url_or_path)
    return async_info(info)


async def pack(
    path: Any,
    runner_name: str,
    required_framework_version: str,
    runner_compat_version: int | None = None,
    runner_opts: dict[str, Any] | None = None,
    model_name: str | None = None,
    short_description: str | None = None,
    model_description: str | None = None,
    license: str | None = None,  # noqa: A002 - the original's argument name
    repository: str | None = None,
    homepage: str | None = None,
    required_platforms: list[str] | None = None,
    inputs: list[cf.TensorSpec] | None = None,
    outputs: list[cf.TensorSpec] | None = None,
    self_tests: list[cf.SelfTest] | None = None,
    examples: list[cf.Example] | None = None,
    misc_files: dict[str, Any] | None = None,
    linked_files: dict[str, list[str]] | None = None,
    **extra: Any,
) -> str:
    """Pack a model; returns the path of the new archive (``output_path=``, ``compression=`` and
    ``overwrite=`` are keyword-only extensions)."""
    return await asyncio.to_thread(
        _pack.pack, path, runner_name, required_framework_version, runner_compat_version, runner_opts, model_name,
        short_description, model_description, license, repository, homepage, required_platforms, inputs, outputs,
        self_tests, examples, misc_files, linked_files, **extra,
    )


async def load_unpacked(
    path: Any,
    runner_name: str,
    required_framework_version: str,
    runner_compat_version: int | None = None,
    runner_opts: dict[str, Any] | None = None,
    model_name: str | None = None,
    short_description: str | None = None,
    model_description: str | None = None,
    license: str | None = None,  # noqa: A002
    repository: str | None = None,
    homepage: str | None = None,
    required_platforms: list[str] | None = None,
    inputs: list[cf.TensorSpec] | None = None,
    outputs: list[cf.TensorSpec] | None = None,
    self_tests: list[cf.SelfTest] | None = None,
    examples: list[cf.Example] | None = None,
    misc_files: dict[str, Any] | None = None,
    visible_device: Any = None,
    linked_files: dict[str, list[str]] | None = None,
) -> Carton:
    """Load a model from what ``pack`` would pack, without writing an archive."""
    model = await asyncio.to_thread(
        _pack.load_unpacked, path, runner_name, required_framework_version, runner_compat_version, runner_opts,
        model_name, short_description, model_description, license, repository, homepage, required_platforms, inputs,
        outputs, self_tests, examples, misc_files, visible_device, linked_files,
    )
    return Carton(model)


async def shrink(path: Any, urls: dict[str, list[str]], **extra: Any) -> str:
    """Leave model files listed in ``urls`` (sha256 -> URLs) out of the zip, recorded in LINKS."""
    return await asyncio.to_thread(_pack.shrink, path, urls, **extra)


__all__ = ["Carton", "get_model_info", "load", "load_unpacked", "pack", "shrink"]
