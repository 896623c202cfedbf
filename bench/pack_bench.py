"""``pack`` of a BERT-base sized TorchScript model (~438 MB) against what it must at least do.

    .venv/bin/python bench/pack_bench.py [--runs 5] [--tmp DIR] [--json out.json]

Figures (medians of ``--runs`` rounds; the variants are interleaved within each round and every
timed run starts after ``os.sync()`` and a pause, because this VM's disk writes are noisy):
  copy            shutil.copyfile of the model file (no fsync): the floor for any writer
  copy_fsync      the same plus fsync (pack fsyncs its output before renaming it into place)
  jit_save        torch.jit.save(module, file)
  jit_save_copy   torch.jit.save, then shutil.copyfile of the result
  pack_file       carton_runtime.sync.pack(model file, "torchscript", "*", output_path=...)
  pack_module     the same with the ScriptModule object
Peak RSS (VmHWM) of a fresh process packing the file, and of one that only imports the same
modules and loads nothing, so the difference is what packing adds.
Goal (issue 13): pack <= 1.2x jit.save + copy; peak RSS unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PAUSE_S = 0.5


def build_model() -> Any:
    """A BERT-base shaped TorchScript module (bench/bert_like.py)."""
    from bert_like import build_bert_like

    return build_bert_like()


def _settle() -> None:
    os.sync()
    time.sleep(PAUSE_S)


def _timed(fn: Callable[[], Any]) -> float:
    _settle()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _copy(src: Path, dst: Path, *, fsync: bool = False) -> None:
    shutil.copyfile(src, dst)
    if fsync:
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def measure(work: Path, runs: int) -> dict[str, Any]:
    import warnings

    import torch

    from carton_runtime import sync as cs

    warnings.simplefilter("ignore", DeprecationWarning)
    module = build_model()
    model = work / "bert.pt"
    torch.jit.save(module, str(model))
    out = work / "out"
    out.mkdir()
    variants: dict[str, Callable[[], Any]] = {
        "copy": lambda: _copy(model, out / "copy.pt"),
        "copy_fsync": lambda: _copy(model, out / "copy.pt", fsync=True),
        "jit_save": lambda: torch.jit.save(module, str(out / "saved.pt")),
        "jit_save_copy": lambda: (torch.jit.save(module, str(out / "saved.pt")), _copy(out / "saved.pt", out / "copy.pt")),
        "pack_file": lambda: cs.pack(model, "torchscript", "*", output_path=out / "file.carton", overwrite=True),
        "pack_module": lambda: cs.pack(module, "torchscript", "*", output_path=out / "module.carton", overwrite=True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(runs):
        order = list(variants)
        if round_ % 2:
            order.reverse()  # no variant always runs right after the same other one
        for name in order:
            times[name].append(_timed(variants[name]))
            for leftover in out.iterdir():
                leftover.unlink()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "model_bytes": model.stat().st_size,
        "runs": runs,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "all_s": {k: [round(t, 3) for t in ts] for k, ts in times.items()},
        "ratios": {
            "pack_file / copy": round(med["pack_file"] / med["copy"], 2),
            "pack_file / copy_fsync": round(med["pack_file"] / med["copy_fsync"], 2),
            "pack_module / jit_save_copy": round(med["pack_module"] / med["jit_save_copy"], 2),
            "pack_module / jit_save": round(med["pack_module"] / med["jit_save"], 2),
        },
    }


_RSS_CHILD = """
import sys, warnings
sys.path.insert(0, {root!r})
warnings.simplefilter("ignore", DeprecationWarning)
import torch
from carton_runtime import sync as cs
if {pack!r}:
    cs.pack({model!r}, "torchscript", "*", output_path={out!r}, overwrite=True)
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) // 1024)
"""


def peak_rss(work: Path) -> dict[str, int]:
    """VmHWM (MiB) of fresh processes: import only, and import + pack(file)."""
    result = {}
    for label, pack in (("import_only_mib", False), ("pack_file_mib", True)):
        code = _RSS_CHILD.format(root=str(ROOT), pack=pack, model=str(work / "bert.pt"), out=str(work / "rss.carton"))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        result[label] = int(proc.stdout.split()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tmp", type=Path, default=None, help="work directory (default: a new one under $TMPDIR)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print(json.dumps({"skipped": "torch is not installed"}))
        return
    with tempfile.TemporaryDirectory(prefix="pack-bench-", dir=args.tmp) as tmp:
        work = Path(tmp)
        figures = measure(work, args.runs)
        figures["peak_rss"] = peak_rss(work)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
