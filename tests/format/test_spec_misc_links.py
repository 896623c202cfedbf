"""Sections 12 and 13 (misc files and LINKS), format side.  Fetching over the network
(FMT-LINKS-8 to FMT-LINKS-11) belongs to the runtime."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import tomli

import carton_format as cf

from ..helpers.cartoncraft import members_of, sample_info, write_info, write_sample
from ..helpers.spechelp import SHA_A, craft, expect_error, expect_nonconforming, expect_ok, manifest_of, sample


def _links(*pairs: tuple[str, list[str]], version: str = "version = 1\n") -> bytes:
    lines = "".join(f"{sha} = [{', '.join(repr(u).replace(chr(39), chr(34)) for u in urls)}]\n" for sha, urls in pairs)
    return f"{version}\n[urls]\n{lines}".encode()


# -- misc -----------------------------------------------------------------------------------------


@pytest.mark.spec("FMT-MISC-1")
def test_misc_files_are_every_listed_misc_path(tmp_path: Path) -> None:
    sha = hashlib.sha256(b"remote").hexdigest()
    members = {**sample(), "misc/docs/readme.md": b"# docs"}
    data = craft(members, manifest=manifest_of(members, **{"misc/remote.bin": sha}), links=_links((sha, ["https://e.com/r"])))
    expect_ok(tmp_path, data, ["W-HASHES-NOT-VERIFIED"])
    with cf.read(tmp_path / "case.carton", fetch_linked=lambda p, s, u: io.BytesIO(b"remote")) as archive:
        misc = archive.info.misc_files
        assert sorted(misc) == ["_example_misc_file_0", "arch.png", "docs/readme.md", "remote.bin"]
        assert misc["remote.bin"].read() == b"remote" and misc["docs/readme.md"].read() == b"# docs"


@pytest.mark.spec("FMT-MISC-2")
@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a\x00b", "_example_misc_file_0", "tab\tname"])
def test_writer_refuses_bad_misc_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(cf.CartonFormatError) as err:
        write_info(tmp_path / "x.carton", sample_info(misc_files={name: b"x"}))  # sample_info's example makes file 0
    assert err.value.code == "E-ARG-INVALID"


@pytest.mark.spec("FMT-MISC-2")
def test_misc_files_are_stored_under_misc(tmp_path: Path) -> None:
    source = tmp_path / "from_disk.png"
    source.write_bytes(b"disk")
    path = write_info(tmp_path / "m.carton", sample_info(misc_files={"b y.txt": b"bytes", "d.png": source, "_example_misc_file_7": b"ok"})).path
    members = members_of(path)
    assert (members["misc/b y.txt"], members["misc/d.png"], members["misc/_example_misc_file_7"]) == (b"bytes", b"disk", b"ok")


# -- LINKS ----------------------------------------------------------------------------------------


@pytest.mark.spec("FMT-LINKS-1")
def test_links_is_optional_and_top_level(tmp_path: Path) -> None:
    expect_ok(tmp_path, craft(sample()))
    # a member named like LINKS elsewhere is an ordinary member, listed in MANIFEST
    members = {**sample(), "misc/LINKS": b"version = 1\n"}
    expect_ok(tmp_path, craft(members))
    expect_error(tmp_path, craft(members, manifest=manifest_of(sample())), "E-MANIFEST-UNLISTED", member="misc/LINKS")


@pytest.mark.spec("FMT-LINKS-2")
@pytest.mark.parametrize("links", [b"version = 1\n", b"version = 1\nurls = 3\n", b"version = 1\n[urls]\n" + SHA_A.encode() + b" = []\n"])
def test_links_schema(tmp_path: Path, links: bytes) -> None:
    expect_error(tmp_path, craft(sample(), links=links), "E-LINKS-INVALID", member="LINKS")


@pytest.mark.spec("FMT-LINKS-3")
@pytest.mark.parametrize("key", [SHA_A.upper(), SHA_A[:-1], "sha256-" + SHA_A, SHA_A + "0"])
def test_links_keys_are_sha256_hex(tmp_path: Path, key: str) -> None:
    links = f'version = 1\n[urls]\n"{key}" = ["https://e.com/x"]\n'.encode()
    expect_error(tmp_path, craft(sample(), links=links), "E-LINKS-INVALID", member="LINKS")


@pytest.mark.spec("FMT-LINKS-4")
@pytest.mark.parametrize("version", ["", "version = 0\n", "version = 2\n"])
def test_links_version_other_than_1_is_invalid_but_read_leniently(tmp_path: Path, version: str) -> None:
    expect_nonconforming(tmp_path, craft(sample(), links=_links(version=version)), "E-LINKS-INVALID", "W-LINKS-VERSION",
                         member="LINKS", key="version")


@pytest.mark.spec("FMT-LINKS-5")
@pytest.mark.parametrize(
    "url", ["ftp://e.com/x", "file:///etc/passwd", "https:///x", "//e.com/x", "https://e.com/a b", "https://e.com/\x7f", "e.com/x", "https://e.com:99999/x"]
)
def test_links_urls_are_absolute_http(tmp_path: Path, url: str) -> None:
    sha = hashlib.sha256(sample()["model/model.pt"]).hexdigest()
    links = b"version = 1\n[urls]\n" + sha.encode() + b' = ["https://ok.example/x", "' + url.encode("unicode_escape") + b'"]\n'
    expect_error(tmp_path, craft(sample(), links=links), "E-LINKS-URL", member="LINKS", key=f"urls.{sha}[1]")


@pytest.mark.spec("FMT-LINKS-5")
@pytest.mark.parametrize("url", ["ftp://e.com/x", "https://e.com/a b", "relative/x"])
def test_writer_refuses_bad_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(cf.CartonFormatError) as err:
        write_sample(tmp_path, linked_files={hashlib.sha256(b"not really torchscript").hexdigest(): [url]})
    assert err.value.code == "E-ARG-INVALID"


@pytest.mark.spec("FMT-LINKS-6")
def test_unused_links_keys_are_invalid_but_read_leniently(tmp_path: Path) -> None:
    expect_nonconforming(tmp_path, craft(sample(), links=_links((SHA_A, ["https://e.com/a"]))), "E-LINKS-INVALID", "W-LINKS-UNUSED",
                         member="LINKS", key=f"urls.{SHA_A}")


@pytest.mark.spec("FMT-LINKS-6", "FMT-LINKS-7")
def test_writer_links_only_files_it_leaves_out(tmp_path: Path) -> None:
    """A hash that names no model file (here one of a misc file, and one of nothing) is not
    written to LINKS, and that misc file stays in the zip."""
    model = b"not really torchscript"
    model_sha, misc_sha = hashlib.sha256(model).hexdigest(), hashlib.sha256(b"png bytes").hexdigest()
    urls = {model_sha: ["https://e.com/m"], misc_sha: ["https://e.com/p"], SHA_A: ["https://e.com/a"]}
    path = write_sample(tmp_path, linked_files=urls)
    members = members_of(path)
    assert "model/model.pt" not in members and members["misc/arch.png"] == b"png bytes"
    assert tomli.loads(members["LINKS"].decode()) == {"version": 1, "urls": {model_sha: ["https://e.com/m"]}}
    report = cf.validate(path)
    assert report.ok and [w.code for w in report.warnings] == ["W-HASHES-NOT-VERIFIED"]
    other = write_sample(tmp_path, "none.carton", linked_files={SHA_A: ["https://e.com/a"]})
    assert "LINKS" not in members_of(other)  # nothing left out: no LINKS at all


@pytest.mark.spec("FMT-LINKS-7", "FMT-ZIP-21")
def test_a_symlink_to_a_left_out_file_is_left_out_too(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"W" * 100)
    (model / "alias.bin").symlink_to("weights.bin")
    sha = hashlib.sha256(b"W" * 100).hexdigest()
    result = cf.write(tmp_path / "s.carton", sample_info(), model_dir=model, linked_files={sha: ["https://e.com/w"]})
    members = members_of(result.path)
    assert "model/weights.bin" not in members and "model/alias.bin" not in members
    assert result.manifest["model/alias.bin"] == result.manifest["model/weights.bin"] == sha
    assert cf.validate(result.path).ok
    with cf.read(result.path, fetch_linked=lambda p, s, u: io.BytesIO(b"W" * 100)) as archive:
        assert archive.read_bytes("model/alias.bin") == b"W" * 100


@pytest.mark.spec("FMT-LINKS-12")
def test_metadata_reads_never_fetch(tmp_path: Path) -> None:
    weights = b"weights" * 100
    sha = hashlib.sha256(weights).hexdigest()
    path = write_sample(tmp_path, model_files={"model.pt": weights}, linked_files={sha: ["https://e.com/w"]})

    def no_fetch(*args: object) -> io.BytesIO:
        raise AssertionError("fetched during a metadata read")

    with cf.read(path, fetch_linked=no_fetch) as archive:
        assert archive.info.model_name == "doubler" and archive.linked_urls("model/model.pt") == ["https://e.com/w"]
    with cf.read(path) as archive:
        with pytest.raises(cf.CartonFormatError) as err:
            archive.read_bytes("model/model.pt")
    assert (err.value.code, err.value.member) == ("E-LINKS-NOT-FETCHED", "model/model.pt")
