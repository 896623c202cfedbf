"""Format-layer benchmark on a large model (default 1 GiB), all figures from one run.

    .venv/bin/python bench/format_bench.py [--size-mib 1024] [--json out.json]

Phases run in child processes so each reports its own peak RSS:
  sha256     baseline: hashlib.sha256 over the model file (4 MiB reads)
  copy       floor for any writer: shutil.copyfile of the model next to the archive
  write      cf.write with the model under model/ (stored, then zstd)
  validate   cf.validate, deep (every MANIFEST hash, CRCs, layout)
  metadata   cf.read(verify_hashes=False).info: time and bytes read from the archive (parsed each
             time), and the time of a read again of the unchanged file (carton_format.file_memo)
Goals (issue 2): write stored >= 0.7x and validate >= 0.8x of sha256 throughput, peak RSS <
200 MiB, metadata < 20 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 4 << 20


def make_model(directory: Path, size: int) -> Path:
    """Incompressible bytes (like trained float weights, which zstd barely shrinks)."""
    model = directory / "model"
    model.mkdir()
    path = model / "model.pt"
    block = os.urandom(CHUNK)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            n = min(CHUNK, size - written)
            fh.write(block[:n] if written % (64 << 20) else os.urandom(n))
            written += n
    return model


def phase(name: str, model: Path, archive: Path) -> dict:
    import numpy as np

    import carton_format as cf

    info = cf.CartonInfo(
        runner=cf.RunnerInfo("torchscript", "=2.13", 1),
        model_name="bench",
        inputs=[cf.TensorSpec("x", "float32", ["batch", 3])],
        self_tests=[cf.SelfTest(inputs={"x": np.ones((2, 3), np.float32)})],
    )
    size = (model / "model.pt").stat().st_size
    start = time.perf_counter()
    extra: dict = {}
    if name == "sha256":
        digest = hashlib.sha256()
        with open(model / "model.pt", "rb", buffering=0) as fh:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                digest.update(view[:n])
    elif name == "copy":
        # The floor for any writer: the same bytes copied by the kernel (sendfile).
        shutil.copyfile(model / "model.pt", archive.with_suffix(".copy"))
        archive.with_suffix(".copy").unlink()
    elif name.startswith("write-"):
        cf.write(archive, info, model_dir=model, compression=name.split("-", 1)[1], overwrite=True, progress=False)
        extra["archive_bytes"] = archive.stat().st_size
    elif name == "validate":
        report = cf.validate(archive, progress=False)
        assert report.ok, report.findings
    elif name == "metadata":
        from carton_format import reader as cf_reader
        from carton_format._zip import source as cf_source

        times, reads, memo_times = [], [], []
        for _ in range(50):
            cf_reader._PARSED.clear()  # a parse every time (what the first read of a file costs) ...
            cf_source._DIRECTORIES.clear()
            t0 = time.perf_counter()
            with cf.read(archive, verify_hashes=False) as a:
                a.info  # noqa: B018
                source = a.source
                assert isinstance(source, cf.ZipSource), source
                reads.append((source.zip_reader.bytes_read, source.zip_reader.read_calls))
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with cf.read(archive, verify_hashes=False) as a:  # ... and a read again of the unchanged file (carton_format.file_memo)
                a.info  # noqa: B018
            memo_times.append(time.perf_counter() - t0)
        times.sort()
        memo_times.sort()
        extra.update(median_ms=times[len(times) // 2] * 1e3, bytes_read=reads[0][0], read_calls=reads[0][1],
                     again_median_ms=memo_times[len(memo_times) // 2] * 1e3)
    elapsed = time.perf_counter() - start
    return {"phase": name, "seconds": elapsed, "mb_per_s": size / elapsed / 1e6, **extra}


def run_child(name: str, model: Path, archive: Path) -> dict:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--phase", name, "--model", str(model), "--archive", str(archive)], stdout=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = json.loads(proc.stdout.read())
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phase {name} failed")
    out["peak_rss_mib"] = usage.ru_maxrss / 1024
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.model, args.archive)))
        return 0
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        model = make_model(Path(tmp), args.size_mib << 20)
        archive = Path(tmp) / "bench.carton"
        results = {}
        for name in ("sha256", "copy", "write-zstd", "write-stored", "validate", "metadata"):
            # stored last, so validate and metadata measure the default (stored) archive
            results[name] = run_child(name, model, archive)
            print(json.dumps(results[name]), file=sys.stderr)
    base = results["sha256"]["mb_per_s"]
    summary = {
        "model_mib": args.size_mib,
        "sha256_mb_per_s": round(base, 1),
        "copy_ratio": round(results["copy"]["mb_per_s"] / base, 3),
        "write_stored_ratio": round(results["write-stored"]["mb_per_s"] / base, 3),
        "write_stored_vs_copy": round(results["write-stored"]["mb_per_s"] / results["copy"]["mb_per_s"], 3),
        "write_zstd_ratio": round(results["write-zstd"]["mb_per_s"] / base, 3),
        "validate_ratio": round(results["validate"]["mb_per_s"] / base, 3),
        "peak_rss_mib": {k: round(v["peak_rss_mib"], 1) for k, v in results.items()},
        "metadata_ms": round(results["metadata"]["median_ms"], 2),
        "metadata_again_ms": round(results["metadata"]["again_median_ms"], 3),
        "metadata_bytes_read": results["metadata"]["bytes_read"],
        "metadata_read_calls": results["metadata"]["read_calls"],
        "zstd_archive_ratio": round(results["write-zstd"]["archive_bytes"] / (args.size_mib << 20), 4),
    }
    goals = {
        "write_stored_ratio >= 0.7": summary["write_stored_ratio"] >= 0.7,
        "validate_ratio >= 0.8": summary["validate_ratio"] >= 0.8,
        "peak_rss < 200 MiB": max(summary["peak_rss_mib"].values()) < 200,
        "metadata < 20 ms": summary["metadata_ms"] < 20,
    }
    summary["goals"] = goals
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "phases": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
