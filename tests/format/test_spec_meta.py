"""Sections 8 and 9 (carton.toml and the runner table): the rules that test_reader_errors.py and
test_schemas.py do not already break one by one, and how values map to Python and back."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import tomli

import carton_format as cf

from ..helpers.cartoncraft import members_of, sample_info, write_info
from ..helpers.spechelp import craft, expect_error, expect_nonconforming, expect_ok, manifest_of, replace, sample


def _toml_of(path: Path) -> dict:
    return tomli.loads(members_of(path)["carton.toml"].decode())


@pytest.mark.spec("FMT-META-1", "FMT-LINKS-12")
def test_carton_toml_behind_links(tmp_path: Path) -> None:
    """Listed and provided by LINKS: readable with a fetcher, E-LINKS-NOT-FETCHED without."""
    members = sample()
    toml = members.pop("carton.toml")
    sha = hashlib.sha256(toml).hexdigest()
    links = f'version = 1\n\n[urls]\n{sha} = ["https://example.com/carton.toml"]\n'.encode()
    path = tmp_path / "l.carton"
    path.write_bytes(craft(members, manifest=manifest_of(members, **{"carton.toml": sha}), links=links))
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(path)
    assert (err.value.code, err.value.member) == ("E-LINKS-NOT-FETCHED", "carton.toml")
    with cf.read(path, fetch_linked=lambda p, s, u: io.BytesIO(toml)) as archive:
        assert archive.info.model_name == "doubler"


@pytest.mark.spec("FMT-META-5")
def test_short_description_over_100_characters_is_invalid_but_read_leniently(tmp_path: Path) -> None:
    long = replace(sample(), "carton.toml", "Doubles its input", "d" * 101)
    expect_nonconforming(tmp_path, craft(long), "E-SCHEMA", "W-SHORT-DESCRIPTION", key="short_description")
    expect_ok(tmp_path, craft(replace(sample(), "carton.toml", "Doubles its input", "\u00e9" * 100)))  # 200 bytes, 100 characters


@pytest.mark.spec("FMT-META-5")
def test_writer_refuses_short_description_over_100_characters(tmp_path: Path) -> None:
    write_info(tmp_path / "ok.carton", sample_info(short_description="\u00e9" * 100))
    with pytest.raises(cf.CartonFormatError) as err:
        write_info(tmp_path / "x.carton", sample_info(short_description="\u00e9" * 101))
    assert (err.value.code, err.value.key) == ("E-ARG-INVALID", "short_description")


@pytest.mark.spec("FMT-META-6")
def test_required_platforms(tmp_path: Path) -> None:
    expect_ok(tmp_path, craft(replace(sample(), "carton.toml", "spec_version = 1\n", "spec_version = 1\nrequired_platforms = []\n")))
    bad = replace(sample(), "carton.toml", "spec_version = 1\n", 'spec_version = 1\nrequired_platforms = ["x86_64-unknown-linux-gnu", "z80-none"]\n')
    expect_error(tmp_path, craft(bad), "E-SCHEMA", key="required_platforms[1]")


@pytest.mark.spec("FMT-META-9", "FMT-META-10", "FMT-META-11")
def test_shapes_in_toml_and_python(tmp_path: Path) -> None:
    specs = [
        cf.TensorSpec("any", "float32", None),
        cf.TensorSpec("symbol", "int8", "image"),
        cf.TensorSpec("empty symbol", "int8", ""),
        cf.TensorSpec("scalar", "uint64", []),
        cf.TensorSpec("fixed", "float64", [2, 3]),
        cf.TensorSpec("mixed", "string", ["batch", None, 3, 0]),
        cf.TensorSpec("star symbol", "int16", ["*"]),
    ]
    path = write_info(tmp_path / "s.carton", sample_info(inputs=specs)).path
    toml_shapes = [spec["shape"] for spec in _toml_of(path)["input"]]
    assert toml_shapes == ["*", "image", "", [], [2, 3], ["batch", "*", 3, 0], ["*"]]
    with cf.read(path) as archive:
        assert [s.shape for s in archive.info.inputs] == [None, "image", "", [], [2, 3], ["batch", None, 3, 0], [None]]
    # a symbol spelled "*" reads back as "any"
    path = write_info(tmp_path / "star.carton", sample_info(inputs=[cf.TensorSpec("x", "int8", "*"), cf.TensorSpec("y", "int8", [None, "*"])])).path
    with cf.read(path) as archive:
        assert [s.shape for s in archive.info.inputs] == [None, [None, None]]


@pytest.mark.spec("FMT-META-12")
def test_names_and_shapes_are_documentation(tmp_path: Path) -> None:
    """No inputs declared, repeated output names, self-test and example keys that match nothing."""
    text = sample()["carton.toml"].decode()
    text = text[: text.index("[[input]]")] + text[text.index("[[output]]") :]  # no inputs at all
    text = text.replace('name = "y"', 'name = "y"\ndescription = "first"', 1)
    text = text.replace("[[self_test]]", '[[output]]\nname = "y"\ndtype = "int8"\nshape = "*"\n\n[[self_test]]', 1)
    text = text.replace('x = "@tensor_data/_tensor_0"', 'not_an_input = "@tensor_data/_tensor_0"', 1)
    expect_ok(tmp_path, craft({**sample(), "carton.toml": text.encode()}))
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.info.inputs is None and [o.name for o in archive.info.outputs] == ["y", "y"]
        assert list(archive.info.self_tests[0].inputs) == ["not_an_input"]


@pytest.mark.spec("FMT-META-13", "FMT-META-14")
@pytest.mark.parametrize(
    "old, new, key",
    [
        ('[self_test.inputs]\nx = "@tensor_data/_tensor_0"\n', "", "self_test[0].inputs"),
        ('y = "@tensor_data/_tensor_1"', 'y = "tensor_data/_tensor_1"', "self_test[0].expected_out.y"),
        ('[example.sample_out]\ny = "@misc/_example_misc_file_0"\n', "", "example[0].sample_out"),
        ('y = "@misc/_example_misc_file_0"', 'y = "@Misc/_example_misc_file_0"', "example[0].sample_out.y"),
        ('name = "t"', "name = 7", "self_test[0].name"),
    ],
)
def test_self_tests_and_examples(tmp_path: Path, old: str, new: str, key: str) -> None:
    expect_error(tmp_path, craft(replace(sample(), "carton.toml", old, new)), "E-SCHEMA", key=key)


@pytest.mark.spec("FMT-META-14")
def test_empty_example_tables(tmp_path: Path) -> None:
    text = sample()["carton.toml"].decode()
    start, end = text.index("[[example]]"), text.index("[runner]")
    members = {**sample(), "carton.toml": (text[:start] + "[[example]]\ninputs = {}\nsample_out = {}\n\n" + text[end:]).encode()}
    expect_ok(tmp_path, craft(members))


@pytest.mark.spec("FMT-META-15")
def test_references_resolve(tmp_path: Path) -> None:
    # @misc/ to a linked misc file resolves (the file is listed; LINKS provides it)
    members = replace(sample(), "carton.toml", 'y = "@misc/_example_misc_file_0"', 'y = "@misc/remote.png"')
    sha = hashlib.sha256(b"remote").hexdigest()
    links = f'version = 1\n\n[urls]\n{sha} = ["https://example.com/remote.png"]\n'.encode()
    expect_ok(tmp_path, craft(members, manifest=manifest_of(members, **{"misc/remote.png": sha}), links=links), ["W-HASHES-NOT-VERIFIED"])
    # exact names: no case folding, no path normalisation
    for ref in ("@tensor_data/_TENSOR_0", "@tensor_data/./_tensor_0", "@misc/ARCH.png"):
        bad = replace(sample(), "carton.toml", '"@tensor_data/_tensor_0"', f'"{ref}"') if "tensor" in ref else replace(
            sample(), "carton.toml", '"@misc/_example_misc_file_0"', f'"{ref}"'
        )
        expect_error(tmp_path, craft(bad), "E-REF-DANGLING")


@pytest.mark.spec("FMT-RUNNER-1", "FMT-RUNNER-2", "FMT-RUNNER-4")
@pytest.mark.parametrize(
    "old, new, key",
    [
        pytest.param("[runner]\n", "[other]\n", "runner", marks=pytest.mark.spec("FMT-RUNNER-1")),
        pytest.param('runner_name = "torchscript"', "runner_name = 1", "runner.runner_name", marks=pytest.mark.spec("FMT-RUNNER-2")),
        pytest.param('required_framework_version = "=2.13"\n', "", "runner.required_framework_version", marks=pytest.mark.spec("FMT-RUNNER-2")),
        pytest.param("runner_compat_version = 1", "runner_compat_version = -1", "runner.runner_compat_version",
                     marks=pytest.mark.spec("FMT-RUNNER-4")),
        pytest.param("runner_compat_version = 1", f"runner_compat_version = {2**64}", "runner.runner_compat_version",
                     marks=pytest.mark.spec("FMT-RUNNER-4")),
    ],
)
def test_runner_table(tmp_path: Path, old: str, new: str, key: str) -> None:
    members = replace(sample(), "carton.toml", old, new)
    if old == "[runner]\n":  # the sub-table header must follow
        members = replace(members, "carton.toml", "[runner.opts]", "[other.opts]")
    expect_error(tmp_path, craft(members), "E-SCHEMA", key=key)


@pytest.mark.spec("FMT-RUNNER-3", "FMT-VREQ-8")
def test_readers_expose_the_normalised_requirement(tmp_path: Path) -> None:
    members = replace(sample(), "carton.toml", 'required_framework_version = "=2.13"', 'required_framework_version = " >= 2.0.0 , <3 "')
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.info.runner.required_framework_version == ">=2.0.0, <3"
    bad = replace(sample(), "carton.toml", 'required_framework_version = "=2.13"', 'required_framework_version = "2.0 || 3.0"')
    expect_error(tmp_path, craft(bad), "E-VERSIONREQ-INVALID", key="runner.required_framework_version")


@pytest.mark.spec("FMT-RUNNER-6")
def test_runner_option_types(tmp_path: Path) -> None:
    opts = {"i": 4, "f": 4.0, "s": "four", "b": True, "off": False, "min": -(2**63)}
    path = write_info(tmp_path / "o.carton", sample_info(runner=cf.RunnerInfo("torchscript", "*", 1, opts))).path
    text = members_of(path)["carton.toml"].decode()
    assert "b = true\n" in text and "off = false\n" in text and "f = 4.0\n" in text
    with cf.read(path) as archive:
        read = archive.info.runner.opts
    assert read == opts and [type(read[k]) for k in opts] == [int, float, str, bool, bool, int]
    for bad in ({"a": [1]}, {"t": {"x": 1}}, {"big": 2**63}, {"d": np.datetime64("2020-01-01")}):
        with pytest.raises(cf.CartonFormatError) as err:
            write_info(tmp_path / "x.carton", sample_info(runner=cf.RunnerInfo("torchscript", "*", 1, bad)))
        assert err.value.code == "E-ARG-INVALID"


@pytest.mark.spec("FMT-RUNNER-5")
def test_writers_always_write_runner_compat_version(tmp_path: Path) -> None:
    path = write_info(tmp_path / "c.carton", sample_info(runner=cf.RunnerInfo("noop", "*", 0))).path
    assert _toml_of(path)["runner"]["runner_compat_version"] == 0
