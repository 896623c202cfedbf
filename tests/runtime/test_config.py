"""Configuration: CARTON_CONFIG_PATH / ~/.carton/config.toml, env > file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from carton_runtime.cache import Cache
from carton_runtime.config import Config, load_config
from carton_runtime.errors import CartonRuntimeError

ENVS = ("CARTON_CONFIG_PATH", "CARTON_CACHE_DIR", "CARTON_RUNNER_DIR", "CARTON_RUNNER_DATA_DIR")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ENVS:
        monkeypatch.delenv(name, raising=False)
    return home


def test_defaults_are_the_originals(home: Path) -> None:
    config = load_config()
    assert isinstance(config, Config)
    assert config.cache_dir == home / ".carton" / "cache"
    assert config.runner_dir == home / ".carton" / "runners"
    assert config.runner_data_dir == home / ".carton" / "runner_data"
    assert config.config_path == home / ".carton" / "config.toml" and not config.config_loaded
    assert Cache().root == home / ".carton" / "cache"


def test_default_config_file_is_read(home: Path, tmp_path: Path) -> None:
    (home / ".carton").mkdir()
    (home / ".carton" / "config.toml").write_text(f'cache_dir = "{tmp_path}/c"\nrunner_dir = "~/r"\nunknown_key = 1\n')
    config = load_config()
    assert config.config_loaded
    assert config.cache_dir == tmp_path / "c"
    assert config.runner_dir == home / "r"
    assert config.runner_data_dir == home / ".carton" / "runner_data"
    assert Cache().root == tmp_path / "c"


def test_env_beats_file_beats_default(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('cache_dir = "/from/file/cache"\nrunner_dir = "/from/file/runners"\nrunner_data_dir = "/from/file/data"\n')
    monkeypatch.setenv("CARTON_CONFIG_PATH", str(path))
    monkeypatch.setenv("CARTON_CACHE_DIR", "~/env-cache")
    monkeypatch.setenv("CARTON_RUNNER_DATA_DIR", "/from/env/data")
    monkeypatch.setenv("CARTON_RUNNER_DIR", "")  # empty: unset
    config = load_config()
    assert config.config_path == path and config.config_loaded
    assert config.cache_dir == home / "env-cache"
    assert config.runner_dir == Path("/from/file/runners")
    assert config.runner_data_dir == Path("/from/env/data")
    assert Cache().root == home / "env-cache"


@pytest.mark.parametrize(
    "text, says",
    [
        ("cache_dir = ", "not valid TOML"),
        ("cache_dir = 3", "cache_dir must be a non-empty path string"),
        ('runner_dir = ""', "runner_dir must be a non-empty path string"),
        (b"cache_dir = '\xff'", "not UTF-8"),
    ],
)
def test_malformed_config_file_is_a_coded_error(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | bytes, says: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.setenv("CARTON_CONFIG_PATH", str(path))
    with pytest.raises(CartonRuntimeError) as info:
        load_config()
    assert info.value.code == "E-RUNTIME-ARG"
    assert str(path) in str(info.value) and says in str(info.value)
    with pytest.raises(CartonRuntimeError):
        Cache()


def test_malformed_default_config_file_is_a_coded_error(home: Path) -> None:
    (home / ".carton").mkdir()
    (home / ".carton" / "config.toml").write_text("[[[")
    with pytest.raises(CartonRuntimeError) as info:
        load_config()
    assert info.value.code == "E-RUNTIME-ARG" and str(home / ".carton" / "config.toml") in str(info.value)


def test_config_path_naming_no_file_is_a_coded_error(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_CONFIG_PATH", str(tmp_path / "missing.toml"))
    with pytest.raises(CartonRuntimeError) as info:
        load_config()
    assert info.value.code == "E-RUNTIME-ARG" and "missing.toml" in str(info.value) and "CARTON_CONFIG_PATH" in str(info.value)


def test_config_path_naming_a_directory_is_a_coded_error(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_CONFIG_PATH", str(tmp_path))
    with pytest.raises(CartonRuntimeError) as info:
        load_config()
    assert info.value.code == "E-RUNTIME-ARG" and str(tmp_path) in str(info.value)
