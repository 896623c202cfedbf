"""Runner registry and selection (spec FMT-RUNNER-8..11, the original's rules).

A runner can load a model when its name equals ``runner.runner_name`` exactly, its exact
framework version matches ``runner.required_framework_version`` (Cargo semver rules, the format
layer's ``VersionReq``) and its compatibility version equals ``runner.runner_compat_version``
(when the model has one).  Runners come from :func:`register_runner` (first), the entry-point
group ``carton_runtime.runners`` (next) and the built-in runners (last: ``torchscript``,
``torch_export``, ``aotinductor``, ...); the first match wins.  No match is an ``E-RUNTIME-NO-RUNNER`` error naming what was required and what is
installed.
"""

from __future__ import annotations

import logging
import re
import threading
from importlib.metadata import entry_points
from typing import Any

import carton_format as cf

from .errors import CartonRuntimeError
from .runners.base import unavailable_reason

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "carton_runtime.runners"

_lock = threading.Lock()
_registered: list[Any] = []
_entry_point_runners: list[Any] | None = None


def to_semver(version: str) -> str:
    """Map a PEP 440 version (``2.2.0a0+git1``) to the nearest SemVer (``2.2.0-a0+git1``)."""
    text = version.strip()
    try:
        cf.VersionReq.parse("*").matches(text)
        return text
    except cf.CartonFormatError:
        pass
    match = re.match(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.\d+)*(.*?)(\+.*)?$", text)
    if not match:
        return text
    major, minor, patch, rest, local = match.groups()
    core = f"{int(major)}.{int(minor or 0)}.{int(patch or 0)}"
    pre = re.sub(r"[^0-9A-Za-z.]+", "", rest.lstrip(".-_")) if rest else ""
    build = re.sub(r"[^0-9A-Za-z.]+", ".", local[1:]).strip(".") if local else ""
    return core + (f"-{pre}" if pre else "") + (f"+{build}" if build else "")


def register_runner(runner: Any) -> None:
    """Make a runner available in this process (checked before entry points and built-ins)."""
    for attr in ("runner_name", "framework_version", "runner_compat_version", "load"):
        if not hasattr(runner, attr):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"a runner needs {attr!r}; {runner!r} has none")
    with _lock:
        _registered.insert(0, runner)


def unregister_runner(runner: Any) -> None:
    """Undo :func:`register_runner` (nothing happens for a runner that is not registered)."""
    with _lock:
        if runner in _registered:
            _registered.remove(runner)


def _load_entry_points() -> list[Any]:
    runners: list[Any] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if isinstance(obj, type) or callable(obj) and not hasattr(obj, "runner_name"):
                obj = obj()
            runners.extend(obj if isinstance(obj, (list, tuple)) else [obj])
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break loading
            log.warning("could not load runner entry point %s (%s): %s", ep.name, ep.value, exc)
    return runners


def _builtin() -> list[Any]:
    from .runners.aotinductor import AOTInductorRunner
    from .runners.python import PythonRunner
    from .runners.torch_export import TorchExportRunner
    from .runners.torchscript import TorchScriptRunner

    return [TorchScriptRunner.instance(), TorchExportRunner.instance(), AOTInductorRunner.instance(), PythonRunner.instance()]


def installed_runners() -> list[Any]:
    """Every known runner, in selection order (usable or not)."""
    global _entry_point_runners
    with _lock:
        if _entry_point_runners is None:
            _entry_point_runners = _load_entry_points()
        found = list(_registered) + list(_entry_point_runners)
    seen: set[int] = set()
    result = []
    for runner in found + _builtin():
        if id(runner) not in seen:
            seen.add(id(runner))
            result.append(runner)
    return result


def _describe(runner: Any) -> str:
    reason = unavailable_reason(runner)
    if reason:
        return f"{runner.runner_name} (unavailable: {reason})"
    return f"{runner.runner_name} {runner.framework_version} (runner_compat_version {runner.runner_compat_version})"


def _version_matches(req: cf.VersionReq, runner: Any) -> bool:
    try:
        return req.matches(to_semver(str(runner.framework_version)))
    except cf.CartonFormatError:
        log.warning("runner %s reports an invalid framework version %r", runner.runner_name, runner.framework_version)
        return False


def select_runner(info: cf.RunnerInfo) -> Any:
    """The runner for a model's (merged) runner table, or E-RUNTIME-NO-RUNNER."""
    if not isinstance(info, cf.RunnerInfo):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"select_runner needs a RunnerInfo, not {type(info).__name__}")
    req = cf.VersionReq.parse(info.required_framework_version)
    runners = installed_runners()
    for runner in runners:
        if runner.runner_name != info.runner_name or unavailable_reason(runner):
            continue
        if not _version_matches(req, runner):
            continue
        if info.runner_compat_version is not None and runner.runner_compat_version != info.runner_compat_version:
            continue
        return runner
    compat = "" if info.runner_compat_version is None else f", runner_compat_version {info.runner_compat_version}"
    installed = "; ".join(_describe(r) for r in runners) or "none"
    hint = ""
    same_name = [r for r in runners if r.runner_name == info.runner_name and not unavailable_reason(r)]
    if same_name:
        version = to_semver(str(same_name[0].framework_version)).split("+")[0]
        major_minor = ".".join(version.split("-")[0].split(".")[:2])
        hint = (
            f". To try the installed {info.runner_name} {version} anyway, pass "
            f"override_required_framework_version (e.g. '={major_minor}' or '*')"
        )
    raise CartonRuntimeError(
        "E-RUNTIME-NO-RUNNER",
        f"No matching runner: the model needs runner {info.runner_name!r} with framework version "
        f"{info.required_framework_version!r}{compat}; installed: {installed}{hint}",
    )


def find_runner_by_name(name: str, compat: int | None = None) -> Any | None:
    """For packing: the first usable runner with this name (and compat version, if given)."""
    for runner in installed_runners():
        if runner.runner_name == name and not unavailable_reason(runner) and (compat is None or runner.runner_compat_version == compat):
            return runner
    return None


__all__ = [
    "ENTRY_POINT_GROUP",
    "find_runner_by_name",
    "installed_runners",
    "register_runner",
    "select_runner",
    "to_semver",
    "unregister_runner",
]
