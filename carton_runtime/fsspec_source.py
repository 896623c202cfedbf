"""Archives on any fsspec file system: ``s3://``, ``gs://``, ``az://``, ``hf://``, ``memory://``, ...

The same two steps as for ``http(s)://`` (:mod:`carton_runtime.locations`), over another transport:

* **Metadata** through exact range reads: :class:`FsspecRangeFile` asks the file system for the
  object's size (``fs.info``, one request), reads its last ``TAIL_BYTES`` with one
  ``fs.cat_file(path, start=, end=)`` and every later miss with one more, through the runtime's
  one block cache (:class:`~carton_runtime.range_cache.TailBlockCache`).  The file systems' own
  file objects are not used for this: s3fs's default read-ahead fetches 50 MiB blocks, so the
  central directory of a 64 MB archive would cost the whole archive.
* **The model** through the verified cache: the object is downloaded once (``DOWNLOAD_CHUNK``
  ranges), stored unpacked and recorded by URL with the object's identity from ``fs.info``
  (ETag or another checksum, modification time, size).  A later load asks ``fs.info`` again (one
  request) and uses the cached copy when the identity is unchanged; an object whose file system
  reports neither checksum nor time is compared by the hash of its last bytes, as an http one
  without validators.  Unreachable (not "missing" or "denied"), the cached copy is used with a
  warning.

Credentials and options are fsspec's: the ``storage_options`` given to ``load`` /
``get_model_info`` (passed to the file system's constructor), else its usual configuration
(environment variables such as ``AWS_*`` or ``FSSPEC_S3_*``, fsspec's config files, the
provider's own files).  Protocols need their fsspec package (``s3fs``, ``gcsfs``, ``adlfs``,
``huggingface_hub``); a missing one, a missing bucket or object, refused credentials and transport
failures are ``E-RUNTIME-SOURCE`` naming the URL.

LINKS URLs stay ``http(s)`` only (spec FMT-LINKS-5): an archive read from an object store fetches
its linked files over https like any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carton_format.integrity import sha256_hex

from .cache import Cache
from .errors import CartonRuntimeError
from .links_fetch import ArchiveBody, store_archive, url_max_age
from .range_cache import BLOCK_CACHE_BYTES, MIN_FETCH, RangeFile, TailBlockCache

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB

#: Bytes read from the end of the object when it is opened (as for http).
TAIL_BYTES = 128 * KiB
#: Bytes per range read while downloading a whole object.
DOWNLOAD_CHUNK = 8 * MiB
#: Schemes the runtime reads itself; every other protocol fsspec knows goes through fsspec.
OWN_SCHEMES = frozenset({"http", "https", "file", "local"})
#: ``fs.info`` keys that identify a version of an object, by file system (first found wins).
CHECKSUM_KEYS = ("ETag", "etag", "md5Hash", "md5", "crc32c", "content_md5", "blob_id", "checksum")
MTIME_KEYS = ("LastModified", "last_modified", "updated", "mtime", "modified", "created")
#: The package that provides a protocol, for the error when it is missing.
_INSTALL_HINTS = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs", "hf": "huggingface_hub",
}


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError:
        return None
    return fsspec


def is_fsspec_url(url: str) -> bool:
    """Whether ``url`` (``scheme://...``) names a protocol fsspec knows and the runtime does
    not read itself; False when fsspec is not installed."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in OWN_SCHEMES or "::" in scheme:
        return False
    fsspec = _fsspec()
    if fsspec is None:
        return False
    if scheme in fsspec.available_protocols():  # known to fsspec (installed or not: opening says what to install)
        return True
    try:  # registered at run time (fsspec.register_implementation)
        fsspec.get_filesystem_class(scheme)
    except Exception:  # noqa: BLE001 - ValueError "protocol not known", or a broken implementation
        return False
    return True


def check_storage_options(options: Any, arg: str = "storage_options") -> dict[str, Any] | None:
    """None, or a dict with str keys (copied): what the file system's constructor gets."""
    if options is None:
        return None
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{arg} must be a dict of str -> value (the fsspec file system's options)", name=arg)
    return dict(options)


def _source_error(url: str, exc: BaseException, doing: str) -> CartonRuntimeError:
    """A file system's exception as ``E-RUNTIME-SOURCE`` that says what to check."""
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        detail = f"no such object or bucket ({exc})" if str(exc) else "no such object or bucket"
    elif isinstance(exc, PermissionError):
        detail = f"access denied ({exc}); check the credentials (storage_options, environment, config files)"
    elif "credential" in name.lower() or "credential" in str(exc).lower():
        detail = f"{name}: {exc}; pass credentials in storage_options or configure them for the file system (environment, config files)"
    else:
        detail = f"{name}: {exc}"
    return CartonRuntimeError("E-RUNTIME-SOURCE", f"{url}: {doing} failed: {detail}")


def _is_refusal(exc: BaseException) -> bool:
    """The store answered (missing, denied, no credentials), as opposed to not being reachable."""
    return isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)) or "credential" in type(exc).__name__.lower()


@dataclass(frozen=True)
class ObjectStamp:
    """One version of an object as ``fs.info`` tells it (strings, for the JSON record)."""

    size: int
    checksum: str | None
    mtime: str | None

    def validators(self) -> dict[str, Any]:
        """The fields of the cache's URL record (``etag``, ``last_modified``)."""
        return {"etag": self.checksum, "last_modified": self.mtime}

    def matches(self, record: dict[str, Any]) -> bool | None:
        """Whether ``record`` (a URL record) is this version: False when the size or a validator
        both sides have differs, True when one matched, None when neither side can tell."""
        if record.get("size") != self.size:
            return False
        compared = False
        for ours, key in ((self.checksum, "etag"), (self.mtime, "last_modified")):
            theirs = record.get(key)
            if ours and theirs:
                if ours != theirs:
                    return False
                compared = True
        return True if compared else None


class FsspecObject:
    """One object on an fsspec file system: ``url`` as the user named it, ``fs`` and ``path`` as
    ``fsspec.core.url_to_fs`` gives them.  ``requests`` and ``bytes_fetched`` count what it asked
    of the store (``info`` and range reads)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        fsspec = _fsspec()
        if fsspec is None:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{url}: reading fsspec URLs needs fsspec: pip install 'carton-py[fsspec]'")
        self.url = url
        scheme = url.split("://", 1)[0].lower()
        try:
            self.fs, self.path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except ImportError as exc:
            package = _INSTALL_HINTS.get(scheme)
            hint = f" (pip install {package})" if package else ""
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{url}: the {scheme}:// file system is not installed{hint}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a file system's constructor may raise anything for bad options
            raise _source_error(url, exc, "opening the file system") from None
        self.requests = 0
        self.bytes_fetched = 0

    def stamp(self, *, unreachable_ok: bool = False) -> ObjectStamp | None:
        """The object's current size and identity (one ``info`` request, caches bypassed).
        With ``unreachable_ok``, None when the store cannot be reached (a store that answers
        "missing" or "denied" is still an error)."""
        try:
            self.fs.invalidate_cache(self.path)
        except Exception:  # noqa: BLE001 - a file system without a listing cache
            pass
        self.requests += 1
        try:
            info = self.fs.info(self.path)
        except Exception as exc:  # noqa: BLE001 - each file system has its own errors
            if unreachable_ok and not _is_refusal(exc):
                log.warning("%s: cannot reach the store (%s: %s)", self.url, type(exc).__name__, exc)
                return None
            raise _source_error(self.url, exc, "asking for the object's size") from None
        if info.get("type", "file") != "file":
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{self.url}: is a {info.get('type')}, not an archive file")
        size = info.get("size")
        if not isinstance(size, int) or size < 0:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{self.url}: the file system reports no size ({size!r})")
        return ObjectStamp(size, _first(info, CHECKSUM_KEYS), _first(info, MTIME_KEYS))

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) with one exact range read (a ``Fetcher`` for the block cache)."""
        self.requests += 1
        try:
            data = self.fs.cat_file(self.path, start=start, end=end)
        except Exception as exc:  # noqa: BLE001 - each file system has its own errors
            raise _source_error(self.url, exc, f"reading bytes {start}-{end - 1}") from None
        self.bytes_fetched += len(data)
        return bytes(data)


def _first(info: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = info.get(key)
        if value not in (None, ""):
            return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return None


class FsspecRangeFile(RangeFile):
    """A read-only, seekable file over exact range reads of one object (see the module
    docstring).  Opening it costs two requests (``info`` and the tail)."""

    def __init__(self, obj: FsspecObject, *, tail_bytes: int = TAIL_BYTES, min_fetch: int = MIN_FETCH) -> None:
        self.object = obj
        stamp = obj.stamp()
        assert stamp is not None
        self.stamp = stamp
        size = stamp.size
        if size == 0:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{obj.url}: the object is empty")
        tail_start = max(0, size - tail_bytes)
        tail = obj.fetch(tail_start, size)
        cache = TailBlockCache(
            obj.fetch, size, tail_start, tail, min_fetch=min_fetch, max_bytes=BLOCK_CACHE_BYTES, name=obj.url, error_code="E-RUNTIME-SOURCE"
        )
        super().__init__(cache, size)

    @property
    def url(self) -> str:
        """The object's URL."""
        return self.object.url

    @property
    def requests(self) -> int:
        """Requests made so far (``info`` and the tail included)."""
        return self.object.requests

    @property
    def bytes_fetched(self) -> int:
        """Bytes read from the store so far."""
        return self.object.bytes_fetched


class _ObjectStream:
    """The whole object as a stream of ``DOWNLOAD_CHUNK`` range reads (for :func:`store_archive`)."""

    def __init__(self, obj: FsspecObject, size: int) -> None:
        self._obj = obj
        self._size = size
        self._pos = 0
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        if not self._buffer and self._pos < self._size:
            end = min(self._size, self._pos + DOWNLOAD_CHUNK)
            self._buffer = self._obj.fetch(self._pos, end)
            if len(self._buffer) != end - self._pos:
                raise CartonRuntimeError(
                    "E-RUNTIME-SOURCE", f"{self._obj.url}: the object changed while it was read (bytes {self._pos}-{end - 1} came back short)"
                )
            self._pos = end
        if n is None or n < 0 or n >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def close(self) -> None:
        self._buffer = b""


def download_object(cache: Cache, obj: FsspecObject, stamp: ObjectStamp | None = None) -> Path:
    """The object downloaded into the cache once (stored unpacked, verified; see
    :func:`~carton_runtime.links_fetch.store_archive`), recorded with its identity (``stamp``,
    else asked for)."""

    def open_body() -> ArchiveBody:
        current = stamp or obj.stamp()
        assert current is not None
        return ArchiveBody(_ObjectStream(obj, current.size), current.size, current.validators())

    return store_archive(cache, obj.url, open_body, error_code="E-RUNTIME-SOURCE")


def cached_object(cache: Cache, obj: FsspecObject) -> Path | None:
    """The cached copy of ``obj.url`` if it is still the object the store has, else None (a
    changed object's record is dropped).  One ``info`` request, unless the record was checked
    less than ``CARTON_URL_MAX_AGE`` seconds ago; a store that cannot be reached leaves the
    cached copy in use (with a warning), as an http server that cannot be reached does."""
    entry = cache.url_entry(obj.url)
    if entry is None:
        return None
    record, path = entry
    checked = record.get("checked", record.get("time", 0))
    age = time.time() - checked if isinstance(checked, (int, float)) else float("inf")
    if 0 <= age < url_max_age():
        return path
    stamp = obj.stamp(unreachable_ok=True)
    if stamp is None:
        log.warning("%s: cannot check whether the cached copy is current; using it (%s)", obj.url, path)
        return path
    same = stamp.matches(record)
    if same is None:  # no checksum, no time: compare the last bytes with those recorded
        tail_len = record.get("tail_len")
        same = isinstance(tail_len, int) and 0 < tail_len <= stamp.size and isinstance(record.get("tail_sha256"), str)
        same = same and sha256_hex(obj.fetch(stamp.size - tail_len, stamp.size)) == record["tail_sha256"]
    if same:
        cache.url_checked(obj.url, record)
        return path
    log.info("%s: changed in the store since it was cached; fetching it again", obj.url)
    cache.url_forget(obj.url)
    return None


__all__ = [
    "CHECKSUM_KEYS",
    "DOWNLOAD_CHUNK",
    "MTIME_KEYS",
    "OWN_SCHEMES",
    "TAIL_BYTES",
    "FsspecObject",
    "FsspecRangeFile",
    "ObjectStamp",
    "cached_object",
    "check_storage_options",
    "download_object",
    "is_fsspec_url",
]
