"""What the ``torch_export`` and ``aotinductor`` runners share: the program's signature as
TensorSpecs, packing checks, and numpy <-> torch at the call.

Contract of a packed program (spec FMT-EXPORT-3, FMT-AOTI-3): its forward takes
the model's inputs as keyword arguments named as the inputs (no positional inputs), every input
a tensor; it returns a dict ``{name: tensor}``, one tensor, or a tuple/list of tensors, which get
the declared output names in order.  TensorSpecs are required: derived from an
``ExportedProgram``'s signature when none are given, checked against it when given (every
dimension the program fixed is declared with that size, every dynamic one with a symbol, one
symbol per program symbol), and the symbols of declared specs become ``torch.export.Dim`` objects
when pack exports an eager module itself (the same symbol = the same ``Dim``).  String specs are
refused: torch.export bakes a ``str`` into the graph as a constant and specialises a
``List[str]`` to its traced length (an AOTI package then silently answers for the traced string).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

import carton_format as cf

from ..errors import CartonRuntimeError
from ._torch_common import _first_line

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt2"
#: Carton dtype names torch shares (``torch.<name>``); others (bool, float16, ...) cannot be declared.
SPEC_DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
#: The symbol-size used for example inputs when pack exports an eager module (0 and 1 specialise).
EXAMPLE_SIZE = 2


def is_exported_program(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.export.ExportedProgram`` (without importing torch)."""
    torch = sys.modules.get("torch")
    cls = getattr(getattr(torch, "export", None), "ExportedProgram", None) if torch is not None else None
    return cls is not None and isinstance(obj, cls)


def is_eager_module(obj: Any) -> bool:
    """An ``nn.Module`` that is not a ScriptModule (pack exports it, given input specs)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if isinstance(obj, getattr(torch.jit, "ScriptModule", ())):
        return False
    return isinstance(obj, torch.nn.Module)


def _arg(message: str, name: str | None = None) -> CartonRuntimeError:
    return CartonRuntimeError("E-RUNTIME-ARG", message, name=name)


def refuse_strings(specs: Sequence[cf.TensorSpec] | None, runner: str, side: str) -> None:
    """String specs cannot be exported faithfully (see the module docstring): a coded error at pack."""
    for spec in specs or ():
        if spec.dtype == "string":
            raise _arg(
                f"{side} {spec.name!r} is declared string; the {runner} runner cannot run string tensors "
                "(torch.export bakes a str input into the graph as a constant and specialises List[str] to its traced length); "
                "use the torchscript or python runner for string inputs and outputs",
                spec.name,
            )


def require_ranked(specs: Sequence[cf.TensorSpec], runner: str) -> None:
    for spec in specs:
        if spec.shape is None or isinstance(spec.shape, str):
            raise _arg(
                f"input {spec.name!r} has shape {spec.shape!r}; the {runner} runner needs every input's rank and dimensions "
                "(ints for fixed sizes, symbols such as 'batch' for dynamic ones) to check them before each call",
                spec.name,
            )


# -- the program's signature -------------------------------------------------------------------


def children(spec: Any) -> list[Any]:
    """A pytree TreeSpec's children (``children()`` where torch has it; ``children_specs`` is deprecated)."""
    fn = getattr(spec, "children", None)
    return list(fn()) if callable(fn) else list(spec.children_specs)


_link_dir: Path | None = None
_link_ids = itertools.count()
_link_lock = threading.Lock()
_named: dict[str, Path] = {}  # target -> its .pt2-named link (pt2_path)


def _links() -> Path:
    """A private directory for :func:`pt2_path`'s links, made once per process, removed at exit."""
    global _link_dir
    with _link_lock:
        if _link_dir is None or not _link_dir.is_dir():
            _link_dir = Path(tempfile.mkdtemp(prefix="carton-pt2-"))
            atexit.register(shutil.rmtree, _link_dir, True)
        return _link_dir


@contextlib.contextmanager
def pt2_path(path: Path) -> Iterator[Path]:
    """``path`` under a name ending in ``.pt2`` (torch's package loaders want the suffix; a cached
    file has none): the path itself, else a symlink to it (:func:`_pt2_link`), or, where links
    fail, a copy for the block's duration."""
    if path.suffix == ".pt2":
        yield path
        return
    link = _pt2_link(path)
    if link is not None:
        yield link
        return
    copy = _links() / f"{os.getpid()}-{next(_link_ids)}.pt2"
    shutil.copyfile(path, copy)
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def _pt2_link(path: Path) -> Path | None:
    """A ``.pt2``-named symlink to ``path``, made once per path and process and reused (it
    resolves at each open, so it names what ``path`` holds then); None where links fail."""
    target = str(path.absolute())
    with _link_lock:
        link = _named.get(target)
    if link is not None and link.is_symlink():
        return link
    link = _links() / f"{os.getpid()}-{next(_link_ids)}.pt2"
    try:
        link.symlink_to(target)
    except OSError:
        return None
    with _link_lock:
        _named[target] = link
    return link


@dataclass
class Signature:
    """An ExportedProgram's user inputs and outputs: ``(name, dtype name, dims)``, dims an int
    or a sympy expression (a dynamic dimension)."""

    inputs: list[tuple[str, str, list[Any]]]
    outputs: list[tuple[str, str, list[Any]]]
    output_kind: str  # "dict", "tensor" or "sequence"


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _dims(value: Any) -> list[Any]:
    dims: list[Any] = []
    for d in value.shape:
        node = getattr(d, "node", None)
        dims.append(int(d) if node is None else node.expr)
    return dims


def signature(ep: Any, runner: str) -> Signature:
    """The program's keyword inputs and its outputs; a coded error when it takes positional
    inputs or non-tensor values."""
    from torch.utils import _pytree as pytree

    in_spec = ep.call_spec.in_spec
    out_spec = ep.call_spec.out_spec
    args_spec, kwargs_spec = children(in_spec) if in_spec is not None else (None, None)
    if args_spec is not None and args_spec.num_leaves:
        raise _arg(
            f"the exported program takes {args_spec.num_leaves} positional input(s); the {runner} runner passes inputs by name: "
            "export with keyword inputs, e.g. torch.export.export(model, (), {'x': x}, dynamic_shapes={'x': {0: Dim('batch')}})"
        )
    names = list(kwargs_spec.context) if kwargs_spec is not None else []
    for name, child in zip(names, children(kwargs_spec) if kwargs_spec is not None else []):
        if not child.is_leaf():
            raise _arg(f"input {name!r} of the exported program is a {child.type.__name__}, not one tensor", name)
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    user = [s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    by_name = {n.name: n for n in placeholders}
    inputs = []
    for name, node_name in zip(names, user):
        val = by_name[node_name].meta.get("val")
        if val is None or not hasattr(val, "shape"):
            raise _arg(f"input {name!r} of the exported program is not a tensor (a {type(val).__name__})", name)
        inputs.append((name, _dtype_name(val.dtype), _dims(val)))
    output_node = next(n for n in ep.graph.nodes if n.op == "output")
    user_outputs = [s.arg.name for s in ep.graph_signature.output_specs if s.kind.name == "USER_OUTPUT"]
    out_vals = {getattr(a, "name", None): a.meta.get("val") for a in output_node.args[0] if hasattr(a, "meta")}
    vals = [out_vals.get(name) for name in user_outputs]
    if out_spec is not None and out_spec.type is dict and all(c.is_leaf() for c in children(out_spec)):
        kind, out_names = "dict", [str(k) for k in out_spec.context]
    elif out_spec is None or out_spec.is_leaf():
        kind, out_names = "tensor", ["output"]
    elif out_spec.type in (tuple, list) and all(c.is_leaf() for c in children(out_spec)):
        kind, out_names = "sequence", [f"output_{i}" for i in range(out_spec.num_leaves)]
    else:
        raise _arg(f"the exported program returns {pytree.treespec_dumps(out_spec)[:200]}; the {runner} runner takes a dict of "
                   "tensors, one tensor, or a tuple of tensors")
    outputs = []
    for name, val in zip(out_names, vals):
        if val is None or not hasattr(val, "shape"):
            raise _arg(f"output {name!r} of the exported program is not a tensor", name)
        outputs.append((name, _dtype_name(val.dtype), _dims(val)))
    return Signature(inputs, outputs, kind)


def _spec_dtype(name: str, dtype: str, side: str) -> str:
    if dtype not in SPEC_DTYPES:
        raise _arg(f"{side} {name!r} of the exported program is {dtype}, which a TensorSpec cannot declare (it has {', '.join(SPEC_DTYPES)})", name)
    return dtype


def derived_specs(sig: Signature, names: dict[Any, str] | None = None) -> tuple[list[cf.TensorSpec], list[cf.TensorSpec]]:
    """TensorSpecs from the signature: a fixed size stays an int, a dynamic dimension that is one
    program symbol becomes the name ``names`` gives it (the declared inputs' symbol for it), else
    the symbol's own (``s17``; the same program symbol, the same name), a derived one (``2*s17``)
    ``None``."""
    names = names or {}

    def dims(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for d in values:
            if isinstance(d, int):
                out.append(d)
            elif getattr(d, "is_Symbol", False):
                out.append(names.get(d, str(d)))
            elif getattr(d, "is_Integer", False):
                out.append(int(d))
            else:
                out.append(None)
        return out

    inputs = [cf.TensorSpec(n, _spec_dtype(n, t, "input"), dims(d)) for n, t, d in sig.inputs]
    outputs = [cf.TensorSpec(n, _spec_dtype(n, t, "output"), dims(d)) for n, t, d in sig.outputs]
    return inputs, outputs


def check_declared(sig: Signature, inputs: Sequence[cf.TensorSpec], outputs: Sequence[cf.TensorSpec] | None) -> dict[Any, str]:
    """Declared specs against the program: the same input names and dtypes and ranks, every fixed
    program dimension declared with its size, every dynamic one with a symbol, one declared symbol
    per program symbol; declared outputs: the program's names (or count) and dtypes.  Returns
    the declared symbol of each program symbol."""
    program = {name: (dtype, dims) for name, dtype, dims in sig.inputs}
    declared = [s.name for s in inputs]
    if sorted(declared) != sorted(program):
        raise _arg(f"the declared inputs {declared} are not the exported program's inputs {list(program)}")
    symbol_of: dict[Any, tuple[str, str]] = {}
    for spec in inputs:
        dtype, dims = program[spec.name]
        if spec.dtype != dtype:
            raise _arg(f"input {spec.name!r} is declared {spec.dtype}; the exported program takes {dtype}", spec.name)
        shape = list(spec.shape)  # ranked: checked before
        if len(shape) != len(dims):
            raise _arg(f"input {spec.name!r} is declared {len(shape)}-d; the exported program takes {len(dims)}-d", spec.name)
        for axis, (want, have) in enumerate(zip(shape, dims)):
            if isinstance(have, int) or getattr(have, "is_Integer", False):
                if want != int(have):
                    raise _arg(
                        f"input {spec.name!r}: the exported program fixed dimension {axis} to {int(have)}, declared {want!r}; "
                        f"declare {int(have)}, or export with a torch.export.Dim for that dimension", spec.name)
                continue
            if not isinstance(want, str):
                raise _arg(
                    f"input {spec.name!r}: dimension {axis} is dynamic in the exported program ({have}); declare it with a symbol "
                    "(the same symbol wherever the program uses the same dimension) so it is checked before each call", spec.name)
            seen = symbol_of.setdefault(have, (want, spec.name))
            if seen[0] != want:
                raise _arg(
                    f"input {spec.name!r}: dimension {axis} is the program's {have}, declared {want!r}, but input {seen[1]!r} "
                    f"declares the same program dimension {seen[0]!r}; use one symbol", spec.name)
    declared_names = {have: want for have, (want, _) in symbol_of.items()}
    if outputs is None:
        return declared_names
    if sig.output_kind == "dict":
        names = {s.name for s in outputs}
        program_out = {n for n, _, _ in sig.outputs}
        if names != program_out:
            raise _arg(f"the declared outputs {sorted(names)} are not the exported program's outputs {sorted(program_out)}")
        dtypes = {n: t for n, t, _ in sig.outputs}
    else:
        if len(outputs) != len(sig.outputs):
            raise _arg(f"{len(outputs)} outputs are declared; the exported program returns {len(sig.outputs)} tensor(s)")
        dtypes = {spec.name: t for spec, (_, t, _) in zip(outputs, sig.outputs)}
    for spec in outputs:
        if spec.dtype != dtypes[spec.name]:
            raise _arg(f"output {spec.name!r} is declared {spec.dtype}; the exported program returns {dtypes[spec.name]}", spec.name)
    return declared_names


def export_module(module: Any, inputs: Sequence[cf.TensorSpec], runner: str) -> Any:
    """``torch.export.export`` of an eager module with keyword inputs made from the specs: fixed
    sizes as declared, each symbol a ``Dim`` of that name (the same symbol, the same ``Dim``;
    example size :data:`EXAMPLE_SIZE`), ``*`` a ``Dim.AUTO``."""
    import torch

    require_ranked(inputs, runner)
    dims: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    dynamic: dict[str, Any] = {}
    for spec in inputs:
        shape, per_axis = [], {}
        for axis, d in enumerate(spec.shape):  # type: ignore[arg-type]
            if isinstance(d, int):
                shape.append(d)
                continue
            shape.append(EXAMPLE_SIZE)
            if d is None:
                per_axis[axis] = torch.export.Dim.AUTO
            else:
                if d not in dims:
                    dims[d] = torch.export.Dim(_dim_name(d))
                per_axis[axis] = dims[d]
        kwargs[spec.name] = torch.zeros(shape, dtype=getattr(torch, spec.dtype))
        dynamic[spec.name] = per_axis or None
    try:
        module.eval()
        return torch.export.export(module, (), kwargs, dynamic_shapes=dynamic)
    except Exception as exc:  # noqa: BLE001 - export raises many kinds (UserError, guard failures)
        raise _arg(f"torch.export.export failed for the module with the declared inputs: {_first_line(exc, 500)}") from None


def _dim_name(symbol: str) -> str:
    """A valid Python identifier for ``Dim`` (a spec symbol may be any string)."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in symbol)
    return name if name and not name[0].isdigit() else f"d_{name}"


@dataclass
class PackSource:
    """What pack got, normalised: an ExportedProgram (given or exported here), or a .pt2 path."""

    program: Any = None
    path: Path | None = None


def program_for_pack(obj: Any, info: cf.CartonInfo, runner: str) -> PackSource:
    """The ExportedProgram for an ExportedProgram or an eager module (exported with the declared
    inputs); a path stays a path."""
    if is_exported_program(obj):
        return PackSource(program=obj)
    if is_eager_module(obj):
        if info.inputs is None:
            raise _arg(
                f"an eager torch.nn.Module packs for the {runner} runner only with declared inputs (their symbols become "
                "torch.export.Dim dynamic dimensions); pass inputs=[TensorSpec(...)], or pass a torch.export.ExportedProgram"
            )
        return PackSource(program=export_module(obj, info.inputs, runner))
    if isinstance(obj, (str, os.PathLike)):
        return PackSource(path=Path(os.fspath(obj)))
    raise _arg(f"the {runner} runner packs a torch.export.ExportedProgram, an eager torch.nn.Module or a .pt2 file, not a {type(obj).__name__}")


def specs_for_program(ep: Any, info: cf.CartonInfo, runner: str) -> tuple[list[cf.TensorSpec], list[cf.TensorSpec]]:
    """Declared specs checked against the program, or derived from it when none are given."""
    refuse_strings(info.inputs, runner, "input")
    refuse_strings(info.outputs, runner, "output")
    sig = signature(ep, runner)
    if info.inputs is None:
        inputs, derived_out = derived_specs(sig)
        if info.outputs is not None:
            check_declared(sig, inputs, info.outputs)
        return inputs, list(info.outputs) if info.outputs is not None else derived_out
    require_ranked(info.inputs, runner)
    names = check_declared(sig, info.inputs, info.outputs)
    return list(info.inputs), list(info.outputs) if info.outputs is not None else derived_specs(sig, names)[1]


def output_names(files: Any) -> list[str] | None:
    """The archive's declared output names (for a tensor or tuple result), None without specs."""
    try:
        outputs = files.archive.info.outputs
    except AttributeError:
        return None
    return [s.name for s in outputs] if outputs is not None else None


def require_declared_inputs(files: Any, runner: str, why: str) -> None:
    """E-RUNTIME-RUNNER for an archive without ``[[input]]`` specs (a model dir without an
    archive passes: its loader supplies the info)."""
    if declared_inputs(files) is None:
        article = "an" if runner[:1] in "aeiou" else "a"
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"{article} {runner} archive must declare its inputs ([[input]] TensorSpecs): {why}")


def declared_inputs(files: Any) -> list[cf.TensorSpec] | None | bool:
    """The archive's input specs; ``False`` when ``files`` has no archive (an unpacked model dir)."""
    try:
        return files.archive.info.inputs
    except AttributeError:
        return False


# -- numpy <-> torch at the call ---------------------------------------------------------------

_NUMERIC_KINDS = frozenset("fiub")


class Converter:
    """Inputs to tensors (zero-copy for writeable, native, C-contiguous numeric arrays, else one
    contiguous copy; kernels compiled by AOTI assume contiguous inputs) and outputs to numpy."""

    def __init__(self, device: Any, runner: str) -> None:
        import torch

        self.device = device
        self.on_cpu = device.type == "cpu"
        self.runner = runner
        self._from_numpy = torch.from_numpy

    def tensor(self, name: str, value: Any) -> Any:
        if type(value) is not np.ndarray:
            if isinstance(value, np.generic):
                value = np.asarray(value)
            elif isinstance(value, np.ndarray):
                value = value.view(np.ndarray)
            else:
                raise CartonRuntimeError(
                    "E-RUNTIME-INPUT",
                    f"input {name!r}: the {self.runner} runner takes numpy arrays (checked against the declared specs), "
                    f"not {type(value).__name__}",
                    name=name,
                )
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise CartonRuntimeError(
                "E-RUNTIME-INPUT", f"input {name!r}: dtype {value.dtype} is not supported by the {self.runner} runner", name=name
            )
        if not (value.flags.writeable and value.flags.c_contiguous and value.dtype.isnative):
            value = np.array(value, dtype=value.dtype.newbyteorder("="), order="C", copy=True)
        try:
            tensor = self._from_numpy(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CartonRuntimeError(
                "E-RUNTIME-INPUT", f"input {name!r}: dtype {value.dtype} is not supported by torch ({_first_line(exc, 500)})", name=name
            ) from None
        return tensor if self.on_cpu else tensor.to(self.device)

    def array(self, name: str, value: Any) -> np.ndarray:
        import torch

        if not isinstance(value, torch.Tensor):
            raise CartonRuntimeError(
                "E-RUNTIME-OUTPUT", f"output {name!r} is a {type(value).__name__}; the {self.runner} runner returns tensors", name=name
            )
        if value.device.type != "cpu":
            value = value.cpu()
        elif value.requires_grad or not value.is_inference():
            value = value.detach().clone()  # module-owned memory (a parameter, a buffer): copy
        try:
            return value.numpy()
        except (TypeError, RuntimeError) as exc:
            why = _first_line(exc, 500)
            raise CartonRuntimeError(
                "E-RUNTIME-OUTPUT", f"output {name!r}: a {value.dtype} tensor cannot be returned as a numpy array ({why})", name=name
            ) from None

    def outputs(self, result: Any, names: list[str] | None) -> dict[str, np.ndarray]:
        """A dict result by its keys; a tensor or a tuple/list by the declared names, in order."""
        if type(result) is dict:
            return {str(k): self.array(str(k), v) for k, v in result.items()}
        items = list(result) if isinstance(result, (tuple, list)) else [result]
        if names is None or len(names) != len(items):
            names = ["output"] if not isinstance(result, (tuple, list)) else [f"output_{i}" for i in range(len(items))]
        return {name: self.array(name, value) for name, value in zip(names, items)}


def infer_error(exc: BaseException) -> CartonRuntimeError:
    """``E-RUNTIME-INFER`` with the first line of what torch raised (the rest at DEBUG)."""
    log.debug("the exported program raised %s: %s", type(exc).__name__, exc)
    return CartonRuntimeError("E-RUNTIME-INFER", f"the model raised {type(exc).__name__}: {_first_line(exc, 2000)}")


__all__ = [
    "MODEL_FILE",
    "SPEC_DTYPES",
    "Converter",
    "PackSource",
    "Signature",
    "check_declared",
    "require_ranked",
    "children",
    "declared_inputs",
    "derived_specs",
    "export_module",
    "infer_error",
    "is_eager_module",
    "is_exported_program",
    "output_names",
    "program_for_pack",
    "pt2_path",
    "refuse_strings",
    "require_declared_inputs",
    "signature",
    "specs_for_program",
]
