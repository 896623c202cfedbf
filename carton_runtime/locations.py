"""Where a carton comes from: a ``.carton`` file, an unpacked directory, ``file://`` or ``http(s)://``.

:func:`parse_location` classifies what the user passed; :func:`open_location` turns it into an
open ``carton_format.CartonArchive`` (through the format layer's archive sources: a local zip or
directory, or a remote zip read through :class:`~carton_runtime.http_range.HttpRangeFile`).

Unlike the original (which treated ``file://`` URLs as paths and failed, and panicked on other
schemes), ``file://`` URLs are supported and any other scheme is a clear ``E-RUNTIME-SOURCE``.
Remote archives are read lazily with range requests for metadata (``get_model_info`` and the
runner check that precedes a download), and downloaded once into the cache for loading; a URL
already in the cache is served from it after a cheap check that the server still has the same
file (:func:`~carton_runtime.links_fetch.cached_archive`; offline, the cached copy is used).

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

import logging
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import carton_format as cf

from .cache import Cache
from .errors import CartonRuntimeError
from .http_range import AddressPolicy, HttpRangeFile, RangeNotSupported, check_http_url, host_classes, http_get, opener
from .links_fetch import LinkFetcher, cached_archive, download_archive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Location:
    """What the user named: ``kind`` is "file", "dir" or "http"."""

    kind: str
    location: str  # the path, or the URL (for a carton.pub URL, the archive URL it resolved to)
    path: Path | None = None
    requested: str | None = None  # the registry URL the user named, when it was resolved

    @property
    def is_remote(self) -> bool:
        """True for an http(s) URL."""
        return self.kind == "http"


def parse_location(url_or_path: Any, arg: str = "url_or_path") -> Location:
    """Classify ``url_or_path`` (no I/O besides a stat for local paths, and the HEAD request
    that resolves a carton.pub URL); ``arg`` is the argument's name, for error messages."""
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
        raise CartonRuntimeError(
            "E-RUNTIME-SOURCE",
            f"{arg}: unsupported URL scheme {scheme!r} in {url_or_path!r}; use a path, file://, http:// or https://",
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


@dataclass
class OpenedArchive:
    """An archive opened for metadata; ``remote`` is the range-request file under a remote one."""

    location: Location
    archive: cf.CartonArchive
    remote: HttpRangeFile | None = field(default=None, repr=False)

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
    where, remote = remote_archive(location.location, cache=cache, download=download)
    try:
        archive = read(where)
    except BaseException:
        if remote is not None:
            remote.close()
        raise
    return OpenedArchive(location, archive, remote)


def remote_archive(url: str, *, cache: Cache, download: bool = False) -> tuple[Path | HttpRangeFile, HttpRangeFile | None]:
    """Where to read a remote archive from: ``(cached file, None)`` when the cache holds what the
    server has (revalidated), ``(range file, range file)`` to read it lazily over range requests,
    or, with ``download=True`` or a server that ignores ``Range``, the archive downloaded into
    the cache first."""
    policy = AddressPolicy(url)
    if download:  # the second step of a load: the URL was just read over range requests
        cached = cache.url_lookup(url)
    else:
        cached, response = cached_archive(cache, url, policy=policy)
        if response is not None:  # changed, and the server sent the whole new file already
            cached = download_archive(cache, url, response, policy=policy)
    if cached is None and not download:
        try:
            remote = HttpRangeFile(url, policy=policy)
        except RangeNotSupported as exc:
            log.warning("%s: the server ignores Range requests; downloading the whole archive", url)
            cached = download_archive(cache, url, exc.response, policy=policy)
        else:
            return remote, remote
    if cached is None:
        cached = download_archive(cache, url, policy=policy)
    return cached, None


def open_url_source(url: str, limits: cf.Limits = cf.DEFAULT_LIMITS) -> cf.ArchiveSource:
    """An ArchiveSource for an ``http(s)://`` URL, through the cache like ``load``: what
    ``carton info|ls|validate URL`` read (the ``carton.sources`` entry point of the format layer)."""
    location = parse_location(url)
    if location.kind != "http":
        return cf.open_source(location.path, limits)
    where, remote = remote_archive(location.location, cache=Cache())
    if remote is None:
        return cf.ZipSource.open_path(where, limits=limits)
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
    "OpenedArchive",
    "open_location",
    "open_url_source",
    "parse_location",
    "registry_hosts",
    "remote_archive",
    "resolve_registry_url",
]
