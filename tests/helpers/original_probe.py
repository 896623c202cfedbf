"""Runs under the ORIGINAL implementation's Python (cartonml-nightly, its own venv).

    python original_probe.py info ARCHIVE...        -> JSON list of normalised descriptions
    python original_probe.py shrink ARCHIVE OUT [SHA256=URL ...]

Descriptions come from the conformance suite's adapter for the original, with plain runner opts,
so they match carton_format.describe.describe_info(with_values=True) field by field.  Errors
are reported as {"error": "..."} (the original panics on much bad input; the panic text is
captured, never fatal here).
"""

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "carton_conformance" / "adapters"))

import cartonml
from original import describe


async def main(argv):
    if argv[0] == "info":
        results = []
        for path in argv[1:]:
            try:
                results.append(await describe(path, typed_opts=False))
            except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException derives from BaseException; report any failure as data
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
