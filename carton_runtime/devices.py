"""``visible_device``: parsing (the original's rules) and mapping to a torch device.

Accepted, as in the original: ``None`` (GPU 0 when there is one, else the CPU), ``"cpu"`` (any
case), a GPU index (``int`` or a string of digits), or a UUID starting with ``GPU-`` or
``MIG-GPU-``.  Also torch's spellings: ``"cuda"`` (GPU 0), ``"cuda:N"`` (GPU N) and
``torch.device`` objects.  Anything else is a ``ValueError`` (``E-RUNTIME-DEVICE``) that starts
with ``visible_device:`` and ends with the original's wording.  In process,
``CUDA_VISIBLE_DEVICES`` cannot be changed after CUDA is initialised, so a UUID is mapped to the
index of the visible device whose ``torch.cuda.get_device_properties(i).uuid`` matches.  A GPU
asked for where none exists warns and falls back to the CPU, or, with ``CARTON_STRICT_DEVICE=1``
in the environment, is an ``E-RUNTIME-DEVICE`` error.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any

from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

INVALID_FORMAT = "Invalid format for device: '{}'. Expected `cpu`, a device index, or a UUID starting with GPU- or MIG-GPU-"
#: Set to 1 (or true/yes/on): a requested GPU that is not there is an error, not a CPU fallback.
ENV_STRICT_DEVICE = "CARTON_STRICT_DEVICE"

_CUDA = re.compile(r"^cuda(?::(?P<index>.*))?$", re.IGNORECASE)


def _invalid(value: Any, detail: str = "") -> CartonRuntimeError:
    return CartonRuntimeError("E-RUNTIME-DEVICE", f"visible_device: {detail}{INVALID_FORMAT.format(value)}")


def strict_device() -> bool:
    """Whether ``CARTON_STRICT_DEVICE`` asks for an error instead of the CPU fallback."""
    return os.environ.get(ENV_STRICT_DEVICE, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class DeviceSpec:
    """What the caller asked for: ``kind`` is "default", "cpu", "index" or "uuid"."""

    kind: str
    index: int | None = None
    uuid: str | None = None

    def __str__(self) -> str:
        if self.kind == "index":
            return f"GPU {self.index}"
        if self.kind == "uuid":
            return str(self.uuid)
        return self.kind


DEFAULT = DeviceSpec("default")
CPU = DeviceSpec("cpu")


def parse_visible_device(value: Any) -> DeviceSpec:
    """Validate ``visible_device`` without touching CUDA (raises ValueError when malformed)."""
    if value is None:
        return DEFAULT
    if isinstance(value, DeviceSpec):
        return value
    if isinstance(value, bool):
        raise _invalid(value)
    if isinstance(value, int):
        if value < 0 or value >= 2**32:
            raise _invalid(value)
        return DeviceSpec("index", index=value)
    if type(value).__name__ == "device" and type(value).__module__ == "torch":  # a torch.device
        if value.type == "cpu":
            return CPU
        if value.type == "cuda":
            return DeviceSpec("index", index=value.index or 0)
        raise CartonRuntimeError("E-RUNTIME-DEVICE", f"visible_device: unsupported torch device {value}; use cpu or a CUDA device")
    if not isinstance(value, str):
        raise CartonRuntimeError(
            "E-RUNTIME-DEVICE", f"visible_device must be None, an int, a str or a torch.device, not {type(value).__name__}"
        )
    if value.isascii() and value.isdigit():
        index = int(value)
        if index >= 2**32:
            raise _invalid(value)
        return DeviceSpec("index", index=index)
    if value.lower() == "cpu":
        return CPU
    if value.startswith("GPU-") or value.startswith("MIG-GPU-"):
        return DeviceSpec("uuid", uuid=value)
    m = _CUDA.match(value)
    if m is not None:
        text = m.group("index")
        if text is None:
            return DeviceSpec("index", index=0)
        if text.isascii() and text.isdigit() and int(text) < 2**32:
            return DeviceSpec("index", index=int(text))
        raise _invalid(value, f"{value!r} is not torch's 'cuda' or 'cuda:N' (N a GPU index, 0 or more). ")
    raise _invalid(value)


def _normalise_uuid(text: str) -> str:
    text = text.strip().lower()
    for prefix in ("mig-gpu-", "gpu-", "mig-"):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _cuda_count() -> int:
    import torch

    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA install behaves like no GPU
        return 0


def uuid_index(uuid: str) -> int | None:
    """Index of the visible CUDA device with this UUID (MIG: its parent GPU), or None."""
    import torch

    wanted = _normalise_uuid(uuid)
    parent = wanted.split("/", 1)[0] if uuid.startswith("MIG-GPU-") else None
    fallback = None
    for i in range(_cuda_count()):
        try:
            have = _normalise_uuid(str(torch.cuda.get_device_properties(i).uuid))
        except Exception:  # noqa: BLE001 - older torch without .uuid
            continue
        if have == wanted:
            return i
        if parent is not None and have == parent and fallback is None:
            fallback = i
    if fallback is not None:
        log.warning("visible_device %s: MIG instances are not addressable in process; using its GPU cuda:%d", uuid, fallback)
    return fallback


def resolve_torch_device(spec: DeviceSpec) -> Any:
    """The torch device for ``spec``; a missing GPU warns and gives the CPU."""
    import torch

    if spec.kind == "cpu":
        return torch.device("cpu")
    count = _cuda_count()
    if spec.kind == "default":
        if count:
            return torch.device("cuda", 0)
        log.debug("no CUDA device visible; running on the CPU")
        return torch.device("cpu")
    if spec.kind == "index":
        if spec.index is not None and spec.index < count:
            return torch.device("cuda", spec.index)
        _fallback(f"visible_device {spec.index}: there is no such GPU ({count} visible)")
        return torch.device("cpu")
    index = uuid_index(spec.uuid or "")
    if index is not None:
        return torch.device("cuda", index)
    _fallback(f"visible_device {spec.uuid}: no visible GPU has this UUID ({count} visible)")
    return torch.device("cpu")


def _fallback(problem: str) -> None:
    """A requested GPU is not there: an error under ``CARTON_STRICT_DEVICE``, else a warning."""
    if strict_device():
        raise CartonRuntimeError("E-RUNTIME-DEVICE", f"{problem}; not falling back to the CPU because {ENV_STRICT_DEVICE} is set")
    warnings.warn(
        f"{problem}; falling back to the CPU (set {ENV_STRICT_DEVICE}=1 to make this an error)", RuntimeWarning, stacklevel=3
    )


__all__ = ["CPU", "DEFAULT", "ENV_STRICT_DEVICE", "DeviceSpec", "strict_device", "parse_visible_device", "resolve_torch_device", "uuid_index"]
