"""Runs under the ORIGINAL implementation's Python (cartonml-nightly, its own venv).

    python original_probe.py info ARCHIVE...        -> JSON list of normalised descriptions
    python original_probe.py shrink ARCHIVE OUT [SHA256=URL ...]

The description matches carton_format.describe.describe_info(with_values=True), so the two
implementations can be compared field by field.  Errors are reported as {"error": "..."}
(the original panics on much bad input; the panic text is captured, never fatal here).
"""

import asyncio
import hashlib
import json
import os
import shutil
import sys

import numpy as np

import cartonml


def tensor_json(array):
    array = np.asarray(array)
    flat = array.reshape(-1)
    if array.dtype.kind in "UO":
        values = [str(x) for x in flat]
        dtype = "string"
    else:
        dtype = array.dtype.name
        if array.dtype.kind == "f":
            values = [float(x) if np.isfinite(x) else str(float(x)) for x in flat]
        else:
            values = [int(x) for x in flat]
    return {"dtype": dtype, "shape": list(array.shape), "values": values}


async def value_json(value):
    if type(value).__name__ == "LazyLoadedMiscFile":
        data = await value.read()
        return {"misc_size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return tensor_json(await value.get())


async def mapping_json(mapping):
    if mapping is None:
        return None
    return {k: await value_json(mapping[k]) for k in sorted(mapping)}


def spec_json(spec):
    out = {"name": spec.name, "dtype": spec.dtype, "shape": spec.shape}
    if spec.description is not None:
        out["description"] = spec.description
    internal = getattr(spec, "internal_name", None)
    if internal is not None:
        out["internal_name"] = internal
    return out


async def describe(path):
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
            "opts": runner.opts,
        },
        "inputs": None if info.inputs is None else [spec_json(s) for s in info.inputs],
        "outputs": None if info.outputs is None else [spec_json(s) for s in info.outputs],
        "self_tests": None if info.self_tests is None else [
            {"name": t.name, "description": t.description, "inputs": await mapping_json(t.inputs),
             "expected_out": await mapping_json(t.expected_out)}
            for t in info.self_tests
        ],
        "examples": None if info.examples is None else [
            {"name": e.name, "description": e.description, "inputs": await mapping_json(e.inputs),
             "sample_out": await mapping_json(e.sample_out)}
            for e in info.examples
        ],
        "misc_files": None if info.misc_files is None else {
            k: await value_json(info.misc_files[k]) for k in sorted(info.misc_files)
        },
    }


async def main(argv):
    if argv[0] == "info":
        results = []
        for path in argv[1:]:
            try:
                results.append(await describe(path))
            except BaseException as exc:  # pyo3 PanicException derives from BaseException
                results.append({"error": f"{type(exc).__name__}: {exc}"})
        print(json.dumps(results))
    elif argv[0] == "shrink":
        urls = {}
        for pair in argv[3:]:
            sha, url = pair.split("=", 1)
            urls.setdefault(sha, []).append(url)
        shutil.move(await cartonml.shrink(argv[1], urls), argv[2])
    else:
        raise SystemExit(f"unknown command {argv[0]}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
    sys.stdout.flush()
    # cartonml-nightly segfaults in interpreter teardown about half the time (its tokio runtime
    # outlives Python's finalisation); the work is done, so leave without tearing down.
    os._exit(0)
