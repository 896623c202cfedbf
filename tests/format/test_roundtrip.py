"""write -> read identity, determinism and deep verification (FMT-WRITE, FMT-READ, FMT-TENSOR).

Property tests generate arbitrary infos: every dtype, string tensors of any rank, 0-size
dimensions, scalars, nested tensors, unicode everywhere, examples mixing tensors and misc bytes.
"""

from __future__ import annotations

import hashlib
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import carton_format as cf
from carton_format.dtypes import DTYPES, NUMERIC_DTYPES, carton_dtype_of
from carton_format.lazy import LazyMiscFile, LazyTensor
from carton_format.version_req import VersionReq

from ..helpers.cartoncraft import members_of, sample_info, write_info, write_sample

# Unicode without surrogates (not encodable) and without NUL (numpy str arrays drop trailing NULs).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
SAFE_NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="/\\:*?\"<>|"), min_size=1, max_size=10
).filter(lambda s: s not in (".", "..") and not s.endswith((" ", ".")) and len(s.encode()) < 60)
NUMERIC = st.sampled_from(sorted(NUMERIC_DTYPES))
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


@st.composite
def numeric_arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = NUMERIC_DTYPES[draw(NUMERIC)]
    return draw(hnp.arrays(dtype, SHAPES))


@st.composite
def string_arrays(draw: st.DrawFn) -> np.ndarray:
    shape = draw(SHAPES)
    items = draw(st.lists(TEXT, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    if not items:
        return np.empty(shape, dtype="<U1")
    return np.array(items, dtype=str).reshape(shape)


TENSORS = st.one_of(numeric_arrays(), string_arrays())
TENSOR_VALUES = st.one_of(TENSORS, st.lists(TENSORS, max_size=3))  # a list = nested tensor
DIMS = st.one_of(st.none(), st.integers(0, 2**63 - 1), TEXT.filter(lambda s: s != "*"))  # writers stay within i64 (FMT-TOML-3)
SPEC_SHAPES = st.one_of(st.none(), TEXT.filter(lambda s: s != "*"), st.lists(DIMS, max_size=4))
OPTS = st.dictionaries(
    TEXT,
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), TEXT, st.booleans()),
    max_size=4,
)
REQS = st.sampled_from(["=2.13", ">=2.0.0", "2.0", "*", "~1.2.3", "^0.3", ">=1.0, <2.0", "=2.13.0"])
PLATFORMS = st.lists(
    st.sampled_from(["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "x86_64-apple-darwin", "aarch64-apple-darwin"]),
    max_size=4,
)


@st.composite
def infos(draw: st.DrawFn) -> cf.CartonInfo:
    specs = st.lists(st.builds(cf.TensorSpec, TEXT, st.sampled_from(DTYPES), SPEC_SHAPES, st.none() | TEXT, st.none() | TEXT), max_size=3)
    tensor_maps = st.dictionaries(TEXT, TENSOR_VALUES, max_size=3)
    example_maps = st.dictionaries(TEXT, st.one_of(TENSOR_VALUES, st.binary(max_size=40)), max_size=3)
    return cf.CartonInfo(
        runner=cf.RunnerInfo(draw(TEXT), draw(REQS), draw(st.integers(0, 2**63 - 1)), draw(st.none() | OPTS)),
        model_name=draw(st.none() | TEXT),
        short_description=draw(st.none() | TEXT),
        model_description=draw(st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)),
        license=draw(st.none() | TEXT),
        repository=draw(st.none() | TEXT),
        homepage=draw(st.none() | TEXT),
        required_platforms=draw(st.none() | PLATFORMS),
        inputs=draw(st.none() | specs),
        outputs=draw(st.none() | specs),
        self_tests=draw(
            st.none()
            | st.lists(st.builds(cf.SelfTest, tensor_maps, st.none() | TEXT, st.none() | TEXT, st.none() | tensor_maps), max_size=2)
        ),
        examples=draw(st.none() | st.lists(st.builds(cf.Example, example_maps, example_maps, st.none() | TEXT, st.none() | TEXT), max_size=2)),
        misc_files=draw(st.none() | st.dictionaries(SAFE_NAME, st.binary(max_size=64), max_size=3).filter(_no_case_collisions)),
    )


def _no_case_collisions(names: dict[str, bytes]) -> bool:
    from carton_format._paths import collision_key

    return len({collision_key("misc/" + n) for n in names}) == len(names)


# -- normalisation for comparison ---------------------------------------------------------------


def norm_value(value):
    if isinstance(value, LazyTensor):
        value = value.load()
    if isinstance(value, LazyMiscFile):
        value = value.read()
    if isinstance(value, (bytes, bytearray)):
        return ("misc", bytes(value))
    if isinstance(value, list):
        return ("nested", tuple(norm_value(v) for v in value))
    array = np.asarray(value)
    if array.dtype.kind in "UO":
        return ("string", array.shape, tuple(str(x) for x in array.reshape(-1)))
    name = carton_dtype_of(array, where="t")
    return (name, array.shape, np.ascontiguousarray(array, dtype=NUMERIC_DTYPES[name]).tobytes())


def norm_map(mapping):
    return None if mapping is None else {k: norm_value(v) for k, v in mapping.items()}


def norm_info(info: cf.CartonInfo, *, written: bool) -> dict:
    """Comparable form; ``written=False`` maps an input info to what reading must give back."""
    runner = info.runner
    misc = {k: norm_value(v) for k, v in (info.misc_files or {}).items()}
    if not written:  # example misc values come back as _example_misc_file_N misc files
        for example in info.examples or []:
            for mapping in (example.inputs, example.sample_out):
                for key in sorted(mapping):
                    if isinstance(mapping[key], (bytes, bytearray)):
                        misc[f"_example_misc_file_{sum(k.startswith('_example_misc_file_') for k in misc)}"] = ("misc", bytes(mapping[key]))
    return {
        "text": [getattr(info, f) for f in ("model_name", "short_description", "model_description", "license", "repository", "homepage")],
        "platforms": info.required_platforms,
        "runner": (runner.runner_name, str(VersionReq.parse(runner.required_framework_version)), runner.runner_compat_version, runner.opts),
        "inputs": None if info.inputs is None else [(s.name, s.dtype, _shape(s.shape), s.description, s.internal_name) for s in info.inputs],
        "outputs": None if info.outputs is None else [(s.name, s.dtype, _shape(s.shape), s.description, s.internal_name) for s in info.outputs],
        "self_tests": None
        if not info.self_tests
        else [(t.name, t.description, norm_map(t.inputs), norm_map(t.expected_out)) for t in info.self_tests],
        "examples": None
        if not info.examples
        else [(e.name, e.description, norm_map(e.inputs), norm_map(e.sample_out)) for e in info.examples],
        "misc": misc or None,
    }


def _shape(shape):
    return list(shape) if isinstance(shape, (list, tuple)) else shape


# -- tests --------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(info=infos(), compression=st.sampled_from(["stored", "zstd", "deflate"]))
@pytest.mark.spec("FMT-META-11", "FMT-TENSOR-12")
def test_write_read_identity(tmp_path_factory: pytest.TempPathFactory, info: cf.CartonInfo, compression: str) -> None:
    """FMT-WRITE: what is written reads back identically, for every dtype and value shape."""
    out = tmp_path_factory.mktemp("rt") / "a.carton"
    result = write_info(out, info, compression=compression)
    with cf.read(out) as archive:
        assert norm_info(archive.info, written=True) == norm_info(info, written=False)
        assert archive.manifest_sha256 == result.manifest_sha256
        assert archive.manifest == result.manifest
    assert cf.validate(out).ok


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(info=infos())
@pytest.mark.spec("FMT-WRITE-1")
def test_deterministic_bytes(tmp_path_factory: pytest.TempPathFactory, info: cf.CartonInfo) -> None:
    """FMT-WRITE determinism: the same inputs give a byte-identical archive."""
    d = tmp_path_factory.mktemp("det")
    a = write_info(d / "a.carton", info, compression="zstd")
    b = write_info(d / "b.carton", info, compression="zstd")
    assert (d / "a.carton").read_bytes() == (d / "b.carton").read_bytes()
    assert a.file_sha256() == b.file_sha256()


@pytest.mark.spec("FMT-WRITE-1", "FMT-MANIFEST-7")
def test_deterministic_model_dir(tmp_path: Path) -> None:
    files = {"model.pt": b"weights" * 1000, "sub/b.txt": b"b", "sub/a.txt": b"a", ".hidden": b"h", "Ünïcode/é.bin": b"u"}
    first = write_sample(tmp_path, "one.carton", files)
    second = write_sample(tmp_path, "two.carton", dict(reversed(list(files.items()))))
    assert first.read_bytes() == second.read_bytes()
    with cf.read(first) as archive:
        names = list(archive.manifest)
        assert names == sorted(names, key=lambda n: n.encode())
        assert archive.read_bytes("model/Ünïcode/é.bin") == b"u"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.spec("FMT-READ-3", "FMT-ZIP-22")
def test_any_single_byte_change_is_caught(tmp_path: Path, data: st.DataObject) -> None:
    """FMT-READ deep validation: flipping any byte of any member's data is detected."""
    path = tmp_path / "flip.carton"
    if not path.exists():
        write_sample(tmp_path, "flip.carton")
    original = path.read_bytes()
    offset = data.draw(st.integers(0, len(original) - 1))
    delta = data.draw(st.integers(1, 255))
    mutated = bytearray(original)
    mutated[offset] ^= delta
    bad = tmp_path / "bad.carton"
    bad.write_bytes(bytes(mutated))
    report = cf.validate(bad)
    # Every byte of a deterministic archive matters: data, headers, names, sizes, CRCs...
    # except the few header fields readers must not validate (timestamps, attributes, versions).
    if report.ok:
        assert _is_ignorable_header_byte(original, offset), f"byte {offset} flip went unnoticed"


def _is_ignorable_header_byte(archive: bytes, offset: int) -> bool:
    """Offsets inside version/time/date/attribute fields of local or central headers."""
    import struct

    ignorable: set[int] = set()
    pos = archive.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", archive, pos + 12)
    p = cd_offset
    while p < cd_offset + cd_size:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", archive, p + 28)
        local = struct.unpack_from("<I", archive, p + 42)[0]
        ignorable.update(range(p + 4, p + 8))  # version made by, version needed
        ignorable.update(range(p + 12, p + 16))  # time, date
        ignorable.update(range(p + 36, p + 42))  # internal attrs, external attrs
        ignorable.update(range(local + 4, local + 6))  # local version needed
        ignorable.update(range(local + 10, local + 14))  # local time, date
        p += 46 + name_len + extra_len + comment_len
    return offset in ignorable


@pytest.mark.spec("FMT-READ-2")
def test_read_without_deep_verification_still_checks_what_it_reads(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    members = members_of(path)
    data = bytearray(path.read_bytes())
    start = data.find(members["misc/arch.png"])
    data[start] ^= 1
    path.write_bytes(bytes(data))
    with cf.read(path, verify_hashes=False) as archive:  # metadata members are fine
        with pytest.raises(cf.CartonFormatError) as err:
            archive.info.misc_files["arch.png"].read()
        assert err.value.code in ("E-ZIP-CRC", "E-MANIFEST-MISMATCH")
    with pytest.raises(cf.CartonFormatError):
        cf.read(path)


def test_lazy_tensors_know_dtype_and_shape_without_loading(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    with cf.read(path, verify_hashes=False) as archive:
        x = archive.info.self_tests[0].inputs["x"]
        assert isinstance(x, LazyTensor)
        assert (x.dtype, x.shape) == ("float32", (2, 3))
        np.testing.assert_array_equal(np.asarray(x), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_read_from_open_file_object(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    with open(path, "rb") as fh, cf.read(fh) as archive:
        assert archive.info.model_name == "doubler"
        assert archive.open("model/model.pt").read() == b"not really torchscript"


@pytest.mark.spec("FMT-WRITE-10", "FMT-MANIFEST-8", "FMT-MANIFEST-10", "FMT-READ-9")
def test_symlinks_in_model_dir(tmp_path: Path) -> None:
    """Links inside model/ become symlink members listed with the target's hash; links
    pointing outside are stored as content (FMT-ZIP symlinks, FMT-MANIFEST)."""
    model = tmp_path / "m"
    (model / "weights").mkdir(parents=True)
    (model / "weights" / "w.bin").write_bytes(b"W" * 100)
    (model / "alias.bin").symlink_to("weights/w.bin")
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"torchscript")
    (model / "model.pt").symlink_to(outside)
    result = cf.write(tmp_path / "s.carton", sample_info(), model_dir=model)
    digest = hashlib.sha256(b"W" * 100).hexdigest()
    assert result.manifest["model/alias.bin"] == digest == result.manifest["model/weights/w.bin"]
    with cf.read(result.path) as archive:
        status = {m.path: m for m in archive.members()}
        assert status["model/alias.bin"].symlink_to == "model/weights/w.bin"
        assert archive.read_bytes("model/alias.bin") == b"W" * 100
        assert archive.read_bytes("model/model.pt") == b"torchscript"


@pytest.mark.spec("FMT-WRITE-10")
def test_dangling_symlink_in_model_dir_is_an_error(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(cf.CartonFormatError) as err:
        cf.write(tmp_path / "x.carton", sample_info(), model_dir=model)
    assert err.value.code == "E-MODEL-DIR"
    assert not (tmp_path / "x.carton").exists()


def test_never_overwrites_without_permission(tmp_path: Path) -> None:
    target = tmp_path / "keep.carton"
    target.write_bytes(b"precious")
    with pytest.raises(cf.CartonFormatError) as err:
        write_info(target, sample_info())
    assert err.value.code == "E-OUTPUT-EXISTS"
    assert target.read_bytes() == b"precious"
    write_info(target, sample_info(), overwrite=True)
    assert cf.validate(target).ok
    assert [p.name for p in tmp_path.iterdir()] == ["keep.carton"]  # no temporary files left


@pytest.mark.spec("FMT-MISC-2")
def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    bad = sample_info(misc_files={"a/b": b"x"})
    with pytest.raises(cf.CartonFormatError) as err:
        write_info(tmp_path / "x.carton", bad)
    assert err.value.code == "E-ARG-INVALID"
    assert list(tmp_path.iterdir()) == []


def _unchecked_spec(name: str, dtype: str, shape: object) -> cf.TensorSpec:
    """A TensorSpec holding a dtype / shape its setters refuse (set behind them): the writer must refuse it too."""
    spec = cf.TensorSpec(name, "float32", None)
    object.__setattr__(spec, "dtype", dtype)
    object.__setattr__(spec, "shape", shape)
    return spec


@pytest.mark.parametrize(
    "info, key",
    [
        pytest.param(sample_info(runner=cf.RunnerInfo("torchscript", "=>2", 1)), "runner.required_framework_version",
                     marks=pytest.mark.spec("FMT-RUNNER-3")),
        pytest.param(sample_info(runner=cf.RunnerInfo("torchscript", "=2.13", None)), "runner.runner_compat_version",
                     marks=pytest.mark.spec("FMT-RUNNER-5")),
        pytest.param(sample_info(inputs=[_unchecked_spec("x", "float16", [])]), "input[0].dtype", marks=pytest.mark.spec("FMT-META-8")),
        pytest.param(sample_info(inputs=[_unchecked_spec("x", "float32", [-1])]), "input[0].shape[0]", marks=pytest.mark.spec("FMT-META-10")),
        pytest.param(sample_info(short_description="x" * 101), "short_description", marks=pytest.mark.spec("FMT-META-5")),
        pytest.param(sample_info(required_platforms=["aninvalidplatform"]), "required_platforms[0]", marks=pytest.mark.spec("FMT-META-6")),
        pytest.param(sample_info(runner=cf.RunnerInfo("t", "*", 1, {"k": [1]})), "runner.opts.k", marks=pytest.mark.spec("FMT-RUNNER-6")),
    ],
)
def test_writer_rejects_bad_info(tmp_path: Path, info: cf.CartonInfo, key: str) -> None:
    with pytest.raises(cf.CartonFormatError) as err:
        write_info(tmp_path / "x.carton", info)
    assert err.value.code in ("E-ARG-INVALID", "E-VERSIONREQ-INVALID")
    assert err.value.key == key


@pytest.mark.spec("FMT-TENSOR-5")
def test_writer_rejects_unsupported_numpy_dtypes(tmp_path: Path) -> None:
    for array in (np.array([True]), np.array([1.0], dtype=np.float16), np.array([1j])):
        with pytest.raises(cf.CartonFormatError) as err:
            write_info(tmp_path / "x.carton", sample_info(self_tests=[cf.SelfTest(inputs={"x": array})]))
        assert err.value.code == "E-ARG-INVALID"


@pytest.mark.spec("FMT-RUNNER-3", "FMT-VREQ-8")
def test_required_framework_version_is_normalised(tmp_path: Path) -> None:
    path = tmp_path / "n.carton"
    write_info(path, sample_info(runner=cf.RunnerInfo("torchscript", ">= 2.0.0", 1)))
    with cf.read(path) as archive:
        assert archive.info.runner.required_framework_version == ">=2.0.0"
        assert "required_framework_version = \">=2.0.0\"" in archive.read_bytes("carton.toml").decode()


@pytest.mark.spec("FMT-LINKS-7", "FMT-LINKS-12", "FMT-MANIFEST-8", "FMT-MANIFEST-9", "FMT-READ-4")
def test_linked_files_are_listed_but_left_out(tmp_path: Path) -> None:
    weights = b"big weights" * 1000
    sha = hashlib.sha256(weights).hexdigest()
    path = write_sample(tmp_path, model_files={"model.pt": weights, "small": b"s"}, linked_files={sha: ["https://example.com/w"]})
    with cf.read(path) as archive:
        assert archive.manifest["model/model.pt"] == sha
        assert archive.linked_urls("model/model.pt") == ["https://example.com/w"]
        with pytest.raises(cf.CartonFormatError) as err:
            archive.open("model/model.pt")
        assert err.value.code == "E-LINKS-NOT-FETCHED"
    report = cf.validate(path)
    assert report.ok and any(w.code == "W-HASHES-NOT-VERIFIED" for w in report.warnings)


@pytest.mark.spec("FMT-READ-2")
def test_linked_files_use_the_fetcher_and_verify_it(tmp_path: Path) -> None:
    import io

    weights = b"linked" * 100
    sha = hashlib.sha256(weights).hexdigest()
    path = write_sample(tmp_path, model_files={"model.pt": weights}, linked_files={sha: ["https://a/w", "https://b/w"]})
    calls = []

    def fetch(member: str, digest: str, urls: list[str]):
        calls.append((member, digest, urls))
        return io.BytesIO(weights)

    with cf.read(path, fetch_linked=fetch) as archive:
        assert archive.read_bytes("model/model.pt") == weights
    assert calls == [("model/model.pt", sha, ["https://a/w", "https://b/w"])]
    with cf.read(path, fetch_linked=lambda *a: io.BytesIO(b"tampered")) as archive:
        with pytest.raises(cf.CartonFormatError) as err:
            archive.read_bytes("model/model.pt")
        assert err.value.code == "E-MANIFEST-MISMATCH"


def test_names_are_ascii_safe_in_generated_members(tmp_path: Path) -> None:
    path = write_sample(tmp_path)
    for name in members_of(path):
        assert set(name) <= set(string.ascii_letters + string.digits + "._/-"), name
