"""The wire format host and worker share (described in ``PROTOCOL.md`` next to this file).

One message is ``<u32 header length><u32 payload length><JSON header><payload>`` over a Unix
stream socket, with file descriptors (new shared-memory regions) attached to its first byte.
Arrays are never pickled: a small array travels inline in the payload, a larger one in a
``memfd_create`` region of the sender's :class:`RegionPool`, sent once and reused, and the
receiver gets a numpy view of the region (no copy).  This module imports only the standard
library and numpy, so that a worker in another environment needs nothing else for it.
"""

from __future__ import annotations

import array
import collections
import ctypes
import json
import json.encoder
import json.scanner
import math
import mmap
import os
import select
import socket
import struct
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

PROTOCOL_VERSION = 2
PREFIX = struct.Struct("<II")
#: Arrays of at most this many bytes travel inline in the payload (copying them is cheaper than a region).
INLINE_MAX = 64 * 1024
#: Inline arrays of one message add up to at most this much; further ones go to regions.
INLINE_BUDGET = 16 * 1024 * 1024
#: A header larger than this is a protocol error (a header lists names and shapes, not data).
MAX_HEADER = 16 * 1024 * 1024
#: A payload larger than this is a protocol error (inline arrays stay under INLINE_BUDGET).
MAX_PAYLOAD = INLINE_BUDGET + INLINE_MAX
#: At most this many descriptors ride on one message (Linux allows 253).
MAX_FDS = 250
#: Free regions kept for reuse per pool: at most this many, and at most this many bytes.
POOL_KEEP = 64
POOL_KEEP_BYTES = 1024**3
#: Regions are sized in multiples of this (pages only get memory when touched).
REGION_GRAIN = 64 * 1024
#: dtype kinds sent as raw bytes (numbers, booleans, fixed-width strings and bytes, times).
RAW_KINDS = frozenset("biufcSUmM")


class ProtocolError(Exception):
    """The peer sent something that does not follow the protocol (or went away: ``eof``)."""

    def __init__(self, message: str, *, eof: bool = False) -> None:
        super().__init__(message)
        self.eof = eof


class EncodeError(Exception):
    """A value cannot be sent (``name`` is its key)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


# -- framing ------------------------------------------------------------------------------------


@dataclass
class Message:
    """A received message: its header, payload (writeable) and the descriptors that came with it."""

    header: dict[str, Any]
    payload: bytearray
    fds: list[int] = field(default_factory=list)


def _json_codec() -> tuple[Callable[[Any], str], Callable[[str], Any]]:
    """JSON dumps and loads for headers, with the C encoder and scanner built once (the
    ``json`` module builds its encoder per call and runs two regular expressions per decode:
    a third of a small call's cost)."""
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    decoder = json.JSONDecoder()
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    make_scanner = getattr(json.scanner, "c_make_scanner", None)
    dumps: Callable[[Any], str] = encoder.encode
    loads: Callable[[str], Any] = decoder.decode
    if make_encoder is not None:
        c_encode = make_encoder(None, encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)

        def dumps(obj: Any) -> str:
            return "".join(c_encode(obj, 0))

    if make_scanner is not None:
        scan = make_scanner(decoder)

        def loads(text: str) -> Any:
            try:
                obj, end = scan(text, 0)
            except StopIteration:
                raise ValueError("not a JSON document") from None
            if end != len(text):
                raise ValueError(f"extra data at {end}")
            return obj

    return dumps, loads


_dumps, _loads = _json_codec()
_CTRUNC = int(socket.MSG_CTRUNC)
_ANC_SIZE = socket.CMSG_SPACE(MAX_FDS * 4)
_SCRATCH = 64 * 1024


#: The default poll budget (microseconds) on a machine with more than one CPU.
DEFAULT_SPIN_US = 300.0


def default_spin_s() -> float:
    """How long a side may poll for the peer's answer before it sleeps: ``CARTON_WORKER_SPIN_US``
    (microseconds; default 300; always 0 on a single CPU, where polling only delays the peer).

    A channel polls only while the peer answers within twice that budget and the caller
    expects a quick answer (no tensors in shared memory; see :class:`Channel`), so slow calls
    (large tensors, big models) never poll and a burst of small calls does not sleep.
    Measured on the quiet 2-vCPU VM (a tiny TorchScript call): 294 us per call without polling,
    95 us with a fixed 300 us poll; a fixed poll made 4 MB calls slower (2.9 ms against 1.9 ms:
    the poller competes with the worker's compute for two CPUs), which the adaptive rule avoids."""
    text = os.environ.get("CARTON_WORKER_SPIN_US", "")
    try:
        spin_us = float(text) if text else DEFAULT_SPIN_US
    except ValueError:
        spin_us = DEFAULT_SPIN_US
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(0.0, spin_us) / 1e6 if cpus > 1 else 0.0


class Channel:
    """Message framing over one connected Unix stream socket (one message in flight each way).

    The socket is non-blocking; waits go through ``poll`` with the caller's deadline (a
    ``time.monotonic()`` value, or None), and ``TimeoutError`` when it passes.  Before sleeping,
    ``recv`` polls the socket for ``spin_s`` (see :func:`default_spin_s`) when the previous
    message arrived within that budget: a fast answer is then picked up without the sleep and
    wake-up, which on a virtual machine can cost more than the call itself, and a slow peer is
    waited for asleep.  A message usually arrives in one ``recvmsg_into`` call into a reused scratch buffer; its
    payload is then copied out, since arrays view it."""

    def __init__(self, sock: socket.socket, spin_s: float = 0.0) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.spin_s = spin_s
        self._readable = select.poll()
        self._readable.register(sock.fileno(), select.POLLIN)
        self._writable = select.poll()
        self._writable.register(sock.fileno(), select.POLLOUT)
        self._scratch = bytearray(_SCRATCH)
        self._view = memoryview(self._scratch)
        self._pending = b""  # bytes read past the end of the previous message (none in practice)
        self._last_wait = 0.0  # seconds the previous message took to arrive (decides whether to poll)
        #: The caller's hint for the next ``recv``: False after sending (or before receiving)
        #: tensors through shared memory, whose handling takes longer than any poll budget.
        self.expect_quick = True

    def _wait(self, poller: Any, deadline: float | None) -> None:
        if deadline is None:
            poller.poll()
            return
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(int(left * 1000) + 1) and time.monotonic() >= deadline:
            raise TimeoutError("the peer did not answer in time")

    def send(self, header: dict[str, Any], payload: list[Any] | None = None, fds: list[int] | None = None, deadline: float | None = None) -> None:
        """Send one message; ``payload`` is a list of bytes-like parts (concatenated)."""
        head = _dumps(header).encode()
        body = b"".join(payload) if payload else b""
        data = memoryview(PREFIX.pack(len(head), len(body)) + head + body)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else None
        while data:
            try:
                n = self.sock.sendmsg([data], anc) if anc else self.sock.send(data)
            except BlockingIOError:
                self._wait(self._writable, deadline)
                continue
            anc = None  # the descriptors went with the first bytes
            data = data[n:]

    def _recv_first(self, deadline: float | None) -> tuple[int, list, int]:
        """The first ``recvmsg_into`` of a message: polled for ``spin_s``, then waited for."""
        view = self._view
        start = time.perf_counter()
        quick = self.spin_s and self.expect_quick and self._last_wait <= 2 * self.spin_s
        spin_end = start + self.spin_s if quick else 0.0
        while True:
            try:
                got, anc, flags, _addr = self.sock.recvmsg_into([view], _ANC_SIZE)
                self._last_wait = time.perf_counter() - start
                return got, anc, flags
            except BlockingIOError:
                if spin_end and time.perf_counter() < spin_end:
                    continue
                self._wait(self._readable, deadline)

    def recv(self, deadline: float | None = None) -> Message:
        """Receive one message (``TimeoutError`` after ``deadline``); ``ProtocolError(eof=True)``
        when the peer closed its end."""
        view = self._view
        fds: list[int] = []
        got = len(self._pending)
        if got:
            view[:got] = self._pending
            self._pending = b""
        else:
            got, anc, flags = self._recv_first(deadline)
            if anc:
                fds = _fds_of(anc)
            if flags & _CTRUNC:
                _close_all(fds)
                raise ProtocolError("too many descriptors in one message")
        try:
            if got == 0:
                raise ProtocolError("the peer closed the connection", eof=True)
            got = self._fill(view, got, PREFIX.size, deadline)
            head_len, body_len = PREFIX.unpack_from(view)
            if head_len > MAX_HEADER or body_len > MAX_PAYLOAD:
                raise ProtocolError(f"a message of {head_len} + {body_len} bytes (at most {MAX_HEADER} + {MAX_PAYLOAD})")
            total = PREFIX.size + head_len + body_len
            if total > len(view):  # a big message: its own buffer
                big = bytearray(total)
                big[:got] = view[:got]
                buf = memoryview(big)
                self._fill(buf, got, total, deadline)
            else:
                buf = view
                got = self._fill(view, got, total, deadline)
                if got > total:
                    self._pending = bytes(view[total:got])
            try:
                header = _loads(str(buf[PREFIX.size : PREFIX.size + head_len], "utf-8"))
            except ValueError as exc:  # not UTF-8, not JSON
                raise ProtocolError(f"a header that is not JSON: {exc}") from None
            if not isinstance(header, dict):
                raise ProtocolError("a header must be a JSON object")
        except BaseException:
            _close_all(fds)
            raise
        payload = bytearray(buf[PREFIX.size + head_len : total]) if body_len else bytearray()
        return Message(header, payload, fds)

    def _fill(self, view: memoryview, got: int, need: int, deadline: float | None) -> int:
        """Read until ``view`` holds at least ``need`` bytes (it holds ``got``); returns how many it holds."""
        while got < need:
            try:
                n = self.sock.recv_into(view[got:need] if need < len(view) else view[got:])
            except BlockingIOError:
                self._wait(self._readable, deadline)
                continue
            if n == 0:
                raise ProtocolError("the peer closed the connection mid-message", eof=True)
            got += n
        return got


def _fds_of(anc: list) -> list[int]:
    fds: list[int] = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds.extend(arr)
    return fds


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# -- shared-memory regions ---------------------------------------------------------------------------


@dataclass
class Region:
    """One ``memfd_create`` region owned by this side; ``fd`` is open until it was sent."""

    rid: int
    size: int
    mm: mmap.mmap
    fd: int | None
    addr: int = 0  # where it is mapped here (for regions lent to the caller)


class RegionPool:
    """The regions this side writes arrays into.  A region is busy from the message that
    carries it until the peer says it is done with it (``release``); free regions are reused
    (smallest that fits), and beyond :data:`POOL_KEEP` free ones (or :data:`POOL_KEEP_BYTES`)
    the largest are dropped, which the peer hears in ``drop`` so it unmaps them too.

    A region may also be *lent* to the caller (:meth:`lend`): an array the caller fills and
    sends as it is, without a copy, until the array is garbage-collected (then it is free)."""

    def __init__(self, first_id: int = 1) -> None:
        self._next = first_id
        self._free: dict[int, Region] = {}
        self._busy: dict[int, Region] = {}
        self._lent: dict[int, Region] = {}
        self._returned: collections.deque[int] = collections.deque()  # lent regions whose arrays are gone
        self._dropped: list[int] = []

    def take(self, nbytes: int) -> Region:
        """A free region of at least ``nbytes`` (made when none fits), now busy."""
        region = self._pick(nbytes)
        self._busy[region.rid] = region
        return region

    def _pick(self, nbytes: int) -> Region:
        """The smallest free region of at least ``nbytes``, out of the free list (or a new one)."""
        best = None
        for region in self._free.values():
            if region.size >= nbytes and (best is None or region.size < best.size):
                best = region
        if best is None:
            return self._new(nbytes)
        del self._free[best.rid]
        return best

    def _new(self, nbytes: int) -> Region:
        size = max(REGION_GRAIN, -(-nbytes // REGION_GRAIN) * REGION_GRAIN)
        fd = os.memfd_create("carton-tensor", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        rid, self._next = self._next, self._next + 1
        return Region(rid, size, mm, fd)

    def lend(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An array of ``shape`` and ``dtype`` in a region of its own, lent to the caller until the
        array (and every view of it) is gone; :func:`encode` sends it without a copy."""
        self.reclaim()
        count = math.prod(shape)
        region = self._pick(max(1, count * dtype.itemsize))
        buf = (ctypes.c_char * region.size).from_buffer(region.mm)
        region.addr = ctypes.addressof(buf)
        self._lent[region.rid] = region
        weakref.finalize(buf, self._returned.append, region.rid)  # numpy keeps ``buf`` alive (see PeerRegions.view)
        return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)

    def reclaim(self) -> None:
        """Lent regions whose arrays are gone become free (finalizers only append: any thread)."""
        if not self._returned:
            return
        while self._returned:
            region = self._lent.pop(self._returned.popleft(), None)
            if region is not None:
                region.addr = 0
                self._free[region.rid] = region
        self._trim()

    def lent_region(self, arr: np.ndarray) -> tuple[Region, int] | None:
        """(the lent region, offset) holding all of ``arr`` (C-contiguous), or None."""
        if not self._lent or not arr.flags.c_contiguous:
            return None
        start = arr.__array_interface__["data"][0]
        for region in self._lent.values():
            offset = start - region.addr
            if offset >= 0 and offset + arr.nbytes <= region.size:
                return region, offset
        return None

    def release(self, rids: list[Any]) -> None:
        """The peer is done with these regions: free again (unknown ids are ignored)."""
        for rid in rids:
            region = self._busy.pop(rid, None) if isinstance(rid, int) else None
            if region is not None:
                self._free[rid] = region
        self._trim()

    @property
    def busy(self) -> bool:
        """Whether any region is in use by the peer."""
        return bool(self._busy)

    def release_all(self) -> None:
        """Every busy region is free again (the peer's use of them ended with its reply)."""
        self.release(list(self._busy))

    def _trim(self) -> None:
        while len(self._free) > POOL_KEEP or sum(r.size for r in self._free.values()) > POOL_KEEP_BYTES:
            largest = max(self._free.values(), key=lambda r: r.size)
            del self._free[largest.rid]
            _close_region(largest)
            self._dropped.append(largest.rid)

    def mark_sent(self, rids: list[int]) -> None:
        """The descriptors of these regions went to the peer: closed here (the mapping stays)."""
        for rid in rids:
            region = self._busy.get(rid) or self._free.get(rid) or self._lent.get(rid)
            if region is not None and region.fd is not None:
                os.close(region.fd)
                region.fd = None

    def take_dropped(self) -> list[int]:
        """Regions dropped since the last call (to tell the peer)."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def close(self) -> None:
        """Unmap every region (views of them must be gone: they are this side's own writes)."""
        for region in list(self._free.values()) + list(self._busy.values()) + list(self._lent.values()):
            _close_region(region)  # a lent array keeps its mapping alive
        self._free.clear()
        self._busy.clear()
        self._lent.clear()


def _close_region(region: Region) -> None:
    if region.fd is not None:
        os.close(region.fd)
        region.fd = None
    try:
        region.mm.close()
    except BufferError:  # a view still exists: the mapping goes with it
        pass


class PeerRegions:
    """The peer's regions, mapped here (read and write, shared)."""

    def __init__(self) -> None:
        self._maps: dict[int, mmap.mmap] = {}

    def add(self, announced: Any, fds: list[int]) -> None:
        """Map the regions a message announced (``[[id, size], ...]``, in descriptor order)."""
        try:
            if not isinstance(announced, list) or len(announced) != len(fds):
                raise ProtocolError(f"{len(fds)} descriptors for {announced!r}")
            for item, fd in zip(announced, fds):
                rid, size = item
                if not isinstance(rid, int) or not isinstance(size, int) or size <= 0:
                    raise ProtocolError(f"bad region {item!r}")
                self._maps[rid] = mmap.mmap(fd, size)
        finally:
            _close_all(fds)

    def drop(self, rids: Any) -> None:
        """Unmap regions the peer dropped (their views are gone: they were released)."""
        for rid in rids if isinstance(rids, list) else []:
            mm = self._maps.pop(rid, None) if isinstance(rid, int) else None
            if mm is not None:
                try:
                    mm.close()
                except BufferError:
                    pass

    def view(self, rid: Any, nbytes: int, start: int = 0) -> Any:
        """``nbytes`` at ``start`` of region ``rid`` as a buffer object of its own (ProtocolError
        for an unknown id or a span outside the region).  A ctypes array, because numpy keeps the object
        it was given alive for as long as any array made from it exists (a memoryview given to
        ``np.frombuffer`` is replaced by numpy's own, so its lifetime says nothing)."""
        mm = self._maps.get(rid) if isinstance(rid, int) else None
        if mm is None:
            raise ProtocolError(f"unknown region {rid!r}")
        if not 0 < nbytes <= len(mm) - start:
            raise ProtocolError(f"region {rid} has {len(mm)} bytes, not {nbytes} at {start}")
        return (ctypes.c_char * nbytes).from_buffer(mm, start)

    def clear(self) -> None:
        """Forget every mapping (views handed out keep theirs alive)."""
        self._maps.clear()


# -- arrays ---------------------------------------------------------------------------------------------


def as_array(name: str, value: Any) -> np.ndarray:
    """``value`` as an array that can be sent: numeric and string arrays as they are, ``str``
    and object arrays of ``str`` as fixed-width string arrays, torch tensors through numpy."""
    if type(value) is np.ndarray:
        arr = value
    elif isinstance(value, (np.ndarray, np.generic, str)):
        arr = np.asarray(value)
    elif type(value).__module__ == "torch" and type(value).__name__ in ("Tensor", "Parameter"):
        arr = value.detach().cpu().resolve_conj().resolve_neg().numpy()
    else:
        raise EncodeError(name, f"expected a numpy array, got {type(value).__name__}")
    kind = arr.dtype.kind
    if kind in RAW_KINDS and not arr.dtype.hasobject:
        return arr
    if kind == "O":
        items = arr.ravel().tolist()
        if all(isinstance(item, str) for item in items):
            return np.array(items, dtype=str).reshape(arr.shape) if items else np.zeros(arr.shape, dtype="<U1")
        bad = next(type(item).__name__ for item in items if not isinstance(item, str))
        raise EncodeError(name, f"object arrays must hold only str, found {bad}")
    raise EncodeError(name, f"dtype {arr.dtype} cannot be sent to another process")


@dataclass
class Encoded:
    """Arrays ready to send: ``tensors`` for the header, the payload parts, new regions and their fds."""

    tensors: dict[str, Any]
    payload: list[Any]
    regions: list[list[int]]
    fds: list[int]

    @property
    def inline_only(self) -> bool:
        """No array went through a region: a small message, answered (or followed) quickly."""
        return not any(t[4] for t in self.tensors.values())


def encode(values: Any, pool: RegionPool, inline_max: int = INLINE_MAX) -> Encoded:
    """Describe ``{name: array}``; big arrays are copied into regions of ``pool`` (now busy),
    except those already in a region lent by ``pool`` (sent as they are).  A descriptor is
    ``[dtype, shape, bytes, offset, region id]``: region id 0 is inline, the offset in the
    payload; else the offset in the region."""
    try:
        items = values.items()
    except AttributeError:
        raise EncodeError("", f"expected a dict of name -> numpy array, not {type(values).__name__}") from None
    out = Encoded({}, [], [], [])
    pool.reclaim()
    try:
        _encode_into(out, items, pool, inline_max)
    except BaseException:
        pool.release([t[4] for t in out.tensors.values() if t[4]])  # what this call took is free again
        raise
    return out


def _encode_into(out: Encoded, items: Any, pool: RegionPool, inline_max: int) -> None:
    offset = 0
    for name, value in items:
        if type(name) is not str:
            raise EncodeError(str(name), f"names must be str, not {type(name).__name__}")
        arr = value if type(value) is np.ndarray and value.dtype.kind in _FAST_KINDS else as_array(name, value)
        nbytes = arr.nbytes
        if nbytes <= inline_max and offset + nbytes <= INLINE_BUDGET:
            out.payload.append(arr.tobytes())
            out.tensors[name] = [arr.dtype.str, list(arr.shape), nbytes, offset, 0]
            offset += nbytes
        else:
            lent = pool.lent_region(arr)
            if lent is not None:  # the caller filled a lent region: sent as it is
                region, start = lent
                out.tensors[name] = [arr.dtype.str, list(arr.shape), nbytes, start, region.rid]
            else:
                region = pool.take(nbytes)
                out.tensors[name] = [arr.dtype.str, list(arr.shape), nbytes, 0, region.rid]
                target = np.frombuffer(region.mm, dtype=arr.dtype, count=arr.size).reshape(arr.shape)
                np.copyto(target, arr, casting="no")
                del target
            if region.fd is not None and [region.rid, region.size] not in out.regions:  # first use: the descriptor goes with this message
                if len(out.fds) == MAX_FDS:
                    raise EncodeError(name, f"more than {MAX_FDS} arrays over {inline_max} bytes in one call")
                out.regions.append([region.rid, region.size])
                out.fds.append(region.fd)


_FAST_KINDS = frozenset("biufc")  # numeric dtypes: sent as they are, no conversion to check
_dtypes: dict[str, np.dtype] = {}


def _dtype(text: Any) -> np.dtype:
    """The dtype a descriptor names (cached), or ProtocolError for one that is not sent raw."""
    dtype = _dtypes.get(text)
    if dtype is None:
        if not isinstance(text, str):
            raise ProtocolError(f"bad dtype {text!r}")
        try:
            dtype = np.dtype(text)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"bad dtype {text!r}: {exc}") from None
        if dtype.hasobject or dtype.kind not in RAW_KINDS or dtype.itemsize == 0 or dtype.fields is not None:
            raise ProtocolError(f"dtype {dtype} is not sent raw")
        if len(_dtypes) < 1024:
            _dtypes[text] = dtype
    return dtype


def decode(tensors: Any, payload: bytearray, peer: PeerRegions, on_view: Callable[[Any, int], None] | None = None) -> dict[str, np.ndarray]:
    """Arrays from a message: inline ones view the payload, region ones view the peer's
    region (zero-copy); ``on_view(buffer, region id)`` lets the host learn when the buffer
    behind a region's array (and so every array made from it) is gone.  Sizes are checked:
    the bytes must be exactly the shape's elements (numpy's ``frombuffer`` and ``reshape``
    refuse anything else)."""
    if type(tensors) is not dict:
        raise ProtocolError("tensors must be an object")
    out: dict[str, np.ndarray] = {}
    whole = memoryview(payload)
    frombuffer = np.frombuffer
    for name, desc in tensors.items():
        try:
            d, shape, nbytes, start, rid = desc
            dtype = _dtype(d)
            if type(nbytes) is not int or type(start) is not int or nbytes < 0 or start < 0 or min(shape, default=0) < 0:
                raise ProtocolError(f"bad sizes {desc!r}")
            if rid:
                buf = peer.view(rid, nbytes, start)
                if on_view is not None:
                    on_view(buf, rid)
            else:
                if start + nbytes > len(whole):
                    raise ProtocolError("inline data out of range")
                buf = whole[start : start + nbytes]
            out[name] = frombuffer(buf, dtype=dtype).reshape(shape)
        except ProtocolError as exc:
            raise ProtocolError(f"bad tensor {name!r}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"bad tensor {name!r}: {exc}") from None
    return out


def watch_release(buffer: Any, rid: int, released: Any) -> None:
    """Append ``rid`` to ``released`` (a list or deque) once ``buffer`` (kept alive by every
    array made from it, views included) is gone."""
    weakref.finalize(buffer, released.append, rid)


__all__ = [
    "INLINE_MAX",
    "PROTOCOL_VERSION",
    "Channel",
    "EncodeError",
    "Encoded",
    "Message",
    "PeerRegions",
    "ProtocolError",
    "Region",
    "RegionPool",
    "as_array",
    "decode",
    "encode",
    "watch_release",
]
