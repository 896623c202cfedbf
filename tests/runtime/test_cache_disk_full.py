"""A full disk under the cache: downloads, unpacking and LINKS fetches end with ``E-IO`` naming
the cache (not a transfer failure of the URL), and leave nothing half-written behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime.sync as carton_sync
from carton_format.integrity import sha256_hex
from tests.helpers.smallfs import mounted_tmpfs

from .conftest import Server

MiB = 1024 * 1024


def _echo_archive(tmp_path: Path, weights: bytes, **write_args: object) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(weights)
    info = cf.CartonInfo(runner=cf.RunnerInfo("echo", "^1.4", 3))
    return cf.write(tmp_path / "echo.carton", info, model_dir=model, **write_args).path  # type: ignore[arg-type]


def _leftovers(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_http_download_into_a_full_cache(tmp_path: Path, server: Server, echo_runner: object, monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.add_file("echo-big.carton", _echo_archive(tmp_path, os.urandom(3 * MiB)))
    with mounted_tmpfs(tmp_path, "1m") as fs:
        cache = fs / "cache"
        monkeypatch.setenv("CARTON_CACHE_DIR", str(cache))
        with pytest.raises(cf.CartonError) as err:
            carton_sync.load(url)
        assert err.value.code == "E-IO", err.value
        assert "No space left" in err.value.message and "into the cache failed" in err.value.message
        assert [p for p in _leftovers(cache) if not p.startswith("locks/")] == []  # nothing half-written stays


def test_no_room_to_unpack_keeps_the_archive_whole(
    tmp_path: Path, server: Server, echo_runner: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Room for the download but not for unpacking it beside: the downloaded archive is kept
    whole (still one copy), with a warning, and the model loads from it."""
    archive = _echo_archive(tmp_path, os.urandom(3 * MiB))
    url = server.add_file("echo-unpack.carton", archive)
    with mounted_tmpfs(tmp_path, "5m") as fs:
        cache = fs / "cache"
        monkeypatch.setenv("CARTON_CACHE_DIR", str(cache))
        model = carton_sync.load(url)
        assert model.manifest_sha256 == cf.read(archive).manifest_sha256
        assert "keeping it whole" in caplog.text
        stored = [p for p in _leftovers(cache) if p.startswith("files/") and not p.endswith("/info.json")]
        assert len(stored) == 1 and stored[0].endswith("/file")  # the archive, whole: one copy


def test_links_fetch_into_a_full_cache_tries_no_other_url(
    tmp_path: Path, servers: object, echo_runner: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = os.urandom(3 * MiB)
    first, second = servers.new(), servers.new()  # type: ignore[attr-defined]
    (tmp_path / "w").write_bytes(weights)
    urls = [first.add_file("weights.bin", tmp_path / "w"), second.add_file("weights.bin", tmp_path / "w")]
    sha = sha256_hex(weights)
    archive = _echo_archive(tmp_path, weights, linked_files={sha: urls})
    with mounted_tmpfs(tmp_path, "1m") as fs:
        cache = fs / "cache"
        monkeypatch.setenv("CARTON_CACHE_DIR", str(cache))
        model = carton_sync.load(archive)  # the echo runner reads its weights when it runs
        with pytest.raises(cf.CartonError) as err:
            model.infer({"x": np.zeros(1, np.float32)})
        assert err.value.code == "E-IO" and "into the cache failed" in err.value.message
        assert second.requests_for("weights.bin") == []  # a full disk is no reason to try another URL
        assert [p for p in _leftovers(cache) if not p.startswith("locks/")] == []
