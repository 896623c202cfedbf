"""The runner's view of ``model/``: verified bytes, and verified local files through the cache.

``local_file(name)`` gives frameworks that load from a path (``torch.jit.load``) a file on
disk holding exactly the MANIFEST-listed content:

* cached already (content-addressed by the MANIFEST sha256): that file, nothing to check;
* a member whose bytes lie uncompressed in a local archive (the source's ``stored_span``): copied
  into a cache staging file with the kernel's ``copy_file_range`` while a child interpreter (a
  thread for small files) hashes the *copy* right behind it
  (:class:`~carton_runtime.overlapped_verify.CopyHasher`), so hashing overlaps copying *and* the
  runner's parsing, and what is hashed is exactly what the runner reads and the cache keeps; the
  ``with`` block's exit waits for the hash, publishes the file in the cache, or raises
  ``E-MANIFEST-MISMATCH`` (the runner discards what it loaded);
* a compressed member: decoded through the format layer's verifying stream into the cache;
* a member that is a whole local file (``stored_span().whole_file``: a file of an unpacked
  directory, such as the cache's unpacked copy of an http(s) archive): used in place, hashed
  while the runner reads it (:func:`~carton_runtime.overlapped_verify.hash_range`).  Nothing from
  a directory is cached again, so an http(s) model is on disk once, and a change made to the
  file during the load can affect that load and nothing after it.  Once it matched, the cache
  records its :class:`~carton_runtime.cache.FileStamp` (device, inode, size, mtime, ctime); a
  later load finding exactly that stamp uses the file without hashing it (see "Verification
  records" below);
* a linked file (LINKS): fetched, decoded and verified into the cache before use.

When the cache cannot be written (read-only or full disk) members are extracted to a private
temporary file instead, with a warning.

Verification records: a write changes a file's ctime (restoring mtime cannot hide it), and a
copy or replacement has another inode, so an unchanged stamp means unchanged bytes, short of
damage that bypasses the file system (bit rot, a raw write to the device): that is caught only
with ``CARTON_VERIFY=always`` or ``--reverify`` (:func:`carton_runtime.config.verify_always`),
which hash the file anyway and refresh the record.  A file is recorded only when its stamp is the
same after the hash as before, and its mtime and ctime lie at least ``SETTLE_NS`` (``SETTLE_COARSE_NS``
where timestamps are whole seconds) before the load began: a write in the same timestamp tick
as the one the stamp shows would not change it (git's "racy" files).  So a file written just
before a load is hashed on that load and recorded on the next.  A mismatch drops the file's record.
Measured with a 438 MB model on a 2-vCPU VM (medians of 15, paired with ``torch.jit.load`` in the
same process): the second load of an unpacked directory takes 0.99-1.01x ``torch.jit.load``;
hashed (``--reverify``, as every load did before), 1.05x with the other core idle and 1.3-1.8x
with it busy (sha256 of 438 MB takes 250 ms).  A local zip's second load is 0.99-1.02x without
any record: its model file is in the cache, and opening the zip and checking its metadata takes
0.6 ms, so a per-archive record would buy nothing.

If the runner fails while the hash is still running (a tampered TorchScript file usually makes
torch fail to parse first), the hash is awaited and a mismatch is reported as
``E-MANIFEST-MISMATCH`` rather than as the runner's parse error.

Why a stored member of a local archive is copied rather than loaded in place (measured with a
100 MB model, torch 2.13, on a 2-vCPU VM): ``torch.jit.load`` accepts only a path or a file
object.  Torch's zip reader looks for its central directory at the *end* of the file, so no path
can point into the middle of the archive.  A file object is read whole into ``bytes``, which
``torch._C.import_ir_module_from_buffer`` then copies again before parsing: about 155 ms, against
46 ms for ``torch.jit.load`` of a path and 36 ms for ``copy_file_range`` into the cache.  Once
the copy is in the cache, a warm load is ``torch.jit.load`` of that file with no hashing, so no
separate "this archive was verified" record is needed.  A cold load takes about twice as long
as ``torch.jit.load`` on that VM.  The whole member has to be hashed before the model is
returned, and sha256 of 100 MB alone takes 75-95 ms there, 1.6-2x torch's own load.  So a cold
load cannot get down to 1.5x on that machine, whatever the copy strategy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

import carton_format as cf
from carton_format.integrity import CHUNK_SIZE

from .cache import Cache, FileStamp, Staging
from .config import verify_always
from .errors import CartonRuntimeError
from .links_fetch import LinkFetcher
from .overlapped_verify import CopyHasher, hash_range, verified_on_exit

log = logging.getLogger(__name__)

MODEL_PREFIX = "model/"

#: A file whose mtime or ctime is more recent than this when a load begins is not recorded as
#: verified (ns); ``SETTLE_COARSE_NS`` where both are whole seconds (FAT, HFS+, some NFS servers).
SETTLE_NS = 100_000_000
SETTLE_COARSE_NS = 2_000_000_000


def _settled(stamp: FileStamp, started_ns: int) -> bool:
    """Whether any write after ``started_ns`` is sure to change ``stamp`` (its times lie further
    back than a timestamp tick; see the module docstring)."""
    coarse = stamp.mtime_ns % 1_000_000_000 == 0 and stamp.ctime_ns % 1_000_000_000 == 0
    return max(stamp.mtime_ns, stamp.ctime_ns) <= started_ns - (SETTLE_COARSE_NS if coarse else SETTLE_NS)


class ArchiveModelFiles:
    """``ModelFiles`` over an opened archive, whatever its source (zip file, directory, remote)."""

    def __init__(self, archive: cf.CartonArchive, *, cache: Cache, fetcher: LinkFetcher | None) -> None:
        self.archive = archive
        self.cache = cache
        self.fetcher = fetcher
        self._manifest = archive.manifest

    # -- listing and streams ------------------------------------------------------------------

    def names(self) -> list[str]:
        """Files under ``model/``, relative to it, as MANIFEST lists them."""
        return [p[len(MODEL_PREFIX):] for p in self._manifest if p.startswith(MODEL_PREFIX)]

    def _member(self, name: str) -> str:
        member = MODEL_PREFIX + name
        if member not in self._manifest:
            raise CartonRuntimeError("E-RUNTIME-RUNNER", f"the archive has no {member} (model files: {', '.join(self.names()) or 'none'})")
        return member

    def sha256(self, name: str) -> str:
        """The MANIFEST sha256 of a model file."""
        return self._manifest[self._member(name)]

    def open(self, name: str) -> IO[bytes]:
        """A stream of a model file's verified content (the cached file when there is one)."""
        member = self._member(name)
        hit = self.cache.lookup(self._manifest[member])
        if hit is not None:
            return open(hit, "rb")
        return self.archive.open(member)

    def read_bytes(self, name: str) -> bytes:
        """A model file's whole verified content."""
        with self.open(name) as stream:
            return stream.read()

    # -- local files ----------------------------------------------------------------------------

    def _span(self, member: str) -> cf.StoredSpan | None:
        """Where the member's bytes lie uncompressed on local disk (None: linked, compressed,
        remote); a source that cannot say (a broken symlink member) gives None, and the verified
        stream path then reports the problem."""
        if self.archive.source.member(member) is None:
            return None
        try:
            return self.archive.source.stored_span(member)
        except cf.CartonFormatError:
            return None

    @contextlib.contextmanager
    def local_file(self, name: str) -> Iterator[Path]:
        """A local path holding a model file's content, verified when the ``with`` block exits (see the module docstring)."""
        member = self._member(name)
        sha = self._manifest[member]
        hit = self.cache.lookup(sha)
        if hit is not None:
            yield hit
            return
        span = self._span(member)
        if span is not None and span.whole_file:  # used in place, hashed while the runner reads it (or recorded)
            with self._in_place(member, sha, span) as path:
                yield path
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
            if span is not None:
                hasher = CopyHasher(span.path, span.offset, span.length, staging.path)
                hasher.copy()  # returns with the hash of the copy's last bytes under way
                with verified_on_exit(member, sha, hasher):
                    yield staging.path
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

    @contextlib.contextmanager
    def _in_place(self, member: str, sha: str, span: cf.StoredSpan) -> Iterator[Path]:
        """A whole local file, used in place: not hashed when a verification record says it was
        verified unchanged, else hashed while the runner reads it and recorded once it matched."""
        started = time.time_ns()
        before = FileStamp.of(span.path)
        if before is not None and (before.size != span.length or span.offset != 0):
            before = None  # changed since the source looked at it: hashed, and the hash decides
        if before is not None and not verify_always() and self.cache.verified_sha256(before) == sha:
            log.debug("%s: %s is unchanged since it was verified; not hashed again", member, span.path)
            yield span.path
            return
        try:
            with verified_on_exit(member, sha, hash_range(span.path, span.offset, span.length)):
                yield span.path
        except cf.CartonFormatError as exc:
            if before is not None and exc.code == "E-MANIFEST-MISMATCH":
                self.cache.forget_verified(before)  # e.g. bit rot found by a forced hash
            raise
        if before is not None:
            self._remember(member, sha, span.path, before, started)

    def _remember(self, member: str, sha: str, path: Path, before: FileStamp, started: int) -> None:
        """Record ``path`` as verified if it did not change during the hash and is settled."""
        if FileStamp.of(path) != before or not _settled(before, started):
            log.debug("%s: %s changed during the load or just before it; not recorded as verified", member, path)
            return
        try:
            self.cache.record_verified(before, sha, path)
        except (OSError, CartonRuntimeError) as exc:  # a read-only (shared) cache: hashed again next time
            log.debug("%s: cannot record %s as verified (%s)", member, path, exc)

    # -- a local directory ---------------------------------------------------------------------

    @contextlib.contextmanager
    def local_dir(self) -> Iterator[Path]:
        """A local directory whose files are exactly the ``model/`` files, every one verified
        against MANIFEST before the directory is handed out (for a runner in another process,
        which takes a path).  Valid until the ``with`` block exits.

        An unpacked carton (a user's directory, or the cache's unpacked copy of an http(s)
        archive) whose ``model/`` holds every listed file and nothing else is handed out as it
        is, after :meth:`local_file`'s in-place check of each file (a verification record
        skips the hash).  Otherwise each file goes through :meth:`local_file` (copied once into
        the cache and verified there, LINKS fetched) and a private temporary directory gets a
        hard link to it (a symbolic link to the cached file across file systems, a copy when
        the cache is unusable); it is removed when the block exits."""
        in_place = self._unpacked_model_dir()
        if in_place is not None:
            for name in self.names():
                member = self._member(name)
                with self._in_place(member, self._manifest[member], self._span(member)):  # type: ignore[arg-type]
                    pass  # verified (or recorded as verified) on exit
            yield in_place
            return
        with tempfile.TemporaryDirectory(prefix="carton-model-dir-") as tmp:
            root = Path(tmp)
            for name in self.names():
                dest = root / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                member = self._member(name)
                with self.local_file(name) as path:
                    self._place(member, Path(path), dest)
            yield root

    def _unpacked_model_dir(self) -> Path | None:
        """``model/`` of a directory source when it can be handed out as it is: every listed
        file is a whole file at its place there (none behind LINKS) and no other file is."""
        root = getattr(self.archive.source, "root", None)
        if not isinstance(self.archive.source, cf.DirectorySource) or root is None:
            return None
        model_dir = Path(root) / MODEL_PREFIX.rstrip("/")
        names = self.names()
        for name in names:
            span = self._span(self._member(name))
            if span is None or not span.whole_file or span.path != model_dir / name:
                return None
        if not model_dir.is_dir() or DirectoryModelFiles(model_dir).names() != sorted(names):
            return None
        return model_dir

    def _place(self, member: str, path: Path, dest: Path) -> None:
        """Put ``path`` (what :meth:`local_file` gave, not yet verified) at ``dest``: a hard
        link; across file systems a symbolic link to where the verified file stays (the cache
        entry, or the file used in place); else a copy."""
        try:
            os.link(path, dest)
            return
        except OSError:
            pass
        sha = self._manifest[member]
        span = self._span(member)
        if path.is_relative_to(self.cache.root):
            os.symlink(self.cache.file_path(sha), dest)  # where local_file's exit publishes it
        elif span is not None and span.whole_file and span.path == path:
            os.symlink(path, dest)
        else:
            shutil.copyfile(path, dest)

    def _extract_stream(self, member: str, staging: Staging) -> None:
        with self.archive.open(member) as src, open(staging.path, "wb") as dest:  # verified at EOF
            shutil.copyfileobj(src, dest, CHUNK_SIZE)

    @contextlib.contextmanager
    def _private_copy(self, member: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="carton-model-") as tmp:
            path = Path(tmp) / Path(member).name
            with self.archive.open(member) as src, open(path, "wb") as dest:  # verified at EOF
                shutil.copyfileobj(src, dest, CHUNK_SIZE)
            yield path


class DirectoryModelFiles:
    """``ModelFiles`` over a plain directory (``load_unpacked``): no MANIFEST, nothing to verify."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        """Every file under the directory, relative to it, sorted."""
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
        """A stream of a file in the directory."""
        return open(self._path(name), "rb")

    def read_bytes(self, name: str) -> bytes:
        """A file's whole content."""
        return self._path(name).read_bytes()

    @contextlib.contextmanager
    def local_file(self, name: str) -> Iterator[Path]:
        """The file itself, in place (nothing to verify)."""
        yield self._path(name)

    @contextlib.contextmanager
    def local_dir(self) -> Iterator[Path]:
        """The directory itself (nothing to verify)."""
        yield self.root


__all__ = ["ArchiveModelFiles", "DirectoryModelFiles"]
