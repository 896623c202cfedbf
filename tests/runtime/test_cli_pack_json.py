"""The runtime's command line: ``carton pack --json`` (result and errors), the framework version
``pack`` records for a python model (the API's), usage errors (exit 2) for bad time limits and
NAME=VALUE options, and a reader closing stdout early (``carton info --json F | head -3``): no
traceback, exit 1, for every command (the entry point handles it once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime.sync as cs
from carton_format.cli import main as carton_main

ROOT = Path(__file__).resolve().parents[2]
MAJOR_MINOR = f"={sys.version_info.major}.{sys.version_info.minor}"
ENTRYPOINT = ["--opt", "entrypoint_package=main", "--opt", "entrypoint_fn=get_model"]
#: What the ``carton`` console script runs (its entry point), in a process of its own.
CARTON = [sys.executable, "-c", "import sys; from carton_format.cli import main; sys.exit(main())"]


def code_dir(tmp_path: Path) -> Path:
    path = tmp_path / "code"
    path.mkdir()
    (path / "requirements.txt").write_text("")
    (path / "main.py").write_text("class M:\n    def infer_with_tensors(self, t):\n        return t\n\ndef get_model():\n    return M()\n")
    return path


# -- pack --json ----------------------------------------------------------------------------------


def test_pack_json_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.carton"
    assert carton_main(["pack", str(code_dir(tmp_path)), "--runner", "python", *ENTRYPOINT, "-o", str(out), "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    with cf.read(out) as archive:
        assert reply == {
            "ok": True,
            "path": str(out),
            "size": out.stat().st_size,
            "manifest_sha256": archive.manifest_sha256,
            "runner": {"runner_name": "python", "required_framework_version": MAJOR_MINOR, "runner_compat_version": 1},
            "self_tests_passed": 0,
        }


def test_pack_json_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same ``{"ok": false, "error": ...}`` as the other commands: here a python model
    without entrypoint options (refused at pack), then an existing output."""
    code, out = code_dir(tmp_path), tmp_path / "m.carton"
    assert carton_main(["pack", str(code), "--runner", "python", "-o", str(out), "--json"]) == 1
    captured = capsys.readouterr()
    error = json.loads(captured.out)
    assert error["ok"] is False and error["error"]["code"] == "E-RUNTIME-ARG"
    assert "entrypoint_package" in error["error"]["message"] and "entrypoint_fn" in error["error"]["message"]
    assert "E-RUNTIME-ARG" in captured.err and not out.exists()
    out.write_bytes(b"already here")
    assert carton_main(["pack", str(code), "--runner", "python", *ENTRYPOINT, "-o", str(out), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "E-OUTPUT-EXISTS"


def test_pack_text_output_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.carton"
    assert carton_main(["pack", str(code_dir(tmp_path)), "--runner", "python", *ENTRYPOINT, "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"packed {out} (")


# -- what pack records ----------------------------------------------------------------------------


@pytest.mark.spec("FMT-PYTHON-1")
def test_cli_records_the_apis_framework_version(tmp_path: Path) -> None:
    """Without --framework-version, the CLI records what the API does: for python, this
    interpreter's major.minor (not ``*``)."""
    code = code_dir(tmp_path)
    opts = {"entrypoint_package": "main", "entrypoint_fn": "get_model"}
    api = cs.get_model_info(cs.pack(code, runner_name="python", runner_opts=opts, output_path=tmp_path / "api.carton"))
    assert carton_main(["pack", str(code), "--runner", "python", *ENTRYPOINT, "-o", str(tmp_path / "cli.carton")]) == 0
    cli = cs.get_model_info(tmp_path / "cli.carton")
    assert cli.runner.required_framework_version == api.runner.required_framework_version == MAJOR_MINOR


def test_description_file_that_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pack", str(code_dir(tmp_path)), "--runner", "python", *ENTRYPOINT, "-o", str(tmp_path / "m.carton")]
    assert carton_main([*args, "--description-file", str(tmp_path / "missing.md"), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "E-RUNTIME-ARG" and "missing.md" in error["message"]


# -- usage errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "0", "abc", "nan", "inf"])
@pytest.mark.parametrize("flag", ["--call-timeout", "--load-timeout"])
def test_bad_time_limits_are_usage_errors(tmp_path: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        carton_main(["run", f"{flag}={value}", str(tmp_path / "m.carton")])
    assert done.value.code == 2
    assert "positive number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--opt", "--misc", "--link"])
def test_malformed_name_value_options_are_usage_errors(tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        carton_main(["pack", str(code_dir(tmp_path)), "--runner", "python", flag, "no-equals-sign"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "NAME=VALUE" in err and "Traceback" not in err


# -- stdout closed early --------------------------------------------------------------------------


def _read_then_close(args: list[str], lines: int = 3) -> tuple[int, list[bytes], str]:
    """Run the CLI, read ``lines`` lines of its stdout and close it (what ``| head -3`` does)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([*CARTON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(lines)]
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=120), head, err


def test_info_json_into_a_reader_that_stops(tmp_path: Path) -> None:
    """The description alone is more than a pipe holds, so the writer meets the closed pipe."""
    archive = tmp_path / "big.carton"
    info = cf.CartonInfo(runner=cf.RunnerInfo("python", MAJOR_MINOR, 1, {}), model_description="many words " * 200_000)
    cf.write(archive, info, model_dir=code_dir(tmp_path))
    for args in (["info", "--json", str(archive)], ["info", str(archive)]):
        code, head, err = _read_then_close(args)
        assert head[0].strip() in (b"{", f"file:            {archive}".encode()), head
        assert code == 1 and "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_run_json_into_a_reader_that_stops(tmp_path: Path, models: dict[str, Path]) -> None:
    packed = cs.pack(models["copy"], "torchscript", "*", output_path=tmp_path / "copy.carton")
    np.save(tmp_path / "x.npy", np.arange(300_000, dtype=np.float32))
    args = ["run", packed, "--isolation", "inprocess", "--json", "--input", f"x=@{tmp_path / 'x.npy'}"]
    code, head, err = _read_then_close(args)
    assert head[0].strip() == b"{"
    assert code == 1 and "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
