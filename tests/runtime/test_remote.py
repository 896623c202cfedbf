"""Remote archives (range requests, cache, several processes), LINKS downloads and shrink."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime.cache import Cache
from carton_runtime.http_range import HttpRangeFile, RangeNotSupported
from carton_runtime.links_fetch import LinkFetcher

from .conftest import ORIGINAL_MODEL, ROOT, Server, pack_original
from .test_api import INPUTS, check_outputs

MODEL_SHA = hashlib.sha256(ORIGINAL_MODEL.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~8 MiB of model files (a big weights file plus model.pt) with metadata at both ends."""
    out = tmp_path_factory.mktemp("big")
    model_dir = out / "model"
    model_dir.mkdir()
    (model_dir / "model.pt").write_bytes(ORIGINAL_MODEL.read_bytes())
    (model_dir / "weights.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    info = cf.CartonInfo(
        runner=cf.RunnerInfo("torchscript", "=2.13", 1),
        model_name="big",
        self_tests=[cf.SelfTest(inputs={"a": np.ones(3, np.float32), "b": np.array("s"), "c": np.array(["x"])})],
    )
    return cf.write(out / "big.carton", info, model_dir=model_dir).path


def test_remote_get_model_info_uses_few_small_range_requests(server: Server, big_archive: Path) -> None:
    url = server.add_file("big.carton", big_archive)
    info = carton_sync.get_model_info(url)
    assert info.model_name == "big"
    requests = server.requests_for("big.carton")
    assert all(r.status == 206 and r.range for r in requests), requests
    assert len(requests) <= 4
    assert server.bytes_for("big.carton") < 256 * 1024
    # lazy tensors still load, over further range requests
    assert info.self_tests[0].inputs["a"].load().tolist() == [1.0, 1.0, 1.0]


def test_range_file_counts_and_checks(server: Server, big_archive: Path) -> None:
    url = server.add_file("big2.carton", big_archive)
    data = big_archive.read_bytes()
    f = HttpRangeFile(url)
    assert f.size == len(data) and f.requests == 1
    f.seek(1000)
    assert f.read(5000) == data[1000:6000]
    f.seek(-10, os.SEEK_END)
    assert f.read() == data[-10:]
    assert f.requests == 2  # the tail was prefetched
    lying = server.add_file("lying/big.carton", big_archive)
    g = HttpRangeFile(lying)  # it lies only about explicit ranges
    g.seek(100)
    with pytest.raises(carton.CartonRuntimeError, match="asked for bytes 100-") as err:
        g.read(10)
    assert err.value.code == "E-RUNTIME-HTTP"


def test_server_ignoring_range_is_detected(norange_server: Server, packed: Path) -> None:
    url = norange_server.add_file("doubler.carton", packed)
    with pytest.raises(RangeNotSupported) as err:
        HttpRangeFile(url)
    err.value.response.close()
    # get_model_info falls back to one full download (cached), never a misread
    info = carton_sync.get_model_info(url)
    assert info.model_name == "doubler"
    assert len(norange_server.requests_for("doubler.carton")) == 2  # the probe, then the download
    model = carton_sync.load(url)  # now cached: one revalidation, no second download
    check_outputs(model.infer(INPUTS))
    assert len(norange_server.requests_for("doubler.carton")) == 3


def test_remote_load_caches_and_then_only_revalidates(server: Server, packed: Path, cache_dir: Path) -> None:
    url = server.add_file("cached.carton", packed)
    model = carton_sync.load(url)
    check_outputs(model.infer(INPUTS))
    full = [r for r in server.requests_for("cached.carton") if r.range is None]
    assert len(full) == 1
    count = len(server.requests_for("cached.carton"))
    again = carton_sync.load(url)
    check_outputs(again.infer(INPUTS))
    assert carton_sync.get_model_info(url).model_name == "doubler"
    later = server.requests_for("cached.carton")[count:]
    assert len(later) == 2 and all(r.range == "bytes=-65536" for r in later)  # one small conditional request each
    assert again.manifest_sha256 == model.manifest_sha256
    assert (cache_dir / "files").is_dir() and (cache_dir / "urls").is_dir()


def test_remote_no_runner_fails_before_downloading(server: Server, tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match="override_required_framework_version"):
        path = pack_original(tmp_path / "old.carton", required_framework_version="=1.0")
    url = server.add_file("old.carton", path)
    with pytest.raises(carton.CartonRuntimeError) as err:
        carton_sync.load(url)
    assert err.value.code == "E-RUNTIME-NO-RUNNER"
    assert all(r.range for r in server.requests_for("old.carton"))  # no full download


def test_http_errors(server: Server) -> None:
    with pytest.raises(carton.CartonRuntimeError, match="404") as err:
        carton_sync.load(server.url("missing.carton"))
    assert err.value.code == "E-RUNTIME-HTTP"
    with pytest.raises(carton.CartonRuntimeError) as err:
        carton_sync.get_model_info("http://127.0.0.1:9/nothing-listens-here.carton")
    assert err.value.code == "E-RUNTIME-HTTP"


def test_several_processes_download_once(server: Server, packed: Path, cache_dir: Path) -> None:
    url = server.add_file("shared.carton", packed)
    server.delay = 0.3  # keep the download in flight while the others arrive
    code = (
        "import sys, numpy as np, carton_runtime.sync as cs\n"
        "m = cs.load(sys.argv[1])\n"
        "out = m.infer({'a': np.ones(2, np.float32), 'b': np.array('x'), 'c': np.array(['y'])})\n"
        "print(out['doubled'].tolist())\n"
    )
    env = {**os.environ, "CARTON_CACHE_DIR": str(cache_dir)}
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "[2.0, 2.0]"
    full = [r for r in server.requests_for("shared.carton") if r.range is None]
    assert len(full) == 1, server.requests_for("shared.carton")
    assert len(list((cache_dir / "files").glob("*/carton"))) == 1  # one copy: the archive stored unpacked
    assert not list((cache_dir / "files").glob("*/file"))  # no archive, no extracted model.pt besides it


# -- LINKS --------------------------------------------------------------------------------------------


@pytest.fixture
def linked(server: Server, tmp_path: Path) -> tuple[Path, str]:
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    return tmp_path, server.url("files/model.pt")


ENCODINGS = ["identity", "gzip", "deflate", "rawdeflate", "zstd", "gzipzstd"]
try:
    import brotli  # type: ignore[import-not-found]  # noqa: F401

    ENCODINGS.append("br")
except ImportError:
    pass


@pytest.mark.spec("FMT-LINKS-9")
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_links_with_content_encoding(server: Server, linked: tuple[Path, str], encoding: str) -> None:
    tmp_path, _url = linked
    url = server.url(f"enc/{encoding}/files/model.pt")
    path = pack_original(tmp_path / "linked.carton", linked_files={MODEL_SHA: [url]})
    with cf.read(path, verify_hashes=False) as archive:
        assert archive.linked_urls("model/model.pt") == [url]
        assert "model/model.pt" not in [m.path for m in archive.members() if m.in_zip]
    model = carton_sync.load(path)
    check_outputs(model.infer(INPUTS))
    assert len(server.requests_for(f"enc/{encoding}/files/model.pt")) == 1
    carton_sync.load(path)  # cached by sha256: no second download
    assert len(server.requests_for(f"enc/{encoding}/files/model.pt")) == 1


@pytest.mark.spec("FMT-LINKS-8")
def test_links_try_urls_in_order(server: Server, linked: tuple[Path, str]) -> None:
    tmp_path, good = linked
    urls = [server.url("status/500"), server.url("nope/model.pt"), good]
    path = pack_original(tmp_path / "fallback.carton", linked_files={MODEL_SHA: urls})
    check_outputs(carton_sync.load(path).infer(INPUTS))
    assert [len(server.requests_for(u.split("/", 3)[3])) for u in urls] == [1, 1, 1]


@pytest.mark.spec("FMT-LINKS-8", "FMT-LINKS-10")
def test_links_failures_report_the_first_url(server: Server, linked: tuple[Path, str], cache_dir: Path) -> None:
    tmp_path, _good = linked
    server.add("files/wrong.pt", b"other content")
    path = pack_original(tmp_path / "wrong.carton", linked_files={MODEL_SHA: [server.url("files/wrong.pt"), server.url("status/404")]})
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.load(path)
    assert err.value.code == "E-MANIFEST-MISMATCH"
    assert not list((cache_dir / "files").glob("*/file"))  # nothing unverified was cached
    path = pack_original(tmp_path / "dead.carton", linked_files={MODEL_SHA: [server.url("status/404"), server.url("files/wrong.pt")]})
    with pytest.raises(carton.CartonFormatError, match="404") as err:
        carton_sync.load(path)
    assert err.value.code == "E-LINKS-FETCH"


@pytest.mark.spec("FMT-LINKS-11")
def test_links_unsupported_encoding_and_size_cap(server: Server, linked: tuple[Path, str], cache_dir: Path) -> None:
    _tmp, good = linked
    fetcher = LinkFetcher(Cache(cache_dir), cf.Limits(max_member_bytes=100))
    with pytest.raises(cf.CartonFormatError) as err:
        fetcher.fetch("model/model.pt", MODEL_SHA, [good])
    assert err.value.code == "E-LIMIT-MEMBER-SIZE"
    fetcher = LinkFetcher(Cache(cache_dir))
    with pytest.raises(cf.CartonFormatError, match="compress") as err:
        fetcher.fetch("model/model.pt", MODEL_SHA, [server.url("enc/compress/files/model.pt")])
    assert err.value.code == "E-LINKS-FETCH"


def test_shrink_keeps_the_manifest_and_loads_through_links(server: Server, packed: Path, tmp_path: Path) -> None:
    url = server.add_file("files/shrunk-model.pt", ORIGINAL_MODEL)

    import asyncio

    new_path = asyncio.run(carton.shrink(str(packed), {MODEL_SHA: [url]}))
    with cf.read(packed, verify_hashes=False) as before, cf.read(new_path, verify_hashes=False) as after:
        assert after.manifest_sha256 == before.manifest_sha256
        assert after.linked_urls("model/model.pt") == [url]
        assert not [m for m in after.members() if m.path == "model/model.pt" and m.in_zip]
    assert Path(new_path).stat().st_size < packed.stat().st_size
    model = carton_sync.load(new_path)
    check_outputs(model.infer(INPUTS))
    assert all(model.run_self_tests())
    # shrinking again appends URLs to the existing entry
    again = carton_sync.shrink(new_path, {MODEL_SHA: [url + "?mirror"]}, output_path=tmp_path / "again.carton")
    with cf.read(again, verify_hashes=False) as archive:
        assert archive.linked_urls("model/model.pt") == [url, url + "?mirror"]


def test_links_follow_http_redirects_only(server: Server, linked: tuple[Path, str]) -> None:
    tmp_path, _good = linked
    path = pack_original(tmp_path / "redirect.carton", linked_files={MODEL_SHA: [server.url("redirect/files/model.pt")]})
    check_outputs(carton_sync.load(path).infer(INPUTS))
    fetcher = LinkFetcher(Cache(tmp_path / "other-cache"))  # the model is cached by now
    with pytest.raises(cf.CartonFormatError, match="refusing a redirect") as err:
        fetcher.fetch("model/model.pt", MODEL_SHA, [server.url("redirect-ftp/model.pt")])
    assert err.value.code == "E-LINKS-FETCH"
