"""A loaded model with the blocking API (``carton_runtime.sync.Carton``); the async API's
``carton_runtime.Carton`` wraps it.

``infer`` is the runner model's own method, bound once.  When the archive declares its inputs
(``info.inputs``), ``infer`` and ``seal`` first check the inputs against those specs
(:mod:`carton_runtime.input_check`: names, dtypes, ranks, fixed and symbolic dimensions) with a
checker built once per model, so a mistake is one short ``E-RUNTIME-INPUT`` naming the input,
whatever the runner; models without specs go straight to the runner.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any, Callable

import numpy as np

import carton_format as cf

from .errors import CartonError, CartonRuntimeError
from .input_check import make_input_checker
from .selftest import SelfTestResult, run_self_tests

_handle_ids = itertools.count(1)


class SealHandle:
    """Inputs handed to the runner ahead of inference (single use)."""

    __slots__ = ("id", "_owner")

    def __init__(self, owner: "BlockingCarton") -> None:
        self.id = next(_handle_ids)
        self._owner = owner

    def __repr__(self) -> str:
        return f"SealHandle({self.id})"


def _guarded(infer: Callable[[dict[str, Any]], dict[str, np.ndarray]]) -> Callable[[dict[str, Any]], dict[str, np.ndarray]]:
    """For third-party runners: any non-Carton exception becomes E-RUNTIME-INFER."""

    def call(inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        try:
            return infer(inputs)
        except CartonError:
            raise
        except Exception as exc:
            raise CartonRuntimeError("E-RUNTIME-INFER", f"the runner failed: {type(exc).__name__}: {exc}") from exc

    return call


def _checked(check: Callable[[Any], None], call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``call`` after ``check`` (the inputs' specs)."""

    def checked(inputs: Any) -> Any:
        check(inputs)
        return call(inputs)

    return checked


#: The largest array ``input_array`` makes (bytes): beyond any model input, below overflow.
MAX_INPUT_ARRAY_BYTES = 1 << 40


def _array_request(shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    """``input_array``'s arguments checked: E-RUNTIME-ARG for anything but a shape of
    non-negative ints and a numeric or boolean dtype within the size limit."""
    dims = (shape,) if isinstance(shape, int) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        dims = None
    if dims is None or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in dims):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"shape must be a tuple of non-negative ints, not {shape!r}", name="shape")
    try:
        kind = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"dtype {dtype!r} is not a numpy dtype: {exc}", name="dtype") from None
    if kind.kind not in "biufc" or kind.fields is not None:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"input_array makes numeric or bool arrays, not {kind}", name="dtype")
    dims = tuple(int(n) for n in dims)
    nbytes = kind.itemsize * math.prod(dims)
    if nbytes > MAX_INPUT_ARRAY_BYTES:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"an array of {nbytes} bytes is over the {MAX_INPUT_ARRAY_BYTES} byte limit", name="shape")
    return dims, kind


def _closed(*_args: Any, **_kwargs: Any) -> Any:
    raise CartonRuntimeError("E-RUNTIME-CLOSED", "the model was closed")


class BlockingCarton:
    """A loaded model (blocking API; ``carton_runtime.sync.Carton``).  ``info`` is the CartonInfo with load overrides merged in;
    ``manifest_sha256`` identifies the archive (None for ``load_unpacked``)."""

    def __init__(
        self,
        info: cf.CartonInfo,
        runner_model: Any,
        *,
        runner: Any,
        device: Any = None,
        manifest_sha256: str | None = None,
        source: str | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        from .runners.torchscript import TorchScriptModel

        self.info = info
        self.runner = runner
        self.device = device
        self.manifest_sha256 = manifest_sha256
        self.source = source
        self._runner_model = runner_model
        self._on_close = on_close
        self._sealed: dict[int, Any] = {}
        self._lock = threading.Lock()
        trusted = isinstance(runner_model, TorchScriptModel)
        infer = runner_model.infer if trusted else _guarded(runner_model.infer)
        prepare = getattr(runner_model, "prepare", None)
        infer_prepared = getattr(runner_model, "infer_prepared", None)
        prepare = prepare if callable(prepare) else dict
        if callable(infer_prepared):
            self._infer_prepared = infer_prepared if trusted else _guarded(infer_prepared)
        else:
            self._infer_prepared = infer  # sealed inputs were checked by seal
        check = make_input_checker(info.inputs)  # None when the archive declares no inputs
        self.infer = infer if check is None else _checked(check, infer)
        self._prepare = prepare if check is None else _checked(check, prepare)

    def __repr__(self) -> str:
        name = self.info.model_name or self.source or "model"
        return f"<carton_runtime.sync.Carton {name!r} runner={self.info.runner.runner_name} device={self.device}>"

    # -- inference ------------------------------------------------------------------------------

    def infer(self, tensors: dict[str, Any]) -> dict[str, np.ndarray]:  # replaced per instance
        """Run the model on ``{name: numpy array}``; returns ``{name: numpy array}``."""
        raise NotImplementedError  # pragma: no cover

    def seal(self, tensors: dict[str, Any]) -> SealHandle:
        """Convert (and move to the device) inputs now; ``infer_with_handle`` runs them later."""
        prepared = self._prepare(tensors)
        handle = SealHandle(self)
        with self._lock:
            self._sealed[handle.id] = prepared
        return handle

    def infer_with_handle(self, handle: SealHandle) -> dict[str, np.ndarray]:
        """Run inputs sealed by :meth:`seal`; each handle works once."""
        if not isinstance(handle, SealHandle) or handle._owner is not self:
            raise CartonRuntimeError("E-RUNTIME-HANDLE", f"{handle!r} was not sealed by this model")
        with self._lock:
            prepared = self._sealed.pop(handle.id, None)
        if prepared is None:
            raise CartonRuntimeError("E-RUNTIME-HANDLE", f"{handle!r} was already used (handles are single-use)")
        return self._infer_prepared(prepared)

    def input_array(self, shape: Any, dtype: Any = "float32") -> np.ndarray:
        """An uninitialised numeric array to fill with an input.  Out of process it lives in
        memory the model's worker shares, so ``infer`` sends it without a copy (any other array
        is copied once); in process it is a plain ``numpy.empty``.  It stays valid as long as it
        is referenced, also after the model is closed."""
        shape, dtype = _array_request(shape, dtype)
        model = self._runner_model
        if model is None:
            raise CartonRuntimeError("E-RUNTIME-CLOSED", "the model was closed")
        make = getattr(model, "input_array", None)
        return make(shape, dtype) if callable(make) else np.empty(shape, dtype)

    # -- self tests ---------------------------------------------------------------------------------

    def run_self_tests(self) -> list[SelfTestResult]:
        """Run every self test; each result says whether outputs matched ``expected_out``."""
        return run_self_tests(self.infer, self.info.self_tests)

    # -- lifetime ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the runner model; later calls raise ``E-RUNTIME-CLOSED``."""
        model, self._runner_model = self._runner_model, None
        self.infer = _closed  # type: ignore[method-assign]
        self._infer_prepared = _closed
        self._prepare = _closed
        self._sealed.clear()
        if model is not None:
            model.close()
            if self._on_close is not None:
                self._on_close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._runner_model is None

    def __enter__(self) -> "BlockingCarton":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BlockingCarton", "SealHandle"]
