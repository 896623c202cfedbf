"""The runner's view of ``model/``: verified bytes, and verified local files through the cache.

``local_file(name)`` gives frameworks that load from a path (``torch.jit.load``) a file on
disk holding exactly the MANIFEST-listed content:

* cached already (content-addressed by the MANIFEST sha256): that file, nothing to check;
* a stored member of a local archive: copied into a cache staging file with the kernel's
  ``copy_file_range`` while a thread hashes the member's bytes (one ``hashlib`` call on an mmap,
  which releases the GIL), so hashing overlaps copying *and* the runner's parsing; the ``with``
  block's exit waits for the hash, publishes the file in the cache, or raises
  ``E-MANIFEST-MISMATCH`` (the runner discards what it loaded);
* a compressed member: decoded through the format layer's verifying stream into the cache;
* a file of an unpacked directory: used in place, hashed concurrently the same way;
* a linked file (LINKS): fetched, decoded and verified into the cache before use.

When the cache cannot be written (read-only or full disk) members are extracted to a private
temporary file instead, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import shutil
import struct
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Iterator

import carton_format as cf

from .cache import Cache, Staging
from .dirsource import DirReader
from .errors import CartonRuntimeError
from .links_fetch import LinkFetcher

log = logging.getLogger(__name__)

MODEL_PREFIX = "model/"
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
LOCAL_SIG = 0x04034B50
COPY_CHUNK = 64 * 1024 * 1024


class _Hasher:
    """sha256 of a file range on a background thread (started at construction)."""

    def __init__(self, path: Path, offset: int, length: int):
        self._path, self._offset, self._length = path, offset, length
        self.digest: str | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="carton-verify", daemon=True)
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        try:
            with open(self._path, "rb") as fh:
                if self._length == 0:
                    self._started.set()
                    self.digest = hashlib.sha256(b"").hexdigest()
                    return
                start = self._offset - self._offset % mmap.ALLOCATIONGRANULARITY
                with mmap.mmap(fh.fileno(), self._offset + self._length - start, access=mmap.ACCESS_READ, offset=start) as mm:
                    view = memoryview(mm)[self._offset - start :]
                    try:
                        self._started.set()
                        self.digest = hashlib.sha256(view).hexdigest()  # one call: the GIL is released
                    finally:
                        view.release()
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self.error = exc
        finally:
            self._started.set()

    def result(self) -> str:
        self._thread.join()
        if self.error is not None:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"cannot read {self._path}: {self.error}")
        assert self.digest is not None
        return self.digest


def _check(member: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise cf.CartonFormatError("E-MANIFEST-MISMATCH", f"sha256 is {actual}, MANIFEST says {expected}", member=member)


def _copy_range(src: Path, offset: int, length: int, dest: Path) -> None:
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        done = 0
        try:
            while done < length:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), min(length - done, COPY_CHUNK), offset + done)
                if n == 0:
                    raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{src} ended early")
                done += n
        except (AttributeError, OSError):  # no copy_file_range (or not across these filesystems)
            fout.seek(done)
            fin.seek(offset + done)
            while done < length:
                chunk = fin.read(min(length - done, 8 * 1024 * 1024))
                if not chunk:
                    raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{src} ended early") from None
                fout.write(chunk)
                done += len(chunk)


class ArchiveModelFiles:
    """``ModelFiles`` over an opened archive (zip file or unpacked directory)."""

    def __init__(
        self,
        archive: cf.CartonArchive,
        *,
        cache: Cache,
        fetcher: LinkFetcher | None,
        archive_path: Path | None = None,
    ):
        self.archive = archive
        self.cache = cache
        self.fetcher = fetcher
        self.archive_path = archive_path  # the local zip file, when there is one
        self._manifest = archive.manifest

    # -- listing and streams ------------------------------------------------------------------

    def names(self) -> list[str]:
        return [p[len(MODEL_PREFIX):] for p in self._manifest if p.startswith(MODEL_PREFIX)]

    def _member(self, name: str) -> str:
        member = MODEL_PREFIX + name
        if member not in self._manifest:
            raise CartonRuntimeError("E-RUNTIME-RUNNER", f"the archive has no {member} (model files: {', '.join(self.names()) or 'none'})")
        return member

    def sha256(self, name: str) -> str:
        return self._manifest[self._member(name)]

    def open(self, name: str) -> IO[bytes]:
        member = self._member(name)
        hit = self.cache.lookup(self._manifest[member])
        if hit is not None:
            return open(hit, "rb")
        return self.archive.open(member)

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    # -- local files ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def local_file(self, name: str) -> Iterator[Path]:
        member = self._member(name)
        sha = self._manifest[member]
        hit = self.cache.lookup(sha)
        if hit is not None:
            yield hit
            return
        zip_reader = self.archive.zip
        if isinstance(zip_reader, DirReader):
            path = zip_reader.file_path(member) if zip_reader.get(member) else None
            if path is not None:
                hasher = _Hasher(path, 0, path.stat().st_size)
                yield path
                _check(member, sha, hasher.result())
                return
        urls = self.archive.linked_urls(member)
        if urls:
            if self.fetcher is None:
                raise cf.CartonFormatError("E-LINKS-NOT-FETCHED", f"lives behind LINKS ({urls[0]}) and no fetcher was given", member=member)
            yield self.fetcher.fetch(member, sha, urls)
            return
        try:
            staging_cm = self.cache.staging(sha)
            staging = staging_cm.__enter__()
        except (OSError, CartonRuntimeError) as exc:
            log.warning("cache unusable (%s); extracting %s to a temporary file", exc, member)
            with self._private_copy(member) as path:
                yield path
            return
        exc_info: tuple[Any, Any, Any] = (None, None, None)
        try:
            if isinstance(staging, Path):  # another process produced it meanwhile
                yield staging
                return
            span = self._stored_span(member)
            if span is not None:
                offset, length = span
                hasher = _Hasher(self.archive_path, offset, length)  # type: ignore[arg-type]
                try:
                    _copy_range(self.archive_path, offset, length, staging.path)  # type: ignore[arg-type]
                except BaseException:
                    hasher.result()
                    raise
                yield staging.path
                _check(member, sha, hasher.result())
                staging.commit()
            else:
                self._extract_stream(member, staging)
                staging.commit()
                yield staging.committed  # type: ignore[misc]
        except BaseException as exc:
            exc_info = (type(exc), exc, exc.__traceback__)
            raise
        finally:
            staging_cm.__exit__(*exc_info)

    def _extract_stream(self, member: str, staging: Staging) -> None:
        with self.archive.open(member) as src, open(staging.path, "wb") as dest:
            shutil.copyfileobj(src, dest, 4 * 1024 * 1024)

    @contextlib.contextmanager
    def _private_copy(self, member: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="carton-model-") as tmp:
            path = Path(tmp) / Path(member).name
            with self.archive.open(member) as src, open(path, "wb") as dest:
                shutil.copyfileobj(src, dest, 4 * 1024 * 1024)
            yield path

    def _stored_span(self, member: str) -> tuple[int, int] | None:
        """(offset, length) of a stored member's bytes in the local archive file, else None."""
        if self.archive_path is None:
            return None
        zip_reader = self.archive.zip
        try:
            entry = zip_reader.get(zip_reader.resolve_symlink(member))
        except cf.CartonFormatError:
            return None
        if entry is None or entry.method != 0 or entry.compressed_size != entry.uncompressed_size:
            return None
        try:
            with open(self.archive_path, "rb") as fh:
                header = os.pread(fh.fileno(), LOCAL_HEADER.size, entry.header_offset)
        except OSError:
            return None
        if len(header) != LOCAL_HEADER.size:
            return None
        fields = LOCAL_HEADER.unpack(header)
        if fields[0] != LOCAL_SIG or fields[9] != len(entry.raw_name):
            return None
        return entry.header_offset + LOCAL_HEADER.size + fields[9] + fields[10], entry.uncompressed_size


class InMemoryModelFiles:
    """``ModelFiles`` over a plain directory (``load_unpacked``): no MANIFEST, nothing to verify."""

    def __init__(self, root: Path):
        self.root = root

    def names(self) -> list[str]:
        out = []
        for dirpath, _dirs, files in os.walk(self.root, followlinks=True):
            for f in files:
                out.append((Path(dirpath) / f).relative_to(self.root).as_posix())
        return sorted(out)

    def _path(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise CartonRuntimeError("E-RUNTIME-RUNNER", f"the model directory {self.root} has no {name}")
        return path

    def open(self, name: str) -> IO[bytes]:
        return open(self._path(name), "rb")

    def read_bytes(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    @contextlib.contextmanager
    def local_file(self, name: str) -> Iterator[Path]:
        yield self._path(name)


__all__ = ["ArchiveModelFiles", "InMemoryModelFiles"]
