"""carton_runtime.utils.hf.get_linked_files against a real fake Hugging Face Hub on 127.0.0.1.

The fake hub answers the two endpoints ``HfApi().repo_info(..., files_metadata=True)`` calls
(``GET /api/models/{repo}`` for the default branch, ``/api/models/{repo}/revision/{rev}``, with
``blobs=True``) and the ``/{repo}/resolve/{commit}/{file}`` URLs ``hf_hub_url`` builds, so
packing with the mapping and loading the archive run fully offline.

huggingface_hub reads HF_ENDPOINT once, at import, into ``constants.ENDPOINT`` (and
``constants.HUGGINGFACE_CO_URL_TEMPLATE``): in-process tests set the variable AND patch both
constants with monkeypatch (undone after each test); one test runs the call in a fresh
interpreter that sees only the variable, so the import-time path is covered as users hit it.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import carton_format as cf
import carton_runtime.sync as carton_sync
from carton_runtime import CartonRuntimeError

from .conftest import ORIGINAL_MODEL, ROOT, pack_original
from .test_api import INPUTS, check_outputs

pytest.importorskip("huggingface_hub")

from carton_runtime.utils.hf import get_linked_files  # imports huggingface_hub only when called

REPO = "acme/doubler"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
V1_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
MODEL = ORIGINAL_MODEL.read_bytes()
WEIGHTS = b"weights " * 512
MODEL_SHA = hashlib.sha256(MODEL).hexdigest()
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()
# rfilename -> (content, stored in LFS?)
FILES = {
    "model.pt": (MODEL, True),
    "copies/model.pt": (MODEL, True),  # same content: grouped under one sha256
    "weights.bin": (WEIGHTS, True),
    "config.json": (b'{"a": 1}', False),
    "README.md": (b"# doubler", False),
}


@dataclass
class FakeHub:
    base: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self, prefix: str) -> list[str]:
        with self.lock:
            return [p for _m, p in self.requests if p.startswith(prefix)]


def _sibling(name: str, content: bytes, lfs: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"rfilename": name, "size": len(content), "blobId": hashlib.sha1(content).hexdigest()}
    if lfs:
        entry["lfs"] = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
    return entry


def _model_info(commit: str) -> dict[str, Any]:
    return {"id": REPO, "modelId": REPO, "sha": commit, "private": False, "tags": [],
            "siblings": [_sibling(name, data, lfs) for name, data, lfs in ((n, d, f) for n, (d, f) in FILES.items())]}


def _handler(hub: FakeHub) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, *, head: bool = False) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, status: int, code: str | None, message: str, head: bool = False) -> None:
            headers = {"Content-Type": "application/json", "X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, json.dumps({"error": message}).encode(), headers, head=head)

        def _answer(self, head: bool) -> None:
            with hub.lock:
                hub.requests.append((self.command, self.path))
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            if path == "/api/models/acme/broken":
                return self._error(500, None, "Internal Error - the fake hub is down", head)
            if path == "/api/models/acme/badlfs":  # an LFS entry whose sha256 is no sha256
                sibling = {"rfilename": "model.pt", "size": 3, "lfs": {"sha256": "../../etc", "size": 3, "pointerSize": 134}}
                body = {"id": "acme/badlfs", "sha": COMMIT, "siblings": [sibling]}
                return self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head=head)
            if path == "/api/models/acme/nosha":
                return self._send(200, json.dumps({"id": "acme/nosha", "siblings": []}).encode(), {"Content-Type": "application/json"}, head=head)
            api = f"/api/models/{REPO}"
            if path == api or path == f"{api}/revision/main":
                return self._send(200, json.dumps(_model_info(COMMIT)).encode(), {"Content-Type": "application/json"}, head=head)
            if path == f"{api}/revision/v1":
                return self._send(200, json.dumps(_model_info(V1_COMMIT)).encode(), {"Content-Type": "application/json"}, head=head)
            if path.startswith(f"{api}/revision/"):
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {path.rsplit('/', 1)[1]}", head)
            if path.startswith("/api/models/"):
                return self._error(404, "RepoNotFound", "Repository not found", head)
            prefix = f"/{REPO}/resolve/{COMMIT}/"
            if path.startswith(prefix) and path[len(prefix):] in FILES:
                return self._send(200, FILES[path[len(prefix):]][0], {"Content-Type": "application/octet-stream"}, head=head)
            return self._error(404, "EntryNotFound", "Entry not found", head)

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

    return Handler


@pytest.fixture(scope="module")
def hub() -> Any:
    state = FakeHub()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _point_hub_at(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """HF_ENDPOINT as a user sets it, and the constants huggingface_hub computed from it at import."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture
def at_hub(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    _point_hub_at(monkeypatch, hub.base)
    with hub.lock:
        hub.requests.clear()
    return hub


def expected_mapping(base: str, commit: str = COMMIT) -> dict[str, list[str]]:
    url = f"{base}/{REPO}/resolve/{commit}/"
    return {MODEL_SHA: [url + "model.pt", url + "copies/model.pt"], WEIGHTS_SHA: [url + "weights.bin"]}


def test_lfs_files_grouped_by_sha256_and_pinned_to_the_commit(at_hub: FakeHub) -> None:
    assert get_linked_files(REPO, None) == expected_mapping(at_hub.base)  # LFS files only
    assert at_hub.paths("/api/models/") == [f"/api/models/{REPO}?blobs=true"]  # None: the default branch
    mapping = get_linked_files(REPO, "v1")
    assert mapping == expected_mapping(at_hub.base, V1_COMMIT)  # the commit of the answer, not "v1"
    assert at_hub.paths("/api/models/")[-1] == f"/api/models/{REPO}/revision/v1?blobs=true"


def test_hub_failures_are_coded_errors_with_the_hubs_message(at_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (lambda: get_linked_files("not//valid", None), "E-RUNTIME-ARG", "repo"),  # refused before any request
        (lambda: get_linked_files(42, None), "E-RUNTIME-ARG", "repo_id"),  # type: ignore[arg-type]
        (lambda: get_linked_files(REPO, 3), "E-RUNTIME-ARG", "revision"),  # type: ignore[arg-type]
        (lambda: get_linked_files("acme/missing", None), "E-RUNTIME-HTTP", "Repository Not Found"),
        (lambda: get_linked_files(REPO, "nope"), "E-RUNTIME-HTTP", "Invalid rev id: nope"),
        (lambda: get_linked_files("acme/broken", None), "E-RUNTIME-HTTP", "the fake hub is down"),
        (lambda: get_linked_files("acme/nosha", None), "E-RUNTIME-HTTP", "no commit sha"),
    ]
    for call, code, text in cases:
        with pytest.raises(CartonRuntimeError) as err:
            call()
        assert err.value.code == code and text in err.value.message, (code, text, err.value)
    assert not any("not//valid" in p for p in at_hub.paths("/"))
    with socket_closed_port() as port:
        _point_hub_at(monkeypatch, f"http://127.0.0.1:{port}")
        with pytest.raises(CartonRuntimeError) as err:
            get_linked_files(REPO, None)
    assert err.value.code == "E-RUNTIME-HTTP" and REPO in err.value.message


class socket_closed_port:  # noqa: N801 - reads as a context manager
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        pass


def test_hf_endpoint_from_the_environment_in_a_fresh_interpreter(hub: FakeHub, tmp_path: Path) -> None:
    """No patching: HF_ENDPOINT is read when huggingface_hub is imported, as for a user."""
    code = "import json; from carton_runtime.utils.hf import get_linked_files as g; print(json.dumps(g(%r, None)))" % REPO
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.base,
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == expected_mapping(hub.base)


def test_missing_huggingface_hub_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['huggingface_hub'] = None\n"  # what an environment without the extra sees
        "from carton_runtime.utils.hf import get_linked_files\n"
        "try:\n    get_linked_files('acme/doubler', None)\n"
        "except Exception as exc:\n    print(exc.code, exc.message, sep='|')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code_, message = proc.stdout.strip().split("|", 1)
    assert code_ == "E-RUNTIME-ARG" and "pip install 'carton-py[hf]'" in message


def test_packed_with_the_mapping_loads_and_runs_from_the_hub(at_hub: FakeHub, tmp_path: Path) -> None:
    """End to end, offline: pack with get_linked_files' result, then load fetches model.pt from the
    URL hf_hub_url built (the fake hub's resolve endpoint), verified against MANIFEST."""
    mapping = get_linked_files(REPO, None)
    path = pack_original(tmp_path / "hf.carton", linked_files=mapping)
    with cf.read(path, verify_hashes=False) as archive:
        assert archive.source.member("model/model.pt") is None  # left out of the zip
        assert archive.linked_urls("model/model.pt") == mapping[MODEL_SHA]
        assert archive.links is not None and set(archive.links.urls) == {MODEL_SHA}  # only files left out are linked
    model = carton_sync.load(path)
    check_outputs(model.infer(INPUTS))
    assert at_hub.paths(f"/{REPO}/resolve/{COMMIT}/model.pt")  # fetched from the hub's first URL
    assert not at_hub.paths(f"/{REPO}/resolve/{COMMIT}/copies/")


def test_a_hub_answer_with_a_bad_lfs_sha256_is_refused(at_hub: FakeHub) -> None:
    with pytest.raises(CartonRuntimeError) as err:
        get_linked_files("acme/badlfs", None)
    assert err.value.code == "E-RUNTIME-HTTP" and "valid name or sha256" in err.value.message
