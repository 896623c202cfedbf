"""The host side: start a worker process, load a model in it, run inferences through it.

A :class:`WorkerModel` is a runner model (``infer``/``close``) whose model lives in a worker
process (:mod:`carton_runtime.isolation.worker`), reached over a Unix socket pair with the
protocol of :mod:`carton_runtime.isolation.protocol`.  What the host promises:

* a worker that dies (segfault, ``os._exit``, ``abort``, the OOM killer) is
  ``E-RUNTIME-RUNNER-DIED`` naming its exit status or signal and its last lines of output
  (the worker's stdout and stderr go to the host's stderr, and the last lines are kept);
* a call that takes longer than ``call_timeout_s`` is ``E-RUNTIME-TIMEOUT`` and the worker is
  killed; either way the model is unusable afterwards and the host carries on (load again);
* an exception the model raises is the same ``E-RUNTIME-INFER`` (with the model's message) as
  in process, and the model stays usable;
* the worker stops on :meth:`WorkerModel.close`, when the model is garbage-collected, and when
  the host exits (normally: ``atexit``; killed: the worker sees its socket reach EOF, or its
  parent change).  Nothing is left behind: memfd regions have no names, and a dead process's
  regions go with their last mapping.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import carton_format as cf

from ..devices import DeviceSpec, parse_visible_device
from ..errors import RUNTIME_CODES, CartonRuntimeError
from .protocol import (
    PROTOCOL_VERSION,
    Channel,
    EncodeError,
    Message,
    PeerRegions,
    ProtocolError,
    RegionPool,
    decode,
    default_spin_s,
    encode,
    watch_release,
)

log = logging.getLogger(__name__)

#: Runs the worker module without the current directory on ``sys.path`` (a ``torch.py`` there
#: must not shadow the real one); works with any Python 3 interpreter.
BOOTSTRAP = (
    "import sys; del sys.path[0]; import runpy; "
    "runpy.run_module('carton_runtime.isolation.worker', run_name='__main__', alter_sys=True)"
)
#: How long a closing worker gets to exit before it is killed (seconds).
CLOSE_GRACE_S = 3.0
CLOSED = "the model was closed"
#: Lines of the worker's output kept for error messages.
TAIL_LINES = 20
TAIL_CHARS = 2000


class _Output:
    """Forwards the worker's output to this process's stderr, keeping its last lines."""

    def __init__(self, stream: Any, pid: int) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.fatal: str | None = None  # faulthandler's first line, which a long dump pushes out of the tail
        self._pid = pid
        self._thread = threading.Thread(target=self._pump, args=(stream,), name=f"carton-worker-{pid}-output", daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.tail.append(line)
                if line.startswith("Fatal Python error"):
                    self.fatal = line
                try:
                    sys.stderr.write(f"[carton worker {self._pid}] {line}\n")
                except (OSError, ValueError, AttributeError):  # stderr closed at shutdown
                    pass

    def last(self, wait_s: float = 1.0) -> str:
        """The last lines (after waiting a moment for a dead worker's last words)."""
        self._thread.join(wait_s)
        text = "\n".join(self.tail).strip()[-TAIL_CHARS:]
        if self.fatal is not None and self.fatal not in text:
            text = f"{self.fatal}\n...\n{text}"
        return text


#: What a worker whose interpreter lacks a module prints last before it exits.
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


def _exit_status(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (kill -9 from outside, or the out-of-memory killer?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}, exit status {code}"
    return f"exited with status {code}"


def _shutdown(proc: subprocess.Popen, sock: socket.socket, grace_s: float, temp_dir: str | None = None) -> None:
    """Stop a worker: closing the socket makes it exit; after ``grace_s`` it is killed; always
    reaped; then its private temporary directory goes, with what a worker that died left there."""
    try:
        _stop_process(proc, sock, grace_s)
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _stop_process(proc: subprocess.Popen, sock: socket.socket, grace_s: float) -> None:
    try:
        sock.close()
    except OSError:
        pass
    if proc.poll() is None:
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
        log.warning("worker process %d did not exit", proc.pid)


def _reply_error(header: dict[str, Any]) -> Exception:
    """The exception a failed reply stands for (codes outside the registry are wrapped)."""
    code = header.get("code")
    message = str(header.get("message", "the worker reported an error"))
    name = header.get("name") if isinstance(header.get("name"), str) else None
    member = header.get("member") if isinstance(header.get("member"), str) else None
    if code in RUNTIME_CODES:
        return CartonRuntimeError(code, message, name=name, member=member)
    if isinstance(code, str) and code in cf.CODES:
        return cf.CartonFormatError(code, message, member=member)
    return CartonRuntimeError("E-RUNTIME-RUNNER", f"the worker reported {code!r}: {message}")


def _reissue(header: dict[str, Any]) -> None:
    """Warnings the worker caught (a runner's option warnings), raised again here."""
    for item in header.get("warnings") or []:
        try:
            kind, text = item
        except (TypeError, ValueError):
            continue
        category = {"DeprecationWarning": DeprecationWarning, "UserWarning": UserWarning}.get(kind, RuntimeWarning)
        warnings.warn(f"(worker) {text}", category, stacklevel=4)


class WorkerModel:
    """A model loaded in a worker process (see the module docstring).  ``pid`` is the
    worker's, ``device`` what the runner model reported there (a string), and
    ``runner_name``, ``framework_version``, ``runner_compat_version`` what its runner says."""

    def __init__(
        self, proc: subprocess.Popen, sock: socket.socket, output: _Output, *, call_timeout_s: float | None, label: str,
        temp_dir: str | None = None,
    ) -> None:
        self._proc = proc
        self._sock = sock
        self._chan = Channel(sock, default_spin_s())
        self._output = output
        self._timeout = call_timeout_s
        self._lock = threading.Lock()
        self._pool = RegionPool()
        self._peer = PeerRegions()
        self._released: collections.deque[int] = collections.deque()
        self._gone: str | None = None  # why the worker cannot be used any more
        self.pid = proc.pid
        self.label = label
        self.device: str | None = None
        self.runner_name: str | None = None
        self.framework_version: str | None = None
        self.runner_compat_version: int | None = None
        self.python: str | None = None  # the worker's Python version (its hello)
        self.interpreter = str(proc.args[0]) if isinstance(proc.args, (list, tuple)) and proc.args else "python"
        self._finalizer = weakref.finalize(self, _shutdown, proc, sock, CLOSE_GRACE_S, temp_dir)

    def __repr__(self) -> str:
        return f"<WorkerModel {self.label} pid={self.pid}{' (gone)' if self._gone else ''}>"

    # -- calls --------------------------------------------------------------------------------

    def _call(
        self, what: str, header: dict[str, Any], timeout_s: float | None, payload: list[Any] | None = None, fds: list[int] | None = None,
        *, limit_s: float | None = None,
    ) -> Message:
        """Send a request and wait for its reply (the lock is held); death and timeouts become errors
        (``limit_s``: the limit the message names, when ``timeout_s`` is what is left of it)."""
        if self._gone is not None:
            raise self._gone_error()
        try:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            self._chan.send(header, payload, fds, deadline)
            msg = self._chan.recv(deadline)
        except TimeoutError:
            limit = limit_s if limit_s is not None else timeout_s
            self._kill(f"stopped after {what} took longer than {limit:g} s")
            raise CartonRuntimeError(
                "E-RUNTIME-TIMEOUT",
                f"{what} of {self.label} took longer than {limit:g} s; its worker process (pid {self.pid}) was stopped",
            ) from None
        except (OSError, ProtocolError) as exc:
            raise self._died(what, exc) from None
        except BaseException:  # KeyboardInterrupt mid-call: a reply may still come, so the channel is unusable
            self._kill(f"{what} was interrupted")
            raise
        header = msg.header
        if msg.fds or "regions" in header or "drop" in header:
            try:
                self._peer.add(header.get("regions") or [], msg.fds)
                self._peer.drop(header.get("drop"))
            except ProtocolError as exc:
                raise self._died(what, exc) from None
        if "warnings" in header:
            _reissue(header)
        return msg

    def _gone_error(self) -> CartonRuntimeError:
        if self._gone == CLOSED:
            return CartonRuntimeError("E-RUNTIME-CLOSED", "the model was closed")
        return CartonRuntimeError("E-RUNTIME-RUNNER-DIED", f"the worker process of {self.label} (pid {self.pid}) is gone: {self._gone}")

    def _died(self, what: str, exc: BaseException) -> CartonRuntimeError:
        eof = isinstance(exc, ProtocolError) and exc.eof or isinstance(exc, (ConnectionError, BrokenPipeError))
        if not eof:  # alive but talking nonsense: stopped
            self._kill(f"it broke the protocol ({exc})")
            status = f"it broke the protocol ({exc}) and was stopped"
        else:
            try:
                self._proc.wait(CLOSE_GRACE_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            status = _exit_status(self._proc.returncode)
            self._gone = f"it died before or during {what} ({status})"
            self._stop()
        last = self._output.last()
        missing = _MISSING_MODULE.search(last) if what == "start-up" else None
        if missing is not None:  # an interpreter without what the worker imports: say so in one line
            return CartonRuntimeError(
                "E-RUNTIME-ENV",
                f"the worker's Python ({self.interpreter}) cannot import {missing.group(1)!r}, which the worker needs: an environment "
                "given to load must have carton's dependencies (numpy, msgpack, zstandard, ...) and the runner's framework "
                "installed (environment='auto' provisions one)",
            )
        tail = f"; its last output:\n{last}" if last else ""
        message = f"the worker process of {self.label} (pid {self.pid}) died before or during {what}: {status}{tail}"
        return CartonRuntimeError("E-RUNTIME-RUNNER-DIED", message)

    def _kill(self, why: str) -> None:
        self._gone = why
        if self._proc.poll() is None:
            self._proc.kill()
        self._stop()

    def _stop(self) -> None:
        self._finalizer()  # closes the socket, reaps the process
        self._pool.close()
        self._peer.clear()

    # -- start-up -------------------------------------------------------------------------------

    def _hello(self, timeout_s: float | None) -> dict[str, Any]:
        try:
            msg = self._chan.recv(None if timeout_s is None else time.monotonic() + timeout_s)
        except TimeoutError:
            self._kill("it did not start in time")
            raise CartonRuntimeError("E-RUNTIME-TIMEOUT", f"the worker process of {self.label} did not start within {timeout_s:g} s") from None
        except (OSError, ProtocolError) as exc:
            raise self._died("start-up", exc) from None
        header = msg.header
        if not header.get("ok"):
            self._kill("its runner could not be imported")
            raise _reply_error(header)
        if header.get("protocol") != PROTOCOL_VERSION:
            self._kill("protocol mismatch")
            raise CartonRuntimeError(
                "E-RUNTIME-NO-RUNNER", f"the worker of {self.label} speaks protocol {header.get('protocol')!r}, not {PROTOCOL_VERSION}"
            )
        self.runner_name = str(header.get("runner_name"))
        self.framework_version = str(header.get("framework_version"))
        compat = header.get("runner_compat_version")
        self.runner_compat_version = compat if isinstance(compat, int) else None
        self.python = str(header.get("python"))
        return header

    def _check(self, require: cf.RunnerInfo) -> None:
        """E-RUNTIME-NO-RUNNER unless the worker's runner satisfies the model's runner table."""
        from ..registry import to_semver

        problems = []
        if self.runner_name != require.runner_name:
            problems.append(f"runner {self.runner_name!r}, not {require.runner_name!r}")
        try:
            if not cf.VersionReq.parse(require.required_framework_version).matches(to_semver(str(self.framework_version))):
                problems.append(f"framework version {self.framework_version}, which does not match {require.required_framework_version!r}")
        except cf.CartonFormatError:
            problems.append(f"an invalid framework version {self.framework_version!r}")
        if require.runner_compat_version is not None and self.runner_compat_version != require.runner_compat_version:
            problems.append(f"runner_compat_version {self.runner_compat_version}, not {require.runner_compat_version}")
        if problems:
            self._kill("its runner does not match the model")
            raise CartonRuntimeError(
                "E-RUNTIME-NO-RUNNER",
                f"No matching runner: the worker process for {self.label} (Python {self.python}) has {'; '.join(problems)}",
            )

    def _load(self, model_dir: Path, device: DeviceSpec, opts: dict[str, Any], timeout_s: float | None, limit_s: float | None) -> None:
        where = {"kind": device.kind, "index": device.index, "uuid": device.uuid}
        header = {"op": "load", "model_dir": str(model_dir), "device": where, "opts": opts}
        with self._lock:
            msg = self._call("start-up and load" if limit_s is not None else "load", header, timeout_s, limit_s=limit_s)
        if not msg.header.get("ok"):
            self._kill("the runner could not load the model")
            raise _reply_error(msg.header)
        self.device = str(msg.header.get("device"))

    # -- the runner model interface -------------------------------------------------------------------

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the model in the worker; outputs are numpy views of its shared memory (or of
        the reply, for small ones) that stay valid as long as they are referenced."""
        with self._lock:
            if self._gone is not None:
                raise self._gone_error()
            try:
                encoded = encode(inputs, self._pool)
            except EncodeError as exc:
                self._pool.release_all()
                raise CartonRuntimeError("E-RUNTIME-INPUT", f"input {exc.name!r}: {exc}" if exc.name else str(exc), name=exc.name or None) from None
            released = []
            while self._released:
                released.append(self._released.popleft())
            header: dict[str, Any] = {"op": "infer", "tensors": encoded.tensors}
            if released:
                header["release"] = released
            dropped = self._pool.take_dropped()
            if dropped:
                header["drop"] = dropped
            if encoded.regions:
                header["regions"] = encoded.regions
            self._chan.expect_quick = encoded.inline_only
            try:
                msg = self._call("infer", header, self._timeout, encoded.payload, encoded.fds)
                if encoded.regions:
                    self._pool.mark_sent([rid for rid, _size in encoded.regions])
            finally:
                if encoded.regions or encoded.tensors and self._pool.busy:
                    self._pool.release_all()  # the worker is done with the inputs (or gone)
            if not msg.header.get("ok"):
                raise _reply_error(msg.header)
            released_q = self._released
            try:
                return decode(msg.header.get("tensors"), msg.payload, self._peer, lambda view, rid: watch_release(view, rid, released_q))  # type: ignore[arg-type]
            except ProtocolError as exc:
                raise self._died("infer", exc) from None

    def input_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array in shared memory: filled and passed to :meth:`infer`, it reaches
        the worker without a copy (it stays valid, and is not reused, while it is referenced)."""
        with self._lock:
            return self._pool.lend(shape, dtype)

    def close(self) -> None:
        """Ask the worker to close the model and exit (killed if it does not within a few seconds)."""
        with self._lock:
            if self._gone is None:
                self._gone = CLOSED
                try:
                    deadline = time.monotonic() + CLOSE_GRACE_S
                    self._chan.send({"op": "close"}, deadline=deadline)
                    self._chan.recv(deadline)
                except (OSError, ProtocolError):
                    pass
            self._stop()

    @property
    def alive(self) -> bool:
        """Whether the worker process is running and usable."""
        return self._gone is None and self._proc.poll() is None


#: Environment defaults for workers (the host's environment, or ``env``, overrides them).
#: glibc's malloc maps every allocation over 32 MiB afresh and unmaps it when freed, so a model
#: whose outputs are that large pays a page fault per 4 KiB on every call (a 64 MiB ``x + 1``:
#: 27 ms with, 4 ms without).  A worker serves one model whose peak recurs on every call, so it
#: keeps freed memory for reuse (allocations up to 1 GiB from the heap, trimmed beyond 2 GiB
#: free): its resident size stays at the model's peak between calls.
WORKER_DEFAULTS = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 31)}

#: What the worker's temporary directory is named by (Python's tempfile, torch's C++, the C library).
TEMP_VARIABLES = ("TMPDIR", "TEMP", "TMP")

#: Directories the worker appends to its ``sys.path`` (``os.pathsep``-separated), after its own.
ENV_APPEND_PATH = "CARTON_WORKER_APPEND_PATH"


def _worker_env(python: str, sys_path: Sequence[str], env: Mapping[str, str] | None, append_sys_path: Sequence[str]) -> dict[str, str]:
    environ = dict(os.environ)
    # A venv's interpreter resolves to the same binary as the host's, so compare the paths as given:
    # only the host's own interpreter sees the host's import paths; another environment keeps its own.
    same_interpreter = os.path.abspath(python) == os.path.abspath(sys.executable)
    if not same_interpreter:
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            environ.pop(name, None)
    environ.update(env or {})
    for name, value in WORKER_DEFAULTS.items():
        environ.setdefault(name, value)
    environ[ENV_APPEND_PATH] = os.pathsep.join(str(p) for p in append_sys_path)
    paths = [str(p) for p in sys_path]
    if same_interpreter:
        here = str(Path(__file__).resolve().parents[2])  # where this carton_runtime lives (a checkout, say)
        paths.append(here)
    existing = environ.get("PYTHONPATH")
    if existing:
        paths.append(existing)
    if paths:
        environ["PYTHONPATH"] = os.pathsep.join(paths)
    return environ


def check_seconds(name: str, value: Any) -> None:
    """E-RUNTIME-ARG unless ``value`` is None or a positive number (a time limit)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{name} must be a positive number of seconds or None, not {value!r}", name=name)


def load_in_worker(
    runner_ref: str,
    model_dir: Path,
    *,
    device: DeviceSpec | str | None,
    opts: dict[str, Any],
    python: str | None = None,
    sys_path: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    call_timeout_s: float | None = None,
    require: cf.RunnerInfo | None = None,
    load_timeout_s: float | None = None,
    append_sys_path: Sequence[str] = (),
) -> WorkerModel:
    """Start a worker process with ``python`` (default: this interpreter), ``sys_path``
    prepended to its ``sys.path`` and ``env`` added to its environment; in it, load the model
    in ``model_dir`` with the runner ``runner_ref`` ("module:attr": a runner, a runner class or
    a factory) on ``device`` with ``opts``.  With ``require`` (the model's runner table), the
    worker's runner must satisfy it (``E-RUNTIME-NO-RUNNER`` otherwise).  ``call_timeout_s``
    limits each inference, ``load_timeout_s`` the start-up and the load (``E-RUNTIME-TIMEOUT``).
    ``append_sys_path`` goes at the end of the worker's ``sys.path``, after its standard library
    and site-packages (where the host's own extra directories belong: a script's directory
    must not shadow a module there)."""
    if not isinstance(runner_ref, str) or ":" not in runner_ref:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"runner_ref must be 'module:attr', not {runner_ref!r}")
    check_seconds("call_timeout_s", call_timeout_s)
    check_seconds("load_timeout_s", load_timeout_s)
    spec = parse_visible_device(device)
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CartonRuntimeError("E-RUNTIME-ARG", f"model_dir {model_dir} is not a directory")
    python = python or sys.executable
    # the worker's temporary files (torch's extracted libraries, a runner's scratch) go in a
    # directory the host removes once the worker is gone, however it ended
    temp_dir = tempfile.mkdtemp(prefix="carton-worker-")
    environ = _worker_env(python, sys_path, env, append_sys_path)
    environ.update({name: temp_dir for name in TEMP_VARIABLES})
    host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = subprocess.Popen(
            [python, "-c", BOOTSTRAP, str(child_sock.fileno()), runner_ref, str(os.getpid())],
            pass_fds=(child_sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    except OSError as exc:
        host_sock.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise CartonRuntimeError("E-RUNTIME-RUNNER", f"cannot start a worker process with {python}: {exc.strerror or exc}") from None
    finally:
        child_sock.close()
    label = f"runner {runner_ref}"
    model = WorkerModel(proc, host_sock, _Output(proc.stdout, proc.pid), call_timeout_s=call_timeout_s, label=label, temp_dir=temp_dir)
    started = time.monotonic()
    try:
        model._hello(load_timeout_s)
        model.label = f"runner {model.runner_name!r} ({runner_ref})"
        if require is not None:
            model._check(require)
        remaining = None if load_timeout_s is None else max(0.001, load_timeout_s - (time.monotonic() - started))
        model._load(model_dir, spec, dict(opts or {}), remaining, load_timeout_s)
    except BaseException:
        model._kill("its start failed")
        raise
    log.debug("%s loaded in worker process %d in %.2f s", model.label, model.pid, time.monotonic() - started)
    return model


__all__ = ["WorkerModel", "check_seconds", "load_in_worker"]
