"""SHA-256 + CRC-32 computed concurrently (carton_format.integrity)."""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carton_format import integrity as hashing
from carton_format.integrity import Crc32, DigestPair, sha256_file


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    out.append(data[pos:])
    return out


def test_digest_pair_matches_hashlib_and_zlib_across_the_threshold() -> None:
    data = os.urandom(3 * hashing.PARALLEL_MIN + 12345)
    pair = DigestPair()
    # small (inline), large (worker), small, large: the CRC chain must stay ordered
    for chunk in _chunks(data, [100, hashing.PARALLEL_MIN + 1, 7, 2 * hashing.PARALLEL_MIN]):
        pair.update(chunk)
    assert pair.sha256_hex() == hashlib.sha256(data).hexdigest()
    assert pair.sha256_digest() == hashlib.sha256(data).digest()
    assert pair.crc32() == zlib.crc32(data)
    assert pair.size == len(data)


def test_digest_pair_buffer_may_be_reused_after_update() -> None:
    """update() returns only after the worker is done with the chunk (readinto pattern)."""
    data = os.urandom(8 * hashing.PARALLEL_MIN)
    buf = bytearray(2 * hashing.PARALLEL_MIN)
    view = memoryview(buf)
    sink: list[bytes] = []
    pair = DigestPair(sink=lambda chunk: sink.append(bytes(chunk)))
    for pos in range(0, len(data), len(buf)):
        n = len(data[pos : pos + len(buf)])
        buf[:n] = data[pos : pos + n]
        pair.update(view[:n])
        buf[:] = b"\xff" * len(buf)  # clobber: must not affect what was hashed or sunk
    assert b"".join(sink) == data
    assert pair.crc32() == zlib.crc32(data)
    assert pair.sha256_hex() == hashlib.sha256(data).hexdigest()


def test_sink_errors_are_reraised_on_the_caller() -> None:
    def sink(chunk: object) -> None:
        raise OSError(28, "No space left on device")

    pair = DigestPair(sink=sink)
    with pytest.raises(OSError):
        pair.update(bytes(hashing.PARALLEL_MIN * 2))
    with pytest.raises(OSError):
        pair.update(b"x")


def test_small_chunks_never_use_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise AssertionError("worker used for a small chunk")

    monkeypatch.setattr(hashing, "_get_worker", boom)
    pair = DigestPair()
    pair.update(b"abc")
    crc = Crc32()
    crc.update(b"abc")
    assert pair.crc32() == crc.value() == zlib.crc32(b"abc")


def test_closed_pair_refuses_updates() -> None:
    with DigestPair() as pair:
        pair.update(b"x")
    with pytest.raises(ValueError):
        pair.update(b"y")


def test_crc32_async_bytes_and_sync_buffers() -> None:
    data = os.urandom(10 * hashing.PARALLEL_MIN + 3)
    crc = Crc32(max_pending_bytes=2 * hashing.PARALLEL_MIN)
    pieces = _chunks(data, [hashing.PARALLEL_MIN] * 6 + [5])
    for i, piece in enumerate(pieces):
        crc.update(piece if i % 2 else bytearray(piece))  # bytes go async, bytearrays sync
    assert crc.value() == zlib.crc32(data)


def test_worker_is_shared_and_survives_threads() -> None:
    data = [os.urandom(hashing.PARALLEL_MIN * 3) for _ in range(4)]
    results: dict[int, tuple[str, int]] = {}

    def run(i: int) -> None:
        pair = DigestPair()
        for _ in range(3):
            pair.update(data[i])
        results[i] = (pair.sha256_hex(), pair.crc32())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert results[i] == (hashlib.sha256(data[i] * 3).hexdigest(), zlib.crc32(data[i] * 3))


def test_sha256_file(tmp_path: Path) -> None:
    data = os.urandom(hashing.CHUNK_SIZE + 17)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


@settings(deadline=None, max_examples=40)
@given(
    st.lists(st.integers(min_value=0, max_value=3 * hashing.PARALLEL_MIN), max_size=6),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_any_chunking_gives_the_same_digests(sizes: list[int], seed: int) -> None:
    total = sum(sizes)
    data = (seed.to_bytes(4, "little") * (total // 4 + 1))[:total]
    pair = DigestPair()
    crc = Crc32()
    for chunk in _chunks(data, sizes):
        pair.update(chunk)
        crc.update(chunk)
    assert pair.sha256_hex() == hashlib.sha256(data).hexdigest()
    assert pair.crc32() == crc.value() == zlib.crc32(data)
