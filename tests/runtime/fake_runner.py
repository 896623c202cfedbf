"""A pure-Python runner for registry tests (also loaded through a fake entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class EchoModel:
    def __init__(self, files: Any, opts: dict[str, Any]):
        self.opts = opts
        self.files = files
        self.closed = False

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        if "boom" in inputs:
            raise KeyError("boom")
        out = {k: np.asarray(v) for k, v in inputs.items()}
        out["weights"] = np.frombuffer(self.files.read_bytes("weights.bin"), dtype=np.uint8)
        return out

    def close(self) -> None:
        self.closed = True


class EchoRunner:
    runner_name = "echo"
    framework_version = "1.4.2"
    runner_compat_version = 3

    def load(self, files: Any, *, device: Any, opts: dict[str, Any]) -> EchoModel:
        return EchoModel(files, opts)


def make() -> list[EchoRunner]:
    return [EchoRunner()]


def write_echo_model(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "weights.bin").write_bytes(bytes([1, 2, 3]))
    return directory
