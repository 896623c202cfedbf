"""A packaged AOTInductor file checked against the TensorSpecs declared for it, at pack time.

A package compiled elsewhere comes without its program, so nothing says which inputs it was
compiled for, and AOTI reads whatever it is given: a package declared with the wrong dtype,
rank or size packs, validates and then answers every call with values read past its buffers.
Every package torch writes carries input checks in its library (dtype, each fixed size, each
dynamic size's range), off unless ``AOTI_RUNTIME_CHECK_INPUTS`` is set.  :func:`check_package`
turns them on in a child interpreter (a library that crashes takes the child, not the packer),
compares the package's keyword inputs and outputs with the declared ones, and calls it once
with zeros shaped by the declared specs: each symbol takes :data:`EXAMPLE_SIZE`, and any size
outside the range the package checks moves to the bound the check names (those ranges are
narrower than the program's, so they are never a refusal).  A check that fails on a declared
dtype, rank or fixed size, or an input or output the package does not have, is
``E-RUNTIME-ARG`` at pack.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

import carton_format as cf

from ..errors import CartonRuntimeError
from ._export_common import EXAMPLE_SIZE

#: Seconds the child may take (torch's import is most of it).
PROBE_TIMEOUT_S = 600
#: Range retries: one per symbol bound the package reports, at most this many in all.
MAX_ATTEMPTS = 8

_PROBE_CHILD = r"""
import json, os, sys, warnings
warnings.simplefilter("ignore")
os.environ["AOTI_RUNTIME_CHECK_INPUTS"] = "1"
import torch
from torch.utils import _pytree as pytree
request = json.loads(sys.stdin.readline())
loader = torch._C._aoti.AOTIModelPackageLoader(request["path"], "model", False, 1, -1)
in_spec, out_spec = (pytree.treespec_loads(s) for s in loader.get_call_spec())
def kids(spec):
    fn = getattr(spec, "children", None)
    return list(fn()) if callable(fn) else list(spec.children_specs)
args_spec, kwargs_spec = kids(in_spec)
names = [str(k) for k in kwargs_spec.context]
report = {"positional": args_spec.num_leaves, "inputs": names}
report["output_kind"] = "dict" if out_spec.type is dict else "tensor" if out_spec.is_leaf() else "sequence"
report["outputs"] = [str(k) for k in out_spec.context] if out_spec.type is dict else None
print("CARTON-PROBE " + json.dumps(report), flush=True)
for line in sys.stdin:  # one call per line: {input name: shape}
    shapes = json.loads(line)
    try:
        flat = [torch.zeros(shapes[n], dtype=getattr(torch, request["dtypes"][n]), device=request["device"]) for n in names]
        result = {"ok": True, "dtypes": [str(t.dtype).removeprefix("torch.") for t in loader.boxed_run(flat)]}
    except KeyError as exc:
        result = {"ok": False, "error": f"no declared input {exc.args[0]!r}"}
    except Exception as exc:
        result = {"ok": False, "error": str(exc).strip()}
    print("CARTON-PROBE " + json.dumps(result), flush=True)
"""

_DTYPE = re.compile(r"input_handles\[(\d+)\]: unmatched dtype")
_FIXED = re.compile(r"input_handles\[(\d+)\]: unmatched dim value at (\d+), expected: (\d+), but got: (\d+)")
_RANGE = re.compile(r"input_handles\[(\d+)\]: dim value is too (small|large) at (\d+), expected (?:it )?to be [<>]= (\d+)")
_RANK = re.compile(r"expected ndim (\d+) but got (\d+)")


def _arg(message: str, name: str | None = None) -> CartonRuntimeError:
    return CartonRuntimeError("E-RUNTIME-ARG", f"the AOTInductor package does not fit the declared specs: {message}", name=name)


class _Child:
    """The probing interpreter: loads the package once, then answers one call per request (a
    size moved into range costs a call, not another torch import).  Killed after
    :data:`PROBE_TIMEOUT_S` in all."""

    def __init__(self, path: Path, dtypes: dict[str, str], device: str) -> None:
        self._cwd = tempfile.TemporaryDirectory(prefix="carton-aoti-probe-")  # an empty cwd: nothing to import from it
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=self._cwd.name,
        )
        self._expired = False
        self._timer = threading.Timer(PROBE_TIMEOUT_S, self._expire)
        self._timer.start()
        self.report = self._ask({"path": str(path.absolute()), "dtypes": dtypes, "device": device})

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except OSError:
            line = ""
        if line.startswith("CARTON-PROBE "):
            return json.loads(line[len("CARTON-PROBE "):])
        self._proc.kill()  # it died, hung up or was stopped: what it said last is the reason
        stderr = self._proc.stderr.read() if self._proc.stderr is not None else ""
        self.close()
        if self._expired:
            raise CartonRuntimeError("E-RUNTIME-ARG", f"checking the AOTInductor package took over {PROBE_TIMEOUT_S} s")
        lines = [text for text in stderr.strip().splitlines() if text.strip()]
        why = lines[-1] if lines else f"exit status {self._proc.returncode}"
        raise CartonRuntimeError("E-RUNTIME-ARG", f"the AOTInductor package cannot be loaded to check it against the declared specs: {why}")

    def _expire(self) -> None:
        self._expired = True
        self._proc.kill()

    def call(self, shapes: dict[str, list[int]]) -> dict[str, Any]:
        """One call with zeros of ``shapes``: ``{"ok": True, "dtypes": [...]}`` or ``{"ok": False, "error": ...}``."""
        return self._ask(shapes)

    def close(self) -> None:
        """Stop the child (its stdin closing ends its loop) and remove its directory."""
        self._timer.cancel()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._cwd.cleanup()


def _example_shapes(inputs: Sequence[cf.TensorSpec], sizes: dict[Any, int]) -> dict[str, list[int]]:
    """Zeros' shapes: fixed sizes as declared, each symbol :data:`EXAMPLE_SIZE`; ``sizes`` moves
    a symbol (by name) or one dimension (by ``(input, axis)``) into the range the package checks."""
    out = {}
    for s in inputs:
        dims = []
        for axis, d in enumerate(s.shape):  # type: ignore[arg-type]
            default = d if isinstance(d, int) else sizes.get(d, EXAMPLE_SIZE)
            dims.append(sizes.get((s.name, axis), default))
        out[s.name] = dims
    return out


def check_package(path: Path, inputs: Sequence[cf.TensorSpec], outputs: Sequence[cf.TensorSpec] | None, *, device: str = "cpu") -> None:
    """E-RUNTIME-ARG unless the package at ``path`` takes the declared (ranked, numeric) inputs
    and returns the declared outputs; see the module docstring."""
    by_name = {s.name: s for s in inputs}
    child = _Child(path, {s.name: s.dtype for s in inputs}, device)
    try:
        report = child.report
        order = report["inputs"]
        if report["positional"]:
            raise _arg(f"it takes {report['positional']} positional input(s); the runner passes inputs by name")
        if sorted(order) != sorted(by_name):
            raise _arg(f"it takes the inputs {order}, the declared inputs are {list(by_name)}")
        sizes: dict[Any, int] = {}
        for _ in range(MAX_ATTEMPTS):
            result = child.call(_example_shapes(inputs, sizes))
            if result["ok"]:
                _check_outputs(report, result["dtypes"], outputs)
                return
            refusal = _explain(result["error"], order, by_name, sizes)
            if refusal is not None:
                raise refusal
        raise _arg("the package's size ranges do not settle on one example size per symbol")
    finally:
        child.close()


def _explain(error: str, order: list[str], by_name: dict[str, cf.TensorSpec], sizes: dict[Any, int]) -> CartonRuntimeError | None:
    """The coded error for what the package's check said, or None after moving an example size
    into the range the package checks (try again).  A range is never a refusal: the ranges torch
    compiles are narrower than the program's (``Dim(min=1, max=16)`` is checked as 2..15), and a
    dynamic dimension may be declared with any size or symbol."""
    match = _DTYPE.search(error)
    if match:
        spec = by_name[order[int(match.group(1))]]
        return _arg(f"input {spec.name!r} is declared {spec.dtype}, the package takes another dtype ({error.splitlines()[0]})", spec.name)
    fixed, ranged = _FIXED.search(error), _RANGE.search(error)
    match = fixed or ranged
    if match:
        spec = by_name[order[int(match.group(1))]]
        axis = int(match.group(2) if fixed else match.group(3))
        if axis >= len(spec.shape):  # type: ignore[arg-type]
            return _arg(f"input {spec.name!r} is declared {len(spec.shape)}-d, the package takes more dimensions", spec.name)  # type: ignore[arg-type]
        declared = spec.shape[axis]  # type: ignore[index]
    if fixed:
        want = int(fixed.group(3))
        hint = "declare it" if isinstance(declared, int) else f"the package was compiled for that size only (declare {want}, or export with a Dim)"
        return _arg(f"input {spec.name!r}: dimension {axis} is {want} in the package, declared {declared!r}; {hint}", spec.name)
    if ranged:
        bound = int(ranged.group(4))
        key = declared if isinstance(declared, str) else (spec.name, axis)
        if sizes.get(key) == bound:  # moved there already and still refused: the checks disagree with themselves
            return _arg(f"input {spec.name!r}: dimension {axis} fits no size the package checks ({error.splitlines()[0]})", spec.name)
        sizes[key] = bound
        return None
    match = _RANK.search(error)
    if match:
        return _arg(f"an input has rank {match.group(2)} as declared, the package takes rank {match.group(1)} ({error.splitlines()[0]})")
    return _arg(f"a call with zeros of the declared shapes failed: {error.splitlines()[0] if error else 'no message'}")


def _check_outputs(report: dict[str, Any], dtypes: list[str], outputs: Sequence[cf.TensorSpec] | None) -> None:
    if outputs is None:
        return
    if report["output_kind"] == "dict":
        names = report["outputs"]
        if sorted(names) != sorted(s.name for s in outputs):
            raise _arg(f"it returns the outputs {names}, the declared outputs are {[s.name for s in outputs]}")
        returned = dict(zip(names, dtypes))
    else:
        if len(outputs) != len(dtypes):
            raise _arg(f"it returns {len(dtypes)} tensor(s), {len(outputs)} output(s) are declared")
        returned = {s.name: t for s, t in zip(outputs, dtypes)}
    for spec in outputs:
        if returned[spec.name] != spec.dtype:
            raise _arg(f"output {spec.name!r} is declared {spec.dtype}, the package returns {returned[spec.name]}", spec.name)


__all__ = ["check_package"]
