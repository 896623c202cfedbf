"""Running a model's self tests and comparing outputs with ``expected_out``.

Floating-point and complex outputs compare with ``numpy.allclose`` (``rtol=1e-5``,
``atol=1e-8``, NaNs equal); every other dtype (integers, bools, strings) must be exactly equal.
Shapes must always match.  A self test without ``expected_out`` passes when inference succeeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import CartonError

RTOL = 1e-5
ATOL = 1e-8


@dataclass
class SelfTestResult:
    """The outcome of one self test (truthy when it passed)."""

    index: int
    name: str | None
    passed: bool
    outputs: dict[str, Any] = field(default_factory=dict, repr=False)
    mismatches: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def __bool__(self) -> bool:
        return self.passed

    @property
    def label(self) -> str:
        """The test's name, or ``self_test[i]`` when it has none."""
        return self.name or f"self_test[{self.index}]"

    def summary(self) -> str:
        """One line: PASS with the time taken, or FAIL with the reason."""
        if self.passed:
            return f"PASS {self.label} ({self.seconds * 1000:.1f} ms)"
        detail = self.error or "; ".join(self.mismatches)
        return f"FAIL {self.label}: {detail}"


def materialise(value: Any) -> Any:
    """A tensor value as numpy (lazy tensors are loaded)."""
    if isinstance(value, (np.ndarray, list)):
        return value
    load = getattr(value, "load", None)
    if callable(load):
        return load()
    return np.asarray(value)


def compare(name: str, expected: Any, actual: Any) -> str | None:
    """None when ``actual`` matches ``expected``, else a description of the difference."""
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{name}: expected a nested tensor of {len(expected)} arrays"
        for i, (e, a) in enumerate(zip(expected, actual)):
            problem = compare(f"{name}[{i}]", e, a)
            if problem:
                return problem
        return None
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.shape != actual.shape:
        return f"{name}: shape {list(actual.shape)}, expected {list(expected.shape)}"
    if expected.dtype.kind in "fc" or actual.dtype.kind in "fc":
        try:
            if np.allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True):
                return None
        except TypeError:
            return f"{name}: dtype {actual.dtype} cannot be compared with {expected.dtype}"
        with np.errstate(all="ignore"):
            worst = float(np.nanmax(np.abs(actual.astype(np.complex128) - expected.astype(np.complex128)))) if actual.size else 0.0
        return f"{name}: values differ (max abs difference {worst:g}, rtol {RTOL}, atol {ATOL})"
    if expected.dtype.kind in "USTO" or actual.dtype.kind in "USTO":
        if expected.dtype.kind not in "UTO" or actual.dtype.kind not in "UTO":
            return f"{name}: dtype {actual.dtype}, expected {expected.dtype}"
        same = expected.tolist() == actual.tolist()
    else:
        same = bool(np.array_equal(actual, expected))
    if not same:
        return f"{name}: values differ (exact comparison for {expected.dtype})"
    return None


def run_self_tests(infer: Callable[[dict[str, Any]], dict[str, Any]], self_tests: list[Any] | None) -> list[SelfTestResult]:
    """Run each self test through ``infer``; failures are reported in the results, never raised."""
    results = []
    for i, test in enumerate(self_tests or []):
        start = time.perf_counter()
        result = SelfTestResult(i, getattr(test, "name", None), False)
        try:
            inputs = {k: materialise(v) for k, v in test.inputs.items()}
            outputs = infer(inputs)
            result.outputs = outputs
            for key, expected_value in (test.expected_out or {}).items():
                if key not in outputs:
                    result.mismatches.append(f"{key}: missing from the outputs ({', '.join(sorted(outputs)) or 'none'})")
                    continue
                problem = compare(key, materialise(expected_value), outputs[key])
                if problem:
                    result.mismatches.append(problem)
            result.passed = not result.mismatches
        except CartonError as exc:
            result.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a self test reports, never raises
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - start
        results.append(result)
    return results


__all__ = ["ATOL", "RTOL", "SelfTestResult", "compare", "run_self_tests"]
