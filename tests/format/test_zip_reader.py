"""The strict zip reader (carton_format._zip.reader): archives from the original implementation,
every hostile input of archive-security.md 2.7 rows 1-18, symlinks, I/O budget, fuzzing."""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carton_conformance.gen import zipcraft as zc
from carton_format._paths import portability_problem
from carton_format._zip.reader import ZipEntry, ZipReader
from carton_format._zip.writer import ZipWriter
from carton_format.errors import CartonFormatError
from carton_format.limits import Limits

DATA = Path(__file__).resolve().parents[1] / "data"
ORIGINAL = DATA / "original" / "test.carton"
BIG = 1 << 40

# CRC-32 of each member of the original's test.carton, from its central directory, and the
# MANIFEST sha256 the original's own tests assert.
ORIGINAL_MANIFEST_SHA256 = "f1cae5143a92a44e3a7e1d9c32a0245065dfb6e0f1e91c18b5e44356d081dfb5"


def reader(data: bytes, **kwargs: object) -> ZipReader:
    return ZipReader(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]


def read_everything(r: ZipReader) -> dict[str, bytes]:
    """Everything a deep validation does: every member to its end, symlinks, layout."""
    out = {}
    for e in r.entries:
        out[e.name] = r.read_member(e, BIG)
        if e.is_symlink:
            r.resolve_symlink(e.name)
    r.check_layout()
    return out


def code_of(data: bytes, *, limits: Limits | None = None, deep: bool = True) -> str | None:
    """The error code raised by opening (and, if ``deep``, fully reading) ``data``; None if fine."""
    try:
        r = reader(data, limits=limits) if limits else reader(data)
        if deep:
            read_everything(r)
    except CartonFormatError as exc:
        assert "internal error" not in exc.message, exc
        return exc.code
    return None


def good_members() -> list[zc.Member]:
    return [
        zc.member("carton.toml", b'spec_version = 1\nmodel_name = "x"\n', zc.ZSTD, zstd_content_size=False),
        zc.member("model/model.pt", random.Random(1).randbytes(5000), zc.STORED),
        zc.member("misc/notes.txt", b"hello " * 500, zc.DEFLATE),
        zc.member("tensor_data/t.bin", bytes(4000), zc.ZSTD),
        zc.member("MANIFEST", b"carton.toml=" + b"0" * 64 + b"\n", zc.STORED),
    ]


def good() -> bytes:
    return zc.build(good_members())


@pytest.mark.spec("FMT-ZIP-11", "FMT-ZIP-13")
def test_crafted_good_archive_reads() -> None:
    members = good_members()
    r = reader(good())
    assert r.names() == [m.name for m in members]
    assert read_everything(r) == {m.name: m.plain for m in members}


# -- the original implementation's archive ---------------------------------------------------


@pytest.mark.spec("FMT-ZIP-13", "FMT-ZIP-15", "FMT-ZIP-19", "FMT-ZIP-22")
def test_original_archive_reads_with_correct_crcs() -> None:
    with ZipReader.open_path(ORIGINAL) as r:
        assert r.read_calls == 1  # one tail read holds EOCD + central directory
        assert r.bytes_read <= 64 * 1024 + 22
        names = r.names()
        assert names[0] == "carton.toml" and names[-1] == "MANIFEST"
        assert len(names) == 12
        contents = read_everything(r)  # raises on any CRC or size mismatch
        for e in r.entries:
            assert zlib.crc32(contents[e.name]) == e.crc32
            assert len(contents[e.name]) == e.uncompressed_size
        assert {e.method for e in r.entries} == {0, 93}
        assert hashlib.sha256(contents["MANIFEST"]).hexdigest() == ORIGINAL_MANIFEST_SHA256
        for line in contents["MANIFEST"].decode().splitlines():
            path, sha = line.rsplit("=", 1)
            if path in contents:
                assert hashlib.sha256(contents[path]).hexdigest() == sha, path
        # its zstd frames have no content size (the original's streaming encoder)
        toml = r.get("carton.toml")
        assert toml is not None and toml.create_system == 3 and toml.external_attr == 0


@pytest.mark.spec("FMT-READ-1")
def test_original_archive_metadata_reads_touch_little() -> None:
    """Open + carton.toml + MANIFEST: the tail read plus one read per (small) member."""
    with ZipReader.open_path(ORIGINAL) as r:
        r.read_member("carton.toml", 1 << 20)
        r.read_member("MANIFEST", 1 << 20)
        assert r.read_calls == 3
        assert r.bytes_read < 64 * 1024 + 22 + 2 * (1024 + 64 + 1000)


# -- I/O budget over a generic (non-FileIO) file object ----------------------------------------


class CountingFile(io.RawIOBase):
    """A seekable file object that counts reads, like a remote range-request file."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.reads = 0
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else (len(self._data) + pos if whence == 2 else self._pos + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        end = len(self._data) if n < 0 else self._pos + n
        out = self._data[self._pos : end]
        self._pos += len(out)
        self.bytes += len(out)
        return out

    def readinto(self, b: object) -> int:
        data = self.read(memoryview(b).nbytes)  # type: ignore[arg-type]
        memoryview(b)[: len(data)] = data  # type: ignore[index]
        return len(data)


@pytest.mark.spec("FMT-READ-1")
def test_opening_reads_only_the_tail() -> None:
    # 20 members of 100 KiB: the central directory is in the 64 KiB tail, the data is not
    members = [zc.member(f"model/f{i}", os.urandom(100_000)) for i in range(20)]
    data = zc.build(members)
    f = CountingFile(data)
    r = ZipReader(f)
    assert f.reads == r.read_calls == 1
    assert f.bytes == r.bytes_read == 64 * 1024 + 22
    assert r.read_member("model/f3", BIG) == members[3].plain
    assert r.read_calls == 2  # local header and the whole 100 KB member in one read


def test_big_central_directory_costs_one_more_read() -> None:
    members = [zc.member(f"model/{'x' * 200}{i}", b"") for i in range(400)]  # ~100 KiB of CD
    data = zc.build(members)
    f = CountingFile(data)
    r = ZipReader(f)
    assert r.read_calls == 2
    assert len(r.entries) == 400


def test_large_stored_member_reads_in_big_chunks() -> None:
    payload = os.urandom(6 * 1024 * 1024)
    data = zc.build([zc.member("big", payload)])
    f = CountingFile(data)
    r = ZipReader(f)
    with r.open("big") as s:
        chunks = []
        while chunk := s.read(4 * 1024 * 1024):
            chunks.append(chunk)
    assert b"".join(chunks) == payload
    assert r.read_calls <= 4


# -- streams -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [zc.STORED, zc.DEFLATE, zc.ZSTD])
@pytest.mark.spec("FMT-ZIP-11", "FMT-ZIP-13")
def test_stream_api(method: int) -> None:
    payload = os.urandom(300_000) + bytes(3_000_000)
    data = zc.build([zc.member("m", payload, method)])
    r = reader(data)
    with r.open("m") as s:
        assert s.readable()
        assert s.read(0) == b""
        head = s.read(10)
        buf = bytearray(100_000)
        n = s.readinto(buf)
        rest = s.read()
        assert s.read() == b"" and s.read(5) == b""
    assert head + bytes(buf[:n]) + rest == payload
    assert n == 100_000
    with r.open(r.entries[0]) as s:
        assert io.BufferedReader(s).read() == payload  # type: ignore[arg-type]


@pytest.mark.spec("FMT-ZIP-13")
def test_zstd_multiple_frames_and_skippable_frames() -> None:
    a, b = os.urandom(1000), b"z" * 100_000
    frames = zc.compress(a, zc.ZSTD) + b"\x50\x2a\x4d\x18\x03\x00\x00\x00abc" + zc.compress(b, zc.ZSTD, zstd_content_size=False)
    data = zc.build([zc.Member("m", payload=frames, plain=a + b, method=zc.ZSTD)])
    assert read_everything(reader(data)) == {"m": a + b}


@pytest.mark.spec("FMT-ZIP-13")
def test_zstd_with_checksum() -> None:
    plain = b"check" * 1000
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(plain)
    assert read_everything(reader(zc.build([zc.Member("m", payload=frame, plain=plain, method=zc.ZSTD)]))) == {"m": plain}
    cut = zc.build([zc.Member("m", payload=frame[:-4], plain=plain, method=zc.ZSTD)])
    assert code_of(cut) == "E-ZIP-CORRUPT-DATA"


@pytest.mark.spec("FMT-LIMIT-5")
def test_read_member_refuses_before_reading() -> None:
    r = reader(zc.build([zc.member("m", b"x" * 1000)]))
    calls = r.read_calls
    with pytest.raises(CartonFormatError) as info:
        r.read_member("m", 999)
    assert info.value.code == "E-LIMIT-MEMBER-SIZE" and info.value.member == "m"
    assert r.read_calls == calls
    assert r.read_member("m", 1000) == b"x" * 1000


def test_unknown_member_and_foreign_entry() -> None:
    r = reader(good())
    assert r.get("nope") is None
    for bad in ("nope", ZipEntry("MANIFEST", 0, 0, 0, 0, 0, 0, 0, 3, False, False)):
        with pytest.raises(CartonFormatError) as info:
            r.open(bad)
        assert info.value.code == "E-ARG-INVALID"


def test_closed_reader() -> None:
    r = reader(good())
    r.close()
    with pytest.raises(CartonFormatError):
        r.read_member("MANIFEST", BIG)


def test_open_path_errors(tmp_path: Path) -> None:
    with pytest.raises(CartonFormatError) as info:
        ZipReader.open_path(tmp_path / "missing.carton")
    assert info.value.code == "E-IO"
    bad = tmp_path / "bad.carton"
    bad.write_bytes(b"not a zip at all, clearly" * 3)
    with pytest.raises(CartonFormatError) as info:
        ZipReader.open_path(bad)
    assert info.value.code == "E-ZIP-NOT-ZIP"
    assert str(bad) in info.value.message


def test_io_errors_are_wrapped() -> None:
    class Broken(CountingFile):
        def read(self, n: int = -1) -> bytes:
            raise OSError(5, "Input/output error")

    with pytest.raises(CartonFormatError) as info:
        ZipReader(Broken(good()))
    assert info.value.code == "E-IO"


@pytest.mark.spec("FMT-ZIP-19")
def test_directory_entries_are_tolerated() -> None:
    data = zc.build([zc.member("model/", b"", external_attr=zc.unix_attr(zc.S_IFDIR | 0o755)), zc.member("model/a", b"a")])
    r = reader(data)
    entry = r.get("model/")
    assert entry is not None and entry.is_dir
    assert read_everything(r) == {"model/": b"", "model/a": b"a"}


@pytest.mark.spec("FMT-ZIP-16")
def test_non_ascii_names() -> None:
    data = zc.build([zc.member("model/日本.txt", b"a"), zc.member("model/é.txt", b"b", flags=0)])  # UTF-8, no flag
    assert read_everything(reader(data)) == {"model/日本.txt": b"a", "model/é.txt": b"b"}


@pytest.mark.spec("FMT-ZIP-8")
def test_data_descriptor_equal_to_the_central_directory_is_accepted() -> None:
    plain = b"descriptor" * 100
    for method in (zc.STORED, zc.DEFLATE, zc.ZSTD):
        payload = zc.compress(plain, method)
        crc = zlib.crc32(plain)
        for sig in (True, False):
            m = zc.Member(
                "m", payload=payload, plain=plain, method=method, flags=0x8,
                local_crc32=0, local_compressed_size=0, local_uncompressed_size=0,
                data_descriptor=zc.data_descriptor(crc, len(payload), len(plain), signature=sig),
            )
            data = zc.build([m, zc.member("n", b"next")])
            assert read_everything(reader(data)) == {"m": plain, "n": b"next"}


@pytest.mark.spec("FMT-ZIP-6", "FMT-ZIP-8")
def test_zip64_descriptor_and_extras() -> None:
    plain = os.urandom(2000)
    m = zc.Member(
        "m", payload=plain, plain=plain, zip64=True, flags=0x8, local_crc32=0,
        data_descriptor=zc.data_descriptor(zlib.crc32(plain), 2000, 2000, zip64=True),
    )
    data = zc.build([m, zc.member("n", b"x", zip64=True)], zip64_end=True)
    r = reader(data)
    assert r.zip64
    assert read_everything(r) == {"m": plain, "n": b"x"}


@pytest.mark.spec("FMT-ZIP-6")
def test_zip64_end_with_real_values_in_the_eocd() -> None:
    data = zc.build(good_members(), zip64_end=True, zip64_sentinels=False)
    assert code_of(data) is None


@pytest.mark.spec("FMT-ZIP-6")
def test_written_archives_pass_the_deep_check() -> None:
    buf = io.BytesIO()
    w = ZipWriter(buf, force_zip64=True)
    for m in (0, 8, 93):
        w.add_bytes(f"model/m{m}", os.urandom(1000), method=m)
    w.add_stream("model/s", io.BytesIO(b"stream"), method=93, zstd_content_size=False)
    w.add_symlink("model/link", "m0")
    w.close()
    assert code_of(buf.getvalue()) is None


# -- symlinks ------------------------------------------------------------------------------


def link(name: str, target: str) -> zc.Member:
    return zc.member(name, target.encode(), external_attr=zc.unix_attr(zc.S_IFLNK | 0o777))


@pytest.mark.spec("FMT-ZIP-21")
def test_symlink_chain_resolves_relative_to_the_link_directory() -> None:
    data = zc.build([
        zc.member("model/weights/real.bin", b"real"),
        link("model/a", "weights/real.bin"),
        link("model/sub/b", "../a"),
        link("model/sub/c", "./b"),
        link("model/d", "sub//c"),
    ])
    r = reader(data)
    for name in ("model/a", "model/sub/b", "model/sub/c", "model/d"):
        assert r.resolve_symlink(name) == "model/weights/real.bin"
        assert r.open_resolved(name).read() == b"real"
    assert r.resolve_symlink("model/weights/real.bin") == "model/weights/real.bin"
    assert r.open("model/a").read() == b"weights/real.bin"  # open() does not follow


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([link("model/a", "b"), link("model/b", "a")], "loop"),
        ([link("model/a", "a")], "loop"),
        ([link("model/a", "/etc/passwd")], "absolute"),
        ([link("model/a", "C:/x")], "absolute"),
        ([link("model/a", "../carton.toml"), zc.member("carton.toml", b"x")], "escapes model/"),
        ([link("model/a", "../../../etc/passwd")], "escapes"),
        ([link("model/a", "missing")], "does not exist"),
        ([link("model/a", "dir"), zc.member("model/dir/f", b"x")], "directory"),
        ([link("model/a", "dir"), zc.member("model/dir/", b"", external_attr=zc.unix_attr(zc.S_IFDIR))], "directory"),
        ([link("model/a", "f/")], "directory"),
        ([link("model/a", "")], "empty"),
        ([link("model/a", "x\\y")], "backslash"),
        ([zc.member("model/a", b"\xff\xfe", external_attr=zc.unix_attr(zc.S_IFLNK | 0o777))], "UTF-8"),
        ([zc.member("model/a", b"x" * 5000, external_attr=zc.unix_attr(zc.S_IFLNK | 0o777))], "longer"),
        ([link(f"model/l{i}", f"l{i + 1}") for i in range(45)] + [zc.member("model/l45", b"end")], "longer than 40"),
    ],
)
@pytest.mark.spec("FMT-ZIP-21")
def test_bad_symlinks(members: list[zc.Member], why: str) -> None:
    r = reader(zc.build(members))
    with pytest.raises(CartonFormatError) as info:
        r.resolve_symlink("model/a" if r.get("model/a") else "model/l0")
    assert info.value.code == "E-ZIP-SYMLINK"
    assert why in info.value.message
    assert info.value.member in ("model/a", "model/l0")


@pytest.mark.spec("FMT-ZIP-21")
def test_chain_of_40_links_resolves() -> None:
    members = [link(f"model/l{i}", f"l{i + 1}") for i in range(40)] + [zc.member("model/l40", b"end")]
    assert reader(zc.build(members)).open_resolved("model/l0").read() == b"end"


@pytest.mark.spec("FMT-ZIP-20")
def test_symlink_outside_model_is_rejected_at_open() -> None:
    assert code_of(zc.build([link("misc/a", "b"), zc.member("misc/b", b"")]), deep=False) == "E-ZIP-SYMLINK"


@pytest.mark.spec("FMT-ZIP-19")
def test_symlink_mode_needs_a_unix_creator() -> None:
    m = link("misc/a", "b")
    m.version_made_by = 0x0014  # MS-DOS: the mode bits mean nothing
    r = reader(zc.build([m]))
    assert not r.entries[0].is_symlink


# -- archive-security.md 2.7, rows 1-18 ------------------------------------------------------


def _truncated_eocd() -> bytes:
    return good()[:-5]


def _cd_size_zero_with_locals() -> bytes:
    built = zc.archive(good_members()).build()
    # the GuardDog trick: an end record that lists nothing, local entries still present
    return built.data[: built.cd_offset] + struct.pack("<IHHHHIIH", zc.EOCD_SIG, 0, 0, 0, 0, 0, built.cd_offset, 0)


def _patch_eocd(fmt_offset: int, fmt: str, value: int) -> Callable[[], bytes]:
    def make() -> bytes:
        built = zc.archive(good_members()).build()
        return zc.patch(built.data, built.eocd_offset + fmt_offset, fmt, value)

    return make


def _hidden_local_entry() -> bytes:
    ms = good_members()
    ms.insert(2, zc.member("model/hidden.py", b"import os", in_central=False))
    return zc.build(ms)


def _two_entries_one_header() -> bytes:
    ms = [zc.member("model/a", b"shared"), zc.member("model/b", b"other")]
    built = zc.archive(ms).build()
    # point b's central entry at a's local header (Fifield-style overlap)
    return zc.patch(built.data, built.central_offsets[1] + 42, "<I", 0)


def _member_runs_into_cd() -> bytes:
    return zc.build([zc.member("a", b"abc", compressed_size=10, uncompressed_size=10)])


def _offset_past_eof() -> bytes:
    return zc.build([zc.member("a", b"abc"), zc.member("b", b"x", header_offset=10**6)])


def _eocd_in_zip64_position(**kw: object) -> Callable[[], bytes]:
    return lambda: zc.build(good_members(), zip64_end=True, **kw)


def _zip64_bad_signature() -> bytes:
    built = zc.archive(good_members(), zip64_end=True).build()
    assert built.zip64_eocd_offset is not None
    return zc.patch(built.data, built.zip64_eocd_offset, "<I", 0x06064B51)


def _sentinel_without_zip64() -> bytes:
    return zc.build(good_members(), cd_offset=0xFFFFFFFF)


def _descriptor(**kw: object) -> bytes:
    plain = b"descriptor" * 10
    m = zc.Member("m", payload=plain, plain=plain, flags=0x8, data_descriptor=zc.data_descriptor(zlib.crc32(plain) ^ 1, 100, 100, **kw))  # type: ignore[arg-type]
    return zc.build([m, zc.member("n", b"x")])


def _name(raw: bytes | str, **kw: object) -> Callable[[], bytes]:
    return lambda: zc.build([zc.member(raw, b"data", **kw)])


def _limits(**kw: int) -> Limits:
    return Limits(**kw)


HOSTILE: list[tuple[str, str | None, Callable[[], bytes], Limits | None, bool]] = [
    # (row, code, builder, limits, needs deep read)
    ("1 empty file", "E-ZIP-NOT-ZIP", lambda: b"", None, False),
    ("1 short file", "E-ZIP-NOT-ZIP", lambda: b"PK\x05\x06", None, False),
    ("1 not a zip", "E-ZIP-NOT-ZIP", lambda: b"%PDF-1.7\n" + b"x" * 5000, None, False),
    ("1 truncated EOCD", "E-ZIP-TRUNCATED", _truncated_eocd, None, False),
    ("2 prefix, offsets adjusted", "E-ZIP-UNACCOUNTED-DATA", lambda: zc.build(good_members(), prefix=b"MZ\x90\x00stub"), None, False),
    ("2 prefix, offsets not adjusted", "E-ZIP-UNACCOUNTED-DATA", lambda: b"#!/bin/sh\nexit\n" + good(), None, False),
    ("3 trailing bytes", "E-ZIP-UNACCOUNTED-DATA", lambda: good() + b"\x00", None, False),
    ("3 trailing garbage", "E-ZIP-UNACCOUNTED-DATA", lambda: good() + os.urandom(100).replace(b"PK", b"pk"), None, False),
    ("3 comment (allowed)", None, lambda: zc.build(good_members(), comment=b"hello"), None, False),
    ("3 comment of 65,535 bytes (allowed)", None, lambda: zc.build(good_members(), comment=b"c" * 65535), None, False),
    ("3 comment with an end record signature", None, lambda: zc.build(good_members(), comment=b"PK\x05\x06" + bytes(10)), None, False),
    ("3 comment that is a second end record", "E-ZIP-MALFORMED", lambda: zc.build(good_members(), comment=b"PK\x05\x06" + bytes(18)),
     None, False),
    ("3 declared comment missing", "E-ZIP-TRUNCATED", lambda: zc.build(good_members(), comment_length=5), None, False),
    ("3 second EOCD", "E-ZIP-UNACCOUNTED-DATA", lambda: good() + good()[-22:], None, False),
    ("4 cd_offset wrong", "E-ZIP-CD-MISMATCH", _patch_eocd(16, "<I", 1), None, False),
    ("4 cd_offset off by one", "E-ZIP-CD-MISMATCH",
     lambda: zc.build(good_members(), cd_offset=zc.archive(good_members()).build().cd_offset + 1), None, False),
    ("4 cd_size too small", "E-ZIP-CD-MISMATCH", lambda: zc.build(good_members(), cd_size=100), None, False),
    ("4 entry count too high", "E-ZIP-CD-MISMATCH", lambda: zc.build(good_members(), entries_total=6, entries_on_disk=6), None, False),
    ("4 entry count too low", "E-ZIP-CD-MISMATCH", lambda: zc.build(good_members(), entries_total=4, entries_on_disk=4), None, False),
    ("4 cd_size=0 with local entries", "E-ZIP-CD-MISMATCH", _cd_size_zero_with_locals, None, False),
    ("4 extra CD bytes", "E-ZIP-CD-MISMATCH", lambda: zc.build(good_members(), extra_central=[b"junk"]), None, False),
    ("5 zip64 locator offset wrong", "E-ZIP-ZIP64", _eocd_in_zip64_position(locator_offset=3), None, False),
    ("5 zip64 record signature wrong", "E-ZIP-ZIP64", _zip64_bad_signature, None, False),
    ("5 zip64 locator points elsewhere", "E-ZIP-ZIP64", _eocd_in_zip64_position(locator_offset=0), None, False),
    ("5 zip64 record size", "E-ZIP-ZIP64", _eocd_in_zip64_position(zip64_record_size=52, zip64_extensible=b"8 bytes!"), None, False),
    ("5 zip64 gap before locator", "E-ZIP-ZIP64", _eocd_in_zip64_position(between_zip64_and_locator=b"gap"), None, False),
    ("5 zip64 disagrees with EOCD", "E-ZIP-ZIP64", _eocd_in_zip64_position(zip64_sentinels=False, zip64_cd_size=10**6), None, False),
    ("5 zip64 end count disagrees", "E-ZIP-ZIP64", _eocd_in_zip64_position(zip64_sentinels=False, entries_total=4), None, False),
    ("5 zip64 end wrong CD size", "E-ZIP-CD-MISMATCH", _eocd_in_zip64_position(zip64_cd_size=5), None, False),
    ("5 EOCD sentinel without zip64", "E-ZIP-ZIP64", _sentinel_without_zip64, None, False),
    ("5 EOCD disk number", "E-ZIP-MULTIDISK", lambda: zc.build(good_members(), disk_number=1), None, False),
    ("5 EOCD cd disk", "E-ZIP-MULTIDISK", lambda: zc.build(good_members(), cd_disk=2), None, False),
    ("5 EOCD entries on other disks", "E-ZIP-MULTIDISK", lambda: zc.build(good_members(), entries_on_disk=2), None, False),
    ("5 zip64 locator disks", "E-ZIP-MULTIDISK", _eocd_in_zip64_position(locator_total_disks=2), None, False),
    ("5 zip64 record disk", "E-ZIP-MULTIDISK", _eocd_in_zip64_position(zip64_disk_number=1), None, False),
    ("5 member on another disk", "E-ZIP-MULTIDISK", _name("a", disk_start=1), None, False),
    ("6 local name differs", "E-ZIP-HEADER-MISMATCH", _name("a", local_name="b"), None, True),
    ("6 local method differs", "E-ZIP-HEADER-MISMATCH", _name("a", local_method=8), None, True),
    ("6 local flags differ", "E-ZIP-HEADER-MISMATCH", _name("a", local_flags=0x800), None, True),
    ("6 local crc differs", "E-ZIP-HEADER-MISMATCH", _name("a", local_crc32=1), None, True),
    ("6 local csize differs", "E-ZIP-HEADER-MISMATCH", _name("a", local_compressed_size=3), None, True),
    ("6 local usize differs", "E-ZIP-HEADER-MISMATCH", _name("a", local_uncompressed_size=3), None, True),
    ("6 no local header", "E-ZIP-HEADER-MISMATCH", lambda: zc.build([zc.member("a", b"x", gap_before=b"\x00" * 40, header_offset=0)]), None, True),
    ("6 local entry missing from CD", "E-ZIP-UNACCOUNTED-DATA", _hidden_local_entry, None, True),
    ("7 two entries share data", "E-ZIP-OVERLAP", _two_entries_one_header, None, False),
    ("7 central directory out of order", "E-ZIP-OVERLAP", lambda: zc.build(good_members(), central_order=[1, 0, 2, 3, 4]), None, False),
    ("7 gap between members", "E-ZIP-UNACCOUNTED-DATA",
     lambda: zc.build([zc.member("a", b"x"), zc.member("b", b"y", gap_before=b"hidden")]), None, True),
    ("7 gap before the CD", "E-ZIP-UNACCOUNTED-DATA", lambda: zc.build(good_members(), before_cd=b"hidden"), None, True),
    ("7 data runs into the CD", "E-ZIP-OVERLAP", _member_runs_into_cd, None, False),
    ("7 local extra longer than room", "E-ZIP-OVERLAP",
     lambda: zc.build([zc.member("a", b"x", local_extra=zc.extra_field(0x5455, b"12345")), zc.member("b", b"y", header_offset=31 + 1)]), None, True),
    ("7 offset past end of file", "E-ZIP-TRUNCATED", _offset_past_eof, None, False),
    ("8 descriptor disagrees", "E-ZIP-HEADER-MISMATCH", lambda: _descriptor(), None, True),
    ("9 encrypted bit 0", "E-ZIP-ENCRYPTED", _name("a", flags=0x1), None, False),
    ("9 strong encryption bit 6", "E-ZIP-ENCRYPTED", _name("a", flags=0x41), None, False),
    ("9 masked header bit 13", "E-ZIP-ENCRYPTED", _name("a", flags=0x2000), None, False),
    ("9 AES method 99", "E-ZIP-ENCRYPTED", _name("a", method=99), None, False),
    ("10 bzip2", "E-ZIP-METHOD", _name("a", method=12), None, False),
    ("10 lzma", "E-ZIP-METHOD", _name("a", method=14), None, False),
    ("10 deflate64", "E-ZIP-METHOD", _name("a", method=9), None, False),
    ("10 patched data", "E-ZIP-METHOD", _name("a", flags=0x20), None, False),
    ("11 traversal", "E-PATH-UNSAFE", _name("../evil"), None, False),
    ("11 nested traversal", "E-PATH-UNSAFE", _name("model/../../evil"), None, False),
    ("11 absolute", "E-PATH-UNSAFE", _name("/etc/passwd"), None, False),
    ("11 drive letter", "E-PATH-UNSAFE", _name("C:/evil"), None, False),
    ("11 backslash", "E-PATH-UNSAFE", _name("..\\..\\evil"), None, False),
    ("11 empty component", "E-PATH-UNSAFE", _name("a//b"), None, False),
    ("11 dot component", "E-PATH-UNSAFE", _name("./a"), None, False),
    ("11 NUL", "E-PATH-UNSAFE", _name(b"model.pt\x00.txt"), None, False),
    ("11 control character", "E-PATH-UNSAFE", _name("a\x1b[31m"), None, False),
    ("11 empty name", "E-PATH-UNSAFE", _name(b""), None, False),
    ("11 too long", "E-LIMIT-PATH-LENGTH", _name("a" * 1025), None, False),
    ("11 too deep", "E-LIMIT-PATH-LENGTH", _name("/".join("d" * 65)), None, False),
    ("12 not UTF-8", "E-ZIP-NAME-ENCODING", _name(b"caf\xe9"), None, False),
    ("12 not UTF-8 with flag", "E-ZIP-NAME-ENCODING", _name(b"caf\xe9", flags=0x800), None, False),
    ("12 surrogate bytes", "E-ZIP-NAME-ENCODING", _name(b"a\xed\xa0\x80", flags=0x800), None, False),
    ("12 disagreeing Unicode Path extra", "E-ZIP-NAME-ENCODING", _name("a.txt", central_extra=zc.unicode_path_extra(b"a.txt", "b.txt")), None, False),
    ("12 stale Unicode Path extra", "E-ZIP-NAME-ENCODING", _name("a.txt", central_extra=zc.unicode_path_extra(b"old", "a.txt")), None, False),
    ("12 local Unicode Path extra", "E-ZIP-NAME-ENCODING", _name("a.txt", local_extra=zc.unicode_path_extra(b"a.txt", "evil.sh")), None, True),
    ("14 duplicate", "E-ZIP-DUPLICATE", lambda: zc.build([zc.member("a", b"1"), zc.member("a", b"2")]), None, False),
    ("14 case-fold duplicate", "E-ZIP-DUPLICATE", lambda: zc.build([zc.member("Model.pt", b"1"), zc.member("model.PT", b"2")]), None, False),
    ("14 NFC/NFD duplicate", "E-ZIP-DUPLICATE", lambda: zc.build([zc.member("caf\u00e9", b"1"), zc.member("cafe\u0301", b"2")]), None, False),
    ("14 file and directory", "E-ZIP-DUPLICATE", lambda: zc.build([zc.member("model/a", b"1"), zc.member("model/a/b", b"2")]), None, False),
    ("14 file and directory entry", "E-ZIP-DUPLICATE", lambda: zc.build([zc.member("a", b"1"), zc.member("A/", b"")]), None, False),
    ("15 FIFO", "E-ZIP-NOT-REGULAR", _name("model/fifo", external_attr=zc.unix_attr(zc.S_IFIFO | 0o644)), None, False),
    ("15 char device", "E-ZIP-NOT-REGULAR", _name("model/tty", external_attr=zc.unix_attr(zc.S_IFCHR | 0o644)), None, False),
    ("15 block device", "E-ZIP-NOT-REGULAR", _name("model/sda", external_attr=zc.unix_attr(zc.S_IFBLK | 0o644)), None, False),
    ("15 socket", "E-ZIP-NOT-REGULAR", _name("model/sock", external_attr=zc.unix_attr(zc.S_IFSOCK | 0o644)), None, False),
    ("15 directory mode on a file name", "E-ZIP-NOT-REGULAR", _name("model/d", external_attr=zc.unix_attr(zc.S_IFDIR | 0o755)), None, False),
    ("15 directory with data", "E-ZIP-NOT-REGULAR", _name("model/d/"), None, False),
    ("15 symlink outside model/", "E-ZIP-SYMLINK", _name("carton.toml", external_attr=zc.unix_attr(zc.S_IFLNK | 0o777)), None, False),
    ("16 entry count", "E-LIMIT-ENTRY-COUNT", good, _limits(max_entries=4), False),
    ("16 central directory size", "E-LIMIT-CD-SIZE", good, _limits(max_central_directory_bytes=100), False),
    ("16 member size", "E-LIMIT-MEMBER-SIZE", good, _limits(max_member_bytes=4999), False),
    ("16 total size", "E-LIMIT-TOTAL-SIZE", good, _limits(max_total_bytes=10_000), False),
    ("16 ratio", "E-LIMIT-RATIO", lambda: zc.build([zc.member("z", bytes(1 << 20), zc.DEFLATE)]),
     _limits(ratio_floor_bytes=1000, max_compression_ratio=100), False),
    ("16 ratio, nothing compressed", "E-LIMIT-RATIO", _name("z", method=8, uncompressed_size=1 << 30, compressed_size=0), None, False),
    ("16 declared size beyond the limit", "E-LIMIT-MEMBER-SIZE", _name("z", method=8, uncompressed_size=0xFFFFFFFE),
     _limits(max_member_bytes=1 << 31), False),
    ("17 stored CRC", "E-ZIP-CRC", _name("a", crc32=12345), None, True),
    ("17 deflate CRC", "E-ZIP-CRC", lambda: zc.build([zc.member("a", b"abc" * 100, zc.DEFLATE, crc32=1)]), None, True),
    ("17 zstd CRC", "E-ZIP-CRC", lambda: zc.build([zc.member("a", b"abc" * 100, zc.ZSTD, crc32=1)]), None, True),
    ("17 deflate longer than declared", "E-ZIP-SIZE-MISMATCH",
     lambda: zc.build([zc.member("a", b"abc" * 100, zc.DEFLATE, uncompressed_size=299)]), None, True),
    ("17 deflate shorter than declared", "E-ZIP-SIZE-MISMATCH",
     lambda: zc.build([zc.member("a", b"abc" * 100, zc.DEFLATE, uncompressed_size=301)]), None, True),
    ("17 zstd longer than declared", "E-ZIP-SIZE-MISMATCH",
     lambda: zc.build([zc.member("a", b"abc" * 100, zc.ZSTD, uncompressed_size=299, zstd_content_size=False)]), None, True),
    ("17 zstd shorter than declared", "E-ZIP-SIZE-MISMATCH",
     lambda: zc.build([zc.member("a", b"abc" * 100, zc.ZSTD, uncompressed_size=301, zstd_content_size=False)]), None, True),
    ("17 zstd content size disagrees", "E-ZIP-SIZE-MISMATCH",
     lambda: zc.build([zc.member("a", b"abc" * 100, zc.ZSTD, uncompressed_size=299)]), None, True),
    ("17 zip bomb, declared tiny", "E-ZIP-SIZE-MISMATCH",
     lambda: zc.build([zc.member("a", bytes(50 << 20), zc.ZSTD, uncompressed_size=10, zstd_content_size=False)]), None, True),
    ("17 deflate garbage", "E-ZIP-CORRUPT-DATA",
     lambda: zc.build([zc.Member("a", payload=b"\xff" * 50, plain=b"x" * 10, method=zc.DEFLATE)]), None, True),
    ("17 deflate truncated", "E-ZIP-CORRUPT-DATA",
     lambda: zc.build([zc.Member("a", payload=zc.compress(os.urandom(5000), zc.DEFLATE)[:-10], plain=b"x" * 5000, method=zc.DEFLATE)]), None, True),
    ("17 deflate trailing bytes", "E-ZIP-CORRUPT-DATA",
     lambda: zc.build([zc.Member("a", payload=zc.compress(b"abc", zc.DEFLATE) + b"hidden", plain=b"abc", method=zc.DEFLATE)]), None, True),
    ("17 zstd garbage", "E-ZIP-CORRUPT-DATA",
     lambda: zc.build([zc.Member("a", payload=b"\x28\xb5\x2f\xfd" + b"\xff" * 50, plain=b"x" * 10, method=zc.ZSTD)]), None, True),
    ("17 zstd not a frame", "E-ZIP-CORRUPT-DATA",
     lambda: zc.build([zc.Member("a", payload=b"hello world", plain=b"hello world", method=zc.ZSTD)]), None, True),
    ("17 zstd truncated", "E-ZIP-SIZE-MISMATCH",
     lambda: zc.build([zc.Member("a", payload=zc.compress(os.urandom(5000), zc.ZSTD)[:-10], plain=b"x" * 5000, method=zc.ZSTD)]), None, True),
    ("17 zstd trailing bytes", "E-ZIP-CORRUPT-DATA",
     lambda: zc.build([zc.Member("a", payload=zc.compress(b"abc", zc.ZSTD) + b"hidden", plain=b"abc", method=zc.ZSTD)]), None, True),
    ("17 stored sizes differ", "E-ZIP-MALFORMED", _name("a", uncompressed_size=5), None, False),
    ("18 version needed", "E-ZIP-MALFORMED", _name("a", version_needed=64), None, False),
    ("18 unknown flag bits", "E-ZIP-MALFORMED", _name("a", flags=0x4000), None, False),
    ("18 extra overruns", "E-ZIP-MALFORMED", _name("a", central_extra=struct.pack("<HH", 0x5455, 10) + b"abc"), None, False),
    ("18 stray extra bytes", "E-ZIP-MALFORMED", _name("a", central_extra=b"\x01\x00"), None, False),
    ("18 zip64 extra too short", "E-ZIP-MALFORMED", _name("a", uncompressed_size=0xFFFFFFFF, central_extra=zc.zip64_extra()), None, False),
    ("18 zip64 extra too long", "E-ZIP-MALFORMED", _name("a", central_extra=zc.zip64_extra(4)), None, False),
    ("18 two zip64 extras", "E-ZIP-MALFORMED", _name("a", zip64=True, central_extra=zc.zip64_extra()), None, False),
    ("18 0xFFFFFFFF without zip64", "E-ZIP-MALFORMED", _name("a", header_offset=0xFFFFFFFF), None, False),
    ("18 local 0xFFFFFFFF without zip64", "E-ZIP-MALFORMED", _name("a", local_compressed_size=0xFFFFFFFF), None, True),
    ("18 local extra overruns", "E-ZIP-MALFORMED", _name("a", local_extra=b"\x99\x99\x05\x00ab"), None, True),
    ("18 bad central signature", "E-ZIP-MALFORMED",
     lambda: zc.build(good_members(), extra_central=[b"PK\x01\x03" + bytes(42)], entries_total=6, entries_on_disk=6), None, False),
]


# The requirement whose violation code each row asserts (spec/format-v1.md sections 3-5).
_SPEC_OF_CODE = {
    "E-ZIP-NOT-ZIP": "FMT-ZIP-1", "E-ZIP-COMMENT": "FMT-ZIP-2", "E-ZIP-TRUNCATED": "FMT-ZIP-3",
    "E-ZIP-MALFORMED": "FMT-ZIP-4", "E-ZIP-MULTIDISK": "FMT-ZIP-5", "E-ZIP-ZIP64": "FMT-ZIP-6",
    "E-ZIP-CD-MISMATCH": "FMT-ZIP-7", "E-ZIP-HEADER-MISMATCH": "FMT-ZIP-8", "E-ZIP-UNACCOUNTED-DATA": "FMT-ZIP-9",
    "E-ZIP-OVERLAP": "FMT-ZIP-10", "E-ZIP-METHOD": "FMT-ZIP-11", "E-ZIP-ENCRYPTED": "FMT-ZIP-12",
    "E-ZIP-CORRUPT-DATA": "FMT-ZIP-13", "E-ZIP-SIZE-MISMATCH": "FMT-ZIP-14", "E-ZIP-CRC": "FMT-ZIP-15",
    "E-ZIP-NAME-ENCODING": "FMT-ZIP-16", "E-ZIP-DUPLICATE": "FMT-ZIP-17", "E-ZIP-NOT-REGULAR": "FMT-ZIP-19",
    "E-ZIP-SYMLINK": "FMT-ZIP-20", "E-PATH-UNSAFE": "FMT-PATH-1", "E-LIMIT-ENTRY-COUNT": "FMT-LIMIT-2",
    "E-LIMIT-CD-SIZE": "FMT-LIMIT-3", "E-LIMIT-PATH-LENGTH": "FMT-LIMIT-4", "E-LIMIT-MEMBER-SIZE": "FMT-LIMIT-5",
    "E-LIMIT-TOTAL-SIZE": "FMT-LIMIT-6", "E-LIMIT-RATIO": "FMT-LIMIT-7",
}  # fmt: skip
_SPEC_OF_ROW = {  # E-PATH-UNSAFE rows about characters and drive letters, not components
    "11 drive letter": "FMT-PATH-2", "11 backslash": "FMT-PATH-2", "11 NUL": "FMT-PATH-2", "11 control character": "FMT-PATH-2",
    "3 comment (allowed)": "FMT-ZIP-2", "3 comment of 65,535 bytes (allowed)": "FMT-ZIP-2",
    "3 comment with an end record signature": "FMT-ZIP-1", "3 comment that is a second end record": "FMT-ZIP-23",
}  # fmt: skip
HOSTILE_PARAMS = [
    pytest.param(*h, id=h[0], marks=pytest.mark.spec(_SPEC_OF_ROW.get(h[0]) or _SPEC_OF_CODE[h[1]])) for h in HOSTILE
]


@pytest.mark.parametrize(("row", "code", "make", "limits", "deep"), HOSTILE_PARAMS)
def test_hostile_inputs(row: str, code: str | None, make: Callable[[], bytes], limits: Limits | None, deep: bool) -> None:
    data = make()
    if not deep:
        # rejected at open time, before any member data is read
        assert code_of(data, limits=limits, deep=False) == code
    else:
        assert code_of(data, limits=limits, deep=False) is None  # the cheap open passes
        assert code_of(data, limits=limits, deep=True) == code


def test_member_errors_name_the_member() -> None:
    data = zc.build([zc.member("model/x", b"abc" * 100, zc.DEFLATE, crc32=1)])
    with pytest.raises(CartonFormatError) as info:
        read_everything(reader(data))
    assert info.value.member == "model/x"
    with pytest.raises(CartonFormatError) as info:
        reader(zc.build([zc.member("../x", b"")]))
    assert info.value.member == "../x"


@pytest.mark.spec("FMT-ZIP-15")
def test_crc_error_is_raised_by_the_final_read_and_sticks() -> None:
    r = reader(zc.build([zc.member("a", b"abcdef", crc32=1)]))
    s = r.open("a")
    assert s.read(3) == b"abc"
    with pytest.raises(CartonFormatError) as info:
        s.read(3)
    assert info.value.code == "E-ZIP-CRC"
    with pytest.raises(CartonFormatError):
        s.read()


@pytest.mark.spec("FMT-PATH-3")
def test_row_13_non_portable_names_are_readable_and_flagged() -> None:
    names = ["model/CON", "model/aux.txt", "model/trailing.", "model/space ", "model/a:b", "model/what?"]
    r = reader(zc.build([zc.member(n, b"x") for n in names]))
    assert r.names() == names
    for n in names:
        assert portability_problem(n)


def test_decompression_is_bounded() -> None:
    """A bomb that declares a huge size is read in bounded chunks, never allocated at once."""
    import tracemalloc

    plain_size = 64 << 20
    payload = zc.compress(bytes(plain_size), zc.ZSTD, zstd_content_size=False)
    data = zc.build([zc.Member("bomb", payload=payload, plain=b"", method=zc.ZSTD, uncompressed_size=plain_size,
                               crc32=zlib.crc32(bytes(plain_size)))])
    r = reader(data, limits=Limits(max_compression_ratio=100_000))  # zstd reaches ~32000:1 on zeros
    tracemalloc.start()
    try:
        with r.open("bomb") as s:
            total = 0
            while chunk := s.read(1 << 20):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == plain_size
    assert peak < 12 << 20, peak


# -- fuzzing ---------------------------------------------------------------------------------


def _small_archive() -> bytes:
    members = [
        zc.member("carton.toml", b"spec_version = 1\n" * 3, zc.ZSTD, zstd_content_size=False),
        zc.member("model/a.bin", b"0123456789" * 5, zc.STORED),
        zc.member("model/link", b"a.bin", external_attr=zc.unix_attr(zc.S_IFLNK | 0o777)),
        zc.member("misc/d.txt", b"deflate me " * 8, zc.DEFLATE),
    ]
    return zc.build(members)


SMALL = _small_archive()
SMALL_CONTENTS = read_everything(reader(SMALL))


@pytest.mark.spec("FMT-READ-5")
def test_every_truncation_is_rejected() -> None:
    for cut in range(len(SMALL)):
        assert code_of(SMALL[:cut]) is not None, cut


@pytest.mark.spec("FMT-READ-5")
def test_every_single_byte_flip_is_safe() -> None:
    """Flipping any byte either changes nothing observable or raises CartonFormatError."""
    accepted = 0
    for pos in range(len(SMALL)):
        for mask in (0x01, 0x80, 0xFF):
            data = bytearray(SMALL)
            data[pos] ^= mask
            try:
                contents = read_everything(reader(bytes(data)))
            except CartonFormatError as exc:
                assert "internal error" not in exc.message, (pos, mask, exc)
                continue
            accepted += 1
            assert contents == SMALL_CONTENTS, (pos, mask)
    # only fields nobody interprets (times, version made by, internal attributes...) may change
    assert accepted < len(SMALL)


@settings(deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
@pytest.mark.spec("FMT-READ-5")
def test_random_corruption_only_raises_format_errors(data: st.DataObject) -> None:
    buf = bytearray(SMALL)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        pos = data.draw(st.integers(0, len(buf)))
        buf[pos:pos] = data.draw(st.binary(max_size=30))
    code_of(bytes(buf))


@settings(deadline=None, max_examples=500)
@given(st.binary(max_size=400), st.booleans())
@pytest.mark.spec("FMT-READ-5")
def test_garbage_only_raises_format_errors(garbage: bytes, with_eocd: bool) -> None:
    if with_eocd:
        garbage += struct.pack("<IHHHHIIH", zc.EOCD_SIG, 0, 0, 1, 1, 46, max(0, len(garbage) - 46), 0)
    code_of(garbage)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abc/._-é", min_size=1, max_size=12),
            st.binary(max_size=200),
            st.sampled_from([0, 8, 93]),
            st.sampled_from([0, 0o100644, 0o120777, 0o040755, 0o010644]),
            st.integers(0, 0xFFFF),
        ),
        max_size=4,
    )
)
@pytest.mark.spec("FMT-READ-5")
def test_crafted_archives_only_raise_format_errors(members: list[tuple[str, bytes, int, int, int]]) -> None:
    ms = [zc.member(name, payload, method, external_attr=zc.unix_attr(mode), flags=flags & 0x4809) for name, payload, method, mode, flags in members]
    code_of(zc.build(ms))


# -- more paths through the reader -------------------------------------------------------------


def test_readinto_large_stored_member_from_every_kind_of_file(tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 5)
    data = zc.build([zc.member("model/w.bin", payload), zc.member("n", b"x")])
    path = tmp_path / "a.zip"
    path.write_bytes(data)

    class ReadOnly(CountingFile):
        readinto = None  # type: ignore[assignment]

    sources = [lambda: ZipReader.open_path(path), lambda: ZipReader(CountingFile(data)), lambda: ZipReader(ReadOnly(data)),
               lambda: ZipReader(open(path, "rb"))]  # noqa: SIM115 - buffered file
    for make in sources:
        for size in (1024 * 1024, 100_000):  # through read() (parallel CRC) / straight into the buffer
            r = make()
            buf = bytearray(size)
            out = bytearray()
            with r.open("model/w.bin") as s:
                while n := s.readinto(buf):
                    out += buf[:n]
            assert bytes(out) == payload
            r.close()


@pytest.mark.spec("FMT-ZIP-3")
def test_truncated_file_while_streaming(tmp_path: Path) -> None:
    payload = os.urandom(1024 * 1024)
    data = zc.build([zc.member("a", payload)])

    class Shrinking(CountingFile):
        def read(self, n: int = -1) -> bytes:
            out = super().read(n)
            return out[: max(0, min(len(out), 600_000 - (self._pos - len(out))))] if self.reads > 1 else out

    r = ZipReader(Shrinking(data))
    with pytest.raises(CartonFormatError) as info:
        r.read_member("a", BIG)
    assert info.value.code == "E-ZIP-TRUNCATED" and info.value.member == "a"


@pytest.mark.spec("FMT-ZIP-7")
def test_count_that_cannot_fit_in_the_central_directory() -> None:
    assert code_of(zc.build(good_members(), entries_total=100, entries_on_disk=100), deep=False) == "E-ZIP-CD-MISMATCH"


@pytest.mark.spec("FMT-ZIP-13")
def test_zstd_reserved_block_type() -> None:
    frame = b"\x28\xb5\x2f\xfd" + bytes([0x20, 5]) + (1 | 6 | (5 << 3)).to_bytes(3, "little") + b"xxxxx"
    data = zc.build([zc.Member("a", payload=frame, plain=b"x" * 5, method=zc.ZSTD)])
    assert code_of(data) == "E-ZIP-CORRUPT-DATA"


def test_zstd_window_limit() -> None:
    """Frames that would need more than 128 MiB of decoder memory are refused."""
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=28)
    plain = b"w" * 1000
    obj = zstandard.ZstdCompressor(compression_params=params).compressobj()  # size unknown: no single segment
    frame = obj.compress(plain) + obj.flush()
    assert zstandard.get_frame_parameters(frame).window_size == 1 << 28
    assert code_of(zc.build([zc.Member("a", payload=frame, plain=plain, method=zc.ZSTD)])) == "E-ZIP-CORRUPT-DATA"


@pytest.mark.parametrize("seekable", [True, False])
@pytest.mark.spec("FMT-ZIP-8")
def test_archives_from_cpython_zipfile_are_accepted(seekable: bool) -> None:
    """Legitimate zips from another writer: directories, deflate, data descriptors, zip64."""
    import zipfile

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buffer = io.BytesIO()

        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            return self.buffer.write(b)  # type: ignore[arg-type]

        def seekable(self) -> bool:
            return False

        def tell(self) -> int:
            raise OSError("not seekable")

    out: io.BytesIO | Unseekable = io.BytesIO() if seekable else Unseekable()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:  # type: ignore[arg-type]
        z.mkdir("model")
        with z.open("model/a.bin", "w") as f:
            f.write(b"hello" * 1000)
        z.writestr("model/b.txt", b"bee", compress_type=zipfile.ZIP_STORED)
        with z.open("model/c.bin", "w", force_zip64=True) as f:
            f.write(b"zip64" * 100)
    data = out.getvalue() if isinstance(out, io.BytesIO) else out.buffer.getvalue()
    r = reader(data)
    assert read_everything(r) == {"model/": b"", "model/a.bin": b"hello" * 1000, "model/b.txt": b"bee", "model/c.bin": b"zip64" * 100}
    assert r.get("model/a.bin").flags & 0x8 == (0 if seekable else 0x8)  # type: ignore[union-attr]
