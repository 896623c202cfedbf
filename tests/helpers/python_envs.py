"""A runner data directory shared by the tests that build runner environments.

Building an environment takes seconds (torch: tens of seconds), so the tests share one
directory per pytest session: with pytest-xdist every worker of the session uses the same one
(the environments' file locks keep two workers from building the same environment twice).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_NAME = "CARTON_RUNNER_DATA_DIR"


def session_runner_data_dir(factory: pytest.TempPathFactory) -> Path:
    """The session's shared runner data directory (created)."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-of-USER/pytest-N: the session's, shared by its workers
    path = base / "carton-runner-data"
    path.mkdir(parents=True, exist_ok=True)
    return path


__all__ = ["ENV_NAME", "session_runner_data_dir"]
