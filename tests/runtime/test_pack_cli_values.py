"""``carton pack --self-test`` / ``--example`` values: ``.npz`` files, ``NAME=@FILE.npy`` tensors
and, for examples, ``NAME=@FILE`` misc values (an image), checked before anything is written."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

import carton_runtime.sync as cs
from carton_format.cli import main as carton_main

torch = pytest.importorskip("torch")

X = np.arange(3, dtype=np.float32)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


class Double(torch.nn.Module):
    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {"y": inputs["x"] * 2}


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "double.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(Double()), str(path))
    return path


@pytest.fixture()
def values(tmp_path: Path) -> Path:
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", X * 2)
    np.save(tmp_path / "wrong.npy", X * 3)
    np.savez(tmp_path / "in.npz", x=X)
    (tmp_path / "cat.png").write_bytes(PNG)
    return tmp_path


def _pack(model_file: Path, out: Path, *extra: str) -> int:
    return carton_main(["pack", str(model_file), "-o", str(out), "--framework-version", "*", *extra])


def test_self_test_from_npy_files(model_file: Path, values: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = values / "m.carton"
    assert _pack(model_file, out, "--self-test", f"x=@{values / 'x.npy'}:y=@{values / 'y.npy'}") == 0, capsys.readouterr().err
    info = cs.get_model_info(out)
    (test,) = info.self_tests
    assert test.name == "x"
    np.testing.assert_array_equal(test.inputs["x"].load(), X)
    np.testing.assert_array_equal(test.expected_out["y"].load(), X * 2)


def test_self_test_npy_checked_before_writing(model_file: Path, values: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = values / "m.carton"
    assert _pack(model_file, out, "--self-test", f"x=@{values / 'x.npy'}:y=@{values / 'wrong.npy'}") == 1
    assert "FAIL" in capsys.readouterr().err and not out.exists()


def test_example_with_image_and_tensor(model_file: Path, values: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = values / "m.carton"
    rc = _pack(model_file, out, "--example", f"x=@{values / 'x.npy'},photo=@{values / 'cat.png'}:y=@{values / 'y.npy'}",
               "--example", f"{values / 'in.npz'}:y=@{values / 'y.npy'}")
    assert rc == 0, capsys.readouterr().err
    info = cs.get_model_info(out)
    first, second = info.examples
    assert (first.name, second.name) == ("x", "in")
    np.testing.assert_array_equal(first.inputs["x"].load(), X)
    assert first.inputs["photo"].read() == PNG
    np.testing.assert_array_equal(first.sample_out["y"].load(), X * 2)
    np.testing.assert_array_equal(second.inputs["x"].load(), X)
    assert [f.read() for f in (info.misc_files or {}).values()] == [PNG]  # examples keep misc values under misc/


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("--example", "x=@{d}/x.npy", "needs sample outputs"),
        ("--example", "x=@{d}/x.npy:y=@{d}/y.npy:z=@{d}/y.npy", "one ':'"),
        ("--example", "x=@{d}/missing.npy:y=@{d}/y.npy", "cannot read"),
        ("--self-test", "x=@{d}/cat.png", "a self-test value is a tensor"),
        ("--self-test", "x=@{d}/x.npy,x=@{d}/y.npy", "given twice"),
        ("--self-test", "{d}/cat.png", "expected FILE.npz"),
        ("--self-test", "x=@{d}/x.npy,", "empty item"),
        ("--self-test", "x=@{d}/cat.npy", "cannot read"),
    ],
)
def test_bad_values_are_usage_errors(model_file: Path, values: Path, flag: str, text: str, message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (values / "cat.npy").write_bytes(PNG)  # not an .npy file
    out = values / "m.carton"
    assert _pack(model_file, out, flag, text.format(d=values)) != 0
    err = capsys.readouterr().err
    assert "E-RUNTIME-ARG" in err and message in err and "Traceback" not in err
    assert not out.exists()
