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
    *,
    isolation: str | None = None,
    environment: Any = None,
    call_timeout_s: float | None = None,
    load_timeout_s: float | None = None,
    storage_options: dict[str, Any] | None = None,
    require_signature: Any = None,
) -> BlockingCarton:
    """Load a model from a .carton file, an unpacked directory, file:// or http(s):// URL
    (``path``: the original's argument name).

    Beyond the original's arguments (keyword-only): ``isolation`` "process" runs the model in a
    worker process of its own (a crash or hang there is an error here, not this process's end;
    see :mod:`carton_runtime.isolation`), "inprocess" in this process; None: ``CARTON_ISOLATION``
    or the config file's ``isolation`` key, else in process.  ``environment`` (not None: out of
    process, in an environment provisioned for the runner's framework version).
    ``call_timeout_s``: out of process, an inference taking longer is ``E-RUNTIME-TIMEOUT`` (the
    worker is stopped); ``load_timeout_s`` likewise limits the worker's start and the model's load;
    in process either is ``E-RUNTIME-ARG`` (nothing could stop the call).
    ``storage_options``: for an fsspec URL (``s3://``, ``gs://``, ...), the file system's options
    (credentials, endpoint; default: fsspec's configuration).  ``require_signature``: a trust root
    (a PEM public key or CA certificates path, or a mapping; False: off; None: ``CARTON_REQUIRE_SIGNATURE``
    or the config file's ``require_signature``, else off) the archive must be signed by, checked before
    any model code runs (``E-RUNTIME-SIGNATURE``; see :mod:`carton_runtime.signature_policy`)."""
    options = loader.LoadOptions(
        visible_device,
        override_runner_name,
        override_required_framework_version,
        override_runner_opts,
        isolation=isolation,
        environment=environment,
        call_timeout_s=call_timeout_s,
        load_timeout_s=load_timeout_s,
        storage_options=storage_options,
        require_signature=require_signature,
    )
    return loader.load(path, options)


def get_model_info(url_or_path: Any, *, storage_options: dict[str, Any] | None = None) -> CartonInfo:
    """Metadata only (tensors and misc files stay lazy); remote archives use range requests
    (``storage_options``: for an fsspec URL, the file system's options)."""
    return loader.get_model_info(url_or_path, storage_options=storage_options)[0]


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
