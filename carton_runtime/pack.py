"""Packing (``pack``), loading without packing (``load_unpacked``) and ``shrink``.

Argument names and order follow the original Python API.  ``pack`` asks the named runner (if
one is installed) how a user's path becomes the ``model/`` directory (TorchScript: the file
becomes ``model/model.pt``) and which ``runner_compat_version`` to record, then writes the
archive with ``carton_format.write``; the framework version need not match the installed one
(a warning says the model will then need ``override_required_framework_version`` here).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import carton_format as cf

from .devices import parse_visible_device
from .errors import CartonRuntimeError, reraise_format_errors
from .loader import check_runner_opts
from .model import Carton
from .model_files import InMemoryModelFiles
from .registry import find_runner_by_name, select_runner, to_semver
from .runners.base import pack_model_dir

log = logging.getLogger(__name__)


def _unwrap(value: Any) -> Any:
    """Async lazy wrappers -> the format layer's lazy values (which cf.write accepts)."""
    inner = getattr(value, "_inner", None)
    return inner if inner is not None else value


def _unwrap_map(values: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else {k: _unwrap(v) for k, v in values.items()}


def build_info(
    runner_name: str,
    required_framework_version: str,
    runner_compat_version: int | None = None,
    runner_opts: dict[str, Any] | None = None,
    model_name: str | None = None,
    short_description: str | None = None,
    model_description: str | None = None,
    license: str | None = None,  # noqa: A002 - the original's argument name
    repository: str | None = None,
    homepage: str | None = None,
    required_platforms: list[str] | None = None,
    inputs: list[cf.TensorSpec] | None = None,
    outputs: list[cf.TensorSpec] | None = None,
    self_tests: list[cf.SelfTest] | None = None,
    examples: list[cf.Example] | None = None,
    misc_files: dict[str, Any] | None = None,
) -> cf.CartonInfo:
    if not isinstance(runner_name, str) or not runner_name:
        raise CartonRuntimeError("E-RUNTIME-ARG", "runner_name must be a non-empty str")
    if not isinstance(required_framework_version, str):
        raise CartonRuntimeError("E-RUNTIME-ARG", "required_framework_version must be a str")
    try:
        required = str(cf.VersionReq.parse(required_framework_version))
    except cf.CartonFormatError as exc:
        raise cf.CartonFormatError("E-VERSIONREQ-INVALID", f"Invalid `required_framework_version`: {exc.message}", key="required_framework_version") from None
    tests = None
    if self_tests is not None:
        tests = [
            cf.SelfTest(inputs=_unwrap_map(t.inputs), name=t.name, description=t.description, expected_out=_unwrap_map(t.expected_out))  # type: ignore[arg-type]
            for t in self_tests
        ]
    examples_out = None
    if examples is not None:
        examples_out = [
            cf.Example(inputs=_unwrap_map(e.inputs), sample_out=_unwrap_map(e.sample_out), name=e.name, description=e.description)  # type: ignore[arg-type]
            for e in examples
        ]
    return cf.CartonInfo(
        runner=cf.RunnerInfo(runner_name, required, runner_compat_version, check_runner_opts(runner_opts, "runner_opts")),
        model_name=model_name,
        short_description=short_description,
        model_description=model_description,
        license=license,
        repository=repository,
        homepage=homepage,
        required_platforms=list(required_platforms) if required_platforms is not None else None,
        inputs=list(inputs) if inputs is not None else None,
        outputs=list(outputs) if outputs is not None else None,
        self_tests=tests,
        examples=examples_out,
        misc_files=_unwrap_map(misc_files),
    )


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


@reraise_format_errors
def pack(
    path: Any,
    runner_name: str,
    required_framework_version: str,
    runner_compat_version: int | None = None,
    runner_opts: dict[str, Any] | None = None,
    model_name: str | None = None,
    short_description: str | None = None,
    model_description: str | None = None,
    license: str | None = None,  # noqa: A002
    repository: str | None = None,
    homepage: str | None = None,
    required_platforms: list[str] | None = None,
    inputs: list[cf.TensorSpec] | None = None,
    outputs: list[cf.TensorSpec] | None = None,
    self_tests: list[cf.SelfTest] | None = None,
    examples: list[cf.Example] | None = None,
    misc_files: dict[str, Any] | None = None,
    linked_files: dict[str, list[str]] | None = None,
    *,
    output_path: Any = None,
    compression: str = "stored",
    overwrite: bool = False,
) -> str:
    """Pack ``path`` into a .carton; returns its path (a new temporary file unless ``output_path``)."""
    info = build_info(
        runner_name, required_framework_version, runner_compat_version, runner_opts, model_name, short_description,
        model_description, license, repository, homepage, required_platforms, inputs, outputs, self_tests, examples, misc_files,
    )
    runner = _runner_for_pack(info)
    if runner is not None and info.runner.runner_compat_version is None:
        info.runner.runner_compat_version = runner.runner_compat_version
    source = Path(os.fspath(path))
    if output_path is None:
        fd, tmp_name = tempfile.mkstemp(prefix="carton-", suffix=".carton")
        os.close(fd)
        target, overwrite = Path(tmp_name), True
    else:
        target = Path(os.fspath(output_path))
    with tempfile.TemporaryDirectory(prefix="carton-pack-") as work:
        model_dir = pack_model_dir(runner, source, Path(work)) if runner is not None else _plain_dir(source)
        try:
            cf.write(target, info, model_dir=model_dir, compression=compression, linked_files=linked_files, overwrite=overwrite)
        except BaseException:
            if output_path is None:
                target.unlink(missing_ok=True)
            raise
    return str(target)


def _plain_dir(path: Path) -> Path:
    if not path.is_dir():
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{path} is not a directory (no installed runner knows how to pack a file for this runner)")
    return path


@reraise_format_errors
def load_unpacked(
    path: Any,
    runner_name: str,
    required_framework_version: str,
    runner_compat_version: int | None = None,
    runner_opts: dict[str, Any] | None = None,
    model_name: str | None = None,
    short_description: str | None = None,
    model_description: str | None = None,
    license: str | None = None,  # noqa: A002
    repository: str | None = None,
    homepage: str | None = None,
    required_platforms: list[str] | None = None,
    inputs: list[cf.TensorSpec] | None = None,
    outputs: list[cf.TensorSpec] | None = None,
    self_tests: list[cf.SelfTest] | None = None,
    examples: list[cf.Example] | None = None,
    misc_files: dict[str, Any] | None = None,
    visible_device: Any = None,
    linked_files: dict[str, list[str]] | None = None,
) -> Carton:
    """Load a model from its unpacked form (what ``pack`` would pack), without writing an archive.

    Self tests, examples and misc files stay in memory; ``manifest_sha256`` is None."""
    device = parse_visible_device(visible_device)
    info = build_info(
        runner_name, required_framework_version, runner_compat_version, runner_opts, model_name, short_description,
        model_description, license, repository, homepage, required_platforms, inputs, outputs, self_tests, examples, misc_files,
    )
    if linked_files:
        log.info("load_unpacked: linked_files only matter when packing; ignored")
    runner = select_runner(info.runner)
    if info.runner.runner_compat_version is None:
        info.runner.runner_compat_version = runner.runner_compat_version
    work = tempfile.TemporaryDirectory(prefix="carton-unpacked-")
    try:
        model_dir = pack_model_dir(runner, Path(os.fspath(path)), Path(work.name))
        runner_model = runner.load(InMemoryModelFiles(model_dir), device=device, opts=dict(info.runner.opts or {}))
    except BaseException:
        work.cleanup()
        raise
    return Carton(
        info, runner_model, runner=runner, device=getattr(runner_model, "device", device), source=str(path), on_close=work.cleanup
    )


@reraise_format_errors
def shrink(path: Any, urls: dict[str, list[str]], *, output_path: Any = None) -> str:
    """A copy of the archive whose model files listed in ``urls`` (sha256 -> URLs) are left out
    of the zip and recorded in LINKS; MANIFEST (so the manifest hash) is unchanged.  Existing
    LINKS entries are kept and the new URLs appended.  Returns the new archive's path."""
    from carton_format.links import Links, links_to_document
    from carton_format.toml_io import dump_toml
    from carton_format.zip_writer import ZipWriter

    if not isinstance(urls, dict):
        raise CartonRuntimeError("E-RUNTIME-ARG", "urls must be a dict of sha256 -> list of URLs")
    src = Path(os.fspath(path))
    with cf.read(src, verify_hashes=False) as archive:
        merged: dict[str, list[str]] = {k: list(v) for k, v in (archive.links.urls if archive.links else {}).items()}
        for sha, url_list in urls.items():
            if isinstance(url_list, str) or not isinstance(url_list, (list, tuple)):
                raise CartonRuntimeError("E-RUNTIME-ARG", f"urls[{sha!r}] must be a list of URLs")
            merged.setdefault(sha, [])
            merged[sha].extend(u for u in url_list if u not in merged[sha])
        links_bytes = dump_toml(links_to_document(Links(merged)))
        manifest = archive.manifest
        drop = {p for p, sha in manifest.items() if p.startswith("model/") and sha in merged}
        for p, sha in manifest.items():
            if sha in urls and p not in drop:
                log.warning("shrink: %s is not under model/, so it stays in the zip", p)
        if output_path is None:
            fd, tmp_name = tempfile.mkstemp(prefix="carton-shrunk-", suffix=".carton")
            os.close(fd)
            target = Path(tmp_name)
        else:
            target = Path(os.fspath(output_path))
        zip_reader = archive.zip
        try:
            with open(target, "wb") as fh:
                writer = ZipWriter(fh)
                for entry in zip_reader.entries:
                    if entry.is_dir or entry.name in ("MANIFEST", "LINKS") or entry.name in drop:
                        continue
                    if entry.is_symlink:
                        with zip_reader.open(entry) as link:
                            writer.add_symlink(entry.name, link.read().decode("utf-8"))
                        continue
                    with archive.open(entry.name) as stream:  # hash-verified while copied
                        writer.add_stream(entry.name, stream, method=entry.method, size_hint=entry.uncompressed_size)
                writer.add_bytes("MANIFEST", archive.manifest_info.raw, method=0)
                writer.add_bytes("LINKS", links_bytes, method=0)
                writer.close()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    with cf.read(target, verify_hashes=True):
        pass
    return str(target)


__all__ = ["build_info", "load_unpacked", "pack", "shrink"]
