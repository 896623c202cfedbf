"""The deterministic streaming zip writer (carton_format._zip.writer)."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carton_format._zip.reader import ZipReader
from carton_format._zip.records import CENTRAL_STRUCT, EOCD_STRUCT, LOCAL_STRUCT
from carton_format._zip.writer import ZipWriter
from carton_format.errors import CartonFormatError

METHODS = (0, 8, 93)


def write(members: list[tuple[str, bytes, int]], **kwargs: object) -> bytes:
    buf = io.BytesIO()
    w = ZipWriter(buf, **kwargs)  # type: ignore[arg-type]
    for name, data, method in members:
        w.add_bytes(name, data, method=method)
    w.close()
    return buf.getvalue()


def read_all(data: bytes) -> dict[str, bytes]:
    with ZipReader(io.BytesIO(data)) as r:
        r.check_layout()
        return {e.name: r.read_member(e.name, 1 << 40) for e in r.entries}


def local_payload(data: bytes, name: str) -> bytes:
    """The raw (compressed) bytes of a member, located via our reader."""
    with ZipReader(io.BytesIO(data)) as r:
        e = r.get(name)
        assert e is not None
        fields = LOCAL_STRUCT.unpack_from(data, e.header_offset)
        start = e.header_offset + 30 + fields[9] + fields[10]
        return data[start : start + e.compressed_size]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [0, 1, 1000, 3 * 1024 * 1024 + 7])
@pytest.mark.spec("FMT-ZIP-11")
def test_round_trip(method: int, size: int) -> None:
    payload = os.urandom(size // 2) + bytes(size - size // 2)
    buf = io.BytesIO()
    w = ZipWriter(buf)
    result = w.add_bytes("model/data.bin", payload, method=method)
    w.close()
    assert result.sha256 == hashlib.sha256(payload).hexdigest()
    assert result.crc32 == zlib.crc32(payload)
    assert result.size == size
    assert result.method == method
    assert read_all(buf.getvalue()) == {"model/data.bin": payload}
    if method != 93:  # CPython < 3.14 has no zstd: cross-check the others with it
        assert zipfile.ZipFile(io.BytesIO(buf.getvalue())).read("model/data.bin") == payload


def test_stored_members_are_plain_copies() -> None:
    payload = os.urandom(5000)
    data = write([("a", payload, 0)])
    assert local_payload(data, "a") == payload


@pytest.mark.parametrize("content_size", [True, False])
@pytest.mark.spec("FMT-ZIP-13")
def test_zstd_frames_with_and_without_content_size(content_size: bool) -> None:
    payload = b"carton " * 10000
    buf = io.BytesIO()
    w = ZipWriter(buf)
    w.add_bytes("a", payload, method=93, zstd_content_size=content_size)
    w.add_stream("b", io.BytesIO(payload), method=93, zstd_content_size=content_size)  # no size: never
    w.close()
    params = zstandard.get_frame_parameters(local_payload(buf.getvalue(), "a"))
    assert params.content_size == (len(payload) if content_size else zstandard.CONTENTSIZE_UNKNOWN)
    params = zstandard.get_frame_parameters(local_payload(buf.getvalue(), "b"))
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert read_all(buf.getvalue()) == {"a": payload, "b": payload}


def test_levels() -> None:
    payload = b"abcdefgh" * 50000
    buf = io.BytesIO()
    w = ZipWriter(buf)
    r1 = w.add_bytes("z1", payload, method=93, level=1)
    r19 = w.add_bytes("z19", payload, method=93, level=19)
    r0 = w.add_bytes("d0", payload, method=8, level=0)
    w.close()
    assert r0.compressed_size > len(payload)  # level 0: deflate stored blocks
    assert r1.compressed_size >= r19.compressed_size
    assert read_all(buf.getvalue()) == {"z1": payload, "z19": payload, "d0": payload}


@pytest.mark.spec("FMT-ZIP-2", "FMT-WRITE-3", "FMT-WRITE-5")
def test_fixed_fields() -> None:
    data = write([("plain.txt", b"x", 0), ("model/täst.txt", b"y", 8)])
    off = 0
    for name in ("plain.txt", "model/täst.txt"):
        sig, needed, flags, method, mtime, mdate, *_rest, nlen, xlen = LOCAL_STRUCT.unpack_from(data, off)
        assert (mtime, mdate, xlen) == (0, 0x21, 0)
        assert flags == (0 if name.isascii() else 0x800)
        off += 30 + nlen + xlen + _rest[1]
    cd = data.index(b"PK\x01\x02")
    fields = CENTRAL_STRUCT.unpack_from(data, cd)
    made_by, needed, flags, method, mtime, mdate = fields[1:7]
    assert made_by >> 8 == 3 and (mtime, mdate) == (0, 0x21)
    assert fields[15] == 0o100644 << 16  # external_attr
    assert fields[11] == 0 and fields[12] == 0  # no extra, no comment
    eocd = EOCD_STRUCT.unpack_from(data, len(data) - 22)
    assert eocd[0] == 0x06054B50 and eocd[-1] == 0  # EOCD last, no comment


@pytest.mark.spec("FMT-WRITE-1")
def test_deterministic(tmp_path: Path) -> None:
    payload = os.urandom(100_000)
    src = tmp_path / "src.bin"
    src.write_bytes(payload)

    def once() -> bytes:
        buf = io.BytesIO()
        w = ZipWriter(buf)
        for m in METHODS:
            w.add_bytes(f"b{m}", payload, method=m)
            w.add_file(f"f{m}", src, method=m)
            w.add_stream(f"s{m}", io.BytesIO(payload), method=m)
        w.add_symlink("model/link", "../model/x")
        w.close()
        return buf.getvalue()

    assert once() == once()


def test_stream_without_size_hint_reserves_zip64_in_the_local_header() -> None:
    payload = os.urandom(1000)
    buf = io.BytesIO()
    w = ZipWriter(buf)
    w.add_stream("a", io.BytesIO(payload), method=0)
    w.close()
    data = buf.getvalue()
    fields = LOCAL_STRUCT.unpack_from(data, 0)
    assert fields[7] == fields[8] == 0xFFFFFFFF and fields[10] == 20
    usize, csize = struct.unpack_from("<QQ", data, 30 + 1 + 4)
    assert usize == csize == 1000
    assert b"PK\x06\x06" not in data[-100:]  # small archive: no zip64 end records
    assert read_all(data) == {"a": payload}
    assert zipfile.ZipFile(io.BytesIO(data)).read("a") == payload


@pytest.mark.spec("FMT-ZIP-6")
def test_force_zip64() -> None:
    members = [(f"m{m}", os.urandom(3000), m) for m in METHODS]
    data = write(members, force_zip64=True)
    r = ZipReader(io.BytesIO(data))
    assert r.zip64
    eocd = EOCD_STRUCT.unpack_from(data, len(data) - 22)
    assert eocd[3:7] == (0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    assert read_all(data) == {n: d for n, d, _ in members}
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.read("m0") == members[0][1] and z.read("m8") == members[1][1]


@pytest.mark.spec("FMT-WRITE-3", "FMT-WRITE-4", "FMT-ZIP-21")
def test_add_file_and_symlink(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    payload = os.urandom(70_000)
    path.write_bytes(payload)
    buf = io.BytesIO()
    w = ZipWriter(buf)
    res = w.add_file("model/weights.bin", path, method=93)
    link = w.add_symlink("model/sub/link", "../weights.bin")
    w.close()
    assert res.sha256 == hashlib.sha256(payload).hexdigest()
    assert link.sha256 == hashlib.sha256(b"../weights.bin").hexdigest()
    r = ZipReader(io.BytesIO(buf.getvalue()))
    entry = r.get("model/sub/link")
    assert entry is not None and entry.is_symlink and entry.method == 0
    assert entry.external_attr == 0o120777 << 16
    assert r.resolve_symlink("model/sub/link") == "model/weights.bin"
    assert r.open_resolved("model/sub/link").read() == payload
    assert r.read_member("model/sub/link", 100) == b"../weights.bin"


def test_missing_file_is_an_io_error(tmp_path: Path) -> None:
    w = ZipWriter(io.BytesIO())
    with pytest.raises(CartonFormatError) as info:
        w.add_file("a", tmp_path / "nope", method=0)
    assert info.value.code == "E-IO"


@pytest.mark.parametrize(
    ("name", "target"),
    [("misc/link", "x"), ("model/link", "/etc/passwd"), ("model/link", "../../etc/passwd"), ("model/link", ""),
     ("model/link", "..\\x"), ("model/link", "dir/"), ("model/link", ".."), ("model/a/link", "../../x")],
)
@pytest.mark.spec("FMT-ZIP-20", "FMT-ZIP-21")
def test_bad_symlinks_are_refused(name: str, target: str) -> None:
    w = ZipWriter(io.BytesIO())
    with pytest.raises(CartonFormatError) as info:
        w.add_symlink(name, target)
    assert info.value.code == "E-ARG-INVALID"


@pytest.mark.parametrize("name", ["../x", "/x", "a//b", "a\\b", "", "a/"])
@pytest.mark.spec("FMT-PATH-1", "FMT-PATH-2")
def test_unsafe_names_are_refused(name: str) -> None:
    w = ZipWriter(io.BytesIO())
    with pytest.raises(CartonFormatError) as info:
        w.add_bytes(name, b"", method=0)
    assert info.value.code == "E-PATH-UNSAFE"


@pytest.mark.parametrize(("first", "second"), [("a", "a"), ("A.txt", "a.TXT"), ("caf\u00e9", "cafe\u0301"), ("a", "a/b"), ("a/b", "a")])
@pytest.mark.spec("FMT-ZIP-17")
def test_colliding_names_are_refused(first: str, second: str) -> None:
    w = ZipWriter(io.BytesIO())
    w.add_bytes(first, b"1", method=0)
    with pytest.raises(CartonFormatError) as info:
        w.add_bytes(second, b"2", method=0)
    assert info.value.code == "E-ZIP-DUPLICATE"


@pytest.mark.spec("FMT-ZIP-11")
def test_bad_method_and_closed_writer() -> None:
    buf = io.BytesIO()
    w = ZipWriter(buf)
    with pytest.raises(CartonFormatError) as info:
        w.add_bytes("a", b"", method=12)
    assert info.value.code == "E-ARG-INVALID"
    w.close()
    w.close()  # idempotent
    with pytest.raises(CartonFormatError) as info:
        w.add_bytes("a", b"", method=0)
    assert info.value.code == "E-ARG-INVALID"
    assert read_all(buf.getvalue()) == {}
    assert buf.getvalue() == EOCD_STRUCT.pack(0x06054B50, 0, 0, 0, 0, 0, 0, 0)


def test_file_must_start_at_zero() -> None:
    buf = io.BytesIO(b"prefix")
    buf.seek(6)
    with pytest.raises(CartonFormatError) as info:
        ZipWriter(buf)
    assert info.value.code == "E-ARG-INVALID"


@pytest.mark.parametrize("method", METHODS)
def test_wrong_size_hint_rolls_the_member_back(method: int) -> None:
    buf = io.BytesIO()
    w = ZipWriter(buf)
    w.add_bytes("first", b"kept", method=0)
    size_before = len(buf.getvalue())
    with pytest.raises(CartonFormatError) as info:
        w.add_stream("bad", io.BytesIO(b"x" * 1000), method=method, size_hint=10)
    assert info.value.code == "E-ARG-INVALID"
    assert len(buf.getvalue()) == size_before
    w.add_bytes("bad", b"retry works", method=method)
    w.close()
    assert read_all(buf.getvalue()) == {"first": b"kept", "bad": b"retry works"}


def test_source_errors_roll_back_and_propagate() -> None:
    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: object) -> int:
            raise OSError(5, "Input/output error")

    buf = io.BytesIO()
    w = ZipWriter(buf)
    with pytest.raises(CartonFormatError) as info:
        w.add_stream("a", Failing(), method=0)
    assert info.value.code == "E-IO"
    w.close()
    assert read_all(buf.getvalue()) == {}


def test_source_without_readinto() -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._src = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._src.read(min(n, 1000))

    payload = os.urandom(10_000)
    buf = io.BytesIO()
    w = ZipWriter(buf)
    for m in METHODS:
        w.add_stream(f"m{m}", ReadOnly(payload), method=m)  # type: ignore[arg-type]
    w.close()
    assert read_all(buf.getvalue()) == {f"m{m}": payload for m in METHODS}


class _Pattern(io.RawIOBase):
    """A large lazily generated source (never held in memory)."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._block = bytes(range(256)) * 4096

    def readable(self) -> bool:
        return True

    def readinto(self, b: object) -> int:
        view = memoryview(b).cast("B")  # type: ignore[arg-type]
        n = min(len(view), self._left, len(self._block))
        view[:n] = self._block[:n]
        self._left -= n
        return n


class _CountingSink(io.RawIOBase):
    """A seekable sink that keeps only a size, so memory measures the writer alone."""

    def __init__(self) -> None:
        self._pos = 0
        self._size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        n = memoryview(b).nbytes  # type: ignore[arg-type]
        self._pos += n
        self._size = max(self._size, self._pos)
        return n

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else (self._size + pos if whence == 2 else self._pos + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        self._size = self._pos if size is None else size
        return self._size


@pytest.mark.parametrize("method", METHODS)
def test_peak_memory_is_flat(method: int) -> None:
    size = 48 * 1024 * 1024
    tracemalloc.start()
    try:
        w = ZipWriter(_CountingSink())
        result = w.add_stream("big", _Pattern(size), method=method, size_hint=size)
        w.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == size
    assert peak < 16 * 1024 * 1024, peak


_name_part = st.text(
    alphabet=st.sampled_from("abcXYZ019_-.é日ß"), min_size=1, max_size=8
).filter(lambda p: p not in (".", ".."))
_names = st.lists(_name_part, min_size=1, max_size=3).map("/".join)


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(_names, st.binary(max_size=3000), st.sampled_from(METHODS), st.booleans()),
        max_size=6,
    )
)
@pytest.mark.spec("FMT-WRITE-1")
def test_write_read_identity_and_determinism(members: list[tuple[str, bytes, int, bool]]) -> None:
    from carton_format._paths import collision_key

    def conflict(a: str, b: str) -> bool:
        ka, kb = collision_key(a), collision_key(b)
        return ka == kb or ka.startswith(kb + "/") or kb.startswith(ka + "/")

    unique: list[tuple[str, bytes, int, bool]] = []
    for candidate in members:
        if not any(conflict(candidate[0], kept[0]) for kept in unique):
            unique.append(candidate)

    def once() -> bytes:
        buf = io.BytesIO()
        w = ZipWriter(buf)
        for name, payload, method, content_size in unique:
            w.add_bytes(name, payload, method=method, zstd_content_size=content_size)
        w.close()
        return buf.getvalue()

    data = once()
    assert data == once()
    assert read_all(data) == {name: payload for name, payload, _, _ in unique}


def test_zip64_central_extras_carry_both_sizes() -> None:
    """Even when only the offset overflows, the extra holds both sizes first (fixed-layout readers)."""
    from carton_format._zip import writer as zw

    buf = io.BytesIO()
    w = ZipWriter(buf)
    w.add_bytes("small", b"abc", method=0)
    # pretend the member lies beyond 4 GiB: only the central directory is written from records
    rec = w._records[0]
    w._records[0] = zw._Record(**{**rec.__dict__, "header_offset": 5 << 30})
    w.close()
    data = buf.getvalue()
    cd = data.index(b"PK\x01\x02")
    fields = CENTRAL_STRUCT.unpack_from(data, cd)
    assert fields[8] == fields[9] == fields[16] == 0xFFFFFFFF  # csize, usize, offset
    extra = data[cd + 46 + fields[10] : cd + 46 + fields[10] + fields[11]]
    assert struct.unpack("<HHQQQ", extra) == (1, 24, 3, 3, 5 << 30)
    assert fields[2] == 45  # version needed


@pytest.mark.spec("FMT-LIMIT-1")
def test_writer_misc_errors() -> None:
    class Unseekable(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def tell(self) -> int:
            raise io.UnsupportedOperation("not seekable")

    with pytest.raises(CartonFormatError) as info:
        ZipWriter(Unseekable())
    assert info.value.code == "E-ARG-INVALID"
    w = ZipWriter(io.BytesIO())
    with pytest.raises(CartonFormatError) as info:
        w.add_bytes(b"bytes-name", b"", method=0)  # type: ignore[arg-type]
    assert info.value.code == "E-ARG-INVALID"
    from carton_format.limits import Limits

    w = ZipWriter(io.BytesIO(), limits=Limits(max_entries=2))
    w.add_bytes("a", b"", method=0)
    w.add_bytes("b", b"", method=0)
    with pytest.raises(CartonFormatError) as info:
        w.add_bytes("c", b"", method=0)
    assert info.value.code == "E-LIMIT-ENTRY-COUNT"


def test_context_manager() -> None:
    buf = io.BytesIO()
    with ZipWriter(buf) as w:
        w.add_bytes("a", b"1", method=8)
    assert read_all(buf.getvalue()) == {"a": b"1"}
    buf = io.BytesIO()
    with pytest.raises(RuntimeError):
        with ZipWriter(buf) as w:
            w.add_bytes("a", b"1", method=8)
            raise RuntimeError("boom")
    assert b"PK\x05\x06" not in buf.getvalue()  # no central directory for a failed write
    with pytest.raises(CartonFormatError):
        w.close()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CARTON_TEST_ZIP64_REAL"), reason="writes 4+ GiB; set CARTON_TEST_ZIP64_REAL=1")
def test_real_zip64_archive(tmp_path: Path) -> None:
    """A member of more than 4 GiB and one beyond the 4 GiB offset, written and read back."""
    size = (4 << 30) + 4096
    path = tmp_path / "big.zip"
    with open(path, "wb") as f:
        w = ZipWriter(f)
        big = w.add_stream("model/big.bin", _Pattern(size), method=0, size_hint=size)
        small = w.add_bytes("model/after.txt", b"after", method=93)
        zbig = w.add_stream("model/zeros.bin", _Zeros(size), method=93)
        w.close()
    from carton_format.limits import Limits

    with ZipReader.open_path(path, limits=Limits(max_compression_ratio=100_000)) as r:  # zeros: ~32000:1
        assert r.zip64
        assert r.get("model/after.txt").header_offset > 0xFFFFFFFF  # type: ignore[union-attr]
        for name, result in (("model/big.bin", big), ("model/zeros.bin", zbig)):
            h = hashlib.sha256()
            with r.open(name) as s:
                while chunk := s.read(4 << 20):
                    h.update(chunk)
            assert h.hexdigest() == result.sha256
        assert r.read_member("model/after.txt", 10) == b"after" and small.size == 5
        r.check_layout()
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("model/big.bin").file_size == size


class _Zeros(_Pattern):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._block = bytes(len(self._block))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.spec("FMT-WRITE-1")
def test_output_does_not_depend_on_how_the_source_is_chunked(method: int) -> None:
    payload = os.urandom(600_000) + b"abc" * 300_000

    class Dribble:
        def __init__(self, data: bytes, step: int) -> None:
            self._src, self._step = io.BytesIO(data), step

        def read(self, n: int = -1) -> bytes:
            return self._src.read(min(n, self._step))

    outputs = set()
    for step in (1000, 300_000, 1 << 30):
        buf = io.BytesIO()
        w = ZipWriter(buf)
        w.add_stream("a", Dribble(payload, step), method=method, size_hint=len(payload))  # type: ignore[arg-type]
        w.close()
        outputs.add(buf.getvalue())
    assert len(outputs) == 1
