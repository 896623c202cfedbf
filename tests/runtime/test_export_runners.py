"""The ``torch_export`` and ``aotinductor`` runners (spec 9.3, 9.4): pack, validate, load, infer
(compared with calling the program's module directly), self tests, the input checks AOTI lacks,
target refusal, string refusal, hostile packages.

The AOTI compile takes tens of seconds on 2 cores: one tiny model is compiled once per session
(``aoti_archive``; ``TORCHINDUCTOR_CACHE_DIR`` under a session tmp dir) and every AOTI test
(marked ``slow``; ``make test`` runs them) reuses that package, editing its metadata for the
wrong-target cases.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import numpy as np
import pytest

import carton_format as cf
import carton_runtime.sync as cs
from carton_runtime.errors import CartonRuntimeError

torch = pytest.importorskip("torch")

# one xdist worker runs the whole module (make test uses --dist loadgroup): the AOTI compile is paid once
pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning"), pytest.mark.xdist_group("aoti")]


class TwoIn(torch.nn.Module):
    """out = linear(x) + y, z = 2x: two inputs sharing the batch dimension, a dict out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x: Any, y: Any) -> dict[str, Any]:
        return {"out": self.lin(x) + y, "z": x * 2}


class Pair(torch.nn.Module):
    """A tuple out: (x + 1, x.sum(-1))."""

    def forward(self, x: Any) -> tuple[Any, Any]:
        return x + 1, x.sum(-1)


def _export(module: Any, batch: bool = True, max_batch: int | None = None, **example: Any) -> Any:
    example = example or {"x": torch.randn(2, 4), "y": torch.randn(2, 3)}
    dim = torch.export.Dim("batch") if max_batch is None else torch.export.Dim("batch", min=1, max=max_batch)
    dynamic = {k: {0: dim} for k in example} if batch else None
    return torch.export.export(module.eval(), (), example, dynamic_shapes=dynamic)


def _inputs(batch: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((batch, 4)).astype(np.float32), "y": rng.standard_normal((batch, 3)).astype(np.float32)}


def _direct(module: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = module(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def _close(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5)


def _code(fn: Callable[[], Any]) -> CartonRuntimeError:
    with pytest.raises(cf.CartonError) as info:
        fn()
    return info.value  # type: ignore[return-value]


# -- session fixtures ---------------------------------------------------------------------------


#: The session program's batch range: torch_export checks it; the AOTI package's compiled checks
#: (off, see below) would refuse batch 1 and MAX_BATCH although the package runs them correctly.
MAX_BATCH = 32


@pytest.fixture(scope="session")
def program() -> Any:
    return _export(TwoIn(), max_batch=MAX_BATCH)


@pytest.fixture(scope="session")
def export_archive(program: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "m.carton"
    expected = _direct(program.module(), _inputs(3))
    test = cf.SelfTest(_inputs(3), name="three", expected_out=expected)
    return Path(cs.pack(program, output_path=out, self_tests=[test]))


@pytest.fixture(scope="session")
def aoti_archive(program: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The one AOTI compile of the session."""
    cache = tmp_path_factory.mktemp("inductor-cache")
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    try:
        out = tmp_path_factory.mktemp("aoti") / "m.carton"
        expected = _direct(program.module(), _inputs(3))
        test = cf.SelfTest(_inputs(3), name="three", expected_out=expected)
        yield Path(cs.pack(program, "aotinductor", output_path=out, self_tests=[test]))
    finally:
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def aoti_package(aoti_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled package file itself (model/model.pt2 of the archive)."""
    path = tmp_path_factory.mktemp("aoti-package") / "model.pt2"
    with cf.read(aoti_archive) as archive, archive.open("model/model.pt2") as src:
        path.write_bytes(src.read())
    return path


def _edited(package: Path, target: Path, **meta: str) -> Path:
    """A copy of the package with its metadata JSON members changed (what another machine writes)."""
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(target, "w") as out:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("_metadata.json"):
                doc = json.loads(data)
                doc.update(meta)
                data = json.dumps(doc).encode()
            out.writestr(item, data)
    return target


SPECS = [cf.TensorSpec("x", "float32", ["batch", 4]), cf.TensorSpec("y", "float32", ["batch", 3])]


def _host_triple() -> str:
    import platform
    import sys

    from carton_runtime.runners.aotinductor import target_triple

    triple = target_triple(sys.platform, platform.machine())
    assert triple is not None
    return triple


# -- torch_export --------------------------------------------------------------------------------


@pytest.mark.spec("FMT-EXPORT-1", "FMT-EXPORT-3")
def test_export_packs_validates_and_records_derived_specs(export_archive: Path) -> None:
    assert cf.validate(export_archive).ok
    info = cs.get_model_info(export_archive)
    version = cs.load(export_archive).runner.framework_version
    major, minor = version.split(".")[:2]
    assert (info.runner.runner_name, info.runner.runner_compat_version) == ("torch_export", 1)
    assert info.runner.required_framework_version == f"={major}.{minor}"
    with cf.read(export_archive) as archive:
        assert "model/model.pt2" in archive.manifest
    # derived from the signature: one program symbol for the shared batch dimension
    (x, y) = info.inputs
    assert (x.name, x.dtype, y.name, y.dtype) == ("x", "float32", "y", "float32")
    assert isinstance(x.shape[0], str) and x.shape == [x.shape[0], 4] and y.shape == [x.shape[0], 3]
    assert {s.name: s.shape for s in info.outputs} == {"out": [x.shape[0], 3], "z": [x.shape[0], 4]}


@pytest.mark.spec("FMT-EXPORT-2")
def test_export_infers_like_the_module_at_any_batch(export_archive: Path, program: Any) -> None:
    module = program.module()
    with cs.load(export_archive) as model:
        for batch in (1, 3, 17):
            _close(model.infer(_inputs(batch, batch)), _direct(module, _inputs(batch, batch)))
        handle = model.seal(_inputs(5))
        _close(model.infer_with_handle(handle), _direct(module, _inputs(5)))
        results = model.run_self_tests()
        assert results and all(r.passed for r in results)


@pytest.mark.spec("FMT-EXPORT-2", "FMT-EXPORT-5")
def test_the_direct_forward_keeps_the_programs_range_guards(tmp_path: Path) -> None:
    """infer calls the unlifted module's forward (its hooks only re-check what the input check
    did), yet a Dim's min/max still refuses a batch outside it, as calling the module does."""
    from carton_runtime.runners.torch_export import direct_forward

    dim = torch.export.Dim("batch", min=2, max=8)
    ep = torch.export.export(Pair().eval(), (), {"x": torch.randn(3, 4)}, dynamic_shapes={"x": {0: dim}})
    module = ep.module()
    assert direct_forward(module, ep, ["x"]) is not None  # this torch: the fast path is taken
    assert direct_forward(module, ep, ["y"]) is None  # names unlike the program's: the plain call
    path = cs.pack(ep, output_path=tmp_path / "r.carton", inputs=[cf.TensorSpec("x", "float32", ["batch", 4])])
    with cs.load(path) as model:
        x = np.ones((4, 4), dtype=np.float32)
        np.testing.assert_array_equal(model.infer({"x": x})["output_0"], x + 1)
        refused = 0
        for batch in (1, 2, 8, 9, 12):  # torch checks max=8 at the call (and not min=2: it lets 1 through)
            ones = np.ones((batch, 4), dtype=np.float32)
            try:
                expected = module(x=torch.from_numpy(ones))[0].numpy()
            except Exception as direct:  # noqa: BLE001 - whatever the guard raises
                error = _code(lambda ones=ones: model.infer({"x": ones}))
                assert error.code == "E-RUNTIME-INFER" and type(direct).__name__ in str(error), str(error)
                refused += 1
            else:
                np.testing.assert_array_equal(model.infer({"x": ones})["output_0"], expected)
        assert refused == 2
        np.testing.assert_array_equal(model.infer({"x": x})["output_0"], x + 1)  # still usable


@pytest.mark.spec("FMT-EXPORT-2")
def test_tuple_outputs_take_the_declared_names(tmp_path: Path) -> None:
    ep = _export(Pair(), x=torch.randn(2, 4))
    outputs = [cf.TensorSpec("plus", "float32", ["batch", 4]), cf.TensorSpec("total", "float32", ["batch"])]
    path = cs.pack(ep, "torch_export", output_path=tmp_path / "p.carton",
                   inputs=[cf.TensorSpec("x", "float32", ["batch", 4])], outputs=outputs)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    with cs.load(path) as model:
        out = model.infer({"x": x})
    assert sorted(out) == ["plus", "total"]
    np.testing.assert_array_equal(out["plus"], x + 1)
    np.testing.assert_array_equal(out["total"], x.sum(-1))
    # without declared outputs: output_0, output_1
    derived = cs.get_model_info(cs.pack(ep, output_path=tmp_path / "q.carton"))
    assert [s.name for s in derived.outputs] == ["output_0", "output_1"]


@pytest.mark.spec("FMT-EXPORT-3")
def test_eager_module_is_exported_with_the_declared_symbols(tmp_path: Path) -> None:
    module = TwoIn().eval()
    path = cs.pack(module, "torch_export", output_path=tmp_path / "e.carton", inputs=SPECS)
    info = cs.get_model_info(path)
    assert [s.shape for s in info.inputs] == [["batch", 4], ["batch", 3]]
    # derived outputs take the declared symbol, not torch's name for it (s17)
    assert {s.name: s.shape for s in info.outputs} == {"out": ["batch", 3], "z": ["batch", 4]}
    with cs.load(path) as model:
        for batch in (1, 6):  # the symbol became a Dim: any batch runs
            _close(model.infer(_inputs(batch)), _direct(module, _inputs(batch)))
        error = _code(lambda: model.infer({"x": _inputs(4)["x"], "y": _inputs(5)["y"]}))
        assert error.code == "E-RUNTIME-INPUT" and "'batch'" in str(error)
    # an eager module without declared inputs cannot be exported faithfully
    assert _code(lambda: cs.pack(module, "torch_export", output_path=tmp_path / "n.carton")).code == "E-RUNTIME-ARG"


@pytest.mark.spec("FMT-EXPORT-3")
@pytest.mark.parametrize(
    ("specs", "match"),
    [
        ([cf.TensorSpec("x", "float32", [2, 4]), cf.TensorSpec("y", "float32", [2, 3])], "dynamic in the exported program"),
        ([cf.TensorSpec("x", "float64", ["b", 4]), cf.TensorSpec("y", "float32", ["b", 3])], "takes float32"),
        ([cf.TensorSpec("x", "float32", ["b", 5]), cf.TensorSpec("y", "float32", ["b", 3])], "fixed dimension 1 to 4"),
        ([cf.TensorSpec("x", "float32", ["b", 4]), cf.TensorSpec("y", "float32", ["c", 3])], "use one symbol"),
        ([cf.TensorSpec("x", "float32", ["b", 4])], "not the exported program's inputs"),
        ([cf.TensorSpec("x", "float32", ["b", 4, 1]), cf.TensorSpec("y", "float32", ["b", 3])], "3-d"),
        ([cf.TensorSpec("x", "float32", None), cf.TensorSpec("y", "float32", ["b", 3])], "needs every input's rank"),
    ],
    ids=["fixed-for-dynamic", "dtype", "fixed-size", "two-symbols", "names", "rank", "any-shape"],
)
def test_declared_specs_are_checked_against_the_program(program: Any, tmp_path: Path, specs: list[cf.TensorSpec], match: str) -> None:
    error = _code(lambda: cs.pack(program, "torch_export", output_path=tmp_path / "x.carton", inputs=specs))
    assert error.code == "E-RUNTIME-ARG" and match in str(error)
    assert not (tmp_path / "x.carton").exists()


@pytest.mark.spec("FMT-EXPORT-3")
def test_positional_programs_and_undeclarable_dtypes_are_refused(tmp_path: Path) -> None:
    positional = torch.export.export(Pair(), (torch.randn(2, 4),))
    error = _code(lambda: cs.pack(positional, output_path=tmp_path / "p.carton"))
    assert error.code == "E-RUNTIME-ARG" and "positional" in str(error)

    class Flag(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x > 0

    ep = torch.export.export(Flag(), (), {"x": torch.randn(3)})
    error = _code(lambda: cs.pack(ep, output_path=tmp_path / "b.carton"))
    assert error.code == "E-RUNTIME-ARG" and "bool" in str(error)


@pytest.mark.spec("FMT-EXPORT-4")
@pytest.mark.parametrize("runner", ["torch_export", "aotinductor"])
def test_string_specs_are_refused_at_pack(program: Any, tmp_path: Path, runner: str) -> None:
    inputs = [cf.TensorSpec("x", "string", ["b", 4]), cf.TensorSpec("y", "float32", ["b", 3])]
    error = _code(lambda: cs.pack(program, runner, output_path=tmp_path / "s.carton", inputs=inputs))
    assert error.code == "E-RUNTIME-ARG" and "string" in str(error) and error.name == "x"
    outputs = [cf.TensorSpec("out", "string", []), cf.TensorSpec("z", "float32", ["b", 4])]
    error = _code(lambda: cs.pack(program, runner, output_path=tmp_path / "s.carton", outputs=outputs))
    assert error.code == "E-RUNTIME-ARG" and error.name == "out"


BAD_INPUTS: list[tuple[str, Callable[[], dict[str, Any]], str]] = [
    ("wrong-name", lambda: {"x": _inputs(2)["x"], "q": _inputs(2)["y"]}, "no input 'q'"),
    ("missing", lambda: {"x": _inputs(2)["x"]}, "'y' is missing"),
    ("dtype", lambda: {"x": _inputs(2)["x"].astype(np.float64), "y": _inputs(2)["y"]}, "declared float32"),
    ("rank", lambda: {"x": _inputs(2)["x"][None], "y": _inputs(2)["y"]}, "must be 2-d"),
    ("fixed-dim", lambda: {"x": np.zeros((2, 5), np.float32), "y": _inputs(2)["y"]}, "dimension 1 must be 4"),
    ("batch-mismatch", lambda: {"x": _inputs(3)["x"], "y": _inputs(2)["y"]}, "but input 'x' has"),
    ("torch-tensor", lambda: {"x": torch.zeros(2, 4), "y": _inputs(2)["y"]}, "takes numpy arrays"),
]


@pytest.mark.spec("FMT-EXPORT-5")
@pytest.mark.parametrize("kind", ["torch_export", pytest.param("aotinductor", marks=pytest.mark.slow)])
@pytest.mark.parametrize(("case", "make", "match"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_are_refused_before_the_call(
    request: pytest.FixtureRequest, kind: str, case: str, make: Callable[[], dict[str, Any]], match: str
) -> None:
    archive = request.getfixturevalue("export_archive" if kind == "torch_export" else "aoti_archive")
    with cs.load(archive) as model:
        error = _code(lambda: model.infer(make()))
        assert error.code == "E-RUNTIME-INPUT" and match in str(error), str(error)
        error = _code(lambda: model.seal(make()))
        assert error.code == "E-RUNTIME-INPUT"
        _close(model.infer(_inputs(2)), model.infer(_inputs(2)))  # still usable


@pytest.mark.spec("FMT-EXPORT-5")
@pytest.mark.parametrize("runner", ["torch_export", "aotinductor"])
def test_an_archive_without_input_specs_is_refused_at_load(tmp_path: Path, export_archive: Path, runner: str) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with cf.read(export_archive) as archive, archive.open("model/model.pt2") as src:
        (model_dir / "model.pt2").write_bytes(src.read())
    target = tmp_path / "nospecs.carton"
    cf.write(target, cf.CartonInfo(runner=cf.RunnerInfo(runner, "*", 1)), model_dir=model_dir)
    for isolation in ("inprocess", "process"):  # out of process too: refused before a worker starts
        error = _code(lambda isolation=isolation: cs.load(target, isolation=isolation))
        assert error.code == "E-RUNTIME-RUNNER" and "declare its inputs" in str(error), (isolation, str(error))


def _archive_with(tmp_path: Path, runner: str, data: bytes, name: str = "bad.carton") -> Path:
    model_dir = tmp_path / f"model-{name}"
    model_dir.mkdir()
    (model_dir / "model.pt2").write_bytes(data)
    target = tmp_path / name
    cf.write(target, cf.CartonInfo(runner=cf.RunnerInfo(runner, "*", 1), inputs=SPECS), model_dir=model_dir)
    return target


@pytest.mark.slow  # uses the session's AOTI compile
@pytest.mark.spec("FMT-EXPORT-6", "FMT-AOTI-1")
def test_hostile_or_truncated_programs_are_coded_errors(tmp_path: Path, export_archive: Path, aoti_package: Path) -> None:
    with cf.read(export_archive) as archive, archive.open("model/model.pt2") as src:
        real = src.read()
    garbage_so = tmp_path / "garbage.pt2"
    with zipfile.ZipFile(aoti_package) as src_zip, zipfile.ZipFile(garbage_so, "w") as out:
        for item in src_zip.infolist():
            out.writestr(item, b"\x7fELF not really" if item.filename.endswith(".so") else src_zip.read(item))
    no_meta = tmp_path / "nometa.pt2"
    with zipfile.ZipFile(aoti_package) as src_zip, zipfile.ZipFile(no_meta, "w") as out:
        for item in src_zip.infolist():
            out.writestr(item, b"{not json" if item.filename.endswith("_metadata.json") else src_zip.read(item))
    newer = tmp_path / "newer.pt2"
    with zipfile.ZipFile(aoti_package) as src_zip, zipfile.ZipFile(newer, "w") as out:
        for item in src_zip.infolist():
            out.writestr(item, b"9" if item.filename.endswith("/archive_version") else src_zip.read(item))
    cases = {
        ("torch_export", "truncated"): real[: len(real) // 2],
        ("torch_export", "empty"): b"",
        ("torch_export", "not-a-zip"): b"\x80\x04 pickle? no",
        ("aotinductor", "truncated"): aoti_package.read_bytes()[: aoti_package.stat().st_size // 2],
        ("aotinductor", "an-export-file"): real,
        ("aotinductor", "garbage-library"): garbage_so.read_bytes(),
        ("aotinductor", "bad-metadata"): no_meta.read_bytes(),
        ("aotinductor", "newer-archive-version"): newer.read_bytes(),  # aoti_load_package refuses it: so do we
    }
    for (runner, name), data in cases.items():
        archive = _archive_with(tmp_path, runner, data, f"{runner}-{name}.carton")
        error = _code(lambda: cs.load(archive))  # noqa: B023 - called at once
        assert error.code == "E-RUNTIME-RUNNER", (runner, name, str(error))
        if name == "newer-archive-version":
            assert "archive version is '9'" in str(error), str(error)


# -- aotinductor ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-1", "FMT-AOTI-2", "FMT-EXPORT-2")
def test_aoti_packs_validates_infers_and_records_its_target(aoti_archive: Path, program: Any) -> None:
    assert cf.validate(aoti_archive).ok
    info = cs.get_model_info(aoti_archive)
    assert (info.runner.runner_name, info.runner.runner_compat_version) == ("aotinductor", 1)
    version = str(torch.__version__).split("+")[0]
    assert info.runner.required_framework_version == f"={version}"
    assert info.required_platforms == [_host_triple()]
    assert [s.name for s in info.inputs] == ["x", "y"] and info.inputs[0].shape[0] == info.inputs[1].shape[0]
    module = program.module()
    with cs.load(aoti_archive) as model:
        for batch in (1, 3, MAX_BATCH):  # the Dim carried into the compile: any batch in its range, its ends too
            _close(model.infer(_inputs(batch, batch)), _direct(module, _inputs(batch, batch)))
        handle = model.seal(_inputs(4))
        _close(model.infer_with_handle(handle), _direct(module, _inputs(4)))
        transposed = {"x": np.ascontiguousarray(_inputs(4)["x"].T).T, "y": _inputs(4)["y"]}  # not C-contiguous
        _close(model.infer(transposed), _direct(module, transposed))
        results = model.run_self_tests()
        assert results and all(r.passed for r in results)


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-1")
def test_a_package_file_packs_with_declared_inputs(aoti_package: Path, program: Any, tmp_path: Path) -> None:
    error = _code(lambda: cs.pack(aoti_package, output_path=tmp_path / "n.carton"))
    assert error.code == "E-RUNTIME-ARG" and "declared inputs" in str(error)
    path = cs.pack(aoti_package, output_path=tmp_path / "p.carton", inputs=SPECS)  # runner picked from the file
    info = cs.get_model_info(path)
    assert info.runner.runner_name == "aotinductor" and info.required_platforms == [_host_triple()]
    with cs.load(path) as model:
        out = model.infer(_inputs(2))
    _close(out, _direct(program.module(), _inputs(2)))
    error = _code(lambda: cs.pack(aoti_package, output_path=tmp_path / "w.carton", inputs=SPECS, required_platforms=["aarch64-apple-darwin"]))
    assert error.code == "E-RUNTIME-ARG" and error.name == "required_platforms"


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-3", "FMT-EXPORT-6")
def test_the_ends_of_the_programs_range_run_and_torch_export_refuses_beyond(aoti_archive: Path, export_archive: Path) -> None:
    """The declared specs cannot say a Dim's range.  torch_export's guard refuses a batch beyond
    it; AOTI enforces none (the checks torch can compile in would refuse batch 1 and MAX_BATCH,
    which the package runs as the program does: they stay off)."""
    module = _export(TwoIn(), max_batch=MAX_BATCH).module()
    for archive in (aoti_archive, export_archive):
        with cs.load(archive) as model:
            for batch in (1, MAX_BATCH):
                _close(model.infer(_inputs(batch)), _direct(module, _inputs(batch)))
    with cs.load(export_archive) as model:
        error = _code(lambda: model.infer(_inputs(MAX_BATCH + 1)))
        assert error.code == "E-RUNTIME-INFER" and str(MAX_BATCH) in str(error), str(error)
        assert model.infer(_inputs(1))["out"].shape == (1, 3)  # still usable


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-1")
@pytest.mark.parametrize(
    ("specs", "match"),
    [
        ([cf.TensorSpec("x", "int64", ["batch", 4]), SPECS[1]], "'x' is declared int64"),
        ([cf.TensorSpec("x", "float32", ["batch", 4, 1]), SPECS[1]], "rank"),
        ([cf.TensorSpec("x", "float32", ["batch", 5]), SPECS[1]], "dimension 1 is 4 in the package, declared 5"),
        ([cf.TensorSpec("x", "float32", ["batch"]), SPECS[1]], "'x' is declared 1-d"),
        ([SPECS[0], cf.TensorSpec("z", "float32", ["batch", 3])], "the declared inputs are ['x', 'z']"),
    ],
    ids=["dtype", "rank", "fixed-size", "lower-rank", "names"],
)
def test_a_package_file_that_does_not_fit_its_declared_specs_is_refused(
    aoti_package: Path, tmp_path: Path, specs: list[cf.TensorSpec], match: str
) -> None:
    """Packed as declared, each of these would validate and then read past its buffers on every call."""
    error = _code(lambda: cs.pack(aoti_package, "aotinductor", output_path=tmp_path / "bad.carton", inputs=specs))
    assert error.code == "E-RUNTIME-ARG" and match in str(error), str(error)
    assert not (tmp_path / "bad.carton").exists()
    outputs = [cf.TensorSpec("out", "int64", ["batch", 3]), cf.TensorSpec("z", "float32", ["batch", 4])]
    error = _code(lambda: cs.pack(aoti_package, "aotinductor", output_path=tmp_path / "o.carton", inputs=SPECS, outputs=outputs))
    assert error.code == "E-RUNTIME-ARG" and "'out' is declared int64, the package returns float32" in str(error), str(error)


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-1")
def test_a_package_file_packs_with_fixed_sizes_at_both_ends_of_its_range(aoti_package: Path, program: Any, tmp_path: Path) -> None:
    """Fixed sizes at the ends of the program's range pack (through the probe) and infer; where a
    package's compiled ranges are narrower the probe moves them into range instead of refusing
    (tested on the checks' messages: test_the_probe_moves_sizes_into_the_checked_range...)."""
    for batch in (1, MAX_BATCH):
        specs = [cf.TensorSpec("x", "float32", [batch, 4]), cf.TensorSpec("y", "float32", [batch, 3])]
        path = cs.pack(aoti_package, "aotinductor", output_path=tmp_path / f"b{batch}.carton", inputs=specs)
        with cs.load(path) as model:
            _close(model.infer(_inputs(batch)), _direct(program.module(), _inputs(batch)))


@pytest.mark.spec("FMT-AOTI-1")
def test_the_probe_moves_sizes_into_the_checked_range_and_names_real_mismatches() -> None:
    """What the package's compiled checks say (their messages, as torch 2.13 words them) turned
    into a retry with a size moved into range, or a coded refusal: the range path runs only on
    packages whose compiled ranges are narrow, which the session package's are not."""
    from carton_runtime.runners._aoti_probe import _example_shapes, _explain

    specs = [cf.TensorSpec("x", "float32", ["batch", 3, 8, 8]), cf.TensorSpec("m", "float32", ["batch", 1])]
    by_name, order, sizes = {s.name: s for s in specs}, ["x", "m"], {}
    small = "input_handles[0]: dim value is too small at 0, expected it to be >= 3, but got: 2"
    assert _explain(small, order, by_name, sizes) is None  # retry, the symbol moved for every input using it
    assert _example_shapes(specs, sizes) == {"x": [3, 3, 8, 8], "m": [3, 1]}
    error = _explain(small, order, by_name, sizes)  # moved there and still refused
    assert error is not None and "fits no size" in str(error)
    fixed = [cf.TensorSpec("x", "float32", [16, 3, 8, 8]), specs[1]]
    sizes = {}
    large = "input_handles[0]: dim value is too large at 0, expected to be <= 15, but got: 16"
    assert _explain(large, order, {s.name: s for s in fixed}, sizes) is None  # a fixed size: only that dimension moves
    assert _example_shapes(fixed, sizes) == {"x": [15, 3, 8, 8], "m": [2, 1]}
    lower = {"x": cf.TensorSpec("x", "float32", ["batch", 3, 8]), "m": specs[1]}
    error = _explain("input_handles[0]: unmatched dim value at 3, expected: 8, but got: 0", order, lower, {})
    assert error is not None and error.code == "E-RUNTIME-ARG" and "declared 3-d" in str(error)
    error = _explain("input_handles[1]: unmatched dim value at 1, expected: 4, but got: 1", order, by_name, {})
    assert error is not None and "dimension 1 is 4 in the package, declared 1" in str(error)


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-1")
def test_a_saved_program_file_is_compiled_for_the_aotinductor_runner(export_archive: Path, program: Any, tmp_path: Path) -> None:
    """``carton pack prog.pt2 --runner aotinductor`` (a torch.export.save file): compiled at pack."""
    saved = tmp_path / "prog.pt2"
    with cf.read(export_archive) as archive, archive.open("model/model.pt2") as src:
        saved.write_bytes(src.read())
    path = cs.pack(saved, "aotinductor", output_path=tmp_path / "c.carton", inputs=SPECS)
    assert cs.get_model_info(path).runner.runner_name == "aotinductor"
    with cs.load(path) as model:
        _close(model.infer(_inputs(3)), _direct(program.module(), _inputs(3)))


def _lacking_isa() -> str | None:
    for word, check in (("AMX_TILE", "_is_amx_tile_supported"), ("AVX512_BF16", "_is_avx512_bf16_supported"), ("AVX512", "_is_avx512_supported")):
        fn = getattr(torch.cpu, check, None)
        if callable(fn) and not fn():
            return word
    return None


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-3", "FMT-AOTI-2")
@pytest.mark.parametrize(
    ("meta", "triple", "match"),
    [
        ({"AOTI_MACHINE": "riscv64"}, "riscv64gc-unknown-linux-gnu", "built for linux/riscv64"),
        ({"AOTI_PLATFORM": "darwin", "AOTI_MACHINE": "arm64"}, "aarch64-apple-darwin", "built for darwin/arm64"),
        ({"AOTI_DEVICE_KEY": "cuda"}, None, "built for device 'cuda'"),
        ({"AOTI_CPU_ISA": "ISA"}, None, "this CPU lacks"),
    ],
    ids=["machine", "platform", "device", "cpu-isa"],
)
def test_a_package_for_another_target_is_refused(
    aoti_package: Path, tmp_path: Path, meta: dict[str, str], triple: str | None, match: str
) -> None:
    if meta.get("AOTI_CPU_ISA") == "ISA":
        lacking = _lacking_isa()
        if lacking is None:
            pytest.skip("this CPU has every instruction set extension torch can check")
        meta = {"AOTI_CPU_ISA": lacking}
    if sys_platform() != "linux" and "AOTI_PLATFORM" not in meta:
        pytest.skip("the crafted packages name linux")
    package = _edited(aoti_package, tmp_path / "other.pt2", **meta)
    path = cs.pack(package, "aotinductor", output_path=tmp_path / "o.carton", inputs=SPECS)
    assert cs.get_model_info(path).required_platforms == [triple or _host_triple()]
    assert cf.validate(path).ok
    error = _code(lambda: cs.load(path, visible_device="cpu") if "AOTI_DEVICE_KEY" in meta else cs.load(path))
    assert error.code == "E-RUNTIME-TARGET" and match in str(error), str(error)


def sys_platform() -> str:
    import sys

    return sys.platform


# -- runner choice ------------------------------------------------------------------------------


def test_pack_picks_the_runner_from_the_model_object(program: Any, tmp_path: Path) -> None:
    class Double(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"y": inputs["x"] * 2}

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(Double())
    assert cs.get_model_info(cs.pack(scripted, output_path=tmp_path / "s.carton")).runner.runner_name == "torchscript"
    assert cs.get_model_info(cs.pack(program, output_path=tmp_path / "e.carton")).runner.runner_name == "torch_export"
    saved = tmp_path / "prog.pt2"
    torch.export.save(program, str(saved))
    assert cs.get_model_info(cs.pack(saved, output_path=tmp_path / "f.carton")).runner.runner_name == "torch_export"
    error = _code(lambda: cs.pack(object(), output_path=tmp_path / "o.carton"))
    assert error.code == "E-RUNTIME-ARG" and "runner_name" in str(error)
    unpacked = cs.load_unpacked(program)
    try:
        _close(unpacked.infer(_inputs(2)), _direct(program.module(), _inputs(2)))
        assert unpacked.info.inputs is not None and unpacked.info.runner.runner_name == "torch_export"
    finally:
        unpacked.close()


# -- conformance: adapters declare the runners they support -------------------------------------


def test_conformance_cases_for_an_undeclared_runner_are_skipped_as_unsupported() -> None:
    from types import SimpleNamespace

    from carton_conformance import harness
    from carton_conformance.adapters.builtin import Builtin

    cases = {c.id: c for c in harness.load_cases() if c.kind == "infer"}
    export_case, ts_case = cases["infer/torch_export/affine-batch-1"], cases["infer/torchscript/double-float32"]
    assert export_case.doc["runner"] == "torch_export" and ts_case.doc["runner"] == "torchscript"
    torchscript_only = SimpleNamespace(kinds={"infer"}, features=set(), runners={"torchscript"})
    reason = harness.skip_reason(export_case, torchscript_only)
    assert reason is not None and reason.startswith("unsupported runner") and "torch_export" in reason
    assert harness.skip_reason(ts_case, torchscript_only) is None
    declared = set(Builtin().capabilities()["runners"])
    assert {"torchscript", "torch_export", "aotinductor"} <= declared
    assert harness.skip_reason(export_case, SimpleNamespace(kinds={"infer"}, features=set(), runners=declared)) is None


@pytest.mark.slow
@pytest.mark.spec("FMT-AOTI-1", "FMT-EXPORT-1")
def test_cli_packs_pt2_files_picking_the_runner(aoti_package: Path, program: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carton_format.cli import main as carton_main

    specs = ["--input", "x:float32:batch,4", "--input", "y:float32:batch,3"]
    out = tmp_path / "a.carton"
    assert carton_main(["pack", str(aoti_package), "-o", str(out), *specs]) == 0
    info = cs.get_model_info(out)
    assert info.runner.runner_name == "aotinductor" and info.runner.required_framework_version.count(".") == 2
    assert info.required_platforms == [_host_triple()]
    saved = tmp_path / "prog.pt2"
    torch.export.save(program, str(saved))
    out = tmp_path / "e.carton"
    assert carton_main(["pack", str(saved), "-o", str(out)]) == 0  # specs derived from the program
    assert cs.get_model_info(out).runner.runner_name == "torch_export"
    capsys.readouterr()
    assert carton_main(["pack", str(aoti_package), "-o", str(tmp_path / "n.carton")]) != 0  # AOTI needs declared inputs
    assert "E-RUNTIME-ARG" in capsys.readouterr().err


def test_the_pt2_name_is_made_once_and_names_what_the_path_holds(tmp_path: Path) -> None:
    from carton_runtime.runners._export_common import pt2_path

    cached = tmp_path / "0123abcd"  # a cache file: no suffix
    cached.write_bytes(b"first")
    with pt2_path(cached) as first:
        assert first.suffix == ".pt2" and first.read_bytes() == b"first"
    fresh = tmp_path / "fresh"
    fresh.write_bytes(b"second")
    os.replace(fresh, cached)  # the same path, another file
    with pt2_path(cached) as again:
        assert again == first and again.read_bytes() == b"second"  # reused, resolved at each open
    named = tmp_path / "model.pt2"
    named.write_bytes(b"x")
    with pt2_path(named) as same:
        assert same == named


def test_package_metadata_is_read_again_when_the_file_changes(aoti_package: Path, tmp_path: Path) -> None:
    from carton_runtime.runners.aotinductor import cached_package_metadata, package_metadata

    path = tmp_path / "cached-package"
    path.write_bytes(aoti_package.read_bytes())
    assert cached_package_metadata(path, "p") == package_metadata(path, "p")
    edited = _edited(aoti_package, tmp_path / "edited.pt2", AOTI_PLATFORM="some_other_os")
    os.replace(edited, path)
    assert cached_package_metadata(path, "p")["AOTI_PLATFORM"] == "some_other_os"
