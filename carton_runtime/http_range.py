"""HTTP for the runtime (stdlib only): safe GETs and a seekable file over range requests.

:class:`HttpRangeFile` lets the format layer's zip reader read a remote archive lazily: opening
it fetches the tail of the file (end records, central directory and, because writers put them
last, MANIFEST, LINKS and tensor_data/index.toml) in one suffix-range request that also tells
the size; every other read becomes one exact range request (at least ``MIN_FETCH`` bytes, and
kept in a small block cache).  Every range response is checked: status 206 and a Content-Range
equal to what was asked for and to the known size.  A server that ignores ``Range`` (answers
200 with the whole body) raises :class:`RangeNotSupported`, carrying that response so the caller
can fall back to a full download without a second request; it is never read as if it were the
requested slice.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB

#: Bytes fetched from the end of the archive when it is opened.
TAIL_BYTES = 128 * KiB
#: Smallest range request for a read that misses (read-ahead for local headers).
MIN_FETCH = 64 * KiB
#: Block cache bound (bytes) for ranges fetched after the tail.
BLOCK_CACHE_BYTES = 16 * MiB
MAX_REDIRECTS = 10
ENV_TIMEOUT = "CARTON_HTTP_TIMEOUT"
USER_AGENT = "carton-py-runtime/0.1"

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def timeout() -> float:
    try:
        return float(os.environ.get(ENV_TIMEOUT, "60"))
    except ValueError:
        return 60.0


def check_http_url(url: str) -> None:
    """Only absolute http(s) URLs with a host; user information (user:password@) is refused."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"malformed URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"not an absolute http(s) URL: {url!r}")
    if "@" in parts.netloc:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"URLs with user information are refused: {url!r}")


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        parts = urlsplit(newurl)
        if parts.scheme not in ("http", "https") or "@" in parts.netloc:
            raise CartonRuntimeError("E-RUNTIME-HTTP", f"{req.full_url}: refusing a redirect to {newurl!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener_lock = threading.Lock()
_opener: urllib.request.OpenerDirector | None = None


def opener() -> urllib.request.OpenerDirector:
    global _opener
    with _opener_lock:
        if _opener is None:
            _opener = urllib.request.build_opener(_Redirects)
        return _opener


class HttpStatusError(CartonRuntimeError):
    """A non-2xx answer (``status``)."""

    def __init__(self, url: str, status: int, reason: str):
        self.status = status
        self.url = url
        super().__init__("E-RUNTIME-HTTP", f"{url}: HTTP {status} {reason}".rstrip())


def http_get(url: str, headers: dict[str, str] | None = None) -> Any:
    """GET ``url``; returns the open response (2xx only), else raises E-RUNTIME-HTTP."""
    check_http_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        return opener().open(request, timeout=timeout())
    except urllib.error.HTTPError as exc:
        exc.close()
        raise HttpStatusError(url, exc.code, str(exc.reason or "")) from None
    except CartonRuntimeError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: {reason}") from None
    except Exception as exc:  # noqa: BLE001 - http.client raises assorted exceptions
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: {type(exc).__name__}: {exc}") from None


def content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 0 else None


class RangeNotSupported(Exception):
    """The server answered a range request with 200 and the whole body (``response``)."""

    def __init__(self, url: str, response: Any):
        super().__init__(f"{url}: the server ignores Range requests (answered 200, not 206)")
        self.url = url
        self.response = response


def _parse_content_range(url: str, response: Any) -> tuple[int, int, int]:
    value = response.headers.get("Content-Range")
    match = _CONTENT_RANGE.match(value or "")
    if not match or match.group(3) == "*":
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: 206 answer with a missing or unusable Content-Range ({value!r})")
    start, end, total = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if end < start or end >= total:
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: inconsistent Content-Range {value!r}")
    return start, end, total


def _check_identity(url: str, response: Any) -> None:
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: range answer has Content-Encoding {encoding!r} though identity was asked for")


def _read_exactly(url: str, response: Any, n: int) -> bytes:
    chunks = []
    got = 0
    try:
        while got < n:
            chunk = response.read(min(n - got, 4 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except CartonRuntimeError:
        raise
    except Exception as exc:  # noqa: BLE001 - connection reset, IncompleteRead, timeouts
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: reading the body failed: {type(exc).__name__}: {exc}") from None
    if got != n:
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: the body ended after {got} of {n} bytes")
    return b"".join(chunks)


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP range requests (see the module docstring).

    ``requests`` and ``bytes_fetched`` count the network traffic.
    """

    def __init__(self, url: str, *, tail_bytes: int = TAIL_BYTES, min_fetch: int = MIN_FETCH):
        super().__init__()
        check_http_url(url)
        self.url = url
        self.requests = 0
        self.bytes_fetched = 0
        self._min_fetch = min_fetch
        self._pos = 0
        self._lock = threading.RLock()
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._block_bytes = 0
        response = self._request(f"bytes=-{tail_bytes}")
        try:
            if response.status == 200:
                raise RangeNotSupported(url, response)
            if response.status != 206:
                raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: answered {response.status} to a range request")
            _check_identity(url, response)
            start, end, total = _parse_content_range(url, response)
            if end != total - 1 or start != max(0, total - tail_bytes):
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP", f"{url}: asked for the last {tail_bytes} bytes, got bytes {start}-{end} of {total}"
                )
            self.size = total
            self._tail_start = start
            self._tail = _read_exactly(url, response, end - start + 1)
            self.bytes_fetched += len(self._tail)
        except RangeNotSupported:
            raise
        except BaseException:
            response.close()
            raise
        response.close()

    def _request(self, range_value: str) -> Any:
        self.requests += 1
        try:
            return http_get(self.url, {"Range": range_value, "Accept-Encoding": "identity"})
        except HttpStatusError as exc:
            if exc.status == 416:
                raise CartonRuntimeError("E-RUNTIME-HTTP", f"{self.url}: the server refused the range {range_value} (416); is the file empty?") from None
            raise

    # -- io.RawIOBase ------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, n: int | None = -1) -> bytes:
        with self._lock:
            if n is None or n < 0:
                n = self.size - self._pos
            n = max(0, min(n, self.size - self._pos))
            if n == 0:
                return b""
            data = self._read_at(self._pos, n)
            self._pos += len(data)
            return data

    def readall(self) -> bytes:
        return self.read(-1)

    # -- fetching ----------------------------------------------------------------------------

    def _cached(self, pos: int, n: int) -> bytes | None:
        if pos >= self._tail_start:
            off = pos - self._tail_start
            return self._tail[off : off + n]
        for start, block in self._blocks.items():
            if start <= pos and pos + n <= start + len(block):
                self._blocks.move_to_end(start)
                return block[pos - start : pos - start + n]
        return None

    def _read_at(self, pos: int, n: int) -> bytes:
        hit = self._cached(pos, n)
        if hit is not None and len(hit) == n:
            return hit
        # Fetch what is missing: up to the tail (which is cached already), at least min_fetch.
        end = min(max(pos + n, pos + self._min_fetch), self._tail_start if pos < self._tail_start else self.size)
        data = self._fetch(pos, end)
        if pos + n > end:  # the read runs into the cached tail
            data += self._tail[: pos + n - end]
        if end - pos <= BLOCK_CACHE_BYTES // 4:
            self._remember(pos, data[: end - pos])
        return data[:n]

    def _remember(self, start: int, block: bytes) -> None:
        self._blocks[start] = block
        self._block_bytes += len(block)
        while self._block_bytes > BLOCK_CACHE_BYTES and len(self._blocks) > 1:
            _, old = self._blocks.popitem(last=False)
            self._block_bytes -= len(old)

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) with one checked range request."""
        response = self._request(f"bytes={start}-{end - 1}")
        with response:
            if response.status == 200:
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP",
                    f"{self.url}: the server answered a range request with the whole file (200); it stopped honouring Range",
                )
            if response.status != 206:
                raise CartonRuntimeError("E-RUNTIME-HTTP", f"{self.url}: answered {response.status} to a range request")
            _check_identity(self.url, response)
            got_start, got_end, total = _parse_content_range(self.url, response)
            if (got_start, got_end, total) != (start, end - 1, self.size):
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP",
                    f"{self.url}: asked for bytes {start}-{end - 1} of {self.size}, "
                    f"got bytes {got_start}-{got_end} of {total}",
                )
            data = _read_exactly(self.url, response, end - start)
        self.bytes_fetched += len(data)
        return data


__all__ = [
    "HttpRangeFile",
    "HttpStatusError",
    "RangeNotSupported",
    "check_http_url",
    "content_length",
    "http_get",
]
