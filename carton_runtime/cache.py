"""The local cache: content-addressed by sha256, safe for several processes at once.

Layout under the cache root (``CARTON_CACHE_DIR``, else the platform's user cache directory,
e.g. ``~/.cache/carton``)::

    files/<sha256>/file        a verified file (same layout as the original's download cache)
    files/<sha256>/info.json   where it came from (informational)
    urls/<sha256 of URL>.json  {"url", "sha256", "size"}: which file a remote archive URL gave
    locks/<key>.lock           one lock file per item being produced

A file enters the cache only after its sha256 was checked, through a temporary directory next to
its final place and an atomic rename, while holding the item's file lock, so concurrent
processes produce it once and readers never see a partial file.  Cached files are trusted
afterwards (their size is checked on every lookup), which is what makes cached loads cheap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from carton_format.integrity import sha256_hex

from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "CARTON_CACHE_DIR"
APP_NAME = "carton"


def default_root() -> Path:
    """``CARTON_CACHE_DIR`` if set, else the platform's user cache directory for carton."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def url_key(url: str) -> str:
    """The name of a URL's record under ``urls/`` (the sha256 of the URL)."""
    return sha256_hex(url.encode("utf-8"))


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class Staging:
    """A file being produced for the cache; ``commit()`` moves it into place."""

    def __init__(self, cache: "Cache", sha256: str, tmp_dir: Path) -> None:
        self.cache = cache
        self.sha256 = sha256
        self.dir = tmp_dir
        self.path = tmp_dir / "file"
        self.committed: Path | None = None

    def commit(self, source: str | None = None) -> Path:
        """Publish the (already verified) file; returns its final path."""
        if source is not None:
            (self.dir / "info.json").write_text(json.dumps({"url": source}))
        final_dir = self.cache.root / "files" / self.sha256
        try:
            os.rename(self.dir, final_dir)
        except OSError:
            # Another producer (e.g. the original implementation sharing CARTON_CACHE_DIR, which
            # does not use our locks) got there first: keep theirs if it is complete.
            if not (final_dir / "file").is_file():
                raise
            shutil.rmtree(self.dir, ignore_errors=True)
        self.committed = final_dir / "file"
        return self.committed


class Cache:
    """One cache root; cheap to create (nothing is touched until used)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    # -- directories ----------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        path = self.root / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CartonRuntimeError(
                "E-RUNTIME-CACHE", f"cannot create the cache directory {path}: {exc.strerror or exc} (set {ENV_CACHE_DIR})"
            ) from None
        return path

    # -- content-addressed files ------------------------------------------------------------

    def file_path(self, sha256: str) -> Path:
        """Where the file with this sha256 lives (or would live) in the cache."""
        return self.root / "files" / sha256 / "file"

    def lookup(self, sha256: str, size: int | None = None) -> Path | None:
        """The cached file with this sha256, or None (also None when its size is wrong)."""
        path = self.file_path(sha256)
        try:
            st = path.stat()
        except OSError:
            return None
        if size is not None and st.st_size != size:
            log.warning("cache: %s has %d bytes, expected %d; ignoring it", path, st.st_size, size)
            return None
        return path

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """An inter-process lock for ``key`` (a sha256 or a URL key)."""
        import filelock

        lock_path = self._dir("locks") / f"{key}.lock"
        lock = filelock.FileLock(str(lock_path), thread_local=False)
        try:
            lock.acquire(timeout=1)
        except filelock.Timeout:
            log.info("cache: waiting for another process producing %s", key[:16])
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def staging(self, sha256: str) -> Iterator[Staging | Path]:
        """Hold the lock for ``sha256``; yield the cached path if another process produced it
        meanwhile, else a :class:`Staging` to fill and ``commit()`` (discarded if not committed)."""
        if not _is_sha256(sha256):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"not a lowercase hex sha256: {sha256!r}")
        files = self._dir("files")
        with self.lock(sha256):
            hit = self.lookup(sha256)
            if hit is not None:
                yield hit
                return
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=files))
            staging = Staging(self, sha256, tmp)
            try:
                yield staging
            finally:
                if staging.committed is None:
                    shutil.rmtree(tmp, ignore_errors=True)

    # -- remote archives by URL ----------------------------------------------------------------

    def url_lookup(self, url: str) -> Path | None:
        """The cached archive a URL gave before (no network I/O), or None."""
        record = self.root / "urls" / f"{url_key(url)}.json"
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("url") != url or not _is_sha256(str(data.get("sha256"))):
            return None
        return self.lookup(data["sha256"], data.get("size"))

    def url_record(self, url: str, sha256: str, size: int) -> None:
        """Remember which file (sha256, size) a remote archive URL gave; the record is replaced atomically."""
        urls = self._dir("urls")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=urls)
        with os.fdopen(fd, "w") as fh:
            json.dump({"url": url, "sha256": sha256, "size": size, "time": int(time.time())}, fh)
        os.replace(tmp, urls / f"{url_key(url)}.json")

    # -- maintenance ------------------------------------------------------------------------------

    def clear(self) -> None:
        """Remove everything (other processes' in-flight downloads fail cleanly)."""
        for name in ("files", "urls"):
            shutil.rmtree(self.root / name, ignore_errors=True)

    def size_bytes(self) -> int:
        """Total bytes under the cache root (files, URL records and locks)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
        return total


__all__ = ["Cache", "ENV_CACHE_DIR", "Staging", "default_root", "url_key"]
