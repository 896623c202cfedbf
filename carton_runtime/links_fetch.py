"""Downloads into the cache: LINKS files (decoded, hash-checked) and whole remote archives.

LINKS (spec FMT-LINKS-8..12): the URLs of a file are tried in order until one yields content
whose sha256 is the MANIFEST hash; the body is decoded according to its Content-Encoding
(identity, gzip, deflate - zlib-wrapped or raw -, zstd, and br when the ``brotli`` package is
installed) before it is hashed; a body larger than ``max_member_bytes`` is abandoned.  When every
URL fails, the failure of the first one is reported: ``E-MANIFEST-MISMATCH``,
``E-LIMIT-MEMBER-SIZE`` or ``E-LINKS-FETCH``.  Verified files are cached by sha256, so a file is
downloaded once however many archives or processes need it.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, Callable

import carton_format as cf
from carton_format.integrity import copy_verified, copy_with_hashing

from .cache import Cache
from .errors import CartonError, CartonRuntimeError
from .http_range import RangeNotSupported, content_length, http_get

log = logging.getLogger(__name__)


try:  # optional
    import brotli  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

SUPPORTED_ENCODINGS = ("gzip", "deflate", "zstd") + (("br",) if brotli is not None else ())
ACCEPT_ENCODING = ", ".join(SUPPORTED_ENCODINGS)


class _UnsupportedEncoding(Exception):
    pass


class _ChunkDecoder:
    """A readable applying ``decompress(chunk)`` / ``flush()`` to a source stream."""

    def __init__(self, src: Any, decompress: Callable[[bytes], bytes], flush: Callable[[], bytes]) -> None:
        self._src = src
        self._decompress = decompress
        self._flush = flush
        self._buf = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            chunk = self._src.read(64 * 1024)
            if chunk:
                self._buf += self._decompress(chunk)
            else:
                self._buf += self._flush()
                self._eof = True
        if n < 0:
            n = len(self._buf)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _deflate_reader(src: Any) -> _ChunkDecoder:
    """HTTP 'deflate' is zlib-wrapped; some servers send a raw deflate stream: accept both."""
    state: dict[str, Any] = {"d": zlib.decompressobj(zlib.MAX_WBITS), "first": True}

    def decompress(chunk: bytes) -> bytes:
        if state["first"]:
            state["first"] = False
            try:
                return state["d"].decompress(chunk)
            except zlib.error:
                state["d"] = zlib.decompressobj(-zlib.MAX_WBITS)
        return state["d"].decompress(chunk)

    return _ChunkDecoder(src, decompress, lambda: state["d"].flush())


def _brotli_reader(src: Any) -> _ChunkDecoder:
    d = brotli.Decompressor()
    return _ChunkDecoder(src, d.process, lambda: b"")


def decoded(response: Any) -> Any:
    """A readable of the response body with its Content-Encoding(s) undone."""
    header = response.headers.get("Content-Encoding") or ""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    stream: Any = response
    for coding in reversed(codings):  # applied in the listed order, so undone in reverse
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        elif coding == "deflate":
            stream = _deflate_reader(stream)
        elif coding == "zstd":
            import zstandard

            stream = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
        elif coding == "br" and brotli is not None:
            stream = _brotli_reader(stream)
        else:
            raise _UnsupportedEncoding(coding)
    return stream


def _copy_verified(url: str, src: Any, dest: IO[bytes], sha256: str, max_bytes: int, member: str | None) -> int:
    """The format layer's copy-and-verify, with decoding and transport failures of the body
    reported as ``E-RUNTIME-HTTP``."""

    def too_large(limit: int) -> cf.CartonFormatError:
        return cf.CartonFormatError("E-LIMIT-MEMBER-SIZE", f"{url}: decoded content exceeds {limit} bytes", member=member)

    try:
        return copy_verified(src, dest, sha256, member, origin=url, max_bytes=max_bytes, on_limit=too_large)
    except CartonError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, EOFError, zlib.error, zstandard.ZstdError, http.client errors
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: reading or decoding the body failed: {type(exc).__name__}: {exc}") from None


class LinkFetcher:
    """Fetches LINKS files into the cache; also usable as ``carton_format.read(fetch_linked=)``."""

    def __init__(self, cache: Cache, limits: cf.Limits = cf.DEFAULT_LIMITS) -> None:
        self.cache = cache
        self.limits = limits
        self.downloads = 0  # files actually downloaded by this fetcher

    def __call__(self, path: str, sha256: str, urls: list[str]) -> IO[bytes]:
        """The verified file, opened for reading: the ``carton_format.read(fetch_linked=)`` hook."""
        return open(self.fetch(path, sha256, urls), "rb")

    def fetch(self, path: str | None, sha256: str, urls: list[str]) -> Path:
        """The verified file (cached, or downloaded now)."""
        hit = self.cache.lookup(sha256)
        if hit is not None:
            return hit
        if not urls:
            raise cf.CartonFormatError("E-LINKS-FETCH", "no URL to fetch it from", member=path)
        with self.cache.staging(sha256) as staging:
            if isinstance(staging, Path):
                return staging
            failures: list[tuple[str, Exception]] = []
            for url in urls:
                try:
                    with http_get(url, {"Accept-Encoding": ACCEPT_ENCODING}) as response:
                        try:
                            body = decoded(response)
                        except _UnsupportedEncoding as exc:
                            raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: unsupported Content-Encoding {exc.args[0]!r}") from None
                        with open(staging.path, "wb") as dest:
                            _copy_verified(url, body, dest, sha256, self.limits.max_member_bytes, path)
                    self.downloads += 1
                    return staging.commit(url)
                except CartonError as exc:
                    log.warning("LINKS: %s: %s", url, exc)
                    failures.append((url, exc))
            first = failures[0][1]
            if isinstance(first, CartonError) and first.code in ("E-MANIFEST-MISMATCH", "E-LIMIT-MEMBER-SIZE"):
                raise first
            detail = "; ".join(f"{getattr(e, 'message', e)}" for _u, e in failures)
            raise cf.CartonFormatError("E-LINKS-FETCH", f"no URL gave the file: {detail}", member=path)


def download_archive(cache: Cache, url: str, response: Any = None, *, verify: bool = True) -> Path:
    """Download a remote archive into the cache once (keyed by URL and by its own sha256).

    ``response`` is an already open 200 answer to reuse (see RangeNotSupported).  With
    ``verify`` the archive's CRCs and MANIFEST hashes are checked before it is cached.
    """
    from .cache import url_key

    hit = cache.url_lookup(url)
    if hit is not None:
        if response is not None:
            response.close()
        return hit
    with cache.lock(url_key(url)):
        hit = cache.url_lookup(url)
        if hit is not None:
            if response is not None:
                response.close()
            return hit
        if response is None:
            try:
                response = http_get(url, {"Accept-Encoding": "identity"})
            except RangeNotSupported as exc:  # pragma: no cover - http_get never raises it
                response = exc.response
        files = cache.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-download-", dir=files)
        tmp = Path(tmp_name)
        try:
            expected = content_length(response)
            with response, os.fdopen(fd, "wb") as out:
                encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
                if encoding != "identity":
                    raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: archive sent with Content-Encoding {encoding!r}")
                try:
                    sha, total = copy_with_hashing(response, out)
                except CartonError:
                    raise
                except Exception as exc:  # noqa: BLE001 - connection resets, timeouts, IncompleteRead
                    raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: download failed: {type(exc).__name__}: {exc}") from None
            if expected is not None and total != expected:
                raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: got {total} bytes, Content-Length said {expected}")
            if verify:
                with cf.read(tmp, verify_hashes=True):
                    pass
            with cache.staging(sha) as staging:
                if isinstance(staging, Path):
                    final = staging
                else:
                    os.replace(tmp, staging.path)
                    final = staging.commit(url)
            cache.url_record(url, sha, total)
            return final
        finally:
            tmp.unlink(missing_ok=True)


__all__ = ["ACCEPT_ENCODING", "SUPPORTED_ENCODINGS", "LinkFetcher", "decoded", "download_archive"]
