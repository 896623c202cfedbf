"""``carton cache ls|info|clear|prune`` on a real cache filled by loads (local, http, LINKS)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import carton_runtime.sync as carton_sync
from carton_format.cli import main as carton_main
from carton_runtime.cache import Cache
from carton_runtime.cli import parse_size

from .conftest import ORIGINAL_MODEL, Server, pack_original, sha256_file
from .test_api import INPUTS, check_outputs

MODEL_SHA = sha256_file(ORIGINAL_MODEL)
ROOT = Path(__file__).resolve().parents[2]
CARTON = ROOT / ".venv" / "bin" / "carton"


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert carton_main(["cache", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def filled(server: Server, packed: Path, tmp_path: Path) -> dict[str, str]:
    """A cache holding a LINKS-fetched model file and a remote archive (with its URL record)."""
    tag = tmp_path.name
    links_url = server.add_file(f"cachecli/{tag}/model.pt", ORIGINAL_MODEL)
    linked = pack_original(tmp_path / "linked.carton", linked_files={MODEL_SHA: [links_url]})
    check_outputs(carton_sync.load(linked).infer(INPUTS))  # LINKS fetch: files/<MODEL_SHA> with its source URL
    check_outputs(carton_sync.load(packed).infer(INPUTS))  # a local load: a cache hit
    archive_url = server.add_file(f"cachecli/{tag}/doubler.carton", packed)
    check_outputs(carton_sync.load(archive_url).infer(INPUTS))  # the archive, stored unpacked and recorded under urls/
    [record] = Cache().url_records()
    return {"links_url": links_url, "archive_url": archive_url, "archive_sha": record["sha256"]}  # the unpacked entry's key


def age(cache_dir: Path, sha: str, days: float) -> None:
    t = time.time() - days * 86400
    os.utime(cache_dir / "files" / sha, (t, t))


def test_ls_and_info(filled: dict[str, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = cli_json(capsys, "ls")
    assert listing["root"] == str(cache_dir)
    by_sha = {e["sha256"]: e for e in listing["entries"]}
    assert set(by_sha) == {MODEL_SHA, filled["archive_sha"]}
    assert by_sha[MODEL_SHA]["url"] == filled["links_url"]
    assert by_sha[MODEL_SHA]["file_size"] == ORIGINAL_MODEL.stat().st_size
    assert by_sha[filled["archive_sha"]]["urls"] == [filled["archive_url"]]
    assert all(e["last_used"].endswith("Z") and time.time() - e["last_used_unix"] < 600 for e in listing["entries"])

    info = cli_json(capsys, "info")
    assert info["root"] == str(cache_dir) and info["exists"] is True
    assert info["entries"] == 2 and info["url_records"] == 1
    assert info["urls"][0]["url"] == filled["archive_url"] and info["urls"][0]["sha256"] == filled["archive_sha"]
    assert info["total_bytes"] == Cache(cache_dir).size_bytes() >= info["entry_bytes"] > ORIGINAL_MODEL.stat().st_size

    assert carton_main(["cache", "ls"]) == 0
    text = capsys.readouterr().out
    assert MODEL_SHA in text and filled["links_url"] in text and "2 entries" in text
    assert carton_main(["cache", "info"]) == 0
    text = capsys.readouterr().out
    assert str(cache_dir) in text and "entries:     2" in text and "URL records: 1" in text


def test_cache_hits_record_last_use(filled: dict[str, str], packed: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for sha in (MODEL_SHA, filled["archive_sha"]):
        age(cache_dir, sha, 30)
    before = {e["sha256"]: e["last_used_unix"] for e in cli_json(capsys, "ls")["entries"]}
    assert all(time.time() - t > 29 * 86400 for t in before.values())
    carton_sync.load(packed)  # a hit on the model file only
    after = {e["sha256"]: e["last_used_unix"] for e in cli_json(capsys, "ls")["entries"]}
    assert time.time() - after[MODEL_SHA] < 600 and after[filled["archive_sha"]] == before[filled["archive_sha"]]
    carton_sync.load(filled["archive_url"])  # url_lookup: a hit on the archive
    after = {e["sha256"]: e["last_used_unix"] for e in cli_json(capsys, "ls")["entries"]}
    assert time.time() - after[filled["archive_sha"]] < 600


def test_prune_older_than(filled: dict[str, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    age(cache_dir, filled["archive_sha"], 10)
    report = cli_json(capsys, "prune", "--older-than", "5")
    assert [e["sha256"] for e in report["removed"]] == [filled["archive_sha"]]
    assert report["freed_bytes"] == report["removed"][0]["size"] > 0 and report["remaining_entries"] == 1
    assert not (cache_dir / "files" / filled["archive_sha"]).exists()
    assert cli_json(capsys, "info")["url_records"] == 0  # its URL record went with it
    assert cli_json(capsys, "prune", "--older-than", "5")["removed"] == []
    check_outputs(carton_sync.load(filled["archive_url"]).infer(INPUTS))  # downloaded again
    assert len(cli_json(capsys, "ls")["entries"]) == 2


def test_prune_max_size_least_recently_used_first(filled: dict[str, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    age(cache_dir, MODEL_SHA, 2)
    age(cache_dir, filled["archive_sha"], 1)  # used more recently
    entries = {e["sha256"]: e for e in cli_json(capsys, "ls")["entries"]}
    total = Cache(cache_dir).size_bytes()
    limit = total - entries[MODEL_SHA]["size"] // 2  # removing the older one is enough
    assert carton_main(["cache", "prune", "--max-size", str(limit)]) == 0
    text = capsys.readouterr().out
    assert f"removed {MODEL_SHA}" in text and "freed" in text
    assert [e["sha256"] for e in cli_json(capsys, "ls")["entries"]] == [filled["archive_sha"]]
    report = cli_json(capsys, "prune", "--max-size", "0")
    assert [e["sha256"] for e in report["removed"]] == [filled["archive_sha"]] and report["remaining_entries"] == 0


def test_prune_never_removes_an_entry_another_process_holds(filled: dict[str, str], cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys; from carton_runtime.cache import Cache\n"
            f"with Cache({str(cache_dir)!r}).lock({MODEL_SHA!r}):\n"
            "    print('held', flush=True); sys.stdin.read()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        report = cli_json(capsys, "prune", "--max-size", "0")
        assert report["skipped_locked"] == [MODEL_SHA]
        assert [e["sha256"] for e in report["removed"]] == [filled["archive_sha"]]
        assert (cache_dir / "files" / MODEL_SHA / "file").is_file()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert [e["sha256"] for e in cli_json(capsys, "prune", "--max-size", "0")["removed"]] == [MODEL_SHA]


def test_clear_prints_what_it_freed(filled: dict[str, str], packed: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    total = Cache(cache_dir).size_bytes()
    report = cli_json(capsys, "clear")
    assert report["entries_removed"] == 2 and report["url_records_removed"] == 1
    assert 0 < report["freed_bytes"] <= total
    assert cli_json(capsys, "ls")["entries"] == [] and cli_json(capsys, "info")["url_records"] == 0
    check_outputs(carton_sync.load(packed).infer(INPUTS))
    assert carton_main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("freed ")


def test_usage_and_failure_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["cache"], ["cache", "nope"], ["cache", "prune", "--max-size", "5X"], ["cache", "prune", "--older-than", "-1"]):
        with pytest.raises(SystemExit) as exc:
            carton_main(argv)
        assert exc.value.code == 2, argv
    assert carton_main(["cache", "prune"]) == 2  # nothing to prune by
    for sub in ("ls", "info", "clear", "prune"):
        with pytest.raises(SystemExit) as exc:
            carton_main(["cache", sub, "--help"])
        assert exc.value.code == 0
        assert "--json" in capsys.readouterr().out
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("CARTON_CACHE_DIR", str(not_a_dir))
    assert carton_main(["cache", "ls"]) == 1
    assert "E-RUNTIME-CACHE" in capsys.readouterr().err
    assert carton_main(["cache", "info", "--cache-dir", str(tmp_path / "fresh"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exists"] is False


def test_parse_size() -> None:
    assert parse_size("100") == 100
    assert parse_size("1K") == parse_size("1kb") == parse_size("1KiB") == 1024
    assert parse_size("1.5G") == 3 * 1024**3 // 2
    for bad in ("", "-1", "1X", "iB", "M"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


@pytest.mark.skipif(not CARTON.exists(), reason="needs the installed carton script")
def test_subprocess_respects_carton_cache_dir(packed: Path, cache_dir: Path) -> None:
    carton_sync.load(packed)
    env = {**os.environ, "CARTON_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([str(CARTON), "cache", "ls", "--json"], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert [e["sha256"] for e in json.loads(out.stdout)["entries"]] == [MODEL_SHA]
    out = subprocess.run([str(CARTON), "cache", "clear"], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert "1 entries" in out.stdout and not (cache_dir / "files" / MODEL_SHA).exists()
