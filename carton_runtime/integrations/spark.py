"""Spark batch inference: ``df.mapInPandas(carton_udf(url), schema)`` (and a ``predict_batch_udf`` form).

:func:`carton_udf` returns the function ``mapInPandas`` runs on each partition: an iterator of
pandas DataFrames in, one out.  Input columns are named as the model's inputs (other columns are
left out, unless named in ``keep_columns``); output columns as its outputs.  A tensor of rank > 1
per row is an array column (``array<float>`` for a float32 ``[batch, 64]`` input); its rows are
stacked into one ndarray for the model, and outputs of rank > 1 are split back into one array
per row.  :func:`output_schema` gives the DDL schema ``mapInPandas`` needs, from the archive.

The model is loaded once per executor Python worker and archive version (the process-level
cache of :mod:`carton_runtime.integrations.batch`: Spark reuses its Python workers across tasks
by default, ``spark.python.worker.reuse``), by URL or path through the shared cache.

:func:`carton_predict_batch_udf` wraps ``pyspark.ml.functions.predict_batch_udf`` (Spark >=
3.4): a column expression returning a struct of the outputs, with Spark doing the batching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import carton_format as cf

from .. import loader
from ..errors import CartonRuntimeError
from .batch import Columns, shared_model

#: Spark SQL types of Carton's dtypes (Spark has no unsigned integers: the next wider signed one).
SPARK_TYPES = {
    "float32": "float", "float64": "double", "int8": "tinyint", "int16": "smallint", "int32": "int", "int64": "bigint",
    "uint8": "smallint", "uint16": "int", "uint32": "bigint", "string": "string",
}


def spark_type(spec: cf.TensorSpec) -> str:
    """The DDL type of one row of ``spec``: its dtype, in ``array<...>`` once per dimension
    after the first (the batch); a spec of unknown rank or dtype is E-RUNTIME-ARG."""
    base = SPARK_TYPES.get(spec.dtype)
    if base is None:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{spec.name!r}: {spec.dtype} has no Spark column type", name=spec.name)
    if not isinstance(spec.shape, list) or not spec.shape:
        raise CartonRuntimeError(
            "E-RUNTIME-ARG", f"{spec.name!r}: a column needs a declared rank >= 1 (the batch first), not shape {spec.shape!r}", name=spec.name
        )
    for _ in spec.shape[1:]:
        base = f"array<{base}>"
    return base


def output_schema(url: str, *, keep_columns: Sequence[tuple[str, str]] = (), storage_options: Any = None) -> str:
    """The DDL schema of :func:`carton_udf`'s output for the model at ``url`` (``"y array<float>,
    label bigint"``); ``keep_columns`` are ``(name, ddl type)`` pairs put first."""
    info, _sha = loader.get_model_info(url, storage_options=storage_options)
    columns = Columns.of(info)
    fields = [f"{name} {ddl}" for name, ddl in keep_columns] + [f"{spec.name} {spark_type(spec)}" for spec in columns.outputs]
    return ", ".join(fields)


def _to_rows(array: np.ndarray) -> Any:
    """An output column for pandas: 1-D as is, else one value (array, nested list) per row."""
    if array.ndim <= 1:
        return array
    if array.ndim == 2:
        return list(array)
    return [row.tolist() for row in array]


def carton_udf(url: str, *, keep_columns: Sequence[str] = (), **load_options: Any) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The function for ``df.mapInPandas(fn, schema)``: each pandas batch of input columns to a
    pandas batch of output columns (``keep_columns`` copied through first).  ``load_options``
    are ``carton_runtime.sync.load``'s."""
    keep = tuple(keep_columns)

    def predict(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd  # the [spark] extra, present in Spark's Python workers

        model = shared_model(url, **load_options)
        columns = Columns.of(model.info)
        names = [spec.name for spec in columns.inputs]
        for frame in batches:
            missing = [name for name in names if name not in frame.columns]
            if missing:
                raise CartonRuntimeError(
                    "E-RUNTIME-INPUT",
                    f"the DataFrame has no column {missing[0]!r} for the model's input of that name (columns: {list(frame.columns)})",
                    name=missing[0],
                )
            outputs = model.infer(columns.to_inputs({name: frame[name].to_numpy() for name in names}))
            data = {name: frame[name].to_numpy() for name in keep}
            data.update((name, _to_rows(value)) for name, value in outputs.items())
            yield pd.DataFrame(data)

    return predict


def carton_predict_batch_udf(url: str, *, batch_size: int = 4096, storage_options: Any = None, **load_options: Any) -> Any:
    """A ``predict_batch_udf`` column function for the model at ``url``: called with the input
    columns in the order the archive declares them, it returns a struct of the outputs
    (``df.withColumn("out", fn("x")).select("out.*")``).  Needs every input's per-row shape fixed."""
    from pyspark.ml.functions import predict_batch_udf  # the [spark] extra, needed only here
    from pyspark.sql.types import StructType, _parse_datatype_string

    info, _sha = loader.get_model_info(url, storage_options=storage_options)
    columns = Columns.of(info)
    shapes: list[list[int] | None] = []
    for spec in columns.inputs:
        spark_type(spec)  # a usable column type, or a coded error now rather than in a worker
        row_shape = spec.shape[1:]
        if not all(isinstance(d, int) for d in row_shape):
            raise CartonRuntimeError(
                "E-RUNTIME-ARG", f"{spec.name!r}: predict_batch_udf needs fixed per-row shapes, not {row_shape!r}; use carton_udf", name=spec.name
            )
        shapes.append(list(row_shape) if row_shape else None)
    return_type = _parse_datatype_string(f"struct<{', '.join(f'{s.name}: {spark_type(s)}' for s in columns.outputs)}>")
    assert isinstance(return_type, StructType)
    names = [spec.name for spec in columns.inputs]
    options = {**load_options, **({"storage_options": storage_options} if storage_options is not None else {})}

    def make_predict_fn() -> Callable[..., dict[str, np.ndarray]]:
        model = shared_model(url, **options)

        def predict(*arrays: np.ndarray) -> dict[str, np.ndarray]:
            return model.infer(columns.to_inputs(dict(zip(names, arrays))))

        return predict

    return predict_batch_udf(make_predict_fn, return_type=return_type, batch_size=batch_size, input_tensor_shapes=shapes)


__all__ = ["SPARK_TYPES", "carton_predict_batch_udf", "carton_udf", "output_schema", "spark_type"]
