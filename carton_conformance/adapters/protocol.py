"""The adapter side of the conformance protocol, for adapters written in Python (stdlib only).

An adapter implements a handler with four (or five) methods and calls :func:`main`:

    capabilities()                     -> dict
    inspect(archive, limits)           -> (exit, result)    exit 0: accepted, 1: rejected
    versionreq(requirement, version)   -> (exit, result)
    infer(archive, inputs_document)    -> (exit, result)
    verify(archive, public_key_path)   -> (exit, result)    optional: only with the "verify" kind

:func:`main` gives the one-shot commands (``ADAPTER inspect ARCHIVE [LIMITS_JSON]``, ...) and the
persistent JSON-lines mode (``ADAPTER serve``).  See carton_conformance/README.md for the protocol and
carton_conformance/schemas/conformance-adapter.schema.json for every message.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Callable

PROTOCOL = 1


def tensor_json(value: Any) -> dict[str, Any]:
    """A tensor in the protocol's JSON form (dtype, shape, flat values; non-finite floats as
    strings).  Shared by every Python adapter; numpy is imported only when a tensor is shown."""
    import numpy as np

    array = np.asarray(value)
    flat = array.reshape(-1)
    if array.dtype.kind in "UO":
        return {"dtype": "string", "shape": list(array.shape), "values": [str(x) for x in flat]}
    if array.dtype.kind == "f":
        values = [float(x) if np.isfinite(x) else str(float(x)) for x in flat]
    else:
        values = [int(x) for x in flat]
    return {"dtype": array.dtype.name, "shape": list(array.shape), "values": values}


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dispatch(handler: Any, op: str, request: dict[str, Any]) -> tuple[int, Any]:
    if op == "capabilities":
        return 0, handler.capabilities()
    if op == "inspect":
        return handler.inspect(request["archive"], request.get("limits"))
    if op == "versionreq":
        return handler.versionreq(request["requirement"], request["version"])
    if op == "infer":
        with open(request["inputs"], encoding="utf-8") as f:
            document = json.load(f)
        return handler.infer(request["archive"], document)
    if op == "verify":
        return handler.verify(request["archive"], request["key"])
    raise ValueError(f"unknown operation {op!r}")


def serve(handler: Any, *, on_stop: Callable[[], None] | None = None) -> int:
    """JSON lines: one request per line on stdin, one reply per line on stdout.

    Anything else the process writes to file descriptor 1 (native libraries, print) is moved to
    stderr so it cannot corrupt the protocol stream.
    """
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        seq = None
        try:
            request = json.loads(line)
            seq = request.get("seq")
            if request.get("op") == "stop":
                out.write(_dump({"seq": seq, "exit": 0, "result": {}}) + "\n")
                out.flush()
                break
            code, result = dispatch(handler, request.get("op"), request)
            reply = {"seq": seq, "exit": code, "result": result}
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            reply = {"seq": seq, "errored": True, "context": "".join(traceback.format_exception(exc))[-4000:]}
        out.write(_dump(reply) + "\n")
        out.flush()
    out.flush()
    if on_stop is not None:
        on_stop()
    return 0


def main(handler: Any, argv: list[str] | None = None, *, on_exit: Callable[[int], None] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: ADAPTER capabilities | inspect ARCHIVE [LIMITS_JSON] | versionreq REQ VERSION | infer ARCHIVE INPUTS | verify ARCHIVE KEY | serve"
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    op, args = argv[0], argv[1:]
    if op == "serve":
        return serve(handler)
    try:
        if op == "capabilities" and not args:
            request: dict[str, Any] = {}
        elif op == "inspect" and len(args) in (1, 2):
            request = {"archive": args[0], "limits": json.loads(args[1]) if len(args) == 2 else None}
        elif op == "versionreq" and len(args) == 2:
            request = {"requirement": args[0], "version": args[1]}
        elif op == "infer" and len(args) == 2:
            request = {"archive": args[0], "inputs": args[1]}
        elif op == "verify" and len(args) == 2:
            request = {"archive": args[0], "key": args[1]}
        else:
            print(usage, file=sys.stderr)
            return 2
        code, result = dispatch(handler, op, request)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exception(exc, file=sys.stderr)
        return 2
    sys.stdout.write(_dump(result) + "\n")
    sys.stdout.flush()
    return code

__all__ = [
    "PROTOCOL",
    "dispatch",
    "main",
    "serve",
    "tensor_json",
]
