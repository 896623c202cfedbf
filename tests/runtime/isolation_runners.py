"""Runners for the process-isolation tests, importable in a worker process (numpy only).

``EchoRunner`` ("iso-echo") returns its inputs, plus ``pid`` (the process it runs in) and
``opts`` (the options it was loaded with, as a string); ``CrashyRunner`` ("iso-crashy") does
what its input ``mode`` says: segfault, exit, abort, hang, grow its memory, raise.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


class EchoModel:
    def __init__(self, files: Any, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.weights = files.read_bytes("weights.bin") if "weights.bin" in files.names() else b""
        self.device = "cpu"

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        if "boom" in inputs:
            raise KeyError("boom")
        if "poke" in inputs:  # writes into its input: the caller sees it only if the memory is shared
            inputs["poke"][0] = 42
        out = {k: np.array(v) for k, v in inputs.items()}  # copies: the inputs' memory is the host's
        out["pid"] = np.array(os.getpid())
        out["opts"] = np.array(json.dumps(self.opts, sort_keys=True))
        out["weights"] = np.frombuffer(self.weights, dtype=np.uint8)
        return out

    def close(self) -> None:
        marker = self.opts.get("close_marker")
        if isinstance(marker, str):
            Path(marker).write_text("closed")


class EchoRunner:
    runner_name = "iso-echo"
    framework_version = "1.0.0"
    runner_compat_version = 1
    worker_ref = "tests.runtime.isolation_runners:EchoRunner"

    def load(self, files: Any, *, device: Any, opts: dict[str, Any]) -> EchoModel:
        return EchoModel(files, opts)


class CrashyModel:
    def __init__(self) -> None:
        self.hoard: list[bytearray] = []
        self.scratch = tempfile.mkdtemp(prefix="crashy-")  # left behind by a death, as a runner's would be

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        mode = str(inputs["mode"])
        if mode == "segfault":
            ctypes.string_at(0)
        elif mode == "exit":
            os._exit(3)
        elif mode == "abort":
            os.abort()
        elif mode == "hang":
            time.sleep(3600)
        elif mode == "leak":  # grows until the kernel's OOM killer would step in: emulated with its signal
            for _ in range(8):
                self.hoard.append(bytearray(16 * 1024 * 1024))
            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "raise":
            raise ValueError("asked to fail")
        elif mode == "scratch":
            return {"ok": np.array(self.scratch)}
        return {"ok": np.array(mode)}

    def close(self) -> None:
        pass


class CrashyRunner:
    runner_name = "iso-crashy"
    framework_version = "1.0.0"
    runner_compat_version = 1
    worker_ref = "tests.runtime.isolation_runners:CrashyRunner"
    isolation = "process"

    def load(self, files: Any, *, device: Any, opts: dict[str, Any]) -> CrashyModel:
        return CrashyModel()


def make_echo() -> EchoRunner:
    """A factory (``module:attr`` may name one)."""
    return EchoRunner()


class IdentityModel:
    """Returns its inputs as they came (the worker copies them into its reply)."""

    device = "cpu"

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        return inputs

    def close(self) -> None:
        pass


class IdentityRunner:
    runner_name = "iso-identity"
    framework_version = "1.0.0"
    runner_compat_version = 1

    def load(self, files: Any, *, device: Any, opts: dict[str, Any]) -> IdentityModel:
        return IdentityModel()


class ThreadsModel:
    """A real TorchScript model whose outputs also say torch's pool sizes in this process."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.device = inner.device

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        import torch

        out = self.inner.infer(inputs)
        out["num_threads"] = np.array(torch.get_num_threads())
        out["num_interop_threads"] = np.array(torch.get_num_interop_threads())
        return out

    def close(self) -> None:
        self.inner.close()


class ThreadsRunner:
    """The torchscript runner, reporting the thread pools its options set."""

    runner_name = "torchscript"
    runner_compat_version = 1

    def __init__(self) -> None:
        from carton_runtime.runners.torchscript import TorchScriptRunner

        self.inner = TorchScriptRunner.instance()
        self.framework_version = self.inner.framework_version

    def load(self, files: Any, *, device: Any, opts: dict[str, Any]) -> ThreadsModel:
        return ThreadsModel(self.inner.load(files, device=device, opts=opts))
