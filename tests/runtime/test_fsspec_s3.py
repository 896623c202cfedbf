"""Archives on fsspec URLs: S3 (a real S3 API: moto's server on 127.0.0.1, behind a counting proxy)
and memory://; metadata through exact range reads, the model through the verified cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime.sync as carton_sync
from carton_runtime import CartonRuntimeError

from ..helpers.cartoncraft import build, members_of, write_sample
from ..helpers.s3server import S3TestServer
from .conftest import ORIGINAL_MODEL, ROOT, pack_original
from .test_api import INPUTS, check_outputs

pytest.importorskip("s3fs", reason="the s3 extra (s3fs) is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or config from this machine: only what a test passes counts."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def s3() -> S3TestServer:
    server = S3TestServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bucket(s3: S3TestServer) -> str:
    return s3.bucket("models")


@pytest.fixture(scope="module")
def large_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 64 MiB archive: a big weights file plus model.pt, metadata at the end as writers put it."""
    out = tmp_path_factory.mktemp("large")
    model_dir = out / "model"
    model_dir.mkdir()
    (model_dir / "model.pt").write_bytes(ORIGINAL_MODEL.read_bytes())
    (model_dir / "weights.bin").write_bytes(np.random.default_rng(0).bytes(64 * MiB))
    info = cf.CartonInfo(
        runner=cf.RunnerInfo("torchscript", "=2.13", 1),
        model_name="large",
        self_tests=[cf.SelfTest(inputs={"a": np.ones(3, np.float32)})],
    )
    return cf.write(out / "large.carton", info, model_dir=model_dir).path.read_bytes()


@pytest.fixture(scope="module")
def doubler(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return pack_original(tmp_path_factory.mktemp("doubler") / "doubler.carton").read_bytes()


def _code(exc_info: pytest.ExceptionInfo) -> str:
    return exc_info.value.code


def test_metadata_of_a_large_archive_costs_few_requests_and_bytes(s3: S3TestServer, bucket: str, large_archive: bytes) -> None:
    url = s3.put(bucket, "large.carton", large_archive)
    s3.proxy.log.clear()
    info = carton_sync.get_model_info(url, storage_options=s3.storage_options())
    assert info.model_name == "large"
    requests = s3.proxy.for_key(bucket, "large.carton")
    assert len(requests) <= 4, requests
    assert s3.proxy.bytes_for(bucket, "large.carton") < 256 * KiB, requests
    assert all(r.method == "HEAD" or r.range for r in requests), requests  # never a whole-object GET
    # a lazy tensor still loads, over one more range read
    assert info.self_tests[0].inputs["a"].load().tolist() == [1.0, 1.0, 1.0]
    assert s3.proxy.bytes_for(bucket, "large.carton") < 512 * KiB


def test_load_infer_then_cache_reuse_and_a_changed_object(s3: S3TestServer, bucket: str, doubler: bytes, tmp_path: Path) -> None:
    url = s3.put(bucket, "doubler.carton", doubler)
    options = s3.storage_options()
    s3.proxy.log.clear()
    model = carton_sync.load(url, storage_options=options)
    check_outputs(model.infer(INPUTS))
    assert model.source == url and model.info.model_name == "doubler"
    first = s3.proxy.for_key(bucket, "doubler.carton")
    whole = sum(r.sent for r in first)
    assert len(doubler) <= whole < 2 * len(doubler) + 256 * KiB, first  # downloaded once (plus the metadata reads)
    model.close()

    s3.proxy.log.clear()
    again = carton_sync.load(url, storage_options=options)  # from the cache: one info request, no body
    check_outputs(again.infer(INPUTS))
    assert [r.method for r in s3.proxy.for_key(bucket, "doubler.carton")] == ["HEAD"]
    assert again.manifest_sha256 == model.manifest_sha256
    again.close()

    changed = pack_original(tmp_path / "v2.carton", model_name="doubler v2").read_bytes()
    s3.put(bucket, "doubler.carton", changed)
    s3.proxy.log.clear()
    fresh = carton_sync.load(url, storage_options=options)
    assert fresh.info.model_name == "doubler v2" and fresh.manifest_sha256 != model.manifest_sha256
    assert s3.proxy.bytes_for(bucket, "doubler.carton") >= len(changed)
    check_outputs(fresh.infer(INPUTS))
    fresh.close()


def test_an_unreachable_store_uses_the_cached_copy(
    s3: S3TestServer, bucket: str, doubler: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    url = s3.put(bucket, "offline.carton", doubler)
    carton_sync.load(url, storage_options=s3.storage_options()).close()
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with caplog.at_level(logging.WARNING, logger="carton_runtime"):
        model = carton_sync.load(url, storage_options=s3.storage_options(closed))
    check_outputs(model.infer(INPUTS))
    model.close()
    assert "cannot check whether the cached copy is current" in caplog.text


def test_missing_bucket_key_and_credentials_are_coded_errors(s3: S3TestServer, bucket: str) -> None:
    options = s3.storage_options()
    with pytest.raises(CartonRuntimeError, match="no such object") as err:
        carton_sync.get_model_info(f"s3://{bucket}/nothing-here.carton", storage_options=options)
    assert _code(err) == "E-RUNTIME-SOURCE" and "nothing-here.carton" in err.value.message
    with pytest.raises(CartonRuntimeError, match="no such object or bucket") as err:
        carton_sync.load("s3://no-such-bucket/model.carton", storage_options=options)
    assert _code(err) == "E-RUNTIME-SOURCE"
    no_credentials = {k: v for k, v in options.items() if k not in ("key", "secret")}
    with pytest.raises(CartonRuntimeError, match="credentials") as err:
        carton_sync.get_model_info(f"s3://{bucket}/nothing-here.carton", storage_options={**no_credentials, "skip_instance_cache": True})
    assert _code(err) == "E-RUNTIME-SOURCE"
    with pytest.raises(CartonRuntimeError, match="storage_options must be a dict") as err:
        carton_sync.get_model_info(f"s3://{bucket}/x.carton", storage_options=["key"])  # type: ignore[arg-type]
    assert _code(err) == "E-RUNTIME-ARG"
    with pytest.raises(CartonRuntimeError, match="no_such_option") as err:
        carton_sync.get_model_info(f"s3://{bucket}/x.carton", storage_options={"no_such_option": 1})
    assert _code(err) == "E-RUNTIME-SOURCE"


def test_unknown_schemes_and_missing_packages_say_what_to_install() -> None:
    with pytest.raises(CartonRuntimeError, match="unsupported URL scheme 'nosuch'") as err:
        carton_sync.get_model_info("nosuch://bucket/model.carton")
    assert _code(err) == "E-RUNTIME-SOURCE"
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(CartonRuntimeError, match="pip install gcsfs") as err:
            carton_sync.get_model_info("gs://bucket/model.carton")
        assert _code(err) == "E-RUNTIME-SOURCE"


def test_an_object_that_is_not_an_archive_is_a_format_error(s3: S3TestServer, bucket: str) -> None:
    url = s3.put(bucket, "junk.carton", b"not a zip at all" * 100)
    with pytest.raises(cf.CartonFormatError):
        carton_sync.get_model_info(url, storage_options=s3.storage_options())
    empty = s3.put(bucket, "empty.carton", b"")
    with pytest.raises(CartonRuntimeError, match="empty") as err:
        carton_sync.get_model_info(empty, storage_options=s3.storage_options())
    assert _code(err) == "E-RUNTIME-SOURCE"


def test_memory_filesystem_load_infer_and_change(doubler: bytes, tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/carton-tests/doubler.carton", doubler)
    url = "memory://carton-tests/doubler.carton"
    assert carton_sync.get_model_info(url).model_name == "doubler"
    assert cf.validate(url).ok  # the format layer's readers too (the runtime's "*" carton.sources opener)
    with cf.read(url) as archive:
        assert archive.info.model_name == "doubler"
    model = carton_sync.load(url)
    check_outputs(model.infer(INPUTS))
    model.close()
    fs.pipe_file("/carton-tests/doubler.carton", pack_original(tmp_path / "m2.carton", model_name="memory v2").read_bytes())
    assert carton_sync.load(url).info.model_name == "memory v2"
    fs.rm("/carton-tests/doubler.carton")


def test_cli_info_validate_and_run_read_s3_with_the_environments_configuration(
    s3: S3TestServer, bucket: str, doubler: bytes, tmp_path: Path
) -> None:
    url = s3.put(bucket, "cli/doubler.carton", doubler)
    env = {**os.environ, **s3.env(), "CARTON_CACHE_DIR": str(tmp_path / "cli-cache")}
    carton = [sys.executable, "-m", "carton_format.cli"]
    info = subprocess.run([*carton, "info", url], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert info.returncode == 0, info.stderr
    assert "doubler" in info.stdout
    valid = subprocess.run([*carton, "validate", url], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    a = tmp_path / "a.npy"
    np.save(a, INPUTS["a"])
    run = subprocess.run(
        [*carton, "run", url, "--json", "--input", f"a=@{a}", "--input", "b=scalar", "--input", 'c=["x", "y"]'],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert "doubled" in json.loads(run.stdout)
    missing = subprocess.run([*carton, "info", f"s3://{bucket}/cli/missing.carton"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "E-RUNTIME-SOURCE" in missing.stdout + missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.spec("FMT-LINKS-5")
def test_links_stay_http_only_even_for_archives_on_object_stores(tmp_path: Path) -> None:
    """Archives may live on any fsspec URL; the URLs inside LINKS stay http(s) (spec section 13)."""
    members = members_of(write_sample(tmp_path))
    model_sha = hashlib.sha256(members["model/model.pt"]).hexdigest()
    with pytest.raises(cf.CartonFormatError, match="not an http or https URL") as err:
        cf.write(tmp_path / "l.carton", cf.CartonInfo(runner=cf.RunnerInfo("torchscript", "=2.13", 1)),
                 model_dir=tmp_path / "sample.carton.model", linked_files={model_sha: ["s3://bucket/model.pt"]})
    assert err.value.code == "E-ARG-INVALID"  # the writer refuses it as an argument
    links = f"version = 1\n[urls]\n{model_sha} = ['s3://bucket/model.pt']\n".encode()
    path = tmp_path / "s3-links.carton"
    path.write_bytes(build({k: v for k, v in members.items() if k != "model/model.pt"}, links=links,
                           manifest=members["MANIFEST"]))
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(path)
    assert err.value.code == "E-LINKS-URL"
    assert "E-LINKS-URL" in [f.code for f in cf.validate(path).errors]


def test_a_store_without_checksums_or_times_is_revalidated_by_the_archives_tail(tmp_path: Path) -> None:
    """Any fsspec protocol works, registered by anyone; when its info has only a size, a cached
    copy is compared by the hash of the object's last bytes (a same-size replacement is caught)."""
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class SizeOnlyFS(MemoryFileSystem):
        protocol = ("sizeonly",)
        store: dict = {}  # its own files (MemoryFileSystem keeps them in a class attribute)
        pseudo_dirs = [""]

        @classmethod
        def _strip_protocol(cls, path):
            return MemoryFileSystem._strip_protocol(path.replace("sizeonly://", "memory://", 1))

        read_bytes = 0

        def info(self, path, **kwargs):
            return {k: v for k, v in super().info(path, **kwargs).items() if k in ("name", "size", "type")}

        def cat_file(self, path, start=None, end=None, **kwargs):
            data = super().cat_file(path, start=start, end=end, **kwargs)
            SizeOnlyFS.read_bytes += len(data)
            return data

    fsspec.register_implementation("sizeonly", SizeOnlyFS, clobber=True)
    one = pack_original(tmp_path / "one.carton", model_name="model v1").read_bytes()
    two = pack_original(tmp_path / "two.carton", model_name="model v2").read_bytes()
    assert len(one) == len(two) and one != two
    fs = SizeOnlyFS()
    fs.pipe_file("/models/m.carton", one)
    url = "sizeonly://models/m.carton"
    assert carton_sync.load(url).info.model_name == "model v1"
    SizeOnlyFS.read_bytes = 0
    assert carton_sync.load(url).info.model_name == "model v1"  # cached: only the tail was read to compare
    assert SizeOnlyFS.read_bytes == min(len(one), 64 * KiB)
    fs.pipe_file("/models/m.carton", two)
    assert carton_sync.load(url).info.model_name == "model v2"  # same size, other tail: fetched again
