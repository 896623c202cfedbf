"""Downloads into the cache: LINKS files (decoded, hash-checked) and whole remote archives.

LINKS (spec FMT-LINKS-8..12): the URLs of a file are tried in order until one yields content
whose sha256 is the MANIFEST hash; the body is decoded according to its Content-Encoding
(identity, gzip, deflate - zlib-wrapped or raw -, zstd, and br when the ``brotli`` package is
installed) before it is hashed.  Decoding is bounded: each read decodes at most what was asked
for, and the download is abandoned as soon as the decoded bytes exceed ``max_download_bytes``
(or ``max_member_bytes``; ``E-LIMIT-MEMBER-SIZE``) or, past ``ratio_floor_bytes``,
``max_download_ratio`` times the bytes received (``E-LIMIT-RATIO``: a decompression bomb), so
nothing much is written and the staging directory is removed.  When every URL fails, the failure
of the first one is reported: ``E-MANIFEST-MISMATCH``, ``E-LIMIT-MEMBER-SIZE``, ``E-LIMIT-RATIO``
or ``E-LINKS-FETCH``.  Verified files are cached by sha256, so a file is downloaded once however
many archives or processes need it.

Which hosts LINKS URLs (and their redirects) may reach is the :class:`~carton_runtime.http_range.AddressPolicy`
of the archive's origin: public addresses always; loopback, link-local and private ones only if
the archive came from an address of that class (for a local archive: loopback), or with
``CARTON_ALLOW_PRIVATE_URLS=1``.

Remote archives (:func:`download_archive`) are downloaded once, stored unpacked (one copy on
disk: :mod:`carton_runtime.unpacked`) and recorded by URL, with the server's validators and the
sha256 of the archive's last 64 KiB; :func:`cached_archive` revalidates such a record cheaply
before it is used (a conditional request for those last bytes, see its docstring).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import carton_format as cf
from carton_format.integrity import copy_verified, copy_with_hashing, sha256_hex

from . import progress
from .cache import UNPACKED, Cache, url_key
from .errors import CartonError, CartonRuntimeError
from .http_range import (
    AddressPolicy,
    HttpStatusError,
    content_length,
    http_get,
    parse_content_range,
    read_exactly,
)
from .unpacked import CannotUnpack, unpack, unpacked_key

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB

try:  # optional
    import brotli  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

SUPPORTED_ENCODINGS = ("gzip", "deflate", "zstd") + (("br",) if brotli is not None else ())
ACCEPT_ENCODING = ", ".join(SUPPORTED_ENCODINGS)

#: Encoded bytes handed to a decoder at a time: small, so that the bytes received (the ratio's
#: denominator) stay close to the bytes actually decoded.
INPUT_CHUNK = 16 * KiB
#: Bytes a read with no size decodes at a time.
OUTPUT_CHUNK = 1 * MiB

ENV_URL_MAX_AGE = "CARTON_URL_MAX_AGE"
DEFAULT_URL_MAX_AGE = 0.0
#: The suffix compared when revalidating a cached URL whose server sends no validators: the end
#: of a zip (end records, central directory with every CRC, and MANIFEST just before it).
REVALIDATE_TAIL = 64 * KiB


class _UnsupportedEncoding(Exception):
    pass


class _Counting:
    """A readable counting the bytes read from ``src`` (the encoded body as received), also
    told to ``on_read`` (a progress bar's update)."""

    def __init__(self, src: Any, on_read: Callable[[int], Any] | None = None) -> None:
        self._src = src
        self._on_read = on_read
        self.headers = src.headers
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.count += len(data)
        if self._on_read is not None:
            self._on_read(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        n = self._src.readinto(buffer)
        self.count += n or 0
        if self._on_read is not None:
            self._on_read(n or 0)
        return n

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _BufferedDecoder:
    """A readable applying ``decompress(chunk)`` / ``flush()`` to a source stream, fed
    ``INPUT_CHUNK`` bytes at a time; output is buffered without quadratic copies."""

    def __init__(self, src: Any, decompress: Callable[[bytes], bytes], flush: Callable[[], bytes]) -> None:
        self._src = src
        self._decompress = decompress
        self._flush = flush
        self._buf = bytearray()
        self._pos = 0
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(OUTPUT_CHUNK), b""))
        while not self._eof and len(self._buf) - self._pos < n:
            chunk = self._src.read(INPUT_CHUNK)
            if chunk:
                self._buf += self._decompress(chunk)
            else:
                self._buf += self._flush()
                self._eof = True
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += len(out)
        if self._pos > MiB and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        return out


def _is_zlib_header(head: bytes) -> bool:
    """RFC 1950 header: deflate method, window <= 32 KiB, check bits."""
    return len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and ((head[0] << 8) | head[1]) % 31 == 0


class _DeflateReader:
    """HTTP 'deflate': zlib-wrapped as the RFC says, or a raw deflate stream as some servers send.

    Each read decodes at most what it returns (``decompress(data, max_length)``, the rest of the
    input kept as ``unconsumed_tail``), so output is neither buffered nor copied twice.
    """

    def __init__(self, src: Any) -> None:
        self._src = src
        self._d: Any = None
        self._input = b""
        self._extra = b""  # what a final flush() gave beyond a read's size (a few hundred bytes at most)
        self._eof = False

    def _start(self) -> None:
        head = b""
        while len(head) < 2:
            chunk = self._src.read(INPUT_CHUNK)
            if not chunk:
                break
            head += chunk
        self._d = zlib.decompressobj(zlib.MAX_WBITS if _is_zlib_header(head) else -zlib.MAX_WBITS)
        self._input = head

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(OUTPUT_CHUNK), b""))
        if self._d is None:
            self._start()
        parts: list[bytes] = []
        want = n
        if self._extra:
            out, self._extra = self._extra[:want], self._extra[want:]
            parts.append(out)
            want -= len(out)
        while want > 0 and not self._eof:
            if not self._input:
                if self._d.eof:  # the end of the deflate stream; anything after it is ignored
                    self._eof = True
                    break
                self._input = self._src.read(INPUT_CHUNK)
                if not self._input:  # the body ended: what the decoder still holds, then EOF
                    out = self._d.decompress(b"", want)
                    if not out:
                        self._extra = self._d.flush()
                        self._eof = True
                        out, self._extra = self._extra[:want], self._extra[want:]
                    parts.append(out)
                    want -= len(out)
                    continue
            out = self._d.decompress(self._input, want)
            self._input = b"" if self._d.eof else self._d.unconsumed_tail
            parts.append(out)
            want -= len(out)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def _deflate_reader(src: Any) -> _DeflateReader:
    return _DeflateReader(src)


def _brotli_reader(src: Any) -> _BufferedDecoder:
    d = brotli.Decompressor()
    return _BufferedDecoder(src, d.process, lambda: b"")


def _zstd_reader(src: Any) -> Any:
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(src, read_size=INPUT_CHUNK, read_across_frames=True)


def _codings(response: Any) -> list[str]:
    header = response.headers.get("Content-Encoding") or ""
    return [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]


def decoded(response: Any) -> Any:
    """A readable of the response body with its Content-Encoding(s) undone (each read decodes
    at most the bytes asked for)."""
    stream: Any = response
    for coding in reversed(_codings(response)):  # applied in the listed order, so undone in reverse
        if coding in ("gzip", "x-gzip"):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        elif coding == "deflate":
            stream = _deflate_reader(stream)
        elif coding == "zstd":
            stream = _zstd_reader(stream)
        elif coding == "br" and brotli is not None:
            stream = _brotli_reader(stream)
        else:
            raise _UnsupportedEncoding(coding)
    return stream


class _Bounded:
    """The decoded body, refusing to grow past the limits: ``max_bytes`` in all, and (for an
    encoded body, past ``floor`` bytes) ``ratio`` times the encoded bytes received."""

    def __init__(self, src: Any, received: _Counting, url: str, coding: str, limits: cf.Limits, member: str | None) -> None:
        self._src = src
        self._received = received
        self._url = url
        self._coding = coding
        self._member = member
        self.max_bytes = min(limits.max_member_bytes, limits.max_download_bytes)
        self.ratio = limits.max_download_ratio
        self.floor = limits.ratio_floor_bytes
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(OUTPUT_CHUNK if n is None or n < 0 else n)
        self.total += len(data)
        if self.total > self.max_bytes:
            raise cf.CartonFormatError(
                "E-LIMIT-MEMBER-SIZE", f"{self._url}: decoded content exceeds {self.max_bytes} bytes (limit max_download_bytes)", member=self._member
            )
        if self._coding and self.total > self.floor and self.total > self.ratio * max(1, self._received.count):
            raise cf.CartonFormatError(
                "E-LIMIT-RATIO",
                f"{self._url}: the {self._coding}-encoded body expands more than {self.ratio}x ({self.total} bytes decoded from "
                f"{self._received.count} received); refused as a decompression bomb (limit max_download_ratio)",
                member=self._member,
            )
        return data


class _CacheFile:
    """A file being written into the cache: an ``OSError`` from writing it (a full disk, a quota)
    is ``E-IO`` naming the cache, not a transfer failure of the URL (no other URL can help)."""

    def __init__(self, out: IO[bytes], path: Path) -> None:
        self._out = out
        self._path = path

    def write(self, data: Any) -> int:
        try:
            return self._out.write(data)
        except OSError as exc:
            raise cf.CartonFormatError("E-IO", f"writing {self._path} into the cache failed: {exc.strerror or exc}") from None


def _copy_verified(url: str, src: Any, dest: IO[bytes], sha256: str, member: str | None) -> int:
    """The format layer's copy-and-verify, with decoding and transport failures of the body
    reported as ``E-RUNTIME-HTTP``."""
    try:
        return copy_verified(src, dest, sha256, member, origin=url)
    except CartonError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, EOFError, zlib.error, zstandard.ZstdError, http.client errors
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: reading or decoding the body failed: {type(exc).__name__}: {exc}") from None


class LinkFetcher:
    """Fetches LINKS files into the cache; also usable as ``carton_format.read(fetch_linked=)``.

    ``origin`` is the URL the archive came from (None: a local archive); it decides which
    addresses LINKS URLs may reach (see the module docstring), unless ``allow_private`` says
    otherwise (default: the ``CARTON_ALLOW_PRIVATE_URLS`` environment variable).
    """

    def __init__(self, cache: Cache, limits: cf.Limits = cf.DEFAULT_LIMITS, *, origin: str | None = None,
                 allow_private: bool | None = None) -> None:
        self.cache = cache
        self.limits = limits
        self.policy = AddressPolicy(origin, allow_private=allow_private)
        self.downloads = 0  # files actually downloaded by this fetcher

    def __call__(self, path: str, sha256: str, urls: list[str]) -> IO[bytes]:
        """The verified file, opened for reading: the ``carton_format.read(fetch_linked=)`` hook."""
        return open(self.fetch(path, sha256, urls), "rb")

    def _download(self, url: str, sha256: str, path: str | None, dest: Path) -> None:
        with (
            progress.phase("fetch") as timing,
            http_get(url, {"Accept-Encoding": ACCEPT_ENCODING}, policy=self.policy) as response,
            progress.ByteBar(f"fetching {path or progress.transfer_name(url)}", content_length(response)) as bar,
        ):
            received = _Counting(response, bar.update)
            try:
                body = decoded(received)
            except _UnsupportedEncoding as exc:
                raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: unsupported Content-Encoding {exc.args[0]!r}") from None
            bounded = _Bounded(body, received, url, ", ".join(_codings(response)), self.limits, path)
            with open(dest, "wb") as out:
                _copy_verified(url, bounded, _CacheFile(out, dest), sha256, path)  # type: ignore[arg-type]
            timing.count(received.count)

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
                    self._download(url, sha256, path, staging.path)
                    self.downloads += 1
                    return staging.commit(url)
                except CartonError as exc:
                    if exc.code == "E-IO":  # the cache cannot take it: no other URL can help
                        raise
                    log.warning("LINKS: %s: %s", url, exc)
                    failures.append((url, exc))
                    staging.path.unlink(missing_ok=True)  # nothing unverified stays, even for the next URL
            first = failures[0][1]
            if isinstance(first, CartonError) and first.code in ("E-MANIFEST-MISMATCH", "E-LIMIT-MEMBER-SIZE", "E-LIMIT-RATIO"):
                raise first
            detail = "; ".join(f"{getattr(e, 'message', e)}" for _u, e in failures)
            raise cf.CartonFormatError("E-LINKS-FETCH", f"no URL gave the file: {detail}", member=path)


def _validators(response: Any) -> dict[str, str | None]:
    return {"etag": response.headers.get("ETag"), "last_modified": response.headers.get("Last-Modified")}


@dataclass
class ArchiveBody:
    """An open archive body for :func:`store_archive`: a readable ``stream`` (closed afterwards),
    the size the transport announced (None: unknown) and the validators to record (``etag``,
    ``last_modified``: whatever identifies this version of the object at its source)."""

    stream: Any
    expected: int | None
    validators: dict[str, Any]


def download_archive(cache: Cache, url: str, response: Any = None, *, verify: bool = True, policy: AddressPolicy | None = None) -> Path:
    """Download a remote archive into the cache once, stored unpacked (one copy on disk, see
    :mod:`carton_runtime.unpacked`); returns the unpacked carton directory.

    ``response`` is an already open 200 answer to reuse (see RangeNotSupported).  The record
    keeps the server's ETag and Last-Modified (see :func:`store_archive`).
    """

    def open_body() -> ArchiveBody:
        nonlocal response
        if response is None:
            response = http_get(url, {"Accept-Encoding": "identity"}, policy=policy)
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            response.close()
            raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: archive sent with Content-Encoding {encoding!r}")
        return ArchiveBody(response, content_length(response), _validators(response))

    try:
        return store_archive(cache, url, open_body, verify=verify, error_code="E-RUNTIME-HTTP")
    finally:
        if response is not None:
            response.close()  # a cache hit leaves a response given by the caller unread


def store_archive(
    cache: Cache, url: str, open_body: Callable[[], ArchiveBody], *, verify: bool = True, error_code: str = "E-RUNTIME-HTTP"
) -> Path:
    """Download the archive ``open_body()`` streams into the cache once, keyed by ``url``
    (whatever the transport: HTTP here, fsspec in :mod:`carton_runtime.fsspec_source`); returns
    the cached copy (an unpacked carton directory, or the archive file kept whole).

    ``open_body`` is called only on a cache miss, under the URL's lock.  The archive is written
    to a temporary file, unpacked (every member checked by the zip reader and against MANIFEST as
    it is written: nothing unverified enters the cache), and the temporary file is deleted.
    Where the file system cannot hold the members faithfully, the archive is kept whole
    (``files/<its sha256>/file``, checked first when ``verify``).  The record keeps the body's
    validators, the archive's size and the hash of its last bytes for revalidation.  A failure
    of the transport while reading is ``error_code``.
    """
    hit = cache.url_lookup(url)
    if hit is not None:
        return hit
    cache.clean_stale_once()
    with cache.lock(url_key(url)):
        hit = cache.url_lookup(url)
        if hit is not None:
            return hit
        body = open_body()
        files = cache.root / "files"
        try:
            files.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=cache.tmp_prefix(url_key(url), "download"), dir=files)
        except BaseException:
            _close(body.stream)
            raise
        tmp = Path(tmp_name)
        try:
            with contextlib.closing(body.stream) as stream, os.fdopen(fd, "wb") as out:
                try:
                    with progress.phase("fetch") as timing, progress.ByteBar(f"downloading {progress.transfer_name(url)}", body.expected) as bar:
                        sha, total = copy_with_hashing(stream, _CacheFile(out, tmp), progress=bar.update)  # type: ignore[arg-type]
                        timing.count(total)
                except CartonError:
                    raise
                except Exception as exc:  # noqa: BLE001 - connection resets, timeouts, IncompleteRead, a store's errors
                    raise CartonRuntimeError(error_code, f"{url}: download failed: {type(exc).__name__}: {exc}") from None
            if body.expected is not None and total != body.expected:
                raise CartonRuntimeError(error_code, f"{url}: got {total} bytes, {body.expected} were announced")
            tail = _local_tail(tmp, REVALIDATE_TAIL)
            with progress.phase("verify"):
                final, key, extra = _store(cache, url, tmp, sha, verify)
            cache.url_record(url, key, total, **body.validators, tail_sha256=sha256_hex(tail), tail_len=len(tail), **extra)
            return final
        finally:
            tmp.unlink(missing_ok=True)


def _close(stream: Any) -> None:
    try:
        stream.close()
    except Exception:  # noqa: BLE001 - closing is best effort on a path that already failed
        pass


def _store(cache: Cache, url: str, tmp: Path, sha: str, verify: bool) -> tuple[Path, str, dict[str, Any]]:
    """Put the downloaded archive ``tmp`` (sha256 ``sha``) into the cache: unpacked when the file
    system allows it; returns (path, entry key, extra record fields)."""
    with cf.read(tmp, verify_hashes=False) as archive:
        key = unpacked_key(archive)
        extra: dict[str, Any] = {"kind": UNPACKED, "manifest_sha256": archive.manifest_sha256}
        try:
            with cache.staging(key, UNPACKED) as staging:
                if isinstance(staging, Path):  # the same archive, unpacked already (another URL, another process)
                    return staging, key, extra
                unpack(archive, staging.path)
                return staging.commit(url), key, extra
        except CannotUnpack as exc:
            log.warning("%s: cannot store the archive unpacked in %s (%s); keeping it whole", url, cache.root, exc)
    if verify:
        with cf.read(tmp, verify_hashes=True) as archive:
            manifest_sha = archive.manifest_sha256
    with cache.staging(sha) as staging:
        if isinstance(staging, Path):
            return staging, sha, {}
        os.replace(tmp, staging.path)
        return staging.commit(url), sha, {"manifest_sha256": manifest_sha} if verify else {}


def url_max_age() -> float:
    """Seconds a cached URL is used without asking its server again (``CARTON_URL_MAX_AGE``,
    default 0: revalidate on every load)."""
    value = os.environ.get(ENV_URL_MAX_AGE, "")
    try:
        age = float(value) if value.strip() else DEFAULT_URL_MAX_AGE
    except ValueError:
        log.warning("%s=%r is not a number; using %g", ENV_URL_MAX_AGE, value, DEFAULT_URL_MAX_AGE)
        return DEFAULT_URL_MAX_AGE
    return age if age >= 0 else DEFAULT_URL_MAX_AGE


def _local_tail(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - n))
        return fh.read()


def _differs(record: dict[str, Any], response: Any) -> bool:
    """The answer's validators contradict the record (only validators both sides have count)."""
    return any(value and record.get(key) and value != record[key] for key, value in _validators(response).items())


def _same_tail(record: dict[str, Any], path: Path, tail: bytes) -> bool:
    """The server's last bytes are those of the cached archive: the recorded hash of its tail
    (an unpacked entry keeps no archive), or the tail of the archive file kept whole."""
    if isinstance(record.get("tail_sha256"), str):
        return len(tail) == record.get("tail_len") and sha256_hex(tail) == record["tail_sha256"]
    return path.is_file() and tail == _local_tail(path, len(tail))


def cached_archive(cache: Cache, url: str, *, policy: AddressPolicy | None = None) -> tuple[Path | None, Any]:
    """The cached archive of ``url`` (an unpacked carton directory, or an archive file kept
    whole) if it is still what the server has: ``(path, None)``;
    ``(None, None)`` when it is not cached or has changed (the record is then dropped);
    ``(None, response)`` when it has changed and the server answered with the whole new file
    (an open 200 response for :func:`download_archive`).

    A record checked less than ``CARTON_URL_MAX_AGE`` seconds ago (default 0, so never) is used as is.
    Otherwise one request asks for the last ``REVALIDATE_TAIL`` bytes, conditional on the
    recorded ETag (If-None-Match) and Last-Modified (If-Modified-Since): 304 means unchanged; a
    206 means unchanged when the total size, the validators the server sends and those last
    bytes all match the cached archive (their sha256 is recorded when it is downloaded).  When the server cannot be reached (connection refused,
    DNS, timeouts) or answers 5xx, the cached archive is used with a warning; any other answer
    is the server's word (a 404 is an error).
    """
    entry = cache.url_entry(url)
    if entry is None:
        return None, None
    record, path = entry
    checked = record.get("checked", record.get("time", 0))
    age = time.time() - checked if isinstance(checked, (int, float)) else float("inf")
    if 0 <= age < url_max_age():
        return path, None
    headers = {"Range": f"bytes=-{REVALIDATE_TAIL}", "Accept-Encoding": "identity"}
    if record.get("etag"):
        headers["If-None-Match"] = record["etag"]
    if record.get("last_modified"):
        headers["If-Modified-Since"] = record["last_modified"]
    try:
        response = http_get(url, headers, policy=policy)
    except HttpStatusError as exc:
        if exc.status == 304:
            cache.url_checked(url, record)
            return path, None
        if exc.status == 416:  # the file is empty now: changed (opening it again says what is wrong)
            cache.url_forget(url)
            return None, None
        if exc.status < 500:
            raise
        log.warning("%s: %s; using the cached copy (%s)", url, exc.message, path)
        return path, None
    except CartonRuntimeError as exc:
        log.warning("%s: cannot check whether the cached copy is current (%s); using it (%s)", url, exc.message, path)
        return path, None
    size = record.get("size")
    if response.status == 206:
        with response:
            start, end, total = parse_content_range(url, response)
            same = total == size and not _differs(record, response) and _same_tail(record, path, read_exactly(url, response, end - start + 1))
    else:  # a server ignoring Range: believe its validators if it has any, else take the new body
        same = bool(response.headers.get("ETag") or response.headers.get("Last-Modified"))
        same = same and content_length(response) in (None, size) and not _differs(record, response)
        if not same:
            cache.url_forget(url)
            return None, response
        response.close()
    if same:
        cache.url_checked(url, record)
        return path, None
    log.info("%s: changed on the server since it was cached; fetching it again", url)
    cache.url_forget(url)
    return None, None


__all__ = [
    "ACCEPT_ENCODING",
    "ArchiveBody",
    "ENV_URL_MAX_AGE",
    "REVALIDATE_TAIL",
    "SUPPORTED_ENCODINGS",
    "LinkFetcher",
    "cached_archive",
    "decoded",
    "download_archive",
    "store_archive",
    "url_max_age",
]
