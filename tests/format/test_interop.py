"""Interoperability with the original implementation (cartonml-nightly).

* Archives the original wrote (tests/data/original_written, tests/data/original) read here with
  exactly the metadata and tensor values the original reads from them (runs everywhere).
* Archives we write read identically in the original, and survive its `shrink` (needs the
  original in its own venv: `make original`; `make test` requires it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import carton_format as cf
from carton_format.describe import describe_info
from tests.helpers.cartoncraft import write_info

from ..helpers.original import original_describe, original_shrink
from ..helpers.samples import write_kitchen_sink

DATA = Path(__file__).resolve().parents[1] / "data"
WRITTEN = DATA / "original_written"
FIXTURES = sorted(p.stem for p in WRITTEN.glob("*.carton"))


def ours(path: Path) -> dict:
    with cf.read(path) as archive:
        return describe_info(archive.info, with_values=True)


def test_fixtures_exist() -> None:
    assert {"kitchen_sink_shrunk", "kitchen_sink_linked", "minimal_shrunk"} <= set(FIXTURES)


@pytest.mark.parametrize("name", FIXTURES)
def test_original_written_archives_read_identically(name: str) -> None:
    expected = json.loads((WRITTEN / f"{name}.json").read_text())
    assert ours(WRITTEN / f"{name}.carton") == expected
    report = cf.validate(WRITTEN / f"{name}.carton")
    if name == "minimal_shrunk":  # the original writes archives without a model file; they do not conform (FMT-PATH-5)
        assert [(e.code, e.member) for e in report.errors] == [("E-STRUCTURE-MISSING", "model/")]
    else:
        assert report.ok, report.findings


@pytest.mark.spec("FMT-MANIFEST-11", "FMT-MISC-1", "FMT-META-11")
def test_original_golden_archive() -> None:
    """The original's own test.carton (python runner, July 2023 writer, zstd, DOS time 0)."""
    path = DATA / "original" / "test.carton"
    report = cf.validate(path)
    assert report.ok, report.findings
    assert report.manifest_sha256 == "f1cae5143a92a44e3a7e1d9c32a0245065dfb6e0f1e91c18b5e44356d081dfb5"
    with cf.read(path) as archive:
        info = archive.info
        assert info.model_name == "Test Model"
        assert info.runner.runner_name == "python"
        assert info.runner.required_framework_version == "=3.11"
        assert [s.shape for s in info.inputs] == [None, "some_symbol", [None], ["some_symbol"], [], ["batch_size", 3, 512, 512], [None, None, None]]
        strings = info.self_tests[0].inputs["b"].load()
        assert strings[0] == "Hello 💖 😂😍🎉👍 Unicode"
        assert sorted(info.misc_files) == ["_example_misc_file_0", "model_architecture.png"]


@pytest.mark.interop
@pytest.mark.parametrize("compression", ["stored", "zstd", "deflate"])
@pytest.mark.spec("FMT-TOML-3")
def test_our_archives_read_identically_in_the_original(tmp_path: Path, compression: str) -> None:
    path = write_kitchen_sink(tmp_path, compression=compression)
    [theirs] = original_describe(path)
    assert "error" not in theirs, theirs
    assert theirs == ours(path)


@pytest.mark.interop
def test_sample_variants_read_in_the_original(tmp_path: Path) -> None:
    """Minimal and edge-case infos (no optional fields, empty tables, scalars) in one probe run."""
    import numpy as np

    variants = [
        cf.CartonInfo(runner=cf.RunnerInfo("torchscript", "=2.13", 1)),
        cf.CartonInfo(runner=cf.RunnerInfo("noop", "*", 0, {}), inputs=[], outputs=[], required_platforms=[]),
        cf.CartonInfo(
            runner=cf.RunnerInfo("torchscript", "2.0", 1),
            self_tests=[cf.SelfTest(inputs={"": np.array(1.5, dtype=np.float64), "ключ": np.zeros((0,), np.uint8)})],
            examples=[cf.Example(inputs={}, sample_out={})],
        ),
    ]
    paths = []
    for i, info in enumerate(variants):
        paths.append(write_info(tmp_path / f"v{i}.carton", info).path)
    for path, theirs in zip(paths, original_describe(*paths)):
        assert "error" not in theirs, (path, theirs)
        assert theirs == ours(path), path


@pytest.mark.interop
@pytest.mark.spec("FMT-MANIFEST-11")
def test_original_shrink_of_our_archive_reads_here(tmp_path: Path) -> None:
    source = write_kitchen_sink(tmp_path)
    shrunk = original_shrink(source, tmp_path / "shrunk.carton")
    report = cf.validate(shrunk)
    assert report.ok, report.findings
    with cf.read(source) as a, cf.read(shrunk) as b:
        assert a.manifest_sha256 == b.manifest_sha256  # shrink keeps MANIFEST bytes
        assert {m.method for m in b.members() if m.in_zip} == {"zstd"}
    assert ours(shrunk) == ours(source)


@pytest.mark.interop
def test_committed_fixtures_match_a_fresh_regeneration(tmp_path: Path) -> None:
    """The fixture script still produces archives the original describes as committed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", WRITTEN / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.make(tmp_path)
    for name, description in module.describe_all(made).items():
        assert description == json.loads((WRITTEN / f"{name}.json").read_text()), name
        assert ours(made[name]) == description
