"""The python runner: real code directories packed, loaded in a worker process running in a
real environment built from the model's requirements.txt (pip, local index), inferred.

Environments are shared by the whole session (tests/helpers/python_envs.py): the first test
needing one builds it (seconds), the others reuse it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import carton_format as cf
import carton_runtime.sync as carton_sync
from carton_runtime import CartonError, SelfTest, TensorSpec
from carton_runtime.environments import MARKER, envs_root
from carton_runtime.model_files import DirectoryModelFiles
from carton_runtime.registry import find_runner_by_name
from carton_runtime.runners.python import PythonRunner
from tests.helpers.python_envs import ENV_NAME, session_runner_data_dir, tiny_wheel

MAJOR_MINOR = f"={sys.version_info.major}.{sys.version_info.minor}"

MAIN = '''
import os, sys
import numpy as np
import six
from . import helper
import helper as absolute_helper

class Model:
    def __init__(self, scale, label, flag):
        self.scale, self.label, self.flag = scale, label, flag

    def infer_with_tensors(self, tensors):
        return {
            "y": tensors["x"] * self.scale,
            "words": [w.upper() for w in tensors["s"].tolist()],
            "opts": np.array([self.label, repr(self.flag), type(self.scale).__name__]),
            "six": six.__file__,
            "cwd": os.getcwd(),
            "dtype_in": str(tensors["s"].dtype.kind),
            "pid": np.array(os.getpid(), dtype=np.int64),
            "scalar": np.float64(helper.ANSWER),
            "same_helper": np.array(absolute_helper.ANSWER == helper.ANSWER, dtype=np.uint8),
        }

def get_model(scale=1, label="none", flag=False):
    return Model(scale, label, flag)

class Broken:
    def infer_with_tensors(self, tensors):
        return {"y": helper.explode(tensors["x"])}

def broken(**options):
    return Broken()

def raises_at_load(**kwargs):
    raise RuntimeError("no weights here")

def not_a_model(**options):
    return 42

class BadOutput:
    def infer_with_tensors(self, tensors):
        return {"y": {"nested": "dict"}}

def bad_output(**options):
    return BadOutput()

class NotADict:
    def infer_with_tensors(self, tensors):
        return [1, 2]

def not_a_dict(**options):
    return NotADict()

class Sealed:
    def __init__(self):
        self.stored = {}
    def seal(self, tensors):
        self.stored[7] = tensors
        return 7
    def infer_with_handle(self, handle):
        return {"y": self.stored.pop(handle)["x"] + 1}

def sealed(**options):
    return Sealed()

class Streaming:
    def infer_with_tensors(self, tensors):
        for i in range(3):
            yield {"y": tensors["x"] + i}

def streaming(**options):
    return Streaming()

class Async:
    async def infer_with_tensors(self, tensors):
        return {"y": tensors["x"] - 1}

def async_model(**options):
    return Async()

class Slow:
    def infer_with_tensors(self, tensors):
        import time
        time.sleep(120)

def slow(**options):
    return Slow()

def slow_load(**options):
    import time
    time.sleep(120)

NOT_CALLABLE = 3
'''

HELPER = '''
ANSWER = 42.0

def explode(x):
    raise ValueError(f"cannot handle {x.shape[0]} values")
'''


@pytest.fixture(autouse=True)
def runner_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = session_runner_data_dir(tmp_path_factory)
    monkeypatch.setenv(ENV_NAME, str(path))
    return path


def code_dir(tmp_path: Path, requirements: str = "six\n", main: str = MAIN) -> Path:
    path = tmp_path / "code"
    path.mkdir()
    (path / "requirements.txt").write_text(requirements)
    (path / "main.py").write_text(main)
    (path / "helper.py").write_text(HELPER)
    return path


def pack(path: Path, fn: str = "get_model", **kwargs) -> str:
    opts = {"entrypoint_package": "main", "entrypoint_fn": fn}
    opts.update(kwargs.pop("runner_opts", {}))
    return carton_sync.pack(path, runner_name="python", required_framework_version=MAJOR_MINOR, runner_opts=opts, **kwargs)


INPUTS = {"x": np.arange(3, dtype=np.float32), "s": np.array(["ab", "c"])}


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> str:
    return pack(
        code_dir(tmp_path_factory.mktemp("py")),
        runner_opts={"model.scale": 3, "model.label": "hello", "model.flag": True},
    )


@pytest.mark.spec("FMT-PYTHON-1", "FMT-PYTHON-3", "FMT-PYTHON-4", "FMT-ENV-1")
def test_pack_load_infer_in_its_own_environment(packed: str) -> None:
    info = carton_sync.get_model_info(packed)
    assert (info.runner.runner_name, info.runner.required_framework_version, info.runner.runner_compat_version) == ("python", MAJOR_MINOR, 1)
    with carton_sync.load(packed) as model:
        out = model.infer(INPUTS)
        assert model.runner.framework_version == ".".join(map(str, sys.version_info[:3]))
        assert (Path(str(out["cwd"])) / "main.py").is_file()  # the worker runs in the model directory
    np.testing.assert_equal(out["y"], np.arange(3, dtype=np.float32) * 3)
    assert out["y"].dtype == np.float32
    np.testing.assert_equal(out["words"], np.array(["AB", "C"]))
    assert out["dtype_in"] == "U"  # string tensors reach the model as <U arrays, as in the original
    assert out["scalar"].shape == () and out["scalar"] == 42.0
    assert out["same_helper"] == 1  # relative and absolute imports of the model's own code
    # six comes from the model's environment under the runner data dir, not from this venv
    six_path = Path(str(out["six"]))
    assert six_path.is_relative_to(envs_root()), six_path
    import six

    assert not Path(six.__file__).is_relative_to(envs_root())
    assert int(out["pid"]) != os.getpid()  # the model ran in another process


@pytest.mark.spec("FMT-PYTHON-2")
def test_model_options_reach_the_entrypoint(packed: str) -> None:
    with carton_sync.load(packed) as model:
        out = model.infer(INPUTS)
    np.testing.assert_equal(out["opts"], np.array(["hello", "True", "int"]))
    with carton_sync.load(packed, override_runner_opts={"model.scale": 0.5, "model.label": "other"}) as model:
        out = model.infer(INPUTS)
    np.testing.assert_equal(out["opts"], np.array(["other", "True", "float"]))
    np.testing.assert_equal(out["y"], np.arange(3, dtype=np.float32) * 0.5)


@pytest.mark.spec("FMT-ENV-1")
def test_second_load_builds_nothing(packed: str, caplog: pytest.LogCaptureFixture) -> None:
    with carton_sync.load(packed) as model:
        model.infer(INPUTS)
    before = sorted(p.name for p in envs_root().iterdir())
    with caplog.at_level(logging.INFO, logger="carton_runtime.environments"):
        with carton_sync.load(packed) as model:
            model.infer(INPUTS)
    assert not [r for r in caplog.records if "creating runner environment" in r.getMessage()]
    assert sorted(p.name for p in envs_root().iterdir()) == before


def test_worker_stops_when_closed(packed: str) -> None:
    model = carton_sync.load(packed)
    pid = int(model.infer(INPUTS)["pid"])
    model.close()
    with pytest.raises(OSError):
        os.kill(pid, 0)  # reaped: no such process


@pytest.mark.spec("FMT-PYTHON-1", "FMT-ENV-1")
def test_empty_requirements_and_self_tests_at_pack(tmp_path: Path) -> None:
    path = code_dir(tmp_path, requirements="", main="import numpy as np\n\nclass M:\n    def infer_with_tensors(self, t):\n"
                    "        return {'out': t['x'] * 2}\n\ndef get_model():\n    return M()\n")
    (path / "helper.py").unlink()
    packed = pack(
        path,
        inputs=[TensorSpec("x", "float32", [None])],
        self_tests=[SelfTest(name="doubles", inputs={"x": np.ones(2, np.float32)}, expected_out={"out": np.full(2, 2, np.float32)})],
    )
    with carton_sync.load(packed) as model:
        assert all(r.passed for r in model.run_self_tests())
        np.testing.assert_equal(model.infer({"x": np.arange(2, dtype=np.float32)})["out"], np.array([0, 2], np.float32))


def test_failing_self_test_fails_pack(tmp_path: Path) -> None:
    path = code_dir(tmp_path)
    with pytest.raises(CartonError) as err:
        pack(path, self_tests=[SelfTest(name="t", inputs=dict(INPUTS), expected_out={"y": np.zeros(3, np.float32)})])
    assert err.value.code == "E-RUNTIME-INFER" and "self tests failed" in err.value.message


def test_load_unpacked(tmp_path: Path) -> None:
    path = code_dir(tmp_path)
    with carton_sync.load_unpacked(
        str(path), runner_name="python", required_framework_version=MAJOR_MINOR,
        runner_opts={"entrypoint_package": "main", "entrypoint_fn": "get_model", "model.scale": 2},
    ) as model:
        np.testing.assert_equal(model.infer(INPUTS)["y"], np.arange(3, dtype=np.float32) * 2)


@pytest.mark.spec("FMT-PYTHON-4")
@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        ("sealed", np.arange(3, dtype=np.float32) + 1),
        ("streaming", np.arange(3, dtype=np.float32) + 2),
        ("async_model", np.arange(3, dtype=np.float32) - 1),
    ],
)
def test_other_model_shapes(packed: str, fn: str, expected: np.ndarray) -> None:
    with carton_sync.load(packed, override_runner_opts={"entrypoint_fn": fn}) as model:
        np.testing.assert_equal(model.infer(INPUTS)["y"], expected)


@pytest.mark.spec("FMT-PYTHON-2")
@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"entrypoint_package": "nosuch"}, ["'nosuch' is not in the model", "nosuch.py"]),
        ({"entrypoint_fn": "nosuch"}, ["has no 'nosuch'"]),
        ({"entrypoint_fn": "NOT_CALLABLE"}, ["is a int, not a function"]),
        ({"entrypoint_fn": "raises_at_load"}, ["RuntimeError: no weights here", "main.py:"]),
        ({"entrypoint_fn": "not_a_model"}, ["returned a int", "infer_with_tensors"]),
        ({"entrypoint_fn": 3}, ["`entrypoint_fn` option to be a non-empty string"]),
    ],
)
def test_entrypoint_errors_are_coded(packed: str, opts: dict, words: list[str]) -> None:
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed, override_runner_opts=opts)
    assert err.value.code == "E-RUNTIME-RUNNER", err.value
    for word in words:
        assert word in err.value.message
    assert "Traceback" not in err.value.message


def test_missing_entrypoint_options(tmp_path: Path) -> None:
    path = code_dir(tmp_path)
    archive = cf.write(tmp_path / "a.carton", cf.CartonInfo(runner=cf.RunnerInfo("python", MAJOR_MINOR, 1, {"entrypoint_fn": "f"})), model_dir=path)
    with pytest.raises(CartonError) as err:
        carton_sync.load(archive.path)
    assert err.value.code == "E-RUNTIME-RUNNER" and "`entrypoint_package` was not set" in err.value.message


@pytest.mark.spec("FMT-PYTHON-4")
def test_inference_errors_are_coded(packed: str) -> None:
    with carton_sync.load(packed, override_runner_opts={"entrypoint_fn": "broken"}) as model:
        with pytest.raises(CartonError) as err:
            model.infer(INPUTS)
        assert err.value.code == "E-RUNTIME-INFER"
        assert "ValueError: cannot handle 3 values" in err.value.message and "helper.py:5, in explode" in err.value.message
        # the model keeps working after an error
        with pytest.raises(CartonError):
            model.infer(INPUTS)
    for fn, word in (("bad_output", "output 'y' is a builtins.dict"), ("not_a_dict", "returned a list")):
        with carton_sync.load(packed, override_runner_opts={"entrypoint_fn": fn}) as model:
            with pytest.raises(CartonError) as err:
                model.infer(INPUTS)
            assert err.value.code == "E-RUNTIME-OUTPUT" and word in err.value.message


@pytest.mark.spec("FMT-PYTHON-1")
def test_pack_needs_requirements_txt(tmp_path: Path) -> None:
    path = code_dir(tmp_path)
    (path / "requirements.txt").unlink()
    with pytest.raises(CartonError) as err:
        pack(path)
    assert err.value.code == "E-RUNTIME-ARG" and "requirements.txt" in err.value.message


def test_other_python_version_needs_an_override(packed: str) -> None:
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed, override_required_framework_version="=3.1")
    assert err.value.code == "E-RUNTIME-NO-RUNNER" and "'=3.1'" in err.value.message


def test_given_environment_is_used_as_is(tmp_path: Path) -> None:
    """A venv given by path: used without installing anything (here: an environment built
    before, with six), our packages reach it through PYTHONPATH (``load_unpacked`` takes
    ``environment`` as ``load`` does)."""
    path = code_dir(tmp_path)
    opts = {"entrypoint_package": "main", "entrypoint_fn": "get_model"}
    unpacked = {"runner_name": "python", "required_framework_version": MAJOR_MINOR, "runner_opts": opts}

    def env_with_six() -> Path | None:
        ready = [p for p in envs_root().iterdir() if (p / MARKER).is_file()] if envs_root().is_dir() else []
        return next((p for p in ready if json.loads((p / MARKER).read_text())["requirements"] == ["six"]), None)

    if env_with_six() is None:  # the first test of the session to need it builds it
        carton_sync.load_unpacked(str(path), **unpacked).close()
    with_six = env_with_six()
    assert with_six is not None
    with carton_sync.load_unpacked(str(path), **unpacked, environment=str(with_six)) as model:
        assert Path(str(model.infer(INPUTS)["six"])).is_relative_to(with_six)
    with pytest.raises(CartonError) as err:
        carton_sync.load_unpacked(str(path), **unpacked, environment=str(tmp_path / "no-such-venv"))
    assert err.value.code == "E-RUNTIME-ARG" and "no-such-venv" in err.value.message


def test_the_runner_does_not_load_in_process(tmp_path: Path) -> None:
    runner = find_runner_by_name("python")
    assert isinstance(runner, PythonRunner)
    with pytest.raises(CartonError) as err:
        runner.load(DirectoryModelFiles(code_dir(tmp_path)), device=None, opts={})
    assert err.value.code == "E-RUNTIME-ARG" and "only out of process" in err.value.message


def test_call_timeout_stops_a_hanging_python_model(packed: str) -> None:
    """``call_timeout_s`` reaches python models as any other worker: the hang is
    E-RUNTIME-TIMEOUT, the worker is gone, a new load works."""
    model = carton_sync.load(packed, override_runner_opts={"entrypoint_fn": "slow"}, call_timeout_s=1.0)
    pid = model._runner_model.pid  # the worker's
    with pytest.raises(CartonError) as err:
        model.infer(INPUTS)
    assert err.value.code == "E-RUNTIME-TIMEOUT" and "1 s" in err.value.message
    with pytest.raises(OSError):
        os.kill(pid, 0)  # stopped and reaped
    with pytest.raises(CartonError) as err:
        model.infer(INPUTS)
    assert err.value.code == "E-RUNTIME-RUNNER-DIED"
    model.close()
    with carton_sync.load(packed) as again:
        np.testing.assert_equal(again.infer(INPUTS)["y"], np.arange(3, dtype=np.float32) * 3)


def test_load_timeout_stops_a_hanging_entrypoint(packed: str) -> None:
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed, override_runner_opts={"entrypoint_fn": "slow_load"}, load_timeout_s=3.0)
    assert err.value.code == "E-RUNTIME-TIMEOUT" and "3 s" in err.value.message
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed, load_timeout_s=0)
    assert err.value.code == "E-RUNTIME-ARG" and err.value.name == "load_timeout_s"


def test_cli_load_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carton_format.cli import main as carton_main

    packed = pack(code_dir(tmp_path), fn="slow_load")
    assert carton_main(["run", "--load-timeout", "3", "--json", packed]) == 1
    reply = json.loads(capsys.readouterr().out)
    assert reply["error"]["code"] == "E-RUNTIME-TIMEOUT" and "3 s" in reply["error"]["message"]


def test_the_workers_python_is_checked_against_the_model(packed: str) -> None:
    """With an environment, the runner is chosen by name and the worker's handshake checks its
    Python version against the model's requirement (here an override no interpreter meets)."""
    with carton_sync.load(packed) as model:
        own = Path(str(model.infer(INPUTS)["six"])).parents[3]
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed, environment=str(own), override_required_framework_version="=3.1")
    assert err.value.code == "E-RUNTIME-NO-RUNNER" and "does not match '=3.1'" in err.value.message


def test_always_out_of_process(packed: str) -> None:
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed, isolation="inprocess")
    assert err.value.code == "E-RUNTIME-ARG" and "runs only out of process" in err.value.message
    with carton_sync.load(packed, isolation="process") as model:
        assert int(model.infer(INPUTS)["pid"]) != os.getpid()


def test_load_with_an_environment_path(packed: str) -> None:
    """``load(..., environment=venv)`` through the loader: the model runs in that venv."""
    with carton_sync.load(packed) as model:  # builds (or reuses) the model's own environment
        own = Path(str(model.infer(INPUTS)["six"])).parents[3]  # <env>/lib/pythonX.Y/site-packages/six.py
    assert (own / MARKER).is_file()
    with carton_sync.load(packed, environment=str(own)) as model:
        assert Path(str(model.infer(INPUTS)["six"])).is_relative_to(own)
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed, environment=str(own / "missing"))
    assert err.value.code == "E-RUNTIME-ARG"


def test_requirement_that_cannot_install(tmp_path: Path) -> None:
    path = code_dir(tmp_path, requirements="carton-no-such-package-anywhere==0.0.1\n")
    packed = pack(path)
    with pytest.raises(CartonError) as err:
        carton_sync.load(packed)
    assert err.value.code == "E-RUNTIME-ENV"
    assert "carton-no-such-package-anywhere" in err.value.message and "Traceback" not in err.value.message


def test_source_of_the_docs_entrypoint(tmp_path: Path) -> None:
    """The docs' entrypoint shape (one bool option, doubling ``x``), as a plain smoke check of
    ``textwrap``-indented code: a model whose code is in a sub-package."""
    path = tmp_path / "code"
    (path / "pkg" / "sub").mkdir(parents=True)
    (path / "requirements.txt").write_text("")
    (path / "pkg" / "sub" / "entry.py").write_text(textwrap.dedent("""
        class Model:
            def infer_with_tensors(self, tensors):
                return {"out": tensors["x"] * 2}

        def get_model(an_example_custom_option: bool):
            assert an_example_custom_option is False
            return Model()
    """))
    packed = carton_sync.pack(
        path, runner_name="python", required_framework_version=MAJOR_MINOR,
        runner_opts={"entrypoint_package": "pkg.sub.entry", "entrypoint_fn": "get_model", "model.an_example_custom_option": False},
    )
    with carton_sync.load(packed) as model:
        np.testing.assert_equal(model.infer({"x": np.arange(3, dtype=np.float32)})["out"], np.arange(3, dtype=np.float32) * 2)


def _wheel(dest_dir: Path) -> Path:
    """A real pure-Python wheel (carton_bundled_demo 1.0) that no package index has."""
    import base64
    import hashlib
    import zipfile

    files = {
        "carton_bundled_demo.py": b"VALUE = 'from the bundled wheel'\n",
        "carton_bundled_demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: carton-bundled-demo\nVersion: 1.0\n",
        "carton_bundled_demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n" for name, data in files.items()
    )
    files["carton_bundled_demo-1.0.dist-info/RECORD"] = (record + "carton_bundled_demo-1.0.dist-info/RECORD,,\n").encode()
    tmp = dest_dir / "carton_bundled_demo-1.0-py3-none-any.whl"
    dest_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = dest_dir / sha / tmp.name
    final.parent.mkdir()
    tmp.rename(final)
    return final


@pytest.mark.slow  # builds an environment of its own
@pytest.mark.spec("FMT-PYTHON-1")
def test_bundled_wheels_of_the_originals_packer(tmp_path: Path) -> None:
    """A model packed by the original may bundle wheels that are on no index under
    ``.carton/bundled_wheels/<sha256>/``: the environment installs them from there."""
    path = code_dir(
        tmp_path, requirements="carton-bundled-demo==1.0\n",
        main="import carton_bundled_demo\n\nclass M:\n    def infer_with_tensors(self, t):\n"
        "        return {'v': carton_bundled_demo.VALUE}\n\ndef get_model():\n    return M()\n",
    )
    _wheel(path / ".carton" / "bundled_wheels")
    with carton_sync.load(pack(path)) as model:
        assert str(model.infer({})["v"]) == "from the bundled wheel"


@pytest.mark.slow  # builds two environments of its own
@pytest.mark.spec("FMT-PYTHON-1", "FMT-ENV-1")
def test_wheels_shipped_in_the_code_directory(tmp_path: Path) -> None:
    """``--find-links ./wheels`` in requirements.txt is relative to the model directory (as pip
    run there): the model's own wheel (on no index) installs; rebuilt with other contents
    under the same name, it gets a new environment, not the stale one."""

    main = (
        "import carton_tinydep\n\nclass M:\n    def infer_with_tensors(self, t):\n"
        "        return {'v': carton_tinydep.VALUE + 0 * t['x'], 'file': carton_tinydep.__file__}\n\ndef get_model():\n    return M()\n"
    )
    values = []
    for value in (1, 2):
        (tmp_path / str(value)).mkdir()
        path = code_dir(tmp_path / str(value), requirements="--find-links ./wheels\ncarton-tinydep==0.1\n", main=main)
        tiny_wheel(path / "wheels", value)
        with carton_sync.load(pack(path)) as model:
            out = model.infer({"x": np.zeros(1, dtype=np.int64)})
        values.append((int(out["v"][0]), Path(str(out["file"])).parents[4]))  # <env>/lib/pythonX.Y/site-packages/carton_tinydep/
    (first, first_env), (second, second_env) = values
    assert (first, second) == (1, 2) and first_env != second_env
    assert (first_env / MARKER).is_file() and (second_env / MARKER).is_file()


@pytest.mark.parametrize(
    ("opts", "missing"),
    [({}, ["entrypoint_package", "entrypoint_fn"]), ({"entrypoint_fn": "get_model"}, ["entrypoint_package"]),
     ({"entrypoint_package": "main"}, ["entrypoint_fn"]), ({"entrypoint_package": "main", "entrypoint_fn": ""}, ["entrypoint_fn"])],
)
def test_pack_refuses_missing_entrypoint_options(tmp_path: Path, opts: dict, missing: list[str]) -> None:
    """What could only fail at load is refused at pack (and by load_unpacked), naming the options."""
    path = code_dir(tmp_path)
    out = tmp_path / "m.carton"
    with pytest.raises(CartonError) as err:
        carton_sync.pack(path, runner_name="python", required_framework_version=MAJOR_MINOR, runner_opts=opts or None, output_path=out)
    assert err.value.code == "E-RUNTIME-ARG" and err.value.name == missing[0]
    assert all(name in err.value.message for name in missing) and not out.exists()
    with pytest.raises(CartonError) as err:
        carton_sync.load_unpacked(path, runner_name="python", required_framework_version=MAJOR_MINOR, runner_opts=opts)
    assert err.value.code == "E-RUNTIME-ARG" and missing[0] in err.value.message


@pytest.mark.slow  # needs the torch environment (built once per session, shared with test_environments)
@pytest.mark.spec("FMT-PYTHON-4", "FMT-ENV-1")
def test_torch_tensors_as_outputs(tmp_path: Path) -> None:
    """A python model needing ``torch==X`` gets the same environment as a torch runner's
    ``environment="auto"`` (same requirement, same key) and may return torch tensors."""
    import torch

    from carton_runtime.environments import torch_requirement, worker_environment_for

    version = torch.__version__.split("+")[0]
    main = (
        "import torch\n\nclass M:\n    def infer_with_tensors(self, t):\n"
        "        x = torch.from_numpy(t['x'])\n"
        "        return {'y': x * 2, 'c': torch.view_as_real(torch.complex(x, x).conj().conj()), 'torch': torch.__file__}\n\n"
        "def get_model():\n    return M()\n"
    )
    path = code_dir(tmp_path, requirements=torch_requirement(f"={version}") + "\n", main=main)
    env_python = Path(worker_environment_for("torchscript", f"={version}", "auto").python)
    with carton_sync.load(pack(path)) as model:
        out = model.infer({"x": np.arange(3, dtype=np.float32)})
    np.testing.assert_equal(out["y"], np.arange(3, dtype=np.float32) * 2)
    assert out["c"].shape == (3, 2) and out["c"].dtype == np.float32
    assert Path(str(out["torch"])).is_relative_to(env_python.parent.parent)
