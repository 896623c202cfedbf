"""Bounded-memory encoders and decoders for the three allowed methods: stored, deflate, zstd.

Decoders pull compressed bytes from a *source* (``read(n) -> bytes``, ``b""`` at its end) and
hand out at most ``n`` decoded bytes per call, so a decompression bomb can never make us allocate
more than the caller asked for.  They also insist that the compressed data ends exactly where the
encoded stream ends: trailing bytes inside a member are hidden data, and a stream cut short is
corrupt even when it happens to have produced enough output.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import zstandard

from ..errors import CartonError, CartonFormatError
from .records import METHOD_DEFLATE, METHOD_STORED, METHOD_ZSTD

#: Compressed bytes fed to a decoder per source read.
INPUT_CHUNK = 1024 * 1024
#: Largest zstd window we accept (libzstd's default limit: 128 MiB of decoder memory at most).
ZSTD_MAX_WINDOW = 1 << 27

_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE_MASK = 0xFFFFFFF0
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50


class CompressedInput(Protocol):
    def read(self, n: int) -> bytes: ...


def corrupt(member: str | None, message: str) -> CartonFormatError:
    return CartonFormatError("E-ZIP-CORRUPT-DATA", message, member=member)


class Decoder(Protocol):
    def read(self, n: int) -> bytes:
        """Up to ``n`` (> 0) decoded bytes; ``b""`` once the encoded stream has ended."""
        ...

    def finish(self) -> None:
        """Raise unless the encoded stream ended cleanly and consumed all of its source."""
        ...


class StoredDecoder:
    def __init__(self, source: CompressedInput, member: str | None) -> None:
        self._source = source

    def read(self, n: int) -> bytes:
        return self._source.read(n)

    def finish(self) -> None:
        return None


class DeflateDecoder:
    """Raw deflate (wbits -15) with ``max_length``-bounded output."""

    def __init__(self, source: CompressedInput, member: str | None) -> None:
        self._source = source
        self._member = member
        self._d = zlib.decompressobj(-15)
        self._maybe_pending = False  # the last call filled its output: zlib may hold more

    def read(self, n: int) -> bytes:
        d = self._d
        while not d.eof:
            data = d.unconsumed_tail
            if not data and not self._maybe_pending:
                data = self._source.read(INPUT_CHUNK)
                if not data:
                    raise corrupt(self._member, "deflate stream ends before its final block")
            try:
                out = d.decompress(data, n)
            except zlib.error as exc:
                raise corrupt(self._member, f"deflate data is corrupt: {exc}") from None
            self._maybe_pending = len(out) == n
            if out:
                return out
        return b""

    def finish(self) -> None:
        if not self._d.eof:  # pragma: no cover - read() returns b"" only at eof
            raise corrupt(self._member, "deflate stream is incomplete")
        extra = len(self._d.unused_data) + len(self._d.unconsumed_tail)
        if extra or self._source.read(1):
            raise corrupt(self._member, "bytes follow the end of the deflate stream")


class ZstdFrameScanner:
    """Walks zstd frame and block headers (RFC 8878) without decoding, to tell whether the input
    ends exactly on a frame boundary.  The ``zstandard`` stream reader silently accepts input that
    stops inside a frame, so this is what detects a cut-off frame (e.g. a missing checksum)."""

    _MAGIC, _FHD, _FRAME_REST, _BLOCK, _SKIP_SIZE = range(5)

    def __init__(self, member: str | None = None) -> None:
        self._member = member
        self._state = self._MAGIC
        self._need = 4
        self._hdr = bytearray()
        self._skip = 0
        self._checksum = False
        self.frames = 0

    def feed(self, data: bytes) -> None:
        n = len(data)
        i = 0
        while i < n:
            if self._skip:
                k = min(self._skip, n - i)
                self._skip -= k
                i += k
                continue
            take = min(self._need - len(self._hdr), n - i)
            self._hdr += data[i : i + take]
            i += take
            if len(self._hdr) == self._need:
                header = bytes(self._hdr)
                self._hdr.clear()
                self._advance(header)

    def _advance(self, header: bytes) -> None:
        state = self._state
        if state == self._MAGIC:
            magic = int.from_bytes(header, "little")
            if magic == _ZSTD_MAGIC:
                self._state, self._need = self._FHD, 1
                self.frames += 1
            elif magic & _ZSTD_SKIPPABLE_MASK == _ZSTD_SKIPPABLE_MAGIC:
                self._state, self._need = self._SKIP_SIZE, 4
            else:
                raise corrupt(self._member, "zstd data does not start with a frame magic number")
        elif state == self._FHD:
            fhd = header[0]
            if fhd & 0x08:
                raise corrupt(self._member, "zstd frame header has its reserved bit set")
            single_segment = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            # window descriptor, dictionary id, frame content size: never 0 bytes in all
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 3]
            rest += ((1 if single_segment else 0), 2, 4, 8)[fhd >> 6]
            self._state, self._need = self._FRAME_REST, rest
        elif state == self._FRAME_REST:
            self._state, self._need = self._BLOCK, 3
        elif state == self._BLOCK:
            value = int.from_bytes(header, "little")
            last, block_type, size = value & 1, (value >> 1) & 3, value >> 3
            if block_type == 3:
                raise corrupt(self._member, "zstd block has the reserved block type")
            payload = 1 if block_type == 1 else size
            if last:
                payload += 4 if self._checksum else 0
                self._state, self._need = self._MAGIC, 4
            self._skip = payload
        else:  # skippable frame size
            self._skip = int.from_bytes(header, "little")
            self._state, self._need = self._MAGIC, 4

    def at_boundary(self) -> bool:
        """True when everything fed so far consists of complete frames."""
        return self._state == self._MAGIC and not self._hdr and not self._skip


class _ScanningSource:
    """Passes compressed bytes to the zstd decoder while scanning their frame structure."""

    def __init__(self, source: CompressedInput, scanner: ZstdFrameScanner) -> None:
        self._source = source
        self._scanner = scanner

    def read(self, n: int) -> bytes:
        data = self._source.read(n)
        self._scanner.feed(data)
        return data


class ZstdDecoder:
    """Streaming zstd (frames with or without content size, several frames, skippable frames)."""

    def __init__(self, source: CompressedInput, member: str | None) -> None:
        self._member = member
        self._scanner = ZstdFrameScanner(member)
        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._reader = dctx.stream_reader(
            _ScanningSource(source, self._scanner),
            read_size=INPUT_CHUNK,
            read_across_frames=True,
            closefd=False,
        )

    def read(self, n: int) -> bytes:
        try:
            return self._reader.read(n)
        except CartonError:  # format and transport (runtime) errors keep their code
            raise
        except Exception as exc:  # noqa: BLE001 - zstandard.ZstdError and anything else the C code may raise
            raise corrupt(self._member, f"zstd data is corrupt: {exc}") from None

    def finish(self) -> None:
        if not self._scanner.at_boundary():
            raise corrupt(self._member, "zstd data ends inside a frame")


def make_decoder(method: int, source: CompressedInput, member: str | None) -> Decoder:
    if method == METHOD_STORED:
        return StoredDecoder(source, member)
    if method == METHOD_DEFLATE:
        return DeflateDecoder(source, member)
    if method == METHOD_ZSTD:
        return ZstdDecoder(source, member)
    raise CartonFormatError("E-ZIP-METHOD", f"unsupported compression method {method}", member=member)


class Encoder(Protocol):
    def compress(self, data: bytes | bytearray | memoryview) -> bytes: ...

    def flush(self) -> bytes: ...


class DeflateEncoder:
    def __init__(self, level: int = 6) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, -15)

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush(zlib.Z_FINISH)


class ZstdEncoder:
    """One zstd frame.  ``size`` (exact) is written into the frame header when given; without it
    the frame has no content size, like the original Rust writer's streaming encoder."""

    def __init__(self, level: int = 3, size: int | None = None) -> None:
        cctx = zstandard.ZstdCompressor(level=level, write_content_size=size is not None, threads=0)
        self._c = cctx.compressobj(size=size if size is not None else -1)

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush()


def make_encoder(method: int, level: int | None, size: int | None) -> Encoder | None:
    """An encoder for ``method`` (None for stored)."""
    if method == METHOD_STORED:
        return None
    if method == METHOD_DEFLATE:
        return DeflateEncoder(6 if level is None else level)
    if method == METHOD_ZSTD:
        return ZstdEncoder(3 if level is None else level, size)
    raise CartonFormatError("E-ARG-INVALID", f"compression method must be 0, 8 or 93, not {method}")

__all__ = [
    "INPUT_CHUNK",
    "ZSTD_MAX_WINDOW",
    "Decoder",
    "DeflateDecoder",
    "DeflateEncoder",
    "Encoder",
    "CompressedInput",
    "StoredDecoder",
    "ZstdDecoder",
    "ZstdEncoder",
    "ZstdFrameScanner",
    "corrupt",
    "make_decoder",
    "make_encoder",
]
