"""JSON-friendly views of metadata, for ``carton info --json``, interop checks and conformance.

The normalised form is what two implementations must agree on when they read one archive.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .integrity import sha256_hex
from .lazy import LazyTensor, is_misc_value, misc_bytes
from .metadata import CartonInfo, TensorSpec


def describe_tensor(value: Any, *, with_values: bool) -> Any:
    """dtype/shape (and optionally values) of a tensor, lazy or loaded."""
    if isinstance(value, LazyTensor) and not with_values:
        return {"dtype": value.dtype, "shape": list(value.shape) if value.shape is not None else None}
    if isinstance(value, LazyTensor):
        value = value.load()
    if isinstance(value, list):
        return {"dtype": "nested", "inner": [describe_tensor(v, with_values=with_values) for v in value]}
    if is_misc_value(value):
        return describe_misc(value, with_values=with_values)
    array = np.asarray(value)
    out: dict[str, Any] = {"dtype": _dtype_name(array), "shape": list(array.shape)}
    if with_values:
        out["values"] = _values(array)
    return out


def _dtype_name(array: np.ndarray) -> str:
    from .dtypes import carton_dtype_of

    return carton_dtype_of(array, where="tensor")


def _values(array: np.ndarray) -> list[Any]:
    flat = array.reshape(-1)
    if array.dtype.kind in "UO":
        return [str(x) for x in flat]
    if array.dtype.kind == "f":
        # JSON has no NaN/inf: spell them as strings; exact float32 values survive float().
        return [float(x) if np.isfinite(x) else str(float(x)) for x in flat]
    return [int(x) for x in flat]


def _json_float(value: Any) -> Any:
    """JSON has no NaN or infinity: spell non-finite floats as strings, as tensor values do."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def describe_misc(value: Any, *, with_values: bool) -> dict[str, Any]:
    """Size (and optionally sha256) of a misc file, lazy or bytes."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        if not with_values:
            return {"misc_size": value.size}
        value = misc_bytes(value)
    out: dict[str, Any] = {"misc_size": len(value)}
    if with_values:
        out["sha256"] = sha256_hex(value)
    return out


def describe_spec(spec: TensorSpec) -> dict[str, Any]:
    """A TensorSpec as plain JSON values (``description`` and ``internal_name`` only when set)."""
    out: dict[str, Any] = {"name": spec.name, "dtype": spec.dtype, "shape": spec.shape}
    if spec.description is not None:
        out["description"] = spec.description
    if spec.internal_name is not None:
        out["internal_name"] = spec.internal_name
    return out


def describe_info(info: CartonInfo, *, with_values: bool = False) -> dict[str, Any]:
    """Every field of a CartonInfo as plain JSON values; tensors by dtype/shape (and values)."""

    def tensors(mapping: dict[str, Any] | None) -> dict[str, Any] | None:
        if mapping is None:
            return None
        return {k: describe_tensor(v, with_values=with_values) for k, v in sorted(mapping.items())}

    runner = info.runner
    return {
        "model_name": info.model_name,
        "short_description": info.short_description,
        "model_description": info.model_description,
        "license": info.license,
        "repository": info.repository,
        "homepage": info.homepage,
        "required_platforms": info.required_platforms,
        "runner": {
            "runner_name": runner.runner_name,
            "required_framework_version": runner.required_framework_version,
            "runner_compat_version": runner.runner_compat_version,
            "opts": None if runner.opts is None else {k: _json_float(v) for k, v in runner.opts.items()},
        },
        "inputs": None if info.inputs is None else [describe_spec(s) for s in info.inputs],
        "outputs": None if info.outputs is None else [describe_spec(s) for s in info.outputs],
        "self_tests": None
        if info.self_tests is None
        else [
            {"name": t.name, "description": t.description, "inputs": tensors(t.inputs), "expected_out": tensors(t.expected_out)}
            for t in info.self_tests
        ],
        "examples": None
        if info.examples is None
        else [
            {"name": e.name, "description": e.description, "inputs": tensors(e.inputs), "sample_out": tensors(e.sample_out)}
            for e in info.examples
        ],
        "misc_files": None
        if info.misc_files is None
        else {k: describe_misc(v, with_values=with_values) for k, v in sorted(info.misc_files.items())},
    }

__all__ = [
    "describe_info",
    "describe_misc",
    "describe_spec",
    "describe_tensor",
]
