"""carton_runtime.hashing: copying a range while hashing the copy, and hashing a range in place."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from carton_runtime import overlapped_verify as hashing
from carton_runtime.errors import CartonRuntimeError
from carton_runtime.overlapped_verify import CopyHasher, RangeHasher


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks small enough that a test file takes many rounds of copying and hashing."""
    monkeypatch.setattr(hashing, "COPY_CHUNK", 4096)
    monkeypatch.setattr(hashing, "READ_CHUNK", 1000)
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


def test_copy_returns_with_the_last_bytes_being_hashed(tmp_path: Path) -> None:
    """copy() returns only once the hasher is in its final call over everything left (one
    GIL-free hashlib call), so a caller that then holds the GIL for long, as torch.jit.load does
    while parsing, does not stop the hashing."""
    size = 4 * 1024 * 1024
    src, data = _source(tmp_path, size)
    hasher = CopyHasher(src, 123, size, tmp_path / "dest.bin")
    assert not hasher._last_call.is_set()
    hasher.copy()
    assert hasher._last_call.is_set()
    assert hasher.result() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 5, 70_000])
def test_range_hasher(tmp_path: Path, size: int) -> None:
    src, data = _source(tmp_path, size)
    assert RangeHasher(src, 123, size).result() == hashlib.sha256(data).hexdigest()
    with pytest.raises(CartonRuntimeError) as err:
        RangeHasher(tmp_path / "nope.bin", 0, 10).result()
    assert err.value.code == "E-RUNTIME-SOURCE"
