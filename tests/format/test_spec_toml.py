"""Section 7 (TOML documents): syntax in every document, TOML types against schema types, and
the constructs writers may use."""

from __future__ import annotations

from pathlib import Path

import pytest

import carton_format as cf

from ..helpers.cartoncraft import sample_info, write_info
from ..helpers.spechelp import craft, expect_error, expect_ok, replace, sample

INDEX = "tensor_data/index.toml"


@pytest.mark.spec("FMT-TOML-1", "FMT-TOML-2")
@pytest.mark.parametrize(
    "member, data",
    [
        pytest.param(INDEX, b"[[tensor]\n", id="index-syntax"),
        pytest.param(INDEX, b'[[tensor]]\nname = "a"\nname = "b"\n', id="index-duplicate-key"),
        pytest.param(INDEX, b"\xef\xbb\xbf[[tensor]]\n", id="index-bom"),
        pytest.param(INDEX, b'# \xc3\x28\n', id="index-not-utf8"),
        pytest.param("LINKS", b"\xef\xbb\xbfversion = 1\n[urls]\n", id="links-bom"),
        pytest.param("tensor_data/tensor_2.toml", b"\xef\xbb\xbfdata = ['a', 'b']\n", id="string-tensor-bom"),
    ],
)
def test_every_toml_document_is_utf8_toml_without_bom(tmp_path: Path, member: str, data: bytes) -> None:
    members = {**sample(), member: data} if member != "LINKS" else sample()
    data_archive = craft(members, links=data) if member == "LINKS" else craft(members)
    expect_error(tmp_path, data_archive, "E-TOML-SYNTAX", member=member)


@pytest.mark.spec("FMT-TOML-5")
@pytest.mark.parametrize(
    "old, new, key",
    [
        ("spec_version = 1", "spec_version = 1.0", "spec_version"),
        ("spec_version = 1", "spec_version = true", "spec_version"),
        ("runner_compat_version = 1", "runner_compat_version = 1.0", "runner.runner_compat_version"),
        ('model_name = "doubler"', "model_name = 1979-05-27T07:32:00Z", "model_name"),
        ('model_name = "doubler"', "model_name = 07:32:00", "model_name"),
        ('"batch",', "2.0,", "input[0].shape[0]"),
        ('"batch",', "false,", "input[0].shape[0]"),
        ("num_threads = 1", "num_threads = 1979-05-27", "runner.opts.num_threads"),
    ],
)
def test_toml_types_are_schema_types(tmp_path: Path, old: str, new: str, key: str) -> None:
    expect_error(tmp_path, craft(replace(sample(), "carton.toml", old, new)), "E-SCHEMA", member="carton.toml", key=key)


@pytest.mark.spec("FMT-TOML-5", "FMT-RUNNER-6")
def test_a_number_is_an_integer_or_a_float(tmp_path: Path) -> None:
    members = replace(sample(), "carton.toml", "num_threads = 1", "num_threads = 1\nratio = 0.5\nbig = -9223372036854775808\nnan = nan")
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        opts = archive.info.runner.opts
    assert type(opts["num_threads"]) is int and type(opts["ratio"]) is float and opts["big"] == -(2**63)


@pytest.mark.spec("FMT-TOML-4")
def test_unknown_keys_are_ignored_at_every_level(tmp_path: Path) -> None:
    members = replace(sample(), "carton.toml", 'name = "x"\n', 'name = "x"\nunit = "cm"\n')
    members = replace(members, "carton.toml", "runner_compat_version = 1\n", "runner_compat_version = 1\nfuture = [1, 2]\n")
    members = replace(members, INDEX, "inner = []\n", "inner = []\nchecksum = 'x'\n")
    links = b"version = 1\nfuture = 1\n\n[urls]\n"
    expect_ok(tmp_path, craft(members, links=links))  # only top-level carton.toml keys MAY warn


@pytest.mark.spec("FMT-TOML-3")
@pytest.mark.parametrize(
    "info, key",
    [
        (sample_info(runner=cf.RunnerInfo("torchscript", "*", 2**63)), "runner.runner_compat_version"),
        (sample_info(inputs=[cf.TensorSpec("x", "float32", [1, 2**63])]), "input[0].shape[1]"),
    ],
)
def test_writer_refuses_integers_the_original_cannot_parse(tmp_path: Path, info: cf.CartonInfo, key: str) -> None:
    """Readers accept u64 values (FMT-META-10, FMT-RUNNER-4), but TOML 1.0 and toml-rs 0.5 stop at i64."""
    with pytest.raises(cf.CartonFormatError) as err:
        write_info(tmp_path / "x.carton", info)
    assert (err.value.code, err.value.key) == ("E-ARG-INVALID", key)


@pytest.mark.spec("FMT-TOML-3", "FMT-META-10", "FMT-RUNNER-4")
def test_i64_max_is_written_and_u64_values_are_read(tmp_path: Path) -> None:
    info = sample_info(runner=cf.RunnerInfo("torchscript", "*", 2**63 - 1), inputs=[cf.TensorSpec("x", "float32", [2**63 - 1])])
    path = write_info(tmp_path / "x.carton", info).path
    with cf.read(path) as archive:
        assert archive.info.runner.runner_compat_version == 2**63 - 1
    members = replace(sample(), "carton.toml", "runner_compat_version = 1", f"runner_compat_version = {2**64 - 1}")
    members = replace(members, "carton.toml", '"batch",', f"{2**64 - 1},")
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.info.runner.runner_compat_version == 2**64 - 1
        assert archive.info.inputs[0].shape == [2**64 - 1, 3]


@pytest.mark.spec("FMT-TOML-3")
def test_writer_refuses_dates(tmp_path: Path) -> None:
    import datetime

    with pytest.raises(cf.CartonFormatError) as err:
        write_info(tmp_path / "x.carton", sample_info(model_name=datetime.date(2024, 1, 1)))  # type: ignore[arg-type]
    assert (err.value.code, err.value.key) == ("E-ARG-INVALID", "model_name")
