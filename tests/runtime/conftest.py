"""Fixtures for the runtime tests: TorchScript models, packed archives, a loopback HTTP server.

Every test gets its own cache directory (CARTON_CACHE_DIR).  The HTTP server listens on
127.0.0.1 only; it serves files from a directory, honours Range (or ignores it, or lies about
it, per route), can send pre-encoded bodies with a Content-Encoding, and logs every request.
Further routes misbehave on purpose (slow bodies and headers, failures from the n-th request
on, a download that stalls once, ETag validators, redirects anywhere); see ``do_GET``.  Every
misbehaving loop is bounded and ends when the client goes away.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.server
import re
import shutil
import socket
import struct
import threading
import time
import urllib.parse
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


@pytest.fixture
def echo_runner() -> Any:
    """The third-party ``echo`` runner (tests/runtime/fake_runner.py), registered for one test."""
    import carton_runtime as carton

    from .fake_runner import EchoRunner

    runner = EchoRunner()
    carton.register_runner(runner)
    yield runner
    carton.unregister_runner(runner)


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
    counts: dict[str, int] = field(default_factory=dict)  # requests per path, for /fail-from/
    stalled: set[str] = field(default_factory=set)  # paths whose one stalled download happened (/stall-once/)
    stop_stalling: threading.Event = field(default_factory=threading.Event)
    dl_headers: dict[str, str] = field(default_factory=dict)  # path -> x-carton-dl-url sent on HEAD (carton.pub)

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
            self.counts.clear()
            self.stalled.clear()
            self.dl_headers.clear()
        self.stop_stalling.clear()

    def count(self, path: str) -> int:
        """Count a request for ``path``; returns its number (1 for the first)."""
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            return self.counts[path]


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

        def _log(self, status: int, sent: int) -> None:
            with server.lock:
                server.log.append(Logged(self.command, self.path.split("?")[0], self.headers.get("Range"), status, sent))

        def _reset_connection(self) -> None:
            """Close with a TCP reset (SO_LINGER 0), nothing sent."""
            self._log(0, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # its reference would delay the close (and socketserver would send a FIN first)
            self.connection.close()
            self.close_connection = True

        def _trickle(self, status: int, data: bytes, chunk: int, interval: float, headers: dict[str, str] | None = None) -> None:
            """Headers at once, then ``chunk`` bytes every ``interval`` seconds until ``data`` is sent or the client is gone."""
            self._log(status, len(data))
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for at in range(0, len(data), chunk):
                    time.sleep(interval)
                    self.wfile.write(data[at : at + chunk])
                    self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True

        def _serve(self, rel: str, *, lie: bool = False, extra: dict[str, str] | None = None, validators: bool = False) -> None:
            """The file ``rel`` under the root, honouring Range (unless the server ignores it)."""
            target = server.root / rel
            if not target.is_file():
                return self._send(404, b"not found", {})
            data = target.read_bytes()
            headers = dict(extra or {})
            if validators:  # a strong ETag (the content's hash) and Last-Modified; conditionals honoured
                etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
                modified = email.utils.formatdate(target.stat().st_mtime, usegmt=True)
                headers.update({"ETag": etag, "Last-Modified": modified})
                if self.headers.get("If-None-Match") == etag or (
                    self.headers.get("If-None-Match") is None and self.headers.get("If-Modified-Since") == modified
                ):
                    return self._send(304, b"", headers, head=True)
            rng = self.headers.get("Range")
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
                    headers.update({"Content-Range": f"bytes {shown_start}-{end}/{size}", "Accept-Ranges": "bytes"})
                    return self._send(206, data[start : end + 1], headers)
            return self._send(200, data, headers)

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
            # /raw-enc/<coding>/<name>: the file as stored (already encoded), labelled with that Content-Encoding
            m = re.match(r"^/raw-enc/([a-z-]+)/(.+)$", path)
            if m:
                return self._send(200, (server.root / m.group(2)).read_bytes(), {"Content-Encoding": m.group(1)})
            if path.startswith("/redirect/"):  # -> the rest of the path on this server
                return self._send(302, b"", {"Location": path[len("/redirect"):]})
            if path.startswith("/redirect-ftp/"):
                return self._send(302, b"", {"Location": "ftp://127.0.0.1/x"})
            if path.startswith("/redirect-to/"):  # -> the percent-encoded URL that follows
                return self._send(302, b"", {"Location": urllib.parse.unquote(path[len("/redirect-to/"):])})
            if path.startswith("/status/"):
                return self._send(int(path.split("/")[2]), b"error page", {})
            # /slow/<chunk>/<ms>/<name>: the whole file (200), <chunk> bytes every <ms> milliseconds
            m = re.match(r"^/slow/(\d+)/(\d+)/(.+)$", path)
            if m:
                data = (server.root / m.group(3)).read_bytes()
                return self._trickle(200, data, int(m.group(1)), int(m.group(2)) / 1000)
            # /slow-headers/<ms>/<name>: the status line, then one header byte every <ms> milliseconds (200 at most)
            m = re.match(r"^/slow-headers/(\d+)/(.+)$", path)
            if m:
                self._log(200, 0)
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    for _ in range(200):
                        time.sleep(int(m.group(1)) / 1000)
                        self.wfile.write(b"a")
                        self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True
                return None
            # /fail-from/<k>/<mode>/<name>: requests number k and later fail: reset (TCP RST, nothing
            # sent), 500, or short (the headers of the right answer, then half its body and EOF)
            m = re.match(r"^/fail-from/(\d+)/(reset|500|short)/(.+)$", path)
            if m:
                if server.count(path) < int(m.group(1)):
                    return self._serve(m.group(3))
                mode = m.group(2)
                if mode == "reset":
                    return self._reset_connection()
                if mode == "500":
                    return self._send(500, b"server error", {})
                return self._short(m.group(3))
            # /stall-once/<name>: the first whole-file request (no Range) sends half the file, then
            # a byte every 0.2 s (for 30 s at most, or until stop_stalling is set); all others are served
            m = re.match(r"^/stall-once/(.+)$", path)
            if m:
                with server.lock:
                    first = self.headers.get("Range") is None and path not in server.stalled
                    if first:
                        server.stalled.add(path)
                if not first:
                    return self._serve(m.group(1))
                data = (server.root / m.group(1)).read_bytes()
                self._log(200, len(data))
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    half = len(data) // 2
                    self.wfile.write(data[:half])
                    self.wfile.flush()
                    for i in range(150):
                        if server.stop_stalling.wait(0.2):
                            break
                        self.wfile.write(data[half + i : half + i + 1])
                        self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True
                return None
            if path.startswith("/etag/"):  # validators (ETag, Last-Modified) and conditional requests
                return self._serve(path[len("/etag/"):], validators=True)
            lie = path.startswith("/lying/")
            return self._serve(path.lstrip("/"), lie=lie)

        def _short(self, rel: str) -> None:
            """The headers of the right answer (Content-Length of it all), half the body, then EOF."""
            data = (server.root / rel).read_bytes()
            rng = self.headers.get("Range")
            status, headers, body = 200, {}, data
            m = re.match(r"^bytes=(\d*)-(\d*)$", rng or "")
            if m:
                size = len(data)
                if m.group(1) == "":
                    start, end = max(0, size - int(m.group(2))), size - 1
                else:
                    start, end = int(m.group(1)), min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
                status, body = 206, data[start : end + 1]
                headers = {"Content-Range": f"bytes {start}-{end}/{size}"}
            self._log(status, len(body) // 2)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True

        def do_HEAD(self) -> None:
            with server.lock:
                dl_url = server.dl_headers.get(self.path.split("?")[0])
            if dl_url is not None:  # a carton.pub download host: the header names the archive
                return self._send(200, b"", {"x-carton-dl-url": dl_url}, head=True)
            target = server.root / self.path.lstrip("/")
            self._send(200 if target.is_file() else 404, b"", {}, head=True)

    return Handler


def start_server(root: Path, *, ignore_range: bool = False, host: str = "127.0.0.1") -> tuple[Any, Server]:
    """A loopback server over ``root`` on a free port of ``host``; ``httpd.shutdown()`` and
    ``httpd.server_close()`` stop it (then connecting to it is refused)."""
    state = Server(root, ignore_range=ignore_range)
    httpd = http.server.ThreadingHTTPServer((host, 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, state


def _start(tmp_path_factory: pytest.TempPathFactory, ignore_range: bool) -> Any:
    return start_server(tmp_path_factory.mktemp("www"), ignore_range=ignore_range)


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
def server(_range_server: Server) -> Any:
    """A loopback server honouring Range (log reset for each test)."""
    _range_server.reset()
    _range_server.delay = 0.0
    yield _range_server
    _range_server.stop_stalling.set()  # a stalled answer still in flight ends now


class ServerFactory:
    """Starts throwaway loopback servers (``new()``); ``stop(state)`` closes one's port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: list[tuple[Any, Server]] = []

    def new(self, *, host: str = "127.0.0.1", ignore_range: bool = False) -> Server:
        root = self.root / f"www{len(self.running)}"
        root.mkdir(parents=True)
        httpd, state = start_server(root, ignore_range=ignore_range, host=host)
        self.running.append((httpd, state))
        return state

    def stop(self, state: Server) -> None:
        for httpd, s in list(self.running):
            if s is state:
                state.stop_stalling.set()
                httpd.shutdown()
                httpd.server_close()
                self.running.remove((httpd, s))

    def close(self) -> None:
        for httpd, state in self.running:
            state.stop_stalling.set()
            httpd.shutdown()
            httpd.server_close()
        self.running.clear()


@pytest.fixture
def servers(tmp_path: Path) -> Any:
    """A factory of loopback servers of the test's own, all stopped at its end."""
    factory = ServerFactory(tmp_path / "servers")
    yield factory
    factory.close()


@pytest.fixture
def norange_server(_norange_server: Server) -> Server:
    """A loopback server that ignores Range (answers 200 with the whole file)."""
    _norange_server.reset()
    return _norange_server
