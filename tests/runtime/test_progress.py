"""Progress bars (downloads, LINKS fetches, packing) and the phase log line of a load.

Bars are forced on with CARTON_PROGRESS=1 (pytest's captured stderr is no TTY, so by default
nothing may be printed); what tqdm wrote is read back from the captured stderr.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import pytest
from tqdm import tqdm

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_format.cli import main as carton_main
from carton_runtime import progress
from carton_runtime.cache import Cache
from carton_runtime.links_fetch import LinkFetcher, download_archive

from .conftest import Server
from .fake_runner import EchoRunner

MiB = 1024 * 1024
#: tqdm's final state of a bar that reached its total: "100%|...| 2.00M/2.00M [...]".
FULL = re.compile(r"100%\|[^|]*\| (\S+)/(\S+) \[")


def _bar_states(err: str, desc: str) -> list[str]:
    """Every state tqdm drew of the bar named ``desc`` (tqdm redraws with carriage returns)."""
    return [part for part in re.split(r"[\r\n]", err) if part.startswith(desc)]


def _reached_total(err: str, desc: str) -> bool:
    states = _bar_states(err, desc)
    match = FULL.search(states[-1]) if states else None
    return match is not None and match.group(1) == match.group(2)


def _open_bars(desc: str) -> list[tqdm]:
    return [bar for bar in list(tqdm._instances) if str(bar.desc).startswith(desc)]


@pytest.fixture
def bars_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.ENV_PROGRESS, "1")


@pytest.fixture
def bars_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.ENV_PROGRESS, raising=False)


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An echo-runner archive holding 3 MiB of random weights."""
    out = tmp_path_factory.mktemp("progress")
    (out / "model").mkdir()
    (out / "model" / "weights.bin").write_bytes(os.urandom(3 * MiB))
    info = cf.CartonInfo(runner=cf.RunnerInfo("echo", "^1.4", 3))
    return cf.write(out / "echo-big.carton", info, model_dir=out / "model").path



# -- downloads ---------------------------------------------------------------------------------------


def test_archive_download_bar_reaches_the_total(bars_on: None, server: Server, big_archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.add_file("bar/echo-big.carton", big_archive)
    download_archive(Cache(), url)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert _reached_total(captured.err, "downloading echo-big.carton"), captured.err
    assert not _open_bars("downloading")


@pytest.mark.parametrize("route", ["", "enc/gzip/"])
def test_links_fetch_bar_reaches_the_total(
    bars_on: None, server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], route: str
) -> None:
    blob = os.urandom(2 * MiB)
    server.add("blobs/weights.bin", blob)
    fetcher = LinkFetcher(Cache(tmp_path / "c"), origin=server.base)
    path = fetcher.fetch("model/weights.bin", hashlib.sha256(blob).hexdigest(), [server.url(route + "blobs/weights.bin")])
    assert path.read_bytes() == blob
    err = capsys.readouterr().err
    assert _reached_total(err, "fetching model/weights.bin"), err  # encoded: the bytes received, of Content-Length


def test_no_bar_by_default_when_stderr_is_not_a_terminal(
    bars_default: None, server: Server, big_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.add_file("quiet/echo-big.carton", big_archive)
    download_archive(Cache(), url)
    blob = os.urandom(2 * MiB)
    server.add("quiet/weights.bin", blob)
    LinkFetcher(Cache(tmp_path / "c"), origin=server.base).fetch("model/w", hashlib.sha256(blob).hexdigest(), [server.url("quiet/weights.bin")])
    assert capsys.readouterr().err == ""


def test_small_transfers_and_forced_off_show_no_bar(
    bars_on: None, server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = os.urandom(200 * 1024)
    server.add("small/weights.bin", small)
    LinkFetcher(Cache(tmp_path / "a"), origin=server.base).fetch("model/w", hashlib.sha256(small).hexdigest(), [server.url("small/weights.bin")])
    big = os.urandom(2 * MiB)
    server.add("small/big.bin", big)
    with progress.forced(False):  # what --no-progress does, over CARTON_PROGRESS=1
        LinkFetcher(Cache(tmp_path / "b"), origin=server.base).fetch("model/b", hashlib.sha256(big).hexdigest(), [server.url("small/big.bin")])
    assert capsys.readouterr().err == ""


def test_a_failed_download_closes_its_bar(
    bars_on: None, server: Server, big_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = os.urandom(2 * MiB)
    server.add("fail/weights.bin", blob)
    fetcher = LinkFetcher(Cache(tmp_path / "c"), origin=server.base)
    with pytest.raises(carton.CartonError) as err:  # half the body, then EOF
        fetcher.fetch("model/weights.bin", hashlib.sha256(blob).hexdigest(), [server.url("fail-from/1/short/fail/weights.bin")])
    assert err.value.code in ("E-LINKS-FETCH", "E-MANIFEST-MISMATCH")  # the truncated body fails its hash
    # the error (holding the failed frames, and so the bar) is still alive: the bar was closed, not collected
    assert not _open_bars("fetching model/weights.bin")
    out = capsys.readouterr().err
    states = _bar_states(out, "fetching model/weights.bin")
    assert states and not FULL.search(states[-1]), out  # it was shown, and stopped short of the total
    url = server.add_file("fail/echo-big.carton", big_archive)
    with pytest.raises(carton.CartonError) as err:
        download_archive(Cache(tmp_path / "d"), server.url("fail-from/1/short/fail/echo-big.carton"))
    assert err.value.code == "E-RUNTIME-HTTP" and url
    assert not _open_bars("downloading")
    assert _bar_states(capsys.readouterr().err, "downloading echo-big.carton")


# -- packing -----------------------------------------------------------------------------------------


def test_write_reports_progress_per_chunk_with_the_total_up_front(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(10 * MiB))
    (model / "small.txt").write_bytes(b"x" * 1000)
    calls: list[tuple[int, int]] = []
    info = cf.CartonInfo(runner=cf.RunnerInfo("echo", "*", 1))
    cf.write(tmp_path / "a.carton", info, model_dir=model, progress=lambda done, total: calls.append((done, total)))
    total = calls[0][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert total >= 10 * MiB + 1000
    assert len(calls) > 4  # the 10 MiB file moves the bar several times (per chunk, not per member)
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:]))
    # linked files: hashed first (counted), then left out (the total drops by their size)
    sha = hashlib.sha256((model / "weights.bin").read_bytes()).hexdigest()
    linked: list[tuple[int, int]] = []
    cf.write(tmp_path / "b.carton", info, model_dir=model, linked_files={sha: ["https://example.com/w"]},
             progress=lambda done, total: linked.append((done, total)))
    first_total, last = linked[0][1], linked[-1]
    assert first_total == total + 10 * MiB + 1000 and last == (first_total - 10 * MiB, first_total - 10 * MiB)
    with pytest.raises(cf.CartonFormatError) as err:
        cf.write(tmp_path / "c.carton", info, model_dir=model, progress="yes")  # type: ignore[arg-type]
    assert err.value.code == "E-ARG-INVALID"


def test_carton_pack_shows_a_bar_reaching_100_percent(bars_on: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(3 * MiB))
    args = ["pack", str(model), "--runner", "noop", "--compat-version", "1", "-o", str(tmp_path / "out.carton")]
    assert carton_main(args) == 0
    captured = capsys.readouterr()
    assert _reached_total(captured.err, "packing out.carton"), captured.err
    assert "packing" not in captured.out
    assert carton_main([*args, "--overwrite", "--no-progress"]) == 0
    assert "packing" not in capsys.readouterr().err


# -- the phase log line ------------------------------------------------------------------------------

PHASES = re.compile(
    r"^loaded (?P<url>\S+) in (?P<total>[\d.]+) s \(open (?P<open>[\d.]+) s; fetch (?P<fetch>[\d.]+) s, (?P<mb>[\d.]+) MB at [\d.]+ MB/s; "
    r"verify (?P<verify>[\d.]+) s; runner load (?P<load>[\d.]+) s\)$"
)


def test_a_cold_load_logs_its_phases_with_times(
    bars_default: None, echo_runner: EchoRunner, server: Server, big_archive: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.add_file("log/echo-big.carton", big_archive)
    with caplog.at_level(logging.INFO, logger="carton_runtime.loader"):
        carton_sync.load(url)
    lines = [r.getMessage() for r in caplog.records if r.name == "carton_runtime.loader" and r.levelno == logging.INFO]
    match = PHASES.match(lines[-1]) if lines else None
    assert match is not None, lines
    assert match["url"] == url
    assert float(match["mb"]) == pytest.approx(big_archive.stat().st_size / 1e6, abs=0.06)
    phases = sum(float(match[k]) for k in ("open", "fetch", "verify", "load"))
    assert phases <= float(match["total"]) + 0.02  # own times: nested phases are not counted twice
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="carton_runtime.loader"):
        carton_sync.load(url)  # warm: from the cache, nothing fetched
    warm = [r.getMessage() for r in caplog.records if r.name == "carton_runtime.loader"]
    assert warm and re.match(r"^loaded \S+ in [\d.]+ s \(open [\d.]+ s; runner load [\d.]+ s\)$", warm[-1]), warm


def test_phases_nest_without_counting_twice() -> None:
    with progress.collect_phases() as phases:
        with progress.phase("runner load"), progress.phase("fetch") as fetch:
            fetch.count(5_000_000)
        with progress.phase("fetch") as fetch:
            fetch.count(5_000_000)
    assert list(phases.times) == ["runner load", "fetch"]
    assert phases.times["fetch"].nbytes == 10_000_000
    assert sum(t.seconds for t in phases.times.values()) <= phases.elapsed
    assert re.fullmatch(r"runner load [\d.]+ s; fetch [\d.]+ s, 10\.0 MB( at [\d.]+ MB/s)?", phases.summary())
    with progress.phase("fetch") as record:  # nothing collects: a throwaway record
        record.count(1)
    assert phases.times["fetch"].nbytes == 10_000_000
