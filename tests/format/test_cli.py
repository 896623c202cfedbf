"""The `carton` command line: exit codes 0/1/2, one line per finding, --json, --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from carton_format.cli import main

from ..helpers.cartoncraft import build, members_of, write_sample


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory, good: Path) -> Path:
    members = members_of(good)
    members["model/extra"] = b"unlisted"
    manifest = members.pop("MANIFEST")
    path = tmp_path_factory.mktemp("cli") / "bad.carton"
    path.write_bytes(build(members, manifest=manifest))
    return path


def test_validate_ok(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"{good}: OK manifest ")


@pytest.mark.spec("FMT-MANIFEST-8")
def test_validate_invalid_lines(good: Path, bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(good), str(bad)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{bad}: E-MANIFEST-UNLISTED model/extra: is in the archive but not in MANIFEST" in lines


def test_validate_json(good: Path, bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", str(good), str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [f["ok"] for f in report["files"]] == [True, False]
    assert report["files"][1]["errors"][0]["code"] == "E-MANIFEST-UNLISTED"
    assert report["files"][1]["errors"][0]["category"] == "manifest"


@pytest.mark.spec("FMT-ZIP-1")
def test_validate_not_a_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.carton"
    junk.write_bytes(b"hello")
    assert main(["validate", str(junk)]) == 1
    assert "E-ZIP-NOT-ZIP" in capsys.readouterr().out


@pytest.mark.spec("FMT-READ-4")
def test_no_verify_hashes_skips_deep_check(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    members = members_of(good)
    members["model/model.pt"] = b"tampered but same manifest"
    path = tmp_path / "t.carton"
    path.write_bytes(build(members, manifest=members.pop("MANIFEST")))
    assert main(["validate", str(path)]) == 1
    assert main(["validate", "--no-verify-hashes", str(path)]) == 0
    assert "W-HASHES-NOT-VERIFIED" in capsys.readouterr().out


def test_info(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(good)]) == 0
    out = capsys.readouterr().out
    assert "doubler" in out and "torchscript =2.13 (compat 1)" in out
    assert main(["info", "--json", str(good)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["inputs"][0] == {"name": "x", "dtype": "float32", "shape": ["batch", 3]}
    assert info["self_tests"][0]["inputs"]["x"] == {"dtype": "float32", "shape": [2, 3]}


def test_ls(good: Path, bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(good)]) == 0
    out = capsys.readouterr().out
    assert "model/model.pt" in out and " ok " in out
    assert main(["ls", "--json", str(good)]) == 0
    rows = json.loads(capsys.readouterr().out)["members"]
    assert {r["hash_status"] for r in rows} == {"ok"}
    assert main(["ls", str(bad)]) == 1


def test_usage_errors_exit_2() -> None:
    for argv in ([], ["validate"], ["nonsense"], ["info", "--bogus", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


@pytest.mark.parametrize("command", [[], ["validate"], ["info"], ["ls"]])
def test_help(command: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "carton_format.cli", *command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: carton" in proc.stdout


def test_deep_validation_shows_progress_when_asked(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bar appears on demand (the CLI asks for it only when stderr is a terminal and the
    archive is large); without it nothing is written to stderr."""
    from carton_format import validate

    assert validate(good, progress=True).ok
    assert "verifying" in capsys.readouterr().err
    assert validate(good, progress=False).ok
    assert capsys.readouterr().err == ""
