"""Archives that exercise everything the original can read: every dtype, string tensors of
several ranks, 0-size dimensions, unicode names and values, examples mixing tensors and misc
files, runner opts of every type, symlinks in model/.  (The original cannot read nested tensors
or empty string tensors, so interop samples leave those out; our own tests cover them.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import carton_format as cf
from carton_format.dtypes import NUMERIC_DTYPES


def kitchen_sink_info() -> cf.CartonInfo:
    rng = np.random.default_rng(7)
    numeric = {}
    for i, (name, dtype) in enumerate(sorted(NUMERIC_DTYPES.items())):
        shape = [(3,), (2, 2), (), (0, 4), (1, 2, 3)][i % 5]
        if dtype.kind == "f":
            numeric[name] = rng.standard_normal(shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            numeric[name] = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    strings = {
        "s0": np.array("Scalar String 💖"),
        "s1": np.array(["Hello 💖 😂", "Some Telugu: గ ఘ ఙ", "Let's 'quote' \"this\"", "tab\there"]),
        "s2": np.array([["a", "bb"], ["ccc", "ü"]]),
    }
    return cf.CartonInfo(
        runner=cf.RunnerInfo("torchscript", ">= 2.0.0", 1, {"num_threads": 4, "ratio": 0.5, "mode": "fast", "flag": False}),
        model_name="kitchen sink ✓",
        short_description="Every dtype and string rank the original can read",
        model_description="# Title\n\nMulti-line *markdown* with 'quotes' and \"double quotes\".\n",
        license="Apache-2.0",
        repository="https://example.com/repo",
        homepage="https://example.com",
        required_platforms=["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"],
        inputs=[
            cf.TensorSpec("a", "float32", None, description="any shape"),
            cf.TensorSpec("b", "float64", "some_symbol"),
            cf.TensorSpec("c", "string", [None]),
            cf.TensorSpec("d", "int8", ["batch", 3, 512, 512], internal_name="ns/in:0"),
            cf.TensorSpec("e", "uint64", []),
        ],
        outputs=[cf.TensorSpec("out", "float32", ["batch", None])],
        self_tests=[
            cf.SelfTest(inputs=numeric, expected_out={"out": numeric["float32"]}, name="all numeric", description="ü"),
            cf.SelfTest(inputs=strings),
        ],
        examples=[
            cf.Example(inputs={"img": b"\x89PNG\r\n\x1a\n fake", "x": numeric["int16"]}, sample_out={"label": strings["s1"]}, name="ex"),
        ],
        misc_files={"model_architecture.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "notes – ü.md": "ünïcode".encode()},
    )


def write_kitchen_sink(directory: Path, name: str = "kitchen_sink.carton", compression: str = "stored") -> Path:
    model = directory / f"{name}.model"
    (model / "weights").mkdir(parents=True)
    (model / "model.pt").write_bytes(b"torchscript bytes " * 50)
    (model / "weights" / "w.bin").write_bytes(bytes(range(256)) * 20)
    (model / "alias.bin").symlink_to("weights/w.bin")
    (model / ".carton").mkdir()
    (model / ".carton" / "carton.lock").write_text("lock")
    return cf.write(directory / name, kitchen_sink_info(), model_dir=model, compression=compression, overwrite=True).path
