"""The format layer's commands take URLs too: ``carton info|ls|validate URL`` read a remote
archive through the runtime's ``carton.sources`` entry point (range requests, the cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import carton_format as cf
from carton_format.cli import main as carton_main

from .conftest import Server


def test_info_ls_and_validate_take_an_http_url(server: Server, packed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.add_file("cli/doubler.carton", packed)
    assert carton_main(["info", url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_name"] == "doubler" and info["manifest_sha256"] == cf.read(packed).manifest_sha256
    assert all(r.range for r in server.requests_for("cli/doubler.carton"))  # metadata over range requests only
    assert carton_main(["ls", url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["path"] for m in listed["members"]} >= {"carton.toml", "model/model.pt"}
    assert all(m["hash_status"] == "ok" for m in listed["members"] if m["size"] is not None)
    assert carton_main(["validate", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["files"][0]["file"] == url


def test_python_api_takes_urls(server: Server, packed: Path) -> None:
    url = server.add_file("api/doubler.carton", packed)
    with cf.read(url) as archive:  # deep: every member hashed, read over range requests
        assert archive.info.model_name == "doubler" and isinstance(archive.source, cf.ZipSource)
    assert cf.validate(url).ok
    assert cf.read(Path(packed).as_uri()).info.model_name == "doubler"  # file:// needs no plug-in


def test_a_tampered_remote_archive_is_invalid(server: Server, packed: Path) -> None:
    data = bytearray(packed.read_bytes())
    data[data.index(b"A string")] ^= 1  # inside the model file
    url = server.add("cli/tampered.carton", bytes(data))
    report = cf.validate(url)
    assert not report.ok and {e.code for e in report.errors} & {"E-ZIP-CRC", "E-MANIFEST-MISMATCH"}


def test_network_errors_and_unknown_schemes_are_coded(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert carton_main(["validate", server.url("cli/missing.carton"), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["files"][0]["errors"][0]
    assert error["code"] == "E-RUNTIME-HTTP" and error["category"] == "io" and "404" in error["message"]
    report = cf.validate("gopher://example.com/m.carton")
    assert [e.code for e in report.errors] == ["E-ARG-INVALID"] and "gopher://" in report.errors[0].message
