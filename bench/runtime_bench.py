"""Runtime benchmark: all ratios from one run.

    .venv/bin/python bench/runtime_bench.py [--model-mib 100] [--remote-mib 1024] [--json out.json]

  infer    per-call time on small inputs: the direct path (numpy -> torch.from_numpy ->
           forward -> .numpy()) against carton_runtime.sync ``model.infer`` and the async
           ``await model.infer`` (which hops to a worker thread), for the original's docs model
           (a tensor, a str and a List[str] in and out) and a tensor-only model.
           Goal: sync <= 1.10x the direct path (< 5 us added).
  load     a ~100 MB TorchScript model packed (stored): ``torch.jit.load`` of the raw file
           against ``carton_runtime.sync.load`` of the archive with an empty cache (cold: the
           model is extracted into the cache while a thread verifies its sha256) and with the
           model already cached (warm).  Goals: cold <= 1.5x, warm <= 1.1x.
  remote   ``get_model_info`` of a ~1 GiB archive served over loopback HTTP with Range
           support: bytes transferred and requests.  Goal: < 256 KiB in <= 4 requests.
Page caches are warm for every variant (the files were just written), so the load ratios
compare CPU work, not disk speed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
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

ORIGINAL_MODEL = ROOT / "tests" / "data" / "original" / "test_model.pt"




def bench_infer(work: Path, calls: int) -> dict:
    import torch

    import carton_runtime as carton
    import carton_runtime.sync as cs

    class Tensors(torch.nn.Module):
        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"y": inputs["x"] * 2}

    tensor_pt = work / "tensors.pt"
    torch.jit.save(torch.jit.script(Tensors()), str(tensor_pt))
    results = {}
    cases = {
        "docs_model": (ORIGINAL_MODEL, {"a": np.ones(3, np.float32), "b": np.array("hi"), "c": np.array(["x", "y"])}),
        "tensor_model": (tensor_pt, {"x": np.ones((4, 8), np.float32)}),
    }
    for name, (pt, inputs) in cases.items():
        module = torch.jit.load(str(pt))
        packed = cs.pack(pt, "torchscript", "*", output_path=work / f"{name}.carton", overwrite=True)
        model = cs.load(packed, visible_device="cpu")

        def direct(module: Any = module, inputs: dict = inputs) -> dict:
            feed = {}
            for k, v in inputs.items():
                if v.dtype.kind == "U":
                    feed[k] = v.item() if v.ndim == 0 else v.tolist()
                else:
                    feed[k] = torch.from_numpy(v)
            out = module(feed)
            return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}

        infer = model.infer
        direct_us, sync_us = per_call_us([direct, lambda infer=infer, inputs=inputs: infer(inputs)], calls, warmup=2000)

        async def run_async(n: int, packed: Any = packed, inputs: dict = inputs) -> float:
            amodel = await carton.load(packed, visible_device="cpu")
            for _ in range(200):
                await amodel.infer(inputs)
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(n):
                    await amodel.infer(inputs)
                samples.append((time.perf_counter() - start) / n * 1e6)
            return statistics.median(samples)

        async_us = asyncio.run(run_async(max(200, calls // 10)))
        results[name] = {
            "direct_us": round(direct_us, 2),
            "sync_us": round(sync_us, 2),
            "sync_ratio": round(sync_us / direct_us, 3),
            "sync_added_us": round(sync_us - direct_us, 2),
            "async_us": round(async_us, 2),
            "async_ratio": round(async_us / direct_us, 3),
        }
    return results


def bench_load(work: Path, model_mib: int, runs: int) -> dict:
    import torch

    import carton_runtime.sync as cs

    class Big(torch.nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(n))

        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {"y": inputs["x"] * self.w[0]}

    raw = work / "big.pt"
    torch.jit.save(torch.jit.script(Big(model_mib * 1024 * 1024 // 4)), str(raw))
    archive = Path(cs.pack(raw, "torchscript", "*", output_path=work / "big.carton", overwrite=True))
    x = {"x": np.ones(2, np.float32)}

    def timed(fn: Any) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def quiet() -> None:  # no writeback of earlier runs' files while timing
        os.sync()
        time.sleep(0.2)

    baseline, cold, warm = [], [], []
    for i in range(runs):
        quiet()
        baseline.append(timed(lambda: torch.jit.load(str(raw))))
        cache = work / f"cache-{i}"
        os.environ["CARTON_CACHE_DIR"] = str(cache)
        quiet()
        cold.append(timed(lambda: cs.load(archive, visible_device="cpu")))
        quiet()
        warm.append(timed(lambda: cs.load(archive, visible_device="cpu")))
        assert cs.load(archive, visible_device="cpu").infer(x)["y"].shape == (2,)
        shutil.rmtree(cache)
    b, c, w = statistics.median(baseline), statistics.median(cold), statistics.median(warm)
    return {
        "model_bytes": raw.stat().st_size,
        "torch_jit_load_ms": round(b * 1000, 1),
        "cold_ms": round(c * 1000, 1),
        "warm_ms": round(w * 1000, 1),
        "cold_ratio": round(c / b, 3),
        "warm_ratio": round(w / b, 3),
    }


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path = Path(".")
    log: list = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.root / self.path.lstrip("/")
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        m = re.match(r"^bytes=(\d*)-(\d*)$", self.headers.get("Range") or "")
        if m:
            status = 206
            if m.group(1) == "":
                start = max(0, size - int(m.group(2)))
            else:
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        with open(path, "rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left:
                chunk = fh.read(min(left, 1 << 20))
                self.wfile.write(chunk)
                left -= len(chunk)
        self.log.append((self.headers.get("Range"), end - start + 1))


def bench_remote(work: Path, remote_mib: int) -> dict:
    import carton_format as cf
    import carton_runtime.sync as cs

    model_dir = work / "remote-model"
    model_dir.mkdir()
    with open(model_dir / "model.pt", "wb") as fh:
        fh.truncate(remote_mib * 1024 * 1024)  # sparse: quick to write and to hash
    info = cf.CartonInfo(
        runner=cf.RunnerInfo("torchscript", "=2.13", 1),
        model_name="remote",
        inputs=[cf.TensorSpec("x", "float32", ["n"])],
        self_tests=[cf.SelfTest(inputs={"x": np.ones(1000, np.float32)}, expected_out={"y": np.ones(1000, np.float32)})],
        misc_files={"README.md": b"# remote\n" * 100},
    )
    archive = cf.write(work / "remote.carton", info, model_dir=model_dir).path
    handler = type("H", (_RangeHandler,), {"root": work, "log": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        os.environ["CARTON_CACHE_DIR"] = str(work / "remote-cache")
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.carton"
        start = time.perf_counter()
        got = cs.get_model_info(url)
        elapsed = time.perf_counter() - start
        assert got.model_name == "remote"
    finally:
        server.shutdown()
    return {
        "archive_bytes": archive.stat().st_size,
        "requests": len(handler.log),
        "bytes_transferred": sum(n for _r, n in handler.log),
        "ms": round(elapsed * 1000, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-mib", type=int, default=100)
    parser.add_argument("--remote-mib", type=int, default=1024)
    parser.add_argument("--calls", type=int, default=20000, help="inference calls per timing round")
    parser.add_argument("--runs", type=int, default=5, help="load timings (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    results: dict[str, Any] = {"torch": torch.__version__, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="carton-bench-") as tmp:
        work = Path(tmp)
        results["infer"] = bench_infer(work, args.calls)
        print(json.dumps({"infer": results["infer"]}, indent=2), flush=True)
        results["load"] = bench_load(work, args.model_mib, args.runs)
        print(json.dumps({"load": results["load"]}, indent=2), flush=True)
        results["remote_get_model_info"] = bench_remote(work, args.remote_mib)
        print(json.dumps({"remote_get_model_info": results["remote_get_model_info"]}, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
