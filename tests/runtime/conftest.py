"""Fixtures for the runtime tests: TorchScript models, packed archives, a loopback HTTP server.

Every test gets its own cache directory (CARTON_CACHE_DIR).  The HTTP server listens on
127.0.0.1 only; it serves files from a directory, honours Range (or ignores it, or lies about
it, per route), can send pre-encoded bodies with a Content-Encoding, and logs every request.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import re
import shutil
import threading
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import carton_format as cf

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL_MODEL = ROOT / "tests" / "data" / "original" / "test_model.pt"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("CARTON_CACHE_DIR", str(path))
    return path


# -- TorchScript models -----------------------------------------------------------------------------


def _script_and_save(module: Any, path: Path) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), str(path))
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small TorchScript models for the error and dtype tests."""
    import torch

    out = tmp_path_factory.mktemp("models")

    class Echo(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return inputs

    class Copy(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {k: v.clone() for k, v in inputs.items()}

    class Fails(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            x = inputs["x"]
            if bool((x < 0).any()):
                raise ValueError("negative input")
            return {"y": x + 1}

    class NotADict(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
            return inputs["x"]

    class BadOutputs(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, Any]:
            which = int(inputs["which"].item())
            out: Dict[str, Any] = {}
            if which == 0:
                out["number"] = 3
            elif which == 1:
                out["half"] = inputs["x"].to(torch.bfloat16)
            elif which == 2:
                out["ints"] = [1, 2]
            else:
                out["nested"] = {"a": inputs["x"]}
            return out

    class Param(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"w": self.w, "y": inputs["x"] * self.w}

    class Strings(torch.nn.Module):
        def forward(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            s = inputs["s"]
            items = inputs["items"]
            assert isinstance(s, str)
            assert isinstance(items, List[str])
            out: Dict[str, Any] = {"upper": s.upper(), "rev": items[::-1], "n": torch.tensor(len(items))}
            return out

    class AnyKeys(torch.nn.Module):
        """Dict[str, Any] in: the keys in order and each value's kind; raises on input "fail"."""

        def forward(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            kinds: List[str] = []
            for value in inputs.values():
                if isinstance(value, torch.Tensor):
                    kinds.append("tensor")
                elif isinstance(value, str):
                    kinds.append("str")
                elif isinstance(value, List[str]):
                    kinds.append("List[str]")
                else:
                    kinds.append("other")
            if "fail" in inputs:
                raise ValueError("asked to fail")
            out: Dict[str, Any] = {"keys": list(inputs.keys()), "kinds": kinds}
            return out

    class Training(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"training": torch.tensor(self.training), "grad": torch.tensor(torch.is_grad_enabled())}

    paths = {}
    for name, module in [
        ("echo", Echo()), ("copy", Copy()), ("fails", Fails()), ("not_a_dict", NotADict()),
        ("bad_outputs", BadOutputs()), ("param", Param()), ("strings", Strings()), ("any_keys", AnyKeys()),
        ("training", Training()),
    ]:
        paths[name] = _script_and_save(module, out / f"{name}.pt")
    paths["original"] = ORIGINAL_MODEL
    return paths


def original_self_test() -> cf.SelfTest:
    a = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    return cf.SelfTest(
        name="docs example",
        inputs={"a": a, "b": np.array("scalar"), "c": np.array(["x", "y"])},
        expected_out={"doubled": 2 * a, "string": np.array("A string"), "stringlist": np.array(["A", "list", "of", "strings"])},
    )


def pack_original(out: Path, **kwargs: Any) -> Path:
    """The original's test model (the docs example), packed with self tests and misc files."""
    import carton_runtime.sync as cs

    a = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    args: dict[str, Any] = dict(
        model_name="doubler",
        short_description="Doubles a tensor",
        inputs=[cf.TensorSpec("a", "float32", ["n"]), cf.TensorSpec("b", "string", []), cf.TensorSpec("c", "string", ["k"])],
        outputs=[cf.TensorSpec("doubled", "float32", ["n"]), cf.TensorSpec("string", "string", []), cf.TensorSpec("stringlist", "string", [4])],
        self_tests=[original_self_test()],
        examples=[cf.Example(inputs={"a": a}, sample_out={"doubled": 2 * a, "plot": b"\x89PNG..."}, name="ex")],
        misc_files={"notes.md": "notes 📦".encode()},
        output_path=out,
        overwrite=True,
    )
    args.update(kwargs)
    return Path(cs.pack(ORIGINAL_MODEL, "torchscript", args.pop("required_framework_version", "=2.13"), **args))


@pytest.fixture(scope="session")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_original(tmp_path_factory.mktemp("packed") / "doubler.carton")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- loopback HTTP server -----------------------------------------------------------------------------


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    status: int
    sent: int


@dataclass
class Server:
    root: Path
    base: str = ""
    log: list[Logged] = field(default_factory=list)
    ignore_range: bool = False
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def add(self, name: str, data: bytes) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self.url(name)

    def add_file(self, name: str, source: Path) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return self.url(name)

    def requests_for(self, name: str) -> list[Logged]:
        with self.lock:
            return [r for r in self.log if r.path == "/" + name]

    def bytes_for(self, name: str) -> int:
        return sum(r.sent for r in self.requests_for(name))

    def reset(self) -> None:
        with self.lock:
            self.log.clear()


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "rawdeflate": lambda d: zlib.compress(d)[2:-4],
    "identity": lambda d: d,
}


def _encode(kind: str, data: bytes) -> tuple[str, bytes]:
    if kind == "zstd":
        import zstandard

        return "zstd", zstandard.ZstdCompressor().compress(data)
    if kind == "br":
        import brotli  # type: ignore[import-not-found]

        return "br", brotli.compress(data)
    if kind == "rawdeflate":
        return "deflate", ENCODERS[kind](data)
    if kind == "gzipzstd":  # two codings, applied in order: gzip then zstd
        import zstandard

        return "gzip, zstd", zstandard.ZstdCompressor().compress(gzip.compress(data))
    return kind, ENCODERS[kind](data)


def _handler(server: Server) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
            with server.lock:  # logged before answering, so a client never sees an unlogged reply
                server.log.append(Logged(self.command, self.path.split("?")[0], self.headers.get("Range"), status, 0 if head else len(body)))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if server.delay:
                time.sleep(server.delay)
            # /enc/<kind>/<name>: the file sent with a Content-Encoding
            m = re.match(r"^/enc/([a-z]+)/(.+)$", path)
            if m:
                data = (server.root / m.group(2)).read_bytes()
                coding, body = _encode(m.group(1), data)
                return self._send(200, body, {"Content-Encoding": coding})
            if path.startswith("/redirect/"):  # -> the rest of the path on this server
                return self._send(302, b"", {"Location": path[len("/redirect"):]})
            if path.startswith("/redirect-ftp/"):
                return self._send(302, b"", {"Location": "ftp://127.0.0.1/x"})
            if path.startswith("/status/"):
                return self._send(int(path.split("/")[2]), b"error page", {})
            target = server.root / path.lstrip("/")
            if not target.is_file():
                return self._send(404, b"not found", {})
            data = target.read_bytes()
            rng = self.headers.get("Range")
            lie = path.startswith("/lying/")
            if rng and not server.ignore_range:
                m = re.match(r"^bytes=(\d*)-(\d*)$", rng)
                if m:
                    size = len(data)
                    if m.group(1) == "":
                        start, end = max(0, size - int(m.group(2))), size - 1
                    else:
                        start = int(m.group(1))
                        end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
                    if start >= size:
                        return self._send(416, b"", {"Content-Range": f"bytes */{size}"})
                    shown_start = start + 1 if lie and m.group(1) != "" else start
                    headers = {"Content-Range": f"bytes {shown_start}-{end}/{size}", "Accept-Ranges": "bytes"}
                    return self._send(206, data[start : end + 1], headers)
            return self._send(200, data, {})

        def do_HEAD(self) -> None:
            target = server.root / self.path.lstrip("/")
            self._send(200 if target.is_file() else 404, b"", {}, head=True)

    return Handler


def _start(tmp_path_factory: pytest.TempPathFactory, ignore_range: bool) -> Any:
    root = tmp_path_factory.mktemp("www")
    state = Server(root, ignore_range=ignore_range)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, state


@pytest.fixture(scope="session")
def _range_server(tmp_path_factory: pytest.TempPathFactory):
    httpd, state = _start(tmp_path_factory, ignore_range=False)
    yield state
    httpd.shutdown()


@pytest.fixture(scope="session")
def _norange_server(tmp_path_factory: pytest.TempPathFactory):
    httpd, state = _start(tmp_path_factory, ignore_range=True)
    yield state
    httpd.shutdown()


@pytest.fixture
def server(_range_server: Server) -> Server:
    """A loopback server honouring Range (log reset for each test)."""
    _range_server.reset()
    _range_server.delay = 0.0
    return _range_server


@pytest.fixture
def norange_server(_norange_server: Server) -> Server:
    """A loopback server that ignores Range (answers 200 with the whole file)."""
    _norange_server.reset()
    return _norange_server
