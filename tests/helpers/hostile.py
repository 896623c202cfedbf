"""Hostile archives: small files that cost a careless reader a lot of memory, time or output.

Each builder returns the archive's bytes (or writes it to a path, for the large ones) and is a
plain function, so the hardening tests (tests/format/test_hardening_*.py) and benchmarks can share
them.  Everything is built with the project's zip writer, members zstd-compressed (method 93), so
a few MiB of repetitive TOML or GiBs of zeros fit in a few KiB.

    from tests.helpers import hostile
    data = hostile.many_invalid_inputs(2 * hostile.MiB)      # ~1 KB, carton.toml of 2 MiB
    hostile.write_zero_tensor(path, 1 << 30)                   # 1 GiB float32 zeros, ~33 KB
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from carton_format._zip.writer import ZipWriter
from carton_format.manifest import format_manifest

KiB = 1024
MiB = 1024 * KiB
ZSTD = 93

RUNNER = (
    '[runner]\nrunner_name = "torchscript"\nrequired_framework_version = "=2.13"\nrunner_compat_version = 1\n'
)
MINIMAL_TOML = "spec_version = 1\n" + RUNNER
EMPTY_INDEX = b"tensor = []\n"


def archive(members: dict[str, bytes], *, method: int = ZSTD) -> bytes:
    """A zip of ``members`` (plus ``model/model.pt`` and an index unless given) with a correct MANIFEST."""
    content = {"model/model.pt": b"not a model", "tensor_data/index.toml": EMPTY_INDEX, **members}
    manifest = format_manifest({k: hashlib.sha256(v).hexdigest() for k, v in content.items()})
    buf = io.BytesIO()
    writer = ZipWriter(buf)
    for name in sorted(content):
        writer.add_bytes(name, content[name], method=method)
    writer.add_bytes("MANIFEST", manifest, method=0)
    writer.close()
    return buf.getvalue()


def _repeat_to(unit: str, size: int) -> tuple[str, int]:
    count = max(1, size // len(unit))
    return unit * count, count


# -- 1. schema and reference errors in bulk ---------------------------------------------------


def invalid_inputs_toml(size: int) -> bytes:
    """carton.toml of about ``size`` bytes: ``[[input]]`` tables each missing name, dtype and shape."""
    body, _ = _repeat_to("[[input]]\n", size)
    return (MINIMAL_TOML + body).encode()


def many_invalid_inputs(size: int) -> bytes:
    """An archive whose carton.toml (about ``size`` bytes) holds ~size/10 empty ``[[input]]``
    tables: three E-SCHEMA findings each (a ~1 KB file for several MiB of TOML)."""
    return archive({"carton.toml": invalid_inputs_toml(size)})


def dangling_refs_toml(size: int) -> bytes:
    """carton.toml of about ``size`` bytes: one ``[[self_test]]`` whose inputs are all dangling
    ``@tensor_data/`` references (~23 bytes each)."""
    lines = []
    total = 0
    i = 0
    while total < size:
        line = f'{i:x}="@tensor_data/n"\n'
        lines.append(line)
        total += len(line)
        i += 1
    return (MINIMAL_TOML + "[[self_test]]\n[self_test.inputs]\n" + "".join(lines)).encode()


def many_dangling_refs(size: int) -> bytes:
    """An archive with ~size/23 dangling references in one self test (one E-REF-DANGLING each)."""
    return archive({"carton.toml": dangling_refs_toml(size)})


def invalid_dims_toml(size: int) -> bytes:
    """carton.toml of about ``size`` bytes: one input whose shape lists ~size/4 floats (each an
    invalid dimension inside an anyOf inside an anyOf: a deep jsonschema context tree)."""
    body, _ = _repeat_to("1.5,", size)
    return (
        "spec_version = 1\n[[input]]\nname = \"x\"\ndtype = \"float32\"\nshape = [" + body + "]\n" + RUNNER
    ).encode()


def many_invalid_dims(size: int) -> bytes:
    """An archive whose one input shape holds ~size/4 invalid dimensions."""
    return archive({"carton.toml": invalid_dims_toml(size)})


def invalid_links_archive(size: int) -> bytes:
    """An archive whose LINKS (about ``size`` bytes) maps many non-hash keys to non-list values."""
    lines = []
    total = 0
    i = 0
    while total < size:
        line = f"k{i:x} = 1\n"
        lines.append(line)
        total += len(line)
        i += 1
    links = ("version = 1\n[urls]\n" + "".join(lines)).encode()
    content = {"model/model.pt": b"not a model", "tensor_data/index.toml": EMPTY_INDEX, "carton.toml": MINIMAL_TOML.encode()}
    manifest = format_manifest({k: hashlib.sha256(v).hexdigest() for k, v in content.items()})
    buf = io.BytesIO()
    writer = ZipWriter(buf)
    for name in sorted(content):
        writer.add_bytes(name, content[name], method=ZSTD)
    writer.add_bytes("MANIFEST", manifest, method=0)
    writer.add_bytes("LINKS", links, method=0)
    writer.close()
    return buf.getvalue()


# -- 2. shape arithmetic ----------------------------------------------------------------------


def overflowing_shape_archive(dtype: str = "float32", shape: tuple[int, ...] = (0, 2**63)) -> bytes:
    """One tensor with a zero dimension next to one >= 2**63 (zero elements, but numpy cannot
    hold the shape), referenced by a self test; its file is empty."""
    ext = "toml" if dtype == "string" else "bin"
    payload = b"data = []\n" if dtype == "string" else b""
    dims = ", ".join(str(d) for d in shape)
    index = f'[[tensor]]\nname = "t"\ndtype = "{dtype}"\nshape = [{dims}]\nfile = "t.{ext}"\ninner = []\n'
    toml = MINIMAL_TOML + '[[self_test]]\n[self_test.inputs]\nx = "@tensor_data/t"\n'
    return archive({"carton.toml": toml.encode(), "tensor_data/index.toml": index.encode(), f"tensor_data/t.{ext}": payload})


# -- 3. tensors that are cheap to store and expensive to check -------------------------------


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._left)
        buffer[:n] = bytes(n) if n < (1 << 20) else b"\0" * n
        self._left -= n
        return n


def _zero_sha256(size: int) -> str:
    h = hashlib.sha256()
    chunk = bytes(min(size, 4 * MiB))
    left = size
    while left:
        n = min(left, len(chunk))
        h.update(chunk[:n] if n < len(chunk) else chunk)
        left -= n
    return h.hexdigest()


def write_zero_tensor(path: str | os.PathLike[str], nbytes: int, *, dtype: str = "float32") -> Path:
    """Write to ``path`` an archive holding one all-zero numeric tensor of ``nbytes`` bytes
    (zstd: 4 GiB takes ~131 KB), referenced by a self test.  Streams; never holds the tensor."""
    itemsize = {"float32": 4, "float64": 8, "uint8": 1, "int8": 1}[dtype]
    numel = nbytes // itemsize
    index = f'[[tensor]]\nname = "t"\ndtype = "{dtype}"\nshape = [{numel}]\nfile = "t.bin"\ninner = []\n'.encode()
    toml = (MINIMAL_TOML + '[[self_test]]\n[self_test.inputs]\nx = "@tensor_data/t"\n').encode()
    small = {"carton.toml": toml, "model/model.pt": b"not a model", "tensor_data/index.toml": index}
    hashes = {k: hashlib.sha256(v).hexdigest() for k, v in small.items()}
    hashes["tensor_data/t.bin"] = _zero_sha256(numel * itemsize)
    path = Path(path)
    with open(path, "wb") as fh:
        writer = ZipWriter(fh)
        for name in sorted(hashes):
            if name in small:
                writer.add_bytes(name, small[name], method=ZSTD)
            else:
                writer.add_stream(name, io.BufferedReader(_Zeros(numel * itemsize), 4 * MiB), method=ZSTD, size_hint=numel * itemsize)
        writer.add_bytes("MANIFEST", format_manifest(hashes), method=0)
        writer.close()
    return path


def string_tensor_archive(strings_toml: bytes, shape: tuple[int, ...]) -> bytes:
    """One string tensor of ``shape`` whose file is ``strings_toml``, referenced by a self test."""
    dims = ", ".join(str(d) for d in shape)
    index = f'[[tensor]]\nname = "t"\ndtype = "string"\nshape = [{dims}]\nfile = "t.toml"\ninner = []\n'
    toml = MINIMAL_TOML + '[[self_test]]\n[self_test.inputs]\nx = "@tensor_data/t"\n'
    return archive({"carton.toml": toml.encode(), "tensor_data/index.toml": index.encode(), "tensor_data/t.toml": strings_toml})


def many_strings(count: int) -> bytes:
    """A string tensor of ``count`` empty strings (10M: a 40 MB file, ~5 KB zstd)."""
    return string_tensor_archive(b"data = [" + b'"",' * count + b"]\n", (count,))


def wide_strings(count: int, width: int) -> bytes:
    """A string tensor of ``count`` strings, one of them ``width`` characters long: numpy's
    fixed-width array would need count x width x 4 bytes."""
    data = b'data = ["' + b"x" * width + b'",' + b'"",' * (count - 1) + b"]\n"
    return string_tensor_archive(data, (count,))


def surplus_strings(declared: int, actual: int) -> bytes:
    """A string tensor declaring ``declared`` elements whose file holds ``actual`` strings."""
    return string_tensor_archive(b"data = [" + b'"",' * actual + b"]\n", (declared,))


# -- measuring --------------------------------------------------------------------------------

_MEASURE = """
import resource, sys, time
start = time.perf_counter()
rc = 0
try:
    exec(compile(sys.argv[1], "<measured>", "exec"), {"__name__": "__measured__", "ARGS": sys.argv[2:]})
except SystemExit as exc:
    rc = exc.code if isinstance(exc.code, int) else 1
finally:
    seconds = time.perf_counter() - start
    try:  # VmHWM: this process image's own peak (ru_maxrss keeps the forked parent's size)
        with open("/proc/self/status") as status:
            peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    sys.stdout.flush()
    sys.stderr.write(f"\\n@@measured {seconds} {peak}\\n")
sys.exit(rc)
"""

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Measured:
    """One run in a fresh interpreter: exit status, output, and what the code itself cost."""

    rc: int
    stdout: bytes
    stderr: str
    seconds: float  # wall time of the code (interpreter start-up excluded)
    peak_mib: float  # peak resident memory of the interpreter (VmHWM)


def measure(code: str, *args: str, timeout: float = 600) -> Measured:
    """Run ``code`` (``ARGS`` holds ``args``) in a fresh Python with the repository on its path.

    The peak is the child's own high-water mark (``VmHWM`` on Linux, else ``ru_maxrss``), so it
    is exact whatever else the test process ran (``RUSAGE_CHILDREN`` is the largest child ever,
    and a forked child's ``ru_maxrss`` starts at its parent's size); compare it with
    :func:`baseline_mib` (the same interpreter after importing carton_format) to get what the
    code cost.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, code, *args], capture_output=True, cwd=ROOT, env=env, timeout=timeout, check=False
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    head, _, tail = stderr.rpartition("@@measured ")
    seconds, peak = tail.split()[:2] if tail else ("nan", "0")
    return Measured(proc.returncode, proc.stdout, head, float(seconds), int(peak) / (1024 * 1024))


def measure_cli(*argv: str, timeout: float = 600) -> Measured:
    """``carton ARGV`` (carton_format.cli.main) measured in a fresh interpreter."""
    return measure("from carton_format.cli import main\nraise SystemExit(main(ARGS))", *argv, timeout=timeout)


@functools.lru_cache(maxsize=None)
def baseline_mib() -> float:
    """Peak memory of a fresh interpreter that imported carton_format and did nothing else."""
    return measure("import carton_format, carton_format.cli").peak_mib


__all__ = [
    "ROOT",
    "KiB",
    "Measured",
    "MiB",
    "archive",
    "baseline_mib",
    "measure",
    "measure_cli",
    "dangling_refs_toml",
    "invalid_dims_toml",
    "invalid_inputs_toml",
    "invalid_links_archive",
    "many_dangling_refs",
    "many_invalid_dims",
    "many_invalid_inputs",
    "many_strings",
    "overflowing_shape_archive",
    "string_tensor_archive",
    "surplus_strings",
    "wide_strings",
    "write_zero_tensor",
]
