"""The loader's side of process isolation: which models run out of process, and how.

``load(..., isolation=...)`` (``"inprocess"`` or ``"process"``; None: the configured default,
:func:`carton_runtime.config.default_isolation`).  A runner whose ``isolation`` attribute is
``"process"`` always runs out of process (asking for ``inprocess`` explicitly is then an
error); a runner's ``worker_ref`` (``module:attr``) is what the worker imports, by default its
own class.  With an ``environment``, the worker runs in the interpreter that
``carton_runtime.environments.worker_environment_for`` provides for the runner's framework
version (and out of process, necessarily).  A runner whose worker's interpreter depends on the
model's files (the python runner: an environment built from its ``requirements.txt``) has a
``worker_environment(files, model_dir, *, opts, environment)`` hook returning the
:class:`~carton_runtime.environments.WorkerEnvironment` to start; everything else (the
handshake's runner check, time limits, closing) is the same for every runner.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable

import carton_format as cf

from ..config import check_isolation, default_isolation
from ..devices import DeviceSpec
from ..errors import CartonRuntimeError
from .host import WorkerModel, load_in_worker

PROCESS = "process"
INPROCESS = "inprocess"


def resolve_isolation(requested: Any, runner: Any, environment: Any = None) -> str:
    """``process`` or ``inprocess`` for this load (see the module docstring)."""
    forced = getattr(runner, "isolation", None) == PROCESS or environment is not None
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
    load_timeout_s: float | None = None,
) -> tuple[Any, Callable[[], None] | None]:
    """The runner model for one load, and what to call after it is closed (or None): in
    process, or in a worker (:func:`load_out_of_process`).  The runner's ``check_files`` hook
    runs here first, either way: a worker sees the model's files, not the archive's metadata."""
    if isolation != PROCESS:
        given = [name for name, value in (("call_timeout_s", call_timeout_s), ("load_timeout_s", load_timeout_s)) if value is not None]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise CartonRuntimeError(
                "E-RUNTIME-ARG",
                f"{' and '.join(given)} {verb} isolation='process': a call or load in this process cannot be stopped "
                "(a worker process can); load with isolation='process', or without the time limit",
                name=given[0],
            )
    check = getattr(runner, "check_files", None)
    if callable(check):
        check(files)
    if isolation == PROCESS:
        return load_out_of_process(
            runner, files, device=device, info=info, environment=environment, call_timeout_s=call_timeout_s, load_timeout_s=load_timeout_s
        )
    return runner.load(files, device=device, opts=dict(info.opts or {})), None


def load_out_of_process(
    runner: Any,
    files: Any,
    *,
    device: DeviceSpec,
    info: cf.RunnerInfo,
    environment: Any = None,
    call_timeout_s: float | None = None,
    load_timeout_s: float | None = None,
) -> tuple[WorkerModel, Callable[[], None]]:
    """Load the model in a worker process; returns it and what to call once it is closed
    (the local directory of the model files stays until then: a runner may read them late)."""
    stack = contextlib.ExitStack()
    try:
        model_dir = stack.enter_context(files.local_dir())
        python, sys_path, env, append = _worker_launch(runner, files, Path(model_dir), info, environment)
        model = load_in_worker(
            worker_ref(runner),
            model_dir,
            device=device,
            opts=dict(info.opts or {}),
            python=python,
            sys_path=sys_path,
            env=env,
            call_timeout_s=call_timeout_s,
            load_timeout_s=load_timeout_s,
            require=info,
            append_sys_path=append,
        )
    except BaseException:
        stack.close()
        raise
    return model, stack.close


def _worker_launch(
    runner: Any, files: Any, model_dir: Path, info: cf.RunnerInfo, environment: Any
) -> tuple[str | None, list[str], dict[str, str] | None, list[str]]:
    """(interpreter, sys.path entries, environment variables, host directories appended) for
    this model's worker: the runner's ``worker_environment`` hook, else the provisioned
    environment for its framework version, else this interpreter (which then also sees what
    the host can import, after its own paths)."""
    hook = getattr(runner, "worker_environment", None)
    if callable(hook):
        provided = hook(files, model_dir, opts=dict(info.opts or {}), environment=environment)
    elif environment is not None:
        from ..environments import worker_environment_for  # provisioning lives there

        provided = worker_environment_for(info.runner_name, info.required_framework_version, environment)
    else:
        return None, [], None, [p for p in sys.path if p]
    # the host's directories mean nothing to another environment
    return provided.python, list(provided.sys_path or ()), dict(provided.env or {}), []


__all__ = ["INPROCESS", "PROCESS", "load_model", "load_out_of_process", "resolve_isolation", "worker_ref"]
