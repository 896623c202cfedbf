"""Section 4 (member paths) at the archive level: unsafe paths wherever a path appears,
non-portable names, the top-level layout and an empty model/."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import carton_format as cf

from ..helpers.spechelp import craft, expect_error, expect_nonconforming, expect_ok, manifest_of, replace, sample


@pytest.mark.spec("FMT-PATH-1", "FMT-PATH-2")
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("model/../carton.toml", marks=pytest.mark.spec("FMT-PATH-1")),
        pytest.param("model/./model.pt", marks=pytest.mark.spec("FMT-PATH-1")),
        pytest.param("model//model.pt", marks=pytest.mark.spec("FMT-PATH-1")),
        pytest.param("/model/model.pt", marks=pytest.mark.spec("FMT-PATH-1")),
        pytest.param("model\\model.pt", marks=pytest.mark.spec("FMT-PATH-2")),
        pytest.param("model/model\x01.pt", marks=pytest.mark.spec("FMT-PATH-2")),
        pytest.param("model/model\x7f.pt", marks=pytest.mark.spec("FMT-PATH-2")),
        pytest.param("c:model.pt", marks=pytest.mark.spec("FMT-PATH-2")),
    ],
)
@pytest.mark.parametrize("where", ["member", "manifest"])
def test_unsafe_paths(tmp_path: Path, path: str, where: str) -> None:
    """As a member name (refused when the zip is opened) and as a MANIFEST path."""
    if where == "member":
        members = {**sample(), path: b"x"}
        data = craft(members, manifest=manifest_of(sample()))
    else:
        data = craft(sample(), manifest=manifest_of(sample(), **{path: "0" * 64}))
    expect_error(tmp_path, data, "E-PATH-UNSAFE")


@pytest.mark.spec("FMT-PATH-3")
@pytest.mark.parametrize("name", ["model/AUX.bin", "model/com\u00b2", "model/x.", "model/y ", "misc/a:b", "model/q?", "model/<>"])
def test_non_portable_paths_are_valid_with_a_warning(tmp_path: Path, name: str) -> None:
    members = {**sample(), name: b"content"}
    report = expect_ok(tmp_path, craft(members), ["W-PATH-NONPORTABLE"])
    assert report.warnings[0].member == name
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.read_bytes(name) == b"content"


@pytest.mark.spec("FMT-PATH-4")
def test_other_top_level_members_are_ignored_but_must_be_listed(tmp_path: Path) -> None:
    members = {**sample(), "README.md": b"# hello", "extra/notes.txt": b"notes"}
    expect_ok(tmp_path, craft(members))
    expect_error(tmp_path, craft(members, manifest=manifest_of(sample())), "E-MANIFEST-UNLISTED", only=False)


@pytest.mark.spec("FMT-PATH-4")
def test_names_are_case_sensitive(tmp_path: Path) -> None:
    members = sample()
    members["Carton.toml"] = members.pop("carton.toml")
    expect_error(tmp_path, craft(members), "E-STRUCTURE-MISSING", member="carton.toml")


@pytest.mark.spec("FMT-PATH-5")
def test_nothing_under_model_is_invalid_but_read_leniently(tmp_path: Path) -> None:
    members = {k: v for k, v in sample().items() if not k.startswith("model/")}
    expect_nonconforming(tmp_path, craft(members), "E-STRUCTURE-MISSING", "W-MODEL-EMPTY", member="model/")


@pytest.mark.spec("FMT-PATH-5")
def test_a_linked_model_file_counts(tmp_path: Path) -> None:
    members = {k: v for k, v in sample().items() if not k.startswith("model/")}
    sha = hashlib.sha256(b"weights").hexdigest()
    links = f'version = 1\n\n[urls]\n{sha} = ["https://example.com/w"]\n'.encode()
    expect_ok(tmp_path, craft(members, manifest=manifest_of(members, **{"model/model.pt": sha}), links=links), ["W-HASHES-NOT-VERIFIED"])


@pytest.mark.spec("FMT-PATH-5")
def test_writer_refuses_an_archive_without_a_model_file(tmp_path: Path) -> None:
    info = cf.CartonInfo(runner=cf.RunnerInfo("noop", "*", 0))
    (tmp_path / "empty").mkdir()
    for model_dir in (None, tmp_path / "empty"):
        with pytest.raises(cf.CartonFormatError) as err:
            cf.write(tmp_path / "m.carton", info, model_dir=model_dir)
        assert err.value.code == "E-ARG-INVALID" and "FMT-PATH-5" in err.value.message
    assert not (tmp_path / "m.carton").exists()


@pytest.mark.spec("FMT-PATH-1", "FMT-PATH-2", "FMT-TENSOR-8")
@pytest.mark.parametrize("file", ["../tensor_0.bin", "a//b.bin", "./tensor_0.bin", "x\\y.bin", "\x00.bin", "t/"])
def test_unsafe_tensor_file_paths(tmp_path: Path, file: str) -> None:
    members = replace(sample(), "tensor_data/index.toml", 'file = "tensor_0.bin"', f"file = {json.dumps(file)}")
    expect_error(tmp_path, craft(members), "E-PATH-UNSAFE", member="tensor_data/index.toml")
