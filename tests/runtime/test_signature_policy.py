"""The loading policy on signatures: off by default; when set (argument, CARTON_REQUIRE_SIGNATURE or
the config key), an archive without a valid signature from the trusted root is refused with
E-RUNTIME-SIGNATURE before any model code runs (a runner that records its loads proves it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_format.manifest import SIGNATURE_PATH
from carton_runtime.signature_policy import effective_trust_root, trust_root

from ..helpers.signing_keys import KeyPair, make_cert_chain, make_key_pair
from .fake_runner import EchoModel, write_echo_model


class RecordingRunner:
    """The echo runner, recording every load (model code would run there)."""

    runner_name = "echo"
    framework_version = "1.4.2"
    runner_compat_version = 3

    def __init__(self) -> None:
        self.loads: list[Any] = []

    def load(self, files: Any, *, device: Any, opts: dict[str, Any]) -> EchoModel:
        self.loads.append(files)
        return EchoModel(files, opts)


@pytest.fixture
def runner() -> Any:
    r = RecordingRunner()
    carton.register_runner(r)
    yield r
    carton.unregister_runner(r)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("policy-keys"))


@pytest.fixture(autouse=True)
def no_configured_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CARTON_REQUIRE_SIGNATURE", raising=False)
    monkeypatch.setenv("CARTON_CONFIG_PATH", str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text("")


def echo_archive(directory: Path, name: str = "echo.carton") -> Path:
    model_dir = write_echo_model(directory / f"{name}.model")
    return cf.write(directory / name, cf.CartonInfo(runner=cf.RunnerInfo("echo", "^1.4", 3)), model_dir=model_dir).path


def refused(path: Path, runner: RecordingRunner, **kwargs: Any) -> str:
    with pytest.raises(carton.CartonRuntimeError) as err:
        carton_sync.load(path, **kwargs)
    assert err.value.code == "E-RUNTIME-SIGNATURE"
    assert runner.loads == []  # refused before the runner was asked to load anything
    return err.value.message


def test_off_by_default(tmp_path: Path, runner: RecordingRunner) -> None:
    model = carton_sync.load(echo_archive(tmp_path))
    assert model.infer({})["weights"].tolist() == [1, 2, 3] and len(runner.loads) == 1


@pytest.mark.spec("FMT-SIG-7")
def test_a_signed_archive_loads_and_an_unsigned_one_is_refused(tmp_path: Path, runner: RecordingRunner, keys: KeyPair) -> None:
    path = echo_archive(tmp_path)
    message = refused(path, runner, require_signature=keys.public)
    assert "E-SIGNATURE-MISSING" in message and "load(require_signature=...)" in message
    cf.sign(path, key=keys.private)
    model = carton_sync.load(path, require_signature=keys.public)
    assert model.infer({})["weights"].tolist() == [1, 2, 3] and len(runner.loads) == 1


def test_the_wrong_key_and_another_manifests_signature_are_refused(tmp_path: Path, runner: RecordingRunner, keys: KeyPair) -> None:
    path = echo_archive(tmp_path)
    other = make_key_pair(tmp_path / "other", "other")
    cf.sign(path, key=other.private)
    assert "E-SIGNATURE-UNVERIFIED" in refused(path, runner, require_signature=keys.public)
    signed_elsewhere = echo_archive(tmp_path / "b")
    (tmp_path / "b" / "weights").write_bytes(b"")  # a different model: another MANIFEST
    different = cf.write(tmp_path / "b" / "different.carton", cf.CartonInfo(runner=cf.RunnerInfo("echo", "^1.4", 3), model_name="other"),
                         model_dir=tmp_path / "b" / "echo.carton.model").path
    cf.sign(different, key=keys.private, detached=True)
    (tmp_path / "b" / "different.carton.sig").rename(tmp_path / "b" / "echo.carton.sig")
    assert "E-SIGNATURE-MISMATCH" in refused(signed_elsewhere, runner, require_signature=keys.public)


def test_a_detached_signature_beside_the_file_counts(tmp_path: Path, runner: RecordingRunner, keys: KeyPair) -> None:
    path = echo_archive(tmp_path)
    cf.sign(path, key=keys.private, detached=True)
    carton_sync.load(path, require_signature=keys.public)
    assert len(runner.loads) == 1


def test_a_tampered_model_file_is_caught_by_the_load(tmp_path: Path, runner: RecordingRunner, keys: KeyPair) -> None:
    """The signature names MANIFEST; the members are verified against it as they are loaded."""
    path = echo_archive(tmp_path)
    cf.sign(path, key=keys.private)
    with cf.read(path) as archive:
        start = archive.source.stored_span("model/weights.bin").offset  # type: ignore[union-attr]
    data = bytearray(path.read_bytes())
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(cf.CartonError) as err:
        carton_sync.load(path, require_signature=keys.public).infer({})
    assert err.value.code in ("E-MANIFEST-MISMATCH", "E-ZIP-CRC")


def test_environment_variable_and_config_key(tmp_path: Path, runner: RecordingRunner, keys: KeyPair,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = echo_archive(tmp_path)
    monkeypatch.setenv("CARTON_REQUIRE_SIGNATURE", str(keys.public))
    assert "CARTON_REQUIRE_SIGNATURE" in refused(path, runner)
    carton_sync.load(path, require_signature=False)  # off for this load
    assert len(runner.loads) == 1
    runner.loads.clear()
    monkeypatch.delenv("CARTON_REQUIRE_SIGNATURE")
    config = tmp_path / "config.toml"
    config.write_text(f"[require_signature]\nkey = {json.dumps(str(keys.public))}\n")
    assert "require_signature" in refused(path, runner)
    config.write_text(f"require_signature = {json.dumps(str(keys.public))}\n")
    refused(path, runner)
    cf.sign(path, key=keys.private)
    carton_sync.load(path)
    assert len(runner.loads) == 1


def test_trust_roots(tmp_path: Path, keys: KeyPair) -> None:
    chain = make_cert_chain(tmp_path / "pki")
    assert trust_root(keys.public).key == keys.public
    assert trust_root(str(chain.ca)).chain == (chain.ca,)
    assert trust_root({"chain": [str(chain.ca)]}).chain == (chain.ca,)
    sigstore = trust_root({"identity": "me@example.com", "issuer": "https://accounts.example.com"})
    assert (sigstore.identity, sigstore.issuer) == ("me@example.com", "https://accounts.example.com")
    assert trust_root(None) is None and trust_root(False) is None
    assert effective_trust_root(None) == (None, "default (off)")


@pytest.mark.parametrize(
    "value",
    [True, 3, "", "/nonexistent/key.pem", {"key": "/nonexistent.pem"}, {"colour": "red"}, {"identity": "me"}, {}, "PRIVATE"],
)
def test_bad_policies_are_argument_errors(tmp_path: Path, runner: RecordingRunner, keys: KeyPair, value: Any) -> None:
    if value == "PRIVATE":
        value = keys.private
    with pytest.raises(carton.CartonRuntimeError) as err:
        carton_sync.load(echo_archive(tmp_path), require_signature=value)
    assert err.value.code == "E-RUNTIME-ARG" and runner.loads == []


def test_a_malformed_signature_member_is_refused(tmp_path: Path, runner: RecordingRunner, keys: KeyPair) -> None:
    from carton_format._zip.append import append_member

    path = echo_archive(tmp_path)
    append_member(path, SIGNATURE_PATH, b'{"version": 7}')
    assert "E-SIGNATURE-VERSION" in refused(path, runner, require_signature=keys.public)


@pytest.mark.spec("FMT-SIG-7")
def test_over_http_the_policy_holds(tmp_path: Path, runner: RecordingRunner, keys: KeyPair, server: Any) -> None:
    """A remote archive: the SIGNATURE member is read over range requests, before the download."""
    path = echo_archive(tmp_path)
    unsigned_url = server.add(f"{tmp_path.name}/unsigned.carton", path.read_bytes())
    with pytest.raises(carton.CartonRuntimeError) as err:
        carton_sync.load(unsigned_url, require_signature=keys.public)
    assert err.value.code == "E-RUNTIME-SIGNATURE" and runner.loads == []
    cf.sign(path, key=keys.private)
    url = server.add(f"{tmp_path.name}/signed.carton", path.read_bytes())
    model = carton_sync.load(url, require_signature=keys.public)
    assert model.infer({})["weights"].tolist() == [1, 2, 3] and len(runner.loads) == 1


def test_a_signed_archive_with_linked_files_verifies_what_it_fetches(tmp_path: Path, runner: RecordingRunner, keys: KeyPair,
                                                                     server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """shrink keeps MANIFEST, so the signature still holds; the files fetched through LINKS are
    checked against MANIFEST when the model loads, so a server that changed them is caught."""
    import hashlib

    path = echo_archive(tmp_path)
    cf.sign(path, key=keys.private)
    weights = bytes([1, 2, 3])
    url = server.add(f"{tmp_path.name}/weights.bin", weights)
    shrunk = tmp_path / "shrunk.carton"
    cf.shrink(path, shrunk, {hashlib.sha256(weights).hexdigest(): [url]})
    with cf.read(shrunk) as archive:
        assert archive.source.member("model/weights.bin") is None  # type: ignore[union-attr]  # linked, not stored
    model = carton_sync.load(shrunk, require_signature=keys.public)
    assert model.infer({})["weights"].tolist() == [1, 2, 3] and len(runner.loads) == 1
    model.close()
    server.add(f"{tmp_path.name}/weights.bin", bytes([9, 9, 9]))  # the server now serves other bytes
    monkeypatch.setenv("CARTON_CACHE_DIR", str(tmp_path / "fresh-cache"))  # nothing verified to fall back on
    with pytest.raises(cf.CartonError) as err:
        carton_sync.load(shrunk, require_signature=keys.public).infer({})
    assert err.value.code in ("E-MANIFEST-MISMATCH", "E-LINKS-FETCH"), err.value
