"""Temporary files left behind by a writer that died (``kill -9`` during ``write()``).

``write()`` and ``shrink()`` write ``.{name}.XXXXXXXX.tmp`` next to the target and hold an
advisory lock on it while they write.  The next writer for that directory removes the
temporary files whose lock it can take (their writer is gone) and that are old enough, and
nothing else: never a live writer's file, never a file of another name, kind or owner.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import carton_format as cf
from carton_format import _atomic
from tests.helpers import ROOT

HOUR = 3600.0


def _info() -> cf.CartonInfo:
    return cf.CartonInfo(runner=cf.RunnerInfo(runner_name="torchscript", required_framework_version="=2.13", runner_compat_version=1))


def _small_model(root: Path) -> Path:
    model = root / "small-model"
    model.mkdir(exist_ok=True)
    (model / "model.pt").write_bytes(b"weights")
    return model


def _temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def _backdate(path: Path, seconds: float = HOUR) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _stale(directory: Path, name: str, content: bytes = b"PK\x03\x04 half an archive", age: float = HOUR) -> Path:
    path = directory / name
    path.write_bytes(content)
    _backdate(path, age)
    return path


def test_names_of_temporary_files() -> None:
    assert _atomic.is_temp_name(".m.carton.ab_cd123.tmp", "m.carton")
    assert _atomic.is_temp_name(".other.carton.ab_cd123.tmp", "m.carton")  # another carton of the directory
    assert _atomic.is_temp_name(".model.bin.ab_cd123.tmp", "model.bin")  # the target's own, whatever its name
    assert not _atomic.is_temp_name(".notes.txt.ab_cd123.tmp", "m.carton")  # somebody else's
    assert not _atomic.is_temp_name("m.carton.ab_cd123.tmp", "m.carton")
    assert not _atomic.is_temp_name(".m.carton.abc.tmp", "m.carton")
    assert not _atomic.is_temp_name(".m.carton.ABCDEFGH.tmp", "m.carton")
    assert not _atomic.is_temp_name(".m.carton.ab_cd123.tmp.bak", "m.carton")


def test_a_stale_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mine = _stale(out, ".m.carton.k1ll3d_0.tmp")
    sibling = _stale(out, ".other.carton.k1ll3d_1.tmp")
    empty = _stale(out, ".m.carton.k1ll3d_2.tmp", content=b"")  # killed before the first byte
    cf.write(out / "m.carton", _info(), model_dir=_small_model(tmp_path))
    assert not mine.exists() and not sibling.exists() and not empty.exists()
    assert sorted(p.name for p in out.iterdir()) == ["m.carton"]


def test_shrink_removes_them_too(tmp_path: Path) -> None:
    source = cf.write(tmp_path / "source.carton", _info(), model_dir=_small_model(tmp_path)).path
    sha = cf.read(source).manifest["model/model.pt"]
    stale = _stale(tmp_path, ".shrunk.carton.k1ll3d_0.tmp")
    cf.shrink(source, tmp_path / "shrunk.carton", {sha: ["https://example.com/model.pt"]})
    assert not stale.exists()


def test_only_stale_carton_temporary_files_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    fresh = _stale(out, ".m.carton.fresh000.tmp", age=5)  # its writer may not have locked it yet
    not_zip = _stale(out, ".m.carton.notzip00.tmp", content=b"some other program's data")
    other_name = _stale(out, ".notes.txt.k1ll3d_0.tmp")
    no_pattern = [_stale(out, n) for n in ("m.carton.tmp", ".m.carton.tmp", ".m.carton.abc.tmp", "x.k1ll3d_0.tmp")]
    target_of_link = _stale(tmp_path, "elsewhere.bin")
    link = out / ".m.carton.symlink0.tmp"
    link.symlink_to(target_of_link)
    directory = out / ".m.carton.adirect0.tmp"
    directory.mkdir()
    _backdate(directory)
    if os.geteuid() == 0:  # another user's file (only root can make one here)
        foreign = _stale(out, ".m.carton.foreign0.tmp")
        os.chown(foreign, 65534, 65534)
        _backdate(foreign)
    before = sorted(p.name for p in out.iterdir())
    cf.write(out / "m.carton", _info(), model_dir=_small_model(tmp_path))
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, "m.carton"])
    assert all(p.exists() for p in (fresh, not_zip, other_name, *no_pattern, target_of_link))


def test_a_temporary_file_locked_by_a_live_process_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    live = _stale(out, ".m.carton.l1v3_000.tmp")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import fcntl, sys
            f = open(sys.argv[1], "rb")
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            print("locked", flush=True)
            sys.stdin.read()
            """
        ), str(live)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cf.write(out / "m.carton", _info(), model_dir=_small_model(tmp_path))
        assert live.exists()
        assert _atomic.remove_stale_temp_files(out / "m.carton") == []
    finally:
        holder.communicate("", timeout=30)
    assert _atomic.remove_stale_temp_files(out / "m.carton") == [live]  # the holder has gone


def test_a_writer_keeps_its_lock_until_the_file_is_renamed(tmp_path: Path) -> None:
    """While the caller writes, even a backdated temporary file is never taken for stale."""
    target = tmp_path / "m.carton"
    with _atomic.atomic_output(target, overwrite=False) as (fh, tmp):
        fh.write(b"PK\x03\x04")
        _backdate(tmp)
        assert _atomic.remove_stale_temp_files(target) == []
        with open(tmp, "rb") as other:  # another open file description: the lock is taken
            with pytest.raises(BlockingIOError):
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert target.read_bytes() == b"PK\x03\x04"
    assert _temps(tmp_path) == []


# -- a real writer killed mid-write -----------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    import carton_format as cf
    info = cf.CartonInfo(runner=cf.RunnerInfo(runner_name="torchscript", required_framework_version="=2.13", runner_compat_version=1))
    cf.write(sys.argv[1], info, model_dir=sys.argv[2], compression="deflate")
    print("done", flush=True)
    """
)


def _start_writer(target: Path, model: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(model)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop_mid_write(proc: subprocess.Popen, target: Path, timeout: float = 120.0) -> Path:
    """Wait until ``proc`` has started writing ``target``'s temporary file, then SIGSTOP it."""
    deadline = time.monotonic() + timeout
    prefix = f".{target.name}."
    while time.monotonic() < deadline:
        found = [p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
        if found and found[0].stat().st_size > 0:
            proc.send_signal(signal.SIGSTOP)
            assert proc.poll() is None, "the writer finished before it could be stopped mid-write"
            assert not target.exists(), "the writer finished before it could be stopped mid-write"
            return found[0]
        if proc.poll() is not None:
            break
        time.sleep(0.001)
    _, err = proc.communicate(timeout=30)
    pytest.fail(f"no temporary file appeared for {target} (rc={proc.returncode}): {err.decode(errors='replace')}")


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_a_file_that_the_next_write_removes(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pt").write_bytes(os.urandom(48 * 1024 * 1024))  # deflate: a second or more to write
    out = tmp_path / "out"
    out.mkdir()
    victim_target, live_target = out / "m.carton", out / "live.carton"

    victim = _start_writer(victim_target, model)
    live = None
    try:
        victim_tmp = _stop_mid_write(victim, victim_target)
        victim.kill()  # SIGKILL: no cleanup runs
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        assert victim_tmp.exists(), "kill -9 leaves the temporary file behind"

        live = _start_writer(live_target, model)  # a concurrent writer, frozen mid-write
        live_tmp = _stop_mid_write(live, live_target)

        # Right after the crash the file is too young to be judged: left alone.
        small = _small_model(tmp_path)
        cf.write(out / "first.carton", _info(), model_dir=small)
        assert victim_tmp.exists() and live_tmp.exists()

        # Later (both files look an hour old): the dead writer's file goes, the live one's stays.
        _backdate(victim_tmp)
        _backdate(live_tmp)
        result = cf.write(victim_target, _info(), model_dir=small)
        assert not victim_tmp.exists()
        assert live_tmp.exists()
        assert cf.validate(result.path).ok

        live.send_signal(signal.SIGCONT)
        stdout, stderr = live.communicate(timeout=300)
        assert live.returncode == 0, stderr.decode(errors="replace")
        assert stdout.strip() == b"done"
        assert cf.validate(live_target).ok
        assert _temps(out) == []
    finally:
        for proc in (victim, live):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
