"""The HTTP-free block cache and range file (in-memory fetcher), and HttpRangeFile's injected opener."""

from __future__ import annotations

import io
import os
import threading
import urllib.request
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import carton_runtime as carton
from carton_runtime.http_range import HttpRangeFetcher, HttpRangeFile
from carton_runtime.range_cache import RangeFile, TailBlockCache

from .conftest import Server


class MemFetcher:
    """fetcher(start, end) over a bytes object, recording every call."""

    def __init__(self, data: bytes, *, short_by: int = 0):
        self.data = data
        self.calls: list[tuple[int, int]] = []
        self.short_by = short_by

    def __call__(self, start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(self.data)
        self.calls.append((start, end))
        return self.data[start : end - self.short_by]

    @property
    def bytes(self) -> int:
        return sum(e - s for s, e in self.calls)


def make(data: bytes, tail: int, **kwargs: Any) -> tuple[TailBlockCache, MemFetcher]:
    fetcher = MemFetcher(data, short_by=kwargs.pop("short_by", 0))
    start = max(0, len(data) - tail)
    return TailBlockCache(fetcher, len(data), start, data[start:], **kwargs), fetcher


DATA = os.urandom(100_000)


def test_read_inside_the_tail_needs_no_fetch() -> None:
    cache, fetcher = make(DATA, 10_000, min_fetch=1000)
    assert cache.read(95_000, 5000) == DATA[95_000:]
    assert cache.read(90_000, 1) == DATA[90_000:90_001]
    assert cache.read(99_990, 100) == DATA[99_990:]  # cut short at the end
    assert cache.read(100_000, 10) == b""
    assert fetcher.calls == []


def test_miss_fetches_at_least_min_fetch_then_serves_from_blocks() -> None:
    cache, fetcher = make(DATA, 10_000, min_fetch=4096)
    assert cache.read(1000, 10) == DATA[1000:1010]
    assert fetcher.calls == [(1000, 1000 + 4096)]
    # anything inside that block is served without a fetch
    assert cache.read(1000, 4096) == DATA[1000:5096]
    assert cache.read(3000, 50) == DATA[3000:3050]
    assert len(fetcher.calls) == 1
    # a read larger than min_fetch fetches exactly what was asked
    assert cache.read(20_000, 10_000) == DATA[20_000:30_000]
    assert fetcher.calls[-1] == (20_000, 30_000)
    assert cache.block_bytes == 4096 + 10_000


def test_read_spanning_into_the_tail_never_refetches_it() -> None:
    cache, fetcher = make(DATA, 10_000, min_fetch=4096)
    assert cache.read(88_000, 5000) == DATA[88_000:93_000]
    assert fetcher.calls == [(88_000, 90_000)]  # stops where the tail starts
    assert cache.read(89_000, 500) == DATA[89_000:89_500]
    assert len(fetcher.calls) == 1  # from the remembered block
    # a read straddling a block and the tail fetches only the part before the tail
    assert cache.read(89_999, 100) == DATA[89_999:90_099]
    assert fetcher.calls[-1] == (89_999, 90_000)


def test_lru_bound_holds_and_big_fetches_are_not_remembered() -> None:
    cache, fetcher = make(DATA, 1000, min_fetch=1000, max_bytes=4000)
    for pos in range(0, 20_000, 1000):
        assert cache.read(pos, 1) == DATA[pos : pos + 1]
        assert cache.block_bytes <= 4000
    assert cache.block_count == 4 and len(fetcher.calls) == 20
    # the most recent blocks are kept, the oldest were dropped
    cache.read(19_000, 1)
    assert len(fetcher.calls) == 20
    cache.read(0, 1)
    assert len(fetcher.calls) == 21
    # a read hit moves its block to the end: 16000 (hit) survives the next two misses
    cache.read(16_000, 1)
    cache.read(30_000, 1)
    cache.read(31_000, 1)
    n = len(fetcher.calls)
    cache.read(16_000, 1)
    assert len(fetcher.calls) == n
    # more than max_bytes // 4 is fetched but not remembered
    before = cache.block_bytes
    assert cache.read(40_000, 1001) == DATA[40_000:41_001]
    assert cache.read(40_000, 1001) == DATA[40_000:41_001]
    assert fetcher.calls[-2:] == [(40_000, 41_001)] * 2
    assert cache.block_bytes == before


def test_fetcher_returning_the_wrong_length_is_an_error() -> None:
    cache, _ = make(DATA, 1000, min_fetch=100, short_by=1, name="mem://x")
    with pytest.raises(carton.CartonRuntimeError, match="mem://x: asked for bytes") as err:
        cache.read(0, 10)
    assert err.value.code == "E-RUNTIME-HTTP"
    assert cache.block_count == 0


def test_cache_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        TailBlockCache(MemFetcher(DATA), len(DATA), 10, DATA[11:])
    cache, _ = make(DATA, 100)
    with pytest.raises(ValueError):
        cache.read(-1, 5)


def test_whole_file_in_the_tail() -> None:
    cache, fetcher = make(DATA[:500], 1000)
    f = RangeFile(cache, 500)
    assert f.read() == DATA[:500] and fetcher.calls == []


def test_range_file_seek_tell_readinto() -> None:
    cache, _ = make(DATA, 10_000, min_fetch=1000)
    f = RangeFile(cache, len(DATA))
    assert f.readable() and f.seekable() and not f.writable()
    assert f.tell() == 0
    assert f.seek(10) == 10 and f.read(5) == DATA[10:15] and f.tell() == 15
    assert f.seek(5, io.SEEK_CUR) == 20 and f.read(1) == DATA[20:21]
    assert f.seek(-3, io.SEEK_END) == len(DATA) - 3 and f.read() == DATA[-3:]
    assert f.read(10) == b"" and f.tell() == len(DATA)
    f.seek(len(DATA) + 50)  # past the end: reads give nothing
    assert f.read(1) == b"" and f.tell() == len(DATA) + 50
    with pytest.raises(ValueError):
        f.seek(-1)
    with pytest.raises(ValueError):
        f.seek(0, 7)
    buf = bytearray(8)
    f.seek(100)
    assert f.readinto(buf) == 8 and bytes(buf) == DATA[100:108] and f.tell() == 108
    f.seek(len(DATA) - 2)
    buf = bytearray(b"\0" * 8)
    assert f.readinto(memoryview(buf)) == 2 and bytes(buf[:2]) == DATA[-2:] and bytes(buf[2:]) == b"\0" * 6
    f.seek(0)
    assert f.readall() == DATA
    f.seek(0)
    assert io.BufferedReader(f, 4096).read(3000) == DATA[:3000]  # usable as a raw stream


def test_range_file_threads_share_one_file() -> None:
    cache, _ = make(DATA, 1000, min_fetch=512)
    f = RangeFile(cache, len(DATA))
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(50):
                pos = (k * 7919 + i * 613) % len(DATA)
                with f._lock:  # seek+read as one step, as the zip reader's callers do
                    f.seek(pos)
                    got = f.read(300)
                assert got == DATA[pos : pos + 300]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=5000),
    tail=st.integers(0, 6000),
    min_fetch=st.integers(1, 2000),
    max_bytes=st.integers(0, 8000),
    reads=st.lists(st.tuples(st.integers(0, 5200), st.integers(0, 3000)), max_size=25),
)
def test_random_reads_return_the_data(data: bytes, tail: int, min_fetch: int, max_bytes: int, reads: list[tuple[int, int]]) -> None:
    cache, fetcher = make(data, tail, min_fetch=min_fetch, max_bytes=max_bytes)
    f = RangeFile(cache, len(data))
    for pos, n in reads:
        assert cache.read(pos, n) == data[pos : pos + n]
        f.seek(pos)
        assert f.read(n) == data[pos : pos + n]
        assert cache.block_bytes <= max_bytes
    # the tail is never fetched again
    assert all(end <= cache.tail_start for _, end in fetcher.calls)


# -- HTTP: the injected opener -------------------------------------------------------------------


class CountingOpener:
    def __init__(self) -> None:
        self.inner = urllib.request.build_opener()
        self.ranges: list[str | None] = []

    def open(self, request: Any, data: Any = None, timeout: float = 60) -> Any:
        self.ranges.append(request.get_header("Range"))
        return self.inner.open(request, data, timeout)


def test_http_range_file_uses_the_injected_opener(server: Server) -> None:
    data = os.urandom(300_000)
    url = server.add("injected.bin", data)
    opener = CountingOpener()
    f = HttpRangeFile(url, tail_bytes=1000, min_fetch=2000, opener=opener)
    assert f.url == url and f.size == len(data)
    assert opener.ranges == ["bytes=-1000"] and f.requests == 1 and f.bytes_fetched == 1000
    f.seek(500)
    assert f.read(10) == data[500:510]
    assert f.read(10) == data[510:520]  # from the block
    assert opener.ranges == ["bytes=-1000", "bytes=500-2499"]
    assert f.requests == 2 and f.bytes_fetched == 3000
    assert len(server.requests_for("injected.bin")) == 2
    f.seek(-1500, os.SEEK_END)
    assert f.read() == data[-1500:]
    assert opener.ranges[-1] == f"bytes={len(data) - 1500}-{len(data) - 1001}"


def test_http_range_fetcher_checks_what_it_is_given(server: Server) -> None:
    data = os.urandom(5000)
    url = server.add("fetcher.bin", data)
    fetcher = HttpRangeFetcher(url)
    assert fetcher.fetch_tail(100) == (4900, data[-100:], 5000) and fetcher.size == 5000
    assert fetcher.fetch(10, 20) == data[10:20]
    assert fetcher.requests == 2 and fetcher.bytes_fetched == 110
    with pytest.raises(carton.CartonRuntimeError, match="416"):
        fetcher.fetch(6000, 6001)
    lying = HttpRangeFetcher(server.add("lying/fetcher.bin", data))
    with pytest.raises(carton.CartonRuntimeError, match="asked for bytes 10-19 of"):
        lying.fetch(10, 20)
