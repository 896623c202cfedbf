"""Verification records: a local model file used in place, verified once and unchanged since
(device, inode, size, mtime, ctime), is not hashed again; ``CARTON_VERIFY=always`` and
``--reverify`` hash it anyway.

Hashes are counted by wrapping ``model_files.hash_range`` (the real one runs: nothing is faked).
Files are "settled" before the load that should record them: a file written less than
``SETTLE_NS`` before a load is hashed but not recorded (see ``carton_runtime.model_files``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

import carton_format as cf
import carton_runtime.sync as carton_sync
from carton_format.cli import main as carton_main
from carton_runtime import model_files
from carton_runtime.cache import VERIFIED, Cache, FileStamp
from carton_runtime.config import reverifying

from .conftest import ORIGINAL_MODEL, Server, sha256_file
from .test_api import INPUTS, check_outputs
from .test_http_one_copy import flip_byte, full_downloads, unpacked_dirs

ROOT = Path(__file__).resolve().parents[2]
MODEL_SHA = sha256_file(ORIGINAL_MODEL)


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTON_VERIFY", raising=False)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths ``hash_range`` was called on (the real hashing still runs)."""
    calls: list[Path] = []
    real = model_files.hash_range

    def counting(path: Path, offset: int, length: int) -> Any:
        calls.append(Path(path))
        return real(path, offset, length)

    monkeypatch.setattr(model_files, "hash_range", counting)
    return calls


def settle() -> None:
    """Wait until files written so far are old enough to be recorded."""
    time.sleep(model_files.SETTLE_NS / 1e9 + 0.05)


def unpacked(packed: Path, root: Path) -> Path:
    with zipfile.ZipFile(packed) as z:
        z.extractall(root)
    settle()
    return root


def record_of(cache_dir: Path, path: Path) -> dict[str, Any] | None:
    stamp = FileStamp.of(path)
    assert stamp is not None
    record = cache_dir / VERIFIED / f"{stamp.key()}.json"
    return json.loads(record.read_text()) if record.exists() else None


def tamper_keeping_size(path: Path, *, restore_mtime: bool) -> None:
    """Flip one byte in place (same size, same inode); optionally put the old mtime back."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    if restore_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert after.st_ino == st.st_ino and after.st_size == st.st_size
    assert after.st_ctime_ns != st.st_ctime_ns and (after.st_mtime_ns == st.st_mtime_ns) == restore_mtime


def test_second_load_of_an_unpacked_directory_is_not_hashed(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path]) -> None:
    root = unpacked(packed, tmp_path / "dir")
    model = root / "model" / "model.pt"
    check_outputs(carton_sync.load(root).infer(INPUTS))
    assert hashes == [model]
    record = record_of(cache_dir, model)
    assert record is not None and record["sha256"] == MODEL_SHA and record["path"] == str(model)
    assert record["size"] == model.stat().st_size and record["ctime_ns"] == model.stat().st_ctime_ns
    for _ in range(2):
        check_outputs(carton_sync.load(root).infer(INPUTS))
    assert hashes == [model]  # not hashed again
    assert not list((cache_dir / VERIFIED).glob(".tmp-*"))


def test_a_file_written_just_before_the_load_is_recorded_on_a_later_one(packed: Path, tmp_path: Path, cache_dir: Path,
                                                                       hashes: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A write in the same timestamp tick would not change the stamp: a fresh file is hashed but
    not recorded (a margin of an hour makes every file here fresh)."""
    root = unpacked(packed, tmp_path / "dir")
    model = root / "model" / "model.pt"
    default = model_files.SETTLE_NS
    monkeypatch.setattr(model_files, "SETTLE_NS", 3600 * 10**9)
    carton_sync.load(root)
    assert record_of(cache_dir, model) is None
    monkeypatch.setattr(model_files, "SETTLE_NS", default)
    carton_sync.load(root)
    assert record_of(cache_dir, model) is not None
    carton_sync.load(root)
    assert len(hashes) == 2


@pytest.mark.parametrize("restore_mtime", [False, True], ids=["new-mtime", "mtime-restored"])
def test_a_modified_file_is_hashed_again_and_refused(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path],
                                                     restore_mtime: bool) -> None:
    root = unpacked(packed, tmp_path / "dir")
    model = root / "model" / "model.pt"
    carton_sync.load(root)
    assert record_of(cache_dir, model) is not None
    tamper_keeping_size(model, restore_mtime=restore_mtime)  # ctime changes either way
    with pytest.raises(cf.CartonFormatError) as err:
        carton_sync.load(root)
    assert err.value.code == "E-MANIFEST-MISMATCH" and err.value.member == "model/model.pt"
    assert hashes == [model, model]
    assert record_of(cache_dir, model) is None  # a file that failed is never recorded
    with pytest.raises(cf.CartonFormatError):
        carton_sync.load(root)
    assert len(hashes) == 3


def test_force_option_hashes_again(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path],
                                   monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    root = unpacked(packed, tmp_path / "dir")
    carton_sync.load(root)
    carton_sync.load(root)
    assert len(hashes) == 1
    monkeypatch.setenv("CARTON_VERIFY", "always")
    carton_sync.load(root)
    assert len(hashes) == 2
    monkeypatch.setenv("CARTON_VERIFY", "memo")
    carton_sync.load(root)
    assert len(hashes) == 2
    with reverifying():
        carton_sync.load(root)
    assert len(hashes) == 3
    monkeypatch.setenv("CARTON_VERIFY", "sometimes")  # not understood: verify, with a warning
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        carton_sync.load(root)
    assert len(hashes) == 4 and any("CARTON_VERIFY='sometimes'" in r.getMessage() for r in caplog.records)
    monkeypatch.delenv("CARTON_VERIFY")
    assert carton_main(["selftest", str(root), "--reverify", "--no-progress"]) == 0
    assert len(hashes) == 5
    assert carton_main(["run", str(root), "--reverify", "--input", "a=[1.0]", "--input", "b=x", "--input", 'c=["y"]']) == 0
    assert len(hashes) == 6
    assert carton_main(["selftest", str(root), "--no-progress"]) == 0
    assert len(hashes) == 6


def test_damage_that_leaves_the_stamp_alone_is_found_only_when_forced(packed: Path, tmp_path: Path, cache_dir: Path,
                                                                      hashes: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit rot (no write through the file system) keeps the stamp: stood in for here by a record
    made for the damaged file's stamp.  Only a forced hash finds it; it then drops the record."""
    root = unpacked(packed, tmp_path / "dir")
    model = root / "model" / "model.pt"
    tamper_keeping_size(model, restore_mtime=False)
    stamp = FileStamp.of(model)
    assert stamp is not None
    Cache(cache_dir).record_verified(stamp, MODEL_SHA, model)
    with pytest.raises(cf.CartonFormatError) as err, reverifying():
        carton_sync.load(root)
    assert err.value.code == "E-MANIFEST-MISMATCH" and hashes == [model]
    assert record_of(cache_dir, model) is None
    with pytest.raises(cf.CartonFormatError) as err:  # and so a default load hashes it again
        carton_sync.load(root)
    assert err.value.code == "E-MANIFEST-MISMATCH" and len(hashes) == 2


def test_a_record_does_not_apply_to_another_inode(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path]) -> None:
    first = unpacked(packed, tmp_path / "first")
    carton_sync.load(first)
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)  # copy2: same bytes, size and mtime; another inode
    a, b = FileStamp.of(first / "model" / "model.pt"), FileStamp.of(copy / "model" / "model.pt")
    assert a is not None and b is not None and a.mtime_ns == b.mtime_ns and a.ino != b.ino
    cache = Cache(cache_dir)
    assert cache.verified_sha256(a) == MODEL_SHA
    assert cache.verified_sha256(dataclasses.replace(a, ino=b.ino)) is None  # the copy's inode has no record
    for name in ("dev", "size", "mtime_ns", "ctime_ns"):
        assert cache.verified_sha256(dataclasses.replace(a, **{name: getattr(a, name) + 1})) is None, name
    settle()
    carton_sync.load(copy)
    assert hashes == [first / "model" / "model.pt", copy / "model" / "model.pt"]
    carton_sync.load(copy)
    carton_sync.load(first)
    assert len(hashes) == 2  # each has its own record
    (tmp_path / "other.pt").write_bytes((first / "model" / "model.pt").read_bytes())
    os.replace(tmp_path / "other.pt", first / "model" / "model.pt")  # the same bytes, replaced
    settle()
    carton_sync.load(first)
    assert len(hashes) == 3


def test_records_survive_across_processes(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path]) -> None:
    root = unpacked(packed, tmp_path / "dir")
    carton_sync.load(root)
    assert len(hashes) == 1
    code = (
        "import sys, carton_runtime.sync as cs\n"
        "from carton_runtime import model_files\n"
        "calls = []\n"
        "real = model_files.hash_range\n"
        "model_files.hash_range = lambda *a: calls.append(a) or real(*a)\n"
        "for _ in range(2):\n"
        "    cs.load(sys.argv[1])\n"
        "print('hashed', len(calls))\n"
    )
    env = {**os.environ, "CARTON_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", code, str(root)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "hashed 0"


def test_cache_clear_and_prune_remove_records(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path]) -> None:
    root = unpacked(packed, tmp_path / "dir")
    carton_sync.load(root)
    assert list((cache_dir / VERIFIED).glob("*.json"))
    assert carton_main(["cache", "clear"]) == 0
    assert not (cache_dir / VERIFIED).exists()
    carton_sync.load(root)
    assert len(hashes) == 2  # hashed again, and recorded again
    gone = unpacked(packed, tmp_path / "gone")
    carton_sync.load(gone)
    assert len(list((cache_dir / VERIFIED).glob("*.json"))) == 2
    shutil.rmtree(gone)
    assert carton_main(["cache", "prune", "--older-than", "365"]) == 0
    [left] = (cache_dir / VERIFIED).glob("*.json")  # the live file's record stays
    assert json.loads(left.read_text())["path"] == str(root / "model" / "model.pt")
    carton_sync.load(root)
    assert len(hashes) == 3


@pytest.mark.parametrize("damage", ["not json", "wrong sha256", "wrong type"])
def test_a_corrupt_record_is_ignored_and_rewritten(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path], damage: str) -> None:
    root = unpacked(packed, tmp_path / "dir")
    model = root / "model" / "model.pt"
    carton_sync.load(root)
    [record] = (cache_dir / VERIFIED).glob("*.json")
    good = json.loads(record.read_text())
    if damage == "not json":
        record.write_bytes(b"{\x00 truncated")
    elif damage == "wrong sha256":
        record.write_text(json.dumps({**good, "sha256": "0" * 64}))
    else:
        record.write_text(json.dumps({**good, "ctime_ns": str(good["ctime_ns"])}))
    check_outputs(carton_sync.load(root).infer(INPUTS))
    assert len(hashes) == 2
    rewritten = record_of(cache_dir, model)
    assert rewritten is not None and {k: v for k, v in rewritten.items() if k != "time"} == {k: v for k, v in good.items() if k != "time"}
    carton_sync.load(root)
    assert len(hashes) == 2


def test_a_cache_that_cannot_take_records_still_loads(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path]) -> None:
    root = unpacked(packed, tmp_path / "dir")
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / VERIFIED).write_text("in the way")  # verified/ cannot be created (as in a read-only cache)
    for _ in range(2):
        check_outputs(carton_sync.load(root).infer(INPUTS))
    assert len(hashes) == 2  # hashed each time, nothing recorded


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs permissions that apply (not root)")
def test_a_read_only_cache_uses_its_records(packed: Path, tmp_path: Path, cache_dir: Path, hashes: list[Path]) -> None:
    root = unpacked(packed, tmp_path / "dir")
    carton_sync.load(root)
    modes = {p: p.stat().st_mode for p in [cache_dir, *cache_dir.rglob("*")] if p.is_dir()}
    for p in modes:
        p.chmod(0o555)
    try:
        check_outputs(carton_sync.load(root).infer(INPUTS))
        assert len(hashes) == 1
        (root / "model" / "model.pt").write_bytes(ORIGINAL_MODEL.read_bytes())  # rewritten: hashed, not recordable
        carton_sync.load(root)
        assert len(hashes) == 2
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_a_damaged_http_copy_is_still_downloaded_again(server: Server, packed: Path, cache_dir: Path, hashes: list[Path],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """The cached copy of a URL is recorded like any local file; damage through the file system
    changes the stamp, so it is hashed, found and downloaded again once."""
    url = server.add_file("memo/damaged.carton", packed)
    carton_sync.load(url)
    settle()
    carton_sync.load(url)
    [entry] = unpacked_dirs(cache_dir)
    model = entry / "model" / "model.pt"
    assert record_of(cache_dir, model) is not None
    carton_sync.load(url)
    assert len(hashes) <= 2  # the download's own load may be too fresh to record
    flip_byte(model)
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        check_outputs(carton_sync.load(url).infer(INPUTS))
    assert any("is damaged" in r.getMessage() for r in caplog.records)
    assert full_downloads(server, "memo/damaged.carton") == 2
    [entry] = unpacked_dirs(cache_dir)
    assert (entry / "model" / "model.pt").read_bytes() == ORIGINAL_MODEL.read_bytes()


def test_whole_second_timestamps_need_a_longer_margin() -> None:
    """Where a file system keeps whole seconds, two writes a second apart can show one mtime."""
    now = 1_700_000_010 * 10**9
    fine = FileStamp(1, 2, 3, now - 500_000_000 + 7, now - 500_000_000 + 7)
    coarse = FileStamp(1, 2, 3, now - 10**9, now - 10**9)
    assert model_files._settled(fine, now) and not model_files._settled(coarse, now)
    assert model_files._settled(dataclasses.replace(coarse, mtime_ns=now - 3 * 10**9, ctime_ns=now - 3 * 10**9), now)
    assert not model_files._settled(dataclasses.replace(fine, ctime_ns=now - 1000), now)  # a recent ctime counts too
