"""`make demo`: pack a small TorchScript model, validate it, read it back, load it, run it.

The model is the original implementation's torch runner test model: forward takes a dict with a
tensor ``a``, a ``str`` ``b`` and a ``List[str]`` ``c`` and returns ``doubled`` (2 * a), a
``str`` and a ``List[str]``.  Packing and loading use carton_runtime (the original's API, blocking
twin); validating and reading use carton_format.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "original" / "test_model.pt"  # the original's torch runner test model
OUT = ROOT / "demo-out"
os.environ.setdefault("CARTON_CACHE_DIR", str(OUT / "cache"))  # keep the demo's cache with its output

import carton_format as cf  # noqa: E402
import carton_runtime as carton  # noqa: E402
import carton_runtime.sync as carton_sync  # noqa: E402


def show(label: str, outputs: dict) -> None:
    print(f"{label:<20}" + json.dumps({k: v.tolist() for k, v in sorted(outputs.items())}, ensure_ascii=False))


def main() -> int:
    OUT.mkdir(exist_ok=True)
    a = np.array([1.5, 2.0, -3.25], dtype=np.float32)
    path = carton_sync.pack(
        MODEL,
        runner_name="torchscript",
        required_framework_version="=2.13",
        runner_opts={"num_threads": 1},
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
        output_path=OUT / "doubler.carton",
        overwrite=True,
    )
    path = Path(path)
    print(f"packed   {path} ({path.stat().st_size} bytes)")

    report = cf.validate(path)
    print(f"validate ok={report.ok} errors={len(report.errors)} warnings={len(report.warnings)} manifest {report.manifest_sha256}")
    for finding in report.findings:
        print(f"  {finding.code} {finding.member or ''} {finding.message}")

    with cf.read(path) as archive:
        loaded = archive.info
        print(f"read     {loaded.model_name!r} runner={loaded.runner.runner_name} "
              f"{loaded.runner.required_framework_version} compat={loaded.runner.runner_compat_version}")
        print("misc files:         ", {k: v.read().decode() for k, v in loaded.misc_files.items() if k == "notes.md"})
        model_bytes = archive.read_bytes("model/model.pt")
        print(f"model/model.pt       {len(model_bytes)} bytes, identical to the source: {model_bytes == MODEL.read_bytes()}")

    # Run it: the blocking API ...
    model = carton_sync.load(path)
    print(f"load     {model!r}")
    inputs = {"a": np.array([1.0, 2.5, 4.0], dtype=np.float32), "b": np.array("hello"), "c": np.array(["p", "q"])}
    show("infer (sync):", model.infer(inputs))
    results = model.run_self_tests()
    for result in results:
        print(f"self test            {result.summary()}")

    # ... and the original's async API (same names: `import carton_runtime as carton`)
    async def run_async() -> dict:
        m = await carton.load(str(path))
        test = m.info.self_tests[0]
        expected = {k: await v.get() for k, v in test.expected_out.items()}
        show("expected_out:", expected)
        return await m.infer(inputs)

    show("infer (async):", asyncio.run(run_async()))
    return 0 if report.ok and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
