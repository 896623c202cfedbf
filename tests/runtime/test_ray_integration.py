"""Ray Data batch inference end to end, in local mode (one Ray instance for the file).

The model is packed on S3 (moto, behind the counting proxy): two actors load it from the shared
cache, so the archive is downloaded once however many actors start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import carton_runtime as carton
from carton_runtime.integrations.batch import clear_models
from carton_runtime.integrations.ray import CartonPredictor, predict

from ..helpers.s3server import S3TestServer
from ..helpers.scaleout_models import features, pack_mlp, reference

ray = pytest.importorskip("ray", reason="the ray extra (ray[data]) is not installed")
pytest.importorskip("ray.data", reason="the ray extra (ray[data]) is not installed")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.filterwarnings("ignore::FutureWarning")]

ROWS = 600


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-cache")


@pytest.fixture(autouse=True)
def same_cache_as_the_actors(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_CACHE_DIR", str(shared_cache))


@pytest.fixture(scope="module")
def ray_local(shared_cache: Path) -> None:
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False,
        runtime_env={"env_vars": {"CARTON_CACHE_DIR": str(shared_cache), "AWS_EC2_METADATA_DISABLED": "true"}},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def s3_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[S3TestServer, str, int]:
    s3 = S3TestServer()
    s3.bucket("ray-models")
    data = pack_mlp(tmp_path_factory.mktemp("mlp") / "mlp.carton").read_bytes()
    yield s3, s3.put("ray-models", "mlp.carton", data), len(data)
    s3.stop()


def _dataset(x: np.ndarray, **extra: np.ndarray):
    return ray.data.from_items([{"id": i, "x": row, **{k: v[i] for k, v in extra.items()}} for i, row in enumerate(x)])


def test_map_batches_with_an_actor_pool_loads_once_from_the_shared_cache(ray_local: None, s3_model: tuple) -> None:
    s3, url, size = s3_model
    x = features(ROWS)
    s3.proxy.log.clear()
    ds = _dataset(x).map_batches(
        CartonPredictor,
        fn_constructor_kwargs={"url": url, "keep_columns": ["id"], "storage_options": s3.storage_options()},
        concurrency=2, num_cpus=0.5, batch_size=128, batch_format="numpy",
    )
    rows = sorted(ds.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(ROWS))
    expected = reference(x)
    np.testing.assert_allclose(np.stack([r["y"] for r in rows]), expected["y"], rtol=1e-5, atol=1e-6)
    assert [int(r["label"]) for r in rows] == expected["label"].tolist()
    assert set(rows[0]) == {"id", "y", "label"}
    # two actors, one download: the archive's bytes crossed the proxy once (plus metadata reads)
    body = s3.proxy.bytes_for("ray-models", "mlp.carton")
    assert size <= body < 2 * size + 512 * 1024, s3.proxy.log


def test_predict_passes_concurrency_and_resources_through(ray_local: None, s3_model: tuple) -> None:
    s3, url, _size = s3_model
    x = features(200, seed=1)
    ds = predict(_dataset(x), url, concurrency=(1, 2), num_cpus=0.5, batch_size=64, keep_columns=["id"],
                 storage_options=s3.storage_options(), visible_device="cpu")
    out = ds.to_pandas().sort_values("id")
    assert out["label"].tolist() == reference(x)["label"].tolist()


def test_a_column_of_the_wrong_dtype_is_a_coded_error(ray_local: None, s3_model: tuple) -> None:
    s3, url, _size = s3_model
    predictor = CartonPredictor(url, storage_options=s3.storage_options())  # in this process, no Ray
    with pytest.raises(carton.CartonRuntimeError, match="column 'x' has dtype float64; the model's input 'x' is float32") as err:
        predictor({"x": features(4).astype(np.float64)})
    assert err.value.code == "E-RUNTIME-INPUT"
    with pytest.raises(carton.CartonRuntimeError, match="no column 'x'") as err:
        predictor({"features": features(4)})
    assert err.value.code == "E-RUNTIME-INPUT"
    assert predictor({"x": features(3), "other": np.zeros(3)})["label"].shape == (3,)
    ds = _dataset(features(16).astype(np.float64)).map_batches(
        CartonPredictor, fn_constructor_kwargs={"url": url, "storage_options": s3.storage_options()},
        concurrency=1, num_cpus=0.5, batch_format="numpy",
    )
    with pytest.raises(Exception, match="E-RUNTIME-INPUT") as err:  # Ray wraps the actor's error in its own class
        ds.take_all()
    assert "float64" in str(err.value)
    clear_models()
    assert predictor.model.closed  # clear_models closes what this process held
