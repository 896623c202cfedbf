"""Local stand-ins for what the original's tests and docs fetch from the network.

The suite runs offline, so nothing here is downloaded: images are generated PNGs, the carton.pub
models are small archives built here and served from a loopback server (127.0.0.1), and the
carton.pub URL resolution of the runtime (``CARTON_PUB_HOST`` / ``CARTON_PUB_DL_HOST``) points at
loopback servers too.  See tests/compat/README.md for what each stand-in replaces.
"""

from __future__ import annotations

import atexit
import shutil
import struct
import tempfile
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

import carton_format as cf
from tests.runtime.conftest import Server, start_server

#: The original test's model description (test_load_unpacked.py), also basic_example's.
MODEL_DESCRIPTION = """
Some description of the model that can be as detailed as you want it to be

This can span multiple lines. It can use markdown, but shouldn't use arbitrary HTML
(which will usually be treated as text instead of HTML when this is rendered)

You can use images and links, but the paths must either be complete https
URLs (e.g. https://example.com/image.png) or must reference a file in the misc folder (e.g `@misc/file.png`).
See the `misc_files` section of this document for more details

![Model Architecture](@misc/model_architecture.png)
"""
SHORT_DESCRIPTION = "A short description that should be less than or equal to 100 characters."
UNICODE_STRINGS = [
    "Hello 💖 😂😍🎉👍 Unicode",
    "Some Telugu: గ ఘ ఙ చ ఛ జ ఝ ఞ ట ఠ డ ఢ ణ త థ ద ధ న ప ఫ బ భ మ య ర ఱ",
    "Let's 🤑 make 🙋😬 sure 👍 emojis ⚽ work 💼🙄 well 🤓🤒",
]
#: The BERT stand-in's answer to "Today is a good [MASK]." (the docs' printed output).
BERT_TOKEN = "day"
BERT_SCORE = 12.977381

_lock = threading.RLock()
_state: dict[str, Any] = {}


def _workdir() -> Path:
    """One temporary directory per process (removed at exit) for generated files."""
    with _lock:
        if "dir" not in _state:
            path = Path(tempfile.mkdtemp(prefix="carton-compat-"))
            atexit.register(shutil.rmtree, path, True)
            _state["dir"] = path
        return _state["dir"]


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG (8-bit RGB, one colour with a diagonal line), built with zlib and struct."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type 0 (None)
        for x in range(width):
            rows += bytes((255 - c for c in rgb)) if x == y else bytes(rgb)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")


#: Stand-ins for the Penn-Fudan pedestrian image and the whisper approach graphic.
PEDESTRIAN_PNG = png_bytes(24, 16, (40, 120, 200))
ARCHITECTURE_PNG = png_bytes(32, 20, (250, 180, 30))
#: Where the original's test fetched them, as paths on the local server.
PEDESTRIAN_PATH = "~jshi/ped_html/images/PennPed00015_1.png"
ARCHITECTURE_PATH = "openai/whisper/main/approach.png"


def www() -> Server:
    """The process's loopback file server (started once), serving the stand-in images."""
    with _lock:
        if "www" not in _state:
            root = Path(tempfile.mkdtemp(prefix="carton-compat-www-"))
            atexit.register(shutil.rmtree, root, True)
            httpd, server = start_server(root)
            atexit.register(httpd.shutdown)
            server.add(PEDESTRIAN_PATH, PEDESTRIAN_PNG)
            server.add(ARCHITECTURE_PATH, ARCHITECTURE_PNG)
            _state["www"] = server
        return _state["www"]


def torch_requirement() -> str:
    """``=MAJOR.MINOR`` of the installed torch, so the stand-in models load here."""
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return f"={major}.{minor}"


def _script(module: Any, path: Path) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), str(path))
    return path


def doubler_model() -> Path:
    """A TorchScript model: ``{"x": t}`` -> ``{"out": t * 2}`` (the docs' running example)."""
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"out": inputs["x"] * 2}

    with _lock:
        if "doubler" not in _state:
            _state["doubler"] = _script(Doubler(), _workdir() / "doubler.pt")
        return _state["doubler"]


def bert_standin_model() -> Path:
    """NOT BERT: a TorchScript model with bert-base-uncased's Carton interface (string tensor
    ``input`` -> float ``scores`` and string ``tokens``) that answers "day" with score 12.977381
    for each input containing ``[MASK]`` (an empty token and 0 otherwise)."""
    import torch

    class BertStandIn(torch.nn.Module):
        def forward(self, inputs: Dict[str, List[str]]) -> Dict[str, Any]:
            tokens: List[str] = []
            scores: List[float] = []
            for text in inputs["input"]:
                masked = "[MASK]" in text
                tokens.append("day" if masked else "")
                scores.append(12.977381 if masked else 0.0)
            out: Dict[str, Any] = {"scores": torch.tensor(scores, dtype=torch.float32).unsqueeze(1), "tokens": tokens}
            return out

    with _lock:
        if "bert" not in _state:
            _state["bert"] = _script(BertStandIn(), _workdir() / "bert_standin.pt")
        return _state["bert"]


def bert_standin_archive() -> Path:
    """The BERT stand-in packed (torchscript runner, input/output specs declared)."""
    import carton_runtime.sync as cs

    with _lock:
        cached = _state.get("bert.carton")
    if cached is not None:
        return cached
    path = cs.pack(
        bert_standin_model(),
        "torchscript",
        torch_requirement(),
        model_name="bert-base-uncased stand-in (not BERT)",
        inputs=[cf.TensorSpec("input", "string", ["batch"])],
        outputs=[cf.TensorSpec("scores", "float32", ["batch", 1]), cf.TensorSpec("tokens", "string", ["batch"])],
        output_path=_workdir() / "bert_standin.carton",
        overwrite=True,
    )
    with _lock:
        _state["bert.carton"] = Path(path)
    return Path(path)


def basic_example_archive() -> Path:
    """Stands in for carton.pub/cartonml/basic_example: the model the original's
    test_load_unpacked packs (python runner, its code, all of its metadata)."""
    with _lock:
        cached = _state.get("basic_example.carton")
    if cached is not None:
        return cached
    model_dir = _workdir() / "basic_example"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "requirements.txt").write_text("numpy")
    (model_dir / "main.py").write_text(
        "import sys\nimport numpy as np\n\nclass Model:\n    def infer_with_tensors(self, tensors):\n"
        '        return {"out": np.array([sys.version_info.major, sys.version_info.minor])}\n\n'
        "def get_model():\n    return Model()\n"
    )
    info = cf.CartonInfo(
        runner=cf.RunnerInfo("python", "=3.11", 1, {"entrypoint_package": "main", "entrypoint_fn": "get_model"}),
        model_name="Test Model",
        short_description=SHORT_DESCRIPTION,
        model_description=MODEL_DESCRIPTION,
        required_platforms=["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "x86_64-apple-darwin", "aarch64-apple-darwin"],
        inputs=[
            cf.TensorSpec("a", "float32", None),
            cf.TensorSpec("b", "float64", "some_symbol"),
            cf.TensorSpec("c", "string", [None]),
            cf.TensorSpec("d", "int8", ["some_symbol"]),
            cf.TensorSpec("e", "int16", []),
            cf.TensorSpec("f", "int32", ["batch_size", 3, 512, 512]),
            cf.TensorSpec("g", "int64", [None, None, None]),
        ],
        outputs=[cf.TensorSpec("y", "uint32", [2, 3, 512, 512], description="Some description of the output with emoji! 🥳")],
        self_tests=[
            cf.SelfTest(
                name="a_self_test",
                description="A self test",
                inputs={"a": np.ones(5, dtype=np.float32), "b": np.array(UNICODE_STRINGS)},
                expected_out={"y": np.ones(5, dtype=np.uint32)},
            )
        ],
        examples=[
            cf.Example(
                name="an_optional_name",
                description="An example of an image input",
                inputs={"f": PEDESTRIAN_PNG},
                sample_out={"y": np.array(5)},
            )
        ],
        misc_files={"model_architecture.png": ARCHITECTURE_PNG},
    )
    path = cf.write(_workdir() / "basic_example.carton", info, model_dir=model_dir, overwrite=True).path
    with _lock:
        _state["basic_example.carton"] = Path(path)
    return Path(path)


__all__ = [
    "ARCHITECTURE_PATH",
    "ARCHITECTURE_PNG",
    "BERT_SCORE",
    "BERT_TOKEN",
    "MODEL_DESCRIPTION",
    "PEDESTRIAN_PATH",
    "PEDESTRIAN_PNG",
    "SHORT_DESCRIPTION",
    "basic_example_archive",
    "bert_standin_archive",
    "bert_standin_model",
    "doubler_model",
    "png_bytes",
    "torch_requirement",
    "www",
]
