"""carton_runtime.hashing: copying a range while hashing the copy, and hashing a range in place."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from carton_runtime import overlapped_verify as hashing
from carton_runtime.errors import CartonRuntimeError
from carton_runtime.overlapped_verify import CopyHasher, ProcessHasher, RangeHasher, hash_range


@pytest.fixture(params=["child-process", "thread"])
def small_chunks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks small enough that a test file takes many rounds of copying and hashing, hashed
    behind the copy by a child interpreter or after it on a thread."""
    monkeypatch.setattr(hashing, "PROCESS_MIN", 0 if request.param == "child-process" else 1 << 40)
    monkeypatch.setattr(hashing, "COPY_CHUNK", 4096)
    monkeypatch.setattr(hashing, "BOUNCE_CHUNK", 3000)


def _source(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(b"H" * 123 + data + b"T" * 77)  # the range sits between a head and a tail
    return src, data


def _no_copy_file_range(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)


@pytest.mark.parametrize("size", [0, 1, 999, 4096, 50_000])
@pytest.mark.parametrize("fallback", [False, True], ids=["copy_file_range", "read-write"])
def test_copy_hasher_copies_the_range_and_hashes_the_copy(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch, size: int, fallback: bool
) -> None:
    if fallback:
        _no_copy_file_range(monkeypatch)
    src, data = _source(tmp_path, size)
    dest = tmp_path / "dest.bin"
    hasher = CopyHasher(src, 123, size, dest)
    hasher.copy()
    assert hasher.result() == hashlib.sha256(data).hexdigest()
    assert dest.read_bytes() == data


def test_copy_hasher_hashes_the_bytes_written_not_the_source(tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer changing the source during the copy: the digest is that of what was copied."""
    src, data = _source(tmp_path, 50_000)
    dest = tmp_path / "dest.bin"
    progress = CopyHasher._progress
    changed = threading.Event()

    def progress_then_tamper(self: CopyHasher, done: int) -> None:
        progress(self, done)
        if not changed.is_set():  # after the first chunk: change a byte not copied yet
            changed.set()
            with open(src, "r+b") as fh:
                fh.seek(123 + 40_000)
                fh.write(bytes([data[40_000] ^ 0xFF]))

    monkeypatch.setattr(CopyHasher, "_progress", progress_then_tamper)
    hasher = CopyHasher(src, 123, len(data), dest)
    hasher.copy()
    copied = dest.read_bytes()
    assert copied != data and changed.is_set()
    assert hasher.result() == hashlib.sha256(copied).hexdigest() != hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("fallback", [False, True], ids=["copy_file_range", "read-write"])
def test_copy_hasher_source_too_short(tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch, fallback: bool) -> None:
    if fallback:
        _no_copy_file_range(monkeypatch)
    src, data = _source(tmp_path, 10_000)
    hasher = CopyHasher(src, 123, len(data) + 1000, tmp_path / "dest.bin")  # runs past the end
    with pytest.raises(CartonRuntimeError, match="ended early") as err:
        hasher.copy()
    assert err.value.code == "E-RUNTIME-SOURCE"
    with pytest.raises(CartonRuntimeError, match="did not complete"):  # the thread ended, no hang
        hasher.result()


def test_copy_hasher_missing_source(tmp_path: Path) -> None:
    hasher = CopyHasher(tmp_path / "nope.bin", 0, 10, tmp_path / "dest.bin")
    with pytest.raises(FileNotFoundError):
        hasher.copy()
    with pytest.raises(CartonRuntimeError):
        hasher.result()


@pytest.mark.parametrize("process_min", [0, 1 << 40], ids=["child-process", "thread"])
def test_copy_returns_with_the_copy_being_hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, process_min: int) -> None:
    """copy() returns with the hash of the copy started beside the caller (a child interpreter
    for big ranges, a thread in one GIL-free hashlib call otherwise), so a caller that then holds
    the GIL for long, as torch.jit.load does while parsing, does not stop the hashing."""
    monkeypatch.setattr(hashing, "PROCESS_MIN", process_min)
    size = 4 * 1024 * 1024
    src, data = _source(tmp_path, size)
    hasher = CopyHasher(src, 123, size, tmp_path / "dest.bin")
    assert isinstance(hasher._hasher, ProcessHasher) if process_min == 0 else hasher._hasher is None  # the child hashes behind the copy
    hasher.copy()
    assert isinstance(hasher._hasher, ProcessHasher if process_min == 0 else RangeHasher)
    assert hasher.result() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 5, 70_000])
def test_range_hasher(tmp_path: Path, size: int) -> None:
    src, data = _source(tmp_path, size)
    assert RangeHasher(src, 123, size).result() == hashlib.sha256(data).hexdigest()
    with pytest.raises(CartonRuntimeError) as err:
        RangeHasher(tmp_path / "nope.bin", 0, 10).result()
    assert err.value.code == "E-RUNTIME-SOURCE"


@pytest.mark.parametrize("size", [0, 5, 70_000, 3 * 1024 * 1024 + 7])
def test_process_hasher(tmp_path: Path, size: int) -> None:
    src, data = _source(tmp_path, size)
    interpreter = hashing._child_interpreter()
    assert interpreter is not None  # the test suite runs under a python executable
    assert ProcessHasher(src, 123, size, interpreter).result() == hashlib.sha256(data).hexdigest()


def test_process_hasher_errors(tmp_path: Path) -> None:
    interpreter = hashing._child_interpreter()
    assert interpreter is not None
    with pytest.raises(CartonRuntimeError, match="nope.bin: .*FileNotFoundError") as err:
        ProcessHasher(tmp_path / "nope.bin", 0, 10, interpreter).result()
    assert err.value.code == "E-RUNTIME-SOURCE"
    src, data = _source(tmp_path, 100)
    with pytest.raises(CartonRuntimeError, match="ended before the range did"):
        ProcessHasher(src, 123, 10_000, interpreter).result()


def test_hash_range_picks_the_hasher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, data = _source(tmp_path, 5000)
    expected = hashlib.sha256(data).hexdigest()
    monkeypatch.setattr(hashing, "PROCESS_MIN", 4096)
    big = hash_range(src, 123, 5000)
    small = hash_range(src, 123, 4000)
    assert isinstance(big, ProcessHasher) and isinstance(small, RangeHasher)
    assert big.result() == expected
    monkeypatch.setattr(hashing.sys, "executable", "/usr/bin/uwsgi")  # an embedding host: never started
    assert isinstance(hash_range(src, 123, 5000), RangeHasher)
    monkeypatch.setattr(hashing.sys, "executable", str(tmp_path / "python-gone"))  # cannot start: in-process
    fallback = hash_range(src, 123, 5000)
    assert isinstance(fallback, RangeHasher) and fallback.result() == expected


_RSS_PROBE = """
import sys
from pathlib import Path
from carton_runtime import overlapped_verify as hashing
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
path, size, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
before = hwm()
hasher = hashing.hash_range(path, 0, size) if mode == "auto" else hashing.RangeHasher(path, 0, size)
hasher.result()
print((hwm() - before) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_big_ranges_are_hashed_outside_this_process_memory(tmp_path: Path) -> None:
    """Peak RSS: an in-process mmap hash maps the whole file into this process; the child
    interpreter's reads are its own."""
    import subprocess
    import sys

    size = 96 * 1024 * 1024
    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:
        for _ in range(size // (1 << 20)):
            fh.write(os.urandom(1 << 20))

    def grown_mib(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path), str(size), mode], check=True, capture_output=True, text=True)
        return int(out.stdout.split()[-1])

    assert grown_mib("thread") >= 64  # the mmap'd pages count while mapped
    assert grown_mib("auto") < 16


def test_failed_copy_stops_the_child_hashing_behind_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy that fails leaves no child interpreter waiting for progress that never comes."""
    monkeypatch.setattr(hashing, "PROCESS_MIN", 0)
    src, data = _source(tmp_path, 10_000)
    hasher = CopyHasher(src, 123, len(data) + 1000, tmp_path / "dest.bin")  # runs past the end
    child = hasher._hasher
    assert isinstance(child, ProcessHasher)
    with pytest.raises(CartonRuntimeError, match="ended early"):
        hasher.copy()
    assert child._child.returncode == 4  # told nothing more, it stopped, and was waited for
    with pytest.raises(CartonRuntimeError, match="did not complete"):
        hasher.result()
