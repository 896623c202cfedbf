"""Configuration, as the original documents it (``source/carton-utils/src/config.rs``).

Three directories, each from (highest precedence first) an environment variable, a key of the
TOML config file, or a default:

=================  ==========================  ======================  =========================
setting            environment                 config.toml key         default
=================  ==========================  ======================  =========================
cache_dir          ``CARTON_CACHE_DIR``        ``cache_dir``           ``~/.carton/cache/``
runner_dir         ``CARTON_RUNNER_DIR``       ``runner_dir``          ``~/.carton/runners/``
runner_data_dir    ``CARTON_RUNNER_DATA_DIR``  ``runner_data_dir``     ``~/.carton/runner_data/``
=================  ==========================  ======================  =========================

The config file is ``CARTON_CONFIG_PATH`` when set, else ``~/.carton/config.toml`` (a missing
default file means "all defaults").  ``~`` is expanded in every value.  Unknown keys are ignored
(as the original's serde struct does).  Where the original panics (``CARTON_CONFIG_PATH`` naming
no file, a file that is not TOML, a value of the wrong type), this is an ``E-RUNTIME-ARG`` error
naming the file.  An empty environment variable counts as unset.  The file is read on every
:func:`load_config` call (it is small), so changes to the environment take effect at once.

Isolation (``CARTON_ISOLATION``, else the config file's ``isolation`` key, else ``inprocess``):
where ``load`` runs a model when its ``isolation`` argument is not given; ``process`` runs each
model in a worker process of its own (:func:`default_isolation`, :mod:`carton_runtime.isolation`).

Signatures (``CARTON_REQUIRE_SIGNATURE``, else the config file's ``require_signature`` key, else
off): a trust root every loaded archive must be signed by (:mod:`carton_runtime.signature_policy`).

Verification (``CARTON_VERIFY``, environment only): ``memo`` (the default) lets a local model
file used in place that was verified before, and has not changed since (same device, inode,
size, mtime and ctime), skip its hash (see :mod:`carton_runtime.model_files`); ``always`` hashes
it on every load.  ``carton run|selftest --reverify`` is ``always`` for one command
(:func:`reverifying`).  Any other value warns and counts as ``always``: when in doubt, verify.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

ENV_CONFIG_PATH = "CARTON_CONFIG_PATH"
DEFAULT_CONFIG_PATH = "~/.carton/config.toml"

#: setting -> (environment variable, default)
SETTINGS: dict[str, tuple[str, str]] = {
    "cache_dir": ("CARTON_CACHE_DIR", "~/.carton/cache/"),
    "runner_dir": ("CARTON_RUNNER_DIR", "~/.carton/runners/"),
    "runner_data_dir": ("CARTON_RUNNER_DATA_DIR", "~/.carton/runner_data/"),
}


@dataclass(frozen=True)
class Config:
    """The effective configuration; ``config_path`` is the file consulted (``config_loaded``:
    whether it existed and was read)."""

    cache_dir: Path
    runner_dir: Path
    runner_data_dir: Path
    config_path: Path
    config_loaded: bool = False


def _expand(text: str, where: str) -> Path:
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # "~nosuchuser/..."
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{where}: cannot expand {text!r}: {exc}") from None


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


def config_path() -> tuple[Path, bool]:
    """(the config file's path, whether it was named by ``CARTON_CONFIG_PATH``)."""
    named = _env(ENV_CONFIG_PATH)
    if named is not None:
        return _expand(named, ENV_CONFIG_PATH), True
    return _expand(DEFAULT_CONFIG_PATH, "config"), False


def _read_file(path: Path, named: bool) -> dict[str, Any] | None:
    shown = f"config file {path}" + (f" ({ENV_CONFIG_PATH})" if named else "")
    try:
        if not path.exists():
            if named:
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{ENV_CONFIG_PATH} names {path}, which does not exist", name=ENV_CONFIG_PATH)
            return None
        raw = path.read_bytes()
    except CartonRuntimeError:
        raise
    except (OSError, ValueError) as exc:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{shown}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{shown}: not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{shown}: not valid TOML: {exc}") from None
    for key in SETTINGS:
        if key in data and (not isinstance(data[key], str) or not data[key] or "\0" in data[key]):
            raise CartonRuntimeError("E-RUNTIME-ARG", f"{shown}: {key} must be a non-empty path string, not {data[key]!r}", name=key)
    return data


def load_config() -> Config:
    """The effective configuration: environment > config file > defaults."""
    path, named = config_path()
    data = _read_file(path, named)
    values: dict[str, Path] = {}
    for key, (env_name, default) in SETTINGS.items():
        env = _env(env_name)
        if env is not None:
            values[key] = _expand(env, env_name)
        elif data is not None and key in data:
            values[key] = _expand(data[key], f"config file {path}: {key}")
        else:
            values[key] = _expand(default, key)
    return Config(config_path=path, config_loaded=data is not None, **values)


ENV_ISOLATION = "CARTON_ISOLATION"
ISOLATION_KEY = "isolation"
ISOLATION_VALUES = ("inprocess", "process")


def check_isolation(value: Any, where: str) -> str:
    """``value`` if it is one of :data:`ISOLATION_VALUES` (any case, spaces stripped), else E-RUNTIME-ARG naming ``where``."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in ISOLATION_VALUES:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{where}: isolation must be 'inprocess' or 'process', not {value!r}", name=ISOLATION_KEY)
    return text


def default_isolation() -> str:
    """Where models run unless ``load(isolation=...)`` says: ``CARTON_ISOLATION``, else the
    config file's ``isolation`` key, else ``inprocess`` ("process": a worker process per model,
    see :mod:`carton_runtime.isolation`)."""
    env = _env(ENV_ISOLATION)
    if env is not None:
        return check_isolation(env, ENV_ISOLATION)
    path, named = config_path()
    data = _read_file(path, named)
    if data is not None and ISOLATION_KEY in data:
        return check_isolation(data[ISOLATION_KEY], f"config file {path}")
    return "inprocess"


#: The loading policy on signatures (``carton_runtime.signature_policy``): off unless the
#: environment variable (a PEM path) or the config key (a PEM path or a table) sets a trust root.
ENV_REQUIRE_SIGNATURE = "CARTON_REQUIRE_SIGNATURE"
REQUIRE_SIGNATURE_KEY = "require_signature"

ENV_VERIFY = "CARTON_VERIFY"
VERIFY_MEMO = "memo"
VERIFY_ALWAYS = "always"

_reverify: contextvars.ContextVar[bool] = contextvars.ContextVar("carton_reverify", default=False)


def verify_always() -> bool:
    """Whether local model files must be hashed on this load even when a verification record
    says they did not change (``CARTON_VERIFY=always``, or inside :func:`reverifying`)."""
    if _reverify.get():
        return True
    value = (_env(ENV_VERIFY) or VERIFY_MEMO).strip().lower()
    if value == VERIFY_MEMO:
        return False
    if value != VERIFY_ALWAYS:
        log.warning("%s=%r is neither %r nor %r; verifying every file (%r)", ENV_VERIFY, value, VERIFY_MEMO, VERIFY_ALWAYS, VERIFY_ALWAYS)
    return True


@contextlib.contextmanager
def reverifying() -> Iterator[None]:
    """Loads inside the block (this thread or task) hash every local model file again."""
    token = _reverify.set(True)
    try:
        yield
    finally:
        _reverify.reset(token)


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_CONFIG_PATH",
    "ENV_ISOLATION",
    "ENV_REQUIRE_SIGNATURE",
    "ENV_VERIFY",
    "ISOLATION_VALUES",
    "REQUIRE_SIGNATURE_KEY",
    "SETTINGS",
    "VERIFY_ALWAYS",
    "VERIFY_MEMO",
    "Config",
    "check_isolation",
    "config_path",
    "default_isolation",
    "load_config",
    "reverifying",
    "verify_always",
]
