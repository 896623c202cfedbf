"""num_threads / num_interop_threads: torch's pools are process-wide, so the first model asking
sets them and a later model asking for other values is warned (and logged)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import carton_runtime.sync as carton_sync
from carton_runtime.runners import torchscript


@pytest.fixture
def fresh_pools() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torchscript._forget_thread_pool_settings()
    yield
    torch.set_num_threads(before)
    torchscript._forget_thread_pool_settings()


def load(models: dict[str, Path], **opts: int) -> carton_sync.Carton:
    return carton_sync.load_unpacked(models["copy"], "torchscript", "*", runner_opts=opts)


def test_first_model_sets_num_threads_later_ones_are_warned(models: dict[str, Path], fresh_pools: None, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the first model asking: no warning
        first = load(models, num_threads=1)
        load(models, num_threads=1).close()  # the same value: silent
        load(models).close()  # no option: silent
    assert torch.get_num_threads() == 1 and torchscript.thread_pool_settings()["num_threads"] == 1
    with caplog.at_level(logging.WARNING, logger="carton_runtime.runners.torchscript"):
        with pytest.warns(RuntimeWarning, match=r"num_threads=2 .*ignored.*process-wide.*num_threads=1, which stays"):
            second = load(models, num_threads=2)
    assert torch.get_num_threads() == 1
    assert any("process-wide" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for model in (first, second):  # both still run, on the shared pools
        assert model.infer({"x": np.ones(3, np.float32)})["x"].tolist() == [1.0, 1.0, 1.0]
        model.close()


def test_num_interop_threads_once_per_process(models: dict[str, Path], fresh_pools: None) -> None:
    import torch

    wanted = torch.get_num_interop_threads() + 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(models, num_interop_threads=wanted).close()
    # torch sets it only before any inter-op work: either this worked, or it said so and the size stays
    if torch.get_num_interop_threads() != wanted:
        assert any("once per process" in str(w.message) for w in caught)
    current = torch.get_num_interop_threads()
    assert torchscript.thread_pool_settings()["num_interop_threads"] == current
    with pytest.warns(RuntimeWarning, match=f"num_interop_threads={current}"):
        load(models, num_interop_threads=current + 1).close()
    # torch now refuses any change (it was set, or inter-op work ran): the RuntimeError becomes a warning
    torchscript._forget_thread_pool_settings()
    with pytest.warns(RuntimeWarning, match=f"once per process.*stays {current}"):
        model = load(models, num_interop_threads=current + 2)
    assert torch.get_num_interop_threads() == current
    assert model.infer({"x": np.ones(2, np.float32)})["x"].tolist() == [1.0, 1.0]
    model.close()
