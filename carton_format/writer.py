"""``write()``: pack metadata, tensors, misc files and a model directory into a .carton archive.

The output is deterministic (fixed timestamps and permissions, sorted members, sorted MANIFEST),
streamed (model files are never read into memory) and atomic (written to a temporary file next
to the target, then renamed; an existing file is only replaced when ``overwrite=True``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import _schema
from ._atomic import atomic_output, check_target, output_path
from ._model_dir import MODEL_PREFIX, walk_model_dir
from ._paths import check_member_path, collision_key
from ._toml import dump_toml
from ._zip.writer import WrittenMember, ZipWriter
from .errors import CartonFormatError
from .integrity import hash_stream, sha256_file, sha256_hex
from .lazy import LazyTensor, is_misc_value, misc_bytes
from .limits import DEFAULT_LIMITS
from .links import Links, links_to_document
from .manifest import LINKS_PATH, MANIFEST_PATH, format_manifest
from .metadata import MISC_REF_PREFIX, TENSOR_REF_PREFIX, CartonInfo, Example, SelfTest, info_to_document
from .tensor_data import INDEX_PATH, TENSOR_DIR, EncodedTensor, encode_tensor, index_to_document

log = logging.getLogger(__name__)

COMPRESSION_METHODS = {"stored": 0, "deflate": 8, "zstd": 93}
CARTON_TOML = "carton.toml"
MISC_DIR = "misc/"


@dataclass(frozen=True)
class WriteResult:
    """What ``write()`` produced."""

    path: Path
    manifest_sha256: str
    manifest: dict[str, str]
    members: list[WrittenMember] = field(repr=False)

    def file_sha256(self) -> str:
        """sha256 of the whole archive file (reads it once; deterministic across runs)."""
        return sha256_file(self.path)


@dataclass
class _Member:
    """A planned archive member: bytes, a file to stream, or a symlink."""

    name: str
    data: bytes | None = None
    source: Path | None = None
    size: int = 0
    link_target: str | None = None
    link_member: str | None = None
    sha256: str | None = None  # known up front for bytes and linked files


def _plan_data(info: CartonInfo) -> tuple[list[EncodedTensor], dict[str, bytes], list, list]:
    """Assign ``_tensor_N`` / ``_example_misc_file_N`` names to self-test and example values."""
    tensors: list[EncodedTensor] = []
    misc: dict[str, bytes] = {}
    counter = 0

    def tensor_ref(value: Any, where: str) -> str:
        nonlocal counter
        name = f"_tensor_{counter}"
        if isinstance(value, LazyTensor):
            value = value.load()
        tensors.extend(encode_tensor(name, value, f"tensor_{counter}", where))
        counter += 1
        return TENSOR_REF_PREFIX + name

    def value_ref(value: Any, where: str) -> str:
        if is_misc_value(value):
            name = f"_example_misc_file_{len([k for k in misc if k.startswith('_example_misc_file_')])}"
            misc[name] = misc_bytes(value)
            return MISC_REF_PREFIX + name
        return tensor_ref(value, where)

    def mapping(values: Any, where: str, ref: Callable[[Any, str], str]) -> dict[str, str]:
        if not isinstance(values, dict):
            raise CartonFormatError("E-ARG-INVALID", f"{where}: must be a dict of name -> value")
        for key in values:
            if not isinstance(key, str):
                raise CartonFormatError("E-ARG-INVALID", f"{where}: key {key!r} is not a str")
        return {k: ref(values[k], f"{where}.{k}") for k in sorted(values)}

    test_refs = []
    for i, test in enumerate(info.self_tests or []):
        inputs = mapping(test.inputs, f"self_tests[{i}].inputs", tensor_ref)
        expected = None if test.expected_out is None else mapping(test.expected_out, f"self_tests[{i}].expected_out", tensor_ref)
        test_refs.append((inputs, expected))
    example_refs = []
    for i, example in enumerate(info.examples or []):
        inputs = mapping(example.inputs, f"examples[{i}].inputs", value_ref)
        sample_out = mapping(example.sample_out, f"examples[{i}].sample_out", value_ref)
        example_refs.append((inputs, sample_out))
    return tensors, misc, test_refs, example_refs


def _user_misc_files(info: CartonInfo, generated: dict[str, bytes]) -> list[_Member]:
    members = []
    for name, value in (info.misc_files or {}).items():
        if not isinstance(name, str) or not name or "/" in name:
            raise CartonFormatError("E-ARG-INVALID", f"misc_files: name {name!r} must be a non-empty file name without '/'")
        try:
            check_member_path(MISC_DIR + name)
        except CartonFormatError as exc:
            raise CartonFormatError("E-ARG-INVALID", f"misc_files: {exc.message}") from None
        if name in generated:
            raise CartonFormatError("E-ARG-INVALID", f"misc_files: name {name!r} is reserved for example files")
        if is_misc_value(value):
            members.append(_Member(MISC_DIR + name, data=misc_bytes(value)))
        elif isinstance(value, (str, os.PathLike)):
            path = Path(value)
            if not path.is_file():
                raise CartonFormatError("E-ARG-INVALID", f"misc_files[{name!r}]: {path} is not a file")
            members.append(_Member(MISC_DIR + name, source=path, size=path.stat().st_size))
        else:
            raise CartonFormatError("E-ARG-INVALID", f"misc_files[{name!r}]: expected bytes or a path, not {type(value).__name__}")
    return members


def _carton_toml(info: CartonInfo, test_refs: list, example_refs: list) -> bytes:
    document = info_to_document(info, test_refs, example_refs)
    problems = _schema.check(document, "carton-toml", CARTON_TOML)
    if problems:
        first = problems[0]
        raise CartonFormatError("E-ARG-INVALID", first.message, key=first.key)
    _check_integers(document)
    try:
        return _within_limit(CARTON_TOML, dump_toml(document), DEFAULT_LIMITS.max_toml_bytes)
    except (TypeError, ValueError) as exc:  # e.g. values tomli-w cannot represent
        raise CartonFormatError("E-ARG-INVALID", f"carton.toml cannot be written: {exc}") from None


def _within_limit(member: str, data: bytes, limit: int) -> bytes:
    """Writers stay within the default limits readers apply (FMT-LIMIT-1)."""
    if len(data) > limit:
        raise CartonFormatError("E-ARG-INVALID", f"{member} would be {len(data)} bytes; readers accept at most {limit}")
    return data


I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def _check_integers(value: Any, path: tuple[Any, ...] = ()) -> None:
    """Refuse integers outside the signed 64-bit range: TOML 1.0 and the original's parser
    (toml 0.5, i64) cannot read them, although readers accept u64 values (FMT-TOML-3)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_integers(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_integers(item, (*path, i))
    elif isinstance(value, int) and not isinstance(value, bool) and not I64_MIN <= value <= I64_MAX:
        raise CartonFormatError(
            "E-ARG-INVALID", f"{value} is outside the signed 64-bit range of TOML integers", key=_schema.format_key(path)
        )


def _check_collisions(members: list[_Member]) -> None:
    """Readers reject names equal after case folding / NFC (they collide when extracted)."""
    seen: dict[str, str] = {}
    for m in members:
        key = collision_key(m.name)
        if key in seen:
            raise CartonFormatError("E-ARG-INVALID", f"{m.name!r} and {seen[key]!r} differ only in case or Unicode normalisation")
        seen[key] = m.name


def _model_members(model_dir: str | os.PathLike[str] | None) -> list[_Member]:
    if model_dir is None:
        return []
    return [
        _Member(f.member, source=f.source, size=f.size, link_target=f.link_target, link_member=f.link_member)
        for f in walk_model_dir(model_dir)
    ]


def _checked_path(value: object, argument: str) -> Path:
    """A str or PathLike argument as a Path; E-ARG-INVALID (naming ``argument``) for anything
    else, an empty path or one holding a NUL character."""
    try:
        text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    except TypeError:
        text = None
    if not isinstance(text, str) or not text:
        raise CartonFormatError("E-ARG-INVALID", f"{argument} must be a non-empty str or path, not {value!r}")
    if "\0" in text:
        raise CartonFormatError("E-ARG-INVALID", f"{argument} {text!r} holds a NUL character")
    return Path(text)


def checked_output_path(target: object, argument: str = "target") -> Path:
    """The output path argument as a Path, refused up front when it can never be written:
    E-ARG-INVALID (not a path, empty, a NUL character), E-IO when an existing ancestor is not
    a directory (``/etc/passwd/x.carton``)."""
    path = output_path(_checked_path(target, argument))
    for ancestor in path.absolute().parents:
        try:
            if ancestor.exists():
                if not ancestor.is_dir():
                    raise CartonFormatError("E-IO", f"{argument} {path}: {ancestor} is not a directory")
                break
        except OSError as exc:
            raise CartonFormatError("E-IO", f"{argument} {path}: {exc.strerror or exc}") from None
    return path


def _checked_linked_files(linked_files: object) -> dict[str, list[str]]:
    if not isinstance(linked_files, dict):
        raise CartonFormatError("E-ARG-INVALID", f"linked_files must be a dict of sha256 -> list of URLs, not {type(linked_files).__name__}")
    for sha, urls in linked_files.items():
        if not isinstance(sha, str):
            raise CartonFormatError("E-ARG-INVALID", f"linked_files key {sha!r} is not a str")
        if not isinstance(urls, (list, tuple)) or not all(isinstance(u, str) for u in urls):
            raise CartonFormatError("E-ARG-INVALID", f"linked_files[{sha!r}] must be a list of URL strings, not {urls!r}")
    return {sha: list(urls) for sha, urls in linked_files.items()}


def _check_info_shapes(info: CartonInfo) -> None:
    """E-ARG-INVALID, naming the field, for CartonInfo fields of the wrong container type (what
    the later steps iterate over)."""
    for attr, cls in (("self_tests", SelfTest), ("examples", Example)):
        items = getattr(info, attr)
        if items is None:
            continue
        if not isinstance(items, (list, tuple)):
            raise CartonFormatError("E-ARG-INVALID", f"{attr} must be a list of {cls.__name__} objects, not {type(items).__name__}")
        for i, item in enumerate(items):
            if not isinstance(item, cls):
                raise CartonFormatError("E-ARG-INVALID", f"{attr}[{i}] must be a {cls.__name__} object, not {type(item).__name__}")
    if info.misc_files is not None and not isinstance(info.misc_files, dict):
        raise CartonFormatError("E-ARG-INVALID", f"misc_files must be a dict of name -> bytes or path, not {type(info.misc_files).__name__}")
    if not isinstance(info.extra, dict):
        raise CartonFormatError("E-ARG-INVALID", f"extra must be a dict, not {type(info.extra).__name__}")


#: ``write(progress=callback)``: called as ``callback(done, total)`` with bytes processed so far.
ProgressCallback = Callable[[int, int], Any]


class _Meter:
    """Bytes processed by ``write()`` (hashed for LINKS, then written), reported per chunk to the
    caller's callback or, for ``progress=True`` (or None on a terminal, for big archives), to a
    tqdm bar on stderr.  The runtime brings its own bars through the callback."""

    def __init__(self, total: int, progress: bool | ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self._callback: ProgressCallback | None = None
        self._bar: Any = None
        if callable(progress):
            self._callback = progress
            progress(0, total)
        elif progress or (progress is None and sys.stderr.isatty() and total > 256 * 1024 * 1024):
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="B", unit_scale=True, desc="packing", file=sys.stderr)

    @property
    def add(self) -> Callable[[int], None] | None:
        """The per-chunk hook (None when nothing listens, so callers skip the work)."""
        return self._add if self._callback is not None or self._bar is not None else None

    def _add(self, n: int) -> None:
        self.done += n
        if self._callback is not None:
            self._callback(self.done, self.total)
        else:
            self._bar.update(n)

    def lower_total(self, n: int) -> None:
        """``n`` planned bytes will not be written after all (files left out for LINKS)."""
        self.total -= n
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _hash_model_file(path: Path, add: Callable[[int], None] | None) -> str:
    if add is None:
        return sha256_file(path)
    with open(path, "rb", buffering=0) as src:
        return hash_stream(src, progress=add)


def _member_bytes(m: _Member) -> int:
    """The data bytes the zip writer will take for ``m``."""
    if m.link_target is not None:
        return len(m.link_target.encode("utf-8"))
    return len(m.data) if m.data is not None else m.size


def _planned_bytes(members: list[_Member], skipped: set[str]) -> int:
    """The member data ``write()`` will write (what the meter reports besides hashing)."""
    return sum(_member_bytes(m) for m in members if m.name not in skipped)


def write(
    target: str | os.PathLike[str],
    info: CartonInfo,
    model_dir: str | os.PathLike[str] | None = None,
    *,
    compression: str = "stored",
    linked_files: dict[str, list[str]] | None = None,
    overwrite: bool = False,
    progress: bool | ProgressCallback | None = None,
) -> WriteResult:
    """Write a Carton v1 archive to ``target``.

    ``model_dir``'s files go under ``model/``.  ``compression`` applies to content members
    (``stored``, the fastest to load, ``zstd`` or ``deflate``); MANIFEST and LINKS are always
    stored.  ``linked_files`` maps sha256 -> URLs: model files with those hashes are listed in
    MANIFEST but left out of the zip, and a LINKS member records where to fetch them.

    ``progress``: a callable is called on the caller's thread as ``progress(done, total)``:
    first ``(0, total)`` before any byte, ``total`` being every byte the write will process
    (with ``linked_files``, the model files hashed up front; then the members' data as written,
    uncompressed; MANIFEST and LINKS not counted), then after each chunk of a few MiB, ending
    with ``(total, total)`` on success.  With ``linked_files`` the total drops once, after the
    hashing, by the files left out of the zip.
    ``True`` shows a tqdm bar on stderr, ``False`` nothing, ``None`` (the default) a bar only
    on a terminal and for archives over 256 MiB.
    """
    if not isinstance(info, CartonInfo):
        raise CartonFormatError("E-ARG-INVALID", f"info must be a CartonInfo, not {type(info).__name__}")
    if not isinstance(compression, str) or compression not in COMPRESSION_METHODS:
        raise CartonFormatError("E-ARG-INVALID", f"compression must be one of {', '.join(COMPRESSION_METHODS)}, not {compression!r}")
    if not isinstance(overwrite, bool):
        raise CartonFormatError("E-ARG-INVALID", f"overwrite must be a bool, not {overwrite!r}")
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise CartonFormatError("E-ARG-INVALID", f"progress must be a bool, a callable(done, total) or None, not {progress!r}")
    method = COMPRESSION_METHODS[compression]
    target = checked_output_path(target)
    if model_dir is not None:
        _checked_path(model_dir, "model_dir")
    _check_info_shapes(info)
    check_target(target, overwrite)
    links = Links(_checked_linked_files(linked_files)) if linked_files else None
    if links:
        links_to_document(links)  # check the hashes and URLs before any work

    tensors, example_misc, test_refs, example_refs = _plan_data(info)
    members: list[_Member] = [_Member(CARTON_TOML, data=_carton_toml(info, test_refs, example_refs))]
    index = index_to_document(t.entry for t in tensors)
    members.append(_Member(INDEX_PATH, data=_within_limit(INDEX_PATH, dump_toml(index), DEFAULT_LIMITS.max_toml_bytes)))
    members += [_Member(TENSOR_DIR + t.entry.file, data=t.payload) for t in tensors if t.payload is not None]
    members += [_Member(MISC_DIR + name, data=data) for name, data in example_misc.items()]
    members += _user_misc_files(info, example_misc)
    members += _model_members(model_dir)
    if not any(m.name.startswith(MODEL_PREFIX) for m in members):
        # FMT-PATH-5: a carton packages a model; an archive without one does not conform.
        raise CartonFormatError("E-ARG-INVALID", "model_dir must hold at least one file: a carton packages a model (FMT-PATH-5)")
    members.sort(key=lambda m: m.name.encode("utf-8"))
    _check_collisions(members)

    to_hash = [m for m in members if m.source is not None and m.name.startswith(MODEL_PREFIX)] if links else []
    meter = _Meter(sum(m.size for m in to_hash) + _planned_bytes(members, set()), progress)
    try:
        links, links_bytes, skipped = _leave_out_linked(members, links, to_hash, meter.add)
        if skipped:
            meter.lower_total(sum(_member_bytes(m) for m in members if m.name in skipped))
        with atomic_output(target, overwrite=overwrite) as (fh, _tmp):
            writer = ZipWriter(fh, progress=meter.add)
            written, manifest = _write_members(writer, members, method, skipped)
            writer.progress = None  # MANIFEST and LINKS are not part of the total
            manifest_bytes = _within_limit(MANIFEST_PATH, format_manifest(manifest), DEFAULT_LIMITS.max_manifest_bytes)
            writer.add_bytes(MANIFEST_PATH, manifest_bytes, method=0)
            if links_bytes is not None:
                writer.add_bytes(LINKS_PATH, links_bytes, method=0)
            writer.close()
    finally:
        meter.close()
    manifest_sha256 = sha256_hex(manifest_bytes)
    log.info("wrote %s (%d members, manifest %s)", target, len(written), manifest_sha256)
    return WriteResult(target, manifest_sha256, manifest, written)


def _leave_out_linked(
    members: list[_Member], links: Links | None, to_hash: list[_Member], add: Callable[[int], None] | None
) -> tuple[Links | None, bytes | None, set[str]]:
    """Hash the model files ``to_hash`` and leave out of the zip those ``links`` lists:
    (the LINKS to write, its bytes, the names left out)."""
    skipped: set[str] = set()
    if links:
        for m in to_hash:
            m.sha256 = _hash_model_file(m.source, add)  # type: ignore[arg-type]
            if m.sha256 in links.urls:
                skipped.add(m.name)
        by_name = {m.name: m for m in members}
        for m in members:  # a symlink to a left-out file is left out too: a link must end in the zip
            if m.link_member in skipped:
                m.sha256 = by_name[m.link_member].sha256
                skipped.add(m.name)
        used = {m.sha256 for m in members if m.name in skipped}
        for sha in sorted(set(links.urls) - used):
            log.warning("linked_files: no model file has sha256 %s; not written to LINKS", sha)
        # LINKS lists only the files left out of the zip (FMT-LINKS-6, FMT-LINKS-7).
        links = Links({sha: urls for sha, urls in links.urls.items() if sha in used}) if used else None
    links_bytes = None
    if links:
        links_bytes = _within_limit(LINKS_PATH, dump_toml(links_to_document(links)), DEFAULT_LIMITS.max_toml_bytes)
    return links, links_bytes, skipped


def _write_members(
    writer: ZipWriter, members: list[_Member], method: int, skipped: set[str]
) -> tuple[list[WrittenMember], dict[str, str]]:
    written: list[WrittenMember] = []
    manifest: dict[str, str] = {}
    for m in members:
        if m.name in skipped:
            manifest[m.name] = m.sha256  # type: ignore[assignment]
            continue
        if m.link_target is not None:
            written.append(writer.add_symlink(m.name, m.link_target))
            continue
        if m.data is not None:
            result = writer.add_bytes(m.name, m.data, method=method)
        else:
            try:
                with open(m.source, "rb") as src:  # type: ignore[arg-type]
                    result = writer.add_stream(m.name, src, method=method, size_hint=m.size)
            except OSError as exc:
                raise CartonFormatError("E-IO", f"{m.source}: {exc.strerror or exc}") from None
        manifest[m.name] = result.sha256
        written.append(result)
    for m in members:  # symlinks are listed with the hash of their final target's content
        if m.link_target is not None:
            target_hash = manifest.get(m.link_member)  # type: ignore[arg-type]
            if target_hash is None:
                raise CartonFormatError("E-MODEL-DIR", f"{m.name}: symlink target {m.link_member} is not packed")
            manifest[m.name] = target_hash
    return written, manifest


__all__ = ["COMPRESSION_METHODS", "ProgressCallback", "WriteResult", "write"]
