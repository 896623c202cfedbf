"""Loading: location -> archive metadata -> overrides merged -> runner selected -> model loaded.

Blocking functions; ``api`` runs them on a worker thread for the async API.  The lazy classes
that metadata uses (``carton_format.LazyTensor`` for the blocking API, the original's
``LazyLoadedTensor`` for the async one) are the calling API's choice: it sets
:data:`lazy_values` for the duration of its call (a context variable, so concurrent calls of
both APIs do not interfere).
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable

import carton_format as cf

from . import progress, signature_policy
from .cache import Cache
from .config import check_isolation
from .devices import parse_visible_device
from .errors import CartonRuntimeError
from .isolation.host import check_seconds
from .isolation.loading import load_model, resolve_isolation
from .links_fetch import LinkFetcher
from .locations import open_location, parse_location, reopen_damaged
from .model import BlockingCarton
from .model_files import ArchiveModelFiles
from .registry import find_runner_by_name, select_runner

#: The lazy-value classes metadata is built with (set by the async API for its calls).
lazy_values: contextvars.ContextVar[cf.LazyFactories] = contextvars.ContextVar("carton_lazy_values", default=cf.DEFAULT_LAZY)

log = logging.getLogger(__name__)

RUNNER_OPT_TYPES = (int, float, str, bool)


def check_runner_opts(opts: Any, arg: str) -> dict[str, Any] | None:
    """Check runner options (``arg`` names them in errors): None, or a dict of str -> int | float | str | bool (copied)."""
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


@dataclass(frozen=True)
class LoadOptions:
    """The original's ``load`` arguments after ``url_or_path`` (declared once here), then this
    implementation's: ``isolation`` ("inprocess", "process"; None: the configured default),
    ``environment`` (None: the host's interpreter; else handed to environment provisioning)
    ``call_timeout_s`` (out of process: the limit of one inference) and ``load_timeout_s`` (out
    of process: the limit of the worker's start and the model's load)."""

    visible_device: Any = None
    override_runner_name: str | None = None
    override_required_framework_version: str | None = None
    override_runner_opts: dict[str, Any] | None = None
    isolation: str | None = None
    environment: Any = None
    call_timeout_s: float | None = None
    load_timeout_s: float | None = None
    storage_options: Any = None  # fsspec URLs: the file system's options (carton_runtime.fsspec_source)
    require_signature: Any = None  # a trust root the archive must be signed by (carton_runtime.signature_policy)

    def check_isolation_args(self) -> None:
        """E-RUNTIME-ARG for a bad ``isolation`` or time limit (before anything is opened)."""
        if self.isolation is not None:
            check_isolation(self.isolation, "load(isolation=...)")
        check_seconds("call_timeout_s", self.call_timeout_s)
        check_seconds("load_timeout_s", self.load_timeout_s)

    def merged_info(self, info: cf.CartonInfo) -> cf.CartonInfo:
        """``info`` with this load's overrides merged in."""
        return merge_overrides(info, self.override_runner_name, self.override_required_framework_version, self.override_runner_opts)


def load(url_or_path: Any, options: LoadOptions, *, cache: Cache | None = None, limits: cf.Limits = cf.DEFAULT_LIMITS) -> BlockingCarton:
    """Open, select a runner (before any download: fail fast), fetch what the runner needs
    (verified) and load it.  Logs one INFO line with the time of each phase (open: metadata;
    fetch: downloads, with bytes and rate; verify; runner load; see :mod:`carton_runtime.progress`)."""
    with progress.collect_phases() as phases:
        model = _load(url_or_path, options, cache=cache, limits=limits)
    log.info("loaded %s in %.2f s (%s)", model.source, phases.elapsed, phases.summary())
    return model


def _load(url_or_path: Any, options: LoadOptions, *, cache: Cache | None, limits: cf.Limits) -> BlockingCarton:
    device = parse_visible_device(options.visible_device)
    options = dataclasses.replace(options, override_runner_opts=check_runner_opts(options.override_runner_opts, "override_runner_opts"))
    options.check_isolation_args()
    location = parse_location(url_or_path, "path", storage_options=options.storage_options)
    cache = cache or Cache()
    fetcher = LinkFetcher(cache, limits, origin=location.location if location.is_remote else None)
    lazy = lazy_values.get()
    with progress.phase("open"):
        opened = open_location(location, cache=cache, fetcher=fetcher, limits=limits, lazy=lazy)
    try:
        signature_policy.enforce(options.require_signature, opened.archive, location.path, location.location)  # before any model code
        info = options.merged_info(opened.archive.info)
        runner = select_for_load(info.runner, options)
        isolation = resolve_isolation(options.isolation, runner, options.environment)
        if opened.remote is not None:  # metadata came over range requests: now fetch it all
            opened.close()
            with progress.phase("open"):
                opened = open_location(location, cache=cache, fetcher=fetcher, limits=limits, lazy=lazy, download=True)
            signature_policy.enforce(options.require_signature, opened.archive, None, location.location)  # the copy that is loaded
            info = options.merged_info(opened.archive.info)

        on_close: list[Callable[[], None]] = []

        def runner_load() -> Any:
            files = ArchiveModelFiles(opened.archive, cache=cache, fetcher=fetcher)
            with progress.phase("runner load"):
                model, done = load_runner_model(runner, files, info.runner, options, device, isolation)
            if done is not None:
                on_close.append(done)
            return model

        try:
            runner_model = runner_load()
        except cf.CartonFormatError as exc:  # a damaged cached copy of a URL: downloaded again, once
            fresh = reopen_damaged(opened, exc, cache=cache, fetcher=fetcher, limits=limits, lazy=lazy)
            if fresh is None:
                raise
            opened = fresh
            signature_policy.enforce(options.require_signature, opened.archive, None, location.location)  # the fresh download
            info = options.merged_info(opened.archive.info)
            runner_model = runner_load()
    except BaseException:
        opened.close()
        raise
    return BlockingCarton(
        info,
        runner_model,
        runner=runner,
        device=getattr(runner_model, "device", device),
        manifest_sha256=opened.archive.manifest_sha256,
        source=location.location,
        on_close=on_close[0] if on_close else None,
    )


def load_runner_model(
    runner: Any, files: Any, info: cf.RunnerInfo, options: LoadOptions, device: Any, isolation: str | None = None
) -> tuple[Any, Callable[[], None] | None]:
    """The runner model (in process or in a worker, as ``options`` and the runner say) and what
    to call once it is closed: what ``load``, ``load_unpacked`` and pack's self-test check share."""
    if isolation is None:
        isolation = resolve_isolation(options.isolation, runner, options.environment)
    return load_model(
        runner, files, isolation=isolation, device=device, info=info,
        environment=options.environment, call_timeout_s=options.call_timeout_s, load_timeout_s=options.load_timeout_s,
    )


def select_for_load(info: cf.RunnerInfo, options: LoadOptions) -> Any:
    """The runner: by the full requirement, or with an ``environment`` by name and compat
    version only (the environment's framework version is checked by the worker's handshake)."""
    if options.environment is None:
        return select_runner(info)
    runner = find_runner_by_name(info.runner_name, info.runner_compat_version)
    if runner is None:
        compat = "" if info.runner_compat_version is None else f" with runner_compat_version {info.runner_compat_version}"
        raise CartonRuntimeError("E-RUNTIME-NO-RUNNER", f"No matching runner: no installed runner is named {info.runner_name!r}{compat}")
    return runner


def get_model_info(
    url_or_path: Any, *, cache: Cache | None = None, limits: cf.Limits = cf.DEFAULT_LIMITS, storage_options: Any = None
) -> tuple[cf.CartonInfo, str]:
    """(info, manifest sha256); tensors and misc files stay lazy (the archive stays open for them)."""
    location = parse_location(url_or_path, "url_or_path", storage_options=storage_options)
    cache = cache or Cache()
    fetcher = LinkFetcher(cache, limits, origin=location.location if location.is_remote else None)
    opened = open_location(location, cache=cache, fetcher=fetcher, limits=limits, lazy=lazy_values.get())
    return opened.archive.info, opened.archive.manifest_sha256


__all__ = ["LoadOptions", "check_runner_opts", "get_model_info", "lazy_values", "load", "merge_overrides"]
