"""The conformance adapter for the ORIGINAL implementation (cartonml-nightly, Rust with Python bindings).

Run it with the Python of the venv that holds cartonml (not this repository's venv):

    .venv-original/bin/python carton_conformance/adapters/original.py capabilities | inspect ARCHIVE | serve

What it can do: ``inspect`` through ``cartonml.get_model_info`` (then every tensor and misc file
is read).  What it cannot: ``versionreq`` (the bindings do not expose VersionReq), ``infer`` (the
original downloads its runners from the network), error categories (its errors are free text),
MANIFEST and its hash (get_model_info drops them), warnings.  Those parts are skipped or left
unchecked by the harness.  A Rust panic (pyo3 PanicException) is reported as a crash, never as a
rejection; the process address space is capped at 8 GiB so that an archive declaring a huge
size makes the original abort instead of exhausting the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from protocol import PROTOCOL, main, tensor_json

MEMORY_LIMIT = 8 << 30
PANICS = {"PanicException", "RustPanic"}


class PanicError(Exception):
    """A Rust panic inside cartonml (re-raised so the protocol reports a crash)."""


async def _value_json(value: Any) -> dict[str, Any]:
    if type(value).__name__ == "LazyLoadedMiscFile":
        data = await value.read()
        return {"misc_size": len(data), "sha256": hashlib.sha256(bytes(data)).hexdigest()}
    got = await value.get()
    if isinstance(got, list):
        return {"dtype": "nested", "inner": [tensor_json(v) for v in got]}
    return tensor_json(got)


async def _mapping(mapping: Any) -> Any:
    if mapping is None:
        return None
    return {k: await _value_json(mapping[k]) for k in sorted(mapping)}


def _spec(spec: Any) -> dict[str, Any]:
    out = {"name": spec.name, "dtype": spec.dtype, "shape": spec.shape}
    if spec.description is not None:
        out["description"] = spec.description
    internal = getattr(spec, "internal_name", None)
    if internal is not None:
        out["internal_name"] = internal
    return out


def _opts(opts: Any) -> Any:
    if opts is None:
        return None
    out = {}
    for k, v in opts.items():
        kind = "boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else "float" if isinstance(v, float) else "string"
        out[k] = {"type": kind, "value": v}
    return out


async def describe(path: str, *, typed_opts: bool = True) -> dict[str, Any]:
    """What the original reads from an archive, in the suite's normalised form; with
    ``typed_opts=False`` runner opts stay plain values (carton_format.describe's form)."""
    import cartonml

    info = await cartonml.get_model_info(path)
    runner = info.runner
    return {
        "model_name": info.model_name,
        "short_description": info.short_description,
        "model_description": info.model_description,
        "license": info.license,
        "repository": info.repository,
        "homepage": info.homepage,
        "required_platforms": info.required_platforms,
        "runner": {
            "runner_name": runner.runner_name,
            "required_framework_version": runner.required_framework_version,
            "runner_compat_version": runner.runner_compat_version,
            "opts": _opts(runner.opts) if typed_opts else runner.opts,
        },
        "inputs": None if info.inputs is None else [_spec(s) for s in info.inputs],
        "outputs": None if info.outputs is None else [_spec(s) for s in info.outputs],
        "self_tests": None if info.self_tests is None else [
            {"name": t.name, "description": t.description, "inputs": await _mapping(t.inputs),
             "expected_out": await _mapping(t.expected_out)}
            for t in info.self_tests
        ],
        "examples": None if info.examples is None else [
            {"name": e.name, "description": e.description, "inputs": await _mapping(e.inputs),
             "sample_out": await _mapping(e.sample_out)}
            for e in info.examples
        ],
        "misc_files": None if info.misc_files is None else {
            k: await _value_json(info.misc_files[k]) for k in sorted(info.misc_files)
        },
    }


class Original:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def capabilities(self) -> dict[str, Any]:
        try:
            from importlib.metadata import version

            ver = version("cartonml-nightly")
        except Exception:  # noqa: BLE001
            ver = "unknown"
        # no "verify": the original has no signatures (it reads signed archives, ignoring SIGNATURE)
        return {"protocol": PROTOCOL, "name": "cartonml-nightly (original)", "version": ver, "language": "rust",
                "kinds": ["inspect"], "features": [], "persistent": True, "runners": ["torchscript"]}

    def inspect(self, archive: str, limits: Any) -> tuple[int, dict[str, Any]]:
        try:
            info = self.loop.run_until_complete(describe(archive))
        except BaseException as exc:
            # A Rust panic is a crash, never a rejection: pyo3 raises PanicException (a BaseException)
            # for panics in synchronous code, pyo3-asyncio RustPanic for panics inside futures.
            if type(exc).__name__ in PANICS:
                raise PanicError(f"PanicException: {type(exc).__name__}: {exc}") from None
            if not isinstance(exc, Exception):
                raise
            return 1, {"valid": False, "errors": [{"category": None, "code": None, "message": f"{type(exc).__name__}: {exc}"[:2000]}]}
        return 0, {"valid": True, "info": info}

    def versionreq(self, requirement: str, version: str) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError("the original's Python bindings do not expose version requirements")

    def infer(self, archive: str, document: Any) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError("the original cannot run models offline")


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    # cartonml segfaults in interpreter teardown (its tokio runtime outlives finalisation): leave at once.
    os._exit(code)

__all__ = [
    "MEMORY_LIMIT",
    "PANICS",
    "Original",
    "PanicError",
    "describe",
]


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard if hard != resource.RLIM_INFINITY else resource.RLIM_INFINITY))
    os.environ.setdefault("RUST_BACKTRACE", "0")
    _exit(main(Original()))
