"""Build Carton archives member by member, so tests can break exactly one rule at a time.

``members_of(path)`` unpacks a valid archive into an ordered dict; tests edit it and
``build(members)`` zips it again with a recomputed (or a given) MANIFEST.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

import carton_format as cf
from carton_format._zip.reader import ZipReader
from carton_format._zip.writer import ZipWriter
from carton_format.manifest import format_manifest

AUTO = object()


def sample_info(**overrides) -> cf.CartonInfo:
    """A small info with self tests, an example mixing tensors and misc bytes, and misc files."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    fields = dict(
        runner=cf.RunnerInfo("torchscript", "=2.13", 1, {"num_threads": 1}),
        model_name="doubler",
        short_description="Doubles its input",
        inputs=[cf.TensorSpec("x", "float32", ["batch", 3])],
        outputs=[cf.TensorSpec("y", "float32", ["batch", 3])],
        self_tests=[cf.SelfTest(inputs={"x": x}, expected_out={"y": 2 * x}, name="t")],
        examples=[cf.Example(inputs={"x": x, "s": np.array(["a", "b"])}, sample_out={"y": b"\x89PNG fake"})],
        misc_files={"arch.png": b"png bytes"},
    )
    fields.update(overrides)
    return cf.CartonInfo(**fields)


def write_sample(tmp_path: Path, name: str = "sample.carton", model_files: dict[str, bytes] | None = None, **kwargs) -> Path:
    model_dir = tmp_path / f"{name}.model"
    model_dir.mkdir()
    for rel, data in (model_files or {"model.pt": b"not really torchscript"}).items():
        (model_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / rel).write_bytes(data)
    info = kwargs.pop("info", None) or sample_info()
    return cf.write(tmp_path / name, info, model_dir=model_dir, **kwargs).path


_MODEL_DIR: Path | None = None


def tiny_model_dir() -> Path:
    """One directory (per process, removed at exit) holding a one-file model."""
    global _MODEL_DIR
    if _MODEL_DIR is None:
        import atexit
        import shutil
        import tempfile

        _MODEL_DIR = Path(tempfile.mkdtemp(prefix="carton-test-model-"))
        atexit.register(shutil.rmtree, _MODEL_DIR, True)
        (_MODEL_DIR / "model.pt").write_bytes(b"model")
    return _MODEL_DIR


def write_info(target: Path, info: cf.CartonInfo, **kwargs) -> cf.WriteResult:
    """``cf.write`` with a one-file model directory (every carton packages a model, FMT-PATH-5)
    unless the test gives its own ``model_dir``."""
    kwargs.setdefault("model_dir", tiny_model_dir())
    return cf.write(target, info, **kwargs)


def members_of(path: Path) -> dict[str, bytes]:
    with ZipReader.open_path(path) as z:
        return {e.name: z.read_member(e.name, 1 << 30) for e in z.entries}


def build(members: dict[str, bytes], *, manifest=AUTO, method: int = 0, links: bytes | None = None) -> bytes:
    """Zip ``members``; MANIFEST is recomputed over them unless given (None = no MANIFEST)."""
    content = {k: v for k, v in members.items() if k not in ("MANIFEST", "LINKS")}
    if manifest is AUTO:
        manifest = format_manifest({k: hashlib.sha256(v).hexdigest() for k, v in content.items()})
    buf = io.BytesIO()
    writer = ZipWriter(buf)
    for name, data in content.items():
        writer.add_bytes(name, data, method=method)
    if manifest is not None:
        writer.add_bytes("MANIFEST", manifest, method=0)
    if links is not None:
        writer.add_bytes("LINKS", links, method=0)
    writer.close()
    return buf.getvalue()


def replace_text(members: dict[str, bytes], name: str, old: str, new: str) -> dict[str, bytes]:
    text = members[name].decode()
    assert old in text, f"{old!r} not in {name}:\n{text}"
    return {**members, name: text.replace(old, new).encode()}
