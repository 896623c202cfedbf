"""A full disk (ENOSPC) or a file size limit (EFBIG) while writing an archive.

Whatever the point of failure (a local header, member data written on the hash worker thread,
a buffered flush, the central directory), the caller gets one clean ``E-IO`` CartonFormatError
carrying the operating system's message, no "could not roll back" warning, no temporary file
next to the target, and the target as it was.  Three ways in:

* an in-memory file whose writes fail with ENOSPC past a capacity (every failure point, exactly);
* a real 1 MiB tmpfs (needs root and ``mount``; skipped otherwise) for ``write()`` and ``shrink()``;
* ``RLIMIT_FSIZE`` in a subprocess with SIGXFSZ ignored, so the kernel's write fails with EFBIG:
  the real OS path, no privileges needed.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import carton_format as cf
from carton_format._zip.writer import ZipWriter
from carton_format.errors import CartonFormatError
from tests.helpers import ROOT
from tests.helpers.smallfs import mounted_tmpfs

METHODS = {"stored": 0, "deflate": 8, "zstd": 93}
ENOSPC_TEXT = os.strerror(errno.ENOSPC)
EFBIG_TEXT = os.strerror(errno.EFBIG)


class FullDisk(io.RawIOBase):
    """A seekable in-memory file on a disk with ``capacity`` bytes: a write that would grow the
    file past it writes what fits (a short write) and the next one fails with ENOSPC, like a
    real file system.  Records the thread of every failed write."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.data = bytearray()
        self.pos = 0
        self.capacity = capacity
        self.failed_on: list[str] = []

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        room = max(self.capacity - self.pos, 0)
        if len(view) and not room:
            self.failed_on.append(threading.current_thread().name)
            raise OSError(errno.ENOSPC, ENOSPC_TEXT)
        n = min(len(view), room)
        end = self.pos + n
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[self.pos : end] = view[:n]
        self.pos = end
        return n

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self.data[self.pos : self.pos + len(b)]
        b[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: len(self.data)}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        del self.data[size:]
        return size


def _members(big: int) -> list[tuple[str, bytes]]:
    """A small member, a big incompressible one (one chunk of at least PARALLEL_MIN: it goes to
    the hash worker), then small ones again."""
    rng = random.Random(5)
    return [
        ("carton.toml", b"spec_version = 1\n" * 4),
        ("model/big.bin", rng.randbytes(big)),
        *((f"model/small{i}.bin", rng.randbytes(300)) for i in range(5)),
    ]


def _full_size(method: int, members: list[tuple[str, bytes]]) -> int:
    buf = io.BytesIO()
    writer = ZipWriter(buf)
    for name, data in members:
        writer.add_bytes(name, data, method=method)
    writer.close()
    return len(buf.getvalue())


@pytest.fixture
def no_warnings(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="carton_format")
    yield
    noisy = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.WARNING]
    assert noisy == []


@pytest.mark.parametrize("compression", METHODS)
@pytest.mark.parametrize("where", ["first header", "first data", "big member data", "small member", "central directory", "end record"])
def test_enospc_anywhere_is_a_clean_e_io(compression: str, where: str, no_warnings: None) -> None:
    method = METHODS[compression]
    members = _members(1024 * 1024)
    total = _full_size(method, members)
    capacity = {
        "first header": 10,
        "first data": 60,
        "big member data": 200 * 1024,
        "small member": total - 1500,
        "central directory": total - 200,
        "end record": total - 5,
    }[where]
    disk = FullDisk(capacity)
    writer = ZipWriter(disk)  # type: ignore[arg-type]
    offsets = []
    with pytest.raises(CartonFormatError) as caught:
        for name, data in members:
            offsets.append(disk.tell())
            writer.add_bytes(name, data, method=method)
        writer.close()
    err = caught.value
    assert err.code == "E-IO"
    assert ENOSPC_TEXT in err.message
    assert disk.failed_on, "the failure came from the file"
    if where != "central directory" and where != "end record":
        # the failed member was cut off again: the file ends where it began
        assert len(disk.data) == offsets[-1]
        assert err.member == members[len(offsets) - 1][0]
    with pytest.raises(CartonFormatError, match="E-ARG-INVALID|E-IO"):
        writer.add_bytes("model/after.bin", os.urandom(10**6), method=method)


@pytest.mark.parametrize("compression", METHODS)
def test_enospc_on_the_hash_worker_thread_reaches_the_caller(compression: str, no_warnings: None) -> None:
    """Data of a large chunk, stored or compressed, is written by the hash worker (overlapping
    SHA-256); its OSError is re-raised on the caller's thread as E-IO with the OS message."""
    disk = FullDisk(300 * 1024)
    writer = ZipWriter(disk)  # type: ignore[arg-type]
    with pytest.raises(CartonFormatError) as caught:
        writer.add_bytes("model/big.bin", os.urandom(2 * 1024 * 1024), method=METHODS[compression])
    assert caught.value.code == "E-IO"
    assert caught.value.message == f"writing failed: {ENOSPC_TEXT}"
    assert disk.failed_on == ["carton-hash-worker"]
    assert threading.current_thread().name not in disk.failed_on
    assert len(disk.data) == 0  # rolled back to the member's start
    # the writer goes on: a member that fits is written and the archive closes
    disk.capacity = 10**6
    writer.add_bytes("carton.toml", b"x = 1\n", method=0)
    writer.close()


@pytest.mark.parametrize("compression", METHODS)
def test_a_buffered_file_that_cannot_flush_is_e_io_without_noise(compression: str, no_warnings: None) -> None:
    """Over a buffered file the error may surface only when a seek flushes the buffer, and the
    rollback's seek fails again: still one E-IO, no warning, and the writer refuses more work."""
    disk = FullDisk(5000)
    writer = ZipWriter(io.BufferedRandom(disk, buffer_size=64 * 1024))  # type: ignore[arg-type]
    with pytest.raises(CartonFormatError) as caught:
        for i in range(100):
            writer.add_bytes(f"model/f{i}.bin", os.urandom(1000), method=METHODS[compression])
    assert caught.value.code == "E-IO"
    assert ENOSPC_TEXT in caught.value.message
    with pytest.raises(CartonFormatError, match="failed earlier"):
        writer.add_bytes("model/next.bin", b"x", method=0)


def test_a_source_read_error_is_e_io_about_reading() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[override]
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    buf = io.BytesIO()
    writer = ZipWriter(buf)
    with pytest.raises(CartonFormatError) as caught:
        writer.add_stream("model/m.bin", Broken(), method=0)
    assert caught.value.code == "E-IO"
    assert caught.value.message == f"reading the source failed: {os.strerror(errno.EIO)}"
    assert caught.value.member == "model/m.bin"
    writer.close()  # nothing half-written: the archive is still good
    assert cf.validate(io.BytesIO(buf.getvalue())).errors[0].code == "E-STRUCTURE-MISSING"


# -- a real full file system ---------------------------------------------------------------------


def _info() -> cf.CartonInfo:
    return cf.CartonInfo(runner=cf.RunnerInfo(runner_name="torchscript", required_framework_version="=2.13", runner_compat_version=1))


def _model_dir(root: Path, layout: str) -> Path:
    model = root / f"model-{layout}"
    model.mkdir()
    if layout == "one big file":
        (model / "model.pt").write_bytes(os.urandom(3 * 1024 * 1024))
    else:  # many small files: the error used to surface from a buffer flush at close
        for i in range(400):
            (model / f"f{i:03d}.bin").write_bytes(os.urandom(5000))
    return model


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 1 MiB tmpfs (root and mount(8) needed); unmounted afterwards."""
    with mounted_tmpfs(tmp_path, "1m") as mount_point:
        yield mount_point


@pytest.mark.parametrize("layout", ["one big file", "many small files"])
@pytest.mark.parametrize("compression", METHODS)
def test_write_to_a_full_tmpfs(small_fs: Path, tmp_path: Path, compression: str, layout: str, no_warnings: None) -> None:
    model = _model_dir(tmp_path, layout)
    target = small_fs / "m.carton"
    target.write_bytes(b"the old archive")
    with pytest.raises(CartonFormatError) as caught:
        cf.write(target, _info(), model_dir=model, compression=compression, overwrite=True)
    assert caught.value.code == "E-IO"
    assert ENOSPC_TEXT in caught.value.message
    assert sorted(p.name for p in small_fs.iterdir()) == ["m.carton"]
    assert target.read_bytes() == b"the old archive"
    # the space is free again: a small archive fits
    small = tmp_path / "small-model"
    small.mkdir()
    (small / "model.pt").write_bytes(b"weights")
    cf.write(target, _info(), model_dir=small, compression=compression, overwrite=True)
    assert cf.validate(target).ok


@pytest.mark.parametrize("compression", METHODS)
def test_shrink_to_a_full_tmpfs(small_fs: Path, tmp_path: Path, compression: str, no_warnings: None) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pt").write_bytes(b"weights to link" * 100)
    (model / "kept.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # stays in the zip: too big for the tmpfs
    source = cf.write(tmp_path / "source.carton", _info(), model_dir=model, compression=compression).path
    sha = cf.read(source).manifest["model/model.pt"]
    target = small_fs / "shrunk.carton"
    with pytest.raises(CartonFormatError) as caught:
        cf.shrink(source, target, {sha: ["https://example.com/model.pt"]})
    assert caught.value.code == "E-IO"
    assert ENOSPC_TEXT in caught.value.message
    assert list(small_fs.iterdir()) == []


# -- RLIMIT_FSIZE: the kernel refuses to grow the file (EFBIG) -------------------------------------

_FSIZE_SCRIPT = textwrap.dedent(
    r"""
    import json, os, resource, signal, sys
    from pathlib import Path
    import carton_format as cf

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
    work = Path(sys.argv[1])
    compression = sys.argv[2]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    info = cf.CartonInfo(runner=cf.RunnerInfo(runner_name="torchscript", required_framework_version="=2.13", runner_compat_version=1))
    model = work / "model"
    model.mkdir()
    (model / "model.pt").write_bytes(b"linked weights" * 100)
    (model / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    for i in range(50):
        (model / f"small{i:02d}.bin").write_bytes(os.urandom(700))
    reference = cf.write(work / "reference.carton", info, model_dir=model, compression=compression).path
    sha = cf.read(reference).manifest["model/model.pt"]
    urls = {sha: ["https://example.com/model.pt"]}
    shrunk = cf.shrink(reference, work / "reference-shrunk.carton", urls).path
    sizes = {"write": reference.stat().st_size, "shrink": shrunk.stat().st_size}

    results = []
    for operation in ("write", "shrink"):
        total = sizes[operation]
        for limit in (100, 200 * 1024, total - 20000, total - 30, total - 5):
            out = work / f"out-{operation}-{limit}"
            out.mkdir()
            target = out / "m.carton"
            target.write_bytes(b"the old archive")
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
            try:
                if operation == "write":
                    cf.write(target, info, model_dir=model, compression=compression, overwrite=True)
                else:
                    cf.shrink(reference, target, urls, overwrite=True)
                outcome = {"ok": True}
            except cf.CartonError as exc:
                outcome = {"code": exc.code, "message": exc.message}
            except BaseException as exc:
                outcome = {"raw": f"{type(exc).__name__}: {exc}"}
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            outcome.update(operation=operation, limit=limit, total=total,
                           left=sorted(p.name for p in out.iterdir()), target=target.read_bytes().decode("latin-1")[:40])
            results.append(outcome)
    print(json.dumps(results))
    """
)


@pytest.mark.parametrize("compression", METHODS)
def test_file_size_limit_in_a_subprocess_is_a_clean_e_io(tmp_path: Path, compression: str) -> None:
    pytest.importorskip("resource")
    done = subprocess.run(
        [sys.executable, "-c", _FSIZE_SCRIPT, str(tmp_path), compression],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "could not roll back" not in done.stderr
    assert "Traceback" not in done.stderr
    results = json.loads(done.stdout)
    assert len(results) == 10
    for r in results:
        where = f"{r['operation']} limited to {r['limit']} of {r['total']} bytes"
        assert r.get("code") == "E-IO", f"{where}: {r}"
        assert EFBIG_TEXT in r["message"], f"{where}: {r}"
        assert r["left"] == ["m.carton"], f"{where}: a temporary file was left: {r['left']}"
        assert r["target"] == "the old archive", f"{where}: the target was changed"
