"""The fuzz targets and the rule they check.

**The rule.**  Untrusted bytes may make the format layer raise ``carton_format.CartonError``
(that is how it reports a bad archive) and nothing else: any other exception is a finding (a
crash).  ``validate()`` must not raise at all, and its report must serialise to JSON (what
``carton validate --json`` prints).  Every input must also finish within the target's time
bound (:class:`TooSlow` otherwise); libFuzzer's ``-timeout`` catches real hangs.

Targets (``TARGETS``): ``validate`` (raw bytes as a .carton: ``validate()`` and ``read()``);
``archive`` (a structured archive rebuilt with fixed-up CRCs and MANIFEST, then read with every
tensor loaded and every member read, see ``archive_spec``); and each parser alone: ``toml``,
``manifest``, ``links``, ``versionreq``, ``zip`` (the zip reader over bytes), ``index`` (the
tensor index).

Raw-byte targets read with :data:`FUZZ_LIMITS`: the default limits allow members of a TiB and
zstd expansions of 32,000x (all-zero weights), so a 64 KiB input could legally make a reader
hash gigabytes; the tighter limits keep "slow" meaning "more work than the input justifies".
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import carton_format as cf
from carton_format import _schema
from carton_format._toml import parse_toml
from carton_format._zip.reader import ZipReader
from carton_format._zip.source import ZipSource
from carton_format._zip.writer import ZipWriter
from carton_format.describe import describe_info
from carton_format.dtypes import NESTED_DTYPE, STRING_DTYPE
from carton_format.errors import CartonError, CartonFormatError
from carton_format.lazy import LazyTensor
from carton_format.limits import Limits, MiB
from carton_format.links import links_from_document
from carton_format.manifest import LINKS_PATH, format_manifest, parse_manifest
from carton_format.tensor_data import INDEX_PATH, decode_numeric, expected_numeric_size, parse_index
from carton_format.version_req import Comparator, VersionReq, parse_version

from . import archive_spec

FUZZ_LIMITS = Limits(
    max_member_bytes=64 * MiB,
    max_total_bytes=256 * MiB,
    max_manifest_bytes=4 * MiB,
    max_toml_bytes=4 * MiB,
    max_string_tensor_bytes=16 * MiB,
    max_numeric_tensor_bytes=64 * MiB,
    ratio_floor_bytes=4 * MiB,
)
#: Bytes read from one member at most by the touch-everything targets.
READ_CAP = 64 * MiB


class FuzzFinding(Exception):
    """A broken rule that is not an exception of the code under test."""


class TooSlow(FuzzFinding):
    """One input took longer than the target's time bound."""


class ContractBroken(FuzzFinding):
    """The code under test broke a documented promise (e.g. ``validate()`` raised); ``promise``
    names it (and is the finding's signature)."""

    def __init__(self, promise: str, message: str) -> None:
        super().__init__(f"{promise}: {message}")
        self.promise = promise


@dataclass(frozen=True)
class Target:
    """A fuzz target: ``run(data)`` may raise CartonError; ``max_len``/``time_bound_s`` bound
    its inputs; ``weight`` is its share of a run of all targets."""

    name: str
    run: Callable[[bytes], Any]
    max_len: int
    time_bound_s: float
    weight: int = 1
    structured: bool = False


# -- helpers -----------------------------------------------------------------------------------


def _attempt(step: Callable[[], Any]) -> Any:
    """Run one step; a CartonError is an accepted outcome (the next step still runs)."""
    try:
        return step()
    except CartonError:
        return None


def _drain(stream: Any, cap: int = READ_CAP) -> int:
    total = 0
    with stream:
        while total <= cap:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    return total


def _touch_value(value: Any) -> None:
    """Load a tensor or read a misc file (lazy values of the reader)."""
    if isinstance(value, LazyTensor):
        _attempt(value.load)
    elif hasattr(value, "read") and callable(value.read):
        _attempt(value.read)


def touch_archive(archive: cf.CartonArchive) -> None:
    """Everything a user of ``read()`` can reach: metadata, every tensor, every misc file,
    every MANIFEST path's bytes, the listing, the deep verification."""
    info = archive.info
    for test in info.self_tests or []:
        for mapping in (test.inputs, test.expected_out or {}):
            for value in mapping.values():
                _touch_value(value)
    for example in info.examples or []:
        for mapping in (example.inputs, example.sample_out):
            for value in mapping.values():
                _touch_value(value)
    for value in (info.misc_files or {}).values():
        _touch_value(value)
    description = _attempt(lambda: describe_info(info, with_values=True))
    if description is not None:
        strict_json(description, "describe_info() (carton info --json)")
    _attempt(lambda: [str(s.shape) for s in (info.inputs or []) + (info.outputs or [])])
    _attempt(archive.members)
    for path in archive.manifest:
        _attempt(lambda path=path: _drain(archive.open(path)))
    for entry in archive.tensor_index.entries.values():
        _attempt(lambda entry=entry: archive.load_tensor(entry))
    _attempt(archive.verify)
    _ = archive.warnings


def strict_json(value: Any, what: str) -> str:
    """``value`` as RFC 8259 JSON (no NaN or Infinity, which e.g. jq refuses): a JSON view
    that cannot be one is a broken promise."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ContractBroken(f"{what} is strict JSON", str(exc)) from None


def _check_validate(source: Any, **kwargs: Any) -> cf.ValidationReport:
    try:
        report = cf.validate(source, **kwargs)
    except CartonError as exc:
        raise ContractBroken("validate() never raises", f"it raised {exc.code}: {exc.message}") from exc
    strict_json(report.to_dict(), "validate().to_dict() (carton validate --json)")
    return report


# -- targets -----------------------------------------------------------------------------------


def fuzz_validate(data: bytes) -> None:
    """Raw bytes as a .carton: ``validate()`` (twice: with and without hashes) and ``read()``."""
    _check_validate(io.BytesIO(data), limits=FUZZ_LIMITS)
    _check_validate(io.BytesIO(data), limits=FUZZ_LIMITS, verify_hashes=False)
    with cf.read(io.BytesIO(data), limits=FUZZ_LIMITS) as archive:
        touch_archive(archive)


def _fetcher(linked: dict[str, bytes]) -> Callable[[str, str, list[str]], Any]:
    def fetch(path: str, sha256: str, urls: list[str]) -> Any:
        if path not in linked:
            raise CartonFormatError("E-LINKS-NOT-FETCHED", "not served by the fuzz fetcher", member=path)
        return io.BytesIO(linked[path])

    return fetch


def build_archive(data: bytes) -> archive_spec.Built | None:
    """The zip that a structured input stands for (None for an input that is not one)."""
    spec = archive_spec.decode(data)
    if spec is None:
        return None
    return archive_spec.build(spec, ZipWriter, format_manifest, CartonFormatError)


def fuzz_archive(data: bytes) -> None:
    """A structured archive, rebuilt with right CRCs and MANIFEST, read with and without hash
    verification (every tensor loaded, every member read) and validated."""
    built = build_archive(data)
    if built is None:
        return
    fetch = _fetcher(built.linked)
    for verify in (True, False):
        try:
            with cf.read(io.BytesIO(built.zip_bytes), verify_hashes=verify, fetch_linked=fetch) as archive:
                touch_archive(archive)
        except CartonError:
            pass
    _check_validate(io.BytesIO(built.zip_bytes))


def fuzz_toml(data: bytes) -> None:
    """The TOML reader, then each schema that a TOML member is checked against."""
    document = parse_toml(data, "carton.toml")
    for schema in _schema.SCHEMAS:
        _schema.check(document, schema, "carton.toml")


def fuzz_manifest(data: bytes) -> None:
    """MANIFEST parsing; a parsed MANIFEST formats back to the same entries."""
    manifest = parse_manifest(data)
    again = parse_manifest(format_manifest(manifest.entries))
    if again.entries != manifest.entries:
        raise ContractBroken("MANIFEST round trip", "format_manifest(parse_manifest(x)) lost or changed entries")


def fuzz_links(data: bytes) -> None:
    """LINKS as the reader parses it: TOML, the links schema, then the semantic checks."""
    document = parse_toml(data, LINKS_PATH)
    problems = _schema.check(document, "links", LINKS_PATH)
    if problems:
        raise problems[0]
    links = links_from_document(document)
    for sha in links.urls:
        links.urls_for(sha)


def fuzz_versionreq(data: bytes) -> None:
    """A requirement (first line) matched against a version (second line), both parsed."""
    text = data.decode("utf-8", "replace")
    requirement, _, version = text.partition("\n")
    req = _attempt(lambda: VersionReq.parse(requirement))
    _attempt(lambda: Comparator.parse(requirement))
    parsed = _attempt(lambda: parse_version(version))
    if req is not None:
        if VersionReq.parse(str(req)) != req:
            raise ContractBroken("VersionReq str() round trip", f"{requirement!r} parses to {req}, which parses to something else")
        if parsed is not None:
            req.matches(parsed)
        _attempt(lambda: req.matches(version))


def fuzz_zip(data: bytes) -> None:
    """The zip reader over bytes: every member read to its end, symlinks resolved, spans and
    the deep layout check; then the same bytes as a ZipSource."""
    with ZipReader(io.BytesIO(data), limits=FUZZ_LIMITS) as reader:
        for entry in reader.entries:
            _attempt(lambda entry=entry: _drain(reader.open(entry)))
            if entry.is_symlink:
                _attempt(lambda entry=entry: reader.resolve_symlink(entry.name))
                _attempt(lambda entry=entry: _drain(reader.open_resolved(entry.name)))
            _attempt(lambda entry=entry: reader.data_span(entry))
        _attempt(reader.check_layout)
    with ZipSource(io.BytesIO(data), limits=FUZZ_LIMITS) as source:
        _attempt(source.container_warnings)
        for member in source.members():
            _attempt(lambda member=member: source.stored_span(member.name))
            if member.is_symlink:
                _attempt(lambda member=member: source.link_text(member.name))
        _attempt(source.check_container)


def fuzz_index(data: bytes) -> None:
    """tensor_data/index.toml as the reader parses it, then each numeric tensor decoded from a
    file of the right size (when that is small)."""
    document = parse_toml(data, INDEX_PATH)
    problems = _schema.check(document, "tensor-index", INDEX_PATH)
    if problems:
        raise problems[0]
    index = parse_index(document)
    for entry in index.entries.values():
        if entry.dtype in (NESTED_DTYPE, STRING_DTYPE):
            continue
        size = expected_numeric_size(entry)
        if 0 <= size <= 1 << 16:
            decode_numeric(bytes(size), entry)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("validate", fuzz_validate, max_len=64 * 1024, time_bound_s=10.0, weight=2),
        Target("archive", fuzz_archive, max_len=128 * 1024, time_bound_s=10.0, weight=3, structured=True),
        Target("toml", fuzz_toml, max_len=16 * 1024, time_bound_s=3.0),
        Target("manifest", fuzz_manifest, max_len=16 * 1024, time_bound_s=3.0),
        Target("links", fuzz_links, max_len=8 * 1024, time_bound_s=3.0),
        Target("versionreq", fuzz_versionreq, max_len=512, time_bound_s=3.0),
        Target("zip", fuzz_zip, max_len=64 * 1024, time_bound_s=10.0),
        Target("index", fuzz_index, max_len=16 * 1024, time_bound_s=3.0),
    )
}



def fuzz_selftest(data: bytes) -> None:
    """The harness's own test target (not in ``all``): a crash on ``crash``, a slow input on
    ``slow``, a CartonError on anything else."""
    if data.startswith(b"crash"):
        raise RuntimeError("the self-test target's planted crash")
    if data.startswith(b"slow"):
        time.sleep(SELFTEST.time_bound_s * 1.5)
    raise CartonFormatError("E-ARG-INVALID", "the self-test target rejects this input")


SELFTEST = Target("selftest", fuzz_selftest, max_len=64, time_bound_s=0.2)
#: Every target by name, the self-test one included (``TARGETS`` is what ``all`` means).
ALL_TARGETS: dict[str, Target] = {**TARGETS, SELFTEST.name: SELFTEST}


# -- the rule ----------------------------------------------------------------------------------


def signature(exc: BaseException) -> str:
    """What identifies a finding across inputs: the exception type and the innermost frame of
    the code under test (``carton_format``, else the innermost frame of all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}carton_format{os.sep}" in f.filename]
    frame = (ours or frames or [None])[-1]
    where = "?" if frame is None else f"{Path(frame.filename).name}:{frame.name}"  # no line: stable across edits
    if isinstance(exc, TooSlow):
        where = "time bound"
    elif isinstance(exc, ContractBroken):
        where = exc.promise
    return f"{type(exc).__name__} at {where}"


def check(target: Target, data: bytes, *, known: frozenset[str] = frozenset()) -> str | None:
    """Run ``target`` on ``data`` under the rule: None when it holds or the finding is in
    ``known`` (then its signature is returned); otherwise the finding is raised."""
    start = time.perf_counter()
    try:
        target.run(data)
    except CartonError:
        pass
    except Exception as exc:
        sig = signature(exc)
        if sig in known:
            return sig
        raise
    elapsed = time.perf_counter() - start
    if elapsed > target.time_bound_s:
        finding = TooSlow(f"{target.name}: {elapsed:.2f} s for {len(data)} bytes (bound {target.time_bound_s} s)")
        sig = signature(finding)
        if sig in known:
            return sig
        raise finding
    return None


def record(directory: Path, target: Target, data: bytes, exc: BaseException) -> Path:
    """Save a finding (input and traceback) under ``directory``, named by its signature."""
    sig = signature(exc)
    key = hashlib.sha1(f"{target.name} {sig}".encode()).hexdigest()[:12]
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{target.name}-{key}"
    if not stem.with_suffix(".input").exists():
        stem.with_suffix(".input").write_bytes(data)
    text = "".join(traceback.format_exception(exc))
    stem.with_suffix(".json").write_text(
        json.dumps({"target": target.name, "signature": sig, "traceback": text, "input": stem.with_suffix(".input").name}, indent=2),
        "utf-8",
    )
    return stem


def input_sha1(data: bytes) -> str:
    """The name libFuzzer gives an input (its SHA-1)."""
    return hashlib.sha1(data).hexdigest()


__all__ = ["ALL_TARGETS", "FUZZ_LIMITS", "TARGETS", "ContractBroken", "FuzzFinding", "Target", "TooSlow", "check", "record", "signature"]
