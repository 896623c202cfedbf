"""The runner interface: narrow on purpose (load, infer, close), so that a runner living in
another process can implement it later.

A *runner* is registered once per process and describes itself; ``load`` gives a
*runner model* that runs inferences until ``close``::

    class MyRunner:
        runner_name = "my-framework"
        framework_version = "1.2.3"        # exact SemVer of the installed framework
        runner_compat_version = 1

        def unavailable_reason(self) -> str | None:   # optional: None when usable
            ...
        def pack(self, path, work_dir) -> Path:        # optional: user's path -> model dir
            ...
        def load(self, files: ModelFiles, *, device: DeviceSpec, opts: dict) -> RunnerModel:
            ...
        def check_files(self, files: ModelFiles) -> None:  # optional: refuse what no load can run,
            ...                                        # in this process, before any worker starts
        # optional, for runners whose models run out of process (carton_runtime.isolation.loading):
        isolation = "process"                          # never in the loading process
        worker_ref = "my_pkg.worker:RUNNER"            # what the worker imports (default: this class)
        def worker_environment(self, files, model_dir, *, opts, environment) -> WorkerEnvironment:
            ...                                        # the worker's interpreter, from the model's files

    class MyModel:
        def infer(self, inputs: dict[str, object]) -> dict[str, numpy.ndarray]: ...
        def close(self) -> None: ...
        # optional: prepare(inputs) -> prepared, infer_prepared(prepared) -> outputs (seal)

Third-party runners are found through the entry-point group ``carton_runtime.runners``; an
entry point names a runner object, a runner class, or a callable returning a runner or a list
of runners.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, ContextManager, Protocol, runtime_checkable

import numpy as np

from ..devices import DeviceSpec


class ModelFiles(Protocol):
    """The runner's read-only view of the archive's ``model/`` directory (names relative to it).

    Every byte handed out is verified against MANIFEST (or comes from the verified cache)."""

    def names(self) -> list[str]:
        """Files under ``model/``, relative to it."""
        ...

    def open(self, name: str) -> IO[bytes]:
        """A stream of a file's verified content."""
        ...

    def read_bytes(self, name: str) -> bytes:
        """A file's whole verified content."""
        ...

    def local_file(self, name: str) -> ContextManager[Path]:
        """A local path holding the file's content, for frameworks that load from a path.

        The content is verified when the ``with`` block exits (possibly while the runner is
        already parsing it, to overlap hashing with loading); a mismatch raises there, and the
        runner must then discard what it loaded."""
        ...

    def local_dir(self) -> ContextManager[Path]:
        """A local directory holding exactly the ``model/`` files, all verified before it is
        handed out, for a runner that takes a directory (one running in another process).
        It stays valid until the ``with`` block exits."""
        ...


@runtime_checkable
class RunnerModel(Protocol):
    """What a runner's ``load`` returns: runs inferences until ``close``."""

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the model on ``{input name: value}``; returns ``{output name: numpy array}``."""
        ...

    def close(self) -> None:
        """Free the model; no inference follows."""
        ...


@runtime_checkable
class Runner(Protocol):
    """A runner: describes itself (name, framework and compat versions) and loads models."""

    runner_name: str
    framework_version: str
    runner_compat_version: int

    def load(self, files: ModelFiles, *, device: DeviceSpec, opts: dict[str, Any]) -> RunnerModel:
        """Load the model in ``files`` onto ``device``; ``opts`` are the runner options, load overrides merged in."""
        ...


def unavailable_reason(runner: Any) -> str | None:
    """Why a runner cannot be used in this process, or None (a runner without the method always can)."""
    fn = getattr(runner, "unavailable_reason", None)
    return fn() if callable(fn) else None


def pack_model_dir(runner: Any, path: Path, work_dir: Path) -> Path:
    """The directory whose files go under ``model/`` (the runner's ``pack`` if it has one)."""
    fn = getattr(runner, "pack", None)
    if callable(fn):
        return Path(fn(path, work_dir))
    if not path.is_dir():
        from ..errors import CartonRuntimeError

        raise CartonRuntimeError("E-RUNTIME-ARG", f"runner {runner.runner_name!r} packs a directory; {path} is not one")
    return path


__all__ = ["ModelFiles", "Runner", "RunnerModel", "pack_model_dir", "unavailable_reason"]
