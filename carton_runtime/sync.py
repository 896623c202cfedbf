"""The blocking API: the same names and arguments as the async API, for scripts.

``infer`` here is the runner's own method (no thread hop, no per-call checks beyond the input
conversion), the lowest-overhead way to run a model.  Lazy values in ``info`` are the format
layer's (``LazyTensor.load()``, ``LazyMiscFile.read()``).
"""

from __future__ import annotations

from typing import Any

import carton_format as cf
from carton_format import CartonInfo, Example, LazyMiscFile, LazyTensor, RunnerInfo, SelfTest, TensorSpec

from . import loader
from .model import Carton, SealHandle
from .pack import load_unpacked, pack, shrink
from .selftest import SelfTestResult


def load(
    path: Any,
    visible_device: Any = None,
    override_runner_name: str | None = None,
    override_required_framework_version: str | None = None,
    override_runner_opts: dict[str, Any] | None = None,
) -> Carton:
    """Load a model from a .carton file, an unpacked directory, file:// or http(s):// URL."""
    return loader.load(path, visible_device, override_runner_name, override_required_framework_version, override_runner_opts)


def get_model_info(url_or_path: Any) -> cf.CartonInfo:
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
