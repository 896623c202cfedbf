"""Section 11 (tensor_data): the index, numeric and string tensor files, nested tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import carton_format as cf

from ..helpers.spechelp import craft, expect_error, expect_ok, replace, sample

INDEX = "tensor_data/index.toml"
TENSOR_0 = '[[tensor]]\nname = "_tensor_0"\ndtype = "float32"\nshape = [\n    2,\n    3,\n]\nfile = "tensor_0.bin"\ninner = []\n'


def _index(text: str) -> dict[str, bytes]:
    return {**sample(), INDEX: text.encode()}


@pytest.mark.spec("FMT-TENSOR-1")
def test_index_without_tensor_or_inner_keys(tmp_path: Path) -> None:
    # no `tensor` key: no tensors (so nothing may refer to one)
    members = {k: v for k, v in sample().items() if not k.startswith("tensor_data/tensor_")}
    text = members["carton.toml"].decode()
    members["carton.toml"] = (text[: text.index("[[self_test]]")] + text[text.index("[runner]") :]).encode()
    expect_ok(tmp_path, craft({**members, INDEX: b""}))
    without_inner = sample()[INDEX].decode().replace("inner = []\n", "")
    expect_ok(tmp_path, craft(_index(without_inner)))
    with cf.read(tmp_path / "case.carton") as archive:
        np.testing.assert_array_equal(archive.info.self_tests[0].inputs["x"].load(), np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.spec("FMT-TENSOR-3")
@pytest.mark.parametrize(
    "old, new, key",
    [
        ('name = "_tensor_0"', "name = 0", "tensor[0].name"),
        ('dtype = "float32"', 'dtype = ["float32"]', "tensor[0].dtype"),
        ("shape = [\n    2,\n    3,\n]", 'shape = "2x3"', "tensor[0].shape"),
        ("shape = [\n    2,\n    3,\n]", "shape = [2, 3.0]", "tensor[0].shape[1]"),
        ('file = "tensor_0.bin"', "file = 0", "tensor[0].file"),
        ("inner = []", "inner = [1]", "tensor[0].inner[0]"),
    ],
)
def test_index_types(tmp_path: Path, old: str, new: str, key: str) -> None:
    expect_error(tmp_path, craft(replace(sample(), INDEX, old, new)), "E-SCHEMA", member=INDEX, key=key)


@pytest.mark.spec("FMT-TENSOR-6")
@pytest.mark.parametrize("old, new", [("shape = [\n    2,\n    3,\n]\n", ""), ("shape = [\n    2,\n    3,\n]", "shape = [2, -3]")])
def test_numeric_entry_needs_a_valid_shape(tmp_path: Path, old: str, new: str) -> None:
    expect_error(tmp_path, craft(replace(sample(), INDEX, old, new)), "E-TENSOR-SHAPE", member=INDEX)


@pytest.mark.spec("FMT-TENSOR-6", "FMT-TENSOR-10")
def test_scalars_and_empty_tensors(tmp_path: Path) -> None:
    members = replace(sample(), INDEX, "shape = [\n    2,\n    3,\n]", "shape = []")
    members["tensor_data/tensor_0.bin"] = np.float32(2.5).tobytes()
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        value = archive.info.self_tests[0].inputs["x"].load()
        assert value.shape == () and value == 2.5
    members = replace(sample(), INDEX, "shape = [\n    2,\n    3,\n]", "shape = [4, 0]")
    members["tensor_data/tensor_0.bin"] = b""
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.info.self_tests[0].inputs["x"].load().shape == (4, 0)


@pytest.mark.spec("FMT-TENSOR-7")
def test_numeric_entry_needs_a_file(tmp_path: Path) -> None:
    expect_error(tmp_path, craft(replace(sample(), INDEX, 'file = "tensor_0.bin"\n', "")), "E-TENSOR-FILE-MISSING", member=INDEX)


@pytest.mark.spec("FMT-TENSOR-10")
@pytest.mark.parametrize("extra", [1, 3, -1, 4])
def test_numeric_file_holds_exactly_count_times_itemsize(tmp_path: Path, extra: int) -> None:
    """A trailing partial element (the original silently drops it) or a missing one is an error."""
    members = sample()
    data = members["tensor_data/tensor_0.bin"]
    members["tensor_data/tensor_0.bin"] = data + b"\0" * extra if extra > 0 else data[:extra]
    expect_error(tmp_path, craft(members), "E-TENSOR-SIZE", member="tensor_data/tensor_0.bin")


@pytest.mark.spec("FMT-TENSOR-10")
def test_numeric_file_size_is_checked_before_reading(tmp_path: Path) -> None:
    members = {**sample(), "tensor_data/tensor_0.bin": b"\0" * 25}
    path = tmp_path / "t.carton"
    path.write_bytes(craft(members, member_overrides={"tensor_data/tensor_0.bin": {"crc32": 1}}))
    with cf.read(path, verify_hashes=False) as archive:
        with pytest.raises(cf.CartonFormatError) as err:
            archive.info.self_tests[0].inputs["x"].load()
    assert err.value.code == "E-TENSOR-SIZE"  # not E-ZIP-CRC: the data was never read


@pytest.mark.spec("FMT-TENSOR-10")
def test_numeric_files_are_little_endian_c_order(tmp_path: Path) -> None:
    members = replace(sample(), INDEX, 'dtype = "float32"', 'dtype = "uint16"')
    members["tensor_data/tensor_0.bin"] = bytes([1, 0, 2, 0, 3, 0, 0, 1, 0, 2, 0, 3])
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        value = archive.info.self_tests[0].inputs["x"].load()
    np.testing.assert_array_equal(value, np.array([[1, 2, 3], [256, 512, 768]], dtype=np.uint16))


@pytest.mark.spec("FMT-TENSOR-11")
@pytest.mark.parametrize("document", [b"data = ['a']\n", b"data = ['a', 'b', 'c']\n", b"strings = ['a', 'b']\n", b"data = 'ab'\n"])
def test_string_files(tmp_path: Path, document: bytes) -> None:
    expect_error(tmp_path, craft({**sample(), "tensor_data/tensor_2.toml": document}), "E-TENSOR-STRING", member="tensor_data/tensor_2.toml")


@pytest.mark.spec("FMT-TENSOR-11")
def test_string_files_are_c_order(tmp_path: Path) -> None:
    members = replace(sample(), INDEX, "shape = [\n    2,\n]", "shape = [2, 2]")
    members["tensor_data/tensor_2.toml"] = b"data = ['a', 'b', 'c', '\xc3\xa9']\n"
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.info.examples[0].inputs["s"].load().tolist() == [["a", "b"], ["c", "\u00e9"]]


def _nested(*entries: tuple[str, list[str]]) -> str:
    text = sample()[INDEX].decode()
    for name, inner in entries:
        text += f'\n[[tensor]]\nname = "{name}"\ndtype = "nested"\ninner = {inner!r}\n'.replace("'", '"')
    return text


@pytest.mark.spec("FMT-TENSOR-12", "FMT-TENSOR-13")
def test_nested_tensors_read_as_lists(tmp_path: Path) -> None:
    members = replace(_index(_nested(("n", ["_tensor_3", "_tensor_2"]))), "carton.toml", 'x = "@tensor_data/_tensor_3"', 'x = "@tensor_data/n"')
    members = replace(members, "carton.toml", 's = "@tensor_data/_tensor_2"', 's = "@tensor_data/_tensor_0"')
    expect_ok(tmp_path, craft(members))
    with cf.read(tmp_path / "case.carton") as archive:
        value = archive.info.examples[0].inputs["x"].load()
    assert isinstance(value, list) and [v.shape for v in value] == [(2, 3), (2,)]


@pytest.mark.spec("FMT-TENSOR-13")
@pytest.mark.parametrize(
    "entries",
    [
        [("n1", ["_tensor_3"]), ("n2", ["_tensor_3"])],  # inner to two nested tensors
        [("n1", ["_tensor_3", "_tensor_3"])],  # twice in one
    ],
)
def test_inner_tensors_belong_to_one_nested_tensor(tmp_path: Path, entries: list[tuple[str, list[str]]]) -> None:
    expect_error(tmp_path, craft(_index(_nested(*entries))), "E-TENSOR-NESTED", member=INDEX, only=False)
