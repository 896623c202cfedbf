"""Runtime errors: every failure carries a stable code, like the format layer's.

Format problems keep the format layer's codes (``E-MANIFEST-MISMATCH``, ``E-LINKS-FETCH``, ...);
the runtime adds the ``E-RUNTIME-*`` codes below.  Both kinds derive from :class:`CartonError`
and from ``ValueError`` (the original's Python API raised ``ValueError`` for every load, pack
and info failure, so ported ``except ValueError`` code keeps working), and format errors raised
through the runtime API are still ``carton_format.CartonFormatError`` instances.
"""

from __future__ import annotations

import carton_format as cf

# code -> one-line meaning.  Codes are stable: tools match on them, never on message text.
RUNTIME_CODES: dict[str, str] = {
    "E-RUNTIME-ARG": "an argument to the runtime API is invalid",
    "E-RUNTIME-SOURCE": "the path or URL cannot be opened as a carton (missing, unsupported scheme)",
    "E-RUNTIME-HTTP": "an HTTP request failed or the server answered wrongly (status, range, length)",
    "E-RUNTIME-CACHE": "the local cache cannot be used",
    "E-RUNTIME-NO-RUNNER": "no installed runner matches the model's runner requirements",
    "E-RUNTIME-RUNNER": "the runner could not load the model",
    "E-RUNTIME-DEVICE": "visible_device is malformed",
    "E-RUNTIME-INPUT": "an input cannot be given to the model (type, dtype, rank)",
    "E-RUNTIME-OUTPUT": "an output of the model cannot be returned (type, dtype)",
    "E-RUNTIME-INFER": "the model raised an error during inference",
    "E-RUNTIME-HANDLE": "a seal handle is unknown, already used or from another model",
    "E-RUNTIME-CLOSED": "the model was closed",
}


class CartonError(Exception):
    """Base of every error the runtime raises (``code``, ``message``)."""

    code: str
    message: str


class CartonRuntimeError(CartonError, ValueError):
    """A runtime failure with one of :data:`RUNTIME_CODES`."""

    def __init__(self, code: str, message: str, *, name: str | None = None):
        if code not in RUNTIME_CODES:
            raise ValueError(f"unknown runtime error code {code!r}")
        self.code = code
        self.message = message
        self.name = name  # the input / output / option concerned, when there is one
        super().__init__(f"{code} {message}")


class CartonArchiveError(cf.CartonFormatError, CartonError, ValueError):
    """A format-layer error raised through the runtime API (same code, member and key)."""

    @classmethod
    def wrap(cls, exc: cf.CartonFormatError) -> "CartonArchiveError":
        if isinstance(exc, cls):
            return exc
        new = cls(exc.code, exc.message, member=exc.member, key=exc.key)
        new.__cause__ = exc.__cause__
        return new


def reraise_format_errors(fn):  # noqa: ANN001, ANN201 - decorator
    """Turn CartonFormatError raised by ``fn`` into CartonArchiveError (also a ValueError)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return fn(*args, **kwargs)
        except CartonArchiveError:
            raise
        except cf.CartonFormatError as exc:
            wrapped = CartonArchiveError.wrap(exc)
            raise wrapped from wrapped.__cause__  # keep the cause (``from None`` would clear it)

    return wrapper


__all__ = ["RUNTIME_CODES", "CartonArchiveError", "CartonError", "CartonRuntimeError", "reraise_format_errors"]
