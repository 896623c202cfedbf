"""The ``python`` runner (the original's ``carton-runner-py``): a directory of Python code with
a ``requirements.txt`` and an entrypoint function, run in a worker process of its own.

Packing takes the code directory as it is (``requirements.txt`` must be at its root, as the
original's packer reads it) and refuses runner options without ``entrypoint_package`` and
``entrypoint_fn`` (a model without them could only fail at load).  Loading always runs out of
process: the model's requirements (and our runtime dependencies) are installed into an
environment of their own (:mod:`carton_runtime.environments`: content-addressed, cached under the
runner data dir, never the user's environment; relative paths in ``requirements.txt``, such as
wheels the code directory ships, are relative to the model directory), the model directory is
handed out as a verified local directory (``ModelFiles.local_dir``) for as long as the model is
loaded, and a worker with that environment's interpreter imports and runs the entrypoint
(:mod:`carton_runtime.runners.python_worker`).  The framework version is the Python version of
the interpreter the model runs with: this one's (environments are built from it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..environments import Interpreter, WorkerEnvironment, ensure_environment, host_interpreter, resolve_interpreter, shared_shim
from ..errors import CartonRuntimeError
from .python_worker import RUNNER_COMPAT_VERSION, RUNNER_NAME, STARTED_BY_RUNNER, entrypoint_options

log = logging.getLogger(__name__)

REQUIREMENTS = "requirements.txt"
#: The runner options every python model needs (the worker imports and calls them).
ENTRYPOINT_OPTIONS = ("entrypoint_package", "entrypoint_fn")
BUNDLED_WHEELS = ".carton/bundled_wheels"
WORKER_REF = "carton_runtime.runners.python_worker:RUNNER"


class PythonRunner:
    """Host side of the python runner: provisions the environment and starts the worker."""

    runner_name = RUNNER_NAME
    runner_compat_version = RUNNER_COMPAT_VERSION
    #: its models never run in the loading process: the loader starts a worker with the
    #: environment :meth:`worker_environment` provides, which imports ``worker_ref``
    isolation = "process"
    worker_ref = WORKER_REF

    _instance: PythonRunner | None = None

    @classmethod
    def instance(cls) -> PythonRunner:
        """The runner for this process's interpreter (one per process)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self, interpreter: Interpreter | None = None) -> None:
        self.interpreter = interpreter or host_interpreter()

    @property
    def framework_version(self) -> str:
        """The Python version models run with (``3.11.7``)."""
        return self.interpreter.version

    def __repr__(self) -> str:
        return f"PythonRunner(python {self.interpreter.version} at {self.interpreter.path})"

    def unavailable_reason(self) -> str | None:
        """Why this runner cannot be used here (process isolation missing), or None."""
        try:
            from ..isolation import load_in_worker  # noqa: F401
        except ImportError as exc:
            return f"process isolation (carton_runtime.isolation) is not available: {exc}"
        return None

    def prepare_pack(self, source: Any, info: Any, work_dir: Path) -> tuple[Any, Any]:
        """Refuse at pack what would only fail at load: runner options without a non-empty
        ``entrypoint_package`` and ``entrypoint_fn`` (``E-RUNTIME-ARG`` naming them)."""
        del work_dir
        check_entrypoint_options(info.runner.opts)
        return source, info

    def pack(self, path: Any, work_dir: Path) -> Path:
        """The code directory itself (``requirements.txt`` at its root, as the original needs)."""
        del work_dir
        if not isinstance(path, Path) or not path.is_dir():
            raise CartonRuntimeError("E-RUNTIME-ARG", f"the python runner packs a directory of code; {path} is not a directory", name="path")
        if not (path / REQUIREMENTS).is_file():
            raise CartonRuntimeError(
                "E-RUNTIME-ARG",
                f"{path} has no {REQUIREMENTS}: a python model's code directory needs one at its root (it may be empty)",
                name="path",
            )
        return path

    def load(self, files: Any, *, device: Any = None, opts: dict[str, Any] | None = None) -> Any:
        """Not in this process: python models run only in a worker (load through the loader)."""
        del files, device, opts
        raise CartonRuntimeError(
            "E-RUNTIME-ARG", "python models run only out of process: load them with carton_runtime.load (or load_unpacked)", name="isolation"
        )

    def worker_environment(self, files: Any, model_dir: Path, *, opts: dict[str, Any], environment: Any = None) -> WorkerEnvironment:
        """The worker to start for this model (the loader's hook, see
        :mod:`carton_runtime.isolation.loading`): provision (or reuse) its environment.

        ``environment``: None or ``"auto"`` builds one from the model's requirements; the path
        of an interpreter or venv uses it as it is (it must have the requirements and numpy)."""
        entrypoint_options(dict(opts))  # fail before building anything
        if environment is not None and environment != "auto":
            python, env = resolve_interpreter(environment), {"PYTHONPATH": str(shared_shim())}
        else:
            built = ensure_environment(
                read_requirements(files), interpreter=self.interpreter, find_links=bundled_wheel_dirs(model_dir),
                base_dir=model_dir, purpose="a python model",
            )
            python, env = built.python, {}
        env[STARTED_BY_RUNNER] = "1"
        return WorkerEnvironment(python, (str(model_dir),), env)


def check_entrypoint_options(opts: dict[str, Any] | None) -> None:
    """``E-RUNTIME-ARG`` unless ``opts`` has ``entrypoint_package`` and ``entrypoint_fn`` as
    non-empty strings (what pack checks; the worker's own check is ``E-RUNTIME-RUNNER``)."""
    opts = opts or {}
    how = (
        "a python model needs the runner options entrypoint_package (the module to import, 'main' for main.py) and "
        "entrypoint_fn (the function in it returning the model): runner_opts={'entrypoint_package': 'main', "
        "'entrypoint_fn': 'get_model'}, or carton pack --opt entrypoint_package=main --opt entrypoint_fn=get_model"
    )
    missing = [key for key in ENTRYPOINT_OPTIONS if key not in opts]
    if missing:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"runner_opts has no {' and no '.join(missing)}: {how}", name=missing[0])
    for key in ENTRYPOINT_OPTIONS:
        if not isinstance(opts[key], str) or not opts[key].strip():
            raise CartonRuntimeError("E-RUNTIME-ARG", f"runner option {key} must be a non-empty str, not {opts[key]!r}: {how}", name=key)


def bundled_wheel_dirs(model_dir: Path) -> list[str]:
    """``.carton/bundled_wheels/<sha256>/`` of a model packed by the original (wheels that are
    not on PyPI, which its packer bundles): pip may install from them."""
    base = model_dir / BUNDLED_WHEELS
    if not base.is_dir():
        return []
    return sorted(str(d) for d in base.iterdir() if d.is_dir() and any(f.suffix == ".whl" for f in d.iterdir()))


def read_requirements(files: Any) -> list[str]:
    """The model's ``requirements.txt`` lines (none when it has no such file)."""
    if REQUIREMENTS not in files.names():
        log.info("the python model has no %s; its environment gets our runtime dependencies only", REQUIREMENTS)
        return []
    raw = files.read_bytes(REQUIREMENTS)
    try:
        return raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"the model's {REQUIREMENTS} is not UTF-8 text ({exc})") from None


__all__ = ["ENTRYPOINT_OPTIONS", "PythonRunner", "bundled_wheel_dirs", "check_entrypoint_options", "read_requirements"]
