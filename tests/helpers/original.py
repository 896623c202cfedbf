"""Driving the original implementation (cartonml-nightly) from tests, in its own venv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().parent / "original_probe.py"


def original_python() -> str | None:
    candidate = os.environ.get("CARTON_ORIGINAL_PYTHON") or str(ROOT / ".venv-original" / "bin" / "python")
    return candidate if Path(candidate).exists() else None


def require_original() -> str:
    python = original_python()
    if python is None:
        if os.environ.get("CARTON_REQUIRE_ORIGINAL") == "1":
            pytest.fail("the original implementation is required (CARTON_REQUIRE_ORIGINAL=1) but not installed")
        pytest.skip("original implementation not installed (make original)")
    return python


def run_probe(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [require_original(), str(PROBE), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "RUST_BACKTRACE": "0"},
    )
    if proc.returncode != 0:
        raise AssertionError(f"original probe failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def original_describe(*paths: Path) -> list[dict]:
    return json.loads(run_probe("info", *map(str, paths)))


def original_shrink(source: Path, target: Path, urls: dict[str, str] | None = None) -> Path:
    run_probe("shrink", str(source), str(target), *(f"{k}={v}" for k, v in (urls or {}).items()))
    return target
