"""Value semantics of the original's Python API: SelfTest / Example wrap their values, TensorSpec
checks dtype and shape, LazyLoadedTensor.get() copies, model.info reopens misc files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_format.dtypes import DTYPES
from carton_runtime import Example, LazyLoadedMiscFile, LazyLoadedTensor, SelfTest, TensorSpec


def run(coro):
    return asyncio.run(coro)


def test_self_test_wraps_on_construction_and_assignment() -> None:
    st = SelfTest(inputs={"a": np.ones(3, np.float32)}, expected_out={"y": np.array(["x"])})
    assert isinstance(st, cf.SelfTest)
    assert isinstance(st.inputs["a"], LazyLoadedTensor) and isinstance(st.expected_out["y"], LazyLoadedTensor)
    np.testing.assert_equal(run(st.inputs["a"].get()), np.ones(3, np.float32))
    st.inputs = {"b": np.arange(2)}
    st.expected_out = None
    assert isinstance(st.inputs["b"], LazyLoadedTensor) and st.expected_out is None
    with pytest.raises(cf.CartonFormatError) as err:
        SelfTest(inputs={"a": b"bytes"})
    assert (err.value.code, err.value.key) == ("E-ARG-INVALID", "inputs.a")
    with pytest.raises(cf.CartonFormatError):
        st.inputs = [np.ones(1)]


def test_example_wraps_arrays_and_bytes() -> None:
    ex = Example(inputs={"img": b"\x89PNG"}, sample_out={"y": np.array(5)})
    assert isinstance(ex.inputs["img"], LazyLoadedMiscFile) and isinstance(ex.sample_out["y"], LazyLoadedTensor)
    assert run(ex.inputs["img"].read()) == b"\x89PNG"
    ex.sample_out = {"z": b"zz"}
    assert run(ex.sample_out["z"].read()) == b"zz"
    assert cf.Example(inputs={"img": b"raw"}, sample_out={}).inputs["img"] == b"raw"  # the format layer's stay raw


def test_get_returns_fresh_writable_copies() -> None:
    source = np.arange(4, dtype=np.int32)
    t = SelfTest(inputs={"a": source, "n": [np.ones(2), np.zeros(1)], "s": np.array(["p", "q"])}).inputs
    first, second = run(t["a"].get()), run(t["a"].get())
    assert first is not second and first is not source and first.flags.writeable
    first[0] = 99
    np.testing.assert_equal(run(t["a"].get()), source)
    nested = run(t["n"].get())
    assert isinstance(nested, list) and nested[0] is not run(t["n"].get())[0]
    strings = run(t["s"].get())
    strings[0] = "changed"
    assert list(run(t["s"].get())) == ["p", "q"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_spec_accepts_every_dtype(dtype: str) -> None:
    assert TensorSpec("x", dtype, None).dtype == dtype


@pytest.mark.parametrize("dtype", ["bogus", "float16", "Float32", "bool", "nested", None, 3])
def test_tensor_spec_rejects_bad_dtype(dtype: object) -> None:
    with pytest.raises(ValueError) as err:
        TensorSpec("x", dtype, None)  # type: ignore[arg-type]
    assert isinstance(err.value, cf.CartonFormatError) and err.value.code == "E-ARG-INVALID"
    spec = TensorSpec("x", "float32", None)
    with pytest.raises(cf.CartonFormatError):
        spec.dtype = dtype  # type: ignore[assignment]
    assert spec.dtype == "float32"


def test_tensor_spec_shapes() -> None:
    for shape in (None, "sym", "", [], [None], [2, None, "symbol"], [2**64 - 1]):
        assert TensorSpec("x", "int8", shape).shape == shape
    assert TensorSpec("x", "int8", (1, np.int64(2))).shape == [1, 2]
    spec = TensorSpec("x", "int8", None)
    for bad, key in (([-1], "shape[0]"), ([1.5], "shape[0]"), ([1, True], "shape[1]"), ([2**64], "shape[0]"), (3, "shape"), ([[1]], "shape[0]")):
        with pytest.raises(cf.CartonFormatError) as err:
            spec.shape = bad
        assert err.value.key == key
    assert spec.shape is None


def test_async_reads_give_runtime_classes(packed: Path) -> None:
    info = run(carton.get_model_info(packed))
    assert type(info.self_tests[0]) is SelfTest and type(info.examples[0]) is Example
    assert type(carton_sync.get_model_info(packed).self_tests[0]) is cf.SelfTest  # the blocking API keeps the format layer's


def test_pack_accepts_lazy_values(tmp_path: Path, models: dict[str, Path]) -> None:
    st = SelfTest(inputs={"x": np.ones(2, np.float32)}, expected_out={"x": np.ones(2, np.float32)})
    ex = Example(inputs={"x": np.ones(2, np.float32)}, sample_out={"plot": b"png"})
    path = carton_sync.pack(
        models["echo"], "torchscript", "*", self_tests=[st], examples=[ex], misc_files={"m": b"m"}, output_path=tmp_path / "e.carton"
    )
    info = carton_sync.get_model_info(path)
    assert info.examples[0].sample_out["plot"].read() == b"png"
    np.testing.assert_equal(info.self_tests[0].expected_out["x"].load(), np.ones(2, np.float32))


def test_model_info_reopens_misc_files(packed: Path) -> None:
    async def main() -> None:
        model = await carton.load(packed)
        assert await model.info.misc_files["notes.md"].read() == "notes 📦".encode()
        assert await model.info.misc_files["notes.md"].read() == "notes 📦".encode()  # a new info, read from the start
        assert await model.info.examples[0].sample_out["plot"].read() == b"\x89PNG..."
        assert await model.info.examples[0].sample_out["plot"].read() == b"\x89PNG..."
        same = model.info.misc_files["notes.md"]
        assert await same.read(3) == b"not" and await same.read() == "es 📦".encode() and await same.read() == b""

    run(main())
