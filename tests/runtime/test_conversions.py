"""The TorchScript runner's conversions: every dtype in and out, strings, and every error."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime.runners.torchscript import TorchScriptModel

NUMERIC_DTYPES = [
    np.float16, np.float32, np.float64, np.complex64, np.complex128, np.bool_,
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
]


def unpacked(models: dict[str, Path], name: str, **kwargs) -> carton_sync.Carton:
    return carton_sync.load_unpacked(models[name], "torchscript", "*", **kwargs)


def sample(dtype: type, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    if dtype is np.bool_:
        return (np.arange(int(np.prod(shape))) % 2 == 0).reshape(shape)
    values = np.arange(int(np.prod(shape))).reshape(shape)
    if np.dtype(dtype).kind == "c":
        return (values + 1j * values).astype(dtype)
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_dtype_round_trips(models: dict[str, Path], dtype: type) -> None:
    model = unpacked(models, "copy")
    x = sample(dtype)
    scalar = np.array(sample(dtype, (1,))[0])
    empty = np.zeros((0, 4), dtype=dtype)
    out = model.infer({"x": x, "scalar": scalar, "empty": empty})
    for name, value in (("x", x), ("scalar", scalar), ("empty", empty)):
        assert out[name].dtype == value.dtype, name
        assert out[name].shape == value.shape, name
        np.testing.assert_array_equal(out[name], value)


def test_both_apis_give_the_same_outputs(models: dict[str, Path]) -> None:
    inputs = {np.dtype(d).name: sample(d) for d in NUMERIC_DTYPES}
    sync_out = unpacked(models, "copy").infer(inputs)

    async def main() -> dict:
        model = await carton.load_unpacked(str(models["copy"]), "torchscript", "*")
        return await model.infer(inputs)

    async_out = asyncio.run(main())
    assert sync_out.keys() == async_out.keys() == inputs.keys()
    for key in inputs:
        np.testing.assert_array_equal(sync_out[key], async_out[key])


def test_inputs_are_zero_copy(models: dict[str, Path]) -> None:
    model = unpacked(models, "echo")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = model.infer({"x": x})
    assert np.shares_memory(out["x"], x)  # passed through without a copy


def test_arrays_torch_cannot_wrap_are_copied(models: dict[str, Path]) -> None:
    model = unpacked(models, "copy")
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    readonly = base.copy()
    readonly.flags.writeable = False
    cases = {
        "readonly": readonly,
        "big_endian": base.astype(">f4"),
        "negative_strides": base[::-1, ::-1],
        "non_contiguous": base[:, ::2],
        "fortran": np.asfortranarray(base),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "non-writable array" warning
        out = model.infer(cases)
    for name, value in cases.items():
        np.testing.assert_array_equal(out[name], value, err_msg=name)
        assert out[name].dtype.isnative


def test_strings_in_and_out(models: dict[str, Path]) -> None:
    model = unpacked(models, "strings")
    out = model.infer({"s": np.array("héllo 💖"), "items": np.array(["a", "తెలుగు", "c"])})
    assert out["upper"].shape == () and out["upper"].item() == "HéLLO 💖"  # TorchScript upper() is ASCII-only
    assert out["rev"].tolist() == ["c", "తెలుగు", "a"]
    assert out["n"].item() == 3 and out["n"].dtype == np.int64
    # object arrays of str and numpy's StringDType work too
    out = model.infer({"s": np.array("x", dtype=object), "items": np.array(["z"], dtype=object)})
    assert out["rev"].tolist() == ["z"] and out["upper"].item() == "X"
    # an empty list arrives as an empty List[str] (the model asserts the type)
    out = model.infer({"s": np.array("x"), "items": np.array([], dtype=str)})
    assert out["rev"].shape == (0,) and out["rev"].dtype.kind == "U" and out["n"].item() == 0
    if hasattr(np, "dtypes") and hasattr(np.dtypes, "StringDType"):
        out = model.infer({"s": np.array("y", dtype=np.dtypes.StringDType()), "items": np.array(["p", "q"], dtype=np.dtypes.StringDType())})
        assert out["rev"].tolist() == ["q", "p"]


def _runner_model(models: dict[str, Path], name: str) -> TorchScriptModel:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(models[name]))
    module.eval()
    return TorchScriptModel(module, torch.device("cpu"))


@pytest.mark.parametrize("dtype", [str, object], ids=["str", "object"])
def test_empty_string_lists_reach_a_dict_str_any_forward(models: dict[str, Path], dtype: type) -> None:
    """torch cannot type [] in a Python dict given as Dict[str, Any]: such calls go through the
    typed adapter, which keeps the inputs' order and kinds; other calls do not use it."""
    model = _runner_model(models, "any_keys")
    out = model.infer({"a": np.array(["p"]), "x": np.ones(2, np.float32)})
    assert model._adapter is None  # the normal path never compiles it
    inputs = {"e": np.array([], dtype=dtype), "x": np.ones(2, np.float32), "s": np.array("q"), "l": np.array(["p"]), "e2": np.array([], dtype=str)}
    out = model.infer(inputs)
    assert out["keys"].tolist() == ["e", "x", "s", "l", "e2"]
    assert out["kinds"].tolist() == ["List[str]", "tensor", "str", "List[str]", "List[str]"]
    adapter = model._adapter
    assert adapter is not None
    out = model.infer_prepared(model.prepare({"only": np.array([], dtype=str)}))  # sealed inputs too
    assert out["keys"].tolist() == ["only"] and out["kinds"].tolist() == ["List[str]"]
    assert model._adapter is adapter  # compiled once per model
    # forward raising through the adapter is an inference error; the model stays usable
    with pytest.raises(carton.CartonRuntimeError, match="asked to fail") as err:
        model.infer({"e": np.array([], dtype=str), "fail": np.array("y")})
    assert err.value.code == "E-RUNTIME-INFER"
    assert model.infer({"e": np.array([], dtype=str)})["kinds"].tolist() == ["List[str]"]
    model.close()
    assert model._adapter is None
    with pytest.raises(carton.CartonRuntimeError, match="closed"):
        model.infer({"e": np.array([], dtype=str)})


def test_empty_string_list_to_a_forward_the_adapter_cannot_wrap(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from carton_runtime.runners import torchscript

    class Unscriptable(torch.nn.Module):
        def __init__(self, inner: object) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, order: List[str]) -> Any:
            return self.inner.forward(order)  # a List[str] where Dict[str, Any] is expected

    monkeypatch.setattr(torchscript, "_make_adapter_class", lambda: Unscriptable)
    model = _runner_model(models, "any_keys")
    for _ in range(2):  # the failure is remembered, and the error stays the same
        with pytest.raises(carton.CartonRuntimeError, match="empty string list cannot be given") as err:
            model.infer({"s": np.array("x"), "items": np.array([], dtype=str)})
        assert err.value.code == "E-RUNTIME-INPUT" and err.value.name == "items"
    assert model._adapter is None
    assert model.infer({"items": np.array(["a"])})["kinds"].tolist() == ["List[str]"]


def test_empty_string_list_to_a_tensor_dict_forward(models: dict[str, Path]) -> None:
    """A forward taking Dict[str, Tensor] refuses a list as before (torch's own message)."""
    with pytest.raises(carton.CartonRuntimeError) as err:
        unpacked(models, "echo").infer({"items": np.array([], dtype=str)})
    assert err.value.code in ("E-RUNTIME-INFER", "E-RUNTIME-INPUT")


def test_string_fast_paths(models: dict[str, Path]) -> None:
    """str arrays of any byte order and stride become str / List[str]; str and List[str]
    outputs become native '<U' arrays sized to the longest string."""
    model = unpacked(models, "strings")
    items = np.array(["xy", "skip", "z", "skip"], dtype=">U4")[::2]  # big-endian, strided
    out = model.infer({"s": np.array("ab", dtype=">U2"), "items": items})
    assert out["upper"].dtype == np.dtype("<U2") and out["upper"].item() == "AB"
    assert out["rev"].dtype == np.dtype("<U2") and out["rev"].tolist() == ["z", "xy"]
    assert out["n"].item() == 2


@pytest.mark.parametrize(
    "value, message",
    [
        (np.array([["a", "b"]]), "only string tensors of 0 or 1 dims"),
        (np.array([b"x"]), "not supported by the torchscript runner"),
        (np.array(["1970-01-01"], dtype="datetime64[D]"), "not supported"),
        (np.array([1, "a"], dtype=object), "object arrays must hold only str"),
        ([np.ones(2), np.ones(3)], "nested tensors are not supported"),
        ({"a": 1}, "expected a numpy array"),
        (3.5, "expected a numpy array"),
    ],
)
def test_input_errors(models: dict[str, Path], value: object, message: str) -> None:
    model = unpacked(models, "strings")
    with pytest.raises(carton.CartonRuntimeError, match=message) as err:
        model.infer({"s": value, "items": np.array(["a"])})
    assert err.value.code == "E-RUNTIME-INPUT" and err.value.name == "s"


def test_inputs_must_be_a_dict(models: dict[str, Path]) -> None:
    with pytest.raises(carton.CartonRuntimeError) as err:
        unpacked(models, "copy").infer([np.ones(2)])
    assert err.value.code == "E-RUNTIME-INPUT"


def test_forward_exception_is_an_error_and_the_model_stays_usable(models: dict[str, Path]) -> None:
    model = unpacked(models, "fails")
    with pytest.raises(carton.CartonRuntimeError, match="negative input") as err:
        model.infer({"x": np.array([-1.0], dtype=np.float32)})
    assert err.value.code == "E-RUNTIME-INFER"
    assert model.infer({"x": np.array([1.0], dtype=np.float32)})["y"].tolist() == [2.0]
    # a wrong input type for Dict[str, Tensor] is reported by torch, not a crash
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.infer({"x": np.array("text")})
    assert err.value.code == "E-RUNTIME-INFER"

    async def main() -> None:
        m = await carton.load_unpacked(str(model.source), "torchscript", "*")
        with pytest.raises(carton.CartonRuntimeError):
            await m.infer({"x": np.array([-1.0], dtype=np.float32)})
        assert (await m.infer({"x": np.array([2.0], dtype=np.float32)}))["y"].tolist() == [3.0]

    asyncio.run(main())


@pytest.mark.parametrize("which, message",
                         [(0, "'number' is a int"), (1, "'half'.*bfloat16"), (2, "not entirely strings"), (3, "'nested' is a dict")])
def test_output_errors_name_the_output(models: dict[str, Path], which: int, message: str) -> None:
    model = unpacked(models, "bad_outputs")
    with pytest.raises(carton.CartonRuntimeError, match=message) as err:
        model.infer({"which": np.array(which), "x": np.ones(2, dtype=np.float32)})
    assert err.value.code == "E-RUNTIME-OUTPUT"


def test_non_dict_output(models: dict[str, Path]) -> None:
    with pytest.raises(carton.CartonRuntimeError, match="must return a dict") as err:
        unpacked(models, "not_a_dict").infer({"x": np.ones(2, dtype=np.float32)})
    assert err.value.code == "E-RUNTIME-OUTPUT"


def test_module_owned_outputs_are_copied(models: dict[str, Path]) -> None:
    model = unpacked(models, "param")
    out = model.infer({"x": np.full(3, 2.0, dtype=np.float32)})
    assert out["y"].tolist() == [2.0, 2.0, 2.0]
    out["w"][:] = 100  # must not change the model's weights
    assert model.infer({"x": np.ones(3, dtype=np.float32)})["y"].tolist() == [1.0, 1.0, 1.0]


def test_eval_mode_and_inference_mode(models: dict[str, Path]) -> None:
    out = unpacked(models, "training").infer({})
    assert out["training"].item() is False or out["training"].item() == 0
    assert not out["grad"].item()


def test_runner_opts(models: dict[str, Path]) -> None:
    import torch

    from carton_runtime.runners import torchscript

    before = torch.get_num_threads()
    torchscript._forget_thread_pool_settings()  # the first model asking sets the pools (see test_thread_pools.py)
    try:
        unpacked(models, "copy", runner_opts={"num_threads": 1})
        assert torch.get_num_threads() == 1
        with pytest.warns(RuntimeWarning, match="not known"):
            unpacked(models, "copy", runner_opts={"bogus": 1})
        with pytest.warns(RuntimeWarning, match="positive integer"):
            unpacked(models, "copy", runner_opts={"num_threads": "four"})
        interop = torch.get_num_interop_threads()
        unpacked(models, "copy", runner_opts={"num_interop_threads": interop})  # same value: silent
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            unpacked(models, "copy", runner_opts={"num_interop_threads": interop + 1})
        # the first model asking (for the current value) set the pool: a later different value warns, and it stays
        assert torch.get_num_interop_threads() == interop
        assert any("process-wide" in str(w.message) for w in caught)
    finally:
        torch.set_num_threads(before)
        torchscript._forget_thread_pool_settings()


def test_override_runner_opts_merge(packed: Path) -> None:
    model = carton_sync.load(packed, override_runner_opts={"num_threads": 2})
    assert model.info.runner.opts == {"num_threads": 2}
    with pytest.raises(ValueError) as err:
        carton_sync.load(packed, override_runner_opts={"num_threads": [1]})
    assert err.value.code == "E-RUNTIME-ARG"
