"""The loader's side of process isolation: which models run out of process, and how.

``load(..., isolation=...)`` (``"inprocess"`` or ``"process"``; None: the configured default,
:func:`carton_runtime.config.default_isolation`).  A runner whose ``isolation`` attribute is
``"process"`` always runs out of process (asking for ``inprocess`` explicitly is then an
error); a runner's ``worker_ref`` (``module:attr``) is what the worker imports, by default its
own class.  With an ``environment``, the worker runs in the interpreter that
``carton_runtime.environments.worker_environment_for`` provides for the runner's framework
version (and out of process, necessarily).  A runner with ``starts_own_worker = True`` (the
python runner) gets ``load`` called directly, with the ``environment``: it starts its worker
itself.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable

import carton_format as cf

from ..config import check_isolation, default_isolation
from ..devices import DeviceSpec
from ..errors import CartonRuntimeError
from .host import WorkerModel, load_in_worker

PROCESS = "process"
INPROCESS = "inprocess"


def starts_own_worker(runner: Any) -> bool:
    """Whether the runner's own ``load`` starts its worker (the python runner: the environment
    depends on the model's files); the loader then calls it directly, with ``environment``."""
    return getattr(runner, "starts_own_worker", False) is True


def resolve_isolation(requested: Any, runner: Any, environment: Any = None) -> str:
    """``process`` or ``inprocess`` for this load (see the module docstring)."""
    forced = getattr(runner, "isolation", None) == PROCESS or environment is not None or starts_own_worker(runner)
    if requested is None:
        return PROCESS if forced else default_isolation()
    value = check_isolation(requested, "load(isolation=...)")
    if value == INPROCESS and forced:
        why = "an environment was given" if environment is not None else f"runner {runner.runner_name!r} runs only out of process"
        raise CartonRuntimeError("E-RUNTIME-ARG", f"isolation='inprocess' is not possible: {why}", name="isolation")
    return value


def worker_ref(runner: Any) -> str:
    """What a worker imports to get this runner: its ``worker_ref``, else its class."""
    ref = getattr(runner, "worker_ref", None)
    if isinstance(ref, str) and ":" in ref:
        return ref
    cls = type(runner)
    return f"{cls.__module__}:{cls.__qualname__}"


def load_model(
    runner: Any,
    files: Any,
    *,
    isolation: str,
    device: DeviceSpec,
    info: cf.RunnerInfo,
    environment: Any = None,
    call_timeout_s: float | None = None,
) -> tuple[Any, Callable[[], None] | None]:
    """The runner model for one load, and what to call after it is closed (or None): in
    process, in a worker (:func:`load_out_of_process`), or by a runner that starts its own."""
    if starts_own_worker(runner):
        extra = {} if environment is None else {"environment": environment}
        return runner.load(files, device=device, opts=dict(info.opts or {}), **extra), None
    if isolation == PROCESS:
        return load_out_of_process(runner, files, device=device, info=info, environment=environment, call_timeout_s=call_timeout_s)
    return runner.load(files, device=device, opts=dict(info.opts or {})), None


def load_out_of_process(
    runner: Any,
    files: Any,
    *,
    device: DeviceSpec,
    info: cf.RunnerInfo,
    environment: Any = None,
    call_timeout_s: float | None = None,
) -> tuple[WorkerModel, Callable[[], None]]:
    """Load the model in a worker process; returns it and what to call once it is closed
    (the local directory of the model files stays until then: a runner may read them late)."""
    python = None
    sys_path: list[str] = []
    append = [p for p in sys.path if p]  # what the host can import, the worker can (after its own paths)
    env = None
    if environment is not None:
        from ..environments import worker_environment_for  # provisioning lives there

        provided = worker_environment_for(info.runner_name, info.required_framework_version, environment)
        python, sys_path, env = provided.python, list(provided.sys_path or ()), dict(provided.env or {})
        append = []  # the host's directories mean nothing to another environment
    stack = contextlib.ExitStack()
    try:
        model_dir = stack.enter_context(files.local_dir())
        model = load_in_worker(
            worker_ref(runner),
            model_dir,
            device=device,
            opts=dict(info.opts or {}),
            python=python,
            sys_path=sys_path,
            env=env,
            call_timeout_s=call_timeout_s,
            require=info,
            append_sys_path=append,
        )
    except BaseException:
        stack.close()
        raise
    return model, stack.close


__all__ = ["INPROCESS", "PROCESS", "load_model", "load_out_of_process", "resolve_isolation", "starts_own_worker", "worker_ref"]
