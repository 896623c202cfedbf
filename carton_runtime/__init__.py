"""carton_runtime: load, pack and run Carton archives, with the original ``cartonml`` API.

Port code from the original by changing one import::

    import carton_runtime as carton          # was: import cartonml as carton
    model = await carton.load("model.carton")
    out = await model.infer({"x": np.ones(3, np.float32)})

``carton_runtime.sync`` has the same functions, blocking.  ``TensorSpec``, ``RunnerInfo`` and
``CartonInfo`` are the format layer's (``carton_format``); ``SelfTest`` and ``Example`` are its
subclasses that hold the original's async lazy values (``LazyLoadedTensor``, ``await t.get()``;
``LazyLoadedMiscFile``, ``await f.read()``), as the original's do.  Every error is a :class:`CartonError` (``carton_format.CartonError``, also a
``ValueError``) with a stable ``code`` and ``category``: ``CartonFormatError`` for archive
problems, ``CartonRuntimeError`` for the runtime's own.
"""

from carton_format import CartonFormatError, CartonInfo, RunnerInfo, TensorSpec

from . import sync
from .api import AsyncCarton, Carton, get_model_info, load, load_unpacked, pack, shrink
from .devices import parse_visible_device
from .errors import RUNTIME_CODES, CartonError, CartonRuntimeError
from .lazy import Example, LazyLoadedMiscFile, LazyLoadedTensor, SelfTest
from .model import SealHandle
from .registry import installed_runners, register_runner, select_runner, unregister_runner
from .selftest import SelfTestResult

__all__ = [
    "RUNTIME_CODES",
    "AsyncCarton",
    "Carton",
    "CartonError",
    "CartonFormatError",
    "CartonInfo",
    "CartonRuntimeError",
    "Example",
    "LazyLoadedMiscFile",
    "LazyLoadedTensor",
    "RunnerInfo",
    "SealHandle",
    "SelfTest",
    "SelfTestResult",
    "TensorSpec",
    "get_model_info",
    "installed_runners",
    "load",
    "load_unpacked",
    "pack",
    "parse_visible_device",
    "register_runner",
    "select_runner",
    "shrink",
    "sync",
    "unregister_runner",
]
