"""Hostile inputs: peak memory and time of each attack class, next to the limit that bounds it.

    .venv/bin/python bench/hostile_bench.py [--json FILE] [--only NAME]

Every case runs in a fresh interpreter (so ``ru_maxrss`` is that case's own peak) on a crafted
input from ``tests/helpers/hostile.py`` or built here, and reports wall time, peak RSS, the size of
the crafted file and of what it claims to hold, the outcome (codes), and the ``Limits`` field (or
setting) that bounds the cost.  Goal (issue 8): any archive under the default limits validates in
< 512 MiB and a few seconds per MiB of metadata.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (what it is, the limit that bounds it, python code run in a fresh interpreter).  The
# code builds its input (timed separately from the operation) and sets ``result`` (a short text).
CASES: dict[str, tuple[str, str, str]] = {
    "schema-errors-4MiB": (
        "1 KB zstd archive, carton.toml = 4 MiB of [[input]] tables missing every key; `validate`",
        "Limits.max_findings (findings kept), Limits.max_toml_bytes",
        """
        data = hostile.many_invalid_inputs(4 * hostile.MiB)
        path.write_bytes(data)
        start()
        report = cf.validate(path)
        result = f"{len(report.errors)} errors kept, {report.findings_omitted} omitted"
        """,
    ),
    "schema-errors-info-4MiB": (
        "the same archive; `read(verify_hashes=False)` (carton info / get_model_info): stops at the first error",
        "Limits.max_toml_bytes",
        """
        data = hostile.many_invalid_inputs(4 * hostile.MiB)
        path.write_bytes(data)
        start()
        try:
            cf.read(path, verify_hashes=False)
            result = "read"
        except cf.CartonError as exc:
            result = exc.code
        """,
    ),
    "dangling-references-4MiB": (
        "zstd archive, carton.toml = 4 MiB of self-test references to missing tensors; `validate`",
        "Limits.max_findings",
        """
        data = hostile.many_dangling_refs(4 * hostile.MiB)
        path.write_bytes(data)
        start()
        report = cf.validate(path)
        result = f"{len(report.errors)} errors kept, {report.findings_omitted} omitted"
        """,
    ),
    "shape-overflow": (
        "a numeric tensor of shape [0, 2**63]; `validate` (and the CLI's --json)",
        "exact integer shape arithmetic (E-TENSOR-SHAPE / E-LIMIT-TENSOR)",
        """
        path.write_bytes(hostile.overflowing_shape_archive())
        start()
        report = cf.validate(path)
        result = ",".join(sorted({f.code for f in report.errors})) or "ok"
        """,
    ),
    "zero-tensor-4GiB": (
        "zstd archive holding a 4 GiB float32 zero tensor (about 130 KB); deep `validate`",
        "Limits.max_numeric_tensor_bytes (4 GiB, checked from the declared shape); streamed checks",
        """
        hostile.write_zero_tensor(path, 4 * 1024**3)
        start()
        report = cf.validate(path)
        result = ",".join(sorted({f.code for f in report.errors})) or "ok"
        """,
    ),
    "string-tensor-10M": (
        "5 KB zstd archive with a 10M-element string tensor; deep `validate`",
        "Limits.max_string_tensor_elements / max_string_tensor_bytes",
        """
        path.write_bytes(hostile.many_strings(10_000_000))
        start()
        report = cf.validate(path)
        result = ",".join(sorted({f.code for f in report.errors})) or "ok"
        """,
    ),
    "links-zstd-bomb": (
        "a LINKS download answered with Content-Encoding: zstd, 130 KB that decode to 4 GiB of zeros (loopback server)",
        "Limits.max_download_ratio (1,100x above Limits.ratio_floor_bytes) and max_download_bytes",
        """
        import threading, http.server, zstandard
        from carton_runtime.cache import Cache
        from carton_runtime.links_fetch import LinkFetcher
        body = zstandard.ZstdCompressor(level=19).compress(bytes(4 * 1024**3 // 64)) * 64  # 64 frames of 64 MiB of zeros
        class Bomb(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Encoding", "zstd")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bomb)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        path.write_bytes(body)
        start()
        try:
            LinkFetcher(Cache(tmp / "cache"), allow_private=True).fetch("model/w.bin", "0" * 64, [f"http://127.0.0.1:{server.server_port}/w"])
            result = "fetched"
        except cf.CartonError as exc:
            result = exc.code + " " + exc.message[:70]
        staged = sum(f.stat().st_size for f in (tmp / "cache").rglob("*") if f.is_file())
        result += f"; {staged} bytes left in the cache"
        """,
    ),
    "slow-server": (
        "a server sending 1 byte every 0.2 s (loopback), with CARTON_HTTP_STALL_SECONDS=2; `get_model_info`",
        "CARTON_HTTP_DEADLINE / CARTON_HTTP_STALL_BYTES / CARTON_HTTP_STALL_SECONDS",
        """
        import threading, http.server, time as _t
        os.environ["CARTON_HTTP_STALL_SECONDS"] = "2"
        os.environ["CARTON_CACHE_DIR"] = str(tmp / "cache")
        import carton_runtime.sync as carton_sync
        class Slow(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(200):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        _t.sleep(0.2)
                except OSError:
                    pass
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        start()
        try:
            carton_sync.get_model_info(f"http://127.0.0.1:{server.server_port}/m.carton")
            result = "read"
        except cf.CartonError as exc:
            result = exc.code + " " + exc.message[-60:]
        """,
    ),
}

PRELUDE = """
import json, os, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
import carton_format as cf
from tests.helpers import hostile
tmp = Path(tempfile.mkdtemp(prefix="carton-hostile-"))
path = tmp / "hostile.carton"
t0 = [time.perf_counter()]
def start():
    t0.append(time.perf_counter())
"""
EPILOGUE = """
elapsed = time.perf_counter() - t0[-1]
size = path.stat().st_size if path.exists() else None
print(json.dumps({{"seconds": elapsed, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "file_bytes": size, "result": result}}))
"""


def run_case(name: str) -> dict[str, object]:
    what, limit, body = CASES[name]
    code = PRELUDE.format(root=str(ROOT)) + textwrap.dedent(body) + EPILOGUE.format()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, cwd=ROOT)
    if proc.returncode != 0:
        return {"case": name, "what": what, "limit": limit, "error": proc.stderr.strip().splitlines()[-1:]}
    return {"case": name, "what": what, "limit": limit, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--only", action="append", help="run only these cases")
    args = parser.parse_args(argv)
    names = args.only or list(CASES)
    results = []
    print(f"{'case':<26} {'seconds':>8} {'peak RSS':>10} {'file':>10}  result")
    for name in names:
        row = run_case(name)
        results.append(row)
        if "error" in row:
            print(f"{name:<26} FAILED {row['error']}")
            continue
        size = f"{row['file_bytes'] / 1024:.0f} KiB" if row["file_bytes"] else "-"
        print(f"{name:<26} {row['seconds']:8.2f} {row['peak_rss_mib']:7.0f} MiB {size:>10}  {row['result']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
