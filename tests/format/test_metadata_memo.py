"""Reading an unchanged local archive again reuses its parsed zip directory and metadata
(``carton_format.file_memo``); a changed file, a file changed moments ago, validate() and other
limits never do."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import carton_format as cf
import carton_format.file_memo as memo
import carton_format.reader as reader
from carton_format._zip import source as zip_source
from tests.helpers.samples import write_kitchen_sink

SETTLE_S = 0.05


@pytest.fixture
def settle_fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A short settle time (the real one is 2 s), and empty memos."""
    monkeypatch.setattr(memo, "SETTLE_NS", int(SETTLE_S * 1e9))
    reader._PARSED.clear()
    zip_source._DIRECTORIES.clear()
    yield
    reader._PARSED.clear()
    zip_source._DIRECTORIES.clear()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The members parse_toml is called for (carton.toml, index.toml: a parse really happened)."""
    seen: list[str] = []
    real = reader.parse_toml

    def counting(data: bytes, member: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(member)
        return real(data, member, *args, **kwargs)

    monkeypatch.setattr(reader, "parse_toml", counting)
    return seen


def _settled(path: Path) -> Path:
    time.sleep(SETTLE_S * 2)
    return path


def _same(a: cf.CartonInfo, b: cf.CartonInfo) -> None:
    assert a.runner == b.runner and a.model_name == b.model_name and a.required_platforms == b.required_platforms
    assert [(s.name, s.dtype, s.shape) for s in a.inputs or []] == [(s.name, s.dtype, s.shape) for s in b.inputs or []]
    for x, y in zip(a.self_tests or [], b.self_tests or []):
        for name in x.inputs:
            np.testing.assert_array_equal(np.asarray(x.inputs[name].load()), np.asarray(y.inputs[name].load()))


@pytest.mark.spec("FMT-READ-1")
def test_a_second_read_of_an_unchanged_file_parses_nothing(tmp_path: Path, settle_fast: None, parses: list[str]) -> None:
    path = _settled(write_kitchen_sink(tmp_path))
    with cf.read(path) as first:
        first_info, first_warnings, sha = first.info, first.warnings, first.manifest_sha256
        assert parses  # parsed
        parses.clear()
        with cf.read(path, verify_hashes=False) as second:  # the same file, unchanged: nothing parsed, the same answers
            assert parses == [] and second.source.zip_reader.bytes_read == 0  # not even the end records read
            with second.open("carton.toml") as member:  # members are still read, and verified, from the file
                assert b"kitchen sink" in member.read()
            assert second.manifest_sha256 == sha and second.warnings == first_warnings
            _same(first_info, second.info)
            assert second.info.self_tests[0].inputs is not first_info.self_tests[0].inputs  # its own lazy values


def test_what_a_caller_changes_does_not_reach_the_next_read(tmp_path: Path, settle_fast: None) -> None:
    path = _settled(write_kitchen_sink(tmp_path))
    with cf.read(path) as first:
        first.info.runner.opts["num_threads"] = 99
        first.info.extra["planted"] = True
    with cf.read(path) as second:
        assert second.info.runner.opts["num_threads"] == 4 and "planted" not in second.info.extra


def test_a_changed_file_is_parsed_again(tmp_path: Path, settle_fast: None, parses: list[str]) -> None:
    path = _settled(write_kitchen_sink(tmp_path))
    cf.read(path).close()
    data = bytearray(path.read_bytes())
    at = data.index(b"kitchen sink")
    data[at : at + 7] = b"KITCHEN"  # same size, in place: carton.toml no longer matches its CRC or MANIFEST
    path.write_bytes(bytes(data))
    parses.clear()
    with pytest.raises(cf.CartonFormatError) as err:  # right after the write: not from the memo
        cf.read(path)
    assert err.value.code in ("E-ZIP-CRC", "E-MANIFEST-MISMATCH")
    time.sleep(SETTLE_S * 2)
    with pytest.raises(cf.CartonFormatError) as err:  # settled: still refused (its identity changed)
        cf.read(path)
    assert err.value.code in ("E-ZIP-CRC", "E-MANIFEST-MISMATCH")


def test_a_file_changed_moments_ago_is_not_remembered(tmp_path: Path, parses: list[str]) -> None:
    reader._PARSED.clear()
    path = write_kitchen_sink(tmp_path)  # the real settle time (2 s) has not passed
    cf.read(path).close()
    count = len(parses)
    cf.read(path).close()
    assert len(parses) == 2 * count


def test_validate_and_other_limits_parse_for_themselves(tmp_path: Path, settle_fast: None, parses: list[str]) -> None:
    path = _settled(write_kitchen_sink(tmp_path))
    cf.read(path).close()
    parses.clear()
    assert cf.validate(path).ok and parses  # validate parses (it collects every finding)
    parses.clear()
    tight = cf.Limits(max_toml_bytes=64)
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(path, limits=tight)
    assert err.value.code == "E-LIMIT-TOML-SIZE"  # not the memo of the default limits' read
