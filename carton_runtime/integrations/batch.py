"""What every engine adapter shares: a per-process model cache and columns <-> tensors.

Engines call user code in long-lived worker processes (Ray actors, Spark's Python workers) and
pickle that code to get it there, so the model cannot travel with it: each process loads it once
and keeps it here, in an importable module (a global of ``__main__`` is not shared across tasks),
keyed by the archive's manifest sha256 and the load options.  Asking for the key costs a
metadata read (for a URL already cached, the cheap revalidation of the cache), so an archive
replaced at its URL is loaded again by the next task instead of being served stale.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import carton_format as cf

from .. import loader, sync
from ..errors import CartonRuntimeError
from ..model import BlockingCarton

log = logging.getLogger(__name__)

_lock = threading.Lock()
_models: dict[tuple[str, str], BlockingCarton] = {}


def _options_key(options: Mapping[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in options.items()))


def shared_model(url: str, **load_options: Any) -> BlockingCarton:
    """The model at ``url`` loaded with ``load_options`` (``carton_runtime.sync.load``'s
    arguments), once per process and archive version."""
    info_options = {"storage_options": load_options["storage_options"]} if load_options.get("storage_options") else {}
    _info, manifest_sha = loader.get_model_info(url, **info_options)
    key = (manifest_sha, _options_key(load_options))
    with _lock:
        model = _models.get(key)
        if model is None or model.closed:
            model = sync.load(url, **load_options)
            _models[key] = model
            log.info("loaded %s (%s) in this worker", url, manifest_sha[:12])
        return model


def clear_models() -> None:
    """Close and forget every model this process holds."""
    with _lock:
        models = list(_models.values())
        _models.clear()
    for model in models:
        model.close()


@dataclass(frozen=True)
class Columns:
    """The model's side of a batch: input specs, by name, and the output names it returns."""

    inputs: tuple[cf.TensorSpec, ...]
    outputs: tuple[cf.TensorSpec, ...]

    @classmethod
    def of(cls, info: cf.CartonInfo) -> "Columns":
        """The model's declared inputs and outputs (E-RUNTIME-ARG when it declares no inputs:
        there is then nothing to map columns to)."""
        if not info.inputs:
            raise CartonRuntimeError("E-RUNTIME-ARG", "the model declares no inputs: batch columns cannot be mapped to its inputs by name")
        return cls(tuple(info.inputs), tuple(info.outputs or ()))

    def to_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The model inputs from a batch of columns (``{column: ndarray}``): one column per
        declared input, by name, of the declared dtype (other columns are not the model's)."""
        inputs: dict[str, Any] = {}
        for spec in self.inputs:
            if spec.name not in batch:
                raise CartonRuntimeError(
                    "E-RUNTIME-INPUT",
                    f"the batch has no column {spec.name!r} for the model's input of that name "
                    f"(columns: {sorted(batch)}; inputs: {[s.name for s in self.inputs]})",
                    name=spec.name,
                )
            value = batch[spec.name]
            inputs[spec.name] = value if spec.dtype == "nested" else _checked_column(spec, value)
        return inputs


def _checked_column(spec: cf.TensorSpec, value: Any) -> Any:
    array = np.asarray(value)
    if array.dtype == object and spec.dtype != "string" and array.size and isinstance(array.flat[0], np.ndarray):
        array = np.stack(list(array))  # a column of per-row arrays (pandas, Ray's ragged columns)
    if spec.dtype == "string":
        if array.dtype.kind not in ("U", "O"):
            raise CartonRuntimeError("E-RUNTIME-INPUT", f"column {spec.name!r} has dtype {array.dtype}; the model's input is string", name=spec.name)
        return array
    if array.dtype != np.dtype(spec.dtype):
        raise CartonRuntimeError(
            "E-RUNTIME-INPUT",
            f"column {spec.name!r} has dtype {array.dtype}; the model's input {spec.name!r} is {spec.dtype} (cast the column first)",
            name=spec.name,
        )
    return array


__all__ = ["Columns", "clear_models", "shared_model"]
