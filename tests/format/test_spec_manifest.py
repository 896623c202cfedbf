"""Section 6 (MANIFEST): the rules test_reader_errors.py does not already break one by one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import carton_format as cf
from carton_conformance.gen import zipcraft as zc

from ..helpers.cartoncraft import write_sample
from ..helpers.spechelp import SHA_A, craft, expect_error, expect_ok, manifest_of, sample

LINK_ATTR = {"external_attr": zc.unix_attr(zc.S_IFLNK | 0o777)}


@pytest.mark.spec("FMT-MANIFEST-5", "FMT-LINKS-1")
def test_manifest_never_lists_links(tmp_path: Path) -> None:
    links = b"version = 1\n\n[urls]\n"
    data = craft(sample(), manifest=manifest_of(sample(), LINKS=hashlib.sha256(links).hexdigest()), links=links)
    expect_error(tmp_path, data, "E-MANIFEST-SYNTAX", member="MANIFEST")


@pytest.mark.spec("FMT-MANIFEST-8")
def test_symlink_members_must_be_listed(tmp_path: Path) -> None:
    members = {**sample(), "model/alias": b"model.pt"}
    data = craft(members, manifest=manifest_of(sample()), member_overrides={"model/alias": LINK_ATTR})
    expect_error(tmp_path, data, "E-MANIFEST-UNLISTED", member="model/alias")


@pytest.mark.spec("FMT-MANIFEST-10")
def test_a_symlink_is_listed_with_its_final_targets_hash(tmp_path: Path) -> None:
    members = {**sample(), "model/a": b"b", "model/b": b"model.pt"}
    target = hashlib.sha256(sample()["model/model.pt"]).hexdigest()
    good = manifest_of(sample(), **{"model/a": target, "model/b": target})
    expect_ok(tmp_path, craft(members, manifest=good, member_overrides={"model/a": LINK_ATTR, "model/b": LINK_ATTR}))
    link_text = manifest_of(sample(), **{"model/a": hashlib.sha256(b"b").hexdigest(), "model/b": target})
    data = craft(members, manifest=link_text, member_overrides={"model/a": LINK_ATTR, "model/b": LINK_ATTR})
    expect_error(tmp_path, data, "E-MANIFEST-MISMATCH", member="model/a")


@pytest.mark.spec("FMT-MANIFEST-9")
def test_a_listed_file_may_live_behind_links(tmp_path: Path) -> None:
    sha = hashlib.sha256(b"weights").hexdigest()
    links = f'version = 1\n\n[urls]\n{sha} = ["https://example.com/w"]\n'.encode()
    listed = manifest_of(sample(), **{"model/weights.bin": sha})
    expect_ok(tmp_path, craft(sample(), manifest=listed, links=links), ["W-HASHES-NOT-VERIFIED"])
    other = f'version = 1\n\n[urls]\n{SHA_A} = ["https://example.com/w"]\n'.encode()  # LINKS, but not for this hash
    report = expect_error(tmp_path, craft(sample(), manifest=listed, links=other), "E-MANIFEST-MISSING-FILE", member="model/weights.bin",
                          only=False)
    assert sorted(e.code for e in report.errors) == ["E-LINKS-INVALID", "E-MANIFEST-MISSING-FILE"]  # the unused LINKS key too


@pytest.mark.spec("FMT-MANIFEST-10", "FMT-READ-2")
def test_every_file_read_to_its_end_is_verified(tmp_path: Path) -> None:
    members = {**sample(), "misc/arch.png": b"tampered"}
    path = tmp_path / "t.carton"
    path.write_bytes(craft(members, manifest=sample()["MANIFEST"]))
    with cf.read(path, verify_hashes=False) as archive:
        with pytest.raises(cf.CartonFormatError) as err:
            archive.info.misc_files["arch.png"].read()
        assert (err.value.code, err.value.member) == ("E-MANIFEST-MISMATCH", "misc/arch.png")
        stream = archive.open("misc/arch.png")
        assert stream.read(3) == b"tam"  # partial reads cannot be verified yet
        with pytest.raises(cf.CartonFormatError):
            stream.read()


@pytest.mark.spec("FMT-MANIFEST-11", "FMT-LINKS-1")
def test_manifest_hash_is_the_sha256_of_the_manifest_bytes(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    members = sample()
    expected = hashlib.sha256(members["MANIFEST"]).hexdigest()
    with cf.read(path) as archive:
        assert archive.manifest_sha256 == expected
    assert cf.validate(path).manifest_sha256 == expected
    # LINKS does not take part in it
    links = f'version = 1\n\n[urls]\n{hashlib.sha256(members["model/model.pt"]).hexdigest()} = ["https://example.com/m"]\n'
    with_links = tmp_path / "l.carton"
    with_links.write_bytes(craft(members, manifest=members["MANIFEST"], links=links.encode()))
    with cf.read(with_links) as archive:
        assert archive.manifest_sha256 == expected


@pytest.mark.spec("FMT-MANIFEST-2")
def test_paths_may_contain_equals_signs_and_spaces(tmp_path: Path) -> None:
    members = {**sample(), "misc/a=b c.txt": b"x"}
    manifest = manifest_of(members)
    assert b"misc/a=b c.txt=" in manifest
    expect_ok(tmp_path, craft(members, manifest=manifest))
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.info.misc_files["a=b c.txt"].read() == b"x"
