"""Stored members from regular files copied by the kernel (carton_format._zip.filecopy).

Every way in (copy_file_range, sendfile, the read/write path it falls back to) must write the
same bytes, and the sha256 / CRC-32 reported must be those of the bytes in the archive, even when
the source changes while it is copied.  ``filecopy.METHODS`` selects the way (it is the switch the
module offers for this); a failing ``os.copy_file_range`` stands in for a file system without it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import zlib
from pathlib import Path
from typing import Any

import pytest

import carton_format as cf
from carton_format._zip import filecopy
from carton_format._zip.reader import ZipReader
from carton_format._zip.writer import ZipWriter
from carton_format.errors import CartonFormatError

pytestmark = pytest.mark.skipif(not filecopy.METHODS, reason="no kernel copy on this platform")

SIZE = 3 * 1024 * 1024 + 12345  # a few copy chunks once COPY_CHUNK is lowered, not a multiple of a page
WAYS = {
    "copy_file_range": ("copy_file_range", "sendfile"),
    "sendfile": ("sendfile",),
    "read-write": (),
}


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    head = os.urandom(SIZE // 2)
    path.write_bytes(head + (bytes(range(256)) * (SIZE // 256 + 1))[: SIZE - len(head)])
    return path


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several copy chunks and hash windows per member (the defaults would copy SIZE in one)."""
    monkeypatch.setattr(filecopy, "COPY_CHUNK", 1024 * 1024)
    monkeypatch.setattr(filecopy, "HASH_WINDOW", 768 * 1024)


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per stored file member, whether the kernel copy wrote it (True) or declined."""
    calls: list[bool] = []
    real = filecopy.kernel_copy

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(filecopy, "kernel_copy", recording)
    return calls


def _archive(path: Path, source: Path, *, mode: str = "w+b", **kwargs: Any) -> dict[str, Any]:
    with open(path, mode) as out, open(source, "rb") as src, open(source, "rb") as again:
        w = ZipWriter(out, **kwargs)
        results = {
            "a.txt": w.add_bytes("a.txt", b"before", method=0),
            "model/big.bin": w.add_stream("model/big.bin", src, method=0, size_hint=source.stat().st_size),
            "model/big.zst": w.add_stream("model/big.zst", again, method=93),
            "z.txt": w.add_bytes("z.txt", b"after", method=8),
        }
        w.close()
    return results


def _check_member(archive: Path, name: str, expected: bytes, result: Any) -> None:
    with ZipReader.open_path(archive) as r:
        r.check_layout()
        entry = r.get(name)
        assert entry is not None
        data = r.read_member(name, 1 << 30)
    assert data == expected
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.crc32 == entry.crc32 == zlib.crc32(data)
    assert result.size == entry.uncompressed_size == len(data)
    assert result.compressed_size == entry.compressed_size


@pytest.mark.parametrize("zip64", [False, True])
def test_every_way_writes_the_same_archive(
    tmp_path: Path, payload: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None, kernel_calls: list[bool], zip64: bool
) -> None:
    outputs = {}
    for way, methods in WAYS.items():
        monkeypatch.setattr(filecopy, "METHODS", methods)
        archive = tmp_path / f"{way}.zip"
        results = _archive(archive, payload, force_zip64=zip64)
        _check_member(archive, "model/big.bin", payload.read_bytes(), results["model/big.bin"])
        _check_member(archive, "z.txt", b"after", results["z.txt"])
        outputs[way] = archive.read_bytes()
    assert kernel_calls == [True, True]  # the big stored member only; METHODS=() never tries
    assert len(set(outputs.values())) == 1


def test_a_failing_copy_file_range_falls_back_to_sendfile_then_read_write(
    tmp_path: Path, payload: Path, monkeypatch: pytest.MonkeyPatch, kernel_calls: list[bool]
) -> None:
    monkeypatch.setattr(filecopy, "METHODS", ())
    reference = _archive(tmp_path / "plain.zip", payload)
    monkeypatch.setattr(filecopy, "METHODS", WAYS["copy_file_range"])

    def unsupported(*args: object) -> int:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    _archive(tmp_path / "sendfile.zip", payload)
    monkeypatch.setattr(os, "sendfile", unsupported)
    _archive(tmp_path / "neither.zip", payload)
    monkeypatch.delattr(os, "copy_file_range")
    _archive(tmp_path / "absent.zip", payload)
    assert kernel_calls == [True, False, False]
    expected = (tmp_path / "plain.zip").read_bytes()
    for name in ("sendfile.zip", "neither.zip", "absent.zip"):
        assert (tmp_path / name).read_bytes() == expected, name
    assert reference["model/big.bin"].sha256 == hashlib.sha256(payload.read_bytes()).hexdigest()


def test_a_write_only_archive_takes_the_read_write_path(tmp_path: Path, payload: Path, kernel_calls: list[bool]) -> None:
    """The hasher reads the archive back, so an archive opened write-only is not copied into."""
    _archive(tmp_path / "rw.zip", payload)
    _archive(tmp_path / "wo.zip", payload, mode="wb")
    assert kernel_calls == [True]
    assert (tmp_path / "rw.zip").read_bytes() == (tmp_path / "wo.zip").read_bytes()


def test_the_hashes_describe_the_archive_when_the_source_changes_during_the_copy(
    tmp_path: Path, payload: Path, small_chunks: None
) -> None:
    original = payload.read_bytes()
    changed = False

    def rewrite_the_rest(n: int) -> None:  # called after each chunk copied
        nonlocal changed
        if not changed:
            changed = True
            with open(payload, "r+b") as f:
                f.seek(n)
                f.write(bytes(len(original) - n))

    archive = tmp_path / "changed.zip"
    with open(archive, "w+b") as out, open(payload, "rb") as src:
        w = ZipWriter(out, progress=rewrite_the_rest)
        result = w.add_stream("model/big.bin", src, method=0, size_hint=len(original))
        w.close()
    with ZipReader.open_path(archive) as r:
        data = r.read_member("model/big.bin", 1 << 30)
    assert changed and data != original  # the change reached the archive ...
    _check_member(archive, "model/big.bin", data, result)  # ... and the hashes say so


def test_progress_is_reported_per_chunk_on_the_callers_thread(tmp_path: Path, payload: Path, small_chunks: None) -> None:
    import threading

    seen: list[tuple[int, str]] = []
    with open(tmp_path / "p.zip", "w+b") as out, open(payload, "rb") as src:
        w = ZipWriter(out, progress=lambda n: seen.append((n, threading.current_thread().name)))
        w.add_stream("model/big.bin", src, method=0, size_hint=SIZE)
        w.close()
    assert sum(n for n, _ in seen) == SIZE and len(seen) == 4
    assert {name for _, name in seen} == {threading.current_thread().name}


def test_a_source_read_from_its_middle_is_copied_from_there(tmp_path: Path, payload: Path, kernel_calls: list[bool]) -> None:
    skip = 4099
    with open(tmp_path / "mid.zip", "w+b") as out, open(payload, "rb") as src:
        src.seek(skip)
        w = ZipWriter(out)
        result = w.add_stream("model/big.bin", src, method=0, size_hint=SIZE - skip)
        assert src.tell() == SIZE and src.read() == b""  # read to its end, as the read/write path leaves it
        w.close()
    assert kernel_calls == [True]
    _check_member(tmp_path / "mid.zip", "model/big.bin", payload.read_bytes()[skip:], result)


def test_a_wrong_size_hint_rolls_the_copied_member_back(tmp_path: Path, payload: Path, kernel_calls: list[bool]) -> None:
    with open(tmp_path / "hint.zip", "w+b") as out, open(payload, "rb") as src:
        w = ZipWriter(out)
        w.add_bytes("first", b"kept", method=0)
        end = out.tell()
        with pytest.raises(CartonFormatError) as info:
            w.add_stream("model/big.bin", src, method=0, size_hint=SIZE - 1)
        assert info.value.code == "E-ARG-INVALID"
        assert os.fstat(out.fileno()).st_size == end
        w.add_bytes("second", b"goes on", method=0)
        w.close()
    assert kernel_calls == [True]
    with ZipReader.open_path(tmp_path / "hint.zip") as r:
        r.check_layout()
        assert [e.name for e in r.entries] == ["first", "second"]


def test_a_copy_error_is_an_io_error_and_rolls_back(tmp_path: Path, payload: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.copy_file_range
    calls = 0

    def full_after_one_chunk(*args: Any) -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)

    monkeypatch.setattr(filecopy, "COPY_CHUNK", 1024 * 1024)
    monkeypatch.setattr(os, "copy_file_range", full_after_one_chunk)
    with open(tmp_path / "full.zip", "w+b") as out, open(payload, "rb") as src:
        w = ZipWriter(out)
        w.add_bytes("first", b"kept", method=0)
        end = out.tell()
        with pytest.raises(CartonFormatError) as info:
            w.add_stream("model/big.bin", src, method=0, size_hint=SIZE)
        assert info.value.code == "E-IO" and os.strerror(errno.ENOSPC) in info.value.message
        assert os.fstat(out.fileno()).st_size == end
        w.close()
    assert calls == 2


def test_copies_at_offsets_past_4_gib(tmp_path: Path, payload: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """64-bit offsets in the archive (where a member after a large one lands), on a sparse file."""
    offset = (5 << 30) + 123
    data = payload.read_bytes()
    for way in ("copy_file_range", "sendfile"):
        monkeypatch.setattr(filecopy, "METHODS", WAYS[way])
        out_path = tmp_path / f"sparse-{way}.bin"
        with open(payload, "rb") as src, open(out_path, "w+b") as out:
            out.truncate(offset)
            digest = filecopy.kernel_copy(src.fileno(), 0, out.fileno(), offset)
            assert digest is not None
            assert os.pread(out.fileno(), len(data), offset) == data
            assert os.fstat(out.fileno()).st_size == offset + len(data)
        assert digest.size == len(data)
        assert digest.sha256_hex() == hashlib.sha256(data).hexdigest() and digest.crc32() == zlib.crc32(data)
        out_path.unlink()


@pytest.mark.parametrize("compression", ["stored", "zstd"])
def test_write_gives_the_same_archive_with_and_without_kernel_copies(
    tmp_path: Path, payload: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    model = tmp_path / "dir"
    model.mkdir()
    os.link(payload, model / "model.pt")
    (model / "vocab.txt").write_text("small")
    info = cf.CartonInfo(runner=cf.RunnerInfo("torchscript", "*", 1), model_name="copy")
    archives = []
    for methods in (WAYS["copy_file_range"], ()):
        monkeypatch.setattr(filecopy, "METHODS", methods)
        done: list[tuple[int, int]] = []
        result = cf.write(
            tmp_path / f"{len(methods)}.carton", info, model, compression=compression, progress=lambda d, t, seen=done: seen.append((d, t))
        )
        assert done[-1] == (done[0][1], done[0][1]) and done[0][1] >= SIZE
        assert result.manifest["model/model.pt"] == hashlib.sha256(payload.read_bytes()).hexdigest()
        archives.append(result.path.read_bytes())
        assert not cf.validate(result.path).findings
    assert archives[0] == archives[1]


_RSS_SCRIPT = """
import os, sys
from carton_format._zip.writer import ZipWriter

def hwm_mib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

source, archive = sys.argv[1], sys.argv[2]
before = hwm_mib()
with open(archive, "w+b") as out, open(source, "rb") as src:
    w = ZipWriter(out)
    w.add_stream("model/big.bin", src, method=0, size_hint=os.path.getsize(source))
    w.close()
print(hwm_mib() - before)
"""


def test_peak_rss_stays_flat_while_copying(tmp_path: Path) -> None:
    """The hasher maps one window of the archive at a time: a 96 MiB member does not raise the
    process's peak resident memory by more than a few windows (mapped page cache counts)."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    source = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(source, "wb") as f:
        for _ in range(96):
            f.write(block)
    done = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(source), str(tmp_path / "big.zip")],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    growth_mib = float(done.stdout.split()[-1])
    assert growth_mib < 4 * filecopy.HASH_WINDOW / (1 << 20), growth_mib
    with ZipReader.open_path(tmp_path / "big.zip") as r:
        assert r.read_member("model/big.bin", 1 << 30) == source.read_bytes()
