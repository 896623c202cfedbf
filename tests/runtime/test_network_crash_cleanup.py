"""What a killed process leaves in the cache is cleaned up by the next one, and only that.

A real subprocess is killed with SIGKILL in the middle of a download (the loopback server's
``/stall-once/`` route sends half the file and then stalls); the next load in this process
removes its ``files/.tmp-*`` leftovers and succeeds.  Entries of live processes are never
touched: the producer of an item holds the item's lock, and the cleaner takes it without waiting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import carton_runtime.sync as carton_sync
from carton_runtime.cache import Cache

from .conftest import ORIGINAL_MODEL, ROOT, Server, pack_original, sha256_file
from .test_api import INPUTS, check_outputs

MODEL_SHA = sha256_file(ORIGINAL_MODEL)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

LOAD = "import sys, carton_runtime.sync as cs\ncs.load(sys.argv[1])\n"


def _wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _leftovers(cache_dir: Path) -> list[Path]:
    files = cache_dir / "files"
    return sorted(files.glob(".tmp-*")) if files.is_dir() else []


def _in_flight(cache_dir: Path) -> bool:
    """A download under way: its temporary file exists (the body is being read into it)."""
    return any((entry / "file").is_file() if entry.is_dir() else entry.is_file() for entry in _leftovers(cache_dir))


def _kill_mid_download(target: str, cache_dir: Path) -> None:
    env = {**os.environ, "CARTON_CACHE_DIR": str(cache_dir), "CARTON_HTTP_STALL_SECONDS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", LOAD, target], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _in_flight(cache_dir) or proc.poll() is not None, "a download in flight")
        time.sleep(0.3)  # half the body arrived; the rest trickles
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_a_remote_archive_download_killed_midway(server: Server, packed: Path, cache_dir: Path) -> None:
    server.add_file("crash.carton", packed)
    url = server.url("stall-once/crash.carton")
    _kill_mid_download(url, cache_dir)
    left = _leftovers(cache_dir)
    assert len(left) == 1 and left[0].is_file() and left[0].name.startswith(".tmp-download-"), left
    assert list((cache_dir / "locks").glob("*.lock"))
    server.stop_stalling.set()
    model = carton_sync.load(url)  # the second whole-file request is served normally
    check_outputs(model.infer(INPUTS))
    assert not _leftovers(cache_dir)
    assert len([r for r in server.requests_for("stall-once/crash.carton") if r.range is None]) == 2


def test_a_links_download_killed_midway(server: Server, tmp_path: Path, cache_dir: Path) -> None:
    server.add_file("files/crash-model.pt", ORIGINAL_MODEL)
    url = server.url("stall-once/files/crash-model.pt")
    path = pack_original(tmp_path / "linked.carton", linked_files={MODEL_SHA: [url]})
    _kill_mid_download(str(path), cache_dir)
    left = _leftovers(cache_dir)
    assert len(left) == 1 and left[0].is_dir() and left[0].name.startswith(f".tmp-{MODEL_SHA}-"), left
    server.stop_stalling.set()
    check_outputs(carton_sync.load(path).infer(INPUTS))
    assert not _leftovers(cache_dir)
    assert (cache_dir / "files" / MODEL_SHA / "file").read_bytes() == ORIGINAL_MODEL.read_bytes()


HOLD = """
import sys, time, carton_runtime.cache as c
cache = c.Cache(sys.argv[1])
with cache.staging(sys.argv[2]) as staging:
    staging.path.write_bytes(b"partial")
    print("ready", flush=True)
    time.sleep(60)
"""


def test_a_live_producer_is_never_disturbed(cache_dir: Path) -> None:
    sha = "ab" * 32
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(cache_dir), sha], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        (live,) = _leftovers(cache_dir)
        cache = Cache(cache_dir)
        assert cache.clean_stale(stale_age=0, lock_age=0) == []  # held lock: kept, however old
        assert (live / "file").read_bytes() == b"partial"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert _leftovers(cache_dir) == [live]
        assert live in cache.clean_stale()  # its owner is dead (and its lock free): removed at once
        assert not _leftovers(cache_dir)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_unknown_entries_age_and_free_lock_files(cache_dir: Path) -> None:
    cache = Cache(cache_dir)
    files, urls = cache_dir / "files", cache_dir / "urls"
    files.mkdir(parents=True)
    urls.mkdir()
    foreign = files / ".tmp-k2j3h4g5"  # no owner in the name (another tool, an older version)
    foreign.mkdir()
    (foreign / "file").write_bytes(b"x")
    record_tmp = urls / f".tmp-{Cache.tmp_prefix()[5:]}abc"  # this process's own record being written
    record_tmp.write_text("{}")
    keep = files / ("0" * 64) / "file"  # a cached file, however old, is no temporary entry
    keep.parent.mkdir()
    keep.write_bytes(b"cached")
    assert cache.clean_stale() == []  # fresh, owners unknown or alive
    old = time.time() - 2 * 24 * 3600
    os.utime(foreign / "file", (old, old))
    os.utime(foreign, (old, old))
    os.utime(keep, (old, old))
    assert cache.clean_stale() == [foreign]
    assert record_tmp.exists() and keep.exists()
    # lock files: removed once free and older than an hour; a held one stays
    with cache.lock("cd" * 32):
        old_free = cache_dir / "locks" / f"{'ef' * 32}.lock"
        old_free.touch()
        os.utime(old_free, (old, old))
        held = cache_dir / "locks" / f"{'cd' * 32}.lock"
        os.utime(held, (old, old))
        fresh = cache_dir / "locks" / f"{'01' * 32}.lock"
        fresh.touch()
        removed = cache.clean_stale()
        assert removed == [old_free]
        assert held.exists() and fresh.exists()
