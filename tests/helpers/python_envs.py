"""A runner data directory shared by the tests that build runner environments.

Building an environment takes seconds (torch: tens of seconds), so the tests share one
directory per pytest session: with pytest-xdist every worker of the session uses the same one
(the environments' file locks keep two workers from building the same environment twice).
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
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


def tiny_wheel(dest_dir: Path, value: int, name: str = "carton_tinydep", version: str = "0.1") -> Path:
    """A real pure-Python wheel ``carton_tinydep`` (on no index) whose module has ``VALUE = value``;
    the same file name for every value, as a rebuilt wheel has."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {value}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n" for n, d in files.items()
    )
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    return path


__all__ = ["ENV_NAME", "session_runner_data_dir", "tiny_wheel"]
