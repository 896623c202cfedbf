"""Process isolation: a runner model in a worker process of its own.

:func:`load_in_worker` starts a worker (this interpreter, or another environment's), loads the
model there and returns a :class:`WorkerModel` with the runner-model interface (``infer``,
``close``, plus ``pid`` and ``device``).  A crash or hang in the model is an error in the host
(``E-RUNTIME-RUNNER-DIED``, ``E-RUNTIME-TIMEOUT``), never the host's end; process-wide state
such as torch's thread pools becomes per model.  The wire protocol is in ``PROTOCOL.md``.
"""

from __future__ import annotations

from .host import WorkerModel, load_in_worker

__all__ = ["WorkerModel", "load_in_worker"]
