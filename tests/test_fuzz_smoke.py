"""The fuzz harness (fuzz/): a short fixed-seed atheris run of every target, the harness's own
machinery (a planted finding is recorded and the run goes on), and every saved finding replayed
as a regression input.

The atheris runs are skipped, saying why, where atheris is not installed (``make test``
installs its wheel where one exists); the rest needs only the library.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import carton_format as cf
from fuzz import archive_spec, runner, seeds, targets
from tests.helpers import DATA, ROOT

HAS_ATHERIS = importlib.util.find_spec("atheris") is not None
needs_atheris = pytest.mark.skipif(
    not HAS_ATHERIS, reason="atheris is not installed (pip install -c constraints.txt atheris; make test installs it where a wheel exists)"
)
SMOKE_RUNS = 200


def _fuzz(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fuzz", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@needs_atheris
@pytest.mark.parametrize("target", list(targets.TARGETS))
def test_fuzz_smoke(target: str, tmp_path: Path) -> None:
    done = _fuzz("smoke", "--target", target, "--runs", str(SMOKE_RUNS), "--max-seeds", "30", "--seconds", "60", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    (stats,) = summary["targets"]
    assert stats["findings"] == []
    assert stats["executions"] >= SMOKE_RUNS, done.stdout
    assert stats["new_units"] > 0, "the code under test is not instrumented: no input added coverage"


@needs_atheris
def test_a_finding_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    """The self-test target's planted crash and slow input are both found: after the first the
    worker restarts, skipping it, and finds the second."""
    done = _fuzz("run", "--target", "selftest", "--seconds", "8", "--out", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    (stats,) = json.loads((tmp_path / "summary.json").read_text("utf-8"))["targets"]
    signatures = sorted(f["signature"] for f in stats["findings"])
    assert signatures == ["RuntimeError at targets.py:fuzz_selftest", "TooSlow at time bound"]
    assert stats["restarts"] == 2 and stats["executions"] > 0
    for finding in stats["findings"]:
        saved = tmp_path / "crashes" / finding["input"]
        assert saved.read_bytes().startswith((b"crash", b"slow"))
        assert finding["traceback"].startswith("Traceback")


# -- without atheris -------------------------------------------------------------------------------


def test_the_rule() -> None:
    selftest = targets.ALL_TARGETS["selftest"]
    assert targets.check(selftest, b"anything") is None  # a CartonError is how bad input is reported
    with pytest.raises(RuntimeError):
        targets.check(selftest, b"crash")
    with pytest.raises(targets.TooSlow):
        targets.check(selftest, b"slow")
    assert targets.check(selftest, b"crash", known=frozenset({"RuntimeError at targets.py:fuzz_selftest"})) is not None


@functools.cache
def _all_seeds() -> dict[str, list[bytes]]:
    return seeds.build_seeds({name: t.max_len for name, t in targets.TARGETS.items()})


@pytest.mark.parametrize("target", list(targets.TARGETS))
def test_every_target_passes_a_sample_of_its_seeds(target: str) -> None:
    inputs = _all_seeds()[target]
    assert inputs, f"no seeds for {target}"
    for data in random.Random(1).sample(inputs, min(len(inputs), 12)):
        assert runner.outcome(target, data) is None


def test_archive_inputs_rebuild_into_valid_archives() -> None:
    """A structured input rebuilds (fresh CRCs and MANIFEST) into an archive that reads; the
    mutator keeps inputs decodable and within the rule."""
    blob = (DATA / "original_written" / "kitchen_sink_shrunk.carton").read_bytes()
    spec = archive_spec.ArchiveSpec(
        [archive_spec.Member(name, data, archive_spec.SYMLINK if link else archive_spec.FILE, archive_spec.METHODS.index(method))
         for name, data, method, link in seeds._members(blob) or []]
    )
    assert len(spec.members) > 5
    assert archive_spec.decode(archive_spec.encode(spec)) == spec
    built = targets.build_archive(archive_spec.encode(spec))
    assert built is not None
    with cf.read(io.BytesIO(built.zip_bytes), fetch_linked=targets._fetcher(built.linked)) as archive:
        assert archive.info.self_tests
        targets.touch_archive(archive)

    def flip(data: bytes, max_size: int) -> bytes:
        return (data[:-1] + bytes([data[-1] ^ 1]) if data else b"x")[:max_size]

    data = archive_spec.encode(spec)
    for seed in range(60):
        data = archive_spec.mutate(data, 1 << 20, seed, flip)
        assert archive_spec.decode(data) is not None
        assert runner.outcome("archive", data) is None


def test_minimize_keeps_the_signature() -> None:
    assert runner.minimize("selftest", b"crash" + bytes(50)) == b"crash"


# -- saved findings: regression inputs ---------------------------------------------------------------


def _saved_findings() -> list:
    known = json.loads(runner.KNOWN_FILE.read_text("utf-8")) if runner.KNOWN_FILE.exists() else []
    open_inputs = {e["input"]: e for e in known if e.get("status", "open") == "open"}
    params = []
    for target in targets.TARGETS:
        folder = runner.FINDINGS / target
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            rel = f"{target}/{path.name}"
            marks = []
            if rel in open_inputs:
                e = open_inputs[rel]
                marks.append(pytest.mark.xfail(reason=f"open finding, owner {e.get('owner', '?')}: {e['signature']}", strict=False))
            params.append(pytest.param(target, path, id=rel, marks=marks))
    return params or [pytest.param(None, None, id="none", marks=pytest.mark.skip(reason="no saved findings"))]


@pytest.mark.parametrize(("target", "path"), _saved_findings())
def test_saved_finding_no_longer_fails(target: str, path: Path) -> None:
    assert runner.outcome(target, path.read_bytes()) is None
