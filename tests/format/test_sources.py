"""Archive sources: the zip and directory sources behind one interface, and a third-party one."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import carton_format as cf
from carton_format.describe import describe_info
from tests.helpers.cartoncraft import build, members_of, write_sample


def unpack(archive: Path, into: Path) -> Path:
    for name, data in members_of(archive).items():
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        (into / name).write_bytes(data)
    return into


class MemorySource:
    """A complete ArchiveSource over a dict of member bytes: what a new source has to provide."""

    def __init__(self, members: dict[str, bytes]):
        self.location = "memory"
        self._data = members
        self._members = [cf.MemberInfo(name, len(data), len(data), "stored") for name, data in members.items()]
        self.closed = False

    def members(self) -> list[cf.MemberInfo]:
        return self._members

    def member(self, name: str) -> cf.MemberInfo | None:
        return next((m for m in self._members if m.name == name), None)

    def open(self, name: str):
        return io.BytesIO(self._data[name])

    def resolve_symlink(self, name: str) -> str:
        return name

    def link_text(self, name: str) -> str:
        raise cf.CartonFormatError("E-ARG-INVALID", "no symlinks here", member=name)

    def stored_span(self, name: str) -> None:
        return None

    def container_warnings(self) -> list[cf.Finding]:
        return []

    def check_container(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write_sample(tmp_path, model_files={"model.pt": b"weights" * 1000, "sub/extra.bin": b"\x00\x01"})


def test_both_sources_implement_the_protocol(sample: Path, tmp_path: Path) -> None:
    directory = unpack(sample, tmp_path / "unpacked")
    with cf.open_source(sample) as zip_source, cf.open_source(directory) as dir_source:
        assert isinstance(zip_source, cf.ZipSource) and isinstance(dir_source, cf.DirectorySource)
        for source in (zip_source, dir_source):
            assert isinstance(source, cf.ArchiveSource)
            assert {m.name for m in source.members()} == set(members_of(sample))
            assert source.member("model/model.pt").size == 7000
            with source.open("model/model.pt") as stream:
                assert stream.read() == b"weights" * 1000
    assert isinstance(MemorySource({}), cf.ArchiveSource)


def test_an_unpacked_directory_reads_and_validates_like_its_archive(sample: Path, tmp_path: Path) -> None:
    directory = unpack(sample, tmp_path / "unpacked")
    with cf.read(sample) as from_zip, cf.read(directory) as from_dir:
        assert from_dir.manifest_sha256 == from_zip.manifest_sha256
        assert describe_info(from_dir.info, with_values=True) == describe_info(from_zip.info, with_values=True)
        assert isinstance(from_dir.source, cf.DirectorySource)
    report = cf.validate(directory)
    assert report.ok, report.findings
    (directory / "model" / "model.pt").write_bytes(b"tampered" * 1000)
    report = cf.validate(directory)
    assert [(f.code, f.member) for f in report.errors] == [("E-MANIFEST-MISMATCH", "model/model.pt")]
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(directory)
    assert err.value.code == "E-MANIFEST-MISMATCH"


def test_a_directory_with_an_unsafe_or_special_entry_is_refused(tmp_path: Path, sample: Path) -> None:
    directory = unpack(sample, tmp_path / "unpacked")
    os.mkfifo(directory / "model" / "pipe")
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(directory)
    assert err.value.code == "E-ZIP-NOT-REGULAR"


def test_stored_span_points_at_the_member_bytes(tmp_path: Path, sample: Path) -> None:
    with cf.open_source(sample) as source:
        span = source.stored_span("model/model.pt")
        assert span is not None and span.path == sample and not span.whole_file
        with open(sample, "rb") as fh:
            fh.seek(span.offset)
            assert fh.read(span.length) == b"weights" * 1000
    compressed = write_sample(tmp_path, "z.carton", compression="zstd")
    with cf.open_source(compressed) as source:
        assert source.stored_span("model/model.pt") is None
    with open(sample, "rb") as fh, cf.ZipSource(fh) as source:  # no local path: no span
        assert source.stored_span("model/model.pt") is None
    directory = unpack(sample, tmp_path / "unpacked")
    with cf.open_source(directory) as source:
        span = source.stored_span("model/model.pt")
        assert span == cf.StoredSpan(directory / "model" / "model.pt", 0, 7000, whole_file=True)


def test_a_third_party_source_gets_every_check(sample: Path) -> None:
    members = members_of(sample)
    source = MemorySource(members)
    with cf.read(source) as archive:
        assert archive.info.model_name == "doubler"
        assert archive.manifest == cf.read(sample).manifest
    assert source.closed  # the archive owns the source it was given
    members["model/model.pt"] = b"changed"
    report = cf.validate(MemorySource(members))
    assert report.source == "memory"
    assert [(f.code, f.member) for f in report.errors] == [("E-MANIFEST-MISMATCH", "model/model.pt")]


def test_shrink_is_atomic_and_never_overwrites(tmp_path: Path, sample: Path) -> None:
    sha = cf.read(sample).manifest["model/model.pt"]
    target = tmp_path / "shrunk.carton"
    result = cf.shrink(sample, target, {sha: ["https://example.com/model.pt"]})
    with cf.read(target, verify_hashes=False) as archive:
        assert archive.manifest_sha256 == result.manifest_sha256 == cf.read(sample).manifest_sha256
        assert archive.linked_urls("model/model.pt") == ["https://example.com/model.pt"]
        assert archive.source.member("model/model.pt") is None
    before = target.read_bytes()
    with pytest.raises(cf.CartonFormatError) as err:
        cf.shrink(sample, target, {})
    assert err.value.code == "E-OUTPUT-EXISTS" and target.read_bytes() == before
    members = members_of(sample)
    manifest = members["MANIFEST"]
    members["model/sub/extra.bin"] = b"\x00\x02"
    tampered = tmp_path / "tampered.carton"
    tampered.write_bytes(build(members, manifest=manifest))
    with pytest.raises(cf.CartonFormatError) as err:
        cf.shrink(tampered, target, {sha: ["https://example.com/model.pt"]}, overwrite=True)
    assert err.value.code == "E-MANIFEST-MISMATCH"
    assert target.read_bytes() == before  # the failed copy replaced nothing
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_shrink_of_a_directory_writes_a_zip(tmp_path: Path, sample: Path) -> None:
    directory = unpack(sample, tmp_path / "unpacked")
    sha = cf.read(sample).manifest["model/model.pt"]
    out = cf.shrink(directory, tmp_path / "from-dir.carton", {sha: ["https://example.com/m"]}).path
    report = cf.validate(out)
    assert report.ok and report.manifest_sha256 == cf.read(sample).manifest_sha256
