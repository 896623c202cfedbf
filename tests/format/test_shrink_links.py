"""``shrink()`` leaves out of the zip every file whose hash LINKS lists, whatever its path, as the
original's shrink does (FMT-LINKS-7): misc files, tensor files, even carton.toml.  Left-out files
are read back through LINKS from a real loopback HTTP server, with the format layer's
``fetch_linked`` hook (the reader verifies what it fetches against MANIFEST)."""

from __future__ import annotations

import hashlib
import http.server
import logging
import threading
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli

import carton_format as cf
from carton_format.describe import describe_info

from ..helpers.cartoncraft import members_of, sample_info, write_sample
from ..helpers.original import original_describe
from ..helpers.spechelp import SHA_A

MISC = b"png bytes"
MISC_SHA = hashlib.sha256(MISC).hexdigest()


class Files:
    """A loopback server of ``files`` (path -> bytes), logging the paths asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.asked: list[str] = []
        files = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(head=False)

            def do_HEAD(self) -> None:  # the original asks for the length first
                self._answer(head=True)

            def _answer(self, head: bool) -> None:
                if not head:
                    files.asked.append(self.path)
                body = files.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                if not head:
                    self.wfile.write(body or b"")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def files() -> Any:
    server = Files()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def fetch(path: str, sha256: str, urls: list[str]) -> Any:
    """The simplest fetch_linked hook: the first URL's body (the reader verifies it)."""
    return urllib.request.urlopen(urls[0], timeout=10)


def shrunk(tmp_path: Path, urls: dict[str, list[str]], name: str = "shrunk.carton", **sample: Any) -> tuple[Path, Path]:
    source = write_sample(tmp_path, **sample)
    return source, cf.shrink(source, tmp_path / name, urls).path


@pytest.mark.spec("FMT-LINKS-7", "FMT-LINKS-8", "FMT-MISC-1")
def test_a_linked_misc_file_is_left_out_and_read_through_links(tmp_path: Path, files: Files) -> None:
    url = files.add("/misc/arch.png", MISC)
    source, path = shrunk(tmp_path, {MISC_SHA: [url]})
    members = members_of(path)
    assert "misc/arch.png" not in members and "model/model.pt" in members
    assert members["MANIFEST"] == members_of(source)["MANIFEST"]
    assert tomli.loads(members["LINKS"].decode()) == {"version": 1, "urls": {MISC_SHA: [url]}}
    report = cf.validate(path)
    assert report.ok, report.findings
    assert [w.code for w in report.warnings] == ["W-HASHES-NOT-VERIFIED"]
    with cf.read(path, fetch_linked=fetch) as archive:
        assert files.asked == []  # metadata reads do not fetch a misc file
        assert archive.info.misc_files["arch.png"].read() == MISC
    assert files.asked == ["/misc/arch.png"]
    files.files["/misc/arch.png"] = b"tampered"
    with cf.read(path, fetch_linked=fetch) as archive, pytest.raises(cf.CartonFormatError) as err:
        archive.info.misc_files["arch.png"].read()
    assert (err.value.code, err.value.member) == ("E-MANIFEST-MISMATCH", "misc/arch.png")


@pytest.mark.spec("FMT-LINKS-7", "FMT-LINKS-8", "FMT-LINKS-12")
def test_a_linked_tensor_file_is_left_out_and_loaded_through_links(tmp_path: Path, files: Files) -> None:
    source = write_sample(tmp_path)
    with cf.read(source) as archive:
        tensor_file = archive.tensor_index.entries[next(iter(archive.tensor_index.entries))].member
        assert tensor_file is not None
        data = archive.read_bytes(tensor_file)
        sha = archive.manifest[tensor_file]
        expected = archive.info.self_tests[0].inputs["x"].load()
    url = files.add("/tensor", data)
    path = cf.shrink(source, tmp_path / "shrunk.carton", {sha: [url]}).path
    assert tensor_file not in members_of(path)
    report = cf.validate(path)
    assert report.ok, report.findings
    with cf.read(path) as archive, pytest.raises(cf.CartonFormatError) as err:
        archive.info.self_tests[0].inputs["x"].load()
    assert err.value.code == "E-LINKS-NOT-FETCHED"
    with cf.read(path, fetch_linked=fetch) as archive:
        np.testing.assert_array_equal(archive.info.self_tests[0].inputs["x"].load(), expected)
    assert files.asked == ["/tensor"]


@pytest.mark.spec("FMT-LINKS-6", "FMT-LINKS-7")
def test_a_hash_naming_no_file_is_not_written_to_links(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="carton_format.shrink"):
        source, path = shrunk(tmp_path, {SHA_A: ["https://e.com/a"], MISC_SHA: ["https://e.com/m"]})
    assert tomli.loads(members_of(path)["LINKS"].decode()) == {"version": 1, "urls": {MISC_SHA: ["https://e.com/m"]}}
    assert any(SHA_A in r.getMessage() for r in caplog.records)
    assert cf.validate(path).ok  # no unused LINKS key (E-LINKS-INVALID)
    only = cf.shrink(source, tmp_path / "nothing.carton", {SHA_A: ["https://e.com/a"]}).path
    assert set(members_of(only)) == set(members_of(source))  # nothing left out: every member kept, no LINKS
    assert "LINKS" not in members_of(only)


@pytest.mark.spec("FMT-LINKS-7", "FMT-LINKS-12", "FMT-META-1")
def test_leaving_out_carton_toml_warns_and_metadata_reads_fetch_it(tmp_path: Path, files: Files, caplog: pytest.LogCaptureFixture) -> None:
    source = write_sample(tmp_path)
    with cf.read(source) as archive:
        toml_bytes, toml_sha = archive.read_bytes("carton.toml"), archive.manifest["carton.toml"]
        info = archive.info
    url = files.add("/carton.toml", toml_bytes)
    with caplog.at_level(logging.WARNING, logger="carton_format.shrink"):
        path = cf.shrink(source, tmp_path / "shrunk.carton", {toml_sha: [url]}).path
    assert any("carton.toml" in r.getMessage() and "fetch" in r.getMessage() for r in caplog.records)
    assert files.asked == []  # shrink checked the copy without the network
    assert "carton.toml" not in members_of(path)
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(path)
    assert (err.value.code, err.value.member) == ("E-LINKS-NOT-FETCHED", "carton.toml")
    with cf.read(path, fetch_linked=fetch) as archive:
        assert archive.info.model_name == info.model_name and archive.info.runner == info.runner
    assert files.asked == ["/carton.toml"]
    assert [(e.code, e.member) for e in cf.validate(path).errors] == [("E-LINKS-NOT-FETCHED", "carton.toml")]
    report = cf.validate(path, fetch_linked=fetch)  # validation fetches the metadata document it must check
    assert report.ok, report.findings


@pytest.mark.spec("FMT-LINKS-7", "FMT-ZIP-21")
def test_a_symlink_to_a_left_out_file_is_left_out_too(tmp_path: Path, files: Files) -> None:
    model = tmp_path / "m"
    model.mkdir()
    weights = b"W" * 100
    (model / "weights.bin").write_bytes(weights)
    (model / "alias.bin").symlink_to("weights.bin")
    source = cf.write(tmp_path / "s.carton", sample_info(), model_dir=model).path
    url = files.add("/w", weights)
    path = cf.shrink(source, tmp_path / "shrunk.carton", {hashlib.sha256(weights).hexdigest(): [url]}).path
    members = members_of(path)
    assert "model/weights.bin" not in members and "model/alias.bin" not in members
    assert cf.validate(path).ok
    with cf.read(path, fetch_linked=fetch) as archive:
        assert archive.read_bytes("model/alias.bin") == weights


@pytest.mark.interop
def test_a_shrunk_misc_file_reads_identically_in_the_original(tmp_path: Path, files: Files) -> None:
    """The original fetches the linked misc file through LINKS and describes the archive as we do."""
    url = files.add("/misc/arch.png", MISC)
    source, path = shrunk(tmp_path, {MISC_SHA: [url]})
    [theirs] = original_describe(path)
    assert "error" not in theirs, theirs
    with cf.read(path, fetch_linked=fetch) as archive:
        ours = describe_info(archive.info, with_values=True)
    with cf.read(source) as archive:
        assert ours == describe_info(archive.info, with_values=True)
    assert theirs == ours
    assert "/misc/arch.png" in files.asked
