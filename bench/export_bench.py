"""The aotinductor and torch_export runners against calling the loaded module directly, one run.

    .venv/bin/python bench/export_bench.py [--calls 2000] [--loads 7] [--json out.json]

  infer   per-call time for a small MLP (64 -> 128 -> 10, dynamic batch) at batch 1 and 32:
          direct (numpy -> torch.from_numpy -> module(x=...) -> .numpy(), under inference mode)
          against ``carton_runtime.sync`` ``model.infer`` (spec check + conversion + the call:
          the loader's ``boxed_run``, the module's ``forward``; bench/README says why).  Goal: <= 1.05x.
  load    ``aoti_load_package`` / ``torch.export.load(...).module()`` of the raw .pt2 file
          against ``carton_runtime.sync.load`` of the archive, warm (model already in the cache)
          and cold (an empty cache: extract + verify sha256).  Goal: <= 1.2x (warm).
Medians of alternating rounds; the AOTI compile (tens of seconds on 2 cores) happens once, first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
from timing import per_call_us  # noqa: E402  (bench/timing.py)


def median_ms(fns: list[Callable[[], Any]], n: int) -> list[float]:
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(n):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            samples[i].append((time.perf_counter() - start) * 1e3)
    return [statistics.median(s) for s in samples]


def build(work: Path) -> dict[str, Any]:
    import torch

    import carton_runtime.sync as cs

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = mlp

        def forward(self, x: Any) -> dict[str, Any]:
            return {"y": self.mlp(x)}

    batch = torch.export.Dim("batch")
    ep = torch.export.export(Model().eval(), (), {"x": torch.randn(4, 64)}, dynamic_shapes={"x": {0: batch}})
    start = time.perf_counter()
    aoti = cs.pack(ep, "aotinductor", output_path=work / "aoti.carton")
    compile_s = time.perf_counter() - start
    export = cs.pack(ep, "torch_export", output_path=work / "export.carton")
    files = {}
    import carton_format as cf

    for name, archive in (("aotinductor", aoti), ("torch_export", export)):
        path = work / f"{name}.pt2"
        with cf.read(archive) as opened, opened.open("model/model.pt2") as src:
            path.write_bytes(src.read())
        files[name] = path
    return {"archives": {"aotinductor": aoti, "torch_export": export}, "files": files, "compile_s": compile_s}


def direct_loader(runner: str) -> Callable[[Path], Any]:
    import torch
    import torch._inductor

    if runner == "aotinductor":
        return lambda path: torch._inductor.aoti_load_package(str(path))
    return lambda path: torch.export.load(str(path)).module()


def bench(calls: int, loads: int) -> dict[str, Any]:
    import torch

    import carton_runtime.sync as cs

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        work = Path(tmp)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor")
        os.environ["CARTON_CACHE_DIR"] = str(work / "cache")
        built = build(work)
        out["aoti_compile_s"] = round(built["compile_s"], 1)
        for runner in ("aotinductor", "torch_export"):
            load_direct = direct_loader(runner)
            module = load_direct(built["files"][runner])
            model = cs.load(built["archives"][runner])
            rows = {}
            for batch in (1, 32):
                x = np.random.default_rng(batch).standard_normal((batch, 64)).astype(np.float32)

                def direct(x: np.ndarray = x, module: Any = module) -> Any:
                    with torch.inference_mode():
                        return module(x=torch.from_numpy(x))["y"].numpy()

                def carton(x: np.ndarray = x, model: Any = model) -> Any:
                    return model.infer({"x": x})["y"]

                np.testing.assert_allclose(direct(), carton(), rtol=1e-5, atol=1e-6)
                d, c = per_call_us([direct, carton], calls, rounds=15)
                rows[f"infer_b{batch}"] = {"direct_us": round(d, 1), "carton_us": round(c, 1), "ratio": round(c / d, 3)}
            model.close()

            def cold(runner: str = runner) -> None:
                os.environ["CARTON_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
                cs.load(built["archives"][runner]).close()

            def warm(runner: str = runner) -> None:
                cs.load(built["archives"][runner]).close()

            os.environ["CARTON_CACHE_DIR"] = str(work / "cache")
            warm()  # fills the cache
            path = built["files"][runner]
            d, w = median_ms([lambda load=load_direct, path=path: load(path), warm], loads)
            c = median_ms([cold], loads)[0]
            os.environ["CARTON_CACHE_DIR"] = str(work / "cache")
            rows["load"] = {"direct_ms": round(d, 2), "warm_ms": round(w, 2), "warm_ratio": round(w / d, 3),
                            "cold_ms": round(c, 2), "cold_ratio": round(c / d, 3)}
            out[runner] = rows
    return out


def table(result: dict[str, Any]) -> str:
    lines = ["| runner | figure | direct | carton | ratio | goal |", "|---|---|---|---|---|---|"]
    for runner in ("aotinductor", "torch_export"):
        rows = result[runner]
        for key in ("infer_b1", "infer_b32"):
            r = rows[key]
            lines.append(f"| {runner} | {key.replace('_', ' ')} | {r['direct_us']} us | {r['carton_us']} us | {r['ratio']}x | <= 1.05x |")
        r = rows["load"]
        lines.append(f"| {runner} | load, warm cache | {r['direct_ms']} ms | {r['warm_ms']} ms | {r['warm_ratio']}x | <= 1.2x |")
        lines.append(f"| {runner} | load, cold cache | {r['direct_ms']} ms | {r['cold_ms']} ms | {r['cold_ratio']}x | |")
    return "\n".join(lines) + f"\n\nAOTI compile at pack: {result['aoti_compile_s']} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = bench(args.calls, args.loads)
    print(json.dumps(result, indent=2))
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
