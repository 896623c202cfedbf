"""Seed corpora for every target, made from the archives already in the repository.

Sources: ``tests/data/**/*.carton``, the conformance archives under
``carton_conformance/cases/inspect/`` (valid and invalid), the original's TOML fixtures
(``tests/data/original_toml``), the version requirement cases, and the regression inputs of
past findings (``fuzz/findings/<target>/``).  Members are taken apart with the project's zip
reader: MANIFEST, LINKS, carton.toml, the tensor index and string tensor files seed the parser
targets; each archive's members (model files cut short: nothing reads them) seed ``archive``.
"""

from __future__ import annotations

import hashlib
import io
import tomllib
from pathlib import Path

from . import archive_spec

ROOT = Path(__file__).resolve().parent.parent
FINDINGS = Path(__file__).resolve().parent / "findings"
#: Model files are opaque to the format layer: a few bytes of each are enough.
MODEL_BYTES = 256


def seed_archives() -> list[Path]:
    """Every .carton the repository holds for tests and conformance."""
    paths = sorted((ROOT / "tests" / "data").rglob("*.carton"))
    paths += sorted((ROOT / "carton_conformance" / "cases" / "inspect").rglob("*.carton"))
    return paths


def _members(blob: bytes) -> list[tuple[str, bytes, int, bool]] | None:
    """(name, content, method, is_symlink) of every member readable with the project's reader."""
    from carton_format._zip.reader import ZipReader
    from carton_format.errors import CartonError

    try:
        reader = ZipReader(io.BytesIO(blob))
    except CartonError:
        return None
    out = []
    with reader:
        for entry in reader.entries:
            if entry.is_dir:
                continue
            try:
                data = reader.read_member(entry, 64 << 20)
            except CartonError:
                continue
            out.append((entry.name, data, entry.method, entry.is_symlink))
    return out


def _versionreq_seeds() -> list[bytes]:
    seeds = []
    for case in sorted((ROOT / "carton_conformance" / "cases" / "versionreq").rglob("case.toml")):
        doc = tomllib.loads(case.read_text("utf-8"))
        requirement, version = doc.get("requirement"), doc.get("version")
        if isinstance(requirement, str):
            seeds.append(f"{requirement}\n{version if isinstance(version, str) else '1.0.0'}".encode())
    return seeds


def build_seeds(max_len: dict[str, int]) -> dict[str, list[bytes]]:
    """Seed inputs per target (deduplicated, each within the target's ``max_len``)."""
    seeds: dict[str, dict[str, bytes]] = {name: {} for name in max_len}

    def add(target: str, data: bytes) -> None:
        if target in seeds and len(data) <= max_len[target]:
            seeds[target].setdefault(hashlib.sha1(data).hexdigest(), data)

    for path in seed_archives():
        blob = path.read_bytes()
        add("validate", blob)
        add("zip", blob)
        members = _members(blob)
        if members is None:
            continue
        spec = archive_spec.ArchiveSpec()
        for name, data, method, is_symlink in members:
            if name == "MANIFEST":
                add("manifest", data)
            elif name == "LINKS":
                add("links", data)
                add("toml", data)
            elif name == "tensor_data/index.toml":
                add("index", data)
                add("toml", data)
            elif name.endswith(".toml"):
                add("toml", data)
            kept = data[:MODEL_BYTES] if name.startswith("model/") and not is_symlink else data
            kind = archive_spec.SYMLINK if is_symlink else archive_spec.FILE
            spec.members.append(archive_spec.Member(name, kept, kind, archive_spec.METHODS.index(method) if method in archive_spec.METHODS else 0))
        add("archive", archive_spec.encode(spec))
    for toml_file in sorted((ROOT / "tests" / "data" / "original_toml").glob("*.toml")):
        add("toml", toml_file.read_bytes())
    for data in _versionreq_seeds():
        add("versionreq", data)
    for data in (b"fine", b"crash: planted", b"slow: planted"):
        add("selftest", data)
    for target in seeds:
        for finding in sorted((FINDINGS / target).glob("*")) if (FINDINGS / target).is_dir() else []:
            if finding.is_file():
                add(target, finding.read_bytes())
    return {name: list(found.values()) for name, found in seeds.items()}


def write_seeds(directory: Path, max_len: dict[str, int]) -> dict[str, Path]:
    """Write each target's seeds to ``directory/<target>/`` (named by SHA-1, as libFuzzer does)."""
    out = {}
    for target, inputs in build_seeds(max_len).items():
        folder = directory / target
        folder.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
        out[target] = folder
    return out


__all__ = ["build_seeds", "seed_archives", "write_seeds"]
