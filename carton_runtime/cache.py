"""The local cache: content-addressed by sha256, safe for several processes at once.

Layout under the cache root (``CARTON_CACHE_DIR``, else ``cache_dir`` in the config file, else
``~/.carton/cache/`` as in the original; see :mod:`carton_runtime.config`)::

    files/<sha256>/file        a verified file (same layout as the original's download cache)
    files/<key>/carton/        a remote archive stored unpacked (carton.toml, MANIFEST, model/, ...;
                               see :mod:`carton_runtime.unpacked`): the one copy of an http(s) model
    files/<...>/info.json      where it came from (informational)
    urls/<sha256 of URL>.json  {"url", "sha256", "kind", "size", "etag", "last_modified", "checked",
                               "tail_sha256", "tail_len", "manifest_sha256"}: which entry a remote
                               archive URL gave ("kind" "carton": ``files/<sha256>/carton``; absent:
                               ``files/<sha256>/file``, the archive kept whole), its size, the hash
                               of its last bytes (for revalidation), and when it was last checked
    locks/<key>.lock           one lock file per item being produced
    verified/<key>.json        {"dev", "ino", "size", "mtime_ns", "ctime_ns", "sha256", "path"}: a
                               local file used in place (a file of an unpacked carton) that was
                               hashed and matched ``sha256``, while its stat was this; ``<key>`` is
                               the sha256 of "<dev>:<ino>" (see :class:`FileStamp`)

Last use: every cache hit (:meth:`Cache.lookup`, and so :meth:`Cache.url_lookup`) sets the
modification time of the entry's directory ``files/<sha256>/`` to now (one ``utime`` call; filesystem
atime is not relied on).  :meth:`Cache.entries`, :meth:`Cache.prune` and ``carton cache`` use it.

A file enters the cache only after its sha256 was checked, through a temporary directory next to
its final place and an atomic rename, while holding the item's file lock, so concurrent
processes produce it once and readers never see a partial file.  Cached files are trusted
afterwards (their size is checked on every lookup), which is what makes cached loads cheap.

Verification records (``verified/``): a file used in place, outside ``files/<sha256>/file``, is
hashed while the runner reads it; once it matched its MANIFEST hash, :meth:`Cache.record_verified`
notes its :class:`FileStamp`, and a later load of a file with exactly that stamp skips the hash
(:mod:`carton_runtime.model_files` decides when).  One small JSON file per file (device and inode),
replaced atomically, so concurrent processes at worst write the same record twice.  ``clear``
removes them; ``prune`` drops those whose file is gone or changed.

Temporary entries are named after the item they produce and their owner:
``files/.tmp-<sha256>-<host>-<pid>-*`` (a file being staged), ``files/.tmp-download-<URL key>-<host>-<pid>-*``
(a remote archive being downloaded), ``urls/.tmp-<host>-<pid>-*`` and ``verified/.tmp-<host>-<pid>-*``
(a record being written).  A
process killed mid-download leaves them behind; the first time a process produces something in
a cache, :meth:`Cache.clean_stale` removes those no live process is working on: an entry whose
owner (same host) is dead, or that is older than a day, and, for an item's entries, only while
holding that item's lock without waiting for it (its producer holds it throughout, so an entry
being produced is never touched).  Lock files free for an hour are removed too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from carton_format.integrity import sha256_hex

from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "CARTON_CACHE_DIR"
APP_NAME = "carton"


def default_root() -> Path:
    """The cache root: ``CARTON_CACHE_DIR``, else ``cache_dir`` in the config file, else
    ``~/.carton/cache/`` (the original's default; see :mod:`carton_runtime.config`)."""
    from .config import load_config

    return load_config().cache_dir


def url_key(url: str) -> str:
    """The name of a URL's record under ``urls/`` (the sha256 of the URL)."""
    return sha256_hex(url.encode("utf-8"))


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


#: A temporary entry whose owner is not known to be dead is removed only after this long (s).
STALE_AGE_S = 24 * 3600.0
#: A lock file nobody holds is removed once it is this old (s).
LOCK_STALE_AGE_S = 3600.0

_TMP_NAME = re.compile(r"^\.tmp-(?:download-)?(?:(?P<key>[0-9a-f]{64})-)?(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-")


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _owner_tag() -> str:
    """``<host>-<pid>`` of this process, as temporary names carry it."""
    return f"{_host_tag()}-{os.getpid()}"


@dataclass(frozen=True)
class _TmpOwner:
    key: str | None
    host: str
    pid: int


def _tmp_owner(name: str) -> _TmpOwner | None:
    m = _TMP_NAME.match(name)
    if m is None:
        return None
    return _TmpOwner(m.group("key"), m.group("host"), int(m.group("pid")))


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (True when that cannot be told)."""
    if sys.platform == "win32" or pid <= 0:  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user
        return True
    return True


def _newest_mtime(path: Path) -> float:
    """The entry's mtime, or for a directory the newest of it and its files (a file being written)."""
    st = path.lstat()
    newest = st.st_mtime
    if path.is_dir() and not path.is_symlink():
        with os.scandir(path) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class CacheEntry:
    """One cached file: ``size`` counts its directory (file and info.json), ``urls`` where it came
    from when known (LINKS source, remote archive URLs), ``last_used`` a Unix time."""

    sha256: str
    size: int
    file_size: int
    urls: list[str]
    last_used: float


@dataclass
class PruneResult:
    """What :meth:`Cache.prune` removed, and what it left because another process held its lock."""

    removed: list[CacheEntry] = field(default_factory=list)
    skipped: list[CacheEntry] = field(default_factory=list)
    freed_bytes: int = 0


_cleaned_lock = threading.Lock()
_cleaned_roots: set[str] = set()


#: The payload of an entry: a file, or an unpacked carton (a directory).
FILE = "file"
UNPACKED = "carton"
#: The folder of verification records.
VERIFIED = "verified"


@dataclass(frozen=True)
class FileStamp:
    """One version of a file, as ``stat`` tells it: any write changes ``ctime_ns`` (even one that
    restores size and mtime), and device and inode tell a copy or a replaced file apart."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> "FileStamp | None":
        """The stamp of ``path`` (symbolic links followed), or None where it cannot be stat'ed
        or the file system gives no inode number (nothing then identifies the file)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if st.st_ino == 0:
            return None
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def key(self) -> str:
        """The record's name under ``verified/``: one per file, whatever its path."""
        return sha256_hex(f"{self.dev}:{self.ino}".encode())


class Staging:
    """A file (or, for ``payload`` "carton", a directory) being produced for the cache; ``commit()`` moves it into place."""

    def __init__(self, cache: "Cache", sha256: str, tmp_dir: Path, payload: str = FILE) -> None:
        self.cache = cache
        self.sha256 = sha256
        self.dir = tmp_dir
        self.payload = payload
        self.path = tmp_dir / payload
        self.committed: Path | None = None

    def commit(self, source: str | None = None) -> Path:
        """Publish the (already verified) file or directory; returns its final path."""
        if source is not None:
            (self.dir / "info.json").write_text(json.dumps({"url": source}))
        final_dir = self.cache.root / "files" / self.sha256
        try:
            os.rename(self.dir, final_dir)
        except OSError:
            # Another producer (e.g. the original implementation sharing CARTON_CACHE_DIR, which
            # does not use our locks) got there first: keep theirs if it is complete.
            if not (final_dir / self.payload).exists():
                raise
            shutil.rmtree(self.dir, ignore_errors=True)
        self.committed = final_dir / self.payload
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
        with contextlib.suppress(OSError):  # last use; a read-only (shared) cache just does not record it
            os.utime(path.parent)
        return path

    def unpacked_path(self, key: str) -> Path:
        """Where the unpacked carton ``key`` lives (or would live) in the cache."""
        return self.root / "files" / key / UNPACKED

    def lookup_unpacked(self, key: str) -> Path | None:
        """The unpacked carton ``key`` (a directory, published whole by one rename), or None."""
        path = self.unpacked_path(key)
        if not path.is_dir():
            return None
        with contextlib.suppress(OSError):
            os.utime(path.parent)
        return path

    def _file_lock(self, key: str) -> Any:
        """The inter-process file lock of ``key`` (``locks/<key>.lock``), not yet acquired."""
        import filelock

        return filelock.FileLock(str(self._dir("locks") / f"{key}.lock"), thread_local=False)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """An inter-process lock for ``key`` (a sha256 or a URL key)."""
        import filelock

        lock = self._file_lock(key)
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
    def try_lock(self, key: str) -> Iterator[bool]:
        """Hold the lock for ``key`` if nobody holds it now (yields True), else yield False at once."""
        import filelock

        lock = self._file_lock(key)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    @staticmethod
    def tmp_prefix(key: str | None = None, kind: str = "") -> str:
        """The prefix of a temporary entry producing ``key`` (``kind``: e.g. "download"), naming this process."""
        return ".tmp-" + (f"{kind}-" if kind else "") + (f"{key}-" if key else "") + _owner_tag() + "-"

    @contextlib.contextmanager
    def staging(self, sha256: str, payload: str = FILE) -> Iterator[Staging | Path]:
        """Hold the lock for ``sha256``; yield the cached path if another process produced it
        meanwhile, else a :class:`Staging` to fill and ``commit()`` (discarded if not committed).
        ``payload`` "carton": an unpacked carton (a directory) keyed ``sha256``."""
        if not _is_sha256(sha256):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"not a lowercase hex sha256: {sha256!r}")
        files = self._dir("files")
        self.clean_stale_once()
        with self.lock(sha256):
            hit = self.lookup_unpacked(sha256) if payload == UNPACKED else self.lookup(sha256)
            if hit is not None:
                yield hit
                return
            tmp = Path(tempfile.mkdtemp(prefix=self.tmp_prefix(sha256), dir=files))
            staging = Staging(self, sha256, tmp, payload)
            try:
                yield staging
            finally:
                if staging.committed is None:
                    shutil.rmtree(tmp, ignore_errors=True)

    # -- remote archives by URL ----------------------------------------------------------------

    def url_entry(self, url: str) -> tuple[dict[str, Any], Path] | None:
        """The record of a URL and the cached archive it names (no network I/O), or None: an
        unpacked carton directory (record "kind" "carton"), or the archive file kept whole."""
        record = self.root / "urls" / f"{url_key(url)}.json"
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("url") != url or not _is_sha256(str(data.get("sha256"))):
            return None
        size = data.get("size")
        if data.get("kind") == UNPACKED:
            path = self.lookup_unpacked(data["sha256"])
        else:
            path = self.lookup(data["sha256"], size if isinstance(size, int) else None)
        return (data, path) if path is not None else None

    def url_lookup(self, url: str) -> Path | None:
        """The cached archive a URL gave before (no network I/O), or None."""
        entry = self.url_entry(url)
        return entry[1] if entry is not None else None

    def url_record(
        self, url: str, sha256: str, size: int, *, etag: str | None = None, last_modified: str | None = None, **extra: Any
    ) -> None:
        """Remember which entry (sha256 or key; ``size``: the archive's bytes) a remote archive URL
        gave, with the validators the server sent (ETag, Last-Modified), the time (``checked``) and
        ``extra`` fields (kind, tail_sha256, tail_len, manifest_sha256); replaced atomically."""
        now = time.time()
        self._write_url_record(
            url,
            {"url": url, "sha256": sha256, "size": size, "etag": etag, "last_modified": last_modified, "time": int(now), "checked": now, **extra},
        )

    def url_checked(self, url: str, record: dict[str, Any]) -> None:
        """The server confirmed ``record`` (from :meth:`url_entry`) is current: note the time."""
        self._write_url_record(url, {**record, "checked": time.time()})

    def url_forget(self, url: str) -> None:
        """Drop a URL's record (the file stays in the cache, addressed by its sha256)."""
        (self.root / "urls" / f"{url_key(url)}.json").unlink(missing_ok=True)

    def _write_url_record(self, url: str, data: dict[str, Any]) -> None:
        self._write_json(self._dir("urls"), f"{url_key(url)}.json", data)

    def _write_json(self, folder: Path, name: str, data: dict[str, Any]) -> None:
        """``folder/name`` replaced atomically by ``data`` as JSON (a temporary file, then rename)."""
        fd, tmp = tempfile.mkstemp(prefix=self.tmp_prefix(), dir=folder)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- verification records --------------------------------------------------------------------

    def _verified_record(self, stamp: FileStamp) -> Path:
        return self.root / VERIFIED / f"{stamp.key()}.json"

    def verified_sha256(self, stamp: FileStamp) -> str | None:
        """The sha256 recorded for the file with exactly this stamp, or None: no record, one of
        another version of the file (any field differs), or one that cannot be read."""
        try:
            data = json.loads(self._verified_record(stamp).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not _is_sha256(str(data.get("sha256"))):
            return None
        fields = ("dev", "ino", "size", "mtime_ns", "ctime_ns")
        if any(type(data.get(f)) is not int or data[f] != getattr(stamp, f) for f in fields):
            return None
        return str(data["sha256"])

    def record_verified(self, stamp: FileStamp, sha256: str, path: str | os.PathLike[str]) -> None:
        """Note that the file with ``stamp`` (at ``path``, kept for ``prune``) hashed to ``sha256``;
        replaced atomically.  Raises ``OSError`` or ``CartonRuntimeError`` (read-only cache)."""
        if not _is_sha256(sha256):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"not a lowercase hex sha256: {sha256!r}")
        data = {**asdict(stamp), "sha256": sha256, "path": os.fspath(path), "time": int(time.time())}
        self._write_json(self._dir(VERIFIED), f"{stamp.key()}.json", data)

    def forget_verified(self, stamp: FileStamp) -> None:
        """Drop the record of the file ``stamp`` names (any version of it); never raises."""
        with contextlib.suppress(OSError):
            self._verified_record(stamp).unlink(missing_ok=True)

    def prune_verified(self) -> int:
        """Drop the records whose file is gone or changed since (they can never match again); returns how many."""
        removed = 0
        try:
            names = [e.name for e in os.scandir(self.root / VERIFIED) if e.name.endswith(".json") and not e.name.startswith(".")]
        except OSError:
            return removed
        for name in names:
            record = self.root / VERIFIED / name
            try:
                data = json.loads(record.read_text())
                path = data["path"]
                stamp = FileStamp.of(path) if isinstance(path, str) else None
                live = stamp is not None and name == f"{stamp.key()}.json" and self.verified_sha256(stamp) is not None
            except (OSError, ValueError, TypeError, KeyError):
                live = False
            if not live:
                with contextlib.suppress(OSError):
                    record.unlink()
                    removed += 1
        return removed

    # -- maintenance ------------------------------------------------------------------------------

    def clear(self) -> int:
        """Remove everything (other processes' in-flight downloads fail cleanly); returns the bytes freed."""
        before = self.size_bytes()
        for name in ("files", "urls", VERIFIED):
            shutil.rmtree(self.root / name, ignore_errors=True)
        return max(0, before - self.size_bytes())

    def url_records(self) -> list[dict[str, Any]]:
        """Every well-formed record under ``urls/`` (no network I/O), sorted by URL."""
        records = []
        try:
            names = [e.name for e in os.scandir(self.root / "urls") if e.name.endswith(".json") and not e.name.startswith(".")]
        except OSError:
            return records
        for name in names:
            try:
                data = json.loads((self.root / "urls" / name).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and isinstance(data.get("url"), str) and _is_sha256(str(data.get("sha256"))):
                records.append(data)
        return sorted(records, key=lambda r: r["url"])

    def entries(self) -> list["CacheEntry"]:
        """The cached files and unpacked cartons (``files/<sha256>/``), least recently used first;
        an unpacked carton's ``file_size`` is the bytes of its files."""
        by_sha: dict[str, list[str]] = {}
        for record in self.url_records():
            by_sha.setdefault(record["sha256"], []).append(record["url"])
        out = []
        try:
            names = [e.name for e in os.scandir(self.root / "files") if _is_sha256(e.name)]
        except OSError:
            return out
        for name in names:
            folder = self.root / "files" / name
            try:
                last_used = folder.stat().st_mtime
                unpacked = (folder / UNPACKED).is_dir()
                file_size = _tree_bytes(folder / UNPACKED) if unpacked else (folder / FILE).stat().st_size
            except OSError:
                continue  # removed meanwhile, or not a complete entry
            size = file_size if unpacked else 0
            with contextlib.suppress(OSError), os.scandir(folder) as items:
                for item in items:
                    if item.name != UNPACKED:
                        with contextlib.suppress(OSError):
                            size += item.stat(follow_symlinks=False).st_size
            urls = list(by_sha.get(name, []))
            with contextlib.suppress(OSError, ValueError, AttributeError):
                source = json.loads((folder / "info.json").read_text()).get("url")
                if isinstance(source, str) and source not in urls:
                    urls.insert(0, source)
            out.append(CacheEntry(name, size, file_size, urls, last_used))
        return sorted(out, key=lambda e: (e.last_used, e.sha256))

    def remove_entry(self, sha256: str) -> bool:
        """Remove one cached file and the URL records naming it, unless another process holds its
        lock (it is producing or replacing it): then nothing is touched and this returns False."""
        if not _is_sha256(sha256):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"not a lowercase hex sha256: {sha256!r}")
        with self.try_lock(sha256) as free:
            if not free:
                return False
            folder = self.root / "files" / sha256
            # Renamed away first, so a concurrent lookup sees the entry whole or not at all.
            doomed = folder.with_name(self.tmp_prefix(sha256) + "remove")
            try:
                os.rename(folder, doomed)
            except FileNotFoundError:
                pass
            else:
                shutil.rmtree(doomed, ignore_errors=True)
            for record in self.url_records():
                if record["sha256"] == sha256:
                    self.url_forget(record["url"])
        return True

    def prune(self, *, older_than_s: float | None = None, max_size: int | None = None, now: float | None = None) -> "PruneResult":
        """Remove cached files, least recently used first: those not used for ``older_than_s``
        seconds, then more until the cache's total size is at most ``max_size`` bytes.  An entry
        whose lock another process holds is skipped (and still counts towards the size)."""
        now = time.time() if now is None else now
        result = PruneResult()
        total = self.size_bytes()
        for entry in self.entries():
            too_old = older_than_s is not None and now - entry.last_used >= older_than_s
            too_big = max_size is not None and total > max_size
            if not (too_old or too_big):
                continue
            if self.remove_entry(entry.sha256):
                result.removed.append(entry)
                total -= entry.size
            else:
                result.skipped.append(entry)
        result.freed_bytes = sum(e.size for e in result.removed)
        self.prune_verified()  # records of files removed above (or elsewhere) are dead weight
        return result

    def clean_stale_once(self) -> None:
        """:meth:`clean_stale`, the first time this process calls it for this cache root."""
        root = str(self.root.absolute())
        with _cleaned_lock:
            if root in _cleaned_roots:
                return
            _cleaned_roots.add(root)
        try:
            self.clean_stale()
        except Exception as exc:  # noqa: BLE001 - housekeeping never fails a load
            log.warning("cache: cleaning up %s failed: %s", self.root, exc)

    def clean_stale(self, *, stale_age: float = STALE_AGE_S, lock_age: float = LOCK_STALE_AGE_S) -> list[Path]:
        """Remove what crashed or killed processes left behind (see the module docstring); returns what was removed.

        A temporary entry goes when its owner is a dead process on this host, or when it is older
        than ``stale_age`` seconds; an entry producing an item goes only while this call holds
        that item's lock, taken without waiting (so never while a live producer holds it).  A
        lock file goes when nobody holds it and it is older than ``lock_age`` seconds."""
        removed: list[Path] = []
        now = time.time()
        host = _host_tag()
        for folder in (self.root / "files", self.root / "urls", self.root / VERIFIED):
            try:
                names = [e.name for e in os.scandir(folder) if e.name.startswith(".tmp-")]
            except OSError:
                continue
            for name in names:
                path = folder / name
                owner = _tmp_owner(name)
                try:
                    age = now - _newest_mtime(path)
                except OSError:
                    continue
                dead = owner is not None and owner.host == host and owner.pid != os.getpid() and not _pid_alive(owner.pid)
                if not dead and age < stale_age:
                    continue
                if owner is not None and owner.key is not None:
                    with self.try_lock(owner.key) as free:
                        if not free:
                            continue
                        _remove(path)
                else:
                    _remove(path)
                log.info("cache: removed %s, left by %s", path, "a dead process" if dead else f"a process {age / 3600:.0f} h ago")
                removed.append(path)
        removed.extend(self._clean_locks(now, lock_age))
        return removed

    def _clean_locks(self, now: float, lock_age: float) -> list[Path]:
        import filelock

        removed: list[Path] = []
        try:
            entries = [e for e in os.scandir(self.root / "locks") if e.name.endswith(".lock")]
        except OSError:
            return removed
        for entry in entries:
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < lock_age:
                    continue
            except OSError:
                continue
            lock = filelock.FileLock(entry.path, thread_local=False)
            try:
                lock.acquire(timeout=0)
            except (filelock.Timeout, OSError):
                continue
            try:
                # Unlinked while held: a process that opened it meanwhile finds its lock guards no
                # name and takes the new one (filelock checks st_nlink).
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
            finally:
                lock.release()
        return removed

    def size_bytes(self) -> int:
        """Total bytes under the cache root (files, URL records and locks)."""
        return _tree_bytes(self.root)


def _tree_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` (symbolic links count as themselves, not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


__all__ = [
    "ENV_CACHE_DIR",
    "FILE",
    "VERIFIED",
    "FileStamp",
    "LOCK_STALE_AGE_S",
    "UNPACKED",
    "STALE_AGE_S",
    "Cache",
    "CacheEntry",
    "PruneResult",
    "Staging",
    "default_root",
    "url_key",
]
