"""The model-file cache (cold and warm loads, verification, compression) and the CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_format.cli import main as carton_main
from carton_runtime import model_files
from carton_runtime.cache import Cache

from .conftest import ORIGINAL_MODEL, pack_original, sha256_file
from .test_api import INPUTS, check_outputs

MODEL_SHA = sha256_file(ORIGINAL_MODEL)


def test_cold_load_fills_the_cache_and_warm_load_reuses_it(packed: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_outputs(carton_sync.load(packed).infer(INPUTS))
    cached = cache_dir / "files" / MODEL_SHA / "file"
    assert cached.read_bytes() == ORIGINAL_MODEL.read_bytes()
    assert not list((cache_dir / "files").glob(".tmp*"))

    def no_copy(*args: object) -> None:
        raise AssertionError("a warm load must not extract again")

    monkeypatch.setattr(model_files.CopyHasher, "copy", no_copy)
    check_outputs(carton_sync.load(packed).infer(INPUTS))


def test_cache_dir_defaults_to_the_originals(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CARTON_CACHE_DIR")
    monkeypatch.setenv("CARTON_CONFIG_PATH", str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text("")
    assert Cache().root == Path.home() / ".carton" / "cache"


@pytest.mark.parametrize("compression", ["zstd", "deflate"])
def test_compressed_model_members(tmp_path: Path, cache_dir: Path, compression: str) -> None:
    path = pack_original(tmp_path / "z.carton", compression=compression)
    model = carton_sync.load(path)
    check_outputs(model.infer(INPUTS))
    assert all(model.run_self_tests())
    assert (cache_dir / "files" / MODEL_SHA / "file").is_file()


def _corrupt_model(packed: Path, out: Path) -> Path:
    data = bytearray(packed.read_bytes())
    model = ORIGINAL_MODEL.read_bytes()
    at = data.find(model)
    assert at > 0
    data[at + len(model) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def test_corrupted_model_is_refused_and_not_cached(packed: Path, tmp_path: Path, cache_dir: Path) -> None:
    bad = _corrupt_model(packed, tmp_path / "bad.carton")
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.load(bad)
    assert err.value.code == "E-MANIFEST-MISMATCH" and err.value.member == "model/model.pt"
    assert not (cache_dir / "files" / MODEL_SHA).exists()
    assert not list((cache_dir / "files").glob(".tmp*"))
    check_outputs(carton_sync.load(packed).infer(INPUTS))  # the good one still loads


def test_corrupted_unpacked_directory(packed: Path, tmp_path: Path) -> None:
    root = tmp_path / "dir"
    with zipfile.ZipFile(packed) as z:
        z.extractall(root)
    data = bytearray(ORIGINAL_MODEL.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "model" / "model.pt").write_bytes(bytes(data))
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.load(root)
    assert err.value.code == "E-MANIFEST-MISMATCH"
    (root / "stray.txt").write_text("not in MANIFEST")
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.get_model_info(root)
    assert err.value.code == "E-MANIFEST-UNLISTED"


def _flip_model_byte(path: Path, index: int) -> None:
    """Flip one byte of the stored model inside an archive, in place (MANIFEST unchanged)."""
    data = bytearray(path.read_bytes())
    at = data.find(ORIGINAL_MODEL.read_bytes())
    assert at > 0
    data[at + index] ^= 0xFF
    path.write_bytes(bytes(data))


def test_unparseable_tampered_model_is_reported_as_a_mismatch(packed: Path, tmp_path: Path, cache_dir: Path) -> None:
    """Flipping the model's first byte makes torch fail to parse it before the hash is done;
    the cause reported is the mismatch, with torch's error chained, and nothing is cached."""
    bad = tmp_path / "bad.carton"
    bad.write_bytes(packed.read_bytes())
    _flip_model_byte(bad, 0)
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.load(bad)
    assert err.value.code == "E-MANIFEST-MISMATCH" and err.value.member == "model/model.pt"
    assert isinstance(err.value.__cause__, carton.CartonRuntimeError) and err.value.__cause__.code == "E-RUNTIME-RUNNER"
    assert not (cache_dir / "files" / MODEL_SHA).exists()
    assert not list((cache_dir / "files").glob(".tmp*"))
    root = tmp_path / "dir"  # the same for an unpacked directory, read in place
    with zipfile.ZipFile(packed) as z:
        z.extractall(root)
    model = root / "model" / "model.pt"
    model.write_bytes(bytes([model.read_bytes()[0] ^ 0xFF]) + model.read_bytes()[1:])
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.load(root)
    assert err.value.code == "E-MANIFEST-MISMATCH"


def test_archive_changed_during_a_cold_load_is_refused_and_not_cached(
    packed: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash covers the bytes copied into the cache, not the archive: a writer that changes
    the archive in the middle of the copy cannot get unchecked bytes into the cache."""
    from carton_runtime import overlapped_verify as hashing

    archive = tmp_path / "m.carton"
    archive.write_bytes(packed.read_bytes())
    monkeypatch.setattr(hashing, "COPY_CHUNK", 512)
    progress = hashing.CopyHasher._progress
    tampered: list[int] = []

    def progress_then_tamper(self: hashing.CopyHasher, done: int) -> None:
        progress(self, done)
        if not tampered:  # after the first chunk, change a byte that is not copied yet
            tampered.append(done)
            _flip_model_byte(archive, 1500)

    monkeypatch.setattr(hashing.CopyHasher, "_progress", progress_then_tamper)
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.load(archive)
    assert tampered == [512]
    assert err.value.code == "E-MANIFEST-MISMATCH"
    assert not (cache_dir / "files" / MODEL_SHA).exists()
    assert not list((cache_dir / "files").glob(".tmp*"))
    monkeypatch.setattr(hashing.CopyHasher, "_progress", progress)
    check_outputs(carton_sync.load(packed).infer(INPUTS))  # an intact copy still loads and caches
    assert sha256_file(cache_dir / "files" / MODEL_SHA / "file") == MODEL_SHA


def test_archive_tampered_after_a_load_never_reaches_the_runner(packed: Path, tmp_path: Path, cache_dir: Path) -> None:
    """The cache holds verified content under the MANIFEST's sha256: once an archive was
    loaded, changing its model bytes in place (MANIFEST unchanged) does not change what later
    loads run, and with the cache cleared the changed archive is refused."""
    archive = tmp_path / "m.carton"
    archive.write_bytes(packed.read_bytes())
    check_outputs(carton_sync.load(archive).infer(INPUTS))
    _flip_model_byte(archive, len(ORIGINAL_MODEL.read_bytes()) // 2)
    check_outputs(carton_sync.load(archive).infer(INPUTS))  # the verified cached copy
    assert sha256_file(cache_dir / "files" / MODEL_SHA / "file") == MODEL_SHA
    Cache(cache_dir).clear()
    with pytest.raises(carton.CartonFormatError) as err:
        carton_sync.load(archive)
    assert err.value.code == "E-MANIFEST-MISMATCH"
    assert not (cache_dir / "files" / MODEL_SHA).exists()


def test_unusable_cache_falls_back_to_a_private_copy(packed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("CARTON_CACHE_DIR", str(blocker))
    check_outputs(carton_sync.load(packed).infer(INPUTS))


# -- CLI ----------------------------------------------------------------------------------------------


def test_cli_pack_run_selftest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.carton"
    misc = tmp_path / "readme.md"
    misc.write_text("hello")
    rc = carton_main([
        "pack", str(ORIGINAL_MODEL), "-o", str(out), "--framework-version", "=2.13", "--name", "cli-model",
        "--opt", "num_threads=1", "--misc", f"readme.md=@{misc}", "--license", "MIT",
    ])
    assert rc == 0, capsys.readouterr().err
    assert "manifest sha256" in capsys.readouterr().out
    info = carton_sync.get_model_info(out)
    assert info.model_name == "cli-model" and info.runner.opts == {"num_threads": 1} and info.license == "MIT"
    assert info.misc_files["readme.md"].read() == b"hello"

    np.save(tmp_path / "a.npy", np.array([1.0, 2.0], dtype=np.float32))
    rc = carton_main(["run", str(out), "--input", f"a=@{tmp_path / 'a.npy'}", "--input", "b=hello", "--input", 'c=["x", "y"]', "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["doubled"] == {"dtype": "float32", "shape": [2], "value": [2.0, 4.0]}
    assert result["string"]["value"] == "A string" and result["stringlist"]["shape"] == [4]

    rc = carton_main(["run", str(out), "--input", "a=[1, 2]", "--input", "b=hi", "--input", "c=[\"x\"]", "--save", str(tmp_path / "outs")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "doubled: int64 [2]" in text and "'A string'" in text
    assert np.load(tmp_path / "outs" / "doubled.npy").tolist() == [2, 4]

    rc = carton_main(["selftest", str(out)])
    assert rc == 0
    assert "the model has no self tests" in capsys.readouterr().out


def test_cli_selftest_exit_codes(packed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert carton_main(["selftest", str(packed)]) == 0
    assert "1/1 self tests passed" in capsys.readouterr().out
    a = np.ones(1, dtype=np.float32)
    failing = pack_original(
        tmp_path / "failing.carton",
        self_tests=[cf.SelfTest(inputs={"a": a, "b": np.array("s"), "c": np.array(["x"])}, expected_out={"doubled": a}, name="wrong")],
        check_self_tests=False,  # failing on purpose
    )
    assert carton_main(["selftest", str(failing), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["tests"][0]["name"] == "wrong"


def test_cli_errors(tmp_path: Path, packed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert carton_main(["run", str(tmp_path / "missing.carton")]) == 1
    assert "E-RUNTIME-SOURCE" in capsys.readouterr().err
    assert carton_main(["run", str(packed), "--device", "gpu"]) == 1
    assert "Invalid format for device" in capsys.readouterr().err
    assert carton_main(["run", str(packed), "--input", "noequals"]) == 2
    assert carton_main(["run", str(packed), "--input", "a=[1]"]) == 1  # b and c missing: refused by the input specs
    assert "E-RUNTIME-INPUT input 'b' is missing" in capsys.readouterr().err
