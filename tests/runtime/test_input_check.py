"""Inputs checked against the declared specs before the model runs (carton_runtime.input_check),
and the model's own message first when forward raises."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime.input_check import make_input_checker

from .test_api import INPUTS, check_outputs

S = cf.TensorSpec
BATCHED = [S("x", "float32", ["batch", 3]), S("y", "float32", ["batch", 3])]


def input_error(check, inputs: dict) -> carton.CartonRuntimeError:
    with pytest.raises(carton.CartonRuntimeError) as err:
        check(inputs)
    assert err.value.code == "E-RUNTIME-INPUT"
    assert len(str(err.value)) < 300 and "\n" not in str(err.value)
    return err.value


# -- the checker alone ------------------------------------------------------------------------------


def test_no_specs_no_checker() -> None:
    assert make_input_checker(None) is None


def test_names_unknown_missing_and_not_a_dict() -> None:
    check = make_input_checker([S("a", "float32", None), S("b", "string", [])])
    err = input_error(check, {"a": np.ones(1, np.float32), "b": np.array("s"), "z": np.ones(1)})
    assert err.name == "z" and "no input 'z'" in str(err) and "'a' (float32 any shape), 'b' (string [])" in str(err)
    err = input_error(check, {"a": np.ones(1, np.float32)})
    assert err.name == "b" and "'b' is missing" in str(err) and "'a'" in str(err)
    err = input_error(check, [np.ones(1)])
    assert err.name is None and "must be a dict" in str(err)
    assert "no inputs" in str(input_error(make_input_checker([]), {"a": np.ones(1)}))
    make_input_checker([])({})


def test_dtypes() -> None:
    check = make_input_checker([S("f", "float32", None), S("s", "string", None)])
    good = {"f": np.ones(2, np.float32), "s": np.array(["a", "b"])}
    check(good)
    check({"f": np.ones(2, ">f4"), "s": np.array(["a", None][:1], dtype=object)})  # either byte order; object of str
    err = input_error(check, {**good, "f": np.ones(2)})
    assert err.name == "f" and "declared float32, got float64" in str(err) and "astype(np.float32)" in str(err)
    err = input_error(check, {**good, "s": np.array([1, "a"], dtype=object)})
    assert err.name == "s" and "holds a int" in str(err)
    err = input_error(check, {**good, "s": np.array([b"x"])})
    assert err.name == "s" and "declared string" in str(err)
    err = input_error(check, {**good, "f": np.array(["1.0"])})
    assert err.name == "f" and "got <U3" in str(err)
    check({**good, "f": np.float32(1.0)})  # a numpy scalar is a 0-d array


def test_rank_fixed_and_any_dims() -> None:
    check = make_input_checker([S("m", "int64", [2, None, 4]), S("scalar", "int64", []), S("anything", "int64", None)])
    good = {"m": np.zeros((2, 7, 4), np.int64), "scalar": np.array(3), "anything": np.zeros((1, 2, 3, 4), np.int64)}
    check(good)
    err = input_error(check, {**good, "m": np.zeros((2, 4), np.int64)})
    assert err.name == "m" and "must be 3-d [2, *, 4], got shape [2, 4]" in str(err)
    err = input_error(check, {**good, "m": np.zeros((2, 7, 5), np.int64)})
    assert err.name == "m" and "dimension 2 must be 4, got 5" in str(err)
    err = input_error(check, {**good, "scalar": np.array([3])})
    assert err.name == "scalar" and "a scalar" in str(err)


def test_symbols_agree_across_inputs() -> None:
    check = make_input_checker(BATCHED + [S("whole", "float32", "img"), S("again", "float32", "img")])
    img = np.zeros((2, 2), np.float32)
    check({"x": np.zeros((5, 3), np.float32), "y": np.zeros((5, 3), np.float32), "whole": img, "again": img})
    check({"x": np.zeros((1, 3), np.float32), "y": np.zeros((1, 3), np.float32), "whole": img, "again": img})  # nothing kept between calls
    err = input_error(check, {"x": np.zeros((5, 3), np.float32), "y": np.zeros((4, 3), np.float32), "whole": img, "again": img})
    assert err.name == "y" and "'batch' = 4, but input 'x' has 'batch' = 5" in str(err)
    err = input_error(check, {"x": np.zeros((5, 3), np.float32), "y": np.zeros((5, 3), np.float32), "whole": img, "again": img[:1]})
    assert err.name == "again" and "'img' = [1, 2], but input 'whole' has 'img' = [2, 2]" in str(err)


def test_values_that_are_not_numpy_arrays_go_to_the_runner() -> None:
    make_input_checker([S("a", "float32", [2])])({"a": [np.ones(2), np.ones(3)]})  # e.g. a nested tensor


# -- through the runtime, with real TorchScript models ------------------------------------------------


def test_docs_model_both_apis_infer_and_seal(packed: Path) -> None:
    bad = {**INPUTS, "a": INPUTS["a"].astype(np.float64)}
    model = carton_sync.load(packed)
    check_outputs(model.infer(INPUTS))
    for call in (model.infer, model.seal):
        with pytest.raises(carton.CartonRuntimeError, match="declared float32, got float64") as err:
            call(bad)
        assert err.value.code == "E-RUNTIME-INPUT" and err.value.name == "a"
    with pytest.raises(carton.CartonRuntimeError, match="no input 'extra'") as err:
        model.infer({**INPUTS, "extra": np.ones(1)})
    assert err.value.name == "extra"
    check_outputs(model.infer_with_handle(model.seal(INPUTS)))
    assert all(r.passed for r in model.run_self_tests())

    async def main() -> None:
        m = await carton.load(str(packed))
        for call in (m.infer, m.seal):
            with pytest.raises(carton.CartonRuntimeError, match="'c' must be 1-d") as err:
                await call({**INPUTS, "c": np.array("x")})
            assert err.value.code == "E-RUNTIME-INPUT" and err.value.name == "c"
        check_outputs(await m.infer_with_handle(await m.seal(INPUTS)))

    asyncio.run(main())


def test_symbolic_batch_mismatch_is_one_short_message(models: dict[str, Path]) -> None:
    """Without specs the copy model would run; with them a batch mismatch never reaches torch."""
    model = carton_sync.load_unpacked(models["copy"], "torchscript", "*", inputs=BATCHED)
    out = model.infer({"x": np.ones((2, 3), np.float32), "y": np.zeros((2, 3), np.float32)})
    assert out["x"].shape == (2, 3)
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.infer({"x": np.ones((2, 3), np.float32), "y": np.zeros((5, 3), np.float32)})
    assert err.value.code == "E-RUNTIME-INPUT" and err.value.name == "y" and "'batch'" in str(err.value)


def test_models_without_specs_keep_todays_behaviour(models: dict[str, Path]) -> None:
    model = carton_sync.load_unpacked(models["copy"], "torchscript", "*")
    assert model.info.inputs is None
    out = model.infer({"anything": np.ones(2), "goes": np.zeros((1, 2, 3), np.int8)})
    assert out["anything"].dtype == np.float64 and out["goes"].shape == (1, 2, 3)


# -- the model's own message when forward raises ---------------------------------------------------------


def test_model_exception_message_first_trace_in_debug_log_and_cause(models: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    model = carton_sync.load_unpacked(models["fails"], "torchscript", "*")
    with caplog.at_level(logging.DEBUG, logger="carton_runtime.runners.torchscript"):
        with pytest.raises(carton.CartonRuntimeError) as err:
            model.infer({"x": np.array([-1.0], dtype=np.float32)})
    assert err.value.code == "E-RUNTIME-INFER"
    assert str(err.value) == "E-RUNTIME-INFER the model raised ValueError: negative input"
    cause = err.value.__cause__
    assert cause is not None and "Traceback of TorchScript" in str(cause)
    records = [r for r in caplog.records if r.levelno == logging.DEBUG and "Traceback of TorchScript" in r.getMessage()]
    assert records and "negative input" in records[0].getMessage()
    assert model.infer({"x": np.array([1.0], dtype=np.float32)})["y"].tolist() == [2.0]  # still usable


def test_torch_op_failure_message(tmp_path: Path) -> None:
    import torch

    class MatMul(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"y": inputs["x"] @ inputs["w"]}

    path = tmp_path / "matmul.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(MatMul()), str(path))

    async def main() -> None:
        model = await carton.load_unpacked(str(path), "torchscript", "*")
        with pytest.raises(carton.CartonRuntimeError) as err:
            await model.infer({"x": np.ones((2, 3), np.float32), "w": np.ones((2, 2), np.float32)})
        assert err.value.code == "E-RUNTIME-INFER"
        assert str(err.value) == "E-RUNTIME-INFER the model raised RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 2x2)"

    asyncio.run(main())


def test_model_message_of_other_exceptions() -> None:
    from carton_runtime.runners.torchscript import MAX_MESSAGE, model_message

    assert model_message(RuntimeError("plain message\nsecond line")) == "plain message\nsecond line"
    assert model_message(KeyError()) == "KeyError"
    assert len(model_message(RuntimeError("x" * 10_000))) == MAX_MESSAGE + 4
    nested = (
        "The following operation failed in the TorchScript interpreter.\n"
        "Traceback of TorchScript, serialized code (most recent call last):\n  File \"code/a.py\", line 1\n    x = 1\n"
        "Traceback of TorchScript, original code (most recent call last):\n  File \"a.py\", line 2\n"
        "builtins.IndexError: index 5 is out of bounds\nNote: more detail\n"
    )
    assert model_message(RuntimeError(nested)) == "IndexError: index 5 is out of bounds\nNote: more detail"
