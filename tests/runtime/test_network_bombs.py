"""Content-Encoding bombs in LINKS downloads are stopped early, and the deflate decoder is bounded.

A bomb is a small encoded body that decodes to far more than it could plausibly hold: the
download stops as soon as the decoded bytes pass ``max_download_ratio`` times the bytes received
(beyond ``ratio_floor_bytes``; ``E-LIMIT-RATIO``) or ``max_download_bytes`` (``E-LIMIT-MEMBER-SIZE``),
with nothing left in the staging directory.
"""

from __future__ import annotations

import gzip
import io
import itertools
import re
import zlib
from pathlib import Path

import pytest

import carton_format as cf
import carton_runtime.sync as carton_sync
from carton_runtime.cache import Cache
from carton_runtime.links_fetch import LinkFetcher, decoded

from .conftest import ORIGINAL_MODEL, Server, pack_original, sha256_file

MiB = 1 << 20
GiB = 1 << 30
MODEL_SHA = sha256_file(ORIGINAL_MODEL)


def _zstd_zeros(n: int) -> bytes:
    import zstandard

    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as w:
        chunk = bytes(16 * MiB)
        for _ in range(n // len(chunk)):
            w.write(chunk)
    return out.getvalue()


@pytest.fixture(scope="module")
def zstd_bomb() -> bytes:
    """4 GiB of zeros in ~130 KB of zstd (the shape of the reported bomb)."""
    return _zstd_zeros(4 * GiB)


def _decoded_bytes(message: str) -> int:
    m = re.search(r"\((\d+) bytes decoded from (\d+) received\)", message)
    assert m, message
    return int(m.group(1))


def _no_leftovers(cache_dir: Path) -> None:
    files = cache_dir / "files"
    assert not list(files.glob(".tmp*")), list(files.iterdir())
    assert not list(files.glob("*/file"))


def test_a_zstd_bomb_is_stopped_by_the_default_ratio(server: Server, zstd_bomb: bytes, cache_dir: Path) -> None:
    assert len(zstd_bomb) < 200_000
    url = server.add("bomb/model.pt.zst", zstd_bomb)
    fetcher = LinkFetcher(Cache(cache_dir))
    with pytest.raises(cf.CartonFormatError, match="decompression bomb") as err:
        fetcher.fetch("model/model.pt", MODEL_SHA, [server.url("raw-enc/zstd/bomb/model.pt.zst")])
    assert err.value.code == "E-LIMIT-RATIO" and err.value.member == "model/model.pt"
    assert url  # served as stored, labelled "Content-Encoding: zstd"
    # stopped just past the floor (16 MiB by default), not after 4 GiB
    assert _decoded_bytes(err.value.message) <= cf.DEFAULT_LIMITS.ratio_floor_bytes + 4 * MiB
    _no_leftovers(cache_dir)


def test_a_bomb_behind_links_fails_the_load_and_leaves_nothing(server: Server, zstd_bomb: bytes, tmp_path: Path, cache_dir: Path) -> None:
    server.add("bomb2/model.pt.zst", zstd_bomb)
    path = pack_original(tmp_path / "bomb.carton", linked_files={MODEL_SHA: [server.url("raw-enc/zstd/bomb2/model.pt.zst")]})
    with pytest.raises(cf.CartonFormatError) as err:
        carton_sync.load(path)
    assert err.value.code == "E-LIMIT-RATIO"
    _no_leftovers(cache_dir)


def test_the_ratio_and_floor_are_limits(server: Server, cache_dir: Path) -> None:
    data = bytes(4 * MiB)  # gzip: ~1,000x
    server.add("zeros.bin", data)
    sha = sha256_file(Path(server.root / "zeros.bin"))
    tight = cf.Limits(ratio_floor_bytes=1 * MiB, max_download_ratio=100)
    with pytest.raises(cf.CartonFormatError) as err:
        LinkFetcher(Cache(cache_dir), tight).fetch("model/zeros.bin", sha, [server.url("enc/gzip/zeros.bin")])
    assert err.value.code == "E-LIMIT-RATIO"
    assert _decoded_bytes(err.value.message) <= 1 * MiB + 4 * MiB
    _no_leftovers(cache_dir)
    # the same file unencoded is no bomb (the ratio applies to encoded bodies only), nor is gzip by default
    assert LinkFetcher(Cache(cache_dir), tight).fetch("model/zeros.bin", sha, [server.url("zeros.bin")]).read_bytes() == data
    other = cache_dir.parent / "other-cache"
    assert LinkFetcher(Cache(other)).fetch("model/zeros.bin", sha, [server.url("enc/gzip/zeros.bin")]).read_bytes() == data


@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "zstd"])
def test_the_absolute_limit(server: Server, cache_dir: Path, encoding: str) -> None:
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    small = cf.Limits(max_download_bytes=1000)
    with pytest.raises(cf.CartonFormatError, match="exceeds 1000 bytes") as err:
        LinkFetcher(Cache(cache_dir), small).fetch("model/model.pt", MODEL_SHA, [server.url(f"enc/{encoding}/files/model.pt")])
    assert err.value.code == "E-LIMIT-MEMBER-SIZE"
    _no_leftovers(cache_dir)


def test_a_failing_first_url_leaves_nothing_for_the_next(server: Server, zstd_bomb: bytes, cache_dir: Path) -> None:
    server.add("bomb3/model.pt.zst", zstd_bomb)
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    fetcher = LinkFetcher(Cache(cache_dir))
    got = fetcher.fetch("model/model.pt", MODEL_SHA, [server.url("raw-enc/zstd/bomb3/model.pt.zst"), server.url("files/model.pt")])
    assert got.read_bytes() == ORIGINAL_MODEL.read_bytes()
    assert not list((cache_dir / "files").glob(".tmp*"))


# -- the decoders ---------------------------------------------------------------------------------------


class _Response(io.BytesIO):
    def __init__(self, body: bytes, coding: str) -> None:
        super().__init__(body)
        self.headers = {"Content-Encoding": coding}


@pytest.mark.parametrize("wrap", ["zlib", "raw"])
def test_deflate_reads_are_bounded_and_exact(wrap: str) -> None:
    data = bytes(32 * MiB) + bytes(range(256)) * 4096 + bytes(8 * MiB)
    body = zlib.compress(data, 6) if wrap == "zlib" else zlib.compress(data, 6)[2:-4]
    stream = decoded(_Response(body, "deflate"))
    out = bytearray()
    sizes = itertools.cycle([1, 7, 4096, 65536, 1 << 22])
    while chunk := stream.read(size := next(sizes)):
        assert len(chunk) <= size  # every read returns at most what was asked for
        out += chunk
    assert bytes(out) == data
    assert stream.read(10) == b""


def test_deflate_ignores_what_follows_the_stream_and_reads_everything_at_once() -> None:
    data = b"hello deflate " * 1000
    assert decoded(_Response(zlib.compress(data) + b"trailing junk", "deflate")).read() == data
    assert decoded(_Response(zlib.compress(data)[2:-4], "deflate")).read(-1) == data
    assert decoded(_Response(gzip.compress(data), "gzip")).read() == data
    assert decoded(_Response(b"", "deflate")).read(5) == b""
