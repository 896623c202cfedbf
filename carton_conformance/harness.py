"""Run the conformance cases against an adapter and judge the answers.

Library side of ``python -m carton_conformance run``: load cases, talk to the adapter (one-shot commands
or the persistent JSON-lines mode), compare, and write the text summary, report.json and JUnit.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent
CASES_DIR = PACKAGE / "cases"
REPO = PACKAGE.parent
KINDS = ("inspect", "versionreq", "infer", "verify")
DEFAULT_RTOL, DEFAULT_ATOL = 1e-3, 1e-7


# -- cases ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    kind: str
    description: str
    requirements: list[str]
    directory: Path
    doc: dict[str, Any]

    @property
    def expect(self) -> dict[str, Any]:
        return self.doc["expect"]

    @property
    def group(self) -> str:
        """The summary row: the first accepted error category, or what a passing answer is."""
        expect = self.expect
        if expect["result"] in ("invalid", "error", "not-verified"):
            return expect["categories"][0]
        return expect["result"]

    def path(self, key: str) -> str:
        return str(self.directory / self.doc[key])


def load_cases(root: Path = CASES_DIR) -> list[Case]:
    cases = []
    for toml_path in sorted(root.rglob("case.toml")):
        with open(toml_path, "rb") as f:
            doc = tomllib.load(f)
        case_id = toml_path.parent.relative_to(root).as_posix()
        if doc.get("id") != case_id:
            raise ValueError(f"{toml_path}: id {doc.get('id')!r} differs from its directory {case_id!r}")
        cases.append(Case(case_id, doc["kind"], doc["description"], list(doc["requirements"]), toml_path.parent, doc))
    return cases


def select(cases: list[Case], patterns: list[str] | None) -> list[Case]:
    if not patterns:
        return cases
    return [c for c in cases if any(fnmatch.fnmatchcase(c.id, p) or p in c.id for p in patterns)]


def load_known_failures(path: Path | None) -> dict[str, str]:
    """case id or glob -> reason, from a TOML file with a [known-failures] table."""
    if path is None:
        return {}
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    table = doc.get("known-failures", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ValueError(f"{path}: [known-failures] must map case ids (or globs) to reasons")
    return dict(table)


def known_reason(case_id: str, known: dict[str, str]) -> str | None:
    if case_id in known:
        return known[case_id]
    for pattern, reason in known.items():
        if fnmatch.fnmatchcase(case_id, pattern):
            return reason
    return None


# -- adapters -----------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What came back for one request: an answer (exit 0/1 and its JSON) or a failure."""

    status: str  # "answer" | "crash" | "timeout" | "protocol"
    exit: int | None = None
    result: Any = None
    detail: str = ""
    seconds: float = 0.0


def builtin_command() -> list[str]:
    return [sys.executable, "-m", "carton_conformance.adapters.builtin"]


def original_command() -> list[str]:
    python = os.environ.get("CARTON_ORIGINAL_PYTHON") or str(REPO / ".venv-original" / "bin" / "python")
    return [python, str(PACKAGE / "adapters" / "original.py")]


def adapter_command(spec: str) -> list[str]:
    if spec == "builtin":
        return builtin_command()
    if spec == "original":
        return original_command()
    return shlex.split(spec)


def _crash_kind(text: str) -> str:
    return "panic" if ("PanicException" in text or "panicked at" in text) else "crash"


class OneShot:
    """Runs ``CMD OP ARGS...`` per request: exit 0/1 with JSON on stdout; anything else is a crash."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None):
        self.command = command
        self.env = env

    def request(self, op: str, args: list[str], timeout: float) -> Reply:
        start = time.monotonic()
        try:
            proc = subprocess.run([*self.command, op, *args], capture_output=True, timeout=timeout, env=self.env,
                                  cwd=REPO, start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            return Reply("timeout", detail=f"no answer within {timeout:g} s; stderr: {_tail(exc.stderr)}", seconds=timeout)
        except OSError as exc:
            return Reply("crash", detail=f"cannot run adapter: {exc}")
        seconds = time.monotonic() - start
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode not in (0, 1):
            how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            return Reply(_crash_kind(stderr), proc.returncode, detail=f"{how}; stderr: {_tail(stderr)}", seconds=seconds)
        if "Traceback (most recent call last)" in stderr:
            return Reply("crash", proc.returncode, detail=f"traceback on stderr: {_tail(stderr)}", seconds=seconds)
        try:
            result = json.loads(proc.stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Reply("protocol", proc.returncode, detail=f"stdout is not one JSON value ({exc}): {_tail(proc.stdout)}", seconds=seconds)
        return Reply("answer", proc.returncode, result, seconds=seconds)

    def close(self) -> None:
        pass


class Persistent:
    """One long-lived ``CMD serve`` process speaking JSON lines; restarted after a crash or timeout."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None):
        self.command = command
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr_file: Any = None
        self.seq = 0
        self.restarts = 0

    def _start(self) -> None:
        self.stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this call: the served process writes its stderr here for its lifetime
        self.proc = subprocess.Popen([*self.command, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr_file, env=self.env, cwd=REPO, start_new_session=True)
        self.lines = queue.Queue()
        stdout = self.proc.stdout
        lines = self.lines

        def pump() -> None:
            assert stdout is not None
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def _stderr_from(self, offset: int) -> str:
        if self.stderr_file is None:
            return ""
        self.stderr_file.seek(offset)
        return self.stderr_file.read().decode("utf-8", "replace")

    def _kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None
            self.restarts += 1

    def request(self, op: str, payload: dict[str, Any], timeout: float) -> Reply:
        if self.proc is None or self.proc.poll() is not None:
            self._kill() if self.proc is not None else None
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self.seq += 1
        offset = self.stderr_file.seek(0, 2)
        start = time.monotonic()
        try:
            self.proc.stdin.write((json.dumps({"seq": self.seq, "op": op, **payload}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the process died: the reader sees EOF below
        deadline = start + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._kill()
                return Reply("timeout", detail=f"no answer within {timeout:g} s; stderr: {_tail(self._stderr_from(offset))}",
                             seconds=timeout)
            seconds = time.monotonic() - start
            if line is None:
                code = self.proc.wait()
                stderr = self._stderr_from(offset)
                self._kill()
                how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                return Reply(_crash_kind(stderr), detail=f"the adapter died ({how}); stderr: {_tail(stderr)}", seconds=seconds)
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                self._kill()
                return Reply("protocol", detail=f"not a JSON line: {_tail(line)}", seconds=seconds)
            if reply.get("seq") != self.seq:
                continue  # a late answer to a request that timed out
            stderr = self._stderr_from(offset)
            if reply.get("errored"):
                context = str(reply.get("context", ""))
                return Reply(_crash_kind(context + stderr), detail=_crash_detail(context, stderr), seconds=seconds)
            if reply.get("exit") not in (0, 1) or "result" not in reply:
                return Reply("protocol", detail=f"a reply needs exit 0 or 1 and a result: {_tail(line)}", seconds=seconds)
            if "Traceback (most recent call last)" in stderr:
                return Reply("crash", reply["exit"], detail=f"traceback on stderr: {_tail(stderr)}", seconds=seconds)
            return Reply("answer", reply["exit"], reply["result"], seconds=seconds)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"seq": 0, "op": "stop"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill() if self.proc is not None and self.proc.poll() is None else None
        self.proc = None


def _crash_detail(context: str, stderr: str) -> str:
    """The last line of a crash report, with a Rust panic's location and message when stderr has one."""
    lines = [ln.strip() for ln in context.strip().splitlines() if ln.strip()]
    detail = lines[-1] if lines else "errored"
    err = stderr.splitlines()
    for k, line in enumerate(err):
        if "panicked at" in line:
            message = line.strip()
            if k + 1 < len(err) and err[k + 1].strip() and not err[k + 1].startswith("note:"):
                message += " " + err[k + 1].strip()
            detail += f" [{message}]"
            break
    return f"errored: {detail}"


def _tail(text: str | bytes | None, n: int = 1500) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


class Adapter:
    """An adapter command, its capabilities, and how requests reach it."""

    def __init__(self, spec: str, *, persistent: bool | None = None, env: dict[str, str] | None = None):
        self.spec = spec
        self.command = adapter_command(spec)
        self.env = env
        reply = OneShot(self.command, env).request("capabilities", [], 120)
        if reply.status != "answer" or reply.exit != 0 or not isinstance(reply.result, dict):
            raise RuntimeError(f"`{shlex.join(self.command)} capabilities` failed: {reply.status} {reply.detail}")
        self.capabilities: dict[str, Any] = reply.result
        self.kinds = set(self.capabilities.get("kinds", []))
        self.features = set(self.capabilities.get("features", []))
        # the runners its infer supports; an adapter from before this field runs TorchScript only
        self.runners = set(self.capabilities.get("runners", ["torchscript"]))
        use_serve = bool(self.capabilities.get("persistent")) if persistent is None else persistent
        self.transport: OneShot | Persistent = Persistent(self.command, env) if use_serve else OneShot(self.command, env)

    @property
    def persistent(self) -> bool:
        return isinstance(self.transport, Persistent)

    def ask(self, case: Case, timeout: float) -> Reply:
        doc = case.doc
        if case.kind == "inspect":
            payload: dict[str, Any] = {"archive": case.path("archive")}
            if "limits" in doc:
                payload["limits"] = doc["limits"]
            args = [payload["archive"]] + ([json.dumps(doc["limits"])] if "limits" in doc else [])
        elif case.kind == "versionreq":
            payload = {"requirement": doc["requirement"], "version": doc["version"]}
            args = [doc["requirement"], doc["version"]]
        elif case.kind == "verify":
            payload = {"archive": case.path("archive"), "key": case.path("key")}
            args = [payload["archive"], payload["key"]]
        else:
            payload = {"archive": case.path("archive"), "inputs": case.path("inputs")}
            args = [payload["archive"], payload["inputs"]]
        if isinstance(self.transport, Persistent):
            return self.transport.request(case.kind, payload, timeout)
        return self.transport.request(case.kind, args, timeout)

    def close(self) -> None:
        self.transport.close()


# -- judging -------------------------------------------------------------------------------------------------


@dataclass
class Result:
    case: Case
    status: str  # passed | failed | skipped | known-failure | fixed
    reason: str = ""
    failure: str | None = None  # wrong-result | crash | panic | timeout | protocol
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    answer: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.case.id,
            "kind": self.case.kind,
            "group": self.case.group,
            "requirements": self.case.requirements,
            "status": self.status,
            "seconds": round(self.seconds, 4),
        }
        if self.failure:
            out["failure"] = self.failure
        if self.reason:
            out["reason"] = self.reason
        if self.notes:
            out["notes"] = self.notes
        if self.answer is not None and self.status in ("failed", "known-failure"):
            out["answer"] = _shorten(self.answer)
        return out


def _shorten(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False)
    return value if len(text) < 4000 else text[:4000] + "..."


class Mismatch(Exception):
    pass


def _float(v: Any) -> float:
    if isinstance(v, str):
        return float(v.lower())  # "nan", "inf", "-inf"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Mismatch(f"{v!r} is not a number")
    return float(v)


def _f32(x: float) -> float:
    """x rounded to the nearest float32 (what a float32 tensor holds)."""
    import struct

    if math.isnan(x) or math.isinf(x):
        return x
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _same_float(a: Any, b: Any, dtype: str) -> bool:
    x, y = _float(a), _float(b)
    if dtype == "float32":
        x, y = _f32(x), _f32(y)
    return (math.isnan(x) and math.isnan(y)) or x == y


def compare_tensor(expected: dict[str, Any], actual: Any, where: str, rtol: float | None = None, atol: float | None = None) -> None:
    """Exact dtype and shape; values exactly (or within rtol/atol for floats when given)."""
    if not isinstance(actual, dict):
        raise Mismatch(f"{where}: expected a tensor, got {actual!r}")
    if expected.get("dtype") == "nested":
        if actual.get("dtype") != "nested" or len(actual.get("inner", [])) != len(expected["inner"]):
            raise Mismatch(f"{where}: expected a nested tensor of {len(expected['inner'])} tensors, got {_brief(actual)}")
        for k, (e, a) in enumerate(zip(expected["inner"], actual["inner"])):
            compare_tensor(e, a, f"{where}.inner[{k}]", rtol, atol)
        return
    dtype = expected["dtype"]
    if actual.get("dtype") != dtype:
        raise Mismatch(f"{where}: dtype {actual.get('dtype')!r}, expected {dtype!r}")
    if list(actual.get("shape", [])) != list(expected["shape"]):
        raise Mismatch(f"{where}: shape {actual.get('shape')!r}, expected {expected['shape']!r}")
    ev, av = expected["values"], actual.get("values")
    if not isinstance(av, list) or len(av) != len(ev):
        raise Mismatch(f"{where}: {len(av) if isinstance(av, list) else av!r} values, expected {len(ev)}")
    for k, (e, a) in enumerate(zip(ev, av)):
        if dtype == "string":
            ok = isinstance(a, str) and a == e
        elif dtype.startswith("float"):
            ok = _same_float(e, a, dtype)
            if not ok and rtol is not None and atol is not None:
                x, y = _float(e), _float(a)
                ok = math.isfinite(x) and math.isfinite(y) and abs(y - x) <= atol + rtol * abs(x)
        else:
            ok = isinstance(a, int) and not isinstance(a, bool) and a == e
        if not ok:
            raise Mismatch(f"{where}: value [{k}] is {a!r}, expected {e!r}")


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) < 200 else text[:200] + "..."


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and "dtype" in value and ("values" in value or value.get("dtype") == "nested")


def compare_json(expected: Any, actual: Any, where: str = "") -> None:
    """Deep equality of normalised values: a key missing on one side equals null on the other,
    booleans are never numbers, tensors compare by dtype (float32 values after rounding)."""
    if _is_tensor(expected):
        compare_tensor(expected, actual, where or "value")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{where or 'value'}: expected a table, got {_brief(actual)}")
        if set(expected) == {"type", "value"} and expected.get("type") == "float":
            if actual.get("type") != "float" or not _same_float(expected["value"], actual.get("value"), "float64"):
                raise Mismatch(f"{where}: {_brief(actual)}, expected {_brief(expected)}")
            return
        for k in sorted(set(expected) | set(actual)):
            e, a = expected.get(k), actual.get(k)
            compare_json(e, a, f"{where}.{k}" if where else k)
        return
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise Mismatch(f"{where}: expected {len(expected)} items, got {_brief(actual)}")
        for k, (e, a) in enumerate(zip(expected, actual)):
            compare_json(e, a, f"{where}[{k}]")
        return
    if type(expected) is not type(actual) and not (isinstance(expected, (int, float)) and isinstance(actual, (int, float))
                                                   and not isinstance(expected, bool) and not isinstance(actual, bool)):
        raise Mismatch(f"{where}: {_brief(actual)}, expected {_brief(expected)}")
    if expected != actual:
        raise Mismatch(f"{where}: {_brief(actual)}, expected {_brief(expected)}")


def _errors(result: Any) -> list[dict[str, Any]]:
    errors = result.get("errors") if isinstance(result, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def judge_rejection(case: Case, reply: Reply, features: set[str], notes: list[str]) -> str | None:
    """None when the rejection is acceptable, else the reason it is not."""
    expect = case.expect
    errors = _errors(reply.result)
    if "error-categories" in features:
        categories = {e.get("category") for e in errors}
        if not categories & set(expect["categories"]):
            return f"rejected with categories {sorted(map(str, categories))}, expected one of {expect['categories']}"
    else:
        notes.append("error category not checked (the adapter does not report categories)")
    if "error-codes" in features and expect.get("codes"):
        codes = {e.get("code") for e in errors}
        if not codes & set(expect["codes"]):
            notes.append(f"codes {sorted(map(str, codes))} differ from the usual {expect['codes']} (not a failure)")
    return None


def judge_verify(case: Case, reply: Reply, features: set[str], notes: list[str]) -> tuple[str, str, str | None, list[str]]:
    """A verify answer: exit 0 with ``verified`` true and the expected model id, or exit 1 with an
    accepted category (spec section 18, FMT-SIG-7)."""
    expect, result = case.expect, reply.result
    if expect["result"] == "not-verified":
        if reply.exit == 0:
            return "failed", f"verified an archive that must not verify: {_brief(result)}", "wrong-result", notes
        why = judge_rejection(case, reply, features, notes)
        return ("failed", why, "wrong-result", notes) if why else ("passed", "", None, notes)
    if reply.exit == 1:
        return "failed", f"not verified: {_brief(_errors(result))}", "wrong-result", notes
    if result.get("verified") is not True:
        return "failed", f"verified is {result.get('verified')!r} with exit 0", "protocol", notes
    if result.get("manifest_sha256") != expect["manifest_sha256"]:
        return "failed", f"manifest_sha256 {result.get('manifest_sha256')!r}, expected {expect['manifest_sha256']!r}", "wrong-result", notes
    return "passed", "", None, notes


def judge(case: Case, reply: Reply, features: set[str]) -> tuple[str, str, str | None, list[str]]:
    """(status, reason, failure kind, notes) for one answered case."""
    notes: list[str] = []
    if reply.status != "answer":
        return "failed", reply.detail, reply.status, notes
    expect = case.expect
    result = reply.result
    wanted = expect["result"]
    try:
        if case.kind == "inspect":
            if wanted == "invalid":
                if reply.exit == 0:
                    return "failed", "accepted an invalid archive", "wrong-result", notes
                why = judge_rejection(case, reply, features, notes)
                return ("failed", why, "wrong-result", notes) if why else ("passed", "", None, notes)
            if reply.exit == 1:
                return "failed", f"rejected a valid archive: {_brief(_errors(result))}", "wrong-result", notes
            with open(case.directory / expect["output"], encoding="utf-8") as f:
                expected = json.load(f)
            compare_json(expected["info"], result.get("info"), "info")
            if "manifest" in features:
                if result.get("manifest") != expected["manifest"]:
                    raise Mismatch(f"manifest: {_brief(result.get('manifest'))}, expected {_brief(expected['manifest'])}")
                if result.get("manifest_sha256") != expected["manifest_sha256"]:
                    raise Mismatch(f"manifest_sha256: {result.get('manifest_sha256')!r}, expected {expected['manifest_sha256']!r}")
            else:
                notes.append("manifest not checked")
            if "warnings" in features:
                got = set(result.get("warnings") or [])
                need = set(expect.get("warnings", []))
                allowed = need | set(expect.get("may_warn", []))
                if not need <= got:
                    raise Mismatch(f"warnings {sorted(got)} lack {sorted(need - got)}")
                if not got <= allowed:
                    raise Mismatch(f"unexpected warnings {sorted(got - allowed)}")
            return "passed", "", None, notes
        if case.kind == "versionreq":
            if wanted == "invalid":
                if reply.exit == 0:
                    return "failed", f"accepted an invalid requirement: {_brief(result)}", "wrong-result", notes
                why = judge_rejection(case, reply, features, notes)
                return ("failed", why, "wrong-result", notes) if why else ("passed", "", None, notes)
            if reply.exit == 1:
                return "failed", f"rejected a valid requirement: {_brief(_errors(result))}", "wrong-result", notes
            matches = result.get("matches")
            if matches is not (wanted == "match"):
                return "failed", f"matches is {matches!r}, expected {wanted == 'match'}", "wrong-result", notes
            if "normalized" in expect and "normalized-versionreq" in features and result.get("normalized") != expect["normalized"]:
                return "failed", f"normalized form {result.get('normalized')!r}, expected {expect['normalized']!r}", "wrong-result", notes
            return "passed", "", None, notes
        if case.kind == "verify":
            return judge_verify(case, reply, features, notes)
        # infer
        if wanted == "error":
            if reply.exit == 0:
                return "failed", "inference succeeded where it must fail", "wrong-result", notes
            why = judge_rejection(case, reply, features, notes)
            return ("failed", why, "wrong-result", notes) if why else ("passed", "", None, notes)
        if reply.exit == 1:
            return "failed", f"inference failed: {_brief(_errors(result))}", "wrong-result", notes
        with open(case.directory / expect["output"], encoding="utf-8") as f:
            expected = json.load(f)["outputs"]
        outputs = result.get("outputs")
        if not isinstance(outputs, dict) or set(outputs) != set(expected):
            got = sorted(outputs) if isinstance(outputs, dict) else outputs
            raise Mismatch(f"outputs {got}, expected {sorted(expected)}")
        rtol, atol = expect.get("rtol", DEFAULT_RTOL), expect.get("atol", DEFAULT_ATOL)
        for name in sorted(expected):
            compare_tensor(expected[name], outputs[name], f"outputs.{name}", rtol, atol)
        return "passed", "", None, notes
    except Mismatch as exc:
        return "failed", str(exc), "wrong-result", notes
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return "failed", f"malformed answer ({type(exc).__name__}: {exc})", "protocol", notes


# -- running ---------------------------------------------------------------------------------------------------


@dataclass
class Run:
    adapter: dict[str, Any]
    results: list[Result]
    seconds: float

    def totals(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "skipped": 0, "known_failures": 0, "fixed": 0}
        for r in self.results:
            key = {"known-failure": "known_failures"}.get(r.status, r.status)
            counts[key] += 1
        return counts

    def unexpected(self, strict: bool = False) -> list[Result]:
        return [r for r in self.results if r.status == "failed" or (strict and r.status == "fixed")]

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": "carton-conformance",
            "protocol": 1,
            "adapter": self.adapter,
            "seconds": round(self.seconds, 2),
            "totals": self.totals(),
            "summary": summary_rows(self.results),
            "cases": [r.to_json() for r in self.results],
        }


class LoopbackServer:
    """Serves the cases directory on the fixed loopback port for cases that require ``fetch``.

    ``GET /<path>`` answers the file ``<cases>/<path>``; the JSON file ``<path>.http.json``, when it
    exists, gives the status and extra headers (e.g. ``{"status": 200, "headers":
    {"Content-Encoding": "gzip"}}`` for a body stored gzip-encoded).
    """

    def __init__(self, root: Path = CASES_DIR):
        self.root = root.resolve()
        self.server: Any = None

    def start(self) -> str | None:
        """None when serving, else why not."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import unquote, urlsplit

        from .constants import HTTP_SUFFIX, LOOPBACK_PORT

        root = self.root

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                rel = unquote(urlsplit(self.path).path).lstrip("/")
                target = (root / rel).resolve()
                status, headers, body = 404, {}, b"not found\n"
                if target.is_relative_to(root) and target.is_file() and not target.name.endswith(HTTP_SUFFIX):
                    status, body = 200, target.read_bytes()
                    sidecar = target.with_name(target.name + HTTP_SUFFIX)
                    if sidecar.is_file():
                        meta = json.loads(sidecar.read_text(encoding="utf-8"))
                        status, headers = int(meta.get("status", 200)), dict(meta.get("headers", {}))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", LOOPBACK_PORT), Handler)
        except OSError as exc:
            return f"cannot serve on 127.0.0.1:{LOOPBACK_PORT} ({exc.strerror or exc})"
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def skip_reason(case: Case, adapter: Adapter) -> str | None:
    if case.kind not in adapter.kinds:
        return f"the adapter does not support the {case.kind} kind"
    missing = [r for r in case.doc.get("requires", []) if r not in adapter.features]
    if missing:
        return f"the adapter lacks the feature(s) {', '.join(missing)}"
    runner = case.doc.get("runner")
    if case.kind == "infer" and runner is not None and runner not in adapter.runners:
        return f"unsupported runner: the adapter does not run {runner!r} models (it declares {', '.join(sorted(adapter.runners))})"
    return None


def run_cases(cases: list[Case], adapter: Adapter, *, timeout: float = 20.0, known: dict[str, str] | None = None,
              progress: Any = None) -> Run:
    known = known or {}
    results = []
    start = time.monotonic()
    server = None
    server_problem = None
    if any("fetch" in c.doc.get("requires", []) and skip_reason(c, adapter) is None for c in cases):
        server = LoopbackServer(cases[0].directory.parents[len(Path(cases[0].id).parts) - 1])
        server_problem = server.start()
    try:
        results = _run_each(cases, adapter, timeout, known, progress, server_problem)
    finally:
        if server is not None:
            server.stop()
    info = {"command": shlex.join(adapter.command), "persistent": adapter.persistent, **adapter.capabilities}
    if isinstance(adapter.transport, Persistent):
        info["restarts"] = adapter.transport.restarts
    return Run(info, results, time.monotonic() - start)


def _run_each(cases: list[Case], adapter: Adapter, timeout: float, known: dict[str, str], progress: Any,
              server_problem: str | None) -> list[Result]:
    results: list[Result] = []
    for case in cases:
        why = skip_reason(case, adapter)
        if why is None and server_problem and "fetch" in case.doc.get("requires", []):
            why = server_problem
        if why:
            results.append(Result(case, "skipped", why))
            if progress:
                progress(results[-1])
            continue
        limit = timeout * 3 if case.kind == "infer" else timeout
        reply = adapter.ask(case, limit)
        status, reason, failure, notes = judge(case, reply, adapter.features)
        known_why = known_reason(case.id, known)
        if known_why is not None:
            if status == "failed":
                status = "known-failure"
                notes.append(f"known failure: {known_why}")
            elif status == "passed":
                status = "fixed"
                notes.append(f"listed as a known failure ({known_why}) but passed")
        results.append(Result(case, status, reason, failure, notes, reply.seconds, reply.result if status != "passed" else None))
        if progress:
            progress(results[-1])
    return results


def summary_rows(results: list[Result]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault((r.case.kind, r.case.group), {
            "kind": r.case.kind, "group": r.case.group, "cases": 0, "passed": 0, "failed": 0, "panic": 0, "crash": 0,
            "timeout": 0, "known_failures": 0, "fixed": 0, "skipped": 0,
        })
        row["cases"] += 1
        if r.status == "passed":
            row["passed"] += 1
        elif r.status == "skipped":
            row["skipped"] += 1
        elif r.status == "fixed":
            row["fixed"] += 1
        else:
            row["known_failures" if r.status == "known-failure" else "failed"] += 1
            if r.failure in ("panic", "crash", "timeout"):
                row[r.failure] += 1
    order = {k: i for i, k in enumerate(KINDS)}
    passing = ("valid", "ok", "match", "nomatch", "verified")
    return sorted(rows.values(), key=lambda x: (order.get(x["kind"], 9), x["group"] in passing and 0 or 1, x["group"]))


def format_summary(run: Run, strict: bool = False) -> str:
    lines = [f"adapter: {run.adapter.get('name', '?')} {run.adapter.get('version', '')} ({run.adapter['command']})".rstrip()]
    header = f"{'kind':<11} {'group':<12} {'cases':>5} {'pass':>5} {'fail':>5} {'panic':>5} {'crash':>5} {'t/o':>5} {'known':>5} {'skip':>5}"
    lines += [header, "-" * len(header)]
    for row in summary_rows(run.results):
        lines.append(f"{row['kind']:<11} {row['group']:<12} {row['cases']:>5} {row['passed']:>5} "
                     f"{row['failed'] + row['known_failures']:>5} {row['panic']:>5} {row['crash']:>5} {row['timeout']:>5} "
                     f"{row['known_failures']:>5} {row['skipped']:>5}")
    t = run.totals()
    lines.append("-" * len(header))
    unexpected = run.unexpected(strict)
    for r in unexpected[:50]:
        lines.append(f"FAIL {r.case.id}: [{r.failure or 'fixed'}] {r.reason or '; '.join(r.notes)}"[:400])
    if len(unexpected) > 50:
        lines.append(f"... and {len(unexpected) - 50} more (see --report)")
    lines.append(f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped, {t['known_failures']} known failures, "
                 f"{t['fixed']} fixed, in {run.seconds:.1f} s")
    return "\n".join(lines)


def format_markdown(run: Run) -> str:
    """The summary as a Markdown table (for publishing results)."""
    lines = ["| kind | group | cases | pass | fail | of which panic | crash | timeout | skipped |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in summary_rows(run.results):
        lines.append(f"| {row['kind']} | {row['group']} | {row['cases']} | {row['passed'] + row['fixed']} | "
                     f"{row['failed'] + row['known_failures']} | {row['panic']} | {row['crash']} | {row['timeout']} | {row['skipped']} |")
    t = run.totals()
    fails = t["failed"] + t["known_failures"]
    panics = sum(r.failure == "panic" for r in run.results)
    lines.append(f"| **all** | | **{len(run.results)}** | **{t['passed'] + t['fixed']}** | **{fails}** | **{panics}** | "
                 f"**{sum(r.failure == 'crash' for r in run.results)}** | **{sum(r.failure == 'timeout' for r in run.results)}** | "
                 f"**{t['skipped']}** |")
    return "\n".join(lines) + "\n"


def known_failures_toml(run: Run) -> str:
    """A --known-failures file listing every case that failed (or was a known failure) in ``run``."""
    lines = [
        f"# Known failures of {run.adapter.get('name', '?')} {run.adapter.get('version', '')}".rstrip(),
        "# (python -m carton_conformance run --write-known-failures); case id = failure kind and reason.",
        "",
        "[known-failures]",
    ]
    for r in run.results:
        if r.status not in ("failed", "known-failure"):
            continue
        reason = r.reason
        if r.status == "known-failure":
            reason = next((n[len("known failure: "):] for n in r.notes if n.startswith("known failure: ")), reason)
        elif r.failure and r.failure != "wrong-result":
            reason = f"{r.failure}: {reason}"
        reason = " ".join(reason.split())
        if "panicked at " in reason:  # keep the Rust panic's location and message
            where = reason.split("panicked at ", 1)[1].rstrip("]")
            where = re.sub(r"^/app/source/|^/root/\.cargo/registry/src/[^/]+/", "", where)
            reason = f"panic at {where}"
        if len(reason) > 200:
            reason = reason[:197] + "..."
        lines.append(f"{json.dumps(r.case.id)} = {json.dumps(reason, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def write_junit(run: Run, path: Path) -> None:
    from xml.sax.saxutils import escape, quoteattr

    by_kind: dict[str, list[Result]] = {}
    for r in run.results:
        by_kind.setdefault(r.case.kind, []).append(r)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<testsuites name="carton-conformance" time="{run.seconds:.3f}">']
    for kind, results in by_kind.items():
        fails = sum(r.status == "failed" for r in results)
        skips = sum(r.status in ("skipped", "known-failure") for r in results)
        out.append(f'  <testsuite name="{kind}" tests="{len(results)}" failures="{fails}" skipped="{skips}">')
        for r in results:
            attrs = f'classname={quoteattr(f"{kind}.{r.case.group}")} name={quoteattr(r.case.id)} time="{r.seconds:.4f}"'
            if r.status == "passed":
                out.append(f"    <testcase {attrs}/>")
            elif r.status in ("skipped", "known-failure", "fixed"):
                message = r.reason if r.status == "skipped" else "; ".join(r.notes)
                tag = "skipped" if r.status != "fixed" else "system-out"
                out.append(f"    <testcase {attrs}><{tag} message={quoteattr(message[:1000])}/></testcase>"
                           if tag == "skipped" else f"    <testcase {attrs}><system-out>{escape(message)}</system-out></testcase>")
            else:
                out.append(f"    <testcase {attrs}><failure type={quoteattr(r.failure or 'failure')} "
                           f"message={quoteattr(r.reason[:1000])}>{escape(r.case.description)}</failure></testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


# -- requirement coverage ---------------------------------------------------------------------------------------

REQUIREMENT_RE = re.compile(r"^- \*\*(FMT-[A-Z]+-\d+)\*\*", re.MULTILINE)


def spec_requirements(spec: Path = REPO / "spec" / "format-v1.md") -> list[str]:
    return REQUIREMENT_RE.findall(spec.read_text(encoding="utf-8"))


def coverage(cases: list[Case], spec: Path = REPO / "spec" / "format-v1.md") -> dict[str, list[str]]:
    """requirement id -> ids of the cases citing it (every id of the spec, in spec order)."""
    out: dict[str, list[str]] = {req: [] for req in spec_requirements(spec)}
    for case in cases:
        for req in case.requirements:
            out.setdefault(req, []).append(case.id)
    return out

__all__ = [
    "CASES_DIR",
    "KINDS",
    "PACKAGE",
    "REPO",
    "REQUIREMENT_RE",
    "Adapter",
    "Case",
    "LoopbackServer",
    "Mismatch",
    "OneShot",
    "Persistent",
    "Reply",
    "Result",
    "Run",
    "adapter_command",
    "builtin_command",
    "compare_json",
    "compare_tensor",
    "coverage",
    "format_markdown",
    "format_summary",
    "judge",
    "judge_rejection",
    "known_failures_toml",
    "known_reason",
    "load_cases",
    "load_known_failures",
    "original_command",
    "run_cases",
    "select",
    "skip_reason",
    "spec_requirements",
    "summary_rows",
    "write_junit",
]
