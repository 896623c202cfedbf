"""Runner environments (carton_runtime.environments): real venvs, real pip on the local index.

The environments are shared by the session (tests/helpers/python_envs.py); the tests that must
see a build from scratch use their own directory.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet  # not pip._vendor: importing pip turns off setuptools' distutils shim
from packaging.version import Version

import carton_format as cf
from carton_runtime import CartonError
from carton_runtime import environments as envs
from tests.helpers.python_envs import ENV_NAME, session_runner_data_dir, tiny_wheel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def runner_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = session_runner_data_dir(tmp_path_factory)
    monkeypatch.setenv(ENV_NAME, str(path))
    return path


def run(python: str, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, "-c", code], capture_output=True, text=True, cwd="/", env=env, timeout=120, check=False)


# -- keys -----------------------------------------------------------------------------------------


@pytest.mark.spec("FMT-ENV-1")
def test_requirements_are_normalised() -> None:
    text = "six  # a comment\n\n# only a comment\nnumpy>=1.0 ; python_version >= '3'\nsix\nnum\\\npy<3\n"
    assert envs.normalize_requirements(text) == ("numpy<3", "numpy>=1.0 ; python_version >= '3'", "six")
    assert envs.normalize_requirements("") == ()


@pytest.mark.spec("FMT-ENV-1")
def test_key_is_content_addressed() -> None:
    host = envs.host_interpreter()
    key = envs.environment_key(host, ["six", "numpy"])
    assert key == envs.environment_key(host, ["numpy  # same", "six", ""])  # order, comments, blanks: same
    assert key != envs.environment_key(host, ["six"])
    assert key != envs.environment_key(host, ["six==1.16.0", "numpy"])
    other = envs.Interpreter("/opt/python3.12/bin/python3", "3.12.1", "cpython", host.machine)
    assert key != envs.environment_key(other, ["six", "numpy"])
    assert len(key) == 64 and int(key, 16) >= 0


def test_runtime_dependencies_follow_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["dependencies"]]
    assert list(envs.RUNTIME_DEPENDENCIES) == [*names, "filelock"]
    from importlib.metadata import version

    assert f"numpy=={version('numpy')}" in envs.runtime_requirements()


# -- Cargo requirement -> PEP 440 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cargo", "pep440"),
    [
        ("=2.13.0", "==2.13.0"),
        ("=2.13", "==2.13.*"),
        ("=2", "==2.*"),
        ("2.1", ">=2.1,<3"),
        ("^0.2.3", ">=0.2.3,<0.3"),
        ("^0.0.3", ">=0.0.3,<0.0.4"),
        ("~1.2.3", ">=1.2.3,<1.3"),
        (">1.2", ">=1.3"),
        ("<=1.2", "<1.3"),
        (">=2, <3", ">=2,<3"),
        ("*", ""),
        ("=2.1.0-rc.1", "==2.1.0rc1"),
    ],
)
def test_pep440_specifier(cargo: str, pep440: str) -> None:
    assert envs.pep440_specifier(cargo) == pep440


def test_torch_requirement_pins_exactly() -> None:
    assert envs.torch_requirement("=2.13.0") == "torch==2.13.0"
    assert envs.torch_requirement("*") == "torch"
    with pytest.raises(CartonError) as err:
        envs.pep440_specifier("=2.1.0-nightly.3")
    assert err.value.code == "E-RUNTIME-ENV"


_OPS = st.sampled_from(["=", ">", ">=", "<", "<=", "~", "^", ""])
_PART = st.integers(0, 3)


@settings(max_examples=300, deadline=None)
@given(op=_OPS, parts=st.lists(_PART, min_size=1, max_size=3), version=st.tuples(_PART, _PART, _PART))
def test_pep440_matches_what_cargo_matches(op: str, parts: list[int], version: tuple[int, int, int]) -> None:
    """For release versions, the translated specifier accepts exactly what the requirement does."""
    req = op + ".".join(map(str, parts))
    text = ".".join(map(str, version))
    expected = cf.VersionReq.parse(req).matches(text)
    assert (Version(text) in SpecifierSet(envs.pep440_specifier(req))) == expected, (req, text, envs.pep440_specifier(req))


# -- building -------------------------------------------------------------------------------------


@pytest.mark.spec("FMT-ENV-1")
def test_build_then_reuse(tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="carton_runtime.environments"):
        env = envs.ensure_environment(["six"], purpose="a test")
    assert envs.is_ready(env.root) and env.root.parent == envs.envs_root() and env.root.name == env.key
    marker = json.loads((env.root / envs.MARKER).read_text())
    assert marker["requirements"] == ["six"] and marker["key"] == env.key
    listing = sorted(p.name for p in env.root.parent.iterdir())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="carton_runtime.environments"):
        again = envs.ensure_environment(["six  # again"])
    assert (again.root, again.created) == (env.root, False)
    assert not caplog.records and sorted(p.name for p in env.root.parent.iterdir()) == listing
    # what the environment sees: its own six, our two packages, none of the host venv's others
    done = run(env.python, "import six, carton_runtime, carton_format, numpy; print(six.__file__); print(carton_runtime.__file__)")
    assert done.returncode == 0, done.stderr
    six_file, ours = done.stdout.split()
    assert Path(six_file).is_relative_to(env.root)
    assert Path(ours).resolve() == (ROOT / "carton_runtime" / "__init__.py")
    for host_only in ("pytest", "hypothesis", "torch"):
        assert run(env.python, f"import {host_only}").returncode != 0, f"{host_only} leaked into the environment"
    assert not list(env.root.parent.glob(f".{env.key}.*"))  # no temporary directories left
    # console scripts were written in the temporary directory: they name the final one
    script = (env.root / "bin" / "tqdm").read_text()
    assert f"{env.root}/bin/python" in script.splitlines()[0] + script.splitlines()[1] and ".tmp-" not in script
    assert subprocess.run([str(env.root / "bin" / "tqdm"), "--version"], capture_output=True, timeout=60, check=False).returncode == 0


def test_failed_install_is_coded_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(CartonError) as err:
        envs.ensure_environment(["carton-no-such-package-anywhere==9.9"], root=tmp_path)
    assert err.value.code == "E-RUNTIME-ENV"
    message = err.value.message
    assert "carton-no-such-package-anywhere" in message and "ERROR" in message and "Traceback" not in message
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("logs",) and not p.name.endswith(".lock")]
    assert leftovers == []
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in message and "No matching distribution" in logs[0].read_text()


@pytest.mark.slow  # builds environments from scratch (seconds each)
def test_half_built_environment_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = envs.ensure_environment([], root=tmp_path)
    assert env.created
    (env.root / envs.MARKER).unlink()  # as if the build had stopped before its last step
    (env.root / "junk-of-the-interrupted-build").write_text("x")
    assert not envs.is_ready(env.root)
    with caplog.at_level(logging.WARNING, logger="carton_runtime.environments"):
        again = envs.ensure_environment([], root=tmp_path)
    assert again.created and again.root == env.root and envs.is_ready(again.root)
    assert not (again.root / "junk-of-the-interrupted-build").exists()
    assert any("incomplete" in r.getMessage() for r in caplog.records)
    assert run(again.python, "import carton_runtime, numpy").returncode == 0
    # a marker naming another key does not count either
    (again.root / envs.MARKER).write_text(json.dumps({"key": "0" * 64}))
    assert not envs.is_ready(again.root)


@pytest.mark.slow  # builds environments from scratch (seconds each)
def test_two_processes_build_once(tmp_path: Path) -> None:
    """Two processes asking for the same new environment at once: one builds, the other waits
    on the lock and reuses it."""
    code = (
        "import sys; from pathlib import Path; from carton_runtime import environments as e; "
        f"env = e.ensure_environment(['six'], root=Path({str(tmp_path)!r})); print(env.created, env.root)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-800:] for r in results]
    answers = sorted(out.split()[0] for out, _ in results)
    roots = {out.split()[1] for out, _ in results}
    assert answers == ["False", "True"] and len(roots) == 1


# -- worker environments --------------------------------------------------------------------------


def test_worker_environment_for_a_path(tmp_path: Path) -> None:
    env = envs.ensure_environment(["six"])
    given = envs.worker_environment_for("torchscript", "*", str(env.root))  # a venv directory
    assert given.python == env.python and given.sys_path == ()
    shim = Path(given.env["PYTHONPATH"])
    assert sorted(p.name for p in shim.iterdir()) == ["carton_format", "carton_runtime"]
    assert envs.worker_environment_for("python", "*", env.python).python == env.python  # an interpreter
    for bad in (tmp_path / "missing", tmp_path):
        with pytest.raises(CartonError) as err:
            envs.worker_environment_for("python", "*", str(bad))
        assert err.value.code == "E-RUNTIME-ARG" and str(bad) in err.value.message
    with pytest.raises(CartonError) as err:
        envs.worker_environment_for("some-runner", "*", "auto")
    assert err.value.code == "E-RUNTIME-ARG"
    with pytest.raises(CartonError) as err:
        envs.worker_environment_for("python", "=3.1", "auto")
    assert err.value.code == "E-RUNTIME-NO-RUNNER" and "Python =3.1" in err.value.message


def _doubler(path: Path) -> Path:
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {"out": inputs["x"] * 2}

    torch.jit.save(torch.jit.script(Doubler()), str(path))
    return path


@pytest.mark.slow
def test_torchscript_in_a_provisioned_torch_environment(tmp_path: Path) -> None:
    """environment='auto' for torchscript: an environment with torch==2.13.0 (the local
    wheel, installed again there) runs the model; the worker maps that environment's libtorch,
    not the host's."""
    import torch

    import carton_runtime.sync as carton_sync

    version = torch.__version__.split("+")[0]
    packed = carton_sync.pack(str(_doubler(tmp_path / "model.pt")), runner_name="torchscript", required_framework_version=f"={version}")
    provided = envs.worker_environment_for("torchscript", f"={version}", "auto")
    env_root = Path(provided.python).parent.parent
    assert envs.is_ready(env_root) and "torch==" + version in (env_root / envs.MARKER).read_text()
    with carton_sync.load(packed, environment="auto") as model:
        np.testing.assert_equal(model.infer({"x": np.arange(3, dtype=np.float32)})["out"], np.arange(3, dtype=np.float32) * 2)
        pid = model._runner_model.pid
        maps = Path(f"/proc/{pid}/maps").read_text()
    libtorch = {line.split()[-1] for line in maps.splitlines() if "libtorch_cpu" in line}
    assert libtorch and all(Path(p).is_relative_to(env_root) for p in libtorch), libtorch
    host_torch = Path(torch.__file__).parent
    assert not any(Path(p).is_relative_to(host_torch) for p in libtorch)


def test_install_commands_do_not_import_from_the_shared_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' working directory is on their sys.path: it is a private empty one, so a
    module somebody left in /tmp (an ``attr.py``, a ``pip.py``) is never imported."""
    import tempfile

    from carton_runtime.environments import _Installer

    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    marker = tmp_path / "imported"
    (shared / "carton_probe_hostile.py").write_text(f"open({str(marker)!r}, 'w').write('hijacked')\n")
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    with _Installer(tmp_path / "log.txt", "a probe") as installer:
        installer.run([sys.executable, "-c", "try:\n    import carton_probe_hostile\nexcept ImportError:\n    pass"], "probing")
    assert not marker.exists()
    assert list(shared.iterdir()) == [shared / "carton_probe_hostile.py"]  # the private directory is gone


# -- local files the requirements name ------------------------------------------------------------


def _code_dir(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    tiny_wheel(path / "wheels", 1)
    (path / "proj").mkdir()
    (path / "proj" / "setup.py").write_text("from setuptools import setup; setup(name='proj')\n")
    (path / "sub" / "more.txt").write_text("-f ../wheels\n./wheels/carton_tinydep-0.1-py3-none-any.whl\n-c cons.txt\n")
    (path / "sub" / "cons.txt").write_text("six<2\n")
    return path


LOCAL_LINES = [
    "./wheels/carton_tinydep-0.1-py3-none-any.whl ; python_version > '3'",
    "--find-links ./wheels",
    "--find-links=wheels --no-index",
    "-f./wheels",
    "wheels/carton_tinydep-0.1-py3-none-any.whl[extra] --hash=sha256:00",
    "file:wheels/carton_tinydep-0.1-py3-none-any.whl#sha256=00",
    "carton-tinydep @ ./wheels/carton_tinydep-0.1-py3-none-any.whl",
    "-e ./proj",
    "-r sub/more.txt",
]
REMOTE_LINES = ["six==1.16.0", "https://example.com/x-1.0-py3-none-any.whl", "x @ https://example.com/x.whl", "-e git+https://example.com/y#egg=y",
                "--index-url https://example.com/simple", "numpy>=1.0 ; python_version >= '3'"]


@pytest.mark.spec("FMT-ENV-1")
def test_local_paths_resolve_against_the_base_directory(tmp_path: Path) -> None:
    """Every form of local reference becomes absolute under the base directory (the model's),
    whatever the installer's working directory; a ``-r`` file is inlined with its options
    relative to it and its path requirements relative to the base; remote lines stay as written."""
    base = _code_dir(tmp_path / "code")
    resolved = envs.resolve_local(LOCAL_LINES + REMOTE_LINES, base)
    wheel, wheels = base / "wheels" / "carton_tinydep-0.1-py3-none-any.whl", base / "wheels"
    expected = {
        f"{wheel} ; python_version > '3'",
        f"--find-links {wheels}",
        f"--find-links={wheels} --no-index",
        f"-f{wheels}",
        f"{wheel}[extra] --hash=sha256:00",
        f"{wheel.as_uri()}#sha256=00",
        f"carton-tinydep @ {wheel.as_uri()}",
        f"-e {base / 'proj'}",
        f"-f {wheels}", str(wheel), f"-c {base / 'sub' / 'cons.txt'}",  # sub/more.txt, inlined
        *REMOTE_LINES,
    }
    assert set(resolved.lines) == expected
    assert dict(resolved.digests).keys() == {"wheels", "wheels/carton_tinydep-0.1-py3-none-any.whl", "proj", "sub/more.txt", "sub/cons.txt"}
    assert envs.resolve_local(REMOTE_LINES, base) == envs.LocalRequirements(envs.normalize_requirements(REMOTE_LINES), ())
    assert "-r" not in " ".join(resolved.lines).split()


@pytest.mark.spec("FMT-ENV-1")
def test_key_has_the_content_of_local_files(tmp_path: Path) -> None:
    """The key hashes what local references hold, not where the model directory is: a copy
    elsewhere keys the same, a rebuilt wheel (same name) or an edited -r file does not; bytes
    written by imports (``__pycache__``) do not count; requirements naming nothing local keep
    their old key."""
    host = envs.host_interpreter()
    base = _code_dir(tmp_path / "code")

    def key(where: Path, lines: list[str] = LOCAL_LINES) -> str:
        return envs.environment_key(host, lines, (), envs.resolve_local(lines, where).digests)

    first = key(base)
    import shutil

    shutil.copytree(base, tmp_path / "elsewhere")
    assert key(tmp_path / "elsewhere") == first
    (base / "proj" / "__pycache__").mkdir()
    (base / "proj" / "__pycache__" / "setup.cpython-311.pyc").write_bytes(b"written by an import")
    assert key(base) == first
    tiny_wheel(base / "wheels", 2)
    rebuilt = key(base)
    assert rebuilt != first
    (base / "sub" / "cons.txt").write_text("six<3\n")
    assert key(base) not in (first, rebuilt)
    assert envs.environment_key(host, ["six"]) == envs.environment_key(host, ["six"], (), envs.resolve_local(["six"], base).digests)
    (base / "sub" / "more.txt").write_text("-r more.txt\n")
    with pytest.raises(CartonError) as err:
        envs.resolve_local(["-r sub/more.txt"], base)
    assert err.value.code == "E-RUNTIME-ENV" and "from itself" in err.value.message


def test_local_content_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _code_dir(tmp_path / "code")
    monkeypatch.setattr(envs, "LOCAL_MAX_FILES", 1)
    with pytest.raises(CartonError) as err:
        envs.resolve_local(["-e ./proj", "-f ./wheels"], base)
    assert err.value.code == "E-RUNTIME-ENV" and "beyond what an environment's key hashes" in err.value.message


@pytest.mark.slow  # builds two environments
@pytest.mark.spec("FMT-ENV-1")
def test_a_wheel_next_to_the_requirements_installs(tmp_path: Path) -> None:
    """``./wheels/x.whl`` in a requirements file installs from the base directory (no index
    has the package); the wheel rebuilt with other contents gets an environment of its own."""
    base = tmp_path / "code"
    tiny_wheel(base / "wheels", 1)
    lines = ["./wheels/carton_tinydep-0.1-py3-none-any.whl"]
    env = envs.ensure_environment(lines, base_dir=base, root=tmp_path / "envs")
    done = run(env.python, "import carton_tinydep; print(carton_tinydep.VALUE)")
    assert done.returncode == 0 and done.stdout.split() == ["1"], done.stderr
    assert envs.ensure_environment(lines, base_dir=base, root=tmp_path / "envs").created is False
    tiny_wheel(base / "wheels", 2)
    rebuilt = envs.ensure_environment(lines, base_dir=base, root=tmp_path / "envs")
    assert rebuilt.created and rebuilt.key != env.key
    assert run(rebuilt.python, "import carton_tinydep; print(carton_tinydep.VALUE)").stdout.split() == ["2"]
