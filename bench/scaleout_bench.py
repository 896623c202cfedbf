"""Batch inference throughput: the plain loop against Ray Data and Spark, and our adapters'
overhead against calling ``model.infer`` directly inside the same engine.

A small MLP (tests/helpers/scaleout_models.py: 64 float32 features -> 64 hidden -> 4 logits and
a label) over ``--rows`` rows.  Every engine figure is the best of ``ROUNDS`` timed passes after a warm-up pass (so
that actors, Python workers and the cache are started), adapter and direct passes taken in turn;
each engine runs our adapter
(``CartonPredictor``, ``carton_udf``, ``carton_predict_batch_udf``) and a hand-written direct
function that does only what the engine needs (``model.infer`` on the column, outputs as
columns) in the same pipeline, so their ratio is what the adapter costs.  ``--engines`` picks a
subset (plain,ray,spark); an engine that is not installed is reported as skipped.

    .venv/bin/python bench/scaleout_bench.py --rows 200000 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carton_runtime.integrations.batch import Columns, shared_model  # noqa: E402
from tests.helpers.scaleout_models import features, pack_mlp  # noqa: E402

BATCH = 4096
ROUNDS = 3  # interleaved adapter/direct passes per engine (best of each)


def best_of(fn: Any, runs: int = 2) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(adapter: Any, direct: Any, rounds: int = ROUNDS) -> tuple[float, float]:
    """Best times of ``adapter`` and ``direct``, run in turn so that both see the same load."""
    t_adapter = t_direct = float("inf")
    for _ in range(rounds):
        t_adapter = min(t_adapter, best_of(adapter, 1))
        t_direct = min(t_direct, best_of(direct, 1))
    return t_adapter, t_direct


def plain(url: str, x: np.ndarray) -> dict[str, Any]:
    """The plain loop (``model.infer`` over batches), and the adapter's own per-batch work
    (columns -> inputs, checked) timed alone, so that machine noise does not swamp it."""
    import timeit

    model = shared_model(url)
    columns = Columns.of(model.info)

    def direct() -> None:
        for i in range(0, len(x), BATCH):
            model.infer({"x": x[i : i + BATCH]})

    def adapter() -> None:
        for i in range(0, len(x), BATCH):
            model.infer(columns.to_inputs({"x": x[i : i + BATCH]}))

    t_adapter, t_direct = interleaved(adapter, direct, 5)
    batch = {"x": x[:BATCH]}
    to_inputs_s = min(timeit.repeat(lambda: columns.to_inputs(batch), number=1000, repeat=5)) / 1000
    infer_s = t_direct / -(-len(x) // BATCH)
    return {
        "rows_per_s": len(x) / t_direct, "adapter_rows_per_s": len(x) / t_adapter, "adapter_vs_direct": t_adapter / t_direct,
        "adapter_us_per_batch": to_inputs_s * 1e6, "infer_ms_per_batch": infer_s * 1e3, "adapter_overhead_ratio": (infer_s + to_inputs_s) / infer_s,
    }


class DirectRayPredictor:
    """What a user would write without the adapter: the model and ``infer`` on the column."""

    def __init__(self, url: str) -> None:
        self.model = shared_model(url)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.model.infer({"x": batch["x"]})


def ray_engine(url: str, x: np.ndarray, cache: str) -> dict[str, Any]:
    import ray

    from carton_runtime.integrations.ray import CartonPredictor

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"CARTON_CACHE_DIR": cache}})
    startup = time.perf_counter() - start
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_numpy(x).rename_columns({"data": "x"}).materialize()

    def run(cls: Any) -> None:
        out = ds.map_batches(cls, fn_constructor_kwargs={"url": url}, concurrency=2, num_cpus=0.5, batch_size=BATCH, batch_format="numpy")
        assert out.count() == len(x)

    try:
        run(CartonPredictor)  # warm-up: actors, cache
        t_adapter, t_direct = interleaved(lambda: run(CartonPredictor), lambda: run(DirectRayPredictor))
    finally:
        ray.shutdown()
    return {
        "startup_s": startup, "rows_per_s": len(x) / t_direct, "adapter_rows_per_s": len(x) / t_adapter, "adapter_vs_direct": t_adapter / t_direct,
    }


def spark_engine(url: str, x: np.ndarray, cache: str) -> dict[str, Any]:
    os.environ.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, CARTON_CACHE_DIR=cache)
    import pandas as pd
    from pyspark.sql import SparkSession

    from carton_runtime.integrations.spark import carton_predict_batch_udf, carton_udf, output_schema

    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true").config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH))
        .getOrCreate()
    )
    startup = time.perf_counter() - start
    spark.sparkContext.setLogLevel("ERROR")
    rows = len(x)

    def make(pdfs: Any) -> Any:  # the features, generated in the workers (shipping 1M array rows from the driver dominates otherwise)
        for pdf in pdfs:
            ids = pdf["id"].to_numpy()
            yield pd.DataFrame({"x": list(np.random.default_rng(int(ids[0])).standard_normal((len(ids), x.shape[1]), dtype=np.float32))})

    df = spark.range(rows, numPartitions=2).mapInPandas(make, "x array<float>").cache()
    assert df.count() == rows
    schema = output_schema(url)

    def direct_fn(pdfs: Any) -> Any:
        model = shared_model(url)
        for pdf in pdfs:
            out = model.infer({"x": np.stack(pdf["x"].to_numpy())})
            yield pd.DataFrame({"y": list(out["y"]), "label": out["label"]})

    def run(fn: Any) -> None:
        df.mapInPandas(fn, schema).write.format("noop").mode("overwrite").save()

    predict = carton_predict_batch_udf(url, batch_size=BATCH)

    def run_pbu() -> None:
        df.withColumn("out", predict("x")).select("out.*").write.format("noop").mode("overwrite").save()

    try:
        run(carton_udf(url))  # warm-up: workers, cache
        t_adapter, t_direct = interleaved(lambda: run(carton_udf(url)), lambda: run(direct_fn))
        run_pbu()
        t_pbu = best_of(run_pbu, 2)
    finally:
        spark.stop()
    return {
        "startup_s": startup, "rows_per_s": rows / t_direct, "adapter_rows_per_s": rows / t_adapter, "adapter_vs_direct": t_adapter / t_direct,
        "predict_batch_udf_rows_per_s": rows / t_pbu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--engines", default="plain,ray,spark")
    parser.add_argument("--json", help="write the figures to this file too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="carton-scaleout-"))
    cache = str(work / "cache")
    os.environ["CARTON_CACHE_DIR"] = cache
    url = str(pack_mlp(work / "mlp.carton"))
    x = features(args.rows)
    results: dict[str, Any] = {"rows": args.rows, "batch": BATCH, "cpus": os.cpu_count()}
    runners = {"plain": lambda: plain(url, x), "ray": lambda: ray_engine(url, x, cache), "spark": lambda: spark_engine(url, x, cache)}
    for name in args.engines.split(","):
        try:
            results[name] = runners[name]()
        except ImportError as exc:
            results[name] = {"skipped": f"not installed: {exc}"}
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
