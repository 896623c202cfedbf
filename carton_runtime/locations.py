"""Where a carton comes from: a ``.carton`` file, an unpacked directory, ``file://``, ``http(s)://``
or any fsspec URL (``s3://``, ``gs://``, ``hf://``, ``memory://``, ...: :mod:`carton_runtime.fsspec_source`).

:func:`parse_location` classifies what the user passed; :func:`open_location` turns it into an
open ``carton_format.CartonArchive`` (through the format layer's archive sources: a local zip or
directory, or a remote zip read through :class:`~carton_runtime.http_range.HttpRangeFile`).

Unlike the original (which treated ``file://`` URLs as paths and failed, and panicked on other
schemes), ``file://`` URLs are supported, the protocols of fsspec (when installed) are read through
it, and any other scheme is a clear ``E-RUNTIME-SOURCE``.
Remote archives are read lazily with range requests for metadata (``get_model_info`` and the
runner check that precedes a download), and downloaded once into the cache for loading; a URL
already in the cache is served from it after a cheap check that the server still has the same
file (:func:`~carton_runtime.links_fetch.cached_archive`; offline, the cached copy is used).
A downloaded archive is stored unpacked (:mod:`carton_runtime.unpacked`), so the cached copy is
a directory whose files are verified again whenever they are read: a cached copy found damaged
(a file changed, missing or added, MANIFEST not the one recorded) is dropped with a warning and
the URL downloaded again, once (:func:`reopen_damaged`).

carton.pub (the original's ``http.rs``, ``HTTPFile::new``): a URL on the registry host
(``CARTON_PUB_HOST``, default ``carton.pub``) is rewritten to the download host
(``CARTON_PUB_DL_HOST``, default ``dl.`` + the registry host) without a request; then a HEAD
request to that URL, and when the answer has an ``x-carton-dl-url`` header, that URL (an
http(s) URL of ASCII text) names the archive.  Results are remembered for the process, like
the original's ``DL_URL_CACHE``.  Unlike the original, only registry and download host URLs get
the HEAD (other URLs cost no extra request).  The HEAD goes out under the user's URL's address
policy (like a redirect), and so must the URL the header names; that URL is then the archive URL
for everything that follows (the origin of its policy, the cache key, the model's source).

Whatever the argument, a problem with it is a coded error naming it (``E-RUNTIME-ARG`` for a
value that is no path or URL at all, ``E-RUNTIME-SOURCE`` for one that cannot be opened), never
a raw ``ValueError`` or ``RuntimeError`` from the standard library.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import carton_format as cf

from .cache import Cache
from .errors import CartonRuntimeError
from .fsspec_source import FsspecObject, FsspecRangeFile, cached_object, check_storage_options, download_object, is_fsspec_url
from .http_range import AddressPolicy, HttpRangeFile, RangeNotSupported, check_http_url, host_classes, http_get, opener
from .links_fetch import LinkFetcher, cached_archive, download_archive
from .range_cache import RangeFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Location:
    """What the user named: ``kind`` is "file", "dir", "http" or "fsspec"."""

    kind: str
    location: str  # the path, or the URL (for a carton.pub URL, the archive URL it resolved to)
    path: Path | None = None
    requested: str | None = None  # the registry URL the user named, when it was resolved
    storage_options: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # fsspec URLs: the file system's options

    @property
    def is_remote(self) -> bool:
        """True for an http(s) URL."""
        return self.kind == "http"


def parse_location(url_or_path: Any, arg: str = "url_or_path", *, storage_options: Any = None) -> Location:
    """Classify ``url_or_path`` (no I/O besides a stat for local paths, and the HEAD request
    that resolves a carton.pub URL); ``arg`` is the argument's name, for error messages.
    ``storage_options`` go to the file system of an fsspec URL (other locations ignore them)."""
    storage_options = check_storage_options(storage_options)
    if isinstance(url_or_path, os.PathLike):
        try:
            url_or_path = os.fspath(url_or_path)
        except Exception as exc:  # noqa: BLE001 - a user type's __fspath__ may raise anything
            raise CartonRuntimeError("E-RUNTIME-ARG", f"{arg}: os.fspath() failed: {type(exc).__name__}: {exc}", name=arg) from None
    if isinstance(url_or_path, bytes):
        url_or_path = os.fsdecode(url_or_path)
    if not isinstance(url_or_path, str) or not url_or_path:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{arg}: expected a path or a URL, not {url_or_path!r}", name=arg)
    if "\0" in url_or_path:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{arg}: {url_or_path!r} contains a NUL character", name=arg)
    if "://" in url_or_path:
        try:
            parts = urlsplit(url_or_path)
        except ValueError as exc:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{arg}: malformed URL {url_or_path!r}: {exc}", name=arg) from None
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            check_http_url(url_or_path, arg)
            resolved = resolve_registry_url(url_or_path)
            if resolved != url_or_path:
                return Location("http", resolved, requested=url_or_path)
            return Location("http", url_or_path)
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise CartonRuntimeError(
                    "E-RUNTIME-SOURCE", f"{arg}: file:// URLs must name a local path, not host {parts.netloc!r}", name=arg
                )
            path = url2pathname(unquote(parts.path))
            if "\0" in path:
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{arg}: {url_or_path!r} names a path with a NUL character", name=arg)
            return _local(path, url_or_path, arg, expand=False)
        if is_fsspec_url(url_or_path):
            return Location("fsspec", url_or_path, storage_options=storage_options)
        raise CartonRuntimeError(
            "E-RUNTIME-SOURCE",
            f"{arg}: unsupported URL scheme {scheme!r} in {url_or_path!r}; use a path, file://, http://, https:// "
            "or a protocol of fsspec (s3://, gs://, ...: pip install 'carton-py[fsspec]' and the protocol's package)",
            name=arg,
        )
    return _local(url_or_path, url_or_path, arg)


ENV_PUB_HOST = "CARTON_PUB_HOST"
ENV_PUB_DL_HOST = "CARTON_PUB_DL_HOST"
DL_URL_HEADER = "x-carton-dl-url"
_dl_url_lock = threading.Lock()
_dl_url_cache: dict[str, str] = {}


def registry_hosts() -> tuple[str, str]:
    """(registry host, download host), lower case, each ``host`` or ``host:port``."""
    pub = (os.environ.get(ENV_PUB_HOST) or "carton.pub").strip().lower()
    dl = (os.environ.get(ENV_PUB_DL_HOST) or f"dl.{pub}").strip().lower()
    return pub, dl


def _on_host(parts: Any, host: str) -> bool:
    netloc = parts.netloc.lower()
    return netloc == host or (":" not in host and (parts.hostname or "") == host and parts.port is None)


class _HeadOpener:
    """The module's guarded opener, sending HEAD instead of GET."""

    def open(self, fullurl: Any, data: Any = None, timeout: float = 60.0) -> Any:
        fullurl.method = "HEAD"
        return opener().open(fullurl, data, timeout)


def resolve_registry_url(url: str) -> str:
    """The archive URL for ``url``: itself, unless it is on the registry or download host (see
    the module docstring)."""
    parts = urlsplit(url)
    pub, dl = registry_hosts()
    if _on_host(parts, pub):
        target = urlunsplit((parts.scheme, dl, parts.path, parts.query, parts.fragment))
    elif _on_host(parts, dl):
        target = url
    else:
        return url
    with _dl_url_lock:
        known = _dl_url_cache.get(url)
    if known is not None:
        return known
    policy = AddressPolicy(url)
    response = http_get(target, {"Accept-Encoding": "identity"}, opener=_HeadOpener(), policy=policy)
    try:
        named = response.headers.get(DL_URL_HEADER)
    finally:
        response.close()
    resolved = target if named is None else _check_dl_url(url, target, named, policy)
    with _dl_url_lock:
        _dl_url_cache[url] = resolved
    return resolved


def _check_dl_url(url: str, target: str, named: str, policy: AddressPolicy) -> str:
    where = f"{url}: the {DL_URL_HEADER} header of {target}"
    named = named.strip()
    if not named.isascii() or not named.isprintable() or not named:
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{where} is not an ASCII URL: {named!r}")
    try:
        parts = urlsplit(named)
    except ValueError as exc:
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{where} is a malformed URL {named!r}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{where} is not an http(s) URL: {named!r}")
    try:
        check_http_url(named)
    except CartonRuntimeError as exc:
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{where} is not a usable URL: {exc}") from None
    refused = sorted(kind for kind in host_classes(parts.hostname) if not policy.allows(kind))
    if refused:
        raise CartonRuntimeError(
            "E-RUNTIME-HTTP",
            f"{where} names {named}, refused: requests for {url} may not reach {' or '.join(refused)} addresses "
            f"(set CARTON_ALLOW_PRIVATE_URLS=1 to allow them)",
        )
    return named


def _printable(text: str) -> str:
    """``text`` as is when it prints safely, else its repr (lone surrogates, control characters)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return repr(text)
    return text if text.isprintable() else repr(text)


def _local(path_text: str, shown: str, arg: str, *, expand: bool = True) -> Location:
    shown = _printable(shown)
    path = Path(path_text)
    if expand:
        try:
            path = path.expanduser()
        except RuntimeError as exc:  # "~nosuchuser/...": no home directory to expand to
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{arg}: cannot expand {shown}: {exc}", name=arg) from None
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{arg}: {shown}: {exc.strerror or exc}", name=arg) from None
    except ValueError as exc:  # e.g. a str with lone surrogates that the file system encoding cannot carry
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{arg}: {shown} is not a usable path: {exc}", name=arg) from None
    if not exists:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{arg}: {shown}: no such file or directory", name=arg)
    return Location("dir" if is_dir else "file", str(path), path)


#: Errors reading a cached (already verified) copy that mean it was damaged since it was stored.
DAMAGE_CODES = frozenset(
    {"E-MANIFEST-MISMATCH", "E-MANIFEST-MISSING-FILE", "E-MANIFEST-UNLISTED", "E-MANIFEST-SYNTAX", "E-STRUCTURE-MISSING",
     "E-IO", "E-ZIP-NOT-REGULAR", "E-TENSOR-SIZE"}
)


@dataclass
class OpenedArchive:
    """An archive opened for metadata; ``remote`` is the range-request file under a remote one;
    ``cached`` the cache entry it was read from when that was a cache hit (not a fresh download)."""

    location: Location
    archive: cf.CartonArchive
    remote: RangeFile | None = field(default=None, repr=False)
    cached: Path | None = None

    def damaged_by(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the cached copy this was read from is damaged (a member present
        in it failed its checks; not a LINKS download, not a limit)."""
        if self.cached is None or not isinstance(exc, cf.CartonFormatError) or exc.code not in DAMAGE_CODES:
            return False
        return exc.member is None or self.archive.source.member(exc.member) is not None or exc.code != "E-MANIFEST-MISMATCH"

    def __post_init__(self) -> None:
        # The archive stays open while anything (a model's info, lazy tensors) refers to it, and
        # its file is closed when it is collected (no ResourceWarning from the file object).
        weakref.finalize(self.archive, _close_quietly, self.archive, self.remote)

    def close(self) -> None:
        """Close the archive and, for a remote one, its range-request file."""
        _close_quietly(self.archive, self.remote)


def _close_quietly(archive: Any, remote: Any) -> None:
    archive.close()
    if remote is not None:
        remote.close()


def open_location(
    location: Location,
    *,
    cache: Cache,
    fetcher: LinkFetcher | None,
    limits: cf.Limits = cf.DEFAULT_LIMITS,
    lazy: cf.LazyFactories = cf.DEFAULT_LAZY,
    download: bool = False,
) -> OpenedArchive:
    """Open for metadata (members are verified when read).  Remote: from the cache when the URL
    is cached, else with range requests, or (``download=True`` or a server ignoring ``Range``)
    by downloading the archive into the cache first."""

    def read(source: Any) -> cf.CartonArchive:
        return cf.read(source, verify_hashes=False, fetch_linked=fetcher, limits=limits, lazy=lazy)

    if location.kind in ("dir", "file"):
        return OpenedArchive(location, read(location.path))
    url = location.location
    got = _remote(location, cache, download)
    try:
        archive = read(got.where)
        if got.hit:
            _check_identity(cache, url, archive)
    except cf.CartonFormatError as exc:
        if got.remote is not None:
            got.remote.close()
        if not got.hit or exc.code not in DAMAGE_CODES:
            raise
        drop_damaged(cache, url, got.where, exc)  # type: ignore[arg-type]
        with _refetching(exc):
            got = _remote(location, cache, True)
        return OpenedArchive(location, read(got.where))
    except BaseException:
        if got.remote is not None:
            got.remote.close()
        raise
    return OpenedArchive(location, archive, got.remote, got.where if got.hit else None)  # type: ignore[arg-type]


def _check_identity(cache: Cache, url: str, archive: cf.CartonArchive) -> None:
    """A cached copy must still have the MANIFEST recorded for its URL (the model's identity)."""
    entry = cache.url_entry(url)
    recorded = entry[0].get("manifest_sha256") if entry is not None else None
    if isinstance(recorded, str) and recorded != archive.manifest_sha256:
        archive.close()
        raise cf.CartonFormatError("E-MANIFEST-MISMATCH", f"the cached copy's MANIFEST has sha256 {archive.manifest_sha256}, {recorded} was recorded")


def drop_damaged(cache: Cache, url: str, where: Path, exc: BaseException) -> None:
    """Forget a damaged cached copy of ``url`` (its record and its entry), with a warning."""
    log.warning("%s: the cached copy %s is damaged (%s); downloading it again", url, where, exc)
    cache.url_forget(url)
    entry_dir = where.parent
    if entry_dir.parent == cache.root / "files" and not cache.remove_entry(entry_dir.name):
        raise CartonRuntimeError("E-RUNTIME-CACHE", f"{url}: the cached copy {where} is damaged and another process holds it; try again")


def reopen_damaged(
    opened: OpenedArchive, exc: cf.CartonFormatError, *, cache: Cache, fetcher: LinkFetcher | None,
    limits: cf.Limits = cf.DEFAULT_LIMITS, lazy: cf.LazyFactories = cf.DEFAULT_LAZY,
) -> OpenedArchive | None:
    """When ``exc`` says the cached copy ``opened`` came from is damaged: drop it (warning) and
    open a fresh download; else None (and ``opened`` is left as it is)."""
    if not opened.damaged_by(exc):
        return None
    assert opened.cached is not None
    opened.close()
    drop_damaged(cache, opened.location.location, opened.cached, exc)
    with _refetching(exc):
        return open_location(opened.location, cache=cache, fetcher=fetcher, limits=limits, lazy=lazy, download=True)


@contextlib.contextmanager
def _refetching(damage: cf.CartonFormatError) -> Iterator[None]:
    """A failed download of a damaged copy reports the damage (the reason nothing was used),
    with the download's failure."""
    try:
        yield
    except CartonRuntimeError as exc:
        raise cf.CartonFormatError(
            damage.code, f"{damage.message} (in the cached copy, now dropped; downloading it again failed: {exc.message})", member=damage.member
        ) from None


@dataclass(frozen=True)
class RemoteArchive:
    """Where to read a remote archive from (see :func:`remote_archive`)."""

    where: Path | RangeFile
    remote: RangeFile | None = None  # the range file, when reading over range requests
    hit: bool = False  # ``where`` is a cached copy from before (not downloaded by this call)


def remote_archive(url: str, *, cache: Cache, download: bool = False) -> RemoteArchive:
    """Where to read a remote archive from: the cached copy (an unpacked carton directory, or an
    archive file) when the cache holds what the server has (revalidated), the range file to read
    it lazily over range requests, or, with ``download=True`` or a server that ignores
    ``Range``, the archive downloaded into the cache first."""
    policy = AddressPolicy(url)
    if download:  # the second step of a load: the URL was just read over range requests
        cached = cache.url_lookup(url)
    else:
        cached, response = cached_archive(cache, url, policy=policy)
        if response is not None:  # changed, and the server sent the whole new file already
            return RemoteArchive(download_archive(cache, url, response, policy=policy))
    if cached is not None:
        return RemoteArchive(cached, hit=True)
    if not download:
        try:
            remote = HttpRangeFile(url, policy=policy)
        except RangeNotSupported as exc:
            log.warning("%s: the server ignores Range requests; downloading the whole archive", url)
            return RemoteArchive(download_archive(cache, url, exc.response, policy=policy))
        return RemoteArchive(remote, remote)
    return RemoteArchive(download_archive(cache, url, policy=policy))


def _remote(location: Location, cache: Cache, download: bool) -> RemoteArchive:
    """:func:`remote_archive` for an http(s) location, :func:`fsspec_remote_archive` for an fsspec one."""
    if location.kind == "fsspec":
        return fsspec_remote_archive(location, cache=cache, download=download)
    return remote_archive(location.location, cache=cache, download=download)


def fsspec_remote_archive(location: Location, *, cache: Cache, download: bool = False) -> RemoteArchive:
    """:func:`remote_archive` for an fsspec URL: the cached copy when the store still has that
    object (one ``info`` request), else exact range reads, or with ``download=True`` the object
    downloaded into the cache (see :mod:`carton_runtime.fsspec_source`)."""
    obj = FsspecObject(location.location, location.storage_options)
    cached = cache.url_lookup(obj.url) if download else cached_object(cache, obj)
    if cached is not None:
        return RemoteArchive(cached, hit=True)
    if download:
        return RemoteArchive(download_object(cache, obj))
    remote = FsspecRangeFile(obj)
    return RemoteArchive(remote, remote)


def open_url_source(url: str, limits: cf.Limits = cf.DEFAULT_LIMITS) -> cf.ArchiveSource:
    """An ArchiveSource for an ``http(s)://`` or fsspec URL, through the cache like ``load``: what
    ``carton info|ls|validate URL`` read (the ``carton.sources`` entry point of the format layer,
    registered for ``http``, ``https`` and, as the fallback ``*``, every other scheme: one that
    neither this runtime nor fsspec reads is the format layer's ``E-ARG-INVALID``, as without it)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https", "file") and not is_fsspec_url(url):
        raise cf.CartonFormatError(
            "E-ARG-INVALID", f"no installed source opens {scheme}:// URLs (fsspec's protocols need pip install 'carton-py[fsspec]')"
        )
    location = parse_location(url)
    if location.kind not in ("http", "fsspec"):
        return cf.open_source(location.path, limits)
    got = _remote(location, Cache(), False)
    remote = got.remote
    if remote is None:
        return cf.open_source(got.where, limits)  # type: ignore[arg-type]  # a directory (unpacked) or a zip file
    try:
        return cf.ZipSource(remote, limits=limits, close_file=True)
    except BaseException:
        remote.close()
        raise


__all__ = [
    "DL_URL_HEADER",
    "ENV_PUB_DL_HOST",
    "ENV_PUB_HOST",
    "Location",
    "DAMAGE_CODES",
    "OpenedArchive",
    "RemoteArchive",
    "drop_damaged",
    "fsspec_remote_archive",
    "open_location",
    "open_url_source",
    "parse_location",
    "registry_hosts",
    "remote_archive",
    "reopen_damaged",
    "resolve_registry_url",
]
