"""Ray Data batch inference: ``ds.map_batches(CartonPredictor, fn_constructor_kwargs={"url": url}, ...)``.

:class:`CartonPredictor` is the callable class Ray Data runs in an actor pool: each actor loads
the model once (by URL or path, through the shared cache, so a remote archive is downloaded once
per machine) and then turns every batch (``batch_format="numpy"``: a dict of column -> ndarray)
into the model's inputs by the archive's TensorSpecs (one column per input, by name, dtype
checked), runs ``infer`` and returns the outputs as columns (plus any ``keep_columns``).

Ray's own arguments stay Ray's: ``concurrency`` (or ``compute=ActorPoolStrategy(size=N)``, which
Ray >= 2.5x prefers), ``num_cpus`` and ``num_gpus`` per actor are passed to ``map_batches``
(:func:`predict` does it for you).  On a machine with few cores give actors a fraction of a CPU
(``num_cpus=0.5``): with one CPU per actor the read tasks get none and the pipeline stalls.  With
``num_gpus`` Ray sets ``CUDA_VISIBLE_DEVICES`` for each actor, so the default ``visible_device``
(GPU 0 of those visible) is that actor's GPU; pass ``visible_device`` to choose otherwise.

Only :func:`predict` imports Ray; the class itself needs nothing but numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .batch import Columns, shared_model


class CartonPredictor:
    """Loads the model at ``url`` once per actor; called with a batch of columns, returns the
    model's outputs as columns.  ``load_options`` are ``carton_runtime.sync.load``'s
    (``visible_device``, ``storage_options``, overrides, ``isolation``, ...)."""

    def __init__(self, url: str, *, keep_columns: Sequence[str] = (), **load_options: Any) -> None:
        self.model = shared_model(url, **load_options)
        self.columns = Columns.of(self.model.info)
        self.keep_columns = tuple(keep_columns)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The outputs for one batch (``{column: ndarray}``), as ``{output name: ndarray}``."""
        outputs = self.model.infer(self.columns.to_inputs(batch))
        for name in self.keep_columns:
            outputs[name] = batch[name]
        return outputs


def predict(
    ds: Any,
    url: str,
    *,
    concurrency: int | tuple[int, int] | None = 2,
    compute: Any = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    batch_size: int | None = 4096,
    keep_columns: Sequence[str] = (),
    **load_options: Any,
) -> Any:
    """``ds.map_batches(CartonPredictor, ...)`` with Ray's arguments spelled out: an actor pool
    of ``concurrency`` actors (an int, or ``(min, max)``; ``compute`` wins when given), each with
    ``num_cpus``/``num_gpus``; returns the lazy Dataset of output columns."""
    from ray.data import ActorPoolStrategy  # the [ray] extra, needed only here

    if compute is None and concurrency is not None:
        if isinstance(concurrency, tuple):
            compute = ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
        else:
            compute = ActorPoolStrategy(size=concurrency)
    remote_args: dict[str, Any] = {}
    if num_cpus is not None:
        remote_args["num_cpus"] = num_cpus
    if num_gpus is not None:
        remote_args["num_gpus"] = num_gpus
    return ds.map_batches(
        CartonPredictor,
        fn_constructor_kwargs={"url": url, "keep_columns": tuple(keep_columns), **load_options},
        compute=compute,
        batch_size=batch_size,
        batch_format="numpy",
        **remote_args,
    )


__all__ = ["CartonPredictor", "predict"]
