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

Only the transport lives here (:class:`HttpRangeFetcher`, with an injectable opener, as pip's
``lazy_wheel`` takes a session); the caching policy and the file interface are HTTP-free and live
in :mod:`carton_runtime.range_cache`, which :class:`HttpRangeFile` composes.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from .errors import CartonRuntimeError
from .range_cache import BLOCK_CACHE_BYTES, MIN_FETCH, RangeFile, TailBlockCache

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB

#: Bytes fetched from the end of the archive when it is opened.
TAIL_BYTES = 128 * KiB
# MIN_FETCH (smallest range request for a miss) and BLOCK_CACHE_BYTES (block cache bound) are
# the cache's policy; they are defined in range_cache and re-exported here.
MAX_REDIRECTS = 10
ENV_TIMEOUT = "CARTON_HTTP_TIMEOUT"
USER_AGENT = "carton-py-runtime/0.1"

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def timeout() -> float:
    """Socket timeout in seconds for HTTP requests (``CARTON_HTTP_TIMEOUT``, default 60)."""
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

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: http.client.HTTPMessage, newurl: str
    ) -> urllib.request.Request | None:
        parts = urlsplit(newurl)
        if parts.scheme not in ("http", "https") or "@" in parts.netloc:
            raise CartonRuntimeError("E-RUNTIME-HTTP", f"{req.full_url}: refusing a redirect to {newurl!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Opener(Protocol):
    """What requests go through: a ``urllib.request.OpenerDirector`` or anything with its ``open``."""

    def open(self, fullurl: Any, data: Any = None, timeout: float = ...) -> Any:
        """Send a request (``fullurl``: a URL or a ``Request``) and return the response."""
        ...


_opener_lock = threading.Lock()
_opener: urllib.request.OpenerDirector | None = None


def opener() -> urllib.request.OpenerDirector:
    """The process-wide opener; it refuses redirects to non-http(s) URLs or URLs with user information."""
    global _opener
    with _opener_lock:
        if _opener is None:
            _opener = urllib.request.build_opener(_Redirects)
        return _opener


def _default_opener() -> Opener:
    return opener()  # looked up at call time (``http_get``'s parameter shadows the name)


class HttpStatusError(CartonRuntimeError):
    """A non-2xx answer (``status``)."""

    def __init__(self, url: str, status: int, reason: str) -> None:
        self.status = status
        self.url = url
        super().__init__("E-RUNTIME-HTTP", f"{url}: HTTP {status} {reason}".rstrip())


def http_get(url: str, headers: dict[str, str] | None = None, *, opener: Opener | None = None) -> Any:
    """GET ``url`` (through ``opener``, default the module's :func:`opener`); returns the open
    response (2xx only), else raises E-RUNTIME-HTTP."""
    check_http_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    via = opener if opener is not None else _default_opener()
    try:
        return via.open(request, timeout=timeout())
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
    """The response's Content-Length, or None when it is missing or malformed."""
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

    def __init__(self, url: str, response: Any) -> None:
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


class HttpRangeFetcher:
    """Checked HTTP range requests for one URL, through an injected ``opener`` (default: the
    module's :func:`opener`, which refuses redirects away from http(s)).

    :meth:`fetch_tail` learns the size; :meth:`fetch` is a ``fetcher(start, end)`` for
    :class:`~carton_runtime.range_cache.TailBlockCache`.  ``requests`` and ``bytes_fetched``
    count the traffic; ``size`` is ``None`` until the tail (or the size) is known.
    """

    def __init__(self, url: str, *, opener: Opener | None = None, size: int | None = None) -> None:
        check_http_url(url)
        self.url = url
        self.opener = opener
        self.size = size
        self.requests = 0
        self.bytes_fetched = 0
        self._lock = threading.Lock()

    def _request(self, range_value: str) -> Any:
        with self._lock:
            self.requests += 1
        try:
            return http_get(self.url, {"Range": range_value, "Accept-Encoding": "identity"}, opener=self.opener)
        except HttpStatusError as exc:
            if exc.status == 416:
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP", f"{self.url}: the server refused the range {range_value} (416); is the file empty?"
                ) from None
            raise

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_fetched += n

    def fetch_tail(self, n: int) -> tuple[int, bytes, int]:
        """The last ``n`` bytes, with one suffix-range request: ``(start, data, total_size)``.

        Raises :class:`RangeNotSupported` (carrying the open 200 response) when the server
        ignores ``Range``.
        """
        response = self._request(f"bytes=-{n}")
        try:
            if response.status == 200:
                raise RangeNotSupported(self.url, response)
            if response.status != 206:
                raise CartonRuntimeError("E-RUNTIME-HTTP", f"{self.url}: answered {response.status} to a range request")
            _check_identity(self.url, response)
            start, end, total = _parse_content_range(self.url, response)
            if end != total - 1 or start != max(0, total - n):
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP", f"{self.url}: asked for the last {n} bytes, got bytes {start}-{end} of {total}"
                )
            data = _read_exactly(self.url, response, end - start + 1)
        except RangeNotSupported:
            raise
        except BaseException:
            response.close()
            raise
        response.close()
        self._count(len(data))
        self.size = total
        return start, data, total

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) with one checked range request."""
        if not 0 <= start < end:
            raise ValueError(f"empty or negative range [{start}, {end})")
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
            if (got_start, got_end) != (start, end - 1) or (self.size is not None and total != self.size):
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP",
                    f"{self.url}: asked for bytes {start}-{end - 1} of {self.size if self.size is not None else '?'}, "
                    f"got bytes {got_start}-{got_end} of {total}",
                )
            data = _read_exactly(self.url, response, end - start)
        self._count(len(data))
        return data


class HttpRangeFile(RangeFile):
    """A read-only, seekable file over HTTP range requests (see the module docstring): an
    :class:`HttpRangeFetcher` feeding a :class:`~carton_runtime.range_cache.TailBlockCache`.

    The constructor fetches the tail (raising :class:`RangeNotSupported` for a server that
    ignores ``Range``).  ``requests`` and ``bytes_fetched`` count the network traffic.
    """

    def __init__(self, url: str, *, tail_bytes: int = TAIL_BYTES, min_fetch: int = MIN_FETCH, opener: Opener | None = None) -> None:
        self.fetcher = HttpRangeFetcher(url, opener=opener)
        tail_start, tail, size = self.fetcher.fetch_tail(tail_bytes)
        cache = TailBlockCache(
            self.fetcher.fetch, size, tail_start, tail, min_fetch=min_fetch, max_bytes=BLOCK_CACHE_BYTES, name=url
        )
        super().__init__(cache, size)

    @property
    def url(self) -> str:
        """The archive's URL."""
        return self.fetcher.url

    @property
    def requests(self) -> int:
        """HTTP requests made so far (the tail fetch included)."""
        return self.fetcher.requests

    @property
    def bytes_fetched(self) -> int:
        """Body bytes received so far."""
        return self.fetcher.bytes_fetched


__all__ = [
    "BLOCK_CACHE_BYTES",
    "MIN_FETCH",
    "TAIL_BYTES",
    "HttpRangeFetcher",
    "HttpRangeFile",
    "HttpStatusError",
    "Opener",
    "RangeNotSupported",
    "check_http_url",
    "content_length",
    "http_get",
    "opener",
    "timeout",
]
