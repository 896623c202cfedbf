"""Regenerate every conformance case: ``python -m carton_conformance generate [--out DIR]``.

Deterministic: the same sources give the same bytes (tests/conformance/test_conformance.py checks that
the committed cases/ tree is exactly what this writes).  Inputs besides this package: the committed
TorchScript models in carton_conformance/models/, the test keys in carton_conformance/keys/ and the
original implementation's archives in tests/data/original*/.  Nothing here imports carton_format or
torch (the signature cases use model-signing's pieces).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .gen import infer_cases, inspect_cases, signature_cases, versionreq_cases
from .gen.registry import Registry

CASES_DIR = Path(__file__).resolve().parent / "cases"


def build_registry() -> Registry:
    reg = Registry()
    inspect_cases.generate(reg)
    versionreq_cases.generate(reg)
    infer_cases.generate(reg)
    signature_cases.generate(reg)
    return reg


def generate(out: Path = CASES_DIR) -> Registry:
    """Write every case under ``out`` (replacing what was there)."""
    reg = build_registry()
    out = Path(out)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        staging = Path(tmp) / "cases"
        reg.write(staging)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staging), str(out))
    return reg


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m carton_conformance generate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CASES_DIR, help="target directory (default: carton_conformance/cases)")
    args = parser.parse_args(argv)
    reg = generate(args.out)
    print(f"wrote {len(reg.cases)} cases to {args.out}")
    return 0

__all__ = [
    "CASES_DIR",
    "build_registry",
    "generate",
    "main",
]


if __name__ == "__main__":
    raise SystemExit(main())
