"""The blocking API: the same names and arguments as the async API, for scripts.

``infer`` here is the runner's own method (no thread hop, no per-call checks beyond the input
conversion), the lowest-overhead way to run a model.  Lazy values in ``info`` are the format
layer's (``LazyTensor.load()``, ``LazyMiscFile.read()``).  ``Carton`` is the original's name for
a loaded model; here it is :class:`~carton_runtime.model.BlockingCarton`.
"""

from __future__ import annotations

from typing import Any

from carton_format import CartonInfo, Example, LazyMiscFile, LazyTensor, RunnerInfo, SelfTest, TensorSpec

from . import loader
from .model import BlockingCarton, SealHandle
from .pack import load_unpacked, pack, shrink
from .selftest import SelfTestResult

Carton = BlockingCarton


def load(
    path: Any,
    visible_device: Any = None,
    override_runner_name: str | None = None,
    override_required_framework_version: str | None = None,
    override_runner_opts: dict[str, Any] | None = None,
) -> BlockingCarton:
    """Load a model from a .carton file, an unpacked directory, file:// or http(s):// URL
    (``path``: the original's argument name)."""
    options = loader.LoadOptions(visible_device, override_runner_name, override_required_framework_version, override_runner_opts)
    return loader.load(path, options)


def get_model_info(url_or_path: Any) -> CartonInfo:
    """Metadata only (tensors and misc files stay lazy); remote archives use range requests."""
    return loader.get_model_info(url_or_path)[0]


__all__ = [
    "Carton",
    "CartonInfo",
    "Example",
    "LazyMiscFile",
    "LazyTensor",
    "RunnerInfo",
    "SealHandle",
    "SelfTest",
    "SelfTestResult",
    "TensorSpec",
    "get_model_info",
    "load",
    "load_unpacked",
    "pack",
    "shrink",
]
