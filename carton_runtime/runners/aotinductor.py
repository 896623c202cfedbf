"""The ``aotinductor`` runner: an AOTInductor package, a torch program compiled ahead of time to a
native shared library for one target (spec FMT-AOTI-1..7).

Contract: ``runner_name = "aotinductor"``, ``runner_compat_version = 1``, framework version = the
installed torch (pack records ``=MAJOR.MINOR.PATCH`` by default: torch makes no cross-version
promise for AOTI libraries), the package written by ``torch._inductor.aoti_compile_and_package``
at ``model/model.pt2``, loaded as ``torch._inductor.aoti_load_package`` loads it (its package
loader, built directly: :func:`open_package`).  Inputs and outputs
map by name as for ``torch_export`` (:mod:`._export_common`).

Target: a package records ``AOTI_PLATFORM`` (``sys.platform``), ``AOTI_MACHINE``
(``platform.machine()``), ``AOTI_CPU_ISA`` (the vector ISA its kernels use, e.g. ``AVX512
AVX512_VNNI``), ``AOTI_DEVICE_KEY`` (``cpu``, ``cuda``) and ``AOTI_COMPUTE_CAPABILITY``.  pack
records the platform and machine as a target triple in ``required_platforms``; load reads the
metadata from the package's zip (before the library is touched) and refuses a package built for
another platform, machine, instruction set or device with ``E-RUNTIME-TARGET``, because torch
itself only logs a warning and then runs (or crashes in) code built for another machine.

AOTI checks nothing about its inputs by default (not names, ranks, nor a batch beyond the
compiled range): TensorSpecs are required, and every call is checked against them before it
runs (:mod:`carton_runtime.input_check`); the runner itself accepts only numpy arrays.  The
checks torch can compile into a package (``AOTI_RUNTIME_CHECK_INPUTS=1``) stay off: their size
ranges are narrower than the program's (a package exported with ``Dim(min=1, max=16)`` checks
2..15, refusing the batches 1 and 16 it runs correctly), so a dynamic size's range is not
enforced.  A package file packed with declared specs is checked against them first, with those
checks on in a child (:mod:`._aoti_probe`).  The call goes straight to the loader's
``boxed_run`` with the inputs in the program's order.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

import carton_format as cf
from carton_format.file_memo import Memo, file_identity

from ..devices import DeviceSpec, resolve_torch_device
from ..errors import CartonRuntimeError
from . import _torch_common
from ._aoti_probe import check_package
from ._export_common import (
    MODEL_FILE,
    Converter,
    PackSource,
    children,
    infer_error,
    is_eager_module,
    is_exported_program,
    output_names,
    program_for_pack,
    pt2_path,
    refuse_strings,
    require_declared_inputs,
    require_ranked,
    specs_for_program,
)
from ._torch_common import TorchRunnerBase, _describe, _first_line, import_torch
from .torch_export import load_program, place_file, pt2_kind, quiet_torch_export

log = logging.getLogger(__name__)

METADATA_KEYS = ("AOTI_PLATFORM", "AOTI_MACHINE", "AOTI_CPU_ISA", "AOTI_DEVICE_KEY")
MAX_METADATA = 1 << 16  # bytes of a metadata JSON member read (it is ~150)

# platform.machine() spellings -> the architecture of a Rust target triple (spec Appendix B)
_ARCH = {
    "x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64", "riscv64": "riscv64gc",
    "ppc64le": "powerpc64le", "s390x": "s390x", "i686": "i686", "i386": "i686", "armv7l": "armv7",
}
# sys.platform -> vendor-os(-env) of a target triple
_OS = {"linux": "unknown-linux-gnu", "darwin": "apple-darwin", "win32": "pc-windows-msvc"}
# AOTI_CPU_ISA words -> the torch.cpu check that the host supports them (x86; others are not checkable)
_ISA_CHECKS = {
    "AVX2": "_is_avx2_supported", "AVX512": "_is_avx512_supported", "AVX512_VNNI": "_is_vnni_supported",
    "AVX512_BF16": "_is_avx512_bf16_supported", "AMX_TILE": "_is_amx_tile_supported", "AMX": "_is_amx_tile_supported",
}


def target_triple(aoti_platform: str, machine: str) -> str | None:
    """The target triple for a package's ``AOTI_PLATFORM`` and ``AOTI_MACHINE`` (None if unknown)."""
    arch = _ARCH.get(machine.lower())
    rest = _OS.get(aoti_platform)
    return f"{arch}-{rest}" if arch and rest else None


def _runner_error(message: str) -> CartonRuntimeError:
    return CartonRuntimeError("E-RUNTIME-RUNNER", message)


#: Package metadata read before, by file identity (carton_format.file_memo): a reload skips the zip.
_metadata_memo: Memo[dict[str, str]] = Memo(max_items=64)


def cached_package_metadata(path: Path, what: str) -> dict[str, str]:
    """:func:`package_metadata`, remembered per file identity (a changed file is read again)."""
    identity = file_identity(path)
    meta = _metadata_memo.get(identity)
    if meta is None:
        meta = package_metadata(path, what)
        _metadata_memo.put(identity, meta)
    return dict(meta)


def package_metadata(path: Path, what: str) -> dict[str, str]:
    """The package's device metadata, read from its zip (``<archive>/data/aotinductor/model/
    *_metadata.json``) without loading anything; a coded error for a file that is not one."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            metas = [n for n in names if "/data/aotinductor/model/" in f"/{n}" and n.endswith("_metadata.json")]
            metas.sort(key=lambda n: not n.endswith("wrapper_metadata.json"))
            if not metas:
                raise _runner_error(f"{what} is not an AOTInductor package (no data/aotinductor/model/*_metadata.json member)")
            if not any(n.endswith(".so") or n.endswith(".dll") or n.endswith(".dylib") for n in names):
                raise _runner_error(f"{what} is not an AOTInductor package (no compiled library in it)")
            with zf.open(metas[0]) as member:
                raw = member.read(MAX_METADATA + 1)
            version = _archive_version(zf, names, metas[0])
    except CartonRuntimeError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError, EOFError) as exc:
        raise _runner_error(f"{what} is not a readable AOTInductor package ({_first_line(exc)})") from None
    try:
        if len(raw) > MAX_METADATA:
            raise ValueError("larger than 64 KiB")
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise _runner_error(f"{what}: the package metadata is not valid JSON ({exc})") from None
    meta = {str(k): str(v) for k, v in doc.items()}
    missing = [k for k in METADATA_KEYS if k not in meta]
    if missing:
        raise _runner_error(f"{what}: the package metadata lacks {', '.join(missing)}")
    readable = _readable_archive_version()
    if version is not None and readable is not None and version != readable:
        raise _runner_error(f"{what}: the package's archive version is {version!r}; this torch reads version {readable!r}")
    return meta


def _archive_version(zf: zipfile.ZipFile, names: list[str], metadata_member: str) -> str | None:
    """The package's ``archive_version`` (beside ``data/`` under the package's top folder), or
    None where it has none (torch then loads it as an older package)."""
    top = metadata_member[: metadata_member.index("data/aotinductor/")]
    name = f"{top}archive_version"
    if name not in names:
        return None
    with zf.open(name) as member:
        return member.read(64).decode("utf-8", "replace").strip()


def _readable_archive_version() -> str | None:
    """The archive version this torch's package loader requires (``aoti_load_package`` refuses another)."""
    try:
        from torch.export.pt2_archive.constants import ARCHIVE_VERSION_VALUE
    except ImportError:
        return None
    return str(ARCHIVE_VERSION_VALUE)


def _host_isa_missing(isa: str) -> list[str]:
    """The words of ``AOTI_CPU_ISA`` this host's CPU lacks (words torch cannot check pass)."""
    import torch

    missing = []
    for word in isa.upper().split():
        check = getattr(torch.cpu, _ISA_CHECKS.get(word, ""), None)
        if callable(check):
            try:
                if not check():
                    missing.append(word)
            except Exception:  # noqa: BLE001 - a private check changed: do not refuse on it
                log.debug("cannot check CPU support for %s", word)
    return missing


def target_problem(meta: dict[str, str], device: Any) -> str | None:
    """Why the package cannot run here on ``device`` (a torch device), or None."""
    host_os, host_machine = sys.platform, platform.machine()
    built = f"{meta['AOTI_PLATFORM']}/{meta['AOTI_MACHINE']}"
    if meta["AOTI_PLATFORM"] != host_os or _ARCH.get(meta["AOTI_MACHINE"].lower(), meta["AOTI_MACHINE"]) != _ARCH.get(
        host_machine.lower(), host_machine
    ):
        return f"the package was built for {built}, this host is {host_os}/{host_machine}"
    key = meta["AOTI_DEVICE_KEY"]
    if key != device.type:
        return f"the package was built for device {key!r}; the model is being loaded on {device}"
    if key == "cpu":
        missing = _host_isa_missing(meta["AOTI_CPU_ISA"])
        if missing:
            return f"the package's kernels use {meta['AOTI_CPU_ISA']}; this CPU lacks {', '.join(missing)}"
    elif key == "cuda":
        import torch

        wanted = meta.get("AOTI_COMPUTE_CAPABILITY", "")
        major, minor = torch.cuda.get_device_capability(device)
        if wanted and wanted != f"{major}{minor}":
            return f"the package was built for compute capability {wanted}; {device} has {major}{minor}"
    return None


def _torch_device(device: DeviceSpec, meta: dict[str, str]) -> Any:
    """The device to load on: the requested one; the default device is the package's own."""
    import torch

    if device.kind == "default":
        if meta["AOTI_DEVICE_KEY"] == "cpu":
            return torch.device("cpu")
        if meta["AOTI_DEVICE_KEY"] == "cuda" and torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device(meta["AOTI_DEVICE_KEY"]) if meta["AOTI_DEVICE_KEY"] != "cuda" else torch.device("cpu")
    return resolve_torch_device(device)


class AOTInductorRunner(TorchRunnerBase):
    """Runs AOTInductor packages in this process."""

    runner_name = "aotinductor"
    runner_compat_version = 1
    _instance: "AOTInductorRunner | None" = None

    def accepts_object(self, obj: Any) -> bool:
        """``pack`` takes an ExportedProgram (an eager module too, given input specs); it is
        compiled at pack time."""
        return is_exported_program(obj) or is_eager_module(obj)

    def accepts_path(self, path: Path) -> bool:
        """An AOTInductor package file."""
        return path.is_file() and pt2_kind(path) == "aoti"

    def default_required_framework_version(self) -> str:
        """``=MAJOR.MINOR.PATCH`` of the installed torch: no cross-version promise for AOTI."""
        from ..registry import to_semver

        core = to_semver(self.framework_version).split("+")[0].split("-")[0]
        return f"={core}"

    # -- packing ------------------------------------------------------------------------------

    def prepare_pack(self, source: Any, info: cf.CartonInfo, work_dir: Path) -> tuple[Any, cf.CartonInfo]:
        """The package to store (compiled here from an ExportedProgram or an eager module) and
        the info with its TensorSpecs and its target in ``required_platforms``."""
        import_torch()
        found = program_for_pack(source, info, self.runner_name)
        if found.path is not None and found.path.is_file() and pt2_kind(found.path) == "export":
            found = PackSource(program=load_program(found.path, str(found.path)))  # a saved program: compiled here
        if found.program is not None:
            inputs, outputs = specs_for_program(found.program, info, self.runner_name)
            path = _compile(found.program, work_dir)
        else:
            path = found.path
            assert path is not None
            if not path.is_file():
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{path}: no such AOTInductor package", name="path")
            refuse_strings(info.inputs, self.runner_name, "input")
            refuse_strings(info.outputs, self.runner_name, "output")
            if info.inputs is None:
                raise CartonRuntimeError(
                    "E-RUNTIME-ARG",
                    "an AOTInductor package file packs only with declared inputs (AOTI checks nothing about its inputs, so the "
                    "runner checks them against the TensorSpecs); declare them (inputs=[...], or carton pack --input), "
                    "or pack the ExportedProgram or its torch.export.save file instead",
                )
            require_ranked(info.inputs, self.runner_name)
            inputs, outputs = list(info.inputs), info.outputs
        try:
            meta = package_metadata(path, str(path))
        except CartonRuntimeError as exc:  # at pack, a file that is no package is a bad argument
            raise CartonRuntimeError("E-RUNTIME-ARG", exc.message, name="path") from None
        if found.program is None:
            _check_package_here(path, meta, inputs, outputs)
        triple = target_triple(meta["AOTI_PLATFORM"], meta["AOTI_MACHINE"])
        if triple is None:
            raise CartonRuntimeError(
                "E-RUNTIME-ARG", f"the package's target {meta['AOTI_PLATFORM']}/{meta['AOTI_MACHINE']} has no known target triple"
            )
        if info.required_platforms is not None and info.required_platforms != [triple]:
            raise CartonRuntimeError(
                "E-RUNTIME-ARG",
                f"required_platforms {info.required_platforms} does not match the package's target {triple!r} (an AOTInductor "
                "package runs on the one target it was compiled for; leave required_platforms out to record it)",
                name="required_platforms",
            )
        info.inputs, info.outputs, info.required_platforms = inputs, outputs, [triple]
        return path, info

    def pack(self, source: Any, work_dir: Path) -> Path:
        """``model/model.pt2``: the package (compiled by :meth:`prepare_pack` or given)."""
        if not isinstance(source, (str, os.PathLike)):
            what = type(source).__name__
            raise CartonRuntimeError("E-RUNTIME-ARG", f"the aotinductor runner packs an ExportedProgram or a package file, not {what}")
        return place_file(Path(source), work_dir)

    # -- loading ------------------------------------------------------------------------------

    def check_files(self, files: Any) -> None:
        """The archive declares its inputs (in this process, before a worker starts)."""
        require_declared_inputs(files, self.runner_name, "AOTI checks none of its inputs")

    def load(self, files: Any, *, device: DeviceSpec, opts: dict[str, Any] | None = None) -> "AOTIModel":
        """Check the package's target, then open its package loader."""
        import_torch()
        _torch_common.apply_opts(opts or {}, _describe(files), runner=self.runner_name, logger=log)
        self.check_files(files)
        if MODEL_FILE not in files.names():
            raise _runner_error(f"an aotinductor model needs model/{MODEL_FILE}; the archive has {sorted(files.names()) or 'nothing'} under model/")
        with files.local_file(MODEL_FILE) as path:
            meta = cached_package_metadata(Path(path), f"model/{MODEL_FILE}")
            torch_device = _torch_device(device, meta)
            problem = target_problem(meta, torch_device)
            if problem is not None:
                raise CartonRuntimeError("E-RUNTIME-TARGET", f"model/{MODEL_FILE} cannot run here: {problem}")
            index = torch_device.index if torch_device.type != "cpu" and torch_device.index is not None else -1
            try:
                loader = open_package(Path(path), index)
            except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and friends
                raise _runner_error(f"model/{MODEL_FILE} is not a loadable AOTInductor package: {_first_line(exc)}") from None
        return AOTIModel(loader, torch_device, output_names(files))


def open_package(path: Path, device_index: int) -> Any:
    """The package's model ``model`` as torch's ``AOTIModelPackageLoader``, built directly:
    what ``aoti_load_package`` ends in, without its first pass over the zip (listing every
    member, reading the metadata again, loading every other model and program in the package),
    whose checks :func:`package_metadata` and :func:`target_problem` made once already; half a
    small package's load time.  Through ``aoti_load_package`` where torch lacks the class."""
    import torch

    loader_class = getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)
    with warnings.catch_warnings(), quiet_torch_export():
        warnings.simplefilter("ignore")
        if loader_class is not None:
            return loader_class(str(path), "model", False, 1, device_index)
        import torch._inductor

        with pt2_path(path) as named:
            return torch._inductor.aoti_load_package(str(named), device_index=device_index).loader


def _check_package_here(path: Path, meta: dict[str, str], inputs: list[cf.TensorSpec], outputs: Any) -> None:
    """A package file against its declared specs (:mod:`._aoti_probe`), where this host can run
    it; a package for another target packs unchecked, with a warning."""
    import torch

    key = meta["AOTI_DEVICE_KEY"]
    problem = "no CUDA device here" if key == "cuda" and not torch.cuda.is_available() else None
    if problem is None:
        problem = target_problem(meta, torch.device(key if key != "cuda" else "cuda:0"))
    if problem is not None:
        log.warning("the AOTInductor package cannot run here (%s): its inputs are not checked against the declared specs", problem)
        return
    check_package(path, inputs, outputs, device=key)


#: What a compiling child runs: load the saved program, compile it into the package path.
_COMPILE_CHILD = """
import sys, warnings
warnings.simplefilter("ignore")
import torch, torch._inductor
program = torch.export.load(sys.argv[1])
torch._inductor.aoti_compile_and_package(program, package_path=sys.argv[2])
"""


def _compile(program: Any, work_dir: Path) -> Path:
    """Compile in a child interpreter when the program can be saved: the compiler (C++ toolchain,
    setuptools' distutils shim, inductor's process-wide state, its memory) then cannot disturb the
    packing process, and it sees a clean interpreter whatever the host imported before."""
    import torch

    target = work_dir / "aoti" / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = work_dir / "aoti" / "program.pt2"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.save(program, str(saved))
    except Exception as exc:  # noqa: BLE001 - a program torch cannot serialise (custom ops): compile here
        log.info("the exported program cannot be saved (%s); compiling it in this process", _first_line(exc))
        return _compile_here(program, target)
    proc = subprocess.run(
        [sys.executable, "-c", _COMPILE_CHILD, str(saved), str(target)], cwd=work_dir, capture_output=True, text=True, check=False
    )
    saved.unlink(missing_ok=True)
    if proc.returncode != 0 or not target.is_file():
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise CartonRuntimeError("E-RUNTIME-ARG", f"aoti_compile_and_package failed: {lines[-1] if lines else f'exit status {proc.returncode}'}")
    return target


def _compile_here(program: Any, target: Path) -> Path:
    import torch._inductor

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch._inductor.aoti_compile_and_package(program, package_path=str(target))
    except Exception as exc:  # noqa: BLE001 - the compiler (or a missing C++ toolchain) fails in many ways
        raise CartonRuntimeError("E-RUNTIME-ARG", f"aoti_compile_and_package failed: {_first_line(exc)}") from None
    return target


class AOTIModel:
    """A loaded package: inputs go to ``loader.boxed_run`` in the program's order."""

    def __init__(self, loader: Any, device: Any, names: list[str] | None) -> None:
        from torch.utils import _pytree as pytree

        self.device = device
        self._loader = loader
        in_spec, out_spec = (pytree.treespec_loads(s) for s in self._loader.get_call_spec())
        args_spec, kwargs_spec = children(in_spec)
        if args_spec.num_leaves:
            raise _runner_error(f"model/{MODEL_FILE} takes positional inputs; the aotinductor runner passes inputs by name")
        self._order = [str(k) for k in kwargs_spec.context]
        self._out_spec = out_spec
        self._unflatten = pytree.tree_unflatten
        self._convert = Converter(device, AOTInductorRunner.runner_name)
        if out_spec.type is dict and all(c.is_leaf() for c in children(out_spec)):
            self._out_names: list[str] | None = [str(k) for k in out_spec.context]
        else:
            self._out_names = None
            self._names = names

    def _flat(self, tensors: dict[str, Any]) -> list[Any]:
        try:
            return [tensors[name] for name in self._order]
        except KeyError as exc:  # inputs were checked against the specs: the specs lack a program input
            name = exc.args[0]
            raise CartonRuntimeError("E-RUNTIME-INPUT", f"input {name!r} is missing; the program takes {self._order}", name=name) from None

    def prepare(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Inputs as tensors on the device, ahead of inference (``seal``)."""
        return {name: self._convert.tensor(name, value) for name, value in inputs.items()}

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the package on numpy inputs; returns numpy arrays."""
        tensor = self._convert.tensor
        return self._run({name: tensor(name, value) for name, value in inputs.items()})

    def infer_prepared(self, prepared: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run inputs converted by :meth:`prepare` (``seal``)."""
        return self._run(prepared)

    def _run(self, tensors: dict[str, Any]) -> dict[str, np.ndarray]:
        loader = self._loader
        if loader is None:
            raise CartonRuntimeError("E-RUNTIME-CLOSED", "the model was closed")
        flat = self._flat(tensors)
        try:
            outs = loader.boxed_run(flat)
        except Exception as exc:
            raise infer_error(exc) from exc
        if self._out_names is not None:
            array = self._convert.array
            return {name: array(name, value) for name, value in zip(self._out_names, outs)}
        return self._convert.outputs(self._unflatten(outs, self._out_spec), self._names)

    def close(self) -> None:
        """Drop the package; later inferences raise ``E-RUNTIME-CLOSED``."""
        self._loader = None


__all__ = ["AOTIModel", "AOTInductorRunner", "package_metadata", "target_problem", "target_triple"]
