"""The ``torch_export`` runner: a ``torch.export`` program, the portable form of a torch model
(spec FMT-EXPORT-1..6).

Contract: ``runner_name = "torch_export"``, ``runner_compat_version = 1``, framework version =
the installed torch, the program written by ``torch.export.save`` at ``model/model.pt2``, loaded
with ``torch.export.load(...).module()``.  The program takes the inputs as keyword arguments
named as the model's inputs and returns a dict of tensors (keys = output names), one tensor or a
tuple of tensors (the archive's declared output names, in order; ``output`` / ``output_<i>``
without declared outputs).  See :mod:`._export_common` for how pack derives or checks the
TensorSpecs (always recorded) and why string specs are refused.  Inputs are numpy arrays,
checked against the specs before every call (:mod:`carton_runtime.input_check`); the program's
own guards (e.g. a ``Dim`` range) raise ``E-RUNTIME-INFER``.  The runner options
``num_threads`` and ``num_interop_threads`` size torch's process-wide pools (:mod:`._torch_common`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import carton_format as cf

from ..devices import DeviceSpec, resolve_torch_device
from ..errors import CartonRuntimeError
from . import _torch_common
from ._export_common import (
    MODEL_FILE,
    Converter,
    children,
    declared_inputs,
    infer_error,
    is_eager_module,
    is_exported_program,
    output_names,
    program_for_pack,
    pt2_path,
    require_declared_inputs,
    specs_for_program,
)
from ._torch_common import TorchRunnerBase, _describe, _first_line, _inference_guard, import_torch

log = logging.getLogger(__name__)


def pt2_kind(path: Path) -> str | None:
    """``"export"`` for ``torch.export.save`` output, ``"aoti"`` for an AOTInductor package,
    None for anything else (read from the zip's member names only)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if any("/data/aotinductor/" in f"/{n}" for n in names):
        return "aoti"
    if any(n.split("/", 1)[-1].startswith("models/") and n.endswith(".json") for n in names):
        return "export"
    return None


def place_file(path: Path, work_dir: Path) -> Path:
    """``work_dir/model/model.pt2`` linking (or holding a copy of) ``path``; returns the model dir."""
    model_dir = work_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / MODEL_FILE
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        target.symlink_to(path.resolve())  # stored as the target's content when packing
    except OSError:
        shutil.copyfile(path, target)
    return model_dir


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


_QUIET = _BelowError()
_NOISY_LOGGERS = ("torch.export", "torch.export.pt2_archive._package")


@contextlib.contextmanager
def quiet_torch_export() -> Iterator[None]:
    """torch.export logs a WARNING with a whole traceback before re-raising a bad file's error
    (the coded error says it): records below ERROR from its loaders are dropped while loading.  A
    filter, not ``setLevel``, which would clear the level cache of every logger per load."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    for logger in loggers:
        logger.addFilter(_QUIET)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(_QUIET)


def load_program(path: Path, what: str) -> Any:
    """``torch.export.load`` of ``path``; E-RUNTIME-RUNNER (naming ``what``) for a file it cannot load."""
    import torch

    try:
        with warnings.catch_warnings(), quiet_torch_export():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.export.load(str(path))
    except Exception as exc:
        log.debug("torch.export.load(%s) failed", path, exc_info=True)
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"{what} is not a loadable torch.export program: {_first_line(exc)}") from None


class TorchExportRunner(TorchRunnerBase):
    """Runs ``torch.export`` programs in this process."""

    runner_name = "torch_export"
    runner_compat_version = 1
    _instance: "TorchExportRunner | None" = None

    def accepts_object(self, obj: Any) -> bool:
        """``pack`` takes an ExportedProgram (an eager module too, given input specs)."""
        return is_exported_program(obj) or is_eager_module(obj)

    def accepts_path(self, path: Path) -> bool:
        """A ``torch.export.save`` file."""
        return path.is_file() and pt2_kind(path) == "export"

    # -- packing ------------------------------------------------------------------------------

    def prepare_pack(self, source: Any, info: cf.CartonInfo, work_dir: Path) -> tuple[Any, cf.CartonInfo]:
        """The ExportedProgram to save and the info with its TensorSpecs (derived from the
        program when none are given, else checked against it)."""
        import_torch()
        found = program_for_pack(source, info, self.runner_name)
        if found.program is None:
            path = found.path
            assert path is not None
            if not path.is_file() or pt2_kind(path) != "export":
                kind = pt2_kind(path) if path.is_file() else None
                hint = " (it is an AOTInductor package: pack it with runner_name='aotinductor')" if kind == "aoti" else ""
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{path} is not a torch.export.save file{hint}", name="path")
            program = load_program(path, str(path))
        else:
            program = found.program
        inputs, outputs = specs_for_program(program, info, self.runner_name)
        info.inputs, info.outputs = inputs, outputs
        return (found.path if found.program is None else program), info

    def pack(self, source: Any, work_dir: Path) -> Path:
        """``model/model.pt2``: the given file, or ``torch.export.save`` of the program."""
        if isinstance(source, (str, os.PathLike)):
            return place_file(Path(source), work_dir)
        if not is_exported_program(source):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"the torch_export runner packs an ExportedProgram or a .pt2 file, not {type(source).__name__}")
        import torch

        model_dir = work_dir / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        try:
            torch.export.save(source, str(model_dir / MODEL_FILE))
        except Exception as exc:  # noqa: BLE001
            raise CartonRuntimeError("E-RUNTIME-ARG", f"torch.export.save failed: {_first_line(exc)}") from None
        return model_dir

    # -- loading ------------------------------------------------------------------------------

    def check_files(self, files: Any) -> None:
        """The archive declares its inputs (in this process, before a worker starts)."""
        require_declared_inputs(files, self.runner_name, "they are checked before each call")

    def load(self, files: Any, *, device: DeviceSpec, opts: dict[str, Any] | None = None) -> "ExportedModel":
        """``torch.export.load(model/model.pt2).module()``, moved to the device."""
        import_torch()
        _torch_common.apply_opts(opts or {}, _describe(files), runner=self.runner_name, logger=log)
        self.check_files(files)
        if MODEL_FILE not in files.names():
            raise CartonRuntimeError(
                "E-RUNTIME-RUNNER",
                f"a torch_export model needs model/{MODEL_FILE}; the archive has {sorted(files.names()) or 'nothing'} under model/",
            )
        torch_device = resolve_torch_device(device)
        with files.local_file(MODEL_FILE) as path, pt2_path(Path(path)) as named:
            program = load_program(named, f"model/{MODEL_FILE}")
        try:
            module = program.module()
            if torch_device.type != "cpu":
                module = module.to(torch_device)
        except Exception as exc:  # noqa: BLE001
            raise CartonRuntimeError("E-RUNTIME-RUNNER", f"model/{MODEL_FILE}: the program cannot be made a module: {_first_line(exc)}") from None
        declared = declared_inputs(files)
        names = [spec.name for spec in declared] if isinstance(declared, list) else None
        return ExportedModel(module, torch_device, output_names(files), call=direct_forward(module, program, names))


def direct_forward(module: Any, program: Any, input_names: list[str] | None) -> Any:
    """``module.forward`` where calling it skips only what the input check already did, else None
    (call the module).  An unlifted program's ``__call__`` runs two pre-hooks and a hook around
    ``forward``: one re-registers nn.Module-typed example inputs as pytree nodes (none here: every
    input is a tensor), one checks the inputs' pytree against the program's (the declared names,
    which the input check enforces before each call, are the program's keyword inputs: checked
    here, once).  The range constraints (a ``Dim``'s min/max) are checked by the ``_guards_fn``
    the graph itself calls, so they still hold.  Half the per-call time of a small model."""
    import torch

    try:
        from torch._export.non_strict_utils import _get_graph_inputs_of_type_nn_module
        from torch.export._unlift import _check_input_constraints_pre_hook
    except ImportError:  # private helpers moved: the plain call
        return None
    if input_names is None or getattr(module, "_guards_fn", None) is None:
        return None
    hooks = torch.nn.modules.module
    if any(getattr(hooks, name, None) for name in (
        "_global_forward_pre_hooks", "_global_forward_hooks", "_global_backward_hooks", "_global_backward_pre_hooks",
    )):
        return None  # hooks the user registered for every module must keep firing
    pre = list(module._forward_pre_hooks.values())
    if len(pre) != 2 or _check_input_constraints_pre_hook not in pre or len(module._forward_hooks) != 1:
        return None  # not the hooks this torch is known to add: the plain call
    if module._backward_hooks or module._backward_pre_hooks:
        return None
    try:
        args_spec, kwargs_spec = children(program.call_spec.in_spec)
        takes = list(kwargs_spec.context) if kwargs_spec.type is dict else None
        leaves = all(child.is_leaf() for child in children(kwargs_spec))
        module_inputs = _get_graph_inputs_of_type_nn_module(program.example_inputs)
    except Exception:  # noqa: BLE001 - a program unlike the ones export writes: the plain call
        return None
    if args_spec.num_leaves or takes is None or not leaves or module_inputs or sorted(takes) != sorted(input_names):
        return None
    return module.forward


class ExportedModel:
    """A loaded program: ``infer`` calls ``module(**inputs)`` under inference mode."""

    def __init__(self, module: Any, device: Any, names: list[str] | None, *, call: Any = None) -> None:
        self.module = module
        self._call = module if call is None else call  # see direct_forward
        self.device = device
        self._convert = Converter(device, TorchExportRunner.runner_name)
        self._names = names
        self._guard = _inference_guard()

    def prepare(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Inputs as tensors on the device, ahead of inference (``seal``)."""
        with self._guard():
            return {name: self._convert.tensor(name, value) for name, value in inputs.items()}

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the program on numpy inputs; returns numpy arrays."""
        with self._guard():
            tensor = self._convert.tensor
            return self._run({name: tensor(name, value) for name, value in inputs.items()})

    def infer_prepared(self, prepared: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run inputs converted by :meth:`prepare` (``seal``)."""
        with self._guard():
            return self._run(prepared)

    def _run(self, tensors: dict[str, Any]) -> dict[str, np.ndarray]:
        call = self._call
        if call is None:
            raise CartonRuntimeError("E-RUNTIME-CLOSED", "the model was closed")
        try:
            result = call(**tensors)
        except Exception as exc:
            raise infer_error(exc) from exc
        return self._convert.outputs(result, self._names)

    def close(self) -> None:
        """Drop the module; later inferences raise ``E-RUNTIME-CLOSED``."""
        self.module = self._call = None


__all__ = ["ExportedModel", "TorchExportRunner", "direct_forward", "load_program", "place_file", "pt2_kind", "quiet_torch_export"]
