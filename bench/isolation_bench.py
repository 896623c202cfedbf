"""Process isolation benchmark: out-of-process infer against in-process, ratios from one run.

    .venv/bin/python bench/isolation_bench.py [--rounds 9] [--json out.json]

The same TorchScript model (``{"y": x + 1}``, float32) is packed once and loaded twice with
``carton_runtime.sync.load``: in process, and with ``isolation="process"`` (a worker process,
inputs and outputs in pooled memfd regions, zero-copy views on both sides).  For a tiny input
(4 floats), 4 MB and 64 MB, each variant's per-call time (in process; out of process with a
plain numpy input, which the host copies into shared memory; out of process with an input made
by ``model.input_array``, which is sent without a copy) is the median of ``--rounds``
rounds, the variants alternating round by round.  A raw Unix-socket ping-pong between two
Python processes is measured too: the floor any out-of-process call pays on this machine.
Goals (issue 10): < 100 us added for the tiny input, <= 1.2x at 64 MB.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
warnings.simplefilter("ignore", DeprecationWarning)

import numpy as np  # noqa: E402
from timing import per_call_us  # noqa: E402  (bench/timing.py)

PAYLOADS = [("tiny (16 B)", 4, 2000), ("4 MB", 1 << 20, 100), ("64 MB", 16 << 20, 8)]


def _model(path: Path) -> Path:
    import torch

    class PlusOne(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"y": inputs["x"] + 1}

    torch.jit.save(torch.jit.script(PlusOne()), str(path))
    return path




def ping_pong_us(calls: int = 5000) -> float:
    """A 16-byte round trip between two Python processes over a Unix socket pair."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        a.close()
        while True:
            data = b.recv(64)
            if not data:
                os._exit(0)
            b.sendall(data)
    b.close()
    for _ in range(500):
        a.sendall(b"x" * 16)
        a.recv(64)
    start = time.perf_counter()
    for _ in range(calls):
        a.sendall(b"x" * 16)
        a.recv(64)
    elapsed = (time.perf_counter() - start) / calls * 1e6
    a.close()
    os.waitpid(pid, 0)
    return elapsed


def run(rounds: int) -> dict[str, Any]:
    import carton_runtime.sync as cs

    with tempfile.TemporaryDirectory(prefix="carton-iso-bench-") as tmp:
        os.environ["CARTON_CACHE_DIR"] = str(Path(tmp) / "cache")
        archive = cs.pack(_model(Path(tmp) / "plus_one.pt"), "torchscript", "*", output_path=Path(tmp) / "p.carton", check_self_tests=False)
        inproc = cs.load(archive)
        outproc = cs.load(archive, isolation="process")
        results: dict[str, Any] = {"ping_pong_us": ping_pong_us(), "payloads": []}
        try:
            for label, count, calls in PAYLOADS:
                x = np.random.default_rng(0).standard_normal(count).astype(np.float32)
                inputs = {"x": x}
                assert np.array_equal(inproc.infer(inputs)["y"], outproc.infer(inputs)["y"])
                shared = outproc.input_array(x.shape, x.dtype)  # the caller fills it: sent without a copy
                shared[:] = x
                assert np.array_equal(outproc.infer({"x": shared})["y"], outproc.infer(inputs)["y"])
                fns = [
                    functools.partial(inproc.infer, inputs),
                    functools.partial(outproc.infer, inputs),
                    functools.partial(outproc.infer, {"x": shared}),
                ]
                t_in, t_out, t_shared = per_call_us(fns, calls, rounds, warmup=200)
                row = {
                    "payload": label, "inprocess_us": t_in, "process_us": t_out, "added_us": t_out - t_in, "ratio": t_out / t_in,
                    "process_input_array_us": t_shared, "input_array_ratio": t_shared / t_in,
                }
                results["payloads"].append(row)
        finally:
            inproc.close()
            outproc.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = run(args.rounds)
    print(f"raw Unix-socket ping-pong between two processes: {results['ping_pong_us']:.0f} us")
    print(f"{'payload':<12} {'in-process':>12} {'process':>12} {'added':>10} {'ratio':>7} {'input_array':>12} {'ratio':>7}")
    for row in results["payloads"]:
        print(
            f"{row['payload']:<12} {row['inprocess_us']:>10.0f}us {row['process_us']:>10.0f}us "
            f"{row['added_us']:>8.0f}us {row['ratio']:>6.2f}x {row['process_input_array_us']:>10.0f}us {row['input_array_ratio']:>6.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
