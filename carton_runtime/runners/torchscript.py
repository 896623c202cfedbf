"""The built-in TorchScript runner (spec FMT-RUNNER-7; the original's carton-runner-torch).

Contract: ``runner_name = "torchscript"``, ``runner_compat_version = 1``, the TorchScript file at
``model/model.pt``, framework version = the installed torch version.  ``forward`` receives ONE
dict ``{input name: value}`` and returns a dict with ``str`` keys.

Inputs: numeric numpy arrays of every dtype ``torch.from_numpy`` supports (zero-copy when the
array is writeable, native-endian and has non-negative strides; otherwise one copy), a 0-d
string array becomes ``str`` and a 1-d one ``List[str]``.  Outputs: tensors become numpy arrays
on the CPU (zero-copy for tensors the forward pass created; tensors the module owns, such as a
returned parameter, are copied), ``str`` a 0-d string array and ``List[str]`` a 1-d one.
Inference runs under inference mode with the module in eval mode; an exception raised by
``forward`` becomes ``E-RUNTIME-INFER`` and the model stays usable.  Its message is the model's
own (``the model raised ValueError: negative input``: the last part of TorchScript's "The
following operation failed in the TorchScript interpreter ..." text); the full TorchScript trace
goes to a DEBUG record of this module's logger and stays on the torch exception, chained as the
error's ``__cause__``.  (Inputs are checked against the archive's declared specs before they get
here: :mod:`carton_runtime.input_check`.)

Thread pools: the runner options ``num_threads`` and ``num_interop_threads`` size torch's
intra-op and inter-op pools, which are process-wide, not per model.  The first model loaded with
one of them sets that pool; a later model asking for a different value gets a ``RuntimeWarning``
(also logged) naming the value that stays, and shares the pools as they are.  torch lets the
inter-op pool be sized only once per process, before any inter-op work: when that is too late
the option is ignored with a warning and the current size stays for every model.
:func:`thread_pool_settings` tells what runner options set.

An empty 1-d string array is an empty ``List[str]``.  torch cannot type ``[]`` when it converts a
Python dict to the ``Dict[str, Any]`` that ``forward`` takes, so when that conversion fails (and
only then: the normal path pays nothing) the call is retried through a small scripted adapter,
compiled once per model, that takes typed dicts (``Dict[str, Tensor]``, ``Dict[str, str]``,
``Dict[str, List[str]]``), builds the ``Dict[str, Any]`` inside TorchScript, in the caller's key
order, and calls ``forward``.

Note that zero-copy inputs mean a model that modifies an input in place modifies the caller's
array (the original always copied).
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress
from ..devices import DeviceSpec, resolve_torch_device
from ..errors import CartonRuntimeError
from . import _torch_common
from ._torch_common import (
    KNOWN_OPTS,  # noqa: F401 - re-exported (this module's public names predate _torch_common)
    TorchRunnerBase,
    _describe,
    _first_line,
    _forget_thread_pool_settings,  # noqa: F401 - re-exported for tests
    _inference_guard,
    thread_pool_settings,
)

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
_STRING_KINDS = frozenset("UTO")
_NUMERIC_KINDS = frozenset("fiucb")


class TorchScriptRunner(TorchRunnerBase):
    """Runs TorchScript models in this process."""

    runner_name = "torchscript"
    runner_compat_version = 1
    _instance: "TorchScriptRunner | None" = None

    def accepts_object(self, obj: Any) -> bool:
        """Whether ``pack`` takes this model object (a ``torch.jit.ScriptModule``)."""
        return _is_script_module(obj)

    def accepts_path(self, path: Path) -> bool:
        """Whether ``path`` is a ``torch.jit.save`` file (judged without unpickling anything)."""
        return path.is_file() and torchscript_file_problem(path) is None

    # -- packing ------------------------------------------------------------------------------

    def pack(self, path: Any, work_dir: Path) -> Path:
        """The model directory for a TorchScript file, a ``torch.jit.ScriptModule`` (saved with
        ``torch.jit.save``) or a directory holding model.pt.  A file must be a TorchScript archive:
        ``torch.save`` output (a pickled module or a state_dict) is refused, found from the zip's
        member names and the pickle's first opcodes only (never unpickled)."""
        if _is_script_module(path):
            return _save_script_module(path, work_dir)
        if not isinstance(path, (str, os.PathLike)):
            raise CartonRuntimeError("E-RUNTIME-ARG", _not_torchscript(f"a {type(path).__name__} object", _module_kind(path)))
        path = Path(path)
        if path.is_dir():
            if not (path / MODEL_FILE).is_file():
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{path} is a directory without {MODEL_FILE}")
            return path
        if not path.is_file():
            raise CartonRuntimeError("E-RUNTIME-ARG", f"{path}: no such file or directory", name="path")
        problem = torchscript_file_problem(path)
        if problem is not None:
            raise CartonRuntimeError("E-RUNTIME-ARG", _not_torchscript(str(path), problem))
        model_dir = work_dir / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        target = model_dir / MODEL_FILE
        try:
            target.symlink_to(path.resolve())  # stored as the target's content when packing
        except OSError:
            shutil.copyfile(path, target)
        return model_dir

    # -- loading ------------------------------------------------------------------------------

    def load(self, files: Any, *, device: DeviceSpec, opts: dict[str, Any] | None = None) -> "TorchScriptModel":
        """Load ``model/model.pt`` with ``torch.jit.load`` onto the device; ``opts`` set torch's thread
        counts (process-wide: the first model asking sets them, see :func:`apply_opts`)."""
        if "torch" not in sys.modules:  # the first load pays for importing torch: its own phase in the load log
            with progress.phase("import torch"):
                import torch
        import torch

        apply_opts(opts or {}, _describe(files))
        torch_device = resolve_torch_device(device)
        if MODEL_FILE not in files.names():
            raise CartonRuntimeError(
                "E-RUNTIME-RUNNER",
                f"a torchscript model needs model/{MODEL_FILE}; the archive has {sorted(files.names()) or 'nothing'} under model/",
            )
        with files.local_file(MODEL_FILE) as path:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load is deprecated
                    module = torch.jit.load(str(path), map_location=torch_device)
            except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and friends
                raise CartonRuntimeError("E-RUNTIME-RUNNER", f"model/{MODEL_FILE} is not a loadable TorchScript file: {_first_line(exc)}") from None
        module.eval()
        return TorchScriptModel(module, torch_device)


# -- pack checks ----------------------------------------------------------------------------------

_HINT = (
    "script or trace it first: torch.jit.save(torch.jit.script(model), PATH) "
    "or torch.jit.save(torch.jit.trace(model, example), PATH), then pack PATH "
    "(or pass the torch.jit.ScriptModule to pack directly)"
)


def _not_torchscript(what: str, problem: str) -> str:
    return f"{what} is not a TorchScript archive (what the torchscript runner loads): {problem}; {_HINT}"


def _is_script_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    jit = getattr(torch, "jit", None) if torch is not None else None
    cls = getattr(jit, "ScriptModule", None)
    return cls is not None and isinstance(obj, cls)


def _module_kind(obj: Any) -> str:
    torch = sys.modules.get("torch")
    module_cls = getattr(getattr(torch, "nn", None), "Module", None) if torch is not None else None
    if module_cls is not None and isinstance(obj, module_cls):
        return "an eager torch.nn.Module, not a ScriptModule"
    if isinstance(obj, dict):
        return "a dict (a state_dict?) holds weights only, not the model's code"
    return "pack takes a path or a torch.jit.ScriptModule"


def _save_script_module(module: Any, work_dir: Path) -> Path:
    import torch

    model_dir = Path(work_dir) / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.save is deprecated
            torch.jit.save(module, str(model_dir / MODEL_FILE))
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and friends
        raise CartonRuntimeError("E-RUNTIME-ARG", f"torch.jit.save failed for the ScriptModule: {_first_line(exc)}") from None
    return model_dir


_PICKLE_PROBE = 4096
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER


def _pickle_kind(head: bytes) -> str:
    """What a pickle holds, from its first opcodes only (``pickletools.genops`` parses, it
    never executes): the first global it names, or its first container opcode."""
    import pickletools

    strings: list[str] = []
    stream = io.BytesIO(head)
    try:
        first = [(op.name, arg) for op, arg, _pos in pickletools.genops(stream)]
        if [name for name, _ in first if name not in ("PROTO", "FRAME")] == ["LONG1", "STOP"] and first[-2][1] == _LEGACY_MAGIC:
            # torch's legacy format: pickles of the magic number, the protocol and sys info, then the data
            for _ in range(2):
                for _item in pickletools.genops(stream):
                    pass
        else:
            stream.seek(0)
        for opcode, arg, _pos in pickletools.genops(stream):
            name = opcode.name
            if name in ("PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "MARK"):
                continue
            if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "SHORT_BINSTRING", "BINSTRING"):
                strings.append(str(arg))
                continue
            if name == "GLOBAL":
                return _global_kind(str(arg).replace(" ", "."))
            if name == "STACK_GLOBAL" and len(strings) >= 2:
                return _global_kind(f"{strings[-2]}.{strings[-1]}")
            if name in ("EMPTY_DICT", "DICT"):
                return "a pickled dict (torch.save of a state_dict?) holds weights only, not the model's code"
            break
    except Exception:  # noqa: BLE001 - a truncated probe or a non-pickle: judged by what was seen
        pass
    return "a pickle (torch.save output?), not TorchScript"


def _global_kind(qualified: str) -> str:
    if qualified in ("collections.OrderedDict", "builtins.dict", "__builtin__.dict"):
        return "a state_dict (torch.save(model.state_dict())) holds weights only, not the model's code"
    return f"a pickled {qualified} object (torch.save(model)), which needs its Python class to load"


def torchscript_file_problem(path: Path) -> str | None:
    """None when ``path`` looks like ``torch.jit.save`` output (a zip with ``<name>/code/`` and
    ``<name>/constants.pkl``), else what it seems to be.  Nothing is unpickled."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(_PICKLE_PROBE)
    except OSError as exc:
        return f"cannot read it: {exc}"
    if not head:
        return "the file is empty"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                code = any(n.split("/", 1)[-1].startswith("code/") for n in names if "/" in n)
                constants = any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in names)
                data = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
                if code and constants:
                    return None
                if data:
                    with zf.open(data[0]) as member:
                        return _pickle_kind(member.read(_PICKLE_PROBE))
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            return f"an unreadable zip ({exc})"
        return "a zip without TorchScript's code/ and constants.pkl members"
    if head[:1] == b"\x80":
        return _pickle_kind(head)
    return "neither a zip (TorchScript archive) nor a pickle"


_TS_HEADER = "The following operation failed in the TorchScript interpreter"
_TS_TRACEBACK = re.compile(r"^Traceback of TorchScript.*$", re.MULTILINE)
_TS_MESSAGE = re.compile(r"^([A-Za-z_][\w.]*): ", re.MULTILINE)
MAX_MESSAGE = 2000  # characters of the model's own message kept in the error


def model_message(exc: BaseException) -> str:
    """The model's own message from an exception ``forward`` raised: for TorchScript's "The
    following operation failed in the TorchScript interpreter. Traceback of TorchScript ..." the
    original exception (``ValueError: negative input``, ``RuntimeError: mat1 and mat2 ...``),
    without the trace; otherwise the exception's text.  At most :data:`MAX_MESSAGE` characters."""
    text = str(exc).strip()
    if text.startswith(_TS_HEADER):
        tracebacks = list(_TS_TRACEBACK.finditer(text))
        found = _TS_MESSAGE.search(text, tracebacks[-1].end() if tracebacks else 0)
        if found is not None:
            kind = found.group(1).removeprefix("builtins.")
            text = f"{kind}: {text[found.end():].strip()}"
    elif not text:
        text = type(exc).__name__
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + " ..."
    return text


def _infer_error(exc: BaseException) -> CartonRuntimeError:
    """``E-RUNTIME-INFER`` with the model's message first; the full text (TorchScript's trace)
    goes to a DEBUG log record and stays on the exception chained as ``__cause__``."""
    message = model_message(exc)
    log.debug("forward raised %s: %s\n(full error from torch follows)\n%s", type(exc).__name__, message, exc)
    return CartonRuntimeError("E-RUNTIME-INFER", f"the model raised {message}")


def apply_opts(opts: dict[str, Any], model: str = "this model") -> None:
    """``num_threads`` / ``num_interop_threads`` (process-wide: see :mod:`._torch_common`)."""
    _torch_common.apply_opts(opts, model, runner="torchscript", logger=log, stacklevel=4)


class TorchScriptModel:
    """A loaded TorchScript module (see the module docstring for conversions)."""

    def __init__(self, module: Any, device: Any) -> None:
        import torch

        self._torch = torch
        self.module = module
        self.device = device
        self._on_cpu = device.type == "cpu"
        self._forward = module.forward
        self._guard = _inference_guard()
        self._from_numpy = torch.from_numpy
        self._tensor_type = torch.Tensor
        self._adapter: Any = None  # the typed-dict adapter for empty string lists, once compiled
        self._adapter_error: str | None = None  # why it could not be compiled
        self._adapter_lock = threading.Lock()

    # -- inputs -------------------------------------------------------------------------------

    def _convert_input(self, name: str, value: Any) -> Any:
        if type(value) is np.ndarray:
            kind = value.dtype.kind
            if kind in _NUMERIC_KINDS:
                tensor = None
                if value.flags.writeable:
                    try:
                        tensor = self._from_numpy(value)
                    except (TypeError, ValueError, RuntimeError):
                        pass
                if tensor is None:
                    tensor = self._wrap_copy(name, value)
                return tensor if self._on_cpu else tensor.to(self.device)
            if kind in _STRING_KINDS:
                return self._strings(name, value)
            raise CartonRuntimeError("E-RUNTIME-INPUT", f"input {name!r}: dtype {value.dtype} is not supported by the torchscript runner", name=name)
        if isinstance(value, (np.ndarray, np.generic)):
            return self._convert_input(name, np.asarray(value).view(np.ndarray) if isinstance(value, np.ndarray) else np.asarray(value))
        if isinstance(value, self._tensor_type):
            return value if value.device == self.device else value.to(self.device)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
            raise CartonRuntimeError("E-RUNTIME-INPUT", f"input {name!r}: nested tensors are not supported by the torchscript runner", name=name)
        raise CartonRuntimeError(
            "E-RUNTIME-INPUT", f"input {name!r}: expected a numpy array, got {type(value).__name__}", name=name
        )

    def _wrap_copy(self, name: str, value: np.ndarray) -> Any:
        """One copy for arrays torch cannot wrap (read-only, byte-swapped, negative strides)."""
        dtype = value.dtype if value.dtype.isnative else value.dtype.newbyteorder("=")
        try:
            return self._from_numpy(np.array(value, dtype=dtype, order="C", copy=True))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CartonRuntimeError(
                "E-RUNTIME-INPUT", f"input {name!r}: dtype {value.dtype} is not supported by torch ({_first_line(exc)})", name=name
            ) from None

    def _strings(self, name: str, value: np.ndarray) -> Any:
        if value.ndim > 1:
            raise CartonRuntimeError(
                "E-RUNTIME-INPUT",
                f"input {name!r}: tried using a string tensor with {value.ndim} dims. Currently, only string tensors of 0 or 1 dims are supported.",
                name=name,
            )
        items = value.tolist()
        if value.dtype.kind == "O":
            for item in items if value.ndim else [items]:
                if not isinstance(item, str):
                    raise CartonRuntimeError(
                        "E-RUNTIME-INPUT", f"input {name!r}: object arrays must hold only str, found {type(item).__name__}", name=name
                    )
        return items

    def _prepare(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Inputs as ``forward`` takes them.  The common cases (a writeable numeric array on a
        CPU model: wrapped zero-copy; a 0-d or 1-d ``str`` array: ``str`` / ``List[str]``) are
        decided inline from one ``dtype.kind`` lookup; everything else, errors included, goes
        through :meth:`_convert_input`."""
        try:
            items = inputs.items()
        except AttributeError:
            raise CartonRuntimeError("E-RUNTIME-INPUT", f"inputs must be a dict of name -> numpy array, not {type(inputs).__name__}") from None
        prepared = {}
        fast = self._on_cpu
        from_numpy = self._from_numpy
        for name, value in items:
            if type(value) is np.ndarray:
                kind = value.dtype.kind
                if kind in _NUMERIC_KINDS:
                    if fast and value.flags.writeable:
                        try:
                            prepared[name] = from_numpy(value)
                            continue
                        except (TypeError, ValueError, RuntimeError):
                            pass
                elif kind == "U" and value.ndim < 2:
                    prepared[name] = value.tolist()  # 0-d: a str; 1-d: a list of str
                    continue
            prepared[name] = self._convert_input(name, value)
        return prepared

    def prepare(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Inputs converted (and moved to the device) ahead of inference (``seal``)."""
        with self._guard():  # tensors made here are inference tensors, like those forward makes
            return self._prepare(inputs)

    # -- inference ----------------------------------------------------------------------------

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run ``forward`` on the inputs under inference mode; returns numpy arrays."""
        with self._guard():
            return self._run(self._prepare(inputs))

    def infer_prepared(self, prepared: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run ``forward`` on inputs converted by :meth:`prepare` (``seal``)."""
        with self._guard():
            return self._run(prepared)

    def _run(self, prepared: dict[str, Any]) -> dict[str, np.ndarray]:
        try:
            out = self._forward(prepared)
        except Exception as exc:
            empty = [k for k, v in prepared.items() if type(v) is list and not v]
            if not (empty and "infer type" in str(exc)):
                raise _infer_error(exc) from exc
            # torch could not type an empty list while converting the arguments (forward did
            # not run): go through the typed adapter
            out = self._run_adapted(prepared, empty[0])
        if type(out) is not dict:
            raise CartonRuntimeError("E-RUNTIME-OUTPUT", f"forward must return a dict, not {type(out).__name__}")
        result = {}
        tensor_type = self._tensor_type
        fast = self._on_cpu
        for key, value in out.items():
            if type(key) is not str:
                raise CartonRuntimeError("E-RUNTIME-OUTPUT", f"forward returned a dict with a non-str key {key!r}")
            vtype = type(value)
            if vtype is tensor_type:
                # hot path: a tensor forward created on the CPU is handed over, zero-copy
                if fast and value.is_inference():
                    try:
                        result[key] = value.numpy()
                        continue
                    except (TypeError, RuntimeError):
                        pass
                result[key] = self._tensor_out(key, value)
            elif vtype is str or vtype is list and value and _all_str(value):
                result[key] = _np_array(value)
            elif isinstance(value, tensor_type):  # a subclass, e.g. a returned Parameter
                result[key] = self._tensor_out(key, value)
            else:
                result[key] = _other_out(key, value)
        return result

    def _run_adapted(self, prepared: dict[str, Any], empty: str) -> Any:
        """``forward(prepared)`` through the typed adapter (see the module docstring)."""
        adapter = self._adapter or self._compile_adapter()
        if adapter is None:
            raise CartonRuntimeError(
                "E-RUNTIME-INPUT",
                f"input {empty!r}: an empty string list cannot be given to this model's forward "
                f"(torch cannot infer the element type of an empty list, and {self._adapter_error}; "
                "declare Dict[str, Any] or Dict[str, List[str]], or pass an element)",
                name=empty,
            )
        tensors: dict[str, Any] = {}
        strs: dict[str, str] = {}
        lists: dict[str, list] = {}
        tensor_type = self._tensor_type
        for key, value in prepared.items():
            if isinstance(value, tensor_type):
                tensors[key] = value
            elif type(value) is str:
                strs[key] = value
            elif type(value) is list:
                lists[key] = value
            else:  # not made by _prepare
                raise CartonRuntimeError("E-RUNTIME-INPUT", f"input {key!r}: a {type(value).__name__} cannot be given to forward", name=key)
        try:
            return adapter(list(prepared), tensors, strs, lists)
        except Exception as exc:
            raise _infer_error(exc) from exc

    def _compile_adapter(self) -> Any:
        """The scripted adapter, compiled on first use; None (and ``_adapter_error``) when
        forward does not take one ``Dict[str, Any]``."""
        with self._adapter_lock:
            if self._adapter is None and self._adapter_error is None and self.module is not None:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        adapter = self._torch.jit.script(_make_adapter_class()(self.module))
                    adapter.eval()
                    self._adapter = adapter
                except Exception as exc:  # noqa: BLE001 - a forward of another signature fails to compile
                    log.debug("no typed-dict adapter for this model: %s", exc)
                    self._adapter_error = "its forward does not take one Dict[str, Any]"
            return self._adapter

    def _tensor_out(self, key: str, value: Any) -> np.ndarray:
        if value.device.type != "cpu":
            value = value.cpu()
        elif not value.is_inference():
            value = value.detach().clone()  # module-owned memory (a parameter, a buffer): copy
        try:
            return value.numpy()
        except (TypeError, RuntimeError) as exc:
            if value.is_conj() or value.is_neg():
                return value.resolve_conj().resolve_neg().numpy()
            raise CartonRuntimeError(
                "E-RUNTIME-OUTPUT", f"output {key!r}: a {value.dtype} tensor cannot be returned as a numpy array ({_first_line(exc)})", name=key
            ) from None

    def close(self) -> None:
        """Drop the module; later inferences raise ``E-RUNTIME-CLOSED``."""
        self.module = None
        self._forward = _closed
        self._adapter = None
        self._adapter_error = "the model was closed"


def _closed(_inputs: Any) -> Any:
    raise CartonRuntimeError("E-RUNTIME-CLOSED", "the model was closed")


_np_array = np.array
_adapter_class: Any = None


def _make_adapter_class() -> Any:
    """The adapter module class (defined once, lazily: it needs torch).  ``forward`` builds
    the ``Dict[str, Any]`` inside TorchScript, where an empty list is typed by the declared
    ``List[str]``, and calls the wrapped module's ``forward``."""
    global _adapter_class
    if _adapter_class is None:
        from typing import Dict, List

        import torch

        class _TypedDictAdapter(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(
                self, order: List[str], tensors: Dict[str, torch.Tensor], strs: Dict[str, str], lists: Dict[str, List[str]]
            ) -> Any:
                inputs: Dict[str, Any] = {}
                for key in order:
                    if key in tensors:
                        inputs[key] = tensors[key]
                    elif key in strs:
                        inputs[key] = strs[key]
                    else:
                        inputs[key] = lists[key]
                return self.inner.forward(inputs)

        _adapter_class = _TypedDictAdapter
    return _adapter_class


def _all_str(items: list) -> bool:
    """Whether every item is a ``str``: ``str.join`` checks that in C, several times faster than
    an ``isinstance`` loop for the short lists models return."""
    try:
        "".join(items)
    except TypeError:
        return False
    return True


def _other_out(key: str, value: Any) -> np.ndarray:
    if isinstance(value, str):
        return np.array(value)
    if isinstance(value, list) and _all_str(value):
        return np.array(value, dtype=str) if value else np.array([], dtype="<U1")
    if isinstance(value, list):
        raise CartonRuntimeError("E-RUNTIME-OUTPUT", f"output {key!r}: a list that is not entirely strings cannot be returned", name=key)
    raise CartonRuntimeError(
        "E-RUNTIME-OUTPUT",
        f"output {key!r} is a {type(value).__name__}; the torchscript runner returns tensors, str and List[str]",
        name=key,
    )


__all__ = ["TorchScriptModel", "TorchScriptRunner", "apply_opts", "model_message", "thread_pool_settings"]
