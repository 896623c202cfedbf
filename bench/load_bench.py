"""Cold and second loads of a BERT-base-sized TorchScript model (438 MB), phase by phase.

Compares, interleaved round by round (this VM's disk is noisy: medians of ``--rounds``):

* in-process: ``torch.jit.load`` of the raw file against ``carton_runtime.sync.load`` of the
  packed archive with an empty cache (cold), the same archive again (second load), and an
  unpacked carton directory (what an http load stores), cold and second;
* in a fresh process: ``python -c 'import torch; torch.jit.load(raw)'`` against
  ``python -c 'import carton_runtime.sync as cs; cs.load(archive)'`` with an empty cache, wall
  time of the whole process and peak RSS (VmHWM);
* the phases of a cold load: open (metadata), copy into the cache, runner load (``torch.jit.load``
  of the copy), verification left after the runner is done, the rest.

The model is built from code (embeddings 30522x768, 12 encoder layers 768/3072: BERT-base's
parameter count), so nothing is downloaded.  Usage::

    .venv/bin/python bench/load_bench.py [--rounds 10] [--fresh-rounds 5] [--work DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def build_model(work: Path) -> Path:
    """``work/bert.pt``: a BERT-base-sized TorchScript model (built once, kept)."""
    raw = work / "bert.pt"
    if raw.exists():
        return raw
    import torch
    from bert_like import build_bert_like

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(build_bert_like(), str(raw))
    return raw


def quiet() -> None:
    """Let writeback of earlier rounds' files finish before timing."""
    os.sync()
    time.sleep(0.3)


def timed(fn: Callable[[], Any]) -> float:
    quiet()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class PhaseProbe:
    """Times the copy into the cache, the runner's ``torch.jit.load`` and the wait for the hash
    by wrapping them (bench-only instrumentation; the loader's own INFO line has open/runner load)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def _add(self, name: str, seconds: float) -> None:
        self.times[name] = self.times.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        import torch

        from carton_runtime import overlapped_verify as ov

        saved = (ov.CopyHasher.copy, ov.CopyHasher.result, ov.RangeHasher.result, torch.jit.load)
        probe = self

        def wrap(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    probe._add(name, time.perf_counter() - start)

            return wrapper

        ov.CopyHasher.copy = wrap(saved[0], "copy")  # type: ignore[method-assign]
        ov.CopyHasher.result = wrap(saved[1], "verify wait")  # type: ignore[method-assign]
        ov.RangeHasher.result = wrap(saved[2], "verify wait")  # type: ignore[method-assign]
        torch.jit.load = wrap(saved[3], "torch.jit.load")
        try:
            yield
        finally:
            ov.CopyHasher.copy, ov.CopyHasher.result, ov.RangeHasher.result, torch.jit.load = saved  # type: ignore[method-assign]


def in_process(raw: Path, archive: Path, unpacked: Path, work: Path, rounds: int) -> dict[str, Any]:
    import torch

    import carton_runtime.sync as cs

    series: dict[str, list[float]] = {k: [] for k in ("jit", "cold", "second", "cold_dir", "second_dir")}
    os.environ["CARTON_CACHE_DIR"] = str(work / "cache-warmup")  # imports, page cache, first-call costs
    torch.jit.load(str(raw))
    cs.load(archive, visible_device="cpu")
    shutil.rmtree(work / "cache-warmup")
    phases: list[dict[str, float]] = []
    for i in range(rounds):
        series["jit"].append(timed(lambda: torch.jit.load(str(raw))))
        cache = work / f"cache-{i}"
        os.environ["CARTON_CACHE_DIR"] = str(cache)
        probe = PhaseProbe()
        with probe.installed():
            total = timed(lambda: cs.load(archive, visible_device="cpu"))
        series["cold"].append(total)
        probe.times["other (open, checks, cache)"] = total - sum(probe.times.values())
        phases.append(probe.times)
        series["second"].append(timed(lambda: cs.load(archive, visible_device="cpu")))
        dir_cache = work / f"cache-dir-{i}"  # its own: the zip's load put the model in the cache above
        os.environ["CARTON_CACHE_DIR"] = str(dir_cache)
        series["cold_dir"].append(timed(lambda: cs.load(unpacked, visible_device="cpu")))
        series["second_dir"].append(timed(lambda: cs.load(unpacked, visible_device="cpu")))
        shutil.rmtree(cache)
        shutil.rmtree(dir_cache, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in series.items()}
    names = sorted({n for p in phases for n in p})
    return {
        "ms": {k: round(v * 1000, 1) for k, v in med.items()},
        "ratio_to_jit_load": {k: round(v / med["jit"], 3) for k, v in med.items() if k != "jit"},
        "cold_phases_ms": {n: round(statistics.median(p.get(n, 0.0) for p in phases) * 1000, 1) for n in names},
    }


_FRESH_JIT = "import torch, sys; torch.jit.load(sys.argv[1])"
_FRESH_CARTON = "import carton_runtime.sync as cs, sys; cs.load(sys.argv[1], visible_device='cpu')"
_HWM = "; print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"


def fresh(raw: Path, archive: Path, work: Path, rounds: int) -> dict[str, Any]:
    """Whole-process wall time and peak RSS (VmHWM, KiB) of a fresh interpreter doing one load."""

    def run(code: str, path: Path, cache: Path) -> tuple[float, int]:
        env = {**os.environ, "CARTON_CACHE_DIR": str(cache), "PYTHONWARNINGS": "ignore"}
        quiet()
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code + _HWM, str(path)], env=env, check=True, capture_output=True, text=True)
        return time.perf_counter() - start, int(out.stdout.split()[-1])

    jit_t, jit_rss, cold_t, cold_rss = [], [], [], []
    for i in range(rounds):
        t, rss = run(_FRESH_JIT, raw, work / "unused-cache")
        jit_t.append(t)
        jit_rss.append(rss)
        cache = work / f"fresh-cache-{i}"
        t, rss = run(_FRESH_CARTON, archive, cache)
        cold_t.append(t)
        cold_rss.append(rss)
        shutil.rmtree(cache, ignore_errors=True)
    jt, ct = statistics.median(jit_t), statistics.median(cold_t)
    jr, cr = statistics.median(jit_rss), statistics.median(cold_rss)
    return {
        "ms": {"jit_process": round(jt * 1000, 1), "cold_process": round(ct * 1000, 1)},
        "ratio": round(ct / jt, 3),
        "peak_rss_mib": {"jit_process": round(jr / 1024, 1), "cold_process": round(cr / 1024, 1)},
        "rss_ratio": round(cr / jr, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--fresh-rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="keep the model here between runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("load_bench: torch is not installed; nothing to measure")
        return 0
    import carton_format as cf
    import carton_runtime.sync as cs
    from carton_runtime.unpacked import unpack

    work = args.work or Path(tempfile.mkdtemp(prefix="carton-load-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    raw = build_model(work)
    archive = Path(cs.pack(raw, "torchscript", "*", output_path=work / "bert.carton", overwrite=True, check_self_tests=False))
    unpacked = work / "bert-unpacked"
    if not unpacked.exists():
        with cf.read(archive, verify_hashes=False) as opened:
            unpack(opened, unpacked)
    results = {
        "model_bytes": raw.stat().st_size,
        "in_process": in_process(raw, archive, unpacked, work, args.rounds),
        "fresh_process": fresh(raw, archive, work, args.fresh_rounds),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
