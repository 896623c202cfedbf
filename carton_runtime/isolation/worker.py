"""The worker process: loads one model with one runner and serves the host's requests.

Started by :func:`carton_runtime.isolation.load_in_worker` as
``python -c <bootstrap> <socket fd> <runner ref>`` (the bootstrap drops the current directory
from ``sys.path`` and runs this module), or directly as
``python -m carton_runtime.isolation.worker FD RUNNER_REF``.  It imports the runner named by
``RUNNER_REF`` (``module:attr``), says hello, loads the model when asked and then answers
``infer`` and ``close`` requests until the host closes its end of the socket (see
``PROTOCOL.md``).  It stops by itself when the host goes away: the socket reaches EOF, and a
watchdog thread notices the parent process changing (a hung model cannot outlive its host).
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from typing import Any

from .protocol import PROTOCOL_VERSION, Channel, EncodeError, PeerRegions, ProtocolError, RegionPool, decode, default_spin_s, encode

#: How often the watchdog looks at the parent process (seconds).
PARENT_POLL_S = 0.5


def resolve_runner(ref: str) -> Any:
    """The runner ``module:attr`` names: an object with ``load``, a class (``instance()`` when
    it has one, else a new instance) or a factory returning a runner."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"a runner reference is 'module:attr', not {ref!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, type):
        factory = getattr(obj, "instance", None)
        return factory() if callable(factory) else obj()
    if hasattr(obj, "load") and hasattr(obj, "runner_name"):
        return obj
    if callable(obj):
        return obj()
    raise TypeError(f"{ref} is neither a runner, a runner class nor a factory")


def _error(exc: BaseException, default_code: str, prefix: str = "", *, show: bool = True) -> dict[str, Any]:
    """A reply for an exception: a Carton error keeps its code and message; any other gets
    ``default_code`` and ``prefix`` + its type and message (with ``show``, its traceback goes
    to stderr, which the host shows)."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    if isinstance(code, str) and code.startswith("E-") and isinstance(message, str):
        reply: dict[str, Any] = {"ok": False, "code": code, "message": message}
        for key in ("name", "member"):
            value = getattr(exc, key, None)
            if isinstance(value, str):
                reply[key] = value
        return reply
    if show:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return {"ok": False, "code": default_code, "message": f"{prefix}{type(exc).__name__}: {exc}"}


def _warnings(caught: list[warnings.WarningMessage]) -> list[list[str]]:
    return [[w.category.__name__, str(w.message)] for w in caught]


class Worker:
    """One model in this process, served over ``chan``."""

    def __init__(self, chan: Channel, runner_ref: str) -> None:
        self.chan = chan
        self.runner_ref = runner_ref
        self.runner: Any = None
        self.model: Any = None
        self.pool = RegionPool()
        self.peer = PeerRegions()

    def hello(self) -> bool:
        """Import the runner and describe it; False when it cannot be imported."""
        try:
            self.runner = resolve_runner(self.runner_ref)
            info = {
                "ok": True,
                "protocol": PROTOCOL_VERSION,
                "pid": os.getpid(),
                "runner_name": str(self.runner.runner_name),
                "framework_version": str(self.runner.framework_version),
                "runner_compat_version": int(self.runner.runner_compat_version),
                "python": ".".join(str(n) for n in sys.version_info[:3]),
                "executable": sys.executable,
            }
        except BaseException as exc:  # noqa: BLE001 - told to the host, which decides
            self.chan.send(_error(exc, "E-RUNTIME-RUNNER", f"cannot import the runner {self.runner_ref}: "))
            return False
        self.chan.send(info)
        return True

    def load(self, header: dict[str, Any]) -> bool:
        """Load the model as the host asks; False (after telling the host why) when that fails."""
        from ..devices import DeviceSpec
        from ..model_files import DirectoryModelFiles

        try:
            spec = header.get("device") or {}
            device = DeviceSpec(str(spec.get("kind", "default")), spec.get("index"), spec.get("uuid"))
            files = DirectoryModelFiles(_path(header["model_dir"]))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.model = self.runner.load(files, device=device, opts=dict(header.get("opts") or {}))
        except BaseException as exc:  # noqa: BLE001
            self.chan.send(_error(exc, "E-RUNTIME-RUNNER", "the runner could not load the model: "))
            return False
        self.chan.send({"ok": True, "device": str(getattr(self.model, "device", device)), "warnings": _warnings(caught)})
        return True

    def infer(self, header: dict[str, Any], payload: bytearray) -> None:
        """Run one inference and reply (outputs in this side's regions, errors coded)."""
        released = header.get("release")
        if released:
            self.pool.release(released)
        try:
            inputs = decode(header.get("tensors"), payload, self.peer)
        except ProtocolError as exc:
            self.chan.send({"ok": False, "code": "E-RUNTIME-INPUT", "message": f"bad request: {exc}"})
            return
        try:
            outputs = self.model.infer(inputs)
            del inputs
            encoded = encode(outputs, self.pool)
        except EncodeError as exc:
            self.chan.send({"ok": False, "code": "E-RUNTIME-OUTPUT", "message": f"output {exc.name!r}: {exc}", "name": exc.name})
            return
        except Exception as exc:  # noqa: BLE001 - E-RUNTIME-INFER, as in process
            self.chan.send(_error(exc, "E-RUNTIME-INFER", "the runner failed: ", show=False))
            return
        reply: dict[str, Any] = {"ok": True, "tensors": encoded.tensors}
        dropped = self.pool.take_dropped()
        if dropped:
            reply["drop"] = dropped
        if encoded.regions:
            reply["regions"] = encoded.regions
        self.chan.expect_quick = encoded.inline_only  # the host's next request comes soon after a small reply
        self.chan.send(reply, encoded.payload, encoded.fds)
        if encoded.regions:
            self.pool.mark_sent([rid for rid, _size in encoded.regions])

    def serve(self) -> None:
        """Answer requests until ``close`` or EOF."""
        if not self.hello():
            return
        while True:
            try:
                msg = self.chan.recv()
            except ProtocolError:
                return  # the host went away (or spoke nonsense): nothing to answer
            header = msg.header
            if msg.fds or "regions" in header:
                try:
                    self.peer.add(header.get("regions") or [], msg.fds)
                except ProtocolError as exc:
                    self.chan.send({"ok": False, "code": "E-RUNTIME-INPUT", "message": f"bad request: {exc}"})
                    continue
            if "drop" in header:
                self.peer.drop(header["drop"])
            op = header.get("op")
            if op == "infer" and self.model is not None:
                self.infer(header, msg.payload)
            elif op == "load" and self.model is None:
                if not self.load(header):
                    return
            elif op == "close":
                self.close()
                self.chan.send({"ok": True})
                return
            else:
                self.chan.send({"ok": False, "code": "E-RUNTIME-ARG", "message": f"unexpected request {op!r}"})

    def close(self) -> None:
        """Close the runner model (once)."""
        model, self.model = self.model, None
        if model is not None:
            try:
                model.close()
            except Exception:  # noqa: BLE001 - exiting anyway
                traceback.print_exc(file=sys.stderr)


def _path(value: Any) -> Any:
    from pathlib import Path

    if not isinstance(value, str):
        raise ValueError("model_dir must be a path string")
    return Path(value)


def _watch_parent(parent: int) -> None:
    """Exit at once when the parent process is gone (this process was re-parented)."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(70)


def main(argv: list[str]) -> int:
    """``worker FD RUNNER_REF [PARENT_PID]``."""
    if len(argv) < 2:
        print("usage: python -m carton_runtime.isolation.worker FD MODULE:ATTR [PARENT_PID]", file=sys.stderr)
        return 2
    fd, ref = int(argv[0]), argv[1]
    parent = int(argv[2]) if len(argv) > 2 else os.getppid()
    if os.getppid() != parent:
        return 70
    for extra in os.environ.pop("CARTON_WORKER_APPEND_PATH", "").split(os.pathsep):
        if extra and extra not in sys.path:
            sys.path.append(extra)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the host, which closes its workers
    faulthandler.enable()  # a crash prints the Python stack to stderr, which the host keeps
    threading.Thread(target=_watch_parent, args=(parent,), name="carton-parent-watch", daemon=True).start()
    sock = socket.socket(fileno=fd)
    worker = Worker(Channel(sock, default_spin_s()), ref)
    try:
        worker.serve()
    finally:
        worker.close()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
