"""visible_device: torch's spellings ("cuda", "cuda:N", torch.device), malformed ones, CARTON_STRICT_DEVICE."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import carton_runtime.sync as carton_sync
from carton_format.cli import main as carton_main
from carton_runtime.devices import CPU, DeviceSpec, parse_visible_device, resolve_torch_device

from .test_api import INPUTS, check_outputs

torch = pytest.importorskip("torch")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


@pytest.mark.parametrize(
    "value, index",
    [("cuda", 0), ("cuda:0", 0), ("cuda:1", 1), ("CUDA:3", 3), (torch.device("cuda"), 0), (torch.device("cuda:2"), 2)],
)
def test_torch_spellings(value: object, index: int) -> None:
    assert parse_visible_device(value) == DeviceSpec("index", index=index)


def test_torch_cpu_device_and_original_spellings_still_work() -> None:
    assert parse_visible_device(torch.device("cpu")) == CPU
    assert parse_visible_device("cpu") == CPU
    assert parse_visible_device("2") == DeviceSpec("index", index=2)
    assert parse_visible_device(1) == DeviceSpec("index", index=1)
    assert parse_visible_device("GPU-abc").kind == "uuid"


@pytest.mark.parametrize("value", ["cuda:x", "cuda:-1", "cuda:", "cuda:1.5", "cuda:0:1", "cuda: 1", "cuda:99999999999", "cuda1"])
def test_malformed_torch_spellings_name_the_argument(value: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_visible_device(value)
    assert err.value.code == "E-RUNTIME-DEVICE"
    message = str(err.value)
    assert "visible_device" in message and f"'{value}'" in message


def test_unsupported_torch_device() -> None:
    with pytest.raises(ValueError, match="visible_device: unsupported torch device meta") as err:
        parse_visible_device(torch.device("meta"))
    assert err.value.code == "E-RUNTIME-DEVICE"


@NO_GPU
def test_missing_cuda_gpu_warns_naming_the_fallback(packed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTON_STRICT_DEVICE", raising=False)
    for value in ("cuda", "cuda:1", torch.device("cuda:0")):
        with pytest.warns(RuntimeWarning, match="falling back to the CPU.*CARTON_STRICT_DEVICE=1"):
            model = carton_sync.load(packed, visible_device=value)
        assert str(model.device) == "cpu"
        check_outputs(model.infer(INPUTS))


@NO_GPU
@pytest.mark.parametrize("flag", ["1", "true"])
def test_strict_device_makes_a_missing_gpu_an_error(packed: Path, monkeypatch: pytest.MonkeyPatch, flag: str) -> None:
    monkeypatch.setenv("CARTON_STRICT_DEVICE", flag)
    for value in ("cuda:1", 0, "GPU-00000000-0000-0000-0000-000000000000"):
        with pytest.raises(ValueError, match="not falling back to the CPU because CARTON_STRICT_DEVICE") as err:
            carton_sync.load(packed, visible_device=value)
        assert err.value.code == "E-RUNTIME-DEVICE"
    with pytest.raises(ValueError, match="CARTON_STRICT_DEVICE"):
        resolve_torch_device(parse_visible_device("cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert str(carton_sync.load(packed).device) == "cpu"  # the default (GPU 0 else CPU) is no request
        assert str(carton_sync.load(packed, visible_device="cpu").device) == "cpu"


@NO_GPU
def test_strict_device_off_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_STRICT_DEVICE", "0")
    with pytest.warns(RuntimeWarning, match="falling back"):
        assert str(resolve_torch_device(parse_visible_device("cuda:0"))) == "cpu"


def test_cli_device_errors(packed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert carton_main(["run", str(packed), "--device", "cuda:x"]) == 1
    err = capsys.readouterr().err
    assert "E-RUNTIME-DEVICE" in err and "'cuda:x'" in err
    if not torch.cuda.is_available():
        monkeypatch.setenv("CARTON_STRICT_DEVICE", "1")
        assert carton_main(["selftest", str(packed), "--device", "cuda"]) == 1
        assert "CARTON_STRICT_DEVICE" in capsys.readouterr().err
