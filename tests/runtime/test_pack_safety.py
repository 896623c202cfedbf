"""``pack`` as a safety net: only TorchScript archives are packed for the torchscript runner
(``torch.save`` pickles are refused without being unpickled), a ScriptModule can be packed
directly, and the given self tests run on the packed archive before ``pack`` returns."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

import carton_format as cf
import carton_runtime.sync as cs
from carton_format.cli import main as carton_main
from carton_runtime.errors import CartonRuntimeError

torch = pytest.importorskip("torch")


class Double(torch.nn.Module):
    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {"y": inputs["x"] * 2}


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {"y": self.lin(inputs["x"])}


def _scripted() -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(Double())


@pytest.fixture()
def scripted_file(tmp_path: Path) -> Path:
    path = tmp_path / "double.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(_scripted(), str(path))
    return path


X = np.arange(3, dtype=np.float32)


def _test(factor: float, name: str | None = None) -> cf.SelfTest:
    return cf.SelfTest({"x": X}, name=name, expected_out={"y": X * factor})


def _pickles(tmp_path: Path) -> dict[str, Path]:
    out = {}
    out["module"] = tmp_path / "module.pt"
    torch.save(Net(), out["module"])
    out["state_dict"] = tmp_path / "sd.pt"
    torch.save(Net().state_dict(), out["state_dict"])
    out["legacy_module"] = tmp_path / "legacy_module.pt"
    torch.save(Net(), out["legacy_module"], _use_new_zipfile_serialization=False)
    out["legacy_state_dict"] = tmp_path / "legacy_sd.pt"
    torch.save(Net().state_dict(), out["legacy_state_dict"], _use_new_zipfile_serialization=False)
    return out


@pytest.mark.parametrize("kind", ["module", "state_dict", "legacy_module", "legacy_state_dict"])
def test_torch_save_output_is_refused(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _pickles(tmp_path)[kind]
    import pickle

    def no_unpickling(*_a: object, **_k: object) -> None:
        raise AssertionError("pack must not unpickle")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    monkeypatch.setattr(torch, "load", no_unpickling)
    out = tmp_path / "out.carton"
    with pytest.raises(CartonRuntimeError) as err:
        cs.pack(path, "torchscript", "*", output_path=out)
    assert err.value.code == "E-RUNTIME-ARG"
    message = str(err.value)
    assert "not a TorchScript archive" in message
    assert "torch.jit.script(model)" in message and "torch.jit.trace(model, example)" in message and "torch.jit.save" in message
    assert ("state_dict" in message) == ("state_dict" in kind)
    assert not out.exists()


def test_other_files_are_refused(tmp_path: Path) -> None:
    for name, data in [("empty.pt", b""), ("text.pt", b"hello"), ("zip.pt", None)]:
        path = tmp_path / name
        if data is None:
            import zipfile

            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("x/readme.txt", "hi")
        else:
            path.write_bytes(data)
        with pytest.raises(CartonRuntimeError, match="not a TorchScript archive") as err:
            cs.pack(path, "torchscript", "*", output_path=tmp_path / f"{name}.carton")
        assert err.value.code == "E-RUNTIME-ARG"


def test_eager_module_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CartonRuntimeError, match="eager torch.nn.Module") as err:
        cs.pack(Net(), "torchscript", "*", output_path=tmp_path / "o.carton")
    assert err.value.code == "E-RUNTIME-ARG"
    with pytest.raises(CartonRuntimeError, match="state_dict") as err:
        cs.pack(Net().state_dict(), "torchscript", "*", output_path=tmp_path / "o.carton")
    assert err.value.code == "E-RUNTIME-ARG"


def test_torchscript_file_packs_and_runs(tmp_path: Path, scripted_file: Path) -> None:
    path = cs.pack(scripted_file, "torchscript", "*", output_path=tmp_path / "m.carton", self_tests=[_test(2)])
    with cs.load(path) as model:
        assert model.infer({"x": X})["y"].tolist() == (X * 2).tolist()


def test_traced_module_file_packs(tmp_path: Path) -> None:
    traced_path = tmp_path / "traced.pt"
    lin = torch.nn.Linear(2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(lin, torch.zeros(1, 2)), str(traced_path))
    assert Path(cs.pack(traced_path, "torchscript", "*", output_path=tmp_path / "t.carton")).is_file()


@pytest.mark.parametrize("traced", [False, True])
def test_script_module_object(tmp_path: Path, traced: bool) -> None:
    if traced:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    else:
        module = _scripted()
    out = tmp_path / "obj.carton"
    path = cs.pack(module, "torchscript", "*", output_path=out, self_tests=None if traced else [_test(2)])
    assert path == str(out)
    if not traced:
        with cs.load(path) as model:
            assert all(model.run_self_tests())


def test_failing_self_test_removes_archive(tmp_path: Path, scripted_file: Path) -> None:
    out = tmp_path / "bad.carton"
    with pytest.raises(CartonRuntimeError) as err:
        cs.pack(scripted_file, "torchscript", "*", output_path=out, self_tests=[_test(2, "good"), _test(3, "wrong")])
    assert err.value.code == "E-RUNTIME-INFER"
    assert "1 of 2 self tests failed" in str(err.value) and "wrong" in str(err.value) and "FAIL" in str(err.value)
    assert not out.exists()


def test_failing_self_test_temporary_output_removed(tmp_path: Path, scripted_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(CartonRuntimeError):
        cs.pack(scripted_file, "torchscript", "*", self_tests=[_test(3)])
    assert not list(tmp_path.glob("carton-*.carton"))


def test_erroring_self_test_is_a_failure(tmp_path: Path, scripted_file: Path) -> None:
    out = tmp_path / "err.carton"
    bad = cf.SelfTest({"z": X}, expected_out={"y": X})
    with pytest.raises(CartonRuntimeError, match="self tests failed") as err:
        cs.pack(scripted_file, "torchscript", "*", output_path=out, self_tests=[bad])
    assert err.value.code == "E-RUNTIME-INFER"
    assert not out.exists()


def test_check_self_tests_opt_out(tmp_path: Path, scripted_file: Path) -> None:
    out = tmp_path / "unchecked.carton"
    path = cs.pack(scripted_file, "torchscript", "*", output_path=out, self_tests=[_test(3)], check_self_tests=False)
    with cs.load(path) as model:
        assert not any(model.run_self_tests())


def test_signature_keeps_the_original_positionals() -> None:
    import inspect

    params = inspect.signature(cs.pack).parameters
    positional = [n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional[:3] == ["path", "runner_name", "required_framework_version"]
    assert positional[-1] == "linked_files"
    assert params["check_self_tests"].kind is inspect.Parameter.KEYWORD_ONLY and params["check_self_tests"].default is True


def test_directory_with_model_pt_still_packs(tmp_path: Path, scripted_file: Path) -> None:
    model_dir = tmp_path / "dir"
    model_dir.mkdir()
    (model_dir / "model.pt").write_bytes(scripted_file.read_bytes())
    assert Path(cs.pack(model_dir, "torchscript", "*", output_path=tmp_path / "d.carton", self_tests=[_test(2)])).is_file()


# -- carton pack ------------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    return carton_main(list(argv))


def test_cli_refuses_pickle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _pickles(tmp_path)["state_dict"]
    assert _cli("pack", str(path), "-o", str(tmp_path / "o.carton"), "--framework-version", "*") != 0
    err = capsys.readouterr().err
    assert "E-RUNTIME-ARG" in err and "torch.jit.script" in err


def test_cli_output_exists_mentions_overwrite(tmp_path: Path, scripted_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.carton"
    out.write_bytes(b"old")
    assert _cli("pack", str(scripted_file), "-o", str(out), "--framework-version", "*") != 0
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"old"
    assert _cli("pack", str(scripted_file), "-o", str(out), "--framework-version", "*", "--overwrite") == 0
    assert out.read_bytes() != b"old"


def test_cli_specs_and_self_tests(tmp_path: Path, scripted_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "in.npz", x=X, z=np.zeros((1, 2), np.int64))
    np.savez(tmp_path / "good.npz", y=X * 2)
    np.savez(tmp_path / "bad.npz", y=X * 3)
    out = tmp_path / "specs.carton"
    rc = _cli(
        "pack", str(scripted_file), "-o", str(out), "--framework-version", "*",
        "--input", "x:float32:n", "--output-spec", "y:float32:*", "--input", "z:int64:?,2",
        "--self-test", f"{tmp_path / 'in.npz'}:{tmp_path / 'good.npz'}", "--self-test", str(tmp_path / "in.npz"),
    )
    assert rc == 0, capsys.readouterr().err
    assert "2 self test(s) passed" in capsys.readouterr().out
    info = cs.get_model_info(out)
    assert [(s.name, s.dtype, s.shape) for s in info.inputs] == [("x", "float32", ["n"]), ("z", "int64", [None, 2])]
    assert [(s.name, s.dtype, s.shape) for s in info.outputs] == [("y", "float32", None)]
    assert [t.name for t in info.self_tests] == ["in", "in"]
    with cs.load(out) as model:
        assert all(model.run_self_tests())

    bad = tmp_path / "bad.carton"
    argv = ["pack", str(scripted_file), "-o", str(bad), "--framework-version", "*", "--self-test", f"{tmp_path / 'in.npz'}:{tmp_path / 'bad.npz'}"]
    assert _cli(*argv) != 0
    err = capsys.readouterr().err
    assert "E-RUNTIME-INFER" in err and "FAIL" in err and not bad.exists()
    assert _cli(*argv, "--no-self-test-check") == 0
    assert bad.is_file()


@pytest.mark.parametrize("text", ["x", "x:float32:3,,2", ":float32:3"])
def test_cli_bad_spec(tmp_path: Path, scripted_file: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.carton"
    assert _cli("pack", str(scripted_file), "-o", str(out), "--framework-version", "*", "--input", text) != 0
    assert "E-RUNTIME-ARG" in capsys.readouterr().err and not out.exists()


def test_cli_bad_npz(tmp_path: Path, scripted_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.carton"
    assert _cli("pack", str(scripted_file), "-o", str(out), "--framework-version", "*", "--self-test", str(tmp_path / "missing.npz")) != 0
    assert "E-RUNTIME-ARG" in capsys.readouterr().err and not out.exists()


def test_self_test_check_leaves_the_cache_alone(tmp_path: Path, scripted_file: Path, cache_dir: Path) -> None:
    cs.pack(scripted_file, "torchscript", "*", output_path=tmp_path / "m.carton", self_tests=[_test(2)])
    assert not cache_dir.exists() or not any(cache_dir.rglob("*"))


def test_load_unpacked_takes_a_script_module() -> None:
    with cs.load_unpacked(_scripted(), "torchscript", "*") as model:
        assert model.infer({"x": X})["y"].tolist() == (X * 2).tolist()
