"""Runtime errors: the format layer's one error model, with the runtime's ``E-RUNTIME-*`` codes.

Every error either layer raises is a :class:`CartonError` (``carton_format.CartonError``, also a
``ValueError`` as in the original's Python API, so ported ``except ValueError`` code keeps
working) with a stable ``code`` and its ``category``.  Format problems keep the format layer's
codes and class (``E-MANIFEST-MISMATCH``, ``E-LINKS-FETCH``: ``CartonFormatError``); the runtime
raises :class:`CartonRuntimeError` with the ``E-RUNTIME-*`` codes of the same registry.
"""

from __future__ import annotations

from carton_format import RUNTIME_CODES, CartonError


class CartonRuntimeError(CartonError):
    """A runtime failure with one of :data:`RUNTIME_CODES`; ``name`` is the input, output or
    option concerned, when there is one."""

    def __init__(self, code: str, message: str, *, name: str | None = None, member: str | None = None) -> None:
        if code not in RUNTIME_CODES:
            raise ValueError(f"unknown runtime error code {code!r}")
        super().__init__(code, message, member=member)
        self.name = name


__all__ = ["RUNTIME_CODES", "CartonError", "CartonRuntimeError"]
