"""Spark batch inference end to end in local[2] (one SparkSession for the file): mapInPandas with
carton_udf, and the predict_batch_udf form."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from carton_runtime.integrations.spark import carton_predict_batch_udf, carton_udf, output_schema

from ..helpers.scaleout_models import CLASSES, features, pack_mlp, reference

pytest.importorskip("pyspark", reason="the spark extra (pyspark, pandas, pyarrow) is not installed")
pytest.importorskip("pyarrow", reason="the spark extra (pyspark, pandas, pyarrow) is not installed")
pd = pytest.importorskip("pandas", reason="the spark extra (pyspark, pandas, pyarrow) is not installed")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

ROWS = 500


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-cache")


@pytest.fixture(scope="module")
def spark(shared_cache: Path):
    from pyspark.sql import SparkSession

    saved = {k: os.environ.get(k) for k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "CARTON_CACHE_DIR")}
    os.environ.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, CARTON_CACHE_DIR=str(shared_cache))
    session = (
        SparkSession.builder.master("local[2]").appName("carton-tests")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.executorEnv.CARTON_CACHE_DIR", str(shared_cache))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(pack_mlp(tmp_path_factory.mktemp("mlp") / "mlp.carton"))


def _frame(spark, x: np.ndarray):
    return spark.createDataFrame(pd.DataFrame({"id": np.arange(len(x)), "x": list(x)}), "id bigint, x array<float>").repartition(2)


def test_map_in_pandas_infers_every_row(spark, mlp: str) -> None:
    x = features(ROWS)
    schema = output_schema(mlp, keep_columns=[("id", "bigint")])
    assert schema == "id bigint, y array<float>, label bigint"
    rows = _frame(spark, x).mapInPandas(carton_udf(mlp, keep_columns=["id"]), schema).orderBy("id").collect()
    assert [r["id"] for r in rows] == list(range(ROWS))
    expected = reference(x)
    np.testing.assert_allclose(np.array([r["y"] for r in rows], dtype=np.float32), expected["y"], rtol=1e-5, atol=1e-6)
    assert [r["label"] for r in rows] == expected["label"].tolist()
    assert len(rows[0]["y"]) == CLASSES


def test_predict_batch_udf_form(spark, mlp: str) -> None:
    x = features(200, seed=3)
    predict = carton_predict_batch_udf(mlp, batch_size=64)
    rows = _frame(spark, x).withColumn("out", predict("x")).select("id", "out.*").orderBy("id").collect()
    assert [r["label"] for r in rows] == reference(x)["label"].tolist()
    np.testing.assert_allclose(np.array([r["y"] for r in rows], dtype=np.float32), reference(x)["y"], rtol=1e-5, atol=1e-6)


def test_a_missing_or_mistyped_column_is_a_coded_error(spark, mlp: str) -> None:
    bad = spark.createDataFrame(pd.DataFrame({"id": np.arange(4), "x": list(features(4).astype(np.float64))}), "id bigint, x array<double>")
    with pytest.raises(Exception, match="E-RUNTIME-INPUT") as err:  # Spark wraps the worker's error in its own class
        bad.mapInPandas(carton_udf(mlp), output_schema(mlp)).collect()
    assert "float64" in str(err.value)
    unnamed = spark.createDataFrame(pd.DataFrame({"features": list(features(4))}), "features array<float>")
    with pytest.raises(Exception, match="no column 'x'"):
        unnamed.mapInPandas(carton_udf(mlp), output_schema(mlp)).collect()
