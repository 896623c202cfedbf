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

Every request made through the module's :func:`opener` is guarded end to end, redirect hops
included, by its own connection and response classes:

* **Time.** ``CARTON_HTTP_TIMEOUT`` (default 60 s) bounds any wait with nothing received; a
  request (connect, redirects, headers, body) must finish within ``CARTON_HTTP_DEADLINE``
  (default 3600 s, 0: none); and it is abandoned as stalled when fewer than
  ``CARTON_HTTP_STALL_BYTES`` (default 64 KiB) arrived in ``CARTON_HTTP_STALL_SECONDS`` (default
  30 s, 0: no stall rule).  These are checked between socket reads, each read waiting only until
  the next check is due, so a server trickling a byte at a time cannot hold a request longer.
* **Addresses** (:class:`AddressPolicy`).  Each hop's host is resolved (``getaddrinfo``) and only
  an address the policy allows is connected to, so what is checked is what is used.  Public
  addresses are always allowed; loopback, link-local and private ones only when the origin (the
  archive the request is made for) has an address of that class itself, or, for a local
  archive, loopback; ``CARTON_ALLOW_PRIVATE_URLS=1`` allows them all.
"""

from __future__ import annotations

import contextvars
import functools
import http.client
import io
import ipaddress
import logging
import math
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import IO, Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

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
ENV_DEADLINE = "CARTON_HTTP_DEADLINE"
ENV_STALL_BYTES = "CARTON_HTTP_STALL_BYTES"
ENV_STALL_SECONDS = "CARTON_HTTP_STALL_SECONDS"
ENV_ALLOW_PRIVATE = "CARTON_ALLOW_PRIVATE_URLS"
DEFAULT_TIMEOUT = 60.0
DEFAULT_DEADLINE = 3600.0
DEFAULT_STALL_BYTES = 64 * KiB
DEFAULT_STALL_SECONDS = 30.0
USER_AGENT = "carton-py-runtime/0.1"

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_NAME = re.compile(rb"[A-Za-z0-9_.-]+")


def _env_number(name: str, default: float) -> float:
    """A non-negative number from the environment (the default when unset or malformed)."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = float(value)
    except ValueError:
        log.warning("%s=%r is not a number; using %g", name, value, default)
        return default
    if not math.isfinite(number) or number < 0:
        log.warning("%s=%r must be a non-negative number; using %g", name, value, default)
        return default
    return number


def timeout() -> float:
    """Longest wait in seconds with nothing received (``CARTON_HTTP_TIMEOUT``, default 60)."""
    return _env_number(ENV_TIMEOUT, DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT


def deadline() -> float:
    """Total seconds one request may take, connect to last byte (``CARTON_HTTP_DEADLINE``,
    default 3600; 0: no deadline)."""
    return _env_number(ENV_DEADLINE, DEFAULT_DEADLINE)


def stall_rule() -> tuple[int, float]:
    """``(bytes, seconds)``: a request receiving fewer bytes than that in that many seconds is
    stalled (``CARTON_HTTP_STALL_BYTES``, default 65536, ``CARTON_HTTP_STALL_SECONDS``, default
    30; 0 seconds: no stall rule)."""
    return int(_env_number(ENV_STALL_BYTES, DEFAULT_STALL_BYTES)), _env_number(ENV_STALL_SECONDS, DEFAULT_STALL_SECONDS)


def check_http_url(url: str, arg: str | None = None) -> None:
    """Only absolute http(s) URLs with a host, without whitespace or control characters; user
    information (user:password@) is refused.  ``arg`` (an argument name) starts the message."""
    where = f"{arg}: " if arg else ""
    if not isinstance(url, str):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{where}expected a URL string, not {type(url).__name__}", name=arg)
    bad = _CONTROL.search(url)
    if bad:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{where}URL {url!r} contains the character {bad.group()!r}", name=arg)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{where}malformed URL {url!r}: {exc}", name=arg) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{where}not an absolute http(s) URL: {url!r}", name=arg)
    if "@" in parts.netloc:
        raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{where}URLs with user information are refused: {url!r}", name=arg)
    host = parts.hostname
    if _ip(host) is None:  # a name: what goes on the wire (IDNA) must be a plain DNS name
        try:
            encoded = host.encode("idna")
        except UnicodeError as exc:
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{where}malformed host name in {url!r}: {exc}", name=arg) from None
        if not _HOST_NAME.fullmatch(encoded):
            raise CartonRuntimeError("E-RUNTIME-SOURCE", f"{where}malformed host name {host!r} in {url!r}", name=arg)


def _request_url(url: str) -> str:
    """``url`` as sent: characters HTTP cannot carry (spaces, non-ASCII) percent-encoded."""
    if url.isascii() and " " not in url:
        return url
    parts = urlsplit(url)
    safe = "/%:@!$&'()*+,;=~-._"
    return urlunsplit((parts.scheme, parts.netloc, quote(parts.path, safe=safe), quote(parts.query, safe=safe + "?"), ""))


# -- which addresses a request may reach -----------------------------------------------------------

LOOPBACK = "loopback"
LINK_LOCAL = "link-local"
PRIVATE = "private"
PUBLIC = "public"
NON_PUBLIC = frozenset({LOOPBACK, LINK_LOCAL, PRIVATE})


def address_class(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """``"loopback"`` (also the unspecified address, which reaches this host), ``"link-local"``
    (169.254/16, fe80::/10: cloud metadata services live there), ``"private"`` (everything else
    that is not globally routable: RFC 1918, unique-local, shared, reserved, multicast) or
    ``"public"``.  IPv4-mapped IPv6 addresses are classified as their IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if not ip.is_global or ip.is_multicast:
        return PRIVATE
    return PUBLIC


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def resolve(host: str, port: int | None) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` for TCP (the one place names are resolved; tests replace it)."""
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)


def host_classes(host: str) -> frozenset[str]:
    """The classes of every address ``host`` resolves to (empty when it does not resolve)."""
    literal = _ip(host.strip("[]"))
    if literal is not None:
        return frozenset({address_class(literal)})
    try:
        infos = resolve(host, None)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(address_class(ip) for ip in (_ip(str(info[4][0])) for info in infos) if ip is not None)


def allow_private_env() -> bool:
    """``CARTON_ALLOW_PRIVATE_URLS`` is set to 1 (or true, yes, on)."""
    return os.environ.get(ENV_ALLOW_PRIVATE, "").strip().lower() in ("1", "true", "yes", "on")


class AddressPolicy:
    """Which addresses requests made on behalf of ``origin`` may connect to.

    ``origin`` is the URL of the archive the requests are for, or None for a local archive (a
    path or file:// URL).  Public addresses are always allowed.  A non-public class (loopback,
    link-local, private) is allowed when the origin's host has an address of that class itself
    (an archive from 127.0.0.1 may link to 127.0.0.1, one from 10.0.0.5 to 10.1.2.3), for a local
    archive loopback only, and every class when ``allow_private`` is true (default: the
    ``CARTON_ALLOW_PRIVATE_URLS`` environment variable, read when the policy is first used).
    The origin's host is resolved once, on first use.
    """

    def __init__(self, origin: str | None = None, *, allow_private: bool | None = None) -> None:
        self.origin = origin
        self._allow_private = allow_private
        self._allowed: frozenset[str] | None = None
        self._lock = threading.Lock()

    @property
    def allowed(self) -> frozenset[str]:
        """The non-public address classes requests may reach."""
        with self._lock:
            if self._allowed is None:
                allow_all = self._allow_private if self._allow_private is not None else allow_private_env()
                if allow_all:
                    self._allowed = NON_PUBLIC
                elif self.origin is None:
                    self._allowed = frozenset({LOOPBACK})
                else:
                    try:
                        host = urlsplit(self.origin).hostname or ""
                    except ValueError:
                        host = ""
                    self._allowed = host_classes(host) & NON_PUBLIC if host else frozenset()
            return self._allowed

    def allows(self, kind: str) -> bool:
        """Whether an address of class ``kind`` may be connected to."""
        return kind == PUBLIC or kind in self.allowed

    def refusal(self, url: str, host: str, refused: list[tuple[str, str]]) -> CartonRuntimeError:
        """The error for a host all of whose addresses are refused."""
        bare = host.strip("[]")
        if all(ip == bare for ip, _kind in refused):
            target = f"{bare} (a {refused[0][1]} address)"
        else:
            target = f"{bare} at " + ", ".join(f"{ip} ({kind})" for ip, kind in refused[:4])
        origin = f"the archive at {self.origin}" if self.origin else "a local archive"
        allowed = " and ".join(["public", *sorted(self.allowed)])
        return CartonRuntimeError(
            "E-RUNTIME-HTTP",
            f"{url}: refusing to connect to {target}: requests for {origin} may reach only {allowed} addresses "
            f"(set {ENV_ALLOW_PRIVATE}=1 to allow loopback, link-local and private ones)",
        )

    def __repr__(self) -> str:
        return f"AddressPolicy(origin={self.origin!r})"


# -- the guarded transfer: deadline, stall rule, address checks ---------------------------------------


class _Transfer:
    """One request's clock and byte count (redirect hops included), checked before each socket read."""

    def __init__(self, url: str, policy: AddressPolicy | None) -> None:
        self.url = url
        self._policy = policy
        self.op_timeout = timeout()
        self.deadline_s = deadline()
        self.stall_bytes, self.stall_s = stall_rule()
        self.start = time.monotonic()
        self.deadline = self.start + self.deadline_s if self.deadline_s > 0 else math.inf
        self.last_progress = self.start
        self.window_start = self.start
        self.window_bytes = 0
        self.received = 0

    @property
    def policy(self) -> AddressPolicy:
        if self._policy is None:
            self._policy = AddressPolicy(self.url)
        return self._policy

    def deadline_error(self) -> CartonRuntimeError:
        return CartonRuntimeError(
            "E-RUNTIME-HTTP", f"{self.url}: exceeded the {self.deadline_s:g} s deadline ({self.received} bytes received; {ENV_DEADLINE})"
        )

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def connect_timeout(self) -> float:
        """The timeout for connecting and sending: the no-data timeout, cut short by the deadline."""
        now = time.monotonic()
        if now >= self.deadline:
            raise self.deadline_error()
        return max(0.001, min(self.op_timeout, self.deadline - now))

    def wait_time(self) -> float:
        """How long the next socket read may block; raises E-RUNTIME-HTTP when the request is
        past its deadline, stalled, or has received nothing for the timeout."""
        now = time.monotonic()
        if now >= self.deadline:
            raise self.deadline_error()
        if self.stall_s > 0 and now - self.window_start >= self.stall_s:
            if self.window_bytes < self.stall_bytes:
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP",
                    f"{self.url}: stalled: {self.window_bytes} bytes in the last {self.stall_s:g} s "
                    f"(at least {self.stall_bytes} expected; {ENV_STALL_BYTES}, {ENV_STALL_SECONDS})",
                )
            self.window_start, self.window_bytes = now, 0
        if now - self.last_progress >= self.op_timeout:
            raise CartonRuntimeError("E-RUNTIME-HTTP", f"{self.url}: timed out: nothing received for {self.op_timeout:g} s ({ENV_TIMEOUT})")
        limits = [self.op_timeout - (now - self.last_progress), self.deadline - now]
        if self.stall_s > 0:
            limits.append(self.window_start + self.stall_s - now)
        return max(0.001, min(limits))

    def got(self, n: int) -> None:
        if n > 0:
            self.received += n
            self.window_bytes += n
            self.last_progress = time.monotonic()


_current_transfer: contextvars.ContextVar[_Transfer | None] = contextvars.ContextVar("carton_http_transfer", default=None)


class _GuardedSocketReader(io.RawIOBase):
    """The socket's bytes, each read waiting only until the transfer's next check is due."""

    def __init__(self, sock: socket.socket, transfer: _Transfer) -> None:
        super().__init__()
        self._sock = sock
        self._ref = sock.makefile("rb", buffering=0)  # keeps the socket open once the connection lets go of it
        self._transfer = transfer

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._sock.fileno()

    def readinto(self, buffer: Any) -> int:
        while True:
            self._sock.settimeout(self._transfer.wait_time())
            try:
                n = self._sock.recv_into(buffer)
            except TimeoutError:
                continue  # wait_time() says whether that was the deadline, a stall or the timeout
            self._transfer.got(n)
            return n

    def close(self) -> None:
        if not self.closed:
            self._ref.close()
        super().close()


class _GuardedResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None, url: str | None = None, *,
                 transfer: _Transfer) -> None:
        super().__init__(sock, debuglevel=debuglevel, method=method, url=url)
        self.fp.close()
        self.fp = io.BufferedReader(_GuardedSocketReader(sock, transfer), 64 * KiB)


class _GuardedConnect:
    """Mixin for http.client connections: resolve, check every address against the transfer's
    policy, connect only to an allowed one; responses read through the transfer's checks."""

    _transfer: _Transfer
    _hop_url: str
    _target: str | None

    def _guard(self, transfer: _Transfer, hop_url: str) -> None:
        self._transfer = transfer
        self._hop_url = hop_url
        try:
            self._target = urlsplit(hop_url).hostname
        except ValueError:
            self._target = None
        self._create_connection = self._connect_checked
        self.response_class = functools.partial(_GuardedResponse, transfer=transfer)

    def _connect_checked(self, address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        transfer, policy = self._transfer, self._transfer.policy
        if self._target is not None and host.strip("[]").lower() != self._target.strip("[]").lower():
            # Through a proxy (the user's configuration): check where the request goes, as far as it resolves here.
            kinds = host_classes(self._target)
            bad = sorted(k for k in kinds if not policy.allows(k))
            if bad:
                raise policy.refusal(self._hop_url, self._target, [(self._target, k) for k in bad])
            return socket.create_connection(address, transfer.connect_timeout(), source_address)
        refused: list[tuple[str, str]] = []
        error: OSError | None = None
        for family, kind_, proto, _name, sockaddr in resolve(host, port):
            ip = _ip(str(sockaddr[0]))
            kind = address_class(ip) if ip is not None else PRIVATE
            if not policy.allows(kind):
                refused.append((str(sockaddr[0]), kind))
                continue
            sock = socket.socket(family, kind_, proto)
            try:
                sock.settimeout(transfer.connect_timeout())  # also what sending the request may take
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
            except TimeoutError as exc:
                sock.close()
                if transfer.expired():
                    raise transfer.deadline_error() from None
                error = exc
            except OSError as exc:
                sock.close()
                error = exc
            else:
                return sock
        if error is not None:
            raise error
        if refused:
            raise policy.refusal(self._hop_url, host, refused)
        raise OSError(f"{host} resolves to no address")


class _GuardedHTTPConnection(_GuardedConnect, http.client.HTTPConnection):
    def __init__(self, *args: Any, transfer: _Transfer, hop_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard(transfer, hop_url)


class _GuardedHTTPSConnection(_GuardedConnect, http.client.HTTPSConnection):
    def __init__(self, *args: Any, transfer: _Transfer, hop_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard(transfer, hop_url)


def _connection_class(cls: type, req: urllib.request.Request) -> Any:
    transfer = _current_transfer.get()
    if transfer is None:  # the opener used directly, not through http_get
        transfer = _Transfer(req.full_url, None)
    return functools.partial(cls, transfer=transfer, hop_url=req.full_url)


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_connection_class(_GuardedHTTPConnection, req), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        kwargs: dict[str, Any] = {"context": getattr(self, "_context", None)}
        if hasattr(self, "_check_hostname"):  # Python < 3.12
            kwargs["check_hostname"] = self._check_hostname
        return self.do_open(_connection_class(_GuardedHTTPSConnection, req), req, **kwargs)


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
    """The process-wide opener: guarded connections (deadline, stall rule, address policy) and
    redirects only to http(s) URLs without user information."""
    global _opener
    with _opener_lock:
        if _opener is None:
            handlers: list[Any] = [_Redirects, _GuardedHTTPHandler]
            if hasattr(http.client, "HTTPSConnection"):
                handlers.append(_GuardedHTTPSHandler)
            _opener = urllib.request.build_opener(*handlers)
        return _opener


def _default_opener() -> Opener:
    return opener()  # looked up at call time (``http_get``'s parameter shadows the name)


class HttpStatusError(CartonRuntimeError):
    """A non-2xx answer (``status``; ``headers`` when there were some)."""

    def __init__(self, url: str, status: int, reason: str, headers: Any = None) -> None:
        self.status = status
        self.url = url
        self.headers = headers
        super().__init__("E-RUNTIME-HTTP", f"{url}: HTTP {status} {reason}".rstrip())


def http_get(url: str, headers: dict[str, str] | None = None, *, opener: Opener | None = None, policy: AddressPolicy | None = None) -> Any:
    """GET ``url`` (through ``opener``, default the module's :func:`opener`); returns the open
    response (2xx only), else raises E-RUNTIME-HTTP.

    With the module's opener the request is guarded (see the module docstring): ``policy`` says
    which addresses it may reach, by default those of a request the user made for ``url``
    itself (``AddressPolicy(url)``).  The deadline and stall rule keep applying while the body
    is read."""
    check_http_url(url)
    request = urllib.request.Request(_request_url(url), headers={"User-Agent": USER_AGENT, **(headers or {})})
    via = opener if opener is not None else _default_opener()
    transfer = _Transfer(url, policy)
    token = _current_transfer.set(transfer)
    try:
        return via.open(request, timeout=transfer.op_timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise HttpStatusError(url, exc.code, str(exc.reason or ""), exc.headers) from None
    except CartonRuntimeError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if transfer.expired():  # e.g. sending the request timed out at the deadline
            raise transfer.deadline_error() from None
        reason = getattr(exc, "reason", exc)
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: {reason or type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - http.client raises assorted exceptions
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"{url}: {type(exc).__name__}: {exc}") from None
    finally:
        _current_transfer.reset(token)


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


def parse_content_range(url: str, response: Any) -> tuple[int, int, int]:
    """``(start, end, total)`` of a 206 answer's Content-Range (end inclusive), else E-RUNTIME-HTTP."""
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


def read_exactly(url: str, response: Any, n: int) -> bytes:
    """Exactly ``n`` body bytes; a short body or a transport failure is E-RUNTIME-HTTP."""
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

    def __init__(self, url: str, *, opener: Opener | None = None, size: int | None = None, policy: AddressPolicy | None = None) -> None:
        check_http_url(url)
        self.url = url
        self.opener = opener
        self.policy = policy if policy is not None else AddressPolicy(url)
        self.size = size
        self.requests = 0
        self.bytes_fetched = 0
        self._lock = threading.Lock()

    def _request(self, range_value: str) -> Any:
        with self._lock:
            self.requests += 1
        try:
            return http_get(self.url, {"Range": range_value, "Accept-Encoding": "identity"}, opener=self.opener, policy=self.policy)
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
            start, end, total = parse_content_range(self.url, response)
            if end != total - 1 or start != max(0, total - n):
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP", f"{self.url}: asked for the last {n} bytes, got bytes {start}-{end} of {total}"
                )
            data = read_exactly(self.url, response, end - start + 1)
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
            got_start, got_end, total = parse_content_range(self.url, response)
            if (got_start, got_end) != (start, end - 1) or (self.size is not None and total != self.size):
                raise CartonRuntimeError(
                    "E-RUNTIME-HTTP",
                    f"{self.url}: asked for bytes {start}-{end - 1} of {self.size if self.size is not None else '?'}, "
                    f"got bytes {got_start}-{got_end} of {total}",
                )
            data = read_exactly(self.url, response, end - start)
        self._count(len(data))
        return data


class HttpRangeFile(RangeFile):
    """A read-only, seekable file over HTTP range requests (see the module docstring): an
    :class:`HttpRangeFetcher` feeding a :class:`~carton_runtime.range_cache.TailBlockCache`.

    The constructor fetches the tail (raising :class:`RangeNotSupported` for a server that
    ignores ``Range``).  ``requests`` and ``bytes_fetched`` count the network traffic.
    """

    def __init__(
        self, url: str, *, tail_bytes: int = TAIL_BYTES, min_fetch: int = MIN_FETCH, opener: Opener | None = None, policy: AddressPolicy | None = None
    ) -> None:
        self.fetcher = HttpRangeFetcher(url, opener=opener, policy=policy)
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
    "ENV_ALLOW_PRIVATE",
    "ENV_DEADLINE",
    "ENV_STALL_BYTES",
    "ENV_STALL_SECONDS",
    "ENV_TIMEOUT",
    "MIN_FETCH",
    "TAIL_BYTES",
    "AddressPolicy",
    "HttpRangeFetcher",
    "HttpRangeFile",
    "HttpStatusError",
    "Opener",
    "RangeNotSupported",
    "address_class",
    "allow_private_env",
    "check_http_url",
    "content_length",
    "deadline",
    "host_classes",
    "http_get",
    "opener",
    "parse_content_range",
    "read_exactly",
    "resolve",
    "stall_rule",
    "timeout",
]
