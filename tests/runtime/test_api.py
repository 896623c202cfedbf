"""End to end with the original's docs example model, through both APIs."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync

from .conftest import ORIGINAL_MODEL, original_self_test, pack_original

INPUTS = {"a": np.array([1.0, 2.5], dtype=np.float32), "b": np.array("hi"), "c": np.array(["x", "y"])}


def check_outputs(out: dict) -> None:
    assert set(out) == {"doubled", "string", "stringlist"}
    np.testing.assert_array_equal(out["doubled"], np.array([2.0, 5.0], dtype=np.float32))
    assert out["doubled"].dtype == np.float32
    assert out["string"].shape == () and out["string"].item() == "A string"
    assert out["stringlist"].tolist() == ["A", "list", "of", "strings"]


def test_sync_end_to_end(packed: Path) -> None:
    with carton_sync.load(packed) as model:
        check_outputs(model.infer(INPUTS))
        assert model.info.model_name == "doubler"
        assert model.info.runner.runner_compat_version == 1
        assert len(model.manifest_sha256) == 64
        results = model.run_self_tests()
        assert len(results) == 1 and results[0].passed, results[0].summary()
        assert str(model.device) == "cpu"
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.infer(INPUTS)
    assert err.value.code == "E-RUNTIME-CLOSED"


def test_async_end_to_end(packed: Path) -> None:
    async def main() -> None:
        model = await carton.load(str(packed))
        check_outputs(await model.infer(INPUTS))
        info = model.info
        test = info.self_tests[0]
        assert isinstance(test.inputs["a"], carton.LazyLoadedTensor)
        np.testing.assert_array_equal(await test.inputs["a"].get(), original_self_test().inputs["a"])
        assert (await test.expected_out["string"].get()).item() == "A string"
        misc = info.misc_files["notes.md"]
        assert isinstance(misc, carton.LazyLoadedMiscFile)
        assert await misc.read(5) == "notes".encode()
        assert await misc.read() == " 📦".encode()
        assert await misc.read() == b""  # sequential, like the original
        example = info.examples[0]
        assert isinstance(example.sample_out["plot"], carton.LazyLoadedMiscFile)
        assert await example.sample_out["plot"].read() == b"\x89PNG..."
        results = await model.run_self_tests()
        assert all(results)
        handle = await model.seal(INPUTS)
        check_outputs(await model.infer_with_handle(handle))
        model.close()

    asyncio.run(main())


def test_argument_names_and_defaults_match_the_original() -> None:
    import inspect

    def original_part(fn: object) -> list[str]:
        """The parameters a positional call can reach; the rest must be keyword-only extensions."""
        params = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
        extra = [p for p in params if p.kind is p.KEYWORD_ONLY]
        assert all(p.default is not inspect.Parameter.empty for p in extra), "our additions must be optional"
        return [p.name for p in params if p.kind is not p.KEYWORD_ONLY]

    sig = inspect.signature(carton.load)
    assert original_part(carton.load) == [
        "path", "visible_device", "override_runner_name", "override_required_framework_version", "override_runner_opts",
    ]
    assert all(p.default is None for name, p in sig.parameters.items() if name != "path")
    assert original_part(carton.load_unpacked)[-2:] == ["visible_device", "linked_files"]
    assert list(inspect.signature(carton.load_unpacked).parameters)[-4:] == ["isolation", "environment", "call_timeout_s", "load_timeout_s"]
    pack_names = list(inspect.signature(carton.pack).parameters)
    assert pack_names[:5] == ["path", "runner_name", "required_framework_version", "runner_compat_version", "runner_opts"]
    assert "linked_files" in pack_names
    assert original_part(carton.get_model_info) == ["url_or_path"]
    for name in ("load", "get_model_info", "pack", "load_unpacked", "shrink"):
        assert list(inspect.signature(getattr(carton, name)).parameters)[:2] == list(inspect.signature(getattr(carton_sync, name)).parameters)[:2]
        assert asyncio.iscoroutinefunction(getattr(carton, name))


def test_seal_handles_are_single_use(packed: Path) -> None:
    model = carton_sync.load(packed)
    other = carton_sync.load(packed)
    handle = model.seal(INPUTS)
    check_outputs(model.infer_with_handle(handle))
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.infer_with_handle(handle)
    assert err.value.code == "E-RUNTIME-HANDLE"
    with pytest.raises(carton.CartonRuntimeError) as err:
        other.infer_with_handle(model.seal(INPUTS))
    assert err.value.code == "E-RUNTIME-HANDLE"


def test_self_tests_report_mismatches(tmp_path: Path) -> None:
    a = np.array([1.0], dtype=np.float32)
    tests = [
        cf.SelfTest(inputs={"a": a, "b": np.array("s"), "c": np.array(["x"])}, expected_out={"doubled": a * 2 + 1e-7}, name="close enough"),
        cf.SelfTest(inputs={"a": a, "b": np.array("s"), "c": np.array(["x"])}, expected_out={"doubled": a * 3}, name="wrong"),
        cf.SelfTest(inputs={"a": a, "b": np.array("s"), "c": np.array(["x"])}, expected_out={"string": np.array("other")}, name="strings exact"),
        cf.SelfTest(inputs={"a": a, "b": np.array("s"), "c": np.array(["x"])}, expected_out={"missing": a}, name="missing"),
        cf.SelfTest(inputs={"a": a, "b": np.array("s"), "c": np.array(["x"])}, name="no expectations"),
        cf.SelfTest(inputs={"a": a}, expected_out={"doubled": a}, name="forward fails"),
    ]
    path = pack_original(tmp_path / "m.carton", self_tests=tests, check_self_tests=False)  # failing on purpose
    results = carton_sync.load(path).run_self_tests()
    assert [r.passed for r in results] == [True, False, False, False, True, False]
    assert "values differ" in results[1].mismatches[0]
    assert "missing from the outputs" in results[3].mismatches[0]
    assert "E-RUNTIME-INPUT" in results[5].error and "'b' is missing" in results[5].error  # checked against the specs
    assert results[1].summary().startswith("FAIL wrong")


def test_load_unpacked_both_apis() -> None:
    kwargs = dict(
        model_name="unpacked",
        inputs=[cf.TensorSpec("a", "float32", None), cf.TensorSpec("b", "string", None), cf.TensorSpec("c", "string", None)],  # all checked
        self_tests=[original_self_test()],
        misc_files={"x.txt": b"hello"},
        visible_device="cpu",
    )
    model = carton_sync.load_unpacked(ORIGINAL_MODEL, "torchscript", ">=2.0", **kwargs)
    assert model.manifest_sha256 is None
    assert model.info.runner.runner_compat_version == 1
    check_outputs(model.infer(INPUTS))
    assert all(model.run_self_tests())
    model.close()

    async def main() -> None:
        m = await carton.load_unpacked(str(ORIGINAL_MODEL), "torchscript", ">=2.0", **kwargs)
        check_outputs(await m.infer(INPUTS))
        assert await m.info.misc_files["x.txt"].read() == b"hello"
        np.testing.assert_array_equal(await m.info.self_tests[0].inputs["a"].get(), original_self_test().inputs["a"])

    asyncio.run(main())


@pytest.mark.spec("FMT-RUNNER-7")
def test_pack_metadata_round_trip(tmp_path: Path) -> None:
    async def main() -> str:
        return await carton.pack(
            str(ORIGINAL_MODEL), "torchscript", "=2.13", None, {"num_threads": 1},
            model_name="n", short_description="s", model_description="# d", license="MIT",
            repository="https://example.com/r", homepage="https://example.com/h",
            required_platforms=["x86_64-unknown-linux-gnu"],
            inputs=[cf.TensorSpec("a", "float32", [None, "n", 3], description="input")],
            outputs=[cf.TensorSpec("doubled", "float32", None)],
            self_tests=[original_self_test()],
            misc_files={"m.bin": b"\x00\x01"},
            check_self_tests=False,  # the self test feeds inputs these specs do not declare
        )

    path = asyncio.run(main())
    info = asyncio.run(carton.get_model_info(path))
    assert (info.model_name, info.short_description, info.model_description, info.license) == ("n", "s", "# d", "MIT")
    assert info.repository == "https://example.com/r" and info.homepage == "https://example.com/h"
    assert info.required_platforms == ["x86_64-unknown-linux-gnu"]
    assert info.inputs[0].shape == [None, "n", 3] and info.inputs[0].description == "input"
    assert info.runner.opts == {"num_threads": 1}
    assert info.runner.runner_compat_version == 1  # filled in from the runner
    with zipfile.ZipFile(path) as z:
        assert "model/model.pt" in z.namelist()
        assert z.read("model/model.pt") == ORIGINAL_MODEL.read_bytes()
    Path(path).unlink()


def test_pack_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Invalid `required_framework_version`") as err:
        carton_sync.pack(ORIGINAL_MODEL, "torchscript", "not a version")
    assert err.value.code == "E-VERSIONREQ-INVALID"
    with pytest.raises(carton.CartonError) as err:
        carton_sync.pack(tmp_path / "missing.pt", "torchscript", "=2.13")
    assert err.value.code == "E-RUNTIME-ARG"
    with pytest.raises(carton.CartonError) as err:
        carton_sync.pack(ORIGINAL_MODEL, "no-such-runner", "*")
    assert err.value.code == "E-RUNTIME-NO-RUNNER"
    with pytest.raises(carton.CartonError) as err:
        carton_sync.pack(ORIGINAL_MODEL, "torchscript", "*", runner_opts={"x": [1]})
    assert err.value.code == "E-RUNTIME-ARG"
    out = tmp_path / "exists.carton"
    out.write_bytes(b"x")
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.pack(ORIGINAL_MODEL, "torchscript", "*", output_path=out)
    assert err.value.code == "E-OUTPUT-EXISTS" and isinstance(err.value, cf.CartonFormatError)
    with pytest.warns(RuntimeWarning, match="override_required_framework_version"):
        carton_sync.pack(ORIGINAL_MODEL, "torchscript", "=1.0", output_path=tmp_path / "old.carton")


def test_get_model_info_sources(packed: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(packed) as z:
        z.extractall(unpacked)
    for source in (packed, str(packed), packed.as_uri(), unpacked):
        info = carton_sync.get_model_info(source)
        assert info.model_name == "doubler"
        np.testing.assert_array_equal(info.self_tests[0].inputs["a"].load(), original_self_test().inputs["a"])
    # an unpacked directory loads and infers too
    check_outputs(carton_sync.load(unpacked).infer(INPUTS))
    check_outputs(carton_sync.load(packed.as_uri()).infer(INPUTS))


def test_source_errors(tmp_path: Path) -> None:
    cases = [
        (tmp_path / "missing.carton", "E-RUNTIME-SOURCE"),
        ("ftp://example.com/x.carton", "E-RUNTIME-SOURCE"),
        ("http://user:pw@127.0.0.1:1/x.carton", "E-RUNTIME-SOURCE"),
        ("file://otherhost/x.carton", "E-RUNTIME-SOURCE"),
        (12, "E-RUNTIME-ARG"),
    ]
    for source, code in cases:
        with pytest.raises(ValueError) as err:
            carton_sync.load(source)
        assert err.value.code == code, source
    not_zip = tmp_path / "not.carton"
    not_zip.write_bytes(b"hello world, definitely not a zip archive")
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.get_model_info(not_zip)
    assert err.value.code == "E-ZIP-NOT-ZIP"
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(carton.CartonError) as err:
        carton_sync.load(empty_dir)
    assert err.value.code == "E-STRUCTURE-MISSING"


def test_async_errors_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        asyncio.run(carton.load(str(tmp_path / "nope.carton")))
    with pytest.raises(ValueError, match="Invalid format for device"):
        asyncio.run(carton.load(str(tmp_path / "nope.carton"), visible_device="cuda:x"))


def test_missing_model_file(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "other.pt").write_bytes(b"x")
    with pytest.raises(carton.CartonRuntimeError, match="without model.pt"):
        carton_sync.pack(model_dir, "torchscript", "=2.13", output_path=tmp_path / "m.carton")
    info = cf.CartonInfo(runner=cf.RunnerInfo("torchscript", "=2.13", 1))
    path = cf.write(tmp_path / "m.carton", info, model_dir=model_dir).path
    with pytest.raises(carton.CartonRuntimeError, match="model/model.pt") as err:
        carton_sync.load(path)
    assert err.value.code == "E-RUNTIME-RUNNER"


def test_invalid_torchscript(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "model.pt").write_bytes(b"not torchscript at all")
    path = carton_sync.pack(model_dir, "torchscript", "=2.13", output_path=tmp_path / "m.carton")
    with pytest.raises(carton.CartonRuntimeError, match="not a loadable TorchScript") as err:
        carton_sync.load(path)
    assert err.value.code == "E-RUNTIME-RUNNER"


def test_metadata_needs_no_torch(packed: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import carton_runtime, carton_runtime.sync as cs\n"
        f"print(cs.get_model_info({str(packed)!r}).model_name)\n"
        "try:\n"
        f"    cs.load({str(packed)!r})\n"
        "except carton_runtime.CartonError as e:\n"
        "    print(e.code, 'torch is not installed' in str(e))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["doubler", "E-RUNTIME-NO-RUNNER", "True"]
