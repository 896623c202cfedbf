"""Per-call timing shared by the benchmarks: functions measured in alternating rounds, so that
drift of a noisy machine (other load, frequency changes) hits every variant alike."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def per_call_us(fns: list[Callable[[], Any]], calls: int, rounds: int = 9, warmup: int = 500) -> list[float]:
    """Median per-call microseconds of each function (each warmed up with ``min(calls, warmup)`` calls first)."""
    for fn in fns:
        for _ in range(max(2, min(calls, warmup))):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[i].append((time.perf_counter() - start) / calls * 1e6)
    return [statistics.median(s) for s in samples]


__all__ = ["per_call_us"]
