"""Signing and verifying (the signature only) a large archive against reading its MANIFEST.

    .venv/bin/python bench/sign_bench.py [--size-mib 1024] [--runs 5] [--tmp DIR] [--json out.json]

Figures (medians of ``--runs``), each with the time and the bytes the process read while it ran
(``rchar`` and ``syscr`` of /proc/self/io: every read and pread system call, whatever the file;
everything is imported and warmed up first, so the counts are the archive's):
  manifest        open the zip and read MANIFEST (the central directory, MANIFEST's local header and data)
  metadata        ``read(verify_hashes=False)``: what every reader does first (MANIFEST, carton.toml, index.toml)
  sign            ``sign(key=...)`` in place: read the metadata, sign, append SIGNATURE, rewrite the central directory
  verify_sig      ``verify_signature(key=..., deep=False)``: read the metadata and SIGNATURE, check the signature
and, once, ``verify_signature(deep=True)`` (every member hashed) for scale.
Goal (issue 12): signing a 1 GiB archive costs no more than reading its MANIFEST (bytes read
independent of the model's size, time in milliseconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import carton_format as cf  # noqa: E402
from carton_format._zip.reader import ZipReader  # noqa: E402

MiB = 1 << 20


def io_counters() -> tuple[int, int]:
    """(bytes read, read calls) of this process so far."""
    values = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(values["rchar"]), int(values["syscr"])


def measure(fn: Callable[[], Any]) -> dict[str, float]:
    b0, c0 = io_counters()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    b1, c1 = io_counters()
    return {"ms": seconds * 1e3, "bytes_read": b1 - b0, "read_calls": c1 - c0}


def make_archive(directory: Path, size: int) -> Path:
    model = directory / "model"
    model.mkdir()
    with open(model / "weights.bin", "wb") as f:  # incompressible, written in chunks
        chunk = os.urandom(4 * MiB)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    info = cf.CartonInfo(runner=cf.RunnerInfo("torchscript", "=2.13", 1))
    path = cf.write(directory / "big.carton", info, model_dir=model).path
    (model / "weights.bin").unlink()
    return path


def make_key(directory: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / "signer.pem", directory / "signer.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def read_manifest(path: Path) -> bytes:
    with ZipReader.open_path(path) as z:
        return z.read_member("MANIFEST", 64 * MiB)


def read_metadata(path: Path) -> str:
    with cf.read(path, verify_hashes=False) as archive:
        return archive.manifest_sha256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="carton-sign-bench-") as tmp:
        directory = Path(tmp)
        path = make_archive(directory, args.size_mib * MiB)
        private, public = make_key(directory)
        cf.sign(path, key=private)  # warm-up: imports model-signing, sigstore, OpenSSL
        assert cf.verify_signature(path, key=public, deep=False).verified
        variants: dict[str, Callable[[], Any]] = {
            "manifest": lambda: read_manifest(path),
            "metadata": lambda: read_metadata(path),
            "sign": lambda: cf.sign(path, key=private),
            "verify_sig": lambda: cf.verify_signature(path, key=public, deep=False),
        }
        rounds: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
        for _ in range(args.runs):
            for name, fn in variants.items():
                rounds[name].append(measure(fn))
        figures: dict[str, Any] = {"archive_bytes": path.stat().st_size, "runs": args.runs}
        for name, runs in rounds.items():
            figures[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        base = figures["manifest"]
        for name in ("metadata", "sign", "verify_sig"):
            figures[name]["bytes_vs_manifest"] = figures[name]["bytes_read"] / base["bytes_read"]
        deep = measure(lambda: cf.verify_signature(path, key=public))
        figures["verify_deep"] = deep
        assert cf.verify_signature(path, key=public).verified
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
