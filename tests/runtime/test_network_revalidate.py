"""A cached URL is revalidated cheaply: a conditional request for the archive's last 64 KiB
(ETag / Last-Modified when the server gave them; else the size and those bytes are compared).
Offline (connection refused) or on a 5xx the cached copy is used, with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime.links_fetch import REVALIDATE_TAIL

from .conftest import Server, ServerFactory, pack_original
from .test_api import INPUTS, check_outputs


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two archives of the same size that differ (model name "doubler" / "doublex")."""
    out = tmp_path_factory.mktemp("versions")
    return pack_original(out / "a.carton"), pack_original(out / "b.carton", model_name="doublex")


@pytest.fixture
def always_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_URL_MAX_AGE", "0")


def _replace(server: Server, name: str, source: Path) -> None:
    target = server.root / name
    tmp = target.with_suffix(".new")
    tmp.write_bytes(source.read_bytes())
    tmp.replace(target)


def test_a_recent_record_is_used_without_a_request(server: Server, two_versions: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_URL_MAX_AGE", "30")  # the default is 0: every load asks the server
    url = server.add_file("recent.carton", two_versions[0])
    carton_sync.load(url)
    count = len(server.requests_for("recent.carton"))
    carton_sync.load(url)
    assert len(server.requests_for("recent.carton")) == count  # within CARTON_URL_MAX_AGE


def test_an_unchanged_file_costs_one_small_request(server: Server, two_versions: tuple[Path, Path], always_check: None) -> None:
    url = server.add_file("same.carton", two_versions[0])
    first = carton_sync.load(url)
    server.reset()
    again = carton_sync.load(url)
    check_outputs(again.infer(INPUTS))
    assert again.manifest_sha256 == first.manifest_sha256
    requests = server.requests_for("same.carton")
    assert [(r.range, r.status) for r in requests] == [(f"bytes=-{REVALIDATE_TAIL}", 206)]
    assert requests[0].sent <= REVALIDATE_TAIL
    assert carton_sync.get_model_info(url).model_name == "doubler"
    assert len(server.requests_for("same.carton")) == 2


def test_a_replaced_file_gives_the_new_model(server: Server, two_versions: tuple[Path, Path], always_check: None) -> None:
    old, new = two_versions
    assert old.stat().st_size == new.stat().st_size  # only the bytes tell them apart
    url = server.add_file("replaced.carton", old)
    first = carton_sync.load(url)
    assert first.info.model_name == "doubler"
    _replace(server, "replaced.carton", new)
    second = carton_sync.load(url)
    assert second.info.model_name == "doublex"
    assert second.manifest_sha256 != first.manifest_sha256
    check_outputs(second.infer(INPUTS))
    assert carton_sync.get_model_info(url).model_name == "doublex"


def test_etag_304_and_a_changed_etag(server: Server, two_versions: tuple[Path, Path], always_check: None) -> None:
    old, new = two_versions
    server.add_file("tagged.carton", old)
    url = server.url("etag/tagged.carton")
    carton_sync.load(url)
    server.reset()
    assert carton_sync.load(url).info.model_name == "doubler"
    assert [r.status for r in server.requests_for("etag/tagged.carton")] == [304]
    _replace(server, "tagged.carton", new)
    assert carton_sync.load(url).info.model_name == "doublex"


def test_a_server_ignoring_range_is_revalidated_too(norange_server: Server, two_versions: tuple[Path, Path], always_check: None) -> None:
    old, new = two_versions
    url = norange_server.add_file("norange.carton", old)
    assert carton_sync.load(url).info.model_name == "doubler"
    _replace(norange_server, "norange.carton", new)
    assert carton_sync.load(url).info.model_name == "doublex"  # no validators: its 200 answer is the new file


def test_offline_the_cached_copy_is_used_with_a_warning(servers: ServerFactory, two_versions: tuple[Path, Path], always_check: None,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    server = servers.new()
    url = server.add_file("offline.carton", two_versions[0])
    first = carton_sync.load(url)
    servers.stop(server)  # its port is closed: connection refused
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        again = carton_sync.load(url)
        info = carton_sync.get_model_info(url)
    check_outputs(again.infer(INPUTS))
    assert again.manifest_sha256 == first.manifest_sha256 and info.model_name == "doubler"
    warnings = [r.getMessage() for r in caplog.records if "cannot check whether the cached copy is current" in r.getMessage()]
    assert len(warnings) == 2 and url in warnings[0] and "refused" in warnings[0].lower()


def test_a_server_error_uses_the_cached_copy(server: Server, two_versions: tuple[Path, Path], always_check: None,
                                            caplog: pytest.LogCaptureFixture) -> None:
    server.add_file("flaky.carton", two_versions[0])
    carton_sync.load(server.add_file("probe.carton", two_versions[0]))  # how many requests a cold load makes
    cold = len(server.requests_for("probe.carton"))
    url = server.url(f"fail-from/{cold + 1}/500/flaky.carton")  # a cold load succeeds, then 500s
    carton_sync.load(url)
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        assert carton_sync.load(url).info.model_name == "doubler"
    assert any("HTTP 500" in r.getMessage() and "using the cached copy" in r.getMessage() for r in caplog.records)


def test_a_file_gone_from_the_server_is_an_error(server: Server, two_versions: tuple[Path, Path], always_check: None) -> None:
    url = server.add_file("gone.carton", two_versions[0])
    carton_sync.load(url)
    (server.root / "gone.carton").unlink()
    with pytest.raises(carton.CartonRuntimeError, match="404") as err:
        carton_sync.load(url)
    assert err.value.code == "E-RUNTIME-HTTP"
