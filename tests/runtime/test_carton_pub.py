"""carton.pub URLs: the registry -> download host rewrite and the x-carton-dl-url HEAD header."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

import carton_runtime.sync as carton_sync
from carton_runtime import locations
from carton_runtime.errors import CartonRuntimeError
from carton_runtime.locations import parse_location, registry_hosts

from .conftest import Server
from .test_api import INPUTS, check_outputs

NAME = "/google-research/bert-base-uncased"


def _netloc(server: Server) -> str:
    return urlsplit(server.base).netloc


@pytest.fixture
def registry(servers: object, monkeypatch: pytest.MonkeyPatch) -> tuple[Server, Server]:
    """(registry host, download host): two loopback servers standing in for carton.pub and
    dl.carton.pub (CARTON_PUB_HOST / CARTON_PUB_DL_HOST)."""
    pub = servers.new()  # type: ignore[attr-defined]
    dl = servers.new()  # type: ignore[attr-defined]
    monkeypatch.setenv("CARTON_PUB_HOST", _netloc(pub))
    monkeypatch.setenv("CARTON_PUB_DL_HOST", _netloc(dl))
    monkeypatch.setattr(locations, "_dl_url_cache", {})
    return pub, dl


def test_default_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTON_PUB_HOST", raising=False)
    monkeypatch.delenv("CARTON_PUB_DL_HOST", raising=False)
    assert registry_hosts() == ("carton.pub", "dl.carton.pub")
    monkeypatch.setenv("CARTON_PUB_HOST", "Pub.Example:8080")
    assert registry_hosts() == ("pub.example:8080", "dl.pub.example:8080")


def test_other_urls_get_no_head_request(server: Server, packed: Path, registry: tuple[Server, Server]) -> None:
    url = server.add_file("plain.carton", packed)
    assert parse_location(url).location == url
    assert server.log == []


def test_load_carton_pub_url(server: Server, packed: Path, registry: tuple[Server, Server]) -> None:
    pub, dl = registry
    archive_url = server.add_file("pub/bert.carton", packed)
    dl.dl_headers[NAME] = archive_url
    model = carton_sync.load(f"{pub.base}{NAME}")
    check_outputs(model.infer(INPUTS))
    assert pub.log == []  # rewritten to the download host without a request
    assert [(r.method, r.path) for r in dl.log] == [("HEAD", NAME)]
    assert server.requests_for("pub/bert.carton")  # the archive came from the header's URL
    location = parse_location(f"{pub.base}{NAME}")  # remembered for the process: no second HEAD
    assert location.location == archive_url and location.requested == f"{pub.base}{NAME}"
    assert len(dl.log) == 1


def test_get_model_info_of_download_host_url(server: Server, packed: Path, registry: tuple[Server, Server]) -> None:
    _, dl = registry
    dl.dl_headers[NAME] = server.add_file("pub/info.carton", packed)
    info = carton_sync.get_model_info(f"{dl.base}{NAME}")
    assert info.runner.runner_name == "torchscript"
    assert [(r.method, r.path) for r in dl.log] == [("HEAD", NAME)]


def test_without_header_the_download_url_is_the_archive(packed: Path, registry: tuple[Server, Server]) -> None:
    pub, dl = registry
    dl.add_file(NAME.lstrip("/"), packed)
    model = carton_sync.load(f"{pub.base}{NAME}")
    check_outputs(model.infer(INPUTS))
    assert dl.log[0].method == "HEAD" and all(r.path == NAME for r in dl.log)


def test_head_failure_is_a_coded_error(registry: tuple[Server, Server]) -> None:
    pub, _ = registry
    with pytest.raises(CartonRuntimeError) as info:
        carton_sync.get_model_info(f"{pub.base}/no/such-model")
    assert info.value.code == "E-RUNTIME-HTTP" and "404" in str(info.value)


@pytest.mark.parametrize("header", ["ftp://x/y.carton", "not a url", "http://h\u00e9.example/m.carton", "http://user:pw@127.0.0.1/m"])
def test_bad_header_is_a_coded_error(registry: tuple[Server, Server], header: str) -> None:
    pub, dl = registry
    dl.dl_headers[NAME] = header
    with pytest.raises(CartonRuntimeError) as info:
        carton_sync.get_model_info(f"{pub.base}{NAME}")
    assert info.value.code == "E-RUNTIME-HTTP" and "x-carton-dl-url" in str(info.value)


def test_header_url_must_pass_the_users_address_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public registry cannot name a loopback/private archive (checked before any request)."""
    from carton_runtime import http_range

    monkeypatch.delenv("CARTON_PUB_HOST", raising=False)
    monkeypatch.delenv("CARTON_PUB_DL_HOST", raising=False)
    monkeypatch.delenv("CARTON_ALLOW_PRIVATE_URLS", raising=False)
    monkeypatch.setattr(locations, "_dl_url_cache", {})

    class Head:
        headers = {"x-carton-dl-url": "http://127.0.0.1:9/secret.carton"}

        def close(self) -> None:
            pass

    seen: list[str] = []

    def fake_get(url: str, headers: object = None, **kwargs: object) -> Head:
        seen.append(url)
        return Head()

    monkeypatch.setattr(locations, "http_get", fake_get)
    monkeypatch.setattr(http_range, "resolve", lambda host, port: [(2, 1, 6, "", ("93.184.216.34", 0))])
    with pytest.raises(CartonRuntimeError) as info:
        parse_location("https://carton.pub/google-research/bert-base-uncased")
    assert seen == ["https://dl.carton.pub/google-research/bert-base-uncased"]
    assert info.value.code == "E-RUNTIME-HTTP" and "loopback" in str(info.value)
