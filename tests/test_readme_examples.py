"""README.md's Python examples, run for real.

Every ```python block of README.md is run, in README order and cumulatively (one shared
namespace, as a user pasting them one after another into one interpreter would), in one fresh
subprocess whose working directory is a temporary directory.  No top-level ``await``: the README's
async example is itself a script (``async def main(): ...`` + ``asyncio.run(main())``), and
``test_readme_blocks_are_plain_scripts`` keeps it that way.

Setup done before the blocks run (what the README assumes exists):

* ``build/model/model.pt``: a TorchScript "doubler" (``forward(Dict[str, Any]) -> {"y": 2 * x}``),
  the ``model_dir`` the Python API example packs into ``doubler.carton``;
* ``model.pt``: the same model, which the Runtime example passes to ``carton.pack``;
* ``CARTON_CACHE_DIR`` pointing into the temporary directory;
* a loopback HTTP server (127.0.0.1 only, honouring Range) serving the temporary directory.
  The README's URLs ``https://host/...`` are rewritten by this test to
  ``http://127.0.0.1:<port>/...`` before running, so ``get_model_info("https://host/doubler.carton")``
  reads, over range requests, the archive the first block wrote.  Nothing reaches the network.
"""

from __future__ import annotations

import ast
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK_RE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
FAKE_HOST = "https://host/"

# Runs the blocks, given as JSON [[readme_line, file], ...], in one namespace, in order.  Each
# block is a real file (TorchScript reads a scripted method's source back from its file),
# padded with blank lines so that tracebacks give README.md line numbers.
DRIVER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for index, (line, path) in enumerate(blocks):
    try:
        source = open(path, encoding="utf-8").read()
        exec(compile(source, path, "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"README BLOCK FAILED: block {index} at README.md line {line}", flush=True)
        sys.exit(1)
    print(f"README BLOCK OK: {index}", flush=True)
"""


def readme_blocks() -> list[tuple[int, str]]:
    """(line of the block's first code line, source) for every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK_RE.finditer(text)]


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; honours a single ``Range: bytes=`` request (start-end, start-, -suffix)."""

    requested: list[str] = []  # the paths asked for, per server (set by the fixture)

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, head_only: bool) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        size = len(data)
        status, start, end = 200, 0, size - 1
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start = max(size - int(match.group(2)), 0)
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.requested.append(self.path)
        self._send(head_only=False)

    def do_HEAD(self) -> None:
        self._send(head_only=True)


@pytest.fixture
def served_dir(tmp_path: Path) -> Iterator[tuple[Path, str, list[str]]]:
    """The working directory for the blocks, the loopback base URL serving it, its GET log."""
    work = tmp_path / "work"
    work.mkdir()

    class Handler(_RangeHandler):
        requested: list[str] = []

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(work), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield work, f"http://127.0.0.1:{server.server_address[1]}/", Handler.requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _make_models(work: Path) -> None:
    """build/model/model.pt and model.pt: the doubler the README's examples pack."""
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
            x = inputs["x"]
            assert torch.jit.isinstance(x, torch.Tensor)
            out: Dict[str, Any] = {"y": x * 2}
            return out

    (work / "build" / "model").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(Doubler()), str(work / "build" / "model" / "model.pt"))
    (work / "model.pt").write_bytes((work / "build" / "model" / "model.pt").read_bytes())


def test_readme_has_python_examples() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 5, "README.md: expected the API, runtime and Guide examples"
    text = README.read_text(encoding="utf-8")
    assert "\n## Guide\n" in text


def test_readme_blocks_are_plain_scripts() -> None:
    """Each block parses as a script on its own: no top-level await, no syntax errors."""
    for line, source in readme_blocks():
        try:
            ast.parse(source, filename=f"README.md line {line}")
        except SyntaxError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"README.md python block at line {line} is not a valid script: {exc}")


def test_readme_python_blocks_run(served_dir: tuple[Path, str, list[str]], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    work, base_url, requested = served_dir
    _make_models(work)
    blocks = []
    (tmp_path / "blocks").mkdir()
    for index, (line, source) in enumerate(readme_blocks()):
        path = tmp_path / "blocks" / f"README_block_{index:02d}.py"
        path.write_text("\n" * (line - 1) + source.replace(FAKE_HOST, base_url), encoding="utf-8")
        blocks.append((line, str(path)))
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(json.dumps(blocks), encoding="utf-8")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = dict(os.environ)
    env["CARTON_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    for name in ("CARTON_ALLOW_PRIVATE_URLS", "CARTON_STRICT_DEVICE", "CARTON_URL_MAX_AGE"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, str(driver), str(blocks_file)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert output.count("README BLOCK OK:") == len(blocks), output[-6000:]
    assert (work / "doubler.carton").is_file() and (work / "small.carton").is_file()
    assert "/doubler.carton" in requested, "get_model_info did not read the archive over HTTP"
