"""Tensors that are cheap to store and were expensive (or impossible) to check.

* A zero dimension next to one >= 2**63 made validate() raise numpy's ValueError (and
  ``carton validate --json`` print a traceback and lose every other file's report).  Shape
  arithmetic is exact Python integers; validate() never raises; numpy is never asked to hold
  what it cannot (E-LIMIT-TENSOR when such a tensor is loaded).
* validate() loaded every tensor: a 131 KB archive of a 4 GiB zero tensor peaked at ~8 GiB
  (parts list + join + array), a 5 KB archive of 10 million empty strings took ~120 s and
  1.8 GiB.  Validation now streams numeric files (declared size, bytes counted while hashed,
  no second read after verify()) and bounds string tensors by ``Limits.max_string_tensor_elements``
  (from the shape, and the file's values counted before it is parsed); load_tensor() refuses
  before allocating, reads a numeric tensor straight into its buffer (one copy, not two) and
  refuses string arrays numpy would make enormous (a million strings, one of 100,000
  characters: 400 GB).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
from carton_format import reader as reader_module
from carton_format.cli import main
from carton_format.tensor_data import IndexEntry

from ..helpers import hostile
from ..helpers.cartoncraft import write_sample


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- 2. shape arithmetic --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "uint8", "string"])
@pytest.mark.parametrize("shape", [(0, 2**63), (2**63, 0), (0, 2**64 - 1, 2**64 - 1), (0, 2**62, 4)])
def test_an_empty_tensor_numpy_cannot_shape_validates_and_refuses_to_load(tmp_path: Path, dtype: str, shape: tuple[int, ...]) -> None:
    path = _write(tmp_path, "t.carton", hostile.overflowing_shape_archive(dtype, shape))
    report = cf.validate(path)  # used to raise ValueError from numpy
    assert report.ok, report.findings  # zero elements, an empty file: FMT-TENSOR-6 allows it
    with cf.read(path) as archive:
        with pytest.raises(cf.CartonFormatError) as err:
            archive.info.self_tests[0].inputs["x"].load()
    assert err.value.code == "E-LIMIT-TENSOR" and "cannot be held in memory" in err.value.message


def test_cli_json_reports_every_file_even_when_one_is_odd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    odd = _write(tmp_path, "odd.carton", hostile.overflowing_shape_archive("float32", (0, 2**63)))
    good = write_sample(tmp_path)
    assert main(["validate", "--json", str(odd), str(good), str(tmp_path / "missing.carton")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["ok"] for f in report["files"]] == [True, True, False]
    assert report["files"][2]["errors"][0]["code"] == "E-IO"


def test_validate_turns_an_unexpected_exception_into_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: cf.CartonArchive) -> None:
        raise ValueError("Maximum allowed dimension exceeded")

    monkeypatch.setattr(reader_module.CartonArchive, "check_tensors", broken)
    with caplog.at_level(logging.ERROR):
        report = cf.validate(write_sample(tmp_path))
    assert not report.ok
    [finding] = report.errors
    assert finding.code == "E-INTERNAL" and finding.category == "internal"
    assert "ValueError: Maximum allowed dimension exceeded" in finding.message and "bug" in finding.message
    assert "internal error while validating" in caplog.text and "Traceback" in caplog.text


def test_cli_prints_every_file_when_validate_itself_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_sample(tmp_path)
    real = cf.validate

    def flaky(path: object, **kwargs: object) -> cf.ValidationReport:
        if str(path).endswith("first.carton"):
            raise RuntimeError("boom")
        return real(path, **kwargs)

    monkeypatch.setattr("carton_format.cli.validate", flaky)
    first = tmp_path / "first.carton"
    first.write_bytes(good.read_bytes())
    assert main(["validate", "--json", str(first), str(good)]) == 1
    files = json.loads(capsys.readouterr().out)["files"]
    assert [f["ok"] for f in files] == [False, True]
    assert files[0]["errors"][0]["code"] == "E-INTERNAL"
    assert main(["validate", str(first), str(good)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "E-INTERNAL" in lines[0] and lines[1].endswith(f"OK manifest {real(good).manifest_sha256}")


def test_load_tensor_checks_a_hand_made_entry_before_allocating(tmp_path: Path) -> None:
    with cf.read(write_sample(tmp_path)) as archive:
        entry = next(e for e in archive.tensor_index.entries.values() if e.dtype == "float32")
        for shape in [(2**40,), (2**62, 4), (0, 2**63)]:
            with pytest.raises(cf.CartonFormatError) as err:
                archive.load_tensor(IndexEntry(entry.name, "float32", shape, entry.file))
            assert err.value.code == "E-LIMIT-TENSOR"
        strings = next(e for e in archive.tensor_index.entries.values() if e.dtype == "string")
        with pytest.raises(cf.CartonFormatError) as err:
            archive.load_tensor(IndexEntry(strings.name, "string", (10**7,), strings.file))
        assert err.value.code == "E-LIMIT-TENSOR"


# -- 3. numeric tensors: streamed -------------------------------------------------------------


@pytest.fixture(scope="module")
def zero_tensor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 MiB of float32 zeros in a ~10 KB archive (the 4 GiB case scaled down)."""
    return hostile.write_zero_tensor(tmp_path_factory.mktemp("zeros") / "zeros.carton", 256 * hostile.MiB)


@pytest.mark.parametrize("flags", [(), ("--no-verify-hashes",)])
def test_a_large_numeric_tensor_is_validated_in_bounded_memory(zero_tensor: Path, flags: tuple[str, ...]) -> None:
    assert zero_tensor.stat().st_size < 64 * 1024
    run = hostile.measure_cli("validate", "--json", *flags, str(zero_tensor))
    assert run.rc == 0, run.stdout[-2000:]
    assert json.loads(run.stdout)["ok"] is True
    assert run.peak_mib - hostile.baseline_mib() < 96, run.peak_mib  # was 2 x 256 MiB more; 4 GiB took 8 GiB
    assert run.seconds < 60, run.seconds


def test_a_large_numeric_tensor_loads_with_one_copy(zero_tensor: Path) -> None:
    run = hostile.measure(
        "import carton_format as cf\n"
        "a = cf.read(ARGS[0], verify_hashes=False)\n"
        "x = a.info.self_tests[0].inputs['x'].load()\n"
        "assert x.shape == (64 * 1024 * 1024,) and x.dtype == 'float32' and not x.flags.writeable and not x.any()\n",
        str(zero_tensor),
    )
    assert run.rc == 0, run.stderr[-2000:]
    extra = run.peak_mib - hostile.baseline_mib()
    assert 128 < extra < 256 + 96, extra  # the array, once (was twice: parts, then their join)


def test_a_numeric_tensor_of_the_wrong_size_is_reported_once(tmp_path: Path) -> None:
    index = b'[[tensor]]\nname = "t"\ndtype = "float32"\nshape = [3]\nfile = "t.bin"\ninner = []\n'
    toml = (hostile.MINIMAL_TOML + '[[self_test]]\n[self_test.inputs]\nx = "@tensor_data/t"\n').encode()
    path = _write(tmp_path, "short.carton", hostile.archive({"carton.toml": toml, "tensor_data/index.toml": index, "tensor_data/t.bin": b"\0" * 8}))
    for verify in (True, False):
        report = cf.validate(path, verify_hashes=verify)
        assert [f.code for f in report.errors] == ["E-TENSOR-SIZE"], report.findings
        assert "needs 12 bytes, the file has 8" in report.errors[0].message


def test_a_corrupt_tensor_is_reported_once(tmp_path: Path) -> None:
    from carton_format.manifest import format_manifest

    from ..helpers.cartoncraft import build

    index = b'[[tensor]]\nname = "t"\ndtype = "float32"\nshape = [1]\nfile = "t.bin"\ninner = []\n'
    toml = (hostile.MINIMAL_TOML + '[[self_test]]\n[self_test.inputs]\nx = "@tensor_data/t"\n').encode()
    members = {"carton.toml": toml, "model/model.pt": b"m", "tensor_data/index.toml": index, "tensor_data/t.bin": b"\0" * 4}
    listed = {**members, "tensor_data/t.bin": b"\1" * 4}  # MANIFEST holds the hash of other bytes
    manifest = format_manifest({k: hashlib.sha256(v).hexdigest() for k, v in listed.items()})
    path = _write(tmp_path, "c.carton", build(members, manifest=manifest))
    for verify in (True, False):
        report = cf.validate(path, verify_hashes=verify)
        assert [(f.code, f.member) for f in report.errors] == [("E-MANIFEST-MISMATCH", "tensor_data/t.bin")], report.findings


# -- 3. string tensors: bounded before parsing ------------------------------------------------


def test_ten_million_strings_are_refused_from_the_shape(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.carton", hostile.many_strings(10_000_000))
    assert path.stat().st_size < 16 * 1024
    run = hostile.measure_cli("validate", "--json", str(path))
    assert run.rc == 1
    [error] = json.loads(run.stdout)["files"][0]["errors"]
    assert error["code"] == "E-LIMIT-TENSOR" and "10000000 elements" in error["message"]
    assert run.seconds < 10 and run.peak_mib - hostile.baseline_mib() < 64, (run.seconds, run.peak_mib)  # was 120 s, 1.8 GiB


def test_a_file_with_more_strings_than_its_shape_is_refused_before_parsing(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.carton", hostile.surplus_strings(3, 10_000_000))
    run = hostile.measure_cli("validate", "--json", str(path))
    [error] = json.loads(run.stdout)["files"][0]["errors"]
    assert error["code"] == "E-LIMIT-TENSOR" and "more than 1000000 values" in error["message"]
    assert run.seconds < 10 and run.peak_mib - hostile.baseline_mib() < 160, (run.seconds, run.peak_mib)


def test_string_counts_are_still_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.carton", hostile.surplus_strings(3, 4))
    [error] = cf.validate(path).errors
    assert error.code == "E-TENSOR-STRING" and "needs 3 strings, the file has 4" in error.message


def test_the_string_element_limit_is_configurable(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.carton", hostile.many_strings(1000))
    assert cf.validate(path).ok
    [error] = cf.validate(path, limits=cf.Limits(max_string_tensor_elements=999)).errors
    assert error.code == "E-LIMIT-TENSOR" and error.member == "tensor_data/index.toml"


def test_a_wide_string_array_is_refused_before_numpy_allocates_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "w.carton", hostile.wide_strings(100_000, 100_000))  # 40 GB as <U100000
    report = cf.validate(path)  # validation builds no array
    assert report.ok, report.findings
    with cf.read(path) as archive:
        with pytest.raises(cf.CartonFormatError) as err:
            archive.info.self_tests[0].inputs["x"].load()
    assert err.value.code == "E-LIMIT-TENSOR" and "as an array" in err.value.message
    assert "40000000000 bytes" in err.value.message


def test_string_tensors_still_load(tmp_path: Path) -> None:
    with cf.read(write_sample(tmp_path)) as archive:
        [value] = [v for e in archive.info.examples or [] for k, v in e.inputs.items() if k == "s"]
        array = value.load()
    assert array.tolist() == ["a", "b"] and array.dtype == np.dtype("<U1")


def test_writers_refuse_string_tensors_readers_would_refuse(tmp_path: Path) -> None:
    from ..helpers.cartoncraft import sample_info

    many = np.broadcast_to(np.array([""]), (cf.DEFAULT_LIMITS.max_string_tensor_elements + 1,))
    with pytest.raises(cf.CartonFormatError) as err:
        write_sample(tmp_path, info=sample_info(self_tests=[cf.SelfTest(inputs={"x": many})]))
    assert err.value.code == "E-ARG-INVALID" and "readers accept at most" in err.value.message
