"""Runner registry and selection, load overrides, visible_device, and the CUDA path."""

from __future__ import annotations

import warnings
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime import registry
from carton_runtime.devices import DeviceSpec, parse_visible_device, resolve_torch_device

from .conftest import ORIGINAL_MODEL, pack_original
from .fake_runner import EchoRunner, write_echo_model
from .test_api import INPUTS, check_outputs


@pytest.fixture
def echo_archive(tmp_path: Path) -> Path:
    model_dir = write_echo_model(tmp_path / "echo-model")
    info = cf.CartonInfo(runner=cf.RunnerInfo("echo", "^1.4", 3, {"k": "v"}))
    return cf.write(tmp_path / "echo.carton", info, model_dir=model_dir).path


def test_third_party_runner(echo_runner: EchoRunner, echo_archive: Path) -> None:
    model = carton_sync.load(echo_archive)
    out = model.infer({"x": np.arange(3)})
    assert out["x"].tolist() == [0, 1, 2] and out["weights"].tolist() == [1, 2, 3]
    assert model.runner is echo_runner
    with pytest.raises(carton.CartonRuntimeError, match="KeyError") as err:  # wrapped
        model.infer({"boom": np.ones(1)})
    assert err.value.code == "E-RUNTIME-INFER"
    handle = model.seal({"x": np.ones(1)})
    assert model.infer_with_handle(handle)["x"].tolist() == [1.0]


def test_entry_points_are_loaded(monkeypatch: pytest.MonkeyPatch, echo_archive: Path) -> None:
    eps = [
        EntryPoint("echo", "tests.runtime.fake_runner:make", registry.ENTRY_POINT_GROUP),
        EntryPoint("broken", "tests.runtime.no_such_module:x", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_entry_point_runners", None)
    names = [r.runner_name for r in registry.installed_runners()]
    # entry points before the built-ins (torchscript first); the broken one is skipped
    assert names == ["echo"] + [r.runner_name for r in registry._builtin()] and names[1] == "torchscript"
    assert carton_sync.load(echo_archive).infer({})["weights"].tolist() == [1, 2, 3]
    monkeypatch.setattr(registry, "_entry_point_runners", None)


@pytest.mark.spec("FMT-RUNNER-8", "FMT-RUNNER-9", "FMT-RUNNER-10")
def test_selection_rules(echo_runner: EchoRunner) -> None:
    ok = registry.select_runner(cf.RunnerInfo("echo", "^1.4", 3))
    assert ok is echo_runner
    assert registry.select_runner(cf.RunnerInfo("echo", ">=1.0, <2", None)) is echo_runner  # no compat: no constraint
    for info in (
        cf.RunnerInfo("Echo", "*", 3),  # name is case-sensitive
        cf.RunnerInfo("echo", "=1.5", 3),  # version
        cf.RunnerInfo("echo", "*", 2),  # compat version
    ):
        with pytest.raises(carton.CartonRuntimeError) as err:
            registry.select_runner(info)
        assert err.value.code == "E-RUNTIME-NO-RUNNER"


@pytest.mark.spec("FMT-RUNNER-9", "FMT-RUNNER-11")
def test_no_matching_runner_message(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning):
        path = pack_original(tmp_path / "old.carton", required_framework_version="=2.0")
    with pytest.raises(ValueError) as err:
        carton_sync.load(path)
    message = str(err.value)
    assert err.value.code == "E-RUNTIME-NO-RUNNER"
    assert "'torchscript'" in message and "'=2.0'" in message and "runner_compat_version 1" in message
    assert "installed: torchscript 2.13" in message
    assert "override_required_framework_version" in message
    model = carton_sync.load(path, override_required_framework_version="=2.13")
    assert model.info.runner.required_framework_version == "=2.13"
    check_outputs(model.infer(INPUTS))
    assert carton_sync.load(path, override_required_framework_version="*").info.runner.required_framework_version == "*"


def test_override_errors(packed: Path) -> None:
    with pytest.raises(ValueError, match="was not a valid semver version range") as err:
        carton_sync.load(packed, override_required_framework_version="two")
    assert err.value.code == "E-VERSIONREQ-INVALID"
    with pytest.raises(carton.CartonRuntimeError, match="'other'") as err:
        carton_sync.load(packed, override_runner_name="other")
    assert err.value.code == "E-RUNTIME-NO-RUNNER"


@pytest.mark.spec("FMT-RUNNER-11")
def test_override_runner_name_selects_another_runner(echo_runner: EchoRunner, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.bin").write_bytes(b"\x07")
    info = cf.CartonInfo(runner=cf.RunnerInfo("something-else", "=1.4", 3))
    path = cf.write(tmp_path / "x.carton", info, model_dir=tmp_path / "m").path
    model = carton_sync.load(path, override_runner_name="echo", override_runner_opts={"a": 1})
    assert model.info.runner.runner_name == "echo" and model.info.runner.opts == {"a": 1}
    assert model.infer({})["weights"].tolist() == [7]


def test_to_semver() -> None:
    assert registry.to_semver("2.13.0+cpu") == "2.13.0+cpu"
    assert registry.to_semver("2.2.0a0+git1234") == "2.2.0-a0+git1234"
    assert registry.to_semver("2.1") == "2.1.0"
    assert registry.to_semver("2.3.0.dev20240101") == "2.3.0-dev20240101"


# -- visible_device -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, DeviceSpec("default")),
        ("cpu", DeviceSpec("cpu")),
        ("CPU", DeviceSpec("cpu")),
        (0, DeviceSpec("index", index=0)),
        ("3", DeviceSpec("index", index=3)),
        ("GPU-5f9c8a1e-0000-1111-2222-333344445555", DeviceSpec("uuid", uuid="GPU-5f9c8a1e-0000-1111-2222-333344445555")),
        ("MIG-GPU-5f9c8a1e-0000-1111-2222-333344445555/1/0", DeviceSpec("uuid", uuid="MIG-GPU-5f9c8a1e-0000-1111-2222-333344445555/1/0")),
    ],
)
def test_parse_visible_device(value: object, expected: DeviceSpec) -> None:
    assert parse_visible_device(value) == expected


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "MIG-5f9c8a1e", "-1", "", -1, True, 1.5])
def test_malformed_visible_device(value: object) -> None:
    with pytest.raises(ValueError) as err:
        parse_visible_device(value)
    assert err.value.code == "E-RUNTIME-DEVICE"
    if isinstance(value, str):
        assert str(err.value).endswith(
            f"Invalid format for device: '{value}'. Expected `cpu`, a device index, or a UUID starting with GPU- or MIG-GPU-"
        )


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU fallback")
def test_missing_gpu_warns_and_falls_back_to_cpu(packed: Path) -> None:
    for value in (0, "1", "GPU-00000000-0000-0000-0000-000000000000"):
        with pytest.warns(RuntimeWarning, match="falling back to the CPU"):
            model = carton_sync.load(packed, visible_device=value)
        assert str(model.device) == "cpu"
        check_outputs(model.infer(INPUTS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert str(carton_sync.load(packed).device) == "cpu"  # the default is silent


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda(packed: Path) -> None:
    import torch

    model = carton_sync.load(packed)  # default: GPU 0
    assert model.device == torch.device("cuda", 0)
    out = model.infer(INPUTS)
    check_outputs(out)
    assert isinstance(out["doubled"], np.ndarray)
    uuid = "GPU-" + str(torch.cuda.get_device_properties(0).uuid)
    assert resolve_torch_device(parse_visible_device(uuid)) == torch.device("cuda", 0)
    by_uuid = carton_sync.load(packed, visible_device=uuid)
    assert by_uuid.device == torch.device("cuda", 0)
    check_outputs(by_uuid.infer(INPUTS))
    check_outputs(by_uuid.infer_with_handle(by_uuid.seal(INPUTS)))
    assert all(by_uuid.run_self_tests())
    assert str(carton_sync.load(packed, visible_device="cpu").device) == "cpu"
    unpacked = carton_sync.load_unpacked(ORIGINAL_MODEL, "torchscript", "*", visible_device=0)
    assert unpacked.device == torch.device("cuda", 0)
    check_outputs(unpacked.infer(INPUTS))


def test_async_infer_offloads_slow_models_and_inlines_fast_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from carton_runtime import api

    # Far apart on purpose (a loaded CI machine can stretch a no-op call past 1 ms): a 50 ms
    # model never runs inline, a no-op model always ends up inline under a 20 ms threshold.
    monkeypatch.setattr(api, "INLINE_BELOW_S", 0.02)
    import threading
    import time

    class Model:
        def __init__(self, seconds: float) -> None:
            self.seconds = seconds
            self.threads: list[int] = []

        def infer(self, inputs: dict) -> dict:
            self.threads.append(threading.get_ident())
            time.sleep(self.seconds)
            return {}

        def close(self) -> None:
            pass

    class Runner:
        runner_name = "sleepy"
        framework_version = "1.0.0"
        runner_compat_version = 1

        def __init__(self) -> None:
            self.models: list[Model] = []

        def load(self, files: object, *, device: object, opts: dict) -> Model:
            self.models.append(Model(float(opts["seconds"])))
            return self.models[-1]

    runner = Runner()
    carton.register_runner(runner)
    try:
        (tmp_path / "m").mkdir()

        async def main() -> int:
            loop_thread = threading.get_ident()
            slow = await carton.load_unpacked(str(tmp_path / "m"), "sleepy", "*", runner_opts={"seconds": 0.05})
            fast = await carton.load_unpacked(str(tmp_path / "m"), "sleepy", "*", runner_opts={"seconds": 0.0})
            for _ in range(8):
                await slow.infer({})
                await fast.infer({})
            assert loop_thread not in runner.models[0].threads  # never blocks the loop for 50 ms
            assert runner.models[1].threads[-1] == loop_thread  # fast: inline after a few calls
            return loop_thread

        asyncio.run(main())
    finally:
        carton.unregister_runner(runner)
