"""HTTP time limits: a total deadline per request, a minimum-throughput (stall) rule and the
no-data timeout, against a loopback server that trickles its answer (tiny limits: ~1 s each)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime import http_range
from carton_runtime.http_range import HttpRangeFile, http_get

from .conftest import ORIGINAL_MODEL, Server, pack_original, sha256_file

MODEL_SHA = sha256_file(ORIGINAL_MODEL)


@pytest.fixture
def tiny_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_HTTP_TIMEOUT", "5")
    monkeypatch.setenv("CARTON_HTTP_DEADLINE", "0")
    monkeypatch.setenv("CARTON_HTTP_STALL_SECONDS", "0")


def _read_all(url: str) -> bytes:
    with http_get(url) as response:
        return response.read()


def test_the_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CARTON_HTTP_TIMEOUT", "CARTON_HTTP_DEADLINE", "CARTON_HTTP_STALL_BYTES", "CARTON_HTTP_STALL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert (http_range.timeout(), http_range.deadline(), http_range.stall_rule()) == (60.0, 3600.0, (65536, 30.0))
    monkeypatch.setenv("CARTON_HTTP_DEADLINE", "12.5")
    monkeypatch.setenv("CARTON_HTTP_STALL_BYTES", "100")
    monkeypatch.setenv("CARTON_HTTP_STALL_SECONDS", "2")
    assert (http_range.deadline(), http_range.stall_rule()) == (12.5, (100, 2.0))
    monkeypatch.setenv("CARTON_HTTP_DEADLINE", "soon")  # malformed: the default, with a warning
    monkeypatch.setenv("CARTON_HTTP_TIMEOUT", "-3")
    assert (http_range.deadline(), http_range.timeout()) == (3600.0, 60.0)


def test_a_trickling_body_stalls(server: Server, tiny_limits: None, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add("trickle.bin", os.urandom(2000))
    monkeypatch.setenv("CARTON_HTTP_STALL_BYTES", "1000")
    monkeypatch.setenv("CARTON_HTTP_STALL_SECONDS", "0.6")
    start = time.monotonic()
    with pytest.raises(carton.CartonRuntimeError, match=r"stalled: \d+ bytes in the last 0.6 s") as err:
        _read_all(server.url("slow/1/100/trickle.bin"))  # 1 byte every 0.1 s: about 6 in a window
    assert err.value.code == "E-RUNTIME-HTTP"
    assert time.monotonic() - start < 3


def test_a_body_fast_enough_not_to_stall_still_meets_the_deadline(server: Server, tiny_limits: None, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add("long.bin", os.urandom(200_000))
    monkeypatch.setenv("CARTON_HTTP_DEADLINE", "0.8")
    monkeypatch.setenv("CARTON_HTTP_STALL_BYTES", "100")
    monkeypatch.setenv("CARTON_HTTP_STALL_SECONDS", "0.3")
    start = time.monotonic()
    with pytest.raises(carton.CartonRuntimeError, match=r"exceeded the 0.8 s deadline \(\d+ bytes received") as err:
        _read_all(server.url("slow/200/20/long.bin"))  # 10 KB/s: no stall, but 20 s in all
    assert err.value.code == "E-RUNTIME-HTTP"
    assert 0.7 < time.monotonic() - start < 3


def test_trickling_headers_meet_the_deadline_too(server: Server, tiny_limits: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_HTTP_DEADLINE", "0.5")
    start = time.monotonic()
    with pytest.raises(carton.CartonRuntimeError, match=r"exceeded the 0.5 s deadline"):
        http_get(server.url("slow-headers/50/x"))
    assert time.monotonic() - start < 3


def test_nothing_received_for_the_timeout(server: Server, tiny_limits: None, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add("late.bin", b"abc")
    monkeypatch.setenv("CARTON_HTTP_TIMEOUT", "0.3")
    start = time.monotonic()
    with pytest.raises(carton.CartonRuntimeError, match=r"timed out: nothing received for 0.3 s"):
        _read_all(server.url("slow/3/2000/late.bin"))  # the body after 2 s
    assert time.monotonic() - start < 1.5


def test_a_healthy_transfer_passes_the_rules(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(3_000_000)
    server.add("healthy.bin", data)
    monkeypatch.setenv("CARTON_HTTP_DEADLINE", "20")
    monkeypatch.setenv("CARTON_HTTP_STALL_BYTES", "1000")
    monkeypatch.setenv("CARTON_HTTP_STALL_SECONDS", "0.2")
    assert _read_all(server.url("healthy.bin")) == data
    assert _read_all(server.url("slow/50000/10/healthy.bin")) == data  # 5 MB/s, for 0.6 s: several windows


def test_a_stalled_links_download_fails_the_load(server: Server, tmp_path: Path, tiny_limits: None, monkeypatch: pytest.MonkeyPatch,
                                                 cache_dir: Path) -> None:
    server.add_file("files/model.pt", ORIGINAL_MODEL)
    monkeypatch.setenv("CARTON_HTTP_STALL_BYTES", "1000")
    monkeypatch.setenv("CARTON_HTTP_STALL_SECONDS", "0.5")
    path = pack_original(tmp_path / "slow.carton", linked_files={MODEL_SHA: [server.url("slow/1/100/files/model.pt")]})
    start = time.monotonic()
    with pytest.raises(cf.CartonFormatError, match=r"stalled: \d+ bytes in the last 0.5 s") as err:
        carton_sync.load(path)
    assert err.value.code == "E-LINKS-FETCH"
    assert time.monotonic() - start < 4
    assert not list((cache_dir / "files").glob(".tmp*"))


def test_a_trickling_range_answer_fails_get_model_info(server: Server, packed: Path, tiny_limits: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server.add_file("archive.carton", packed)
    monkeypatch.setenv("CARTON_HTTP_DEADLINE", "0.5")
    start = time.monotonic()
    with pytest.raises(carton.CartonRuntimeError, match="deadline") as err:
        HttpRangeFile(server.url("slow-headers/50/archive.carton"))
    assert err.value.code == "E-RUNTIME-HTTP"
    with pytest.raises(carton.CartonRuntimeError, match="deadline"):
        carton_sync.get_model_info(server.url("slow-headers/50/archive.carton"))
    assert time.monotonic() - start < 4
