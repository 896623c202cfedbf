"""An http(s) load keeps ONE copy of the model on disk: the archive stored unpacked in the cache.

The downloaded zip is unpacked (every member checked by the zip reader and against MANIFEST as
it is written) into ``files/<key>/carton/`` and deleted; later loads read that directory, whose
files runners use in place, hashed while they read them.  The model's identity (manifest sha256)
and info are those of the zip; revalidation, offline use, a damaged cached copy (downloaded
again, with a warning), ``carton cache`` and several processes at once are covered here.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime.sync as carton_sync
from carton_format.cli import main as carton_main
from carton_format.describe import describe_info
from carton_runtime.cache import Cache
from carton_runtime.links_fetch import REVALIDATE_TAIL
from carton_runtime.loader import get_model_info

from ..helpers.samples import write_kitchen_sink
from .conftest import ORIGINAL_MODEL, Server, ServerFactory, pack_original, sha256_file
from .test_api import INPUTS, check_outputs

ROOT = Path(__file__).resolve().parents[2]
MODEL_SHA = sha256_file(ORIGINAL_MODEL)
#: What one copy may cost beyond the archive's bytes: URL record, info.json, lock files, MANIFEST slack.
OVERHEAD = 64 * 1024


def disk_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (links counted as themselves)."""
    return sum(os.lstat(Path(d) / f).st_size for d, _dirs, files in os.walk(root) for f in files)


def unpacked_dirs(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "files").glob("*/carton"))


def flip_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


def full_downloads(server: Server, name: str) -> int:
    return len([r for r in server.requests_for(name) if r.range is None])


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~20 MB TorchScript model (5M float32 weights), packed."""
    import torch

    class Big(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.arange(5_000_000, dtype=torch.float32))

        def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {"y": inputs["x"] + self.w[:3]}

    out = tmp_path_factory.mktemp("big")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(Big()), str(out / "big.pt"))
    return Path(carton_sync.pack(out / "big.pt", "torchscript", "=2.13", model_name="big", output_path=out / "big.carton"))


def test_a_20mb_model_is_on_disk_once(server: Server, big: Path, cache_dir: Path) -> None:
    url = server.add_file("one/big.carton", big)
    size = big.stat().st_size
    assert size > 20_000_000
    model = carton_sync.load(url)
    np.testing.assert_array_equal(model.infer({"x": np.zeros(3, np.float32)})["y"], np.array([0, 1, 2], np.float32))
    assert disk_bytes(cache_dir) <= size + OVERHEAD  # one copy, not the archive plus the extracted model.pt
    [entry] = unpacked_dirs(cache_dir)
    assert not list((cache_dir / "files").glob("*/file")) and not list((cache_dir / "files").glob(".tmp*"))
    with cf.read(big, verify_hashes=False) as zipped:
        assert model.manifest_sha256 == zipped.manifest_sha256
        assert (entry / "MANIFEST").read_bytes() == zipped.manifest_info.raw
    assert full_downloads(server, "one/big.carton") == 1


def test_same_identity_and_info_as_the_zip(server: Server, packed: Path, cache_dir: Path) -> None:
    url = server.add_file("one/doubler.carton", packed)
    remote = carton_sync.load(url)
    local = carton_sync.load(packed)
    check_outputs(remote.infer(INPUTS))
    assert remote.manifest_sha256 == local.manifest_sha256
    assert describe_info(remote.info, with_values=True) == describe_info(local.info, with_values=True)
    cached = carton_sync.get_model_info(url)  # read from the unpacked copy now
    assert describe_info(cached, with_values=True) == describe_info(local.info, with_values=True)
    assert cached.misc_files["notes.md"].read() == "notes 📦".encode()
    [entry] = unpacked_dirs(cache_dir)
    assert (entry / "model" / "model.pt").read_bytes() == ORIGINAL_MODEL.read_bytes()
    with cf.read(entry) as back:  # a valid unpacked carton, every hash verified
        assert back.manifest_sha256 == local.manifest_sha256


def test_the_second_load_only_revalidates(server: Server, packed: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_URL_MAX_AGE", "0")
    url = server.add_file("one/again.carton", packed)
    first = carton_sync.load(url)
    server.reset()
    again = carton_sync.load(url)
    check_outputs(again.infer(INPUTS))
    assert again.manifest_sha256 == first.manifest_sha256
    assert [(r.range, r.status) for r in server.requests_for("one/again.carton")] == [(f"bytes=-{REVALIDATE_TAIL}", 206)]
    [record] = Cache(cache_dir).url_records()
    assert record["kind"] == "carton" and record["size"] == packed.stat().st_size
    assert record["tail_len"] == min(REVALIDATE_TAIL, packed.stat().st_size) and len(unpacked_dirs(cache_dir)) == 1


def test_a_changed_tail_is_noticed_without_the_archive(server: Server, packed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_URL_MAX_AGE", "0")
    other = pack_original(tmp_path / "other.carton", model_name="doublex")  # same size, other bytes
    assert other.stat().st_size == packed.stat().st_size
    url = server.add_file("one/changed.carton", packed)
    assert carton_sync.load(url).info.model_name == "doubler"
    server.add_file("one/changed.carton", other)
    assert carton_sync.load(url).info.model_name == "doublex"


def test_offline_the_unpacked_copy_is_used_with_a_warning(servers: ServerFactory, packed: Path, cache_dir: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    server = servers.new()
    url = server.add_file("offline.carton", packed)
    first = carton_sync.load(url)
    servers.stop(server)
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        again = carton_sync.load(url)
    check_outputs(again.infer(INPUTS))
    assert again.manifest_sha256 == first.manifest_sha256
    assert any("cannot check whether the cached copy is current" in r.getMessage() for r in caplog.records)


def test_a_damaged_model_file_is_downloaded_again_with_a_warning(server: Server, packed: Path, cache_dir: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    url = server.add_file("one/tampered.carton", packed)
    carton_sync.load(url)
    [entry] = unpacked_dirs(cache_dir)
    flip_byte(entry / "model" / "model.pt")
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        model = carton_sync.load(url)
    check_outputs(model.infer(INPUTS))
    damaged = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(damaged) == 1 and "E-MANIFEST-MISMATCH" in damaged[0] and "model/model.pt" in damaged[0]
    assert full_downloads(server, "one/tampered.carton") == 2
    [entry] = unpacked_dirs(cache_dir)
    assert (entry / "model" / "model.pt").read_bytes() == ORIGINAL_MODEL.read_bytes()


def test_damaged_metadata_is_downloaded_again(server: Server, packed: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = server.add_file("one/toml.carton", packed)
    carton_sync.load(url)
    [entry] = unpacked_dirs(cache_dir)
    flip_byte(entry / "carton.toml", at=0)
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        assert carton_sync.get_model_info(url).model_name == "doubler"
    assert any("is damaged" in r.getMessage() for r in caplog.records)
    (unpacked_dirs(cache_dir)[0] / "misc" / "stray.txt").write_text("added")  # an unlisted file: damage too
    assert carton_sync.load(url).info.model_name == "doubler"
    assert full_downloads(server, "one/toml.carton") == 3


def test_a_damaged_copy_offline_is_an_error_not_used(servers: ServerFactory, packed: Path, cache_dir: Path) -> None:
    server = servers.new()
    url = server.add_file("offline-damaged.carton", packed)
    carton_sync.load(url)
    flip_byte(unpacked_dirs(cache_dir)[0] / "model" / "model.pt")
    servers.stop(server)
    with pytest.raises(cf.CartonFormatError) as err:
        carton_sync.load(url)
    assert err.value.code == "E-MANIFEST-MISMATCH" and "downloading it again failed" in err.value.message
    assert unpacked_dirs(cache_dir) == [] and Cache(cache_dir).url_records() == []  # the damaged copy is gone


def test_cache_ls_prune_and_clear(server: Server, packed: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.add_file("one/cli.carton", packed)
    carton_sync.load(url)
    assert carton_main(["cache", "ls", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)["entries"]
    assert entry["url"] == url and entry["urls"] == [url]
    assert 0 < entry["file_size"] <= entry["size"] <= packed.stat().st_size + OVERHEAD
    result = Cache(cache_dir).prune(max_size=0)
    assert [e.sha256 for e in result.removed] == [entry["sha256"]] and result.freed_bytes == entry["size"]
    assert unpacked_dirs(cache_dir) == [] and Cache(cache_dir).url_records() == []
    check_outputs(carton_sync.load(url).infer(INPUTS))  # downloaded again
    assert full_downloads(server, "one/cli.carton") == 2
    assert carton_main(["cache", "clear", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries_removed"] == 1 and report["url_records_removed"] == 1
    assert unpacked_dirs(cache_dir) == []


def test_a_server_without_range(norange_server: Server, packed: Path, cache_dir: Path) -> None:
    url = norange_server.add_file("one/norange.carton", packed)
    check_outputs(carton_sync.load(url).infer(INPUTS))
    assert len(unpacked_dirs(cache_dir)) == 1 and not list((cache_dir / "files").glob("*/file"))
    assert not list((cache_dir / "files").glob(".tmp*"))  # the temporary zip is gone
    assert disk_bytes(cache_dir) <= packed.stat().st_size + OVERHEAD
    check_outputs(carton_sync.load(url).infer(INPUTS))  # no validators: the 200 answer to the revalidation is taken as the file
    assert [r.status for r in norange_server.requests_for("one/norange.carton")] == [200, 200]  # the first answer was the download
    assert len(unpacked_dirs(cache_dir)) == 1 and disk_bytes(cache_dir) <= packed.stat().st_size + OVERHEAD


@pytest.mark.parametrize("compression", ["stored", "deflate"])
def test_symlinks_and_compressed_members(norange_server: Server, tmp_path: Path, cache_dir: Path, compression: str) -> None:
    path = write_kitchen_sink(tmp_path, compression=compression)
    url = norange_server.add_file(f"one/sink-{compression}.carton", path)
    info, manifest_sha = get_model_info(url)  # a server without Range: downloaded, stored unpacked
    with cf.read(path, verify_hashes=False) as zipped:
        assert manifest_sha == zipped.manifest_sha256
        [entry] = unpacked_dirs(cache_dir)
        alias = entry / "model" / "alias.bin"
        assert alias.is_symlink() and os.readlink(alias) == "weights/w.bin"  # stored once
        assert alias.read_bytes() == zipped.read_bytes("model/alias.bin")
    with cf.read(entry) as back:
        assert back.manifest_sha256 == manifest_sha
    again, again_sha = get_model_info(url)  # now from the directory
    assert again_sha == manifest_sha and describe_info(again, with_values=True) == describe_info(info, with_values=True)


def test_linked_members_stay_absent(server: Server, tmp_path: Path, cache_dir: Path) -> None:
    model_url = server.add_file(f"one/{tmp_path.name}/model.pt", ORIGINAL_MODEL)
    path = pack_original(tmp_path / "linked.carton", linked_files={MODEL_SHA: [model_url]})
    url = server.add_file(f"one/{tmp_path.name}/linked.carton", path)
    model = carton_sync.load(url)
    check_outputs(model.infer(INPUTS))
    with cf.read(path, verify_hashes=False) as zipped:
        assert model.manifest_sha256 == zipped.manifest_sha256
    [entry] = unpacked_dirs(cache_dir)
    assert (entry / "LINKS").is_file() and not (entry / "model" / "model.pt").exists()
    assert (cache_dir / "files" / MODEL_SHA / "file").is_file()  # the LINKS file, fetched once as before


def test_two_processes_load_the_same_url(norange_server: Server, packed: Path, cache_dir: Path) -> None:
    url = norange_server.add_file("one/shared.carton", packed)
    norange_server.delay = 0.3  # both are in flight together
    code = (
        "import sys, numpy as np, carton_runtime.sync as cs\n"
        "m = cs.load(sys.argv[1])\n"
        "print(m.infer({'a': np.ones(2, np.float32), 'b': np.array('x'), 'c': np.array(['y'])})['doubled'].tolist(), m.manifest_sha256)\n"
    )
    env = {**os.environ, "CARTON_CACHE_DIR": str(cache_dir)}
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
                 for _ in range(2)]
        outs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            outs.append(out.split())
    finally:
        norange_server.delay = 0.0
    with cf.read(packed, verify_hashes=False) as zipped:
        assert all(o == ["[2.0,", "2.0]", zipped.manifest_sha256] for o in outs)
    assert len(unpacked_dirs(cache_dir)) == 1 and not list((cache_dir / "files").glob(".tmp*"))
    assert disk_bytes(cache_dir) <= packed.stat().st_size + OVERHEAD
