"""Loading: source -> archive metadata -> overrides merged -> runner selected -> model loaded.

Blocking functions; ``api`` runs them on a worker thread for the async API.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import carton_format as cf

from .cache import Cache
from .devices import parse_visible_device
from .errors import CartonRuntimeError, reraise_format_errors
from .links_fetch import LinkFetcher
from .model import Carton
from .model_files import ArchiveModelFiles
from .registry import select_runner
from .sources import open_source, parse_source

log = logging.getLogger(__name__)

RUNNER_OPT_TYPES = (int, float, str, bool)


def check_runner_opts(opts: Any, arg: str) -> dict[str, Any] | None:
    if opts is None:
        return None
    if not isinstance(opts, dict):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{arg} must be a dict of str -> int | float | str | bool")
    for key, value in opts.items():
        if not isinstance(key, str) or not isinstance(value, RUNNER_OPT_TYPES):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"{arg}[{key!r}] = {value!r}: values must be int, float, str or bool", name=str(key))
    return dict(opts)


def merge_overrides(
    info: cf.CartonInfo,
    override_runner_name: str | None = None,
    override_required_framework_version: str | None = None,
    override_runner_opts: dict[str, Any] | None = None,
) -> cf.CartonInfo:
    """FMT-RUNNER-11: name and requirement replaced, options merged key by key (override wins)."""
    runner = info.runner
    if override_runner_name is not None:
        if not isinstance(override_runner_name, str):
            raise CartonRuntimeError("E-RUNTIME-ARG", "override_runner_name must be a str")
        runner = dataclasses.replace(runner, runner_name=override_runner_name)
    if override_required_framework_version is not None:
        if not isinstance(override_required_framework_version, str):
            raise CartonRuntimeError("E-RUNTIME-ARG", "override_required_framework_version must be a str")
        try:
            req = str(cf.VersionReq.parse(override_required_framework_version))
        except cf.CartonFormatError as exc:
            raise cf.CartonFormatError(
                "E-VERSIONREQ-INVALID",
                f"`override_required_framework_version` was not a valid semver version range: {exc.message}",
                key="override_required_framework_version",
            ) from None
        runner = dataclasses.replace(runner, required_framework_version=req)
    if override_runner_opts is not None:
        merged = dict(runner.opts or {})
        merged.update(override_runner_opts)
        runner = dataclasses.replace(runner, opts=merged)
    if runner is info.runner:
        return info
    return dataclasses.replace(info, runner=runner)


@reraise_format_errors
def load(
    url_or_path: Any,
    visible_device: Any = None,
    override_runner_name: str | None = None,
    override_required_framework_version: str | None = None,
    override_runner_opts: dict[str, Any] | None = None,
    *,
    cache: Cache | None = None,
    limits: cf.Limits = cf.DEFAULT_LIMITS,
) -> Carton:
    device = parse_visible_device(visible_device)
    override_runner_opts = check_runner_opts(override_runner_opts, "override_runner_opts")
    source = parse_source(url_or_path)
    cache = cache or Cache()
    fetcher = LinkFetcher(cache, limits)
    opened = open_source(source, cache=cache, fetcher=fetcher, limits=limits)
    try:
        info = merge_overrides(opened.archive.info, override_runner_name, override_required_framework_version, override_runner_opts)
        runner = select_runner(info.runner)  # before any download: fail fast
        if opened.remote is not None:  # metadata came over range requests: now fetch it all
            opened.close()
            opened = open_source(source, cache=cache, fetcher=fetcher, limits=limits, download=True)
            info = merge_overrides(opened.archive.info, override_runner_name, override_required_framework_version, override_runner_opts)
        files = ArchiveModelFiles(opened.archive, cache=cache, fetcher=fetcher, archive_path=opened.local_path)
        runner_model = runner.load(files, device=device, opts=dict(info.runner.opts or {}))
    except BaseException:
        opened.close()
        raise
    return Carton(
        info,
        runner_model,
        runner=runner,
        device=getattr(runner_model, "device", device),
        manifest_sha256=opened.archive.manifest_sha256,
        source=source.location,
    )


@reraise_format_errors
def get_model_info(url_or_path: Any, *, cache: Cache | None = None, limits: cf.Limits = cf.DEFAULT_LIMITS) -> tuple[cf.CartonInfo, str]:
    """(info, manifest sha256); tensors and misc files stay lazy (the archive stays open for them)."""
    source = parse_source(url_or_path)
    cache = cache or Cache()
    opened = open_source(source, cache=cache, fetcher=LinkFetcher(cache, limits), limits=limits)
    # The archive stays open while the info lives: its lazy tensors and misc files read from it.
    return opened.archive.info, opened.archive.manifest_sha256


__all__ = ["check_runner_opts", "get_model_info", "load", "merge_overrides"]
