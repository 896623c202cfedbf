"""The Python examples of the original's docs (docs/website/pages/**/*.mdx), run as written.

Each block is a file under ``docs/`` with only the import changed (``cartonml`` ->
``carton_runtime``); fragments are completed there (marked ``completion``).  :func:`run_doc`
runs one with ``__name__ == "__main__"`` after replacing the placeholders the docs leave to the
reader (``/path/to/...``, the carton.pub host): every replacement must match, and every one is
listed in tests/compat/README.md.  The checks compare with what the docs say the code prints.
"""

from __future__ import annotations

import asyncio
import logging
import runpy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime import CartonError

from . import standins

DOCS = Path(__file__).resolve().parent / "docs"
#: ``=MAJOR.MINOR`` of this interpreter: what a python model packed here can run with
HOST_PYTHON = f"={sys.version_info.major}.{sys.version_info.minor}"


def run_doc(name: str, tmp_path: Path, replace: dict[str, str]) -> dict[str, Any]:
    """Run ``docs/<name>.py`` with ``replace`` applied (each key must occur); its globals."""
    text = (DOCS / f"{name}.py").read_text("utf-8")
    for old, new in replace.items():
        assert old in text, f"{name}.py has no {old!r} to replace"
        text = text.replace(old, new)
    script = tmp_path / f"{name}.py"
    script.write_text(text, "utf-8")
    return runpy.run_path(str(script), run_name="__main__")


def on_pub(carton_pub: str) -> dict[str, str]:
    """The docs' carton.pub URLs on the loopback registry (CARTON_PUB_HOST)."""
    return {"https://carton.pub/": f"{carton_pub}/"}


# -- quickstart.mdx / docs/loading.mdx ------------------------------------------------------------


@pytest.mark.parametrize("name", ["quickstart_load", "loading_load"])
def test_load_and_infer_bert(name: str, tmp_path: Path, carton_pub: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_doc(name, tmp_path, on_pub(carton_pub))
    printed = capsys.readouterr().out
    # the docs print {'scores': array([[12.977381]]), 'tokens': array([['day']], dtype='<U3')};
    # the stand-in's tokens are 1-d (the torchscript runner returns List[str] as a 1-d tensor)
    assert "'scores': array([[12.977381]]" in printed
    assert "'tokens': array(['day'], dtype='<U3')" in printed


def test_quickstart_pack(tmp_path: Path) -> None:
    model = str(standins.doubler_model())
    run_doc("quickstart_pack", tmp_path, {'"/path/to/model.pt"': repr(model)})
    # the snippet keeps the path to itself: pack again and load what it gives
    path = carton_sync.pack(model, runner_name="torchscript", required_framework_version="=2.0")
    with carton_sync.load(path, override_required_framework_version="*") as loaded:
        np.testing.assert_equal(loaded.infer({"x": np.ones(2, np.float32)})["out"], np.full(2, 2, np.float32))


def test_quickstart_load_unpacked(tmp_path: Path) -> None:
    model = str(standins.doubler_model())
    namespace = run_doc(
        "quickstart_load_unpacked",
        tmp_path,
        {'"/path/to/model.pt"': repr(model), 'required_framework_version="=2.0"': f"required_framework_version={standins.torch_requirement()!r}"},
    )
    assert callable(namespace["main"])


def test_quickstart_load_unpacked_as_written_needs_torch_2_0(tmp_path: Path) -> None:
    """Unchanged, the block asks for torch 2.0.x: with another torch installed, a coded error
    that says how to run it anyway (the original would not find a runner either)."""
    if standins.torch_requirement() == "=2.0":
        pytest.skip("torch 2.0 is installed")
    with pytest.raises(CartonError) as err:
        run_doc("quickstart_load_unpacked", tmp_path, {'"/path/to/model.pt"': repr(str(standins.doubler_model()))})
    assert err.value.code == "E-RUNTIME-NO-RUNNER"
    assert "override_required_framework_version" in str(err.value)


def test_quickstart_info(tmp_path: Path, carton_pub: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_doc("quickstart_info", tmp_path, on_pub(carton_pub))
    assert capsys.readouterr().out.splitlines() == ["Test Model", "A short description that should be less than or equal to 100 characters."]


def test_quickstart_logging(tmp_path: Path) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        root.setLevel(logging.WARNING)
        run_doc("quickstart_logging", tmp_path, {})
        assert root.level == logging.INFO
    finally:
        root.setLevel(level)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)


def test_loading_options(tmp_path: Path) -> None:
    packed = carton_sync.pack(standins.doubler_model(), "torchscript", standins.torch_requirement(), output_path=tmp_path / "doubler.carton")
    namespace = run_doc("loading_options", tmp_path, {'"/path/to/packed.carton"': repr(str(packed))})
    # visible_device "0" without a GPU: a warning and the CPU, as the docs say
    model = namespace["visible_device_model"]
    import torch

    if not torch.cuda.is_available():
        assert str(model.device).lower().startswith("cpu")
    opts_model = namespace["runner_opts_model"]
    assert opts_model.info.runner.opts == {"num_interop_threads": 4, "num_threads": 1}
    out = carton_sync_infer(opts_model, np.arange(3, dtype=np.float32))
    np.testing.assert_equal(out, np.arange(3, dtype=np.float32) * 2)


def carton_sync_infer(model: Any, x: np.ndarray) -> np.ndarray:
    return model.sync.infer({"x": x})["out"]


def test_loading_override_required_framework_version(tmp_path: Path) -> None:
    """The fragment forces Python 3.10 on a python model; with this interpreter's version it loads."""
    python_model = standins.basic_example_archive()  # a python-runner model
    run_doc(
        "loading_override_version",
        tmp_path,
        {
            '"/path/to/packed_python_model.carton"': repr(str(python_model)),
            'override_required_framework_version = "=3.10"': f"override_required_framework_version = {HOST_PYTHON!r}",
        },
    )


def test_loading_override_required_framework_version_as_written_needs_python_3_10(tmp_path: Path) -> None:
    """Unchanged, the fragment asks for Python 3.10.x: with another Python running, a coded error
    naming the requirement (the original would fetch a 3.10 runner; none is fetched here)."""
    if HOST_PYTHON == "=3.10":
        pytest.skip("this is Python 3.10")
    with pytest.raises(CartonError) as err:
        run_doc("loading_override_version", tmp_path, {'"/path/to/packed_python_model.carton"': repr(str(standins.basic_example_archive()))})
    assert err.value.code == "E-RUNTIME-NO-RUNNER" and "'=3.10'" in err.value.message


# -- docs/metadata.mdx --------------------------------------------------------------------------


def test_metadata(tmp_path: Path, carton_pub: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_doc("metadata_all", tmp_path, on_pub(carton_pub))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Test Model", "A short description that should be less than or equal to 100 characters."]
    info = namespace["fetched_info"]
    assert info.model_description == standins.MODEL_DESCRIPTION
    assert info.license is None and info.repository is None and info.homepage is None
    assert [s.name for s in info.inputs] == list("abcdefg")
    assert [s.name for s in info.outputs] == ["y"]
    assert isinstance(info.self_tests[0], carton.SelfTest) and isinstance(info.examples[0], carton.Example)
    assert "model_architecture.png" in info.misc_files  # (example misc values are stored as misc files too)


def test_metadata_commented_calls(carton_pub: str) -> None:
    """The calls the page shows in comments, on the same archive (its self test input is "a"
    and its example's image input "f", not the page's placeholder names "f" / "x" / "some_misc_input")."""

    async def main() -> None:
        info = await carton.get_model_info(f"{carton_pub}/cartonml/basic_example")
        np.testing.assert_equal(await info.self_tests[0].inputs["a"].get(), np.ones(5, dtype=np.float32))
        assert await info.examples[0].inputs["f"].read() == standins.PEDESTRIAN_PNG
        np.testing.assert_equal(await info.examples[0].sample_out["y"].get(), np.array(5))
        assert await info.misc_files["model_architecture.png"].read() == standins.ARCHITECTURE_PNG

    asyncio.run(main())


# -- docs/packing/*.mdx ---------------------------------------------------------------------------


def test_packing_options(tmp_path: Path, files: dict[str, Path]) -> None:
    namespace = run_doc(
        "packing_options",
        tmp_path,
        {
            '"/path/to/doubler.pt"': repr(str(standins.doubler_model())),
            "'/path/to/input.png'": repr(str(files["input.png"])),
            "'/path/to/model_architecture.png'": repr(str(files["model_architecture.png"])),
        },
    )
    packed = namespace["packed"]

    def info(option: str) -> Any:
        return carton_sync.get_model_info(packed[option])

    assert info("model_name").model_name == "super_awesome_test_model"
    assert info("short_description").short_description == "A short description that should be less than or equal to 100 characters."
    assert info("model_description").model_description.startswith("\nSome description of the model")
    assert info("license").license == "Apache-2.0"
    assert info("repository").repository == "https://github.com/VivekPanyam/carton"
    assert info("homepage").homepage == "https://carton.run"
    assert info("required_platforms").required_platforms == []
    assert info("inputs").inputs == [carton.TensorSpec("x", "float32", None, "The input image as a NCHW tensor")]
    assert info("outputs").outputs == []
    test = info("self_tests").self_tests[0]
    assert (test.name, test.description) == ("a_self_test", "A self test")
    np.testing.assert_equal(test.expected_out["out"].load(), np.full(5, 2, np.float32))
    example = info("examples").examples[0]
    assert example.inputs["x"].read() == standins.PEDESTRIAN_PNG
    np.testing.assert_equal(example.sample_out["out"].load(), np.array(5))
    misc = info("misc_files")
    assert misc.misc_files["model_architecture.png"].read() == standins.ARCHITECTURE_PNG
    assert "@misc/model_architecture.png" in misc.model_description


def test_packing_torchscript(tmp_path: Path) -> None:
    model_path = tmp_path / "my_model.pt"
    run_doc("torchscript_model", tmp_path, {'"/path/to/my/model.pt"': repr(str(model_path))})
    namespace = run_doc("torchscript_pack", tmp_path, {'"/path/to/my/model.pt"': repr(str(model_path))})
    # "The model at packed_model_path can now be loaded": with the installed torch (not 2.0.x)
    with carton_sync.load(namespace["packed"], override_required_framework_version="*") as model:
        out = model.infer({"a": np.array([1.5, -2.0], np.float32), "b": np.array("x"), "c": np.array(["y", "z"])})
    np.testing.assert_equal(out["doubled"], np.array([3.0, -4.0], np.float32))
    assert out["string"] == "A string" and list(out["stringlist"]) == ["A", "list", "of", "strings"]


def _code_dir(tmp_path: Path) -> Path:
    code_dir = tmp_path / "code_dir"
    code_dir.mkdir()
    (code_dir / "carton_entrypoint.py").write_bytes((DOCS / "python_entrypoint.py").read_bytes())
    (code_dir / "requirements.txt").write_text("numpy\n")
    return code_dir


def test_packing_python(tmp_path: Path) -> None:
    """Pack the docs' code directory (for this interpreter's Python instead of 3.10), then "The
    model at packed_model_path can now be loaded": it doubles ``x``."""
    namespace = run_doc(
        "python_pack",
        tmp_path,
        {'"/path/to/code_dir"': repr(str(_code_dir(tmp_path))), 'required_framework_version="=3.10"': f"required_framework_version={HOST_PYTHON!r}"},
    )
    info = carton_sync.get_model_info(namespace["packed"])
    assert (info.runner.runner_name, info.runner.required_framework_version, info.runner.runner_compat_version) == ("python", HOST_PYTHON, 1)

    async def main() -> None:
        model = await carton.load(namespace["packed"])
        out = await model.infer({"x": np.arange(3, dtype=np.float32)})
        np.testing.assert_equal(out["out"], np.arange(3, dtype=np.float32) * 2)

    asyncio.run(main())


def test_packing_python_as_written_needs_python_3_10(tmp_path: Path) -> None:
    """Unchanged, the page packs for Python 3.10: packing works (it warns), loading here needs
    Python 3.10 and says how to try this one."""
    if HOST_PYTHON == "=3.10":
        pytest.skip("this is Python 3.10")
    with pytest.warns(RuntimeWarning, match="=3.10"):
        namespace = run_doc("python_pack", tmp_path, {'"/path/to/code_dir"': repr(str(_code_dir(tmp_path)))})
    assert carton_sync.get_model_info(namespace["packed"]).runner.required_framework_version == "=3.10"
    with pytest.raises(CartonError) as err:
        carton_sync.load(namespace["packed"])
    assert err.value.code == "E-RUNTIME-NO-RUNNER" and "override_required_framework_version" in err.value.message
