"""``infer`` cases: an archive, inputs, and the outputs a runner must produce.

The models are committed TorchScript files and torch.export programs (carton_conformance/models/,
made by make_models.py); the expected outputs are computed here with numpy from the models'
formulas, never by running them, so regenerating needs no torch and gives the same bytes.  Each
case names its runner (``runner`` in case.toml); an adapter that does not list it among its
``runners`` skips the case.  AOTInductor packages are native libraries for one machine and
torch version, so no compiled package is committed: the ``aotinductor`` cases are refusals that
need none (a package whose metadata names another machine, a truncated package); AOTI inference
itself is tested by tests/runtime/test_export_runners.py, which compiles once per test session.
"""

from __future__ import annotations

import io
import json
import zipfile
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


def export_archive(model_bytes: bytes, runner_name: str = "torch_export", *, inputs: list[dict[str, Any]] | None = None,
                   outputs: list[dict[str, Any]] | None = None, platforms: list[str] | None = None) -> bytes:
    """An archive for the torch_export / aotinductor runners: ``model/model.pt2`` and TensorSpecs."""
    doc: dict[str, Any] = {"spec_version": 1}
    if platforms is not None:
        doc["required_platforms"] = platforms
    if inputs is not None:
        doc["input"] = inputs
    if outputs is not None:
        doc["output"] = outputs
    doc["runner"] = runner(runner_name=runner_name, required_framework_version=ANY_TORCH)
    return CaseArchive(doc=doc, files={"model/model.pt2": model_bytes}).zip()


def fake_aoti_package(**metadata: str) -> bytes:
    """An AOTInductor package's layout (metadata JSON, a library member that is not a real one) for a
    target that is not this one: a runner must refuse it from the metadata, before loading anything."""
    meta = {"AOTI_DEVICE_KEY": "cpu", "AOTI_PLATFORM": "linux", "AOTI_MACHINE": "x86_64", "AOTI_CPU_ISA": "", "AOTI_COMPUTE_CAPABILITY": ""}
    meta.update(metadata)
    members = {
        "model/archive_format": b"pt2",
        "model/archive_version": b"0",
        "model/data/aotinductor/model/conformance.wrapper_metadata.json": json.dumps(meta, sort_keys=True).encode(),
        "model/data/aotinductor/model/conformance.wrapper.so": b"\x7fELF: not a real library; never loaded (FMT-AOTI-3)\n",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def add(reg: Registry, name: str, description: str, requirements: list[str], data: bytes, inputs: dict[str, Any], *,
        outputs: dict[str, Any] | None = None, options: dict[str, Any] | None = None, rtol: float | None = None,
        atol: float | None = None, error: list[str] | None = None, codes: list[str] | None = None,
        runner_name: str = "torchscript") -> None:
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
                 {"archive": "archive.carton", "inputs": "inputs.json", "runner": runner_name}))


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
    _export_cases(reg, rng)
    _python_cases(reg, rng)


ANY_PYTHON = ">=3.8"  # the python runner's framework version is the Python version

PYTHON_MAIN = """\
import importlib.util
import os

import numpy as np

from .pkg.scale import scaled  # a relative import inside the model directory (FMT-PYTHON-3)


class Model:
    def __init__(self, factor, greeting):
        self.factor = float(factor)
        self.greeting = greeting
        with open("greeting_suffix.txt", encoding="utf-8") as f:  # the working directory is model/
            self.suffix = f.read().strip()

    def infer_with_tensors(self, tensors):
        x = tensors["x"]
        name = str(tensors["name"])
        if name == "raise":
            raise ValueError("the model refused this input")
        host_only = importlib.util.find_spec("carton_conformance") is not None  # FMT-ENV-1: not the host's packages
        return {
            "y": scaled(x, self.factor),
            "greeting": f"{self.greeting}, {name}{self.suffix}",
            "words": [name.upper(), name.lower()],
            "host_packages_visible": np.uint8(host_only),
        }


def get_model(factor, greeting):
    return Model(factor, greeting)
"""

PYTHON_SCALE = """\
import helpers  # an absolute import: model/ is on sys.path (FMT-PYTHON-3)


def scaled(x, factor):
    return helpers.times(x, factor)
"""

PYTHON_HELPERS = """\
def times(x, factor):
    return (x * factor).astype(x.dtype)
"""


def python_archive(**opts_over: Any) -> bytes:
    """A python-runner code directory: an entrypoint package with relative and absolute imports, a data
    file read from the working directory, an empty requirements.txt (nothing to install)."""
    opts: dict[str, Any] = {"entrypoint_package": "main", "entrypoint_fn": "get_model", "model.factor": 2.5, "model.greeting": "Hello"}
    opts.update(opts_over)
    opts = {k: v for k, v in opts.items() if v is not None}
    doc = {"spec_version": 1, "runner": runner(runner_name="python", required_framework_version=ANY_PYTHON, opts=opts)}
    files = {
        "model/requirements.txt": b"# nothing beyond the runner's own dependencies\n",
        "model/main.py": PYTHON_MAIN.encode(),
        "model/pkg/__init__.py": b"",
        "model/pkg/scale.py": PYTHON_SCALE.encode(),
        "model/helpers.py": PYTHON_HELPERS.encode(),
        "model/greeting_suffix.txt": "!\n".encode(),
    }
    return CaseArchive(doc=doc, files=files).zip()


def _python_cases(reg: Registry, rng: np.random.Generator) -> None:
    """The python runner (section 9.1): code, options, imports, conversions and its own environment."""
    model = python_archive()
    x = rng.standard_normal((2, 3)).astype(np.float32)
    add(reg, "python/entrypoint-options-and-conversions",
        "entrypoint_fn gets model.factor and model.greeting as keyword arguments; a str and a list of str come back as string "
        "tensors, a numpy scalar as a 0-d tensor; imports inside model/ and a file read from the working directory work; the "
        "host's own packages are not importable.",
        ["FMT-PYTHON-1", "FMT-PYTHON-2", "FMT-PYTHON-3", "FMT-PYTHON-4", "FMT-ENV-1"], model, {"x": x, "name": np.array("wörld")},
        outputs={"y": (x * np.float32(2.5)).astype(np.float32), "greeting": np.array("Hello, wörld!"),
                 "words": np.array(["WÖRLD", "wörld"]), "host_packages_visible": np.uint8(0)},
        runner_name="python")
    add(reg, "python/model-raises", "The model's infer raises: an inference error, the model's message kept.", ["FMT-PYTHON-4"], model,
        {"x": x, "name": np.array("raise")}, error=["inference"], codes=["E-RUNTIME-INFER"], runner_name="python")
    add(reg, "python/missing-entrypoint-fn", "entrypoint_fn names no function of the entrypoint package: refused at load.",
        ["FMT-PYTHON-2"], python_archive(entrypoint_fn="no_such_function"), {"x": x, "name": np.array("a")}, error=["runner"],
        codes=["E-RUNTIME-RUNNER"], runner_name="python")
    add(reg, "python/missing-option", "entrypoint_package is not set: refused at load.", ["FMT-PYTHON-2"],
        python_archive(entrypoint_package=None), {"x": x, "name": np.array("a")}, error=["runner"], codes=["E-RUNTIME-RUNNER"],
        runner_name="python")


EXPORT_INPUTS = [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}, {"name": "y", "dtype": "float32", "shape": ["batch", 3]}]
EXPORT_OUTPUTS = [{"name": "out", "dtype": "float32", "shape": ["batch", 3]}, {"name": "z", "dtype": "float32", "shape": ["batch", 4]}]


def _export_cases(reg: Registry, rng: np.random.Generator) -> None:
    """torch_export (models/export_affine.pt2: out = x @ W + b + y, z = 2x) and aotinductor refusals."""
    program = (MODELS / "export_affine.pt2").read_bytes()
    affine = export_archive(program, inputs=EXPORT_INPUTS, outputs=EXPORT_OUTPUTS)
    w = np.array([[(i - j) / 8.0 for j in range(3)] for i in range(4)], np.float64)
    b = np.array([0.5, -0.25, 1.0])
    for batch in (1, 5):
        x = rng.standard_normal((batch, 4)).astype(np.float32)
        y = rng.standard_normal((batch, 3)).astype(np.float32)
        out = (x.astype(np.float64) @ w + b + y).astype(np.float32)
        add(reg, f"torch_export/affine-batch-{batch}",
            f"A torch.export program with keyword inputs and a dynamic batch, at batch {batch}; a dict of outputs by name.",
            ["FMT-EXPORT-1", "FMT-EXPORT-2", "FMT-EXPORT-3"], affine, {"x": x, "y": y}, outputs={"out": out, "z": x * 2},
            runner_name="torch_export")
    x3 = rng.standard_normal((3, 4)).astype(np.float32)
    y2 = rng.standard_normal((2, 3)).astype(np.float32)
    inference = ["inference"]
    add(reg, "torch_export/batch-mismatch", "x has batch 3 and y batch 2, but both declare the symbol batch: refused before the call.",
        ["FMT-EXPORT-5"], affine, {"x": x3, "y": y2}, error=inference, codes=["E-RUNTIME-INPUT"], runner_name="torch_export")
    add(reg, "torch_export/wrong-dtype", "x is float64 where float32 is declared: refused before the call.", ["FMT-EXPORT-5"], affine,
        {"x": x3.astype(np.float64), "y": y2[:1].repeat(3, axis=0)}, error=inference, codes=["E-RUNTIME-INPUT"], runner_name="torch_export")
    add(reg, "torch_export/wrong-name", "An input named w that the model does not declare: refused before the call.", ["FMT-EXPORT-5"],
        affine, {"x": x3, "w": x3[:, :3]}, error=inference, codes=["E-RUNTIME-INPUT"], runner_name="torch_export")
    strings = export_archive(program, inputs=[{"name": "x", "dtype": "string", "shape": ["batch", 4]}, EXPORT_INPUTS[1]],
                             outputs=EXPORT_OUTPUTS)
    add(reg, "torch_export/string-input", "An archive declaring a string input for a torch.export program: string tensors are not run.",
        ["FMT-EXPORT-4"], strings, {"x": np.array([["a"] * 4]), "y": y2[:1]}, error=inference, codes=["E-RUNTIME-INPUT"],
        runner_name="torch_export")
    add(reg, "torch_export/no-input-specs", "A torch_export archive without [[input]] specs cannot be checked: refused at load.",
        ["FMT-EXPORT-5"], export_archive(program), {"x": x3, "y": y2}, error=["runner"], codes=["E-RUNTIME-RUNNER"],
        runner_name="torch_export")
    add(reg, "torch_export/truncated-program", "model/model.pt2 is the first half of a torch.export program.", ["FMT-EXPORT-6"],
        export_archive(program[: len(program) // 2], inputs=EXPORT_INPUTS), {"x": x3, "y": x3[:, :3]}, error=["runner"],
        codes=["E-RUNTIME-RUNNER"], runner_name="torch_export")
    other = fake_aoti_package(AOTI_MACHINE="riscv64")
    add(reg, "aotinductor/other-machine",
        "An AOTInductor package built for linux/riscv64 (its metadata says so; required_platforms too): refused before loading.",
        ["FMT-AOTI-1", "FMT-AOTI-2", "FMT-AOTI-3"],
        export_archive(other, "aotinductor", inputs=EXPORT_INPUTS, outputs=EXPORT_OUTPUTS, platforms=["riscv64gc-unknown-linux-gnu"]),
        {"x": x3, "y": x3[:, :3]}, error=["runner"], codes=["E-RUNTIME-TARGET"], runner_name="aotinductor")
    add(reg, "aotinductor/truncated-package", "model/model.pt2 is the first half of an AOTInductor package.", ["FMT-AOTI-1", "FMT-EXPORT-6"],
        export_archive(other[: len(other) // 2], "aotinductor", inputs=EXPORT_INPUTS), {"x": x3, "y": x3[:, :3]}, error=["runner"],
        codes=["E-RUNTIME-RUNNER"], runner_name="aotinductor")


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

__all__ = [
    "ANY_TORCH",
    "MODELS",
    "add",
    "archive",
    "export_archive",
    "fake_aoti_package",
    "generate",
]
