"""`make demo`: pack a small TorchScript model, validate it, read it back and print what it holds.

Uses only carton_format (the runtime that runs the model arrives with carton_runtime).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

import carton_format as cf

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "original" / "test_model.pt"  # the original's torch runner test model
OUT = ROOT / "demo-out"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    a = np.array([1.5, 2.0, -3.25], dtype=np.float32)
    info = cf.CartonInfo(
        runner=cf.RunnerInfo(runner_name="torchscript", required_framework_version="=2.13",
                             runner_compat_version=1, opts={"num_threads": 1}),
        model_name="doubler",
        short_description="Doubles a tensor; returns a string and a list of strings",
        license="Apache-2.0",
        inputs=[cf.TensorSpec("a", "float32", ["n"]), cf.TensorSpec("b", "string", []), cf.TensorSpec("c", "string", ["k"])],
        outputs=[cf.TensorSpec("doubled", "float32", ["n"]), cf.TensorSpec("string", "string", []),
                 cf.TensorSpec("stringlist", "string", [4])],
        self_tests=[cf.SelfTest(
            name="doubles",
            inputs={"a": a, "b": np.array("scalar"), "c": np.array(["x", "y"])},
            expected_out={"doubled": 2 * a, "string": np.array("A string"),
                          "stringlist": np.array(["A", "list", "of", "strings"])},
        )],
        examples=[cf.Example(name="readme", inputs={"a": a}, sample_out={"doubled": 2 * a, "plot": b"\x89PNG..."})],
        misc_files={"notes.md": "Packed by `make demo` 📦\n".encode()},
    )
    with tempfile.TemporaryDirectory() as model_dir:
        shutil.copy(MODEL, Path(model_dir) / "model.pt")
        result = cf.write(OUT / "doubler.carton", info, model_dir=model_dir, overwrite=True)
    print(f"packed   {result.path} ({result.path.stat().st_size} bytes)")
    print(f"manifest {result.manifest_sha256}")

    report = cf.validate(result.path)
    print(f"validate ok={report.ok} errors={len(report.errors)} warnings={len(report.warnings)}")
    for finding in report.findings:
        print(f"  {finding.code} {finding.member or ''} {finding.message}")

    with cf.read(result.path) as archive:
        loaded = archive.info
        print(f"read     {loaded.model_name!r} runner={loaded.runner.runner_name} "
              f"{loaded.runner.required_framework_version} compat={loaded.runner.runner_compat_version}")
        test = loaded.self_tests[0]
        inputs = {k: v.load() for k, v in test.inputs.items()}
        expected = {k: v.load() for k, v in test.expected_out.items()}
        print("self test inputs:   ", json.dumps({k: v.tolist() for k, v in inputs.items()}, ensure_ascii=False))
        print("self test expected: ", json.dumps({k: v.tolist() for k, v in expected.items()}, ensure_ascii=False))
        print("misc files:         ", {k: v.read().decode() for k, v in loaded.misc_files.items() if k == "notes.md"})
        model_bytes = archive.read_bytes("model/model.pt")
        print(f"model/model.pt       {len(model_bytes)} bytes, identical to the source: {model_bytes == MODEL.read_bytes()}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
