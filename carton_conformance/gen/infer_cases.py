"""``infer`` cases: a TorchScript archive, inputs, and the outputs a runner must produce.

The models are committed TorchScript files (carton_conformance/models/, made by make_models.py); the
expected outputs are computed here with numpy from the models' formulas, never by running them,
so regenerating needs no torch and gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .carton import CaseArchive, runner, tensor_json
from .registry import Case, Registry, json_bytes

MODELS = Path(__file__).resolve().parents[1] / "models"
ANY_TORCH = ">=2.0"  # every case loads with any torch 2.x runner unless it tests selection


def archive(model: str, **runner_over: Any) -> bytes:
    c = CaseArchive(doc={"spec_version": 1, "runner": runner(**{"required_framework_version": ANY_TORCH, **runner_over})},
               files={"model/model.pt": (MODELS / f"{model}.pt").read_bytes()})
    for key, value in list(c.doc["runner"].items()):
        if value is None:
            del c.doc["runner"][key]
    return c.zip()


def add(reg: Registry, name: str, description: str, requirements: list[str], data: bytes, inputs: dict[str, Any], *,
        outputs: dict[str, Any] | None = None, options: dict[str, Any] | None = None, rtol: float | None = None,
        atol: float | None = None, error: list[str] | None = None, codes: list[str] | None = None) -> None:
    doc: dict[str, Any] = {"inputs": {k: tensor_json(v) for k, v in inputs.items()}}
    if options:
        doc["options"] = options
    files = {"archive.carton": data, "inputs.json": json_bytes(doc)}
    if error is None:
        assert outputs is not None
        expect: dict[str, Any] = {"result": "ok", "output": "expected.json"}
        if rtol is not None:
            expect["rtol"] = rtol
        if atol is not None:
            expect["atol"] = atol
        files["expected.json"] = json_bytes({"outputs": {k: tensor_json(v) for k, v in outputs.items()}})
    else:
        expect = {"result": "error", "categories": error}
        if codes:
            expect["codes"] = codes
    reg.add(Case(f"infer/{name}", "infer", description, requirements, expect, files,
                 {"archive": "archive.carton", "inputs": "inputs.json"}))


def generate(reg: Registry) -> None:
    rng = np.random.default_rng(2024)
    double = archive("double")
    x = rng.standard_normal((2, 3)).astype(np.float32)
    add(reg, "torchscript/double-float32", "y = 2x on a 2x3 float32 tensor.", ["FMT-RUNNER-7", "FMT-RUNNER-8", "FMT-RUNNER-9"], double,
        {"x": x}, outputs={"y": x * 2})
    add(reg, "torchscript/double-scalar", "y = 2x on a 0-d float64 tensor.", ["FMT-RUNNER-7"], double,
        {"x": np.float64(-1.25)}, outputs={"y": np.float64(-2.5)})
    add(reg, "torchscript/double-empty", "y = 2x on a 0x4 int32 tensor.", ["FMT-RUNNER-7"], double,
        {"x": np.zeros((0, 4), np.int32)}, outputs={"y": np.zeros((0, 4), np.int32)})
    add(reg, "torchscript/double-int64-exact", "y = 2x on int64 values near 2^62 (integers compare exactly).", ["FMT-RUNNER-7"], double,
        {"x": np.array([2**62 - 1, -(2**62), 7], np.int64)}, outputs={"y": np.array([2**63 - 2, -(2**63), 14], np.int64)})
    identity = archive("identity")
    for dtype in ("float32", "float64", "int8", "int16", "int32", "int64", "uint8"):
        if dtype.startswith("float"):
            value = rng.standard_normal((3, 2)).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = np.array([[info.min, info.max], [0, 1], [-1 if info.min < 0 else 2, 3]], dtype=dtype)
        add(reg, f"dtypes/identity-{dtype}", f"A {dtype} tensor comes back with its dtype, shape and values.", ["FMT-RUNNER-7"],
            identity, {"t": value}, outputs={"t": value})
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45], np.float32)
    add(reg, "dtypes/identity-special-floats", "NaN, infinities, negative zero and a subnormal come back unchanged.", ["FMT-RUNNER-7"],
        identity, {"t": specials}, outputs={"t": specials})
    three = {"a": np.arange(5, dtype=np.float32), "b": np.ones((2, 2, 2), np.int64), "c": np.array(7, np.uint8)}
    add(reg, "dtypes/identity-several-inputs", "Three inputs of different dtypes and ranks come back by name.", ["FMT-RUNNER-7"],
        identity, three, outputs=three)
    affine = archive("affine")
    xa = rng.standard_normal((5, 4)).astype(np.float32)
    w = np.array([[(i - j) / 8.0 for j in range(3)] for i in range(4)], np.float64)
    y = xa.astype(np.float64) @ w + np.array([0.5, -0.25, 1.0])
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    add(reg, "torchscript/affine-softmax", "A fixed affine layer and a softmax, compared with the default tolerances.", ["FMT-RUNNER-7"],
        affine, {"x": xa}, outputs={"y": y.astype(np.float32), "softmax": (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)})
    add(reg, "torchscript/affine-tolerance", "The affine layer on large inputs, compared with rtol 1e-2 and atol 1e-3.", ["FMT-RUNNER-7"],
        affine, {"x": (xa * 1000).astype(np.float32)},
        outputs={"y": ((xa * 1000).astype(np.float64) @ w + np.array([0.5, -0.25, 1.0])).astype(np.float32),
                 "softmax": _softmax((xa * 1000).astype(np.float64) @ w + np.array([0.5, -0.25, 1.0])).astype(np.float32)},
        rtol=1e-2, atol=1e-3)
    reduce = archive("reduce")
    a = np.array([3, -1, 4, 1, -5, 9], np.int64)
    b = np.array([2, 7, 1, 8, 2, 8], np.int32)
    add(reg, "torchscript/reduce", "Scalar and vector outputs of several dtypes from one call.", ["FMT-RUNNER-7"], reduce,
        {"a": a, "b": b}, outputs={"sum": np.int64(a.sum()), "cumsum": np.cumsum(a), "scaled": b.astype(np.float64) * 0.5,
                                   "argmax": np.int64(np.argmax(b))})
    strings = archive("strings")
    words = np.array(["carton", "ünïcode", "💖"])
    add(reg, "strings/str-and-list",
        "A 0-d string input is a str, a 1-d one a List[str]; outputs come back the same way (TorchScript's upper() maps ASCII only).",
        ["FMT-RUNNER-7"], strings, {"name": np.array("wörld"), "words": words},
        outputs={"greeting": np.array("Hello, wörld!"), "upper": np.array(["CARTON", "üNïCODE", "💖"]),
                 "joined": np.array("carton ünïcode 💖"), "count": np.int64(3)})
    add(reg, "strings/empty-list", "An empty List[str] input and empty string outputs.", ["FMT-RUNNER-7"], strings,
        {"name": np.array(""), "words": np.array([], dtype=str)},
        outputs={"greeting": np.array("Hello, !"), "upper": np.array([], dtype=str), "joined": np.array(""), "count": np.int64(0)})
    original = archive("original_test_model")
    a32 = np.arange(6, dtype=np.float32).reshape(2, 3)
    add(reg, "strings/original-test-model", "The original's own test model: a tensor, a str and a List[str] in and out.",
        ["FMT-RUNNER-7"], original, {"a": a32, "b": np.array("hi"), "c": np.array(["x", "y"])},
        outputs={"doubled": a32 * 2, "string": np.array("A string"), "stringlist": np.array(["A", "list", "of", "strings"])})
    # runner selection (FMT-RUNNER-8 to 11)
    small = {"x": np.ones(3, np.float32)}
    runner_cats = ["runner"]
    add(reg, "selection/runner-name-case", "runner_name is TorchScript: names compare case-sensitively, so no runner matches.",
        ["FMT-RUNNER-8"], archive("double", runner_name="TorchScript"), small, error=runner_cats)
    add(reg, "selection/runner-name-unknown", "runner_name is tensorflow: no runner matches.", ["FMT-RUNNER-8"],
        archive("double", runner_name="tensorflow"), small, error=runner_cats)
    add(reg, "selection/framework-version-no-match", "required_framework_version is <1.0: no torch runner matches.", ["FMT-RUNNER-9"],
        archive("double", required_framework_version="<1.0"), small, error=runner_cats)
    add(reg, "selection/compat-version-no-match", "runner_compat_version is 2 where the TorchScript runner has 1.", ["FMT-RUNNER-10"],
        archive("double", runner_compat_version=2), small, error=runner_cats)
    add(reg, "selection/compat-version-missing", "An archive without runner_compat_version constrains nothing.", ["FMT-RUNNER-10", "FMT-RUNNER-5"],
        archive("double", runner_compat_version=None), small, outputs={"y": small["x"] * 2})
    add(reg, "selection/override-framework-version", "An archive requiring <1.0 loads with override_required_framework_version = \"*\".",
        ["FMT-RUNNER-11", "FMT-RUNNER-9"], archive("double", required_framework_version="<1.0"), small,
        options={"override_required_framework_version": "*"}, outputs={"y": small["x"] * 2})
    add(reg, "selection/override-framework-version-invalid", "override_required_framework_version \"=>2\" is not a valid requirement.",
        ["FMT-RUNNER-11"], double, small, options={"override_required_framework_version": "=>2"}, error=["versionreq"],
        codes=["E-VERSIONREQ-INVALID"])
    add(reg, "selection/override-runner-name", "An archive naming runner TorchScript loads with override_runner_name = \"torchscript\".",
        ["FMT-RUNNER-11", "FMT-RUNNER-8"], archive("double", runner_name="TorchScript"), small,
        options={"override_runner_name": "torchscript"}, outputs={"y": small["x"] * 2})
    add(reg, "selection/override-runner-opts", "override_runner_opts merges num_threads = 1 into the archive's options.",
        ["FMT-RUNNER-11", "FMT-RUNNER-6"], archive("double", opts={"num_interop_threads": 1}), small,
        options={"override_runner_opts": {"num_threads": 1}}, outputs={"y": small["x"] * 2})


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

__all__ = [
    "ANY_TORCH",
    "MODELS",
    "add",
    "archive",
    "generate",
]
