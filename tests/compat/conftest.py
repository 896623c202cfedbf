"""Fixtures for the ported doc examples: carton.pub on loopback servers, stand-in files on disk."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from carton_runtime import locations
from tests.helpers.python_envs import ENV_NAME, session_runner_data_dir
from tests.runtime.conftest import Server, ServerFactory

from . import standins

#: The carton.pub models the docs name, and the stand-in archive served for each.
PUB_MODELS = {
    "/google-research/bert-base-uncased": standins.bert_standin_archive,
    "/cartonml/basic_example": standins.basic_example_archive,
}


@pytest.fixture(autouse=True)
def runner_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runner environments (python models) under the session's shared directory, built once."""
    path = session_runner_data_dir(tmp_path_factory)
    monkeypatch.setenv(ENV_NAME, str(path))
    return path


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own Carton cache (CARTON_CACHE_DIR)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("CARTON_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def _pub_servers(tmp_path_factory: pytest.TempPathFactory):
    """(registry, download host): loopback servers; the download host answers HEAD with an
    ``x-carton-dl-url`` header naming the stand-in archive on a third (as dl.carton.pub does)."""
    factory = ServerFactory(tmp_path_factory.mktemp("pub"))
    pub, dl, files = factory.new(), factory.new(), factory.new()
    for name, archive in PUB_MODELS.items():
        dl.dl_headers[name] = files.add_file(f"archives{name}.carton", archive())
    yield pub, dl
    factory.close()


@pytest.fixture
def carton_pub(_pub_servers: tuple[Server, Server], monkeypatch: pytest.MonkeyPatch) -> str:
    """The base URL (``http://127.0.0.1:PORT``) of a loopback carton.pub: CARTON_PUB_HOST and
    CARTON_PUB_DL_HOST point at the loopback servers (the URL resolution is not remembered
    across tests)."""
    pub, dl = _pub_servers
    monkeypatch.setenv("CARTON_PUB_HOST", urlsplit(pub.base).netloc)
    monkeypatch.setenv("CARTON_PUB_DL_HOST", urlsplit(dl.base).netloc)
    monkeypatch.setattr(locations, "_dl_url_cache", {})
    return pub.base


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Stand-ins for the files the docs read from ``/path/to/...``."""
    out = tmp_path / "files"
    out.mkdir()
    (out / "input.png").write_bytes(standins.PEDESTRIAN_PNG)
    (out / "model_architecture.png").write_bytes(standins.ARCHITECTURE_PNG)
    return {"input.png": out / "input.png", "model_architecture.png": out / "model_architecture.png"}
