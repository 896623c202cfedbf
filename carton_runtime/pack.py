"""Packing (``pack``), loading without packing (``load_unpacked``) and ``shrink``.

The original's long argument list (runner, metadata, self tests, examples, misc and linked
files) is declared once, as :class:`PackArgs`; ``pack`` and ``load_unpacked`` get their public
signatures (the original's names, order and defaults, as ``inspect.signature`` shows them) from
it.  ``pack`` asks the named runner (if one is installed) how a user's path becomes the
``model/`` directory (TorchScript: the file becomes ``model/model.pt``) and which
``runner_compat_version`` to record, then writes the archive with ``carton_format.write``; the
framework version need not match the installed one (a warning says the model will then need
``override_required_framework_version`` here).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import carton_format as cf

from . import loader, progress
from .devices import parse_visible_device
from .errors import CartonRuntimeError
from .loader import check_runner_opts, lazy_values
from .model import BlockingCarton
from .model_files import DirectoryModelFiles
from .registry import find_runner_by_name, installed_runners, to_semver
from .runners.base import pack_model_dir, unavailable_reason

log = logging.getLogger(__name__)


@dataclass
class PackArgs:
    """The original's ``pack`` / ``load_unpacked`` arguments after ``path``, in its order."""

    runner_name: str | None = None  # None: picked from the model object or file (see _choose_runner)
    required_framework_version: str | None = None  # None: the chosen runner's default for the installed framework
    runner_compat_version: int | None = None
    runner_opts: dict[str, Any] | None = None
    model_name: str | None = None
    short_description: str | None = None
    model_description: str | None = None
    license: str | None = None
    repository: str | None = None
    homepage: str | None = None
    required_platforms: list[str] | None = None
    inputs: list[cf.TensorSpec] | None = None
    outputs: list[cf.TensorSpec] | None = None
    self_tests: list[cf.SelfTest] | None = None
    examples: list[cf.Example] | None = None
    misc_files: dict[str, Any] | None = None
    linked_files: dict[str, list[str]] | None = None

    def to_info(self, lazy: cf.LazyFactories | None = None) -> cf.CartonInfo:
        """The CartonInfo these arguments describe; with ``lazy``, in-memory tensors and misc
        files become lazy values of that family (what a loaded model's ``info`` holds)."""
        if not isinstance(self.runner_name, str) or not self.runner_name:
            raise CartonRuntimeError("E-RUNTIME-ARG", "runner_name must be a non-empty str")
        if not isinstance(self.required_framework_version, str):
            raise CartonRuntimeError("E-RUNTIME-ARG", "required_framework_version must be a str")
        try:
            required = str(cf.VersionReq.parse(self.required_framework_version))
        except cf.CartonFormatError as exc:
            raise cf.CartonFormatError(
                "E-VERSIONREQ-INVALID", f"Invalid `required_framework_version`: {exc.message}", key="required_framework_version"
            ) from None

        def values(mapping: dict[str, Any] | None) -> dict[str, Any] | None:
            if mapping is None or lazy is None or not isinstance(mapping, dict):
                return mapping
            return {k: lazy.wrap(v) for k, v in mapping.items()}

        tests = None
        if self.self_tests is not None:
            tests = [dataclasses.replace(t, inputs=values(t.inputs), expected_out=values(t.expected_out)) for t in self.self_tests]
        examples = None
        if self.examples is not None:
            examples = [dataclasses.replace(e, inputs=values(e.inputs), sample_out=values(e.sample_out)) for e in self.examples]
        return cf.CartonInfo(
            runner=cf.RunnerInfo(self.runner_name, required, self.runner_compat_version, check_runner_opts(self.runner_opts, "runner_opts")),
            model_name=self.model_name,
            short_description=self.short_description,
            model_description=self.model_description,
            license=self.license,
            repository=self.repository,
            homepage=self.homepage,
            required_platforms=list(self.required_platforms) if self.required_platforms is not None else None,
            inputs=list(self.inputs) if self.inputs is not None else None,
            outputs=list(self.outputs) if self.outputs is not None else None,
            self_tests=tests,
            examples=examples,
            misc_files=values(self.misc_files),
        )


_P = inspect.Parameter


def _takes_pack_args(
    *, before_linked_files: tuple[tuple[str, Any], ...] = (), keyword_only: tuple[tuple[str, Any], ...] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give ``impl(path, args: PackArgs, **extra)`` the public signature ``(path, <PackArgs
    fields>, ...)``: ``before_linked_files`` are extra positional parameters placed before
    ``linked_files`` (where the original puts ``visible_device``), ``keyword_only`` come last."""
    params = [_P("path", _P.POSITIONAL_OR_KEYWORD)]
    for f in dataclasses.fields(PackArgs):
        if f.name == "linked_files":
            params += [_P(name, _P.POSITIONAL_OR_KEYWORD, default=default) for name, default in before_linked_files]
        default = _P.empty if f.default is dataclasses.MISSING else f.default
        params.append(_P(f.name, _P.POSITIONAL_OR_KEYWORD, default=default))
    params += [_P(name, _P.KEYWORD_ONLY, default=default) for name, default in keyword_only]
    signature = inspect.Signature(params)
    field_names = [f.name for f in dataclasses.fields(PackArgs)]

    def decorate(impl: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(impl)
        def public(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)  # a TypeError for a bad call, as for any function
            bound.apply_defaults()
            values = dict(bound.arguments)
            path = values.pop("path")
            pack_args = PackArgs(**{name: values.pop(name) for name in field_names})
            return impl(path, pack_args, **values)

        public.__signature__ = signature  # type: ignore[attr-defined]
        return public

    return decorate


def _runner_for_pack(info: cf.CartonInfo) -> Any:
    runner = find_runner_by_name(info.runner.runner_name, info.runner.runner_compat_version)
    if runner is None:
        if info.runner.runner_compat_version is None:
            raise CartonRuntimeError(
                "E-RUNTIME-NO-RUNNER",
                f"no installed runner is named {info.runner.runner_name!r}; pass runner_compat_version to pack a model directory for it anyway",
            )
        return None
    try:
        if not cf.VersionReq.parse(info.runner.required_framework_version).matches(to_semver(str(runner.framework_version))):
            warnings.warn(
                f"the packed model requires {info.runner.runner_name} {info.runner.required_framework_version}, "
                f"but {runner.framework_version} is installed here: loading it here will need override_required_framework_version",
                RuntimeWarning,
                stacklevel=4,
            )
    except cf.CartonFormatError:
        pass
    return runner


def _temporary_output(prefix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".carton")
    os.close(fd)
    return Path(name)


@_takes_pack_args(
    keyword_only=(("output_path", None), ("compression", "stored"), ("overwrite", False), ("check_self_tests", True))
)
def pack(path: Any, args: PackArgs, *, output_path: Any, compression: str, overwrite: bool, check_self_tests: bool) -> str:
    """Pack ``path`` into a .carton; returns its path (a new temporary file unless ``output_path``).

    ``path`` is what the runner packs (for torchscript: a ``torch.jit.save`` file, a directory
    holding model.pt, or a ``torch.jit.ScriptModule``).  Unless ``check_self_tests=False``, the
    given self tests are run on the packed archive before returning; if any fails, the archive
    is removed and an ``E-RUNTIME-INFER`` error lists the failures.  A progress bar (hashing and
    writing) shows on a terminal, see :mod:`carton_runtime.progress`."""
    args = _choose_runner(path, args)
    info = args.to_info()
    runner = _runner_for_pack(info)
    if runner is not None and info.runner.runner_compat_version is None:
        info.runner.runner_compat_version = runner.runner_compat_version
    source = _pack_source(path, runner)
    if output_path is None:
        target, overwrite = _temporary_output("carton-"), True
    else:
        target = Path(os.fspath(output_path))
    with tempfile.TemporaryDirectory(prefix="carton-pack-") as work:
        source, info, args = _prepare(runner, source, info, args, Path(work))
        model_dir = pack_model_dir(runner, source, Path(work)) if runner is not None else _plain_dir(source)
        try:
            with progress.ByteBar(f"packing {target.name}") as bar:
                cf.write(
                    target, info, model_dir=model_dir, compression=compression, linked_files=args.linked_files, overwrite=overwrite,
                    progress=bar.report,
                )
        except BaseException:
            if output_path is None:
                target.unlink(missing_ok=True)
            raise
        if check_self_tests and args.self_tests:
            try:
                _check_self_tests(target, runner, args, model_dir, Path(work))
            except BaseException:
                target.unlink(missing_ok=True)  # never leave an archive whose self tests fail
                raise
    return str(target)


def _pack_source(path: Any, runner: Any) -> Any:
    """``path`` as a Path, or as given when it is a model object for a runner that packs
    objects itself (one with ``pack``: a ScriptModule for torchscript, an ExportedProgram for
    torch_export and aotinductor; the runner says why it cannot pack another object)."""
    if isinstance(path, (str, os.PathLike)):
        return Path(os.fspath(path))
    if runner is not None and callable(getattr(runner, "pack", None)):
        return path
    raise CartonRuntimeError("E-RUNTIME-ARG", f"path must be a path (str or os.PathLike), not {type(path).__name__}", name="path")


def _recognises(runner: Any, path: Any) -> bool:
    """Whether the runner says it packs this model object (``accepts_object``) or file (``accepts_path``)."""
    try:
        if isinstance(path, (str, os.PathLike)):
            check = getattr(runner, "accepts_path", None)
            return callable(check) and bool(check(Path(os.fspath(path))))
        check = getattr(runner, "accepts_object", None)
        return callable(check) and bool(check(path))
    except OSError:
        return False


def default_framework_version(runner: Any) -> str:
    """The runner's own default (``default_required_framework_version``), else ``=MAJOR.MINOR``
    of its installed framework."""
    fn = getattr(runner, "default_required_framework_version", None)
    if callable(fn):
        return str(fn())
    core = to_semver(str(runner.framework_version)).split("+")[0].split("-")[0].split(".")
    return "=" + ".".join(core[:2])


def _choose_runner(path: Any, args: PackArgs) -> PackArgs:
    """``args`` with ``runner_name`` (when None: the first installed runner recognising the
    model object or file, torchscript for a file none recognises; an ExportedProgram is
    torch_export's unless runner_name says aotinductor) and ``required_framework_version`` (when None: that runner's default)."""
    if args.runner_name is None:
        chosen = next((r for r in installed_runners() if not unavailable_reason(r) and _recognises(r, path)), None)
        if chosen is None and isinstance(path, (str, os.PathLike)):
            chosen = find_runner_by_name("torchscript")  # the historical default: it says what a file it cannot pack is
        if chosen is None:
            what = str(path) if isinstance(path, (str, os.PathLike)) else f"a {type(path).__name__} object"
            raise CartonRuntimeError(
                "E-RUNTIME-ARG",
                f"pass runner_name: no installed runner recognises {what} (torchscript packs a ScriptModule or a torch.jit.save file, "
                "torch_export an ExportedProgram or a torch.export.save file, aotinductor an AOTInductor package)",
                name="runner_name",
            )
        args = dataclasses.replace(args, runner_name=chosen.runner_name)
    if args.required_framework_version is None:
        runner = find_runner_by_name(args.runner_name) if isinstance(args.runner_name, str) else None
        if runner is None:
            raise CartonRuntimeError(
                "E-RUNTIME-ARG", f"pass required_framework_version: no installed runner {args.runner_name!r} gives a default",
                name="required_framework_version",
            )
        args = dataclasses.replace(args, required_framework_version=default_framework_version(runner))
    return args


def _prepare(runner: Any, source: Any, info: cf.CartonInfo, args: PackArgs, work: Path) -> tuple[Any, cf.CartonInfo, PackArgs]:
    """The runner's ``prepare_pack`` (derive or check TensorSpecs, compile, record the target), if
    it has one; ``args`` then carries what it changed in ``info``."""
    fn = getattr(runner, "prepare_pack", None) if runner is not None else None
    if not callable(fn):
        return source, info, args
    source, info = fn(source, info, work)
    args = dataclasses.replace(args, inputs=info.inputs, outputs=info.outputs, required_platforms=info.required_platforms)
    return source, info, args


def _check_self_tests(target: Path, runner: Any, args: PackArgs, model_dir: Path, work: Path) -> None:
    """Run the self tests on the packed model; a coded error listing the failures if any fails."""
    if runner is None:
        log.info("pack: no installed runner named %r; self tests not run", args.runner_name)
        return
    # what carton_runtime.sync.load does; the installed framework may differ from the required one on purpose
    options = loader.LoadOptions(override_required_framework_version="*")
    if args.linked_files:
        # the archive leaves linked files out (loading it would fetch them): check the model files packed
        info = options.merged_info(args.to_info(lazy_values.get()))
        runner_model, done = loader.load_runner_model(runner, DirectoryModelFiles(model_dir), info.runner, options, parse_visible_device(None))
        model = BlockingCarton(info, runner_model, runner=runner, device=getattr(runner_model, "device", None), source=str(target), on_close=done)
    else:
        from .cache import Cache

        model = loader.load(target, options, cache=Cache(work / "self-test-cache"))  # a throwaway cache: the user's stays as it was
    with model:
        results = model.run_self_tests()
    failed = [r for r in results if not r.passed]
    if failed:
        listing = "; ".join(r.summary() for r in failed)
        raise CartonRuntimeError(
            "E-RUNTIME-INFER",
            f"{len(failed)} of {len(results)} self tests failed on the packed model, so the archive was removed: {listing} "
            "(fix the model or the expected outputs; check_self_tests=False packs without running them)",
        )


def _plain_dir(path: Path) -> Path:
    if not path.is_dir():
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{path} is not a directory (no installed runner knows how to pack a file for this runner)")
    return path


@_takes_pack_args(
    before_linked_files=(("visible_device", None),),
    keyword_only=(("isolation", None), ("environment", None), ("call_timeout_s", None), ("load_timeout_s", None)),
)
def load_unpacked(
    path: Any, args: PackArgs, *, visible_device: Any, isolation: str | None, environment: Any, call_timeout_s: float | None,
    load_timeout_s: float | None,
) -> BlockingCarton:
    """Load a model from its unpacked form (what ``pack`` would pack), without writing an archive.

    Self tests, examples and misc files stay in memory; ``manifest_sha256`` is None.  The
    keyword-only ``isolation``, ``environment``, ``call_timeout_s`` and ``load_timeout_s`` are
    ``load``'s (a python model always runs in a worker)."""
    options = loader.LoadOptions(
        isolation=isolation, environment=environment, call_timeout_s=call_timeout_s, load_timeout_s=load_timeout_s
    )
    options.check_isolation_args()
    device = parse_visible_device(visible_device)
    args = _choose_runner(path, args)
    info = args.to_info(lazy_values.get())
    if args.linked_files:
        log.info("load_unpacked: linked_files only matter when packing; ignored")
    runner = loader.select_for_load(info.runner, options)
    if info.runner.runner_compat_version is None:
        info.runner.runner_compat_version = runner.runner_compat_version
    work = tempfile.TemporaryDirectory(prefix="carton-unpacked-")
    release = contextlib.ExitStack()  # after close: the worker's model directory (if any), then the work directory
    release.callback(work.cleanup)
    try:
        source, info, args = _prepare(runner, _pack_source(path, runner), info, args, Path(work.name))
        model_dir = pack_model_dir(runner, source, Path(work.name))
        runner_model, done = loader.load_runner_model(runner, DirectoryModelFiles(model_dir), info.runner, options, device)
    except BaseException:
        release.close()
        raise
    if done is not None:
        release.callback(done)
    return BlockingCarton(
        info, runner_model, runner=runner, device=getattr(runner_model, "device", device), source=str(path), on_close=release.close
    )


def shrink(path: Any, urls: dict[str, list[str]], *, output_path: Any = None) -> str:
    """A copy of the archive whose files with a sha256 in ``urls`` (sha256 -> URLs: model, misc or
    tensor files, like the original's) are left out of the zip and recorded in LINKS; MANIFEST
    (so the manifest hash) is unchanged.  Existing
    LINKS entries are kept and the new URLs appended.  Returns the new archive's path (a new
    temporary file unless ``output_path``, which must not exist)."""
    if output_path is None:
        target, overwrite = _temporary_output("carton-shrunk-"), True
    else:
        target, overwrite = Path(os.fspath(output_path)), False
    try:
        cf.shrink(os.fspath(path) if isinstance(path, os.PathLike) else path, target, urls, overwrite=overwrite)
    except BaseException:
        if output_path is None:
            target.unlink(missing_ok=True)
        raise
    return str(target)


__all__ = ["PackArgs", "load_unpacked", "pack", "shrink"]
