"""Section 5 (resource limits): readers accept everything within the defaults and refuse, before
reading, what exceeds a limit; writers never produce an archive beyond the defaults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
from carton_conformance.gen import zipcraft as zc
from carton_format import writer as writer_module
from carton_format.limits import DEFAULT_LIMITS, Limits

from ..helpers.cartoncraft import sample_info, write_info
from ..helpers.spechelp import craft, expect_error, expect_ok, manifest_of, sample


@pytest.mark.spec("FMT-LIMIT-1", "FMT-LIMIT-4")
def test_paths_at_the_default_limits_are_accepted(tmp_path: Path) -> None:
    longest = "model/" + "/".join(["d" * 200] * 4) + "/" + "f" * (1024 - 6 - 4 * 201)
    deepest = "model/" + "/".join(["d"] * 62) + "/f"
    assert len(longest.encode()) == DEFAULT_LIMITS.max_path_bytes
    assert deepest.count("/") + 1 == DEFAULT_LIMITS.max_path_depth
    members = {**sample(), longest: b"long", deepest: b"deep"}
    expect_ok(tmp_path, craft(members))
    expect_error(tmp_path, craft({**sample(), longest + "x": b""}), "E-LIMIT-PATH-LENGTH")
    expect_error(tmp_path, craft({**sample(), deepest + "/g": b""}), "E-LIMIT-PATH-LENGTH")


@pytest.mark.spec("FMT-LIMIT-4", "FMT-MANIFEST-4")
def test_manifest_paths_obey_the_length_limits(tmp_path: Path) -> None:
    data = craft(sample(), manifest=manifest_of(sample(), **{"model/" + "x" * 1019: "0" * 64}))
    expect_error(tmp_path, data, "E-LIMIT-PATH-LENGTH", member="MANIFEST")


@pytest.mark.spec("FMT-LIMIT-1")
@pytest.mark.parametrize(
    "limits, code",
    [
        pytest.param(Limits(max_entries=5), "E-LIMIT-ENTRY-COUNT", marks=pytest.mark.spec("FMT-LIMIT-2")),
        pytest.param(Limits(max_central_directory_bytes=300), "E-LIMIT-CD-SIZE", marks=pytest.mark.spec("FMT-LIMIT-3")),
        pytest.param(Limits(max_path_bytes=20), "E-LIMIT-PATH-LENGTH", marks=pytest.mark.spec("FMT-LIMIT-4")),
        pytest.param(Limits(max_member_bytes=500), "E-LIMIT-MEMBER-SIZE", marks=pytest.mark.spec("FMT-LIMIT-5")),
        pytest.param(Limits(max_total_bytes=1000), "E-LIMIT-TOTAL-SIZE", marks=pytest.mark.spec("FMT-LIMIT-6")),
        pytest.param(Limits(max_toml_bytes=500), "E-LIMIT-TOML-SIZE", marks=pytest.mark.spec("FMT-LIMIT-8")),
        pytest.param(Limits(max_toml_nesting=1), "E-LIMIT-TOML-NESTING", marks=pytest.mark.spec("FMT-LIMIT-9")),
        pytest.param(Limits(max_numeric_tensor_bytes=23), "E-LIMIT-TENSOR", marks=pytest.mark.spec("FMT-LIMIT-10")),
    ],
)
def test_readers_may_be_configured_with_other_limits(tmp_path: Path, limits: Limits, code: str) -> None:
    expect_ok(tmp_path, craft(sample()))
    expect_error(tmp_path, craft(sample()), code, limits=limits)


@pytest.mark.spec("FMT-LIMIT-5")
def test_manifest_size_limit(tmp_path: Path) -> None:
    expect_error(tmp_path, craft(sample()), "E-LIMIT-MEMBER-SIZE", member="MANIFEST", limits=Limits(max_manifest_bytes=100))


@pytest.mark.spec("FMT-LIMIT-7")
def test_compression_ratio_is_checked_before_decompressing(tmp_path: Path) -> None:
    bomb = bytes(2 << 20)
    members = {**sample(), "model/zeros.bin": bomb}
    data = craft(members, member_overrides={"model/zeros.bin": {"method": zc.DEFLATE, "crc32": 0}})  # wrong CRC: never reached
    expect_error(tmp_path, data, "E-LIMIT-RATIO", member="model/zeros.bin", limits=Limits(ratio_floor_bytes=1 << 20, max_compression_ratio=100))


@pytest.mark.spec("FMT-LIMIT-8")
@pytest.mark.parametrize("member", ["tensor_data/index.toml", "LINKS"])
def test_toml_size_is_checked_on_the_declared_size_before_reading(tmp_path: Path, member: str) -> None:
    """The member's data is corrupt (wrong CRC): only a check of the declared size gives the code."""
    members = sample()
    links = None
    if member == "LINKS":
        links = b"version = 1\n\n[urls]\n" + b"# padding\n" * 100
    else:
        members[member] += b"# padding\n" * 100
    limit = max(len(v) for k, v in members.items() if k == "carton.toml") + 10
    data = craft(members, links=links, member_overrides={member: {"crc32": 1}})
    expect_error(tmp_path, data, "E-LIMIT-TOML-SIZE", member=member, limits=Limits(max_toml_bytes=limit))


@pytest.mark.spec("FMT-LIMIT-10")
def test_string_tensor_limits(tmp_path: Path) -> None:
    # the element count (from the shape) and the file's size, both before the file is parsed
    expect_error(tmp_path, craft(sample()), "E-LIMIT-TENSOR", limits=Limits(max_string_tensor_bytes=1))
    expect_error(tmp_path, craft(sample()), "E-LIMIT-TENSOR", member="tensor_data/tensor_2.toml", limits=Limits(max_string_tensor_bytes=10))


# -- writers ------------------------------------------------------------------------------------


def _write_error(tmp_path: Path, info: cf.CartonInfo, **kwargs: object) -> cf.CartonFormatError:
    with pytest.raises(cf.CartonFormatError) as err:
        write_info(tmp_path / "x.carton", info, **kwargs)
    assert not (tmp_path / "x.carton").exists()
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    return err.value


@pytest.mark.spec("FMT-LIMIT-1", "FMT-LIMIT-4")
def test_writer_refuses_paths_beyond_the_limits(tmp_path: Path) -> None:
    assert _write_error(tmp_path, sample_info(misc_files={"m" * 1020: b""})).code == "E-ARG-INVALID"
    deep = tmp_path / "deep"
    leaf = deep.joinpath(*["d"] * 64)
    leaf.mkdir(parents=True)
    (leaf / "f").write_bytes(b"x")  # model/ + 64 directories + f: 66 components
    assert _write_error(tmp_path, sample_info(), model_dir=deep).code == "E-MODEL-DIR"


@pytest.mark.spec("FMT-LIMIT-1", "FMT-LIMIT-10")
def test_writer_refuses_tensors_beyond_the_limits(tmp_path: Path) -> None:
    # broadcast views: logically huge, no memory behind them
    numeric = np.broadcast_to(np.zeros(1, np.float32), (DEFAULT_LIMITS.max_numeric_tensor_bytes // 4 + 1,))
    strings = np.broadcast_to(np.array(["s"]), (DEFAULT_LIMITS.max_string_tensor_bytes + 1,))
    for value in (numeric, strings):
        err = _write_error(tmp_path, sample_info(self_tests=[cf.SelfTest(inputs={"x": value})]))
        assert err.code == "E-ARG-INVALID" and "readers accept" in err.message


@pytest.mark.spec("FMT-LIMIT-1", "FMT-LIMIT-8")
def test_writer_refuses_a_carton_toml_beyond_the_limit(tmp_path: Path) -> None:
    info = sample_info(model_description="x" * DEFAULT_LIMITS.max_toml_bytes)
    assert _write_error(tmp_path, info).code == "E-ARG-INVALID"


@pytest.mark.spec("FMT-LIMIT-1", "FMT-LIMIT-5")
def test_writer_refuses_a_manifest_beyond_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "DEFAULT_LIMITS", Limits(max_manifest_bytes=200))
    err = _write_error(tmp_path, sample_info())
    assert err.code == "E-ARG-INVALID" and "MANIFEST" in err.message
