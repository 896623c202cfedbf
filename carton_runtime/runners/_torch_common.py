"""What every torch runner shares (torchscript, torch_export, aotinductor): the framework
version, availability, torch's process-wide thread pools, the inference-mode guard.

Thread pools: the runner options ``num_threads`` and ``num_interop_threads`` size torch's
intra-op and inter-op pools, which are process-wide, not per model and not per runner.  The
first model loaded with one of them (whatever its torch runner) sets that pool; a later model
asking for a different value gets a ``RuntimeWarning`` (also logged by its runner's logger)
naming the value that stays.  torch lets the inter-op pool be sized only once per process,
before any inter-op work: when that is too late the option is ignored with a warning.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import warnings
from typing import Any

from .. import progress

log = logging.getLogger(__name__)

KNOWN_OPTS = ("num_threads", "num_interop_threads")


def _framework_version() -> str | None:
    """The installed torch version, from its distribution (without importing torch) or torch itself."""
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:  # noqa: BLE001 - not installed through a distribution
        try:
            import torch

            return str(torch.__version__)
        except ImportError:
            return None


def torch_unavailable_reason() -> str | None:
    """``torch is not installed`` unless torch can be found (without importing it; once torch
    is imported, without searching the import path again: runner selection asks on every load)."""
    if getattr(sys.modules.get("torch"), "__version__", None) is not None:
        return None
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):  # e.g. sys.modules["torch"] = None
        spec = None
    return None if spec is not None else "torch is not installed"


class TorchRunnerBase:
    """Name-independent parts of a torch runner: one instance per class, the torch version."""

    runner_name = ""
    runner_compat_version = 1
    _instance: Any = None

    @classmethod
    def instance(cls) -> Any:
        """The process-wide runner (created on first use)."""
        if cls.__dict__.get("_instance") is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self) -> None:
        self._version: str | None = None

    @property
    def framework_version(self) -> str:
        """The installed torch version (``0.0.0`` when torch cannot be found)."""
        if self._version is None:
            self._version = _framework_version() or "0.0.0"
        return self._version

    def unavailable_reason(self) -> str | None:
        """``torch is not installed`` unless torch can be found (without importing it)."""
        return torch_unavailable_reason()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} torch {self.framework_version}>"


def import_torch() -> Any:
    """``torch``; the first import in the process is its own phase in the load log."""
    if "torch" not in sys.modules:
        with progress.phase("import torch"):
            import torch
    import torch

    return torch


def _first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's text (its type's name when empty), cut at ``limit`` characters."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if limit is None or len(first) <= limit else first[:limit] + " ..."


def _describe(files: Any) -> str:
    """A short name for the model being loaded, for the thread-pool messages."""
    try:
        name = files.archive.info.model_name
    except AttributeError:
        name = None
    return f"model {name!r}" if name else "this model"


# what the first model asking for each pool size set: {option: (value, model)}; see the module docstring
_pools: dict[str, tuple[int, str]] = {}
_pools_lock = threading.Lock()


def thread_pool_settings() -> dict[str, int]:
    """The pool sizes set through runner options so far in this process (``{option: value}``)."""
    with _pools_lock:
        return {key: value for key, (value, _model) in _pools.items()}


def _forget_thread_pool_settings() -> None:
    """Forget which model set the pools (for tests; torch keeps its current sizes)."""
    with _pools_lock:
        _pools.clear()


def _warn(logger: logging.Logger, message: str, stacklevel: int) -> None:
    logger.warning("%s", message)
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)


def apply_opts(
    opts: dict[str, Any], model: str = "this model", *, runner: str = "torchscript", logger: logging.Logger = log, stacklevel: int = 3
) -> None:
    """``num_threads`` / ``num_interop_threads``: the first model asking for one sets it (the
    pools are process-wide in torch); a later model asking for another value is warned and
    gets the pools as they are.  Unknown options and bad values warn and are ignored."""
    import torch

    level = stacklevel + 1
    for key, value in opts.items():
        if key not in KNOWN_OPTS:
            warnings.warn(f"runner option {key!r} is not known to the {runner} runner; ignored", RuntimeWarning, stacklevel=level)
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            warnings.warn(f"runner option {key}={value!r} ignored: it must be a positive integer", RuntimeWarning, stacklevel=level)
            continue
        with _pools_lock:
            earlier = _pools.get(key)
            if earlier is None:
                if key == "num_threads":
                    torch.set_num_threads(value)
                    _pools[key] = (value, model)
                    logger.info("torch intra-op threads set to %d by %s (process-wide)", value, model)
                    continue
                if torch.get_num_interop_threads() == value:
                    _pools[key] = (value, model)
                    continue
                try:
                    torch.set_num_interop_threads(value)
                except RuntimeError as exc:
                    current = torch.get_num_interop_threads()
                    _pools[key] = (current, "torch")  # fixed for the rest of the process
                    _warn(
                        logger,
                        f"runner option num_interop_threads={value} of {model} ignored: torch allows setting it once per process, "
                        f"before any inter-op work ({_first_line(exc)}); it stays {current} for every model in this process",
                        level,
                    )
                    continue
                _pools[key] = (value, model)
                logger.info("torch inter-op threads set to %d by %s (process-wide)", value, model)
                continue
        kept, by = earlier
        if kept != value:
            by_text = "torch" if by == "torch" else "an earlier load of the same model" if by == model else f"an earlier model ({by})"
            _warn(
                logger,
                f"runner option {key}={value} of {model} ignored: torch's thread pools are process-wide and "
                f"{by_text} already set {key}={kept}, which stays for every model in this process",
                level,
            )


def _inference_guard() -> Any:
    """A context-manager factory for inference mode (torch's cheap RAII guard when it has one)."""
    import torch

    guard = getattr(torch._C, "_InferenceMode", None)  # the cheap RAII guard behind inference_mode
    if guard is not None:
        try:
            with guard(True):
                pass
            return lambda: guard(True)
        except Exception:  # noqa: BLE001 - private API changed
            pass
    return torch.inference_mode


__all__ = [
    "KNOWN_OPTS",
    "TorchRunnerBase",
    "apply_opts",
    "import_torch",
    "thread_pool_settings",
    "torch_unavailable_reason",
]
