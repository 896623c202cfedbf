"""Batch inference on distributed engines, as optional extras.

* :mod:`carton_runtime.integrations.ray`: ``CartonPredictor``, a callable class for Ray Data's
  ``Dataset.map_batches`` (extra ``[ray]``).
* :mod:`carton_runtime.integrations.spark`: ``carton_udf`` for ``DataFrame.mapInPandas`` and
  ``carton_predict_batch_udf`` for ``pyspark.ml.functions.predict_batch_udf`` (extra ``[spark]``).

Both load a model once per worker process from the shared cache (:mod:`.batch`) and map columns
to the archive's inputs and outputs by name.  Importing this package imports neither engine.
"""

__all__: list[str] = []
