"""Process isolation: real worker processes, real TorchScript models, real crashes.

The worker runners live in tests/runtime/isolation_runners.py (numpy only, importable in a
worker); torch models come from the conftest fixtures.  Processes are looked up in /proc
(no psutil), shared memory in /proc/self/maps and /dev/shm.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import carton_format as cf
import carton_runtime as carton
import carton_runtime.sync as cs
from carton_runtime.isolation import WorkerModel, load_in_worker, loading, protocol
from carton_runtime.model_files import ArchiveModelFiles

from .conftest import ORIGINAL_MODEL, original_self_test, pack_original
from .isolation_runners import CrashyRunner, EchoRunner

ROOT = Path(__file__).resolve().parents[2]
ECHO = "tests.runtime.isolation_runners:EchoRunner"
CRASHY = "tests.runtime.isolation_runners:CrashyRunner"
THREADS = "tests.runtime.isolation_runners:ThreadsRunner"


# -- helpers ------------------------------------------------------------------------------------------


def _children() -> set[int]:
    """Live (not zombie) child processes of this process, from /proc."""
    me = os.getpid()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me and fields[0] != "Z":
            out.add(int(entry))
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.05)
    return False


def _memfd_maps() -> int:
    """Mappings of tensor regions in this process."""
    return sum(1 for line in Path("/proc/self/maps").read_text().splitlines() if "memfd:carton-tensor" in line)


def _shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.fixture
def echo_dir(tmp_path: Path) -> Path:
    d = tmp_path / "echo-model"
    d.mkdir()
    (d / "weights.bin").write_bytes(bytes([7, 8, 9]))
    return d


@pytest.fixture
def echo_worker(echo_dir: Path) -> Iterator[WorkerModel]:
    model = load_in_worker(ECHO, echo_dir, device=None, opts={"k": "v"}, sys_path=[str(ROOT)])
    yield model
    model.close()


@pytest.fixture
def crashy_archive(tmp_path: Path) -> Iterator[Path]:
    """An archive for the crashy runner (registered here, as a third-party runner would be)."""
    runner = CrashyRunner()
    carton.register_runner(runner)
    model_dir = tmp_path / "crashy-model"
    model_dir.mkdir()
    (model_dir / "nothing.txt").write_text("x")
    info = cf.CartonInfo(runner=cf.RunnerInfo("iso-crashy", "^1", 1, None))
    yield cf.write(tmp_path / "crashy.carton", info, model_dir=model_dir).path
    carton.unregister_runner(runner)


@pytest.fixture
def echo_archive(tmp_path: Path, echo_dir: Path) -> Iterator[Path]:
    runner = EchoRunner()
    carton.register_runner(runner)
    info = cf.CartonInfo(runner=cf.RunnerInfo("iso-echo", "^1", 1, {"k": "v"}))
    yield cf.write(tmp_path / "echo.carton", info, model_dir=echo_dir).path
    carton.unregister_runner(runner)


@pytest.fixture(scope="module")
def doubler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_original(tmp_path_factory.mktemp("iso") / "doubler.carton")


# -- the wire: values in and out ------------------------------------------------------------------------


def test_values_round_trip_exactly(echo_worker: WorkerModel) -> None:
    rng = np.random.default_rng(0)
    inputs = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f16": np.arange(5, dtype=np.float16),
        "i64": np.arange(-3, 3, dtype=np.int64),
        "u8": np.arange(256, dtype=np.uint8),
        "b": np.array([True, False, True]),
        "c64": (np.arange(3) + 1j).astype(np.complex64),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 7), dtype=np.float32),
        "big_endian": np.arange(4, dtype=">i4"),
        "strided": np.arange(20, dtype=np.int32)[::3],
        "s0": np.array("héllo 📦"),
        "s1": np.array(["a", "bc", ""]),
        "obj": np.array(["x", "yz"], dtype=object),
        "four_mb": rng.standard_normal(1024 * 1024).astype(np.float32),
    }
    out = echo_worker.infer(inputs)
    for name, value in inputs.items():
        expected = np.asarray(value).astype(str) if value.dtype == object else value
        assert out[name].dtype == expected.dtype, name
        assert out[name].shape == expected.shape, name
        assert np.array_equal(out[name], expected), name
    assert out["pid"] == echo_worker.pid != os.getpid()
    assert json.loads(str(out["opts"])) == {"k": "v"}
    assert out["weights"].tolist() == [7, 8, 9]
    out["four_mb"][0] = 1.0  # outputs are writeable, as in process


def test_64_mb_and_region_reuse(echo_worker: WorkerModel) -> None:
    x = np.ones(16 * 1024 * 1024, dtype=np.float32)  # 64 MB
    before = _memfd_maps()
    for i in range(6):
        out = echo_worker.infer({"x": x * i})
        assert out["x"][0] == i and out["x"][-1] == i
        del out
    # one input region and at most a few output regions in use: reused, not one per call
    assert _memfd_maps() - before <= 4


def test_input_arrays_reach_the_worker_without_a_copy(echo_worker: WorkerModel) -> None:
    """An ``input_array`` is the worker's memory too (the model writing into its input shows
    here), also a slice of one at an offset; any other array is copied (the caller's stays)."""
    shared = echo_worker.input_array((1 << 20,), np.dtype(np.float32))
    shared[:] = 1.0
    out = echo_worker.infer({"poke": shared})
    assert shared[0] == 42 and out["poke"][0] == 42 and out["poke"][1] == 1.0
    part = shared[4096:]  # at an offset in the region
    part[:] = 2.0
    out = echo_worker.infer({"poke": part})
    assert part[0] == 42 and shared[4096] == 42 and out["poke"][-1] == 2.0
    plain = np.ones(1 << 20, dtype=np.float32)
    out = echo_worker.infer({"poke": plain})
    assert plain[0] == 1.0 and out["poke"][0] == 42  # copied into the pool's region: the caller's array is untouched
    strided = shared[::2]  # not contiguous: copied
    before = float(strided[0])
    echo_worker.infer({"poke": strided})
    assert strided[0] == before


def test_an_input_array_returns_to_the_pool_when_dropped(echo_worker: WorkerModel) -> None:
    first = echo_worker.input_array((1 << 18,), np.dtype(np.int32))
    address = first.__array_interface__["data"][0]
    first[:] = 5
    assert int(echo_worker.infer({"x": first})["x"][-1]) == 5
    del first
    gc.collect()
    second = echo_worker.input_array((1 << 18,), np.dtype(np.int32))  # the same region, lent again
    assert second.__array_interface__["data"][0] == address
    kept = echo_worker.input_array((1 << 18,), np.dtype(np.int32))  # while ``second`` lives: another one
    assert kept.__array_interface__["data"][0] != address


def test_input_array_through_the_api(echo_archive: Path) -> None:
    with cs.load(echo_archive, isolation="process") as model:
        arr = model.input_array((3, 70_000), "float64")
        assert arr.shape == (3, 70_000) and arr.dtype == np.float64
        arr[:] = 7.0
        assert model.infer({"poke": arr})["poke"][1, 0] == 7.0 and arr[0, 0] == 42
        for bad in [(-1,), ("3",), 2.5, (True,)]:
            with pytest.raises(carton.CartonRuntimeError) as err:
                model.input_array(bad)
            assert err.value.code == "E-RUNTIME-ARG" and err.value.name == "shape"
        for bad_dtype in ["U3", object, "no-such-dtype"]:
            with pytest.raises(carton.CartonRuntimeError) as err:
                model.input_array((2,), bad_dtype)
            assert err.value.code == "E-RUNTIME-ARG" and err.value.name == "dtype"
        with pytest.raises(carton.CartonRuntimeError) as err:
            model.input_array((1 << 30, 1 << 30))
        assert err.value.code == "E-RUNTIME-ARG"
    assert arr[1, 0] == 7.0  # still readable after the model (and its worker) are gone
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.input_array((2,))
    assert err.value.code == "E-RUNTIME-CLOSED"
    with cs.load(echo_archive, isolation="inprocess") as model:
        plain = model.input_array(4, "int16")
        assert type(plain) is np.ndarray and plain.shape == (4,) and plain.dtype == np.int16


def test_input_array_through_the_async_api(echo_archive: Path) -> None:
    import asyncio

    async def main() -> tuple[float, float]:
        model = await carton.load(str(echo_archive), isolation="process")
        try:
            arr = model.input_array((100_000,), "float32")  # not awaitable: made at once
            arr[:] = 3.0
            out = await model.infer({"poke": arr})
            return float(arr[0]), float(out["poke"][1])
        finally:
            model.close()

    assert asyncio.run(main()) == (42.0, 3.0)  # the worker wrote into the caller's array: no copy


def test_held_outputs_are_never_overwritten_by_later_calls(echo_worker: WorkerModel) -> None:
    held = [echo_worker.infer({"x": np.full(1 << 20, i, dtype=np.int32)})["x"] for i in range(5)]
    view = held[0][10:20]  # a view keeps the region busy too
    del held[0]
    gc.collect()
    for i in range(5, 10):
        echo_worker.infer({"x": np.full(1 << 20, i, dtype=np.int32)})
    assert view.tolist() == [0] * 10
    assert [int(h[0]) for h in held] == [1, 2, 3, 4] and all(int(h[-1]) == int(h[0]) for h in held)


def test_concurrent_calls_from_threads_get_their_own_results(echo_worker: WorkerModel) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def call(i: int) -> bool:
        x = np.full(100_000, i, dtype=np.float64)  # 800 KB: through regions
        return bool((echo_worker.infer({"x": x})["x"] == i).all())

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(call, range(40)))


def test_outputs_outlive_the_model_and_nothing_is_left(echo_dir: Path) -> None:
    gc.collect()  # what earlier tests left in reference cycles (arrays in tracebacks) goes first
    shm_before = _shm()
    maps_before = _memfd_maps()
    model = load_in_worker(ECHO, echo_dir, device="cpu", opts={}, sys_path=[str(ROOT)])
    out = model.infer({"x": np.arange(1024 * 1024, dtype=np.float64)})
    pid = model.pid
    model.close()
    assert _wait_gone(pid)
    assert out["x"][-1] == 1024 * 1024 - 1  # still readable: the mapping lives while the array does
    del out
    gc.collect()
    assert _memfd_maps() == maps_before
    assert _shm() == shm_before
    assert pid not in _children()


def test_bad_inputs_are_coded_errors(echo_worker: WorkerModel) -> None:
    with pytest.raises(carton.CartonRuntimeError) as err:
        echo_worker.infer({"x": [1, 2, 3]})
    assert err.value.code == "E-RUNTIME-INPUT" and "x" in err.value.message
    with pytest.raises(carton.CartonRuntimeError) as err:
        echo_worker.infer({"x": np.array([1, object()], dtype=object)})
    assert err.value.code == "E-RUNTIME-INPUT"
    with pytest.raises(carton.CartonRuntimeError) as err:
        echo_worker.infer("not a dict")  # type: ignore[arg-type]
    assert err.value.code == "E-RUNTIME-INPUT"
    assert echo_worker.infer({"y": np.ones(2)})["y"].tolist() == [1.0, 1.0]  # still usable


def test_a_python_exception_is_e_runtime_infer_and_the_model_stays_usable(echo_worker: WorkerModel) -> None:
    with pytest.raises(carton.CartonRuntimeError) as err:
        echo_worker.infer({"boom": np.ones(1)})
    assert err.value.code == "E-RUNTIME-INFER"
    assert "KeyError" in err.value.message and "boom" in err.value.message
    assert echo_worker.alive
    assert echo_worker.infer({"x": np.ones(1)})["x"].tolist() == [1.0]


# -- start-up and the handshake -------------------------------------------------------------------------


@pytest.mark.slow
def test_handshake_checks_the_models_requirement(echo_dir: Path) -> None:
    before = _children()
    for require in (
        cf.RunnerInfo("iso-echo", ">=2", 1, None),
        cf.RunnerInfo("iso-echo", "^1", 9, None),
        cf.RunnerInfo("torchscript", "*", None, None),
    ):
        with pytest.raises(carton.CartonRuntimeError) as err:
            load_in_worker(ECHO, echo_dir, device=None, opts={}, sys_path=[str(ROOT)], require=require)
        assert err.value.code == "E-RUNTIME-NO-RUNNER"
        assert "1.0.0" in err.value.message or "iso-echo" in err.value.message
    model = load_in_worker(ECHO, echo_dir, device=None, opts={}, sys_path=[str(ROOT)], require=cf.RunnerInfo("iso-echo", "^1.0", 1, None))
    assert (model.runner_name, model.framework_version, model.runner_compat_version) == ("iso-echo", "1.0.0", 1)
    model.close()
    time.sleep(0.1)
    assert _children() <= before


def test_start_up_failures_are_coded(echo_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(carton.CartonRuntimeError) as err:
        load_in_worker("tests.runtime.no_such_module:Runner", echo_dir, device=None, opts={}, sys_path=[str(ROOT)])
    assert err.value.code == "E-RUNTIME-RUNNER" and "no_such_module" in err.value.message
    with pytest.raises(carton.CartonRuntimeError) as err:
        load_in_worker(ECHO, echo_dir, device=None, opts={}, python=str(tmp_path / "no-python"))
    assert err.value.code == "E-RUNTIME-RUNNER"
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'this interpreter is broken' >&2\nexit 9\n")
    fake.chmod(0o755)
    with pytest.raises(carton.CartonRuntimeError) as err:
        load_in_worker(ECHO, echo_dir, device=None, opts={}, python=str(fake))
    assert err.value.code == "E-RUNTIME-RUNNER-DIED"
    assert "status 9" in err.value.message and "this interpreter is broken" in err.value.message
    bare = tmp_path / "bare-venv"  # an interpreter without carton's dependencies: one line saying what is missing
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(carton.CartonRuntimeError) as err:
        load_in_worker(ECHO, echo_dir, device=None, opts={}, python=str(bare / "bin" / "python"), sys_path=[str(ROOT)])
    assert err.value.code == "E-RUNTIME-ENV" and "cannot import" in err.value.message, err.value.message
    assert "Traceback" not in err.value.message
    with pytest.raises(carton.CartonRuntimeError) as err:
        load_in_worker("no colon", echo_dir, device=None, opts={})
    assert err.value.code == "E-RUNTIME-ARG"
    with pytest.raises(carton.CartonRuntimeError) as err:
        load_in_worker(ECHO, echo_dir, device=None, opts={}, call_timeout_s=-1)
    assert err.value.code == "E-RUNTIME-ARG"


def test_a_factory_reference_works(echo_dir: Path) -> None:
    model = load_in_worker("tests.runtime.isolation_runners:make_echo", echo_dir, device=None, opts={}, sys_path=[str(ROOT)])
    try:
        assert model.infer({"a": np.zeros(1)})["a"].tolist() == [0.0]
    finally:
        model.close()


# -- crashes, hangs, leaks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status"),
    [("segfault", "SIGSEGV"), ("exit", "status 3"), ("abort", "SIGABRT"), ("leak", "SIGKILL")],
)
def test_a_dying_model_is_runner_died_and_the_host_loads_again(crashy_archive: Path, mode: str, status: str) -> None:
    model = cs.load(crashy_archive)  # the runner forces process isolation
    worker = model._runner_model
    assert isinstance(worker, WorkerModel)
    assert model.infer({"mode": np.array("fine")})["ok"] == "fine"
    scratch = Path(str(model.infer({"mode": np.array("scratch")})["ok"]))
    assert scratch.is_dir() and scratch.parent.name.startswith("carton-worker-")  # the worker's own temp dir
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.infer({"mode": np.array(mode)})
    assert err.value.code == "E-RUNTIME-RUNNER-DIED"
    assert not scratch.parent.exists()  # what the dead worker left in its temp dir went with it
    assert status in err.value.message and str(worker.pid) in err.value.message
    if mode == "segfault":
        assert "Fatal Python error" in err.value.message  # the worker's last words (faulthandler)
    assert not _running(worker.pid)
    with pytest.raises(carton.CartonRuntimeError) as again:
        model.infer({"mode": np.array("fine")})
    assert again.value.code == "E-RUNTIME-RUNNER-DIED" and "gone" in again.value.message
    model.close()
    fresh = cs.load(crashy_archive)  # the host is fine and loads the model again
    assert fresh.infer({"mode": np.array("fine")})["ok"] == "fine"
    fresh.close()


def test_a_hanging_model_times_out_and_its_worker_is_killed(crashy_archive: Path) -> None:
    model = cs.load(crashy_archive, call_timeout_s=0.5)
    pid = model._runner_model.pid
    started = time.monotonic()
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.infer({"mode": np.array("hang")})
    assert time.monotonic() - started < 5
    assert err.value.code == "E-RUNTIME-TIMEOUT" and "0.5 s" in err.value.message
    assert _wait_gone(pid, 5)
    with pytest.raises(carton.CartonRuntimeError) as again:
        model.infer({"mode": np.array("fine")})
    assert again.value.code == "E-RUNTIME-RUNNER-DIED"
    model.close()


def test_a_raising_model_is_e_runtime_infer_with_its_message(crashy_archive: Path) -> None:
    with cs.load(crashy_archive) as model:
        with pytest.raises(carton.CartonRuntimeError) as err:
            model.infer({"mode": np.array("raise")})
        assert err.value.code == "E-RUNTIME-INFER" and "ValueError: asked to fail" in err.value.message
        assert model.infer({"mode": np.array("fine")})["ok"] == "fine"


def test_inprocess_is_refused_for_a_runner_that_runs_only_out_of_process(crashy_archive: Path) -> None:
    with pytest.raises(carton.CartonRuntimeError) as err:
        cs.load(crashy_archive, isolation="inprocess")
    assert err.value.code == "E-RUNTIME-ARG" and "out of process" in err.value.message


# -- shutdown: close, garbage collection, host exit ---------------------------------------------------------


def test_close_and_garbage_collection_stop_the_worker(echo_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "closed"
    model = load_in_worker(ECHO, echo_dir, device=None, opts={"close_marker": str(marker)}, sys_path=[str(ROOT)])
    pid = model.pid
    model.close()
    assert marker.read_text() == "closed"  # the runner model's close ran in the worker
    assert _wait_gone(pid) and pid not in _children()
    model.close()  # twice is fine
    with pytest.raises(carton.CartonRuntimeError) as err:
        model.infer({"x": np.ones(1)})
    assert err.value.code == "E-RUNTIME-CLOSED"

    model = load_in_worker(ECHO, echo_dir, device=None, opts={}, sys_path=[str(ROOT)])
    pid = model.pid
    del model
    gc.collect()
    assert _wait_gone(pid) and pid not in _children()


HOST_SCRIPT = """
import os, signal, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from carton_runtime.isolation import load_in_worker
model = load_in_worker({ref!r}, {model_dir!r}, device=None, opts={{}}, sys_path=[{root!r}])
model.infer({{"x": np.ones(1 << 20)}})
print(model.pid, flush=True)
if sys.argv[1] == "hang-then-killed":
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exit", "hang-then-killed"])
def test_no_orphan_when_the_host_exits_or_is_killed(echo_dir: Path, how: str) -> None:
    script = HOST_SCRIPT.format(root=str(ROOT), ref=ECHO, model_dir=str(echo_dir))
    host = subprocess.Popen([sys.executable, "-c", script, how], stdout=subprocess.PIPE, text=True)
    assert host.stdout is not None
    worker_pid = int(host.stdout.readline())
    assert _running(worker_pid)
    if how == "hang-then-killed":
        host.send_signal(signal.SIGKILL)
    host.wait(20)
    assert _wait_gone(worker_pid, 10), f"worker {worker_pid} outlived its host ({how})"


def test_dev_shm_is_untouched(echo_worker: WorkerModel) -> None:
    before = _shm()
    for _ in range(3):
        echo_worker.infer({"x": np.ones(4 << 20, dtype=np.uint8)})
    assert _shm() == before


# -- the loader, the APIs, the config, the CLI --------------------------------------------------------------


def test_torchscript_out_of_process_gives_the_same_results(doubler: Path) -> None:
    st = original_self_test()
    with cs.load(doubler) as inproc, cs.load(doubler, isolation="process") as outproc:
        assert isinstance(outproc._runner_model, WorkerModel)
        assert outproc._runner_model.pid != os.getpid()
        expected = inproc.infer(st.inputs)
        got = outproc.infer(st.inputs)
        assert set(got) == set(expected)
        for name in expected:
            assert got[name].dtype == expected[name].dtype and np.array_equal(got[name], expected[name]), name
        assert [r.passed for r in outproc.run_self_tests()] == [True]
        handle = outproc.seal(st.inputs)
        assert np.array_equal(outproc.infer_with_handle(handle)["doubled"], expected["doubled"])
        with pytest.raises(carton.CartonRuntimeError) as err:
            outproc.infer({"a": np.ones(3, np.float64), "b": np.array("x"), "c": np.array(["y"])})
        assert err.value.code == "E-RUNTIME-INPUT"  # checked against the specs in the host, as in process


def test_time_limits_in_process_are_refused_not_ignored(doubler: Path) -> None:
    """Nothing can stop a call in this process: a time limit there would be a silent promise."""
    for limits in ({"call_timeout_s": 1.0}, {"load_timeout_s": 30.0}, {"call_timeout_s": 1.0, "load_timeout_s": 30.0}):
        for isolation in ("inprocess", None):  # None: the default, in process here
            with pytest.raises(carton.CartonRuntimeError) as err:
                cs.load(doubler, isolation=isolation, **limits)
            assert err.value.code == "E-RUNTIME-ARG" and "isolation='process'" in err.value.message
            assert err.value.name == next(iter(limits))
    with cs.load(doubler, isolation="process", call_timeout_s=30.0, load_timeout_s=60.0) as model:
        assert [r.passed for r in model.run_self_tests()] == [True]


def test_torchscript_errors_match_in_process(tmp_path: Path, models: dict[str, Path]) -> None:
    archive = Path(cs.pack(models["fails"], "torchscript", "=2.13", output_path=tmp_path / "fails.carton", check_self_tests=False))
    messages = []
    for isolation in ("inprocess", "process"):
        with cs.load(archive, isolation=isolation) as model:
            with pytest.raises(carton.CartonRuntimeError) as err:
                model.infer({"x": np.array([-1.0], np.float32)})
            assert err.value.code == "E-RUNTIME-INFER"
            messages.append(err.value.message)
            assert model.infer({"x": np.array([1.0], np.float32)})["y"].tolist() == [2.0]
    assert messages[0] == messages[1] == "the model raised ValueError: negative input"


def test_the_async_api_loads_out_of_process(doubler: Path) -> None:
    st = original_self_test()

    async def main() -> tuple[int, dict[str, np.ndarray]]:
        model = await carton.load(str(doubler), isolation="process")
        try:
            return model.sync._runner_model.pid, await model.infer(st.inputs)
        finally:
            model.close()

    pid, out = asyncio.run(main())
    assert pid != os.getpid()
    assert np.array_equal(out["doubled"], st.expected_out["doubled"])
    assert _wait_gone(pid)


@pytest.mark.slow
def test_thread_pools_are_per_model_out_of_process(tmp_path: Path) -> None:
    model_dir = tmp_path / "ts"
    model_dir.mkdir()
    (model_dir / "model.pt").write_bytes(ORIGINAL_MODEL.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "process-wide pool already set" warning
        one = load_in_worker(THREADS, model_dir, device="cpu", opts={"num_threads": 1, "num_interop_threads": 1}, sys_path=[str(ROOT)])
        two = load_in_worker(THREADS, model_dir, device="cpu", opts={"num_threads": 2, "num_interop_threads": 3}, sys_path=[str(ROOT)])
    try:
        a = np.array([1.0], np.float32)
        inputs = {"a": a, "b": np.array("s"), "c": np.array(["t"])}
        out1, out2 = one.infer(inputs), two.infer(inputs)
        assert (int(out1["num_threads"]), int(out1["num_interop_threads"])) == (1, 1)
        assert (int(out2["num_threads"]), int(out2["num_interop_threads"])) == (2, 3)
        assert np.array_equal(out1["doubled"], 2 * a)
    finally:
        one.close()
        two.close()


def test_config_default_and_env_var(echo_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with cs.load(echo_archive) as model:
        assert int(model.infer({})["pid"]) == os.getpid()
    monkeypatch.setenv("CARTON_ISOLATION", "process")
    with cs.load(echo_archive) as model:
        assert int(model.infer({})["pid"]) != os.getpid()
    with cs.load(echo_archive, isolation="inprocess") as model:  # the argument wins
        assert int(model.infer({})["pid"]) == os.getpid()
    monkeypatch.delenv("CARTON_ISOLATION")
    config = tmp_path / "config.toml"
    config.write_text('isolation = "process"\n')
    monkeypatch.setenv("CARTON_CONFIG_PATH", str(config))
    with cs.load(echo_archive) as model:
        assert int(model.infer({})["pid"]) != os.getpid()
    config.write_text('isolation = "elsewhere"\n')
    with pytest.raises(carton.CartonRuntimeError) as err:
        cs.load(echo_archive)
    assert err.value.code == "E-RUNTIME-ARG" and "elsewhere" in err.value.message
    for bad in ("sideways", 3):
        with pytest.raises(carton.CartonRuntimeError) as err:
            cs.load(echo_archive, isolation=bad)  # type: ignore[arg-type]
        assert err.value.code == "E-RUNTIME-ARG"
    with pytest.raises(carton.CartonRuntimeError) as err:
        cs.load(echo_archive, isolation="process", call_timeout_s="soon")  # type: ignore[arg-type]
    assert err.value.code == "E-RUNTIME-ARG"


@pytest.mark.slow
def test_cli_run_and_selftest_out_of_process(doubler: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carton_format.cli import main as carton_main

    assert carton_main(["selftest", "--isolation", "process", str(doubler)]) == 0
    assert "1/1 self tests passed" in capsys.readouterr().out
    rc = carton_main(["run", "--isolation", "process", "--json", str(doubler), "--input", "a=[1.0, 2.0]", "--input", "b=hi", "--input", 'c=["x"]'])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["doubled"]["value"] == [2.0, 4.0]
    with pytest.raises(SystemExit):
        carton_main(["run", "--isolation", "sideways", str(doubler)])


def test_cli_call_timeout_stops_a_hanging_model(crashy_archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carton_format.cli import main as carton_main

    rc = carton_main(["run", "--isolation", "process", "--call-timeout", "0.5", "--json", str(crashy_archive), "--input", "mode=hang"])
    assert rc == 1
    out = capsys.readouterr()
    assert "E-RUNTIME-TIMEOUT" in out.err
    reply = json.loads(out.out)
    assert reply["ok"] is False and reply["error"]["code"] == "E-RUNTIME-TIMEOUT" and "0.5 s" in reply["error"]["message"]


# -- local_dir ------------------------------------------------------------------------------------------------


def test_local_dir_of_a_zip_is_verified_and_removed(doubler: Path, tmp_path: Path) -> None:
    from carton_runtime.cache import Cache

    archive = cf.read(doubler, verify_hashes=False)
    files = ArchiveModelFiles(archive, cache=Cache(tmp_path / "cache"), fetcher=None)
    with files.local_dir() as d:
        assert sorted(p.name for p in d.iterdir()) == ["model.pt"]
        assert (d / "model.pt").read_bytes() == ORIGINAL_MODEL.read_bytes()
    assert not d.exists()
    with files.local_dir() as again:  # from the cache now
        assert (again / "model.pt").read_bytes() == ORIGINAL_MODEL.read_bytes()


def test_local_dir_of_an_unpacked_carton_is_the_directory_after_verification(doubler: Path, tmp_path: Path) -> None:
    from carton_runtime.cache import Cache

    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(doubler) as zf:
        zf.extractall(unpacked)
    files = ArchiveModelFiles(cf.read(unpacked, verify_hashes=False), cache=Cache(tmp_path / "cache"), fetcher=None)
    with files.local_dir() as d:
        assert d == unpacked / "model"
    model_pt = unpacked / "model" / "model.pt"
    data = bytearray(model_pt.read_bytes())
    data[len(data) // 2] ^= 1
    model_pt.write_bytes(bytes(data))
    files = ArchiveModelFiles(cf.read(unpacked, verify_hashes=False), cache=Cache(tmp_path / "cache"), fetcher=None)
    entered = False
    with pytest.raises(cf.CartonFormatError) as err:
        with files.local_dir():
            entered = True
    assert err.value.code == "E-MANIFEST-MISMATCH" and not entered


def test_loading_out_of_process_with_a_tampered_zip_fails_before_any_worker(doubler: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.carton"
    with zipfile.ZipFile(doubler) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "model/model.pt":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(item, data)
    before = _children()
    with pytest.raises(cf.CartonFormatError) as err:
        cs.load(bad, isolation="process")
    assert err.value.code == "E-MANIFEST-MISMATCH"
    assert _children() <= before


def test_worker_ref_defaults_to_the_runner_class() -> None:
    from carton_runtime.runners.torchscript import TorchScriptRunner

    assert loading.worker_ref(TorchScriptRunner.instance()) == "carton_runtime.runners.torchscript:TorchScriptRunner"
    assert loading.worker_ref(EchoRunner()) == ECHO


def test_the_worker_module_runs_as_a_script_entry(echo_dir: Path) -> None:
    """``python -m carton_runtime.isolation.worker`` without arguments prints its usage."""
    done = subprocess.run([sys.executable, "-m", "carton_runtime.isolation.worker"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr



@pytest.mark.slow
def test_an_environment_selects_by_name_and_the_worker_checks_the_version(doubler: Path) -> None:
    st = original_self_test()
    with cs.load(doubler, environment=sys.executable) as model:  # an interpreter used as it is
        worker = model._runner_model
        assert isinstance(worker, WorkerModel) and worker.pid != os.getpid()
        assert np.array_equal(model.infer(st.inputs)["doubled"], st.expected_out["doubled"])
    before = _children()
    with pytest.raises(carton.CartonRuntimeError) as err:
        cs.load(doubler, environment=sys.executable, override_required_framework_version="=1.0")
    assert err.value.code == "E-RUNTIME-NO-RUNNER" and "does not match '=1.0'" in err.value.message
    assert _children() <= before
    with pytest.raises(carton.CartonRuntimeError) as err:
        cs.load(doubler, environment=sys.executable, isolation="inprocess")
    assert err.value.code == "E-RUNTIME-ARG"


def test_a_worker_speaking_nonsense_is_stopped(echo_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "nonsense-python"
    # argv: -c BOOTSTRAP FD REF PID: a frame whose header is not JSON on the socket, then linger
    fake.write_text(
        f"#!{sys.executable}\nimport os, struct, sys, time\n"
        "os.write(int(sys.argv[3]), struct.pack('<II', 16, 0) + b'not json at all!')\ntime.sleep(30)\n"
    )
    fake.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(carton.CartonRuntimeError) as err:
        load_in_worker(ECHO, echo_dir, device=None, opts={}, python=str(fake))
    assert err.value.code == "E-RUNTIME-RUNNER-DIED" and "protocol" in err.value.message
    assert time.monotonic() - started < 10
    assert not [pid for pid in _children() if "nonsense" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]


def test_worker_allocator_defaults_yield_to_the_hosts_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from carton_runtime.isolation.host import WORKER_DEFAULTS, _worker_env

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert _worker_env(sys.executable, [], None, [])["MALLOC_MMAP_THRESHOLD_"] == WORKER_DEFAULTS["MALLOC_MMAP_THRESHOLD_"]
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert _worker_env(sys.executable, [], None, [])["MALLOC_MMAP_THRESHOLD_"] == "131072"
    assert _worker_env(sys.executable, [], {"MALLOC_TRIM_THRESHOLD_": "0"}, [])["MALLOC_TRIM_THRESHOLD_"] == "0"


def test_the_decoder_refuses_malformed_messages() -> None:
    import socket

    from carton_runtime.isolation import protocol

    peer = protocol.PeerRegions()
    fd = os.memfd_create("test-region")
    os.ftruncate(fd, 64)
    peer.add([[5, 64]], [fd])  # a 64-byte region of the peer's
    payload = bytearray(16)
    good = ["<f4", [4], 16, 0, 0]
    assert protocol.decode({"x": good}, payload, peer)["x"].shape == (4,)
    assert protocol.decode({"x": ["<f4", [4], 16, 48, 5]}, payload, peer)["x"].shape == (4,)  # at an offset in the region
    for bad in (
        ["<f4", [4], 16, 49, 5],  # past the region's end
        ["<f4", [16], 64, 1, 5],
        ["<f4", [4], 16, -1, 5],
        ["<f4", [5], 16, 0, 0],  # size mismatch
        ["<f4", [-4], 16, 0, 0],  # negative dimension
        ["<f4", [4], 16, 8, 0],  # beyond the payload
        ["|O", [1], 8, 0, 0],  # objects are never sent raw
        ["V8", [2], 16, 0, 0],
        ["<f4", [4], 16, 0, 99],  # unknown region
        ["<f4", [4], "16", 0, 0],
        ["<f4", [4]],
        "junk",
    ):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode({"x": bad}, payload, peer)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(["not", "a", "dict"], payload, peer)
    a, b = socket.socketpair()
    with a, b:
        reader = protocol.Channel(b)
        for frame in (
            protocol.PREFIX.pack(4, 0) + b"\xff\xfe{}",  # not UTF-8
            protocol.PREFIX.pack(2, 0) + b"[]",  # not an object
            protocol.PREFIX.pack(protocol.MAX_HEADER + 1, 0),  # too big
            protocol.PREFIX.pack(2, protocol.MAX_PAYLOAD + 1),
        ):
            a.sendall(frame)
            with pytest.raises(protocol.ProtocolError):
                reader.recv()
            b.setblocking(False)
            try:
                while b.recv(1 << 16):
                    pass
            except BlockingIOError:
                pass
            b.setblocking(True)
        a.close()
        with pytest.raises(protocol.ProtocolError) as err:
            reader.recv()
        assert err.value.eof


def test_poll_budget_defaults_to_300_us_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    many_cpus = len(os.sched_getaffinity(0)) > 1
    monkeypatch.delenv("CARTON_WORKER_SPIN_US", raising=False)
    assert protocol.default_spin_s() == (pytest.approx(protocol.DEFAULT_SPIN_US / 1e6) if many_cpus else 0.0)
    monkeypatch.setenv("CARTON_WORKER_SPIN_US", "0")
    assert protocol.default_spin_s() == 0.0
    monkeypatch.setenv("CARTON_WORKER_SPIN_US", "not a number")
    assert protocol.default_spin_s() == (pytest.approx(protocol.DEFAULT_SPIN_US / 1e6) if many_cpus else 0.0)


def test_a_slow_answer_is_remembered_so_the_next_wait_sleeps() -> None:
    a, b = socket.socketpair()
    try:
        reader, writer = protocol.Channel(a, spin_s=300e-6), protocol.Channel(b)
        timer = threading.Timer(0.05, writer.send, args=({"n": 1},))
        timer.start()
        assert reader.recv(time.monotonic() + 5).header == {"n": 1}
        assert reader._last_wait >= 0.04  # longer than twice the budget: the next recv sleeps at once
        writer.send({"n": 2})
        assert reader.recv(time.monotonic() + 5).header == {"n": 2}
        assert reader._last_wait < 0.04
    finally:
        a.close()
        b.close()


def test_polling_before_sleeping_gives_the_same_results(echo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_WORKER_SPIN_US", "200")  # both sides poll 200 us before they sleep
    model = load_in_worker(ECHO, echo_dir, device=None, opts={}, sys_path=[str(ROOT)], call_timeout_s=30)
    try:
        assert model._chan.spin_s == pytest.approx(200e-6) or os.cpu_count() == 1
        for i in range(50):
            assert model.infer({"x": np.full(3, i)})["x"].tolist() == [i, i, i]
        assert model.infer({"big": np.ones(1 << 18)})["big"].sum() == 1 << 18
    finally:
        model.close()
