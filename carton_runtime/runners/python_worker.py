"""The ``python`` runner's worker side: imports the model's code and runs it, in a worker
process whose interpreter is the model's environment (see :mod:`carton_runtime.runners.python`).

As the original (``source/carton-runner-py/src/loader.rs``, ``model.rs``): the model directory is
importable as the package ``_carton_model_module`` (so ``entrypoint_package = "main"`` imports
``_carton_model_module.main`` and relative imports work; the directory is also on ``sys.path``
for absolute ones), the working directory is the model directory, and the entrypoint function
is called with every ``model.*`` runner option, prefix removed, as keyword arguments.  What it
returns must have ``infer_with_tensors(dict)`` or both ``seal(dict)`` and
``infer_with_handle(handle)``.  Inputs are numpy arrays (string tensors as ``<U`` arrays);
outputs may be numpy arrays of a Carton dtype, numpy scalars, torch tensors, ``str`` or (nested)
lists of ``str``; a generator or async generator counts by its last item, as the original's
non-streaming inference does.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import platform
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np

import carton_format as cf
from carton_format.dtypes import carton_dtype_of

from ..errors import CartonRuntimeError

log = logging.getLogger(__name__)

RUNNER_NAME = "python"
RUNNER_COMPAT_VERSION = 1  # the original's (source/carton-runner-py/src/bin/build_releases/main.rs)
MODULE_ALIAS = "_carton_model_module"
MODEL_PREFIX = "model."
#: Set by the host side (PythonRunner.load) for the workers it starts: a worker started some other
#: way (the host's interpreter, without the model's requirements) refuses to load.
STARTED_BY_RUNNER = "CARTON_PYTHON_RUNNER_WORKER"

_MISSING_OPTS = (
    "Expected runner options of `entrypoint_package` and `entrypoint_fn` to be set, but {what}. This means the model "
    "was likely not packaged correctly or options were removed when loading the model."
)


def entrypoint_options(opts: dict[str, Any] | None) -> tuple[str, str, dict[str, Any]]:
    """(entrypoint_package, entrypoint_fn, keyword arguments) from the runner options, or
    ``E-RUNTIME-RUNNER`` with the original's messages."""
    if not opts:
        raise CartonRuntimeError("E-RUNTIME-RUNNER", _MISSING_OPTS.format(what="no options were set"))
    names = []
    for key in ("entrypoint_package", "entrypoint_fn"):
        if key not in opts:
            raise CartonRuntimeError("E-RUNTIME-RUNNER", _MISSING_OPTS.format(what=f"`{key}` was not set"), name=key)
        if not isinstance(opts[key], str) or not opts[key]:
            raise CartonRuntimeError(
                "E-RUNTIME-RUNNER", f"Expected the `{key}` option to be a non-empty string, but it was {opts[key]!r}.", name=key
            )
        names.append(opts[key])
    kwargs = {key[len(MODEL_PREFIX) :]: value for key, value in opts.items() if key.startswith(MODEL_PREFIX)}
    return names[0], names[1], kwargs


def _where(exc: BaseException, root: Path | None) -> str:
    """`` (at main.py:12, in infer_with_tensors)``: the innermost frame in the model's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        try:
            path = Path(frame.filename).resolve()
        except (OSError, ValueError):
            continue
        if root is not None and path.is_relative_to(root):
            return f" (at {path.relative_to(root).as_posix()}:{frame.lineno}, in {frame.name})"
    return ""


def _describe(exc: BaseException, root: Path | None) -> str:
    text = str(exc).strip()
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(message) > 2000:
        message = message[:2000] + " ..."
    return message + _where(exc, root)


class PythonWorkerRunner:
    """The runner the worker process loads (``carton_runtime.runners.python_worker:RUNNER``)."""

    runner_name = RUNNER_NAME
    runner_compat_version = RUNNER_COMPAT_VERSION

    @property
    def framework_version(self) -> str:
        """This interpreter's Python version (the python runner's framework)."""
        return platform.python_version()

    def load(self, files: Any, *, device: Any = None, opts: dict[str, Any] | None = None) -> PythonModel:
        """Import the entrypoint from the model directory and call it (see the module docstring)."""
        if os.environ.get(STARTED_BY_RUNNER) != "1":
            raise CartonRuntimeError(
                "E-RUNTIME-RUNNER",
                "the python runner's worker was started without its environment (the loader starts it with the one "
                "PythonRunner.worker_environment builds from the model's requirements.txt)",
            )
        package, fn_name, kwargs = entrypoint_options(opts)
        root = Path(getattr(files, "root", None) or ".").resolve()
        if not root.is_dir():
            raise CartonRuntimeError("E-RUNTIME-RUNNER", f"the model directory {root} does not exist")
        alias_dir = Path(tempfile.mkdtemp(prefix="carton-python-model-"))
        try:
            os.symlink(root, alias_dir / MODULE_ALIAS, target_is_directory=True)
            for entry in (str(root), str(alias_dir)):
                if entry not in sys.path:
                    sys.path.insert(0, entry)
            importlib.invalidate_caches()
            os.chdir(root)
            model = _call_entrypoint(root, package, fn_name, kwargs)
            return PythonModel(model, root, alias_dir)
        except BaseException:
            shutil.rmtree(alias_dir, ignore_errors=True)
            raise


def _import_entrypoint(root: Path, package: str) -> Any:
    module_name = f"{MODULE_ALIAS}.{package}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            relative = package.replace(".", "/")
            raise CartonRuntimeError(
                "E-RUNTIME-RUNNER",
                f"entrypoint_package {package!r} is not in the model: no {relative}.py or {relative}/ under the model directory",
                name="entrypoint_package",
            ) from None
        raise CartonRuntimeError(
            "E-RUNTIME-RUNNER", f"importing entrypoint_package {package!r} failed: {_describe(exc, root)} (is it in requirements.txt?)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the model's own code failed while importing
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"importing entrypoint_package {package!r} raised {_describe(exc, root)}") from None


def _call_entrypoint(root: Path, package: str, fn_name: str, kwargs: dict[str, Any]) -> Any:
    module = _import_entrypoint(root, package)
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"entrypoint_package {package!r} has no {fn_name!r} (entrypoint_fn)", name="entrypoint_fn")
    if not callable(fn):
        what = type(fn).__name__
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"{package}.{fn_name} (entrypoint_fn) is a {what}, not a function", name="entrypoint_fn")
    try:
        model = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the model's entrypoint failed
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"the entrypoint {package}.{fn_name}({shown}) raised {_describe(exc, root)}") from None
    has_infer = callable(getattr(model, "infer_with_tensors", None))
    has_handle = callable(getattr(model, "seal", None)) and callable(getattr(model, "infer_with_handle", None))
    if not (has_infer or has_handle):
        raise CartonRuntimeError(
            "E-RUNTIME-RUNNER",
            f"the entrypoint {package}.{fn_name} returned a {type(model).__name__}, which has neither `infer_with_tensors` "
            "nor `seal` and `infer_with_handle` (the model must have `infer_with_tensors` and/or `seal` and `infer_with_handle`)",
        )
    return model


def _input(name: str, value: Any) -> Any:
    """What the model gets: numpy arrays, string tensors as ``<U`` arrays (as the original)."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        try:
            return np.array(value.tolist(), dtype=str).reshape(value.shape) if value.size else np.array([], dtype="<U1").reshape(value.shape)
        except (TypeError, ValueError):
            return value
    return value


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach") and hasattr(value, "numpy")


def _all_strings(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, (list, tuple)):
        return all(_all_strings(v) for v in value)
    return False


def to_output(key: Any, value: Any) -> np.ndarray:
    """One output as a numpy array of a Carton dtype, or ``E-RUNTIME-OUTPUT`` naming it."""
    if not isinstance(key, str):
        raise CartonRuntimeError("E-RUNTIME-OUTPUT", f"output names must be str, not {type(key).__name__} ({key!r})")
    if _is_torch_tensor(value):
        value = value.detach().cpu().resolve_conj().resolve_neg().numpy()
    elif isinstance(value, np.generic):
        value = np.asarray(value)
    elif isinstance(value, (str, list, tuple)):
        if not _all_strings(value):
            raise CartonRuntimeError(
                "E-RUNTIME-OUTPUT",
                f"output {key!r}: a {type(value).__name__} that is not entirely strings cannot be returned (return a numpy array)",
                name=key,
            )
        value = np.array(value, dtype=str) if not isinstance(value, (list, tuple)) or len(value) else np.array([], dtype="<U1")
    if not isinstance(value, np.ndarray):
        raise CartonRuntimeError(
            "E-RUNTIME-OUTPUT",
            f"output {key!r} is a {type(value).__module__}.{type(value).__qualname__}; return numpy arrays (or torch tensors, str, lists of str)",
            name=key,
        )
    try:
        carton_dtype_of(value, where=f"output {key!r}")
    except cf.CartonFormatError as exc:
        raise CartonRuntimeError("E-RUNTIME-OUTPUT", exc.message, name=key) from None
    if value.dtype.kind == "O":
        value = np.array(value.tolist(), dtype=str).reshape(value.shape) if value.size else np.array([], dtype="<U1").reshape(value.shape)
    return value


def _last(result: Any) -> Any:
    """A dict as it is; an awaitable awaited; a generator or async generator: its last item."""
    if isinstance(result, dict):
        return result
    if inspect.isawaitable(result):
        return _last(asyncio.run(_awaited(result)))
    if hasattr(result, "__aiter__"):
        return asyncio.run(_last_async(result))
    if inspect.isgenerator(result) or (hasattr(result, "__next__") and hasattr(result, "__iter__")):
        last = None
        for item in result:
            last = item
        return last
    return result


async def _awaited(result: Any) -> Any:
    return await result


async def _last_async(result: Any) -> Any:
    last = None
    async for item in result:
        last = item
    return last


class PythonModel:
    """The entrypoint's model, run through ``infer_with_tensors`` (or ``seal`` + ``infer_with_handle``)."""

    def __init__(self, model: Any, root: Path, alias_dir: Path) -> None:
        self.model = model
        self.root = root
        self.alias_dir = alias_dir

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the model on ``inputs``; outputs converted by :func:`to_output`."""
        if self.model is None:
            raise CartonRuntimeError("E-RUNTIME-CLOSED", "the model was closed")
        tensors = {name: _input(name, value) for name, value in inputs.items()}
        infer = getattr(self.model, "infer_with_tensors", None)
        method = "infer_with_tensors"
        try:
            if callable(infer):
                result = _last(infer(tensors))
            else:
                method = "seal` / `infer_with_handle"
                result = _last(self.model.infer_with_handle(self.model.seal(tensors)))
        except CartonRuntimeError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's own code failed
            raise CartonRuntimeError("E-RUNTIME-INFER", f"the model raised {_describe(exc, self.root)} (in `{method}`)") from None
        if not isinstance(result, dict):
            raise CartonRuntimeError(
                "E-RUNTIME-OUTPUT", f"`{method}` returned a {type(result).__name__}; it must return a dict of output name -> array"
            )
        return {key: to_output(key, value) for key, value in result.items()}

    def close(self) -> None:
        """Drop the model and the import alias."""
        self.model = None
        shutil.rmtree(self.alias_dir, ignore_errors=True)


#: What ``load_in_worker`` names: ``carton_runtime.runners.python_worker:RUNNER``.
RUNNER = PythonWorkerRunner()

__all__ = ["MODULE_ALIAS", "RUNNER", "RUNNER_COMPAT_VERSION", "PythonModel", "PythonWorkerRunner", "entrypoint_options", "to_output"]
