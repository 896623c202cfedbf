"""A server failing after the first range request: always E-RUNTIME-HTTP with its message, end to end.

The archive needs several requests: its tail (end records, MANIFEST, index.toml), then the head
(carton.toml comes first), a third for the tensor index's neighbour, two more for a self-test
tensor of 1 MiB, and a whole-file download for ``load``.  ``/fail-from/<k>/<mode>/`` makes request
number k and every later one fail: a TCP reset, a 500, or a short body.  None of that may come
out as a corrupt archive (``E-ZIP-*``), a raw exception, or a traceback on stderr.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as carton_sync

from .conftest import ORIGINAL_MODEL, Server

MODES = ["reset", "500", "short"]


@pytest.fixture(scope="module")
def multi_request_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multi")
    model_dir = out / "model"
    model_dir.mkdir()
    (model_dir / "model.pt").write_bytes(ORIGINAL_MODEL.read_bytes())
    (model_dir / "weights.bin").write_bytes(os.urandom(1 << 20))
    info = cf.CartonInfo(
        runner=cf.RunnerInfo("torchscript", "=2.13", 1),
        model_name="multi",
        self_tests=[cf.SelfTest(inputs={"a": np.arange(256 * 1024, dtype=np.float32), "b": np.array("s"), "c": np.array(["x"])})],
    )
    return cf.write(out / "multi.carton", info, model_dir=model_dir).path


def _check(err: pytest.ExceptionInfo[carton.CartonError], mode: str, capfd: pytest.CaptureFixture[str]) -> None:
    assert err.value.code == "E-RUNTIME-HTTP", (err.value.code, err.value.message)
    assert isinstance(err.value, carton.CartonRuntimeError)
    expected = {"reset": ("reset", "closed", "aborted"), "500": ("500",), "short": ("ended after", "IncompleteRead", "bytes")}[mode]
    assert any(word in err.value.message for word in expected), err.value.message
    assert "/fail-from/" in err.value.message
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Exception ignored" not in captured.err, captured.err


def test_the_request_sequence_is_what_these_tests_assume(server: Server, multi_request_archive: Path) -> None:
    url = server.add_file("seq/multi.carton", multi_request_archive)
    info = carton_sync.get_model_info(url)
    assert len(server.requests_for("seq/multi.carton")) == 3
    info.self_tests[0].inputs["a"].load()
    assert len(server.requests_for("seq/multi.carton")) == 5
    carton_sync.load(url)
    assert [r.range for r in server.requests_for("seq/multi.carton")][-1] is None  # the download is request 6


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [2, 3])
def test_get_model_info_fails_with_the_http_error(server: Server, multi_request_archive: Path, mode: str, k: int,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    server.add_file("multi.carton", multi_request_archive)
    with pytest.raises(carton.CartonError) as err:
        carton_sync.get_model_info(server.url(f"fail-from/{k}/{mode}/multi.carton"))
    _check(err, mode, capfd)


@pytest.mark.parametrize("mode", MODES)
def test_a_lazy_tensor_fails_with_the_http_error(server: Server, multi_request_archive: Path, mode: str,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    server.add_file("multi.carton", multi_request_archive)
    info = carton_sync.get_model_info(server.url(f"fail-from/4/{mode}/multi.carton"))
    with pytest.raises(carton.CartonError) as err:
        info.self_tests[0].inputs["a"].load()
    _check(err, mode, capfd)


@pytest.mark.parametrize("mode", MODES)
def test_an_async_lazy_tensor_fails_with_the_http_error(server: Server, multi_request_archive: Path, mode: str,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    server.add_file("multi.carton", multi_request_archive)

    async def main() -> None:
        info = await carton.get_model_info(server.url(f"fail-from/4/{mode}/multi.carton"))
        await info.self_tests[0].inputs["a"].get()

    with pytest.raises(carton.CartonError) as err:
        asyncio.run(main())
    _check(err, mode, capfd)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [2, 4])
def test_load_fails_with_the_http_error(server: Server, multi_request_archive: Path, mode: str, k: int,
                                        capfd: pytest.CaptureFixture[str], cache_dir: Path) -> None:
    server.add_file("multi.carton", multi_request_archive)
    with pytest.raises(carton.CartonError) as err:
        carton_sync.load(server.url(f"fail-from/{k}/{mode}/multi.carton"))
    _check(err, mode, capfd)
    assert not list((cache_dir / "files").glob(".tmp*")) if (cache_dir / "files").is_dir() else True
    assert not (cache_dir / "urls").is_dir() or not list((cache_dir / "urls").glob("*.json"))  # nothing recorded
