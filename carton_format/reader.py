"""``read()``: open a Carton archive, check its structure and expose metadata lazily.

Reading metadata touches the end of the file, the central directory and three small members
(MANIFEST, carton.toml, tensor_data/index.toml).  Every member that is read is checked against
its MANIFEST hash; with ``verify_hashes=True`` (the default) every member is verified up front.
The archive may be a zip (path or seekable file), an unpacked directory, or any
:class:`~carton_format.sources.ArchiveSource`.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from dataclasses import dataclass, replace
from typing import IO, Any, BinaryIO, Callable

from . import _schema
from ._paths import portability_problem
from ._toml import parse_toml
from .dtypes import NESTED_DTYPE, NUMERIC_DTYPES, STRING_DTYPE
from .errors import LENIENT_WARNINGS, CartonError, CartonFormatError, Finding, FindingCollector, ValidationStopped
from .file_memo import MAX_MEMBERS, Memo, copy_plain
from .integrity import CHUNK_SIZE, hash_stream, mismatch_error, verified_stream
from .lazy import DEFAULT_LAZY, LazyFactories
from .limits import DEFAULT_LIMITS, Limits, checked_limits
from .links import Links, links_from_document
from .manifest import LINKS_PATH, MANIFEST_PATH, UNLISTED_PATHS, Manifest, parse_manifest
from .metadata import (
    KNOWN_TOP_LEVEL_KEYS,
    MISC_REF_PREFIX,
    SPEC_VERSION,
    TENSOR_REF_PREFIX,
    CartonInfo,
    info_from_document,
    short_description_too_long,
)
from .sources import ArchiveSource, MemberInfo, PathOrFile, open_source, read_member
from .tensor_data import (
    INDEX_PATH,
    IndexEntry,
    TensorIndex,
    check_array_shape,
    check_strings,
    check_tensor_limits,
    decode_numeric,
    decode_strings,
    expected_numeric_size,
    parse_index,
)
from .version_req import VersionReq

log = logging.getLogger(__name__)

CARTON_TOML = "carton.toml"
MISC_DIR = "misc/"


@dataclass(frozen=True)
class _Parsed:
    """What reading an archive's metadata found, kept for the next read of the unchanged file
    (:mod:`.file_memo`): info is rebuilt from ``document`` each time (its lazy values belong to one
    opened archive)."""

    files: dict[str, MemberInfo]
    manifest_info: Manifest
    links: Links | None
    document: dict[str, Any]
    tensor_index: TensorIndex
    findings: tuple[Finding, ...]


#: Parsed metadata of unchanged local archives, by identity and limits.
_PARSED: Memo[_Parsed] = Memo()

# fetch_linked(path, sha256, urls) -> binary stream of the file's content
LinkedFetcher = Callable[[str, str, list[str]], IO[bytes]]


@dataclass(frozen=True)
class MemberStatus:
    """One MANIFEST path as ``carton ls`` shows it."""

    path: str
    sha256: str
    in_zip: bool
    size: int | None
    compressed_size: int | None
    method: str | None
    symlink_to: str | None
    linked_urls: tuple[str, ...]


class CartonArchive:
    """An opened archive.  Use as a context manager; see ``read()``."""

    def __init__(
        self,
        source: ArchiveSource,
        *,
        limits: Limits = DEFAULT_LIMITS,
        fetch_linked: LinkedFetcher | None = None,
        collector: FindingCollector | None = None,
        lazy: LazyFactories = DEFAULT_LAZY,
    ) -> None:
        self._source = source
        self._lazy = lazy
        self._limits = limits
        self._fetch_linked = fetch_linked
        self._collect = collector
        self._warnings = collector or FindingCollector(max_findings=limits.max_findings)
        self._hashed: set[str] = set()  # members verify() hashed (their tensors need no second read)
        self.manifest_info: Manifest
        self.links: Links | None = None
        self.tensor_index = TensorIndex.empty()
        self.info: CartonInfo
        self._files: dict[str, MemberInfo] = {}
        self._resolved: dict[str, Any] = {}  # reference -> its lazy value
        self._load()

    # -- reporting ------------------------------------------------------------------------

    def _report(self, err: CartonFormatError) -> None:
        """Independent errors: collected by validate(), raised by read()."""
        if self._collect is None:
            raise err
        self._collect.error(err)

    def _nonconforming(self, lenient_warning: str, message: str, **where: str | None) -> None:
        """A writer-side MUST broken in a way a reader can live with: for ``validate()`` the error
        that ``LENIENT_WARNINGS`` names (the archive does not conform), for ``read()`` the warning."""
        if self._collect is not None:
            self._collect.error(CartonFormatError(LENIENT_WARNINGS[lenient_warning], message, **where))
        else:
            self._warnings.warn(lenient_warning, message, **where)

    def _warn(self, code: str, message: str, **where: str | None) -> None:
        self._warnings.warn(code, message, **where)

    @property
    def warnings(self) -> list[Finding]:
        """Warnings found while reading the archive."""
        return [f for f in self._warnings.findings if not f.is_error]

    @property
    def manifest(self) -> dict[str, str]:
        """MANIFEST as ``{path: sha256}`` (a copy)."""
        return dict(self.manifest_info.entries)

    @property
    def manifest_sha256(self) -> str:
        """sha256 of the exact MANIFEST bytes: the model's identity."""
        return self.manifest_info.sha256

    @property
    def source(self) -> ArchiveSource:
        """Where the members come from (zip, directory, ...)."""
        return self._source

    # -- loading ----------------------------------------------------------------------------

    def _memo_key(self) -> Any:
        """What this archive's parsed metadata is memoised by (:mod:`.file_memo`): a local zip's
        identity and the limits, when reading (validate() always parses); else None."""
        identity = getattr(self._source, "identity", None)
        return None if identity is None or self._collect is not None else (identity, self._limits)

    def _load(self) -> None:
        key = self._memo_key()
        parsed = _PARSED.get(key)
        if parsed is not None:
            self._restore(parsed)
            return
        document = self._parse()
        self._build_info(document)
        if key is not None and self._memoisable():
            _PARSED.put(key, _Parsed(dict(self._files), self.manifest_info, self.links, copy_plain(document), self.tensor_index,
                                     tuple(self._warnings.findings)))

    def _memoisable(self) -> bool:
        """Every metadata member came from the zip (none over LINKS) and no warning was dropped."""
        return (CARTON_TOML in self._files and (INDEX_PATH in self._files or INDEX_PATH not in self.manifest_info.entries)
                and not self._warnings.omitted and len(self._files) <= MAX_MEMBERS)

    def _restore(self, parsed: "_Parsed") -> None:
        self._files = dict(parsed.files)
        self.manifest_info, self.links, self.tensor_index = parsed.manifest_info, parsed.links, parsed.tensor_index
        for finding in parsed.findings:
            self._warnings.add(finding)
        self._build_info(copy_plain(parsed.document))

    def _build_info(self, document: dict[str, Any]) -> None:
        self.info = info_from_document(
            document, self._resolve_reference, self._misc_files(), self_test_class=self._lazy.self_test, example_class=self._lazy.example
        )

    def _parse(self) -> dict[str, Any]:
        """Members, MANIFEST, LINKS, carton.toml (returned) and the tensor index, all checked."""
        for finding in self._source.container_warnings():
            self._warn(finding.code, finding.message, member=finding.member, key=finding.key)
        for entry in self._source.members():
            if entry.is_dir:
                self._warn("W-ZIP-DIRECTORY", "directory entry ignored", member=entry.name)
                continue
            problem = portability_problem(entry.name)
            if problem:
                self._warn("W-PATH-NONPORTABLE", problem, member=entry.name)
            self._files[entry.name] = entry
        self.manifest_info = self._load_manifest()
        self.links = self._load_links()
        self._check_member_set()
        document = self._load_carton_toml()
        self.tensor_index = self._load_index()
        return document

    def _load_manifest(self) -> Manifest:
        if MANIFEST_PATH not in self._files:
            raise CartonFormatError("E-STRUCTURE-MISSING", "the archive has no MANIFEST" + _not_a_carton_hint(self._files), member=MANIFEST_PATH)
        manifest = parse_manifest(read_member(self._source, MANIFEST_PATH, self._limits.max_manifest_bytes), self._limits)
        if not manifest.sorted:
            self._nonconforming("W-MANIFEST-UNSORTED", "lines are not sorted by path", member=MANIFEST_PATH)
        return manifest

    def _load_links(self) -> Links | None:
        if LINKS_PATH not in self._files:
            return None
        data = read_member(self._source, LINKS_PATH, self._limits.max_toml_bytes, limit_code="E-LIMIT-TOML-SIZE")
        document = parse_toml(data, LINKS_PATH, self._limits)
        self._check_schema(document, "links", LINKS_PATH)
        links = links_from_document(document)
        if links.version != 1:
            said = "missing" if links.version is None else f"{links.version}"
            self._nonconforming("W-LINKS-VERSION", f"version is {said}, expected 1", member=LINKS_PATH, key="version")
        for sha in sorted(set(links.urls) - self.manifest_info.hashes()):
            self._nonconforming("W-LINKS-UNUSED", f"{sha} names no MANIFEST entry", member=LINKS_PATH, key=f"urls.{sha}")
        return links

    def _check_schema(self, document: dict[str, Any], schema: str, member: str) -> None:
        """Report schema violations, as many as the collector has room for (read() raises the
        first; the check stops there); the document is unusable if there is any."""
        room = 1 if self._collect is None else self._collect.room()
        problems, more = _schema.check_limited(document, schema, member, None if room is None else max(1, room))
        if more and self._collect is not None:
            self._collect.stopped_early()
        if problems:
            if self._collect is None:
                raise problems[0]
            for p in problems:  # in order: the first violation is listed first
                self._collect.error(p)
            raise ValidationStopped()

    def _check_member_set(self) -> None:
        listed = self.manifest_info.entries
        for name in self._files:
            if name not in listed and name not in UNLISTED_PATHS:  # MANIFEST, LINKS, SIGNATURE
                self._report(CartonFormatError("E-MANIFEST-UNLISTED", "is in the archive but not in MANIFEST", member=name))
        for path in listed:
            if path not in self._files and not self.linked_urls(path):
                self._report(
                    CartonFormatError("E-MANIFEST-MISSING-FILE", "is listed in MANIFEST but neither in the archive nor in LINKS", member=path)
                )
        if not any(p.startswith("model/") for p in listed):
            self._nonconforming("W-MODEL-EMPTY", "nothing is listed under model/", member="model/")

    def linked_urls(self, path: str) -> list[str]:
        """URLs for a MANIFEST path that the zip leaves out (empty when it is in the zip)."""
        if path in self._files or self.links is None:
            return []
        sha = self.manifest_info.entries.get(path)
        return self.links.urls_for(sha) if sha else []

    def _read_small(self, path: str, max_bytes: int, limit_code: str = "E-LIMIT-MEMBER-SIZE") -> bytes:
        """A whole member (or linked file), verified against MANIFEST; ``limit_code`` when larger
        than ``max_bytes`` (refused from the declared size before reading, where there is one)."""
        parts = []
        total = 0
        with self.open(path, max_bytes=max_bytes, limit_code=limit_code) as stream:
            while chunk := stream.read(min(CHUNK_SIZE, max_bytes + 1 - total) or 1):
                parts.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise CartonFormatError(limit_code, f"is larger than {max_bytes} bytes", member=path)
        return b"".join(parts)

    def _load_carton_toml(self) -> dict[str, Any]:
        if CARTON_TOML not in self.manifest_info.entries:
            raise CartonFormatError("E-STRUCTURE-MISSING", "carton.toml is not listed in MANIFEST", member=CARTON_TOML)
        if CARTON_TOML not in self._files and not self.linked_urls(CARTON_TOML):
            raise CartonFormatError("E-STRUCTURE-MISSING", "the archive has no carton.toml", member=CARTON_TOML)
        document = parse_toml(self._read_small(CARTON_TOML, self._limits.max_toml_bytes, "E-LIMIT-TOML-SIZE"), CARTON_TOML, self._limits)
        self._check_schema(document, "carton-toml", CARTON_TOML)
        fatal = False
        if document["spec_version"] != SPEC_VERSION:
            fatal = True
            self._report(
                CartonFormatError(
                    "E-SPEC-VERSION", f"is {document['spec_version']}; this reader understands 1", member=CARTON_TOML, key="spec_version"
                )
            )
        runner = document["runner"]
        try:
            VersionReq.parse(runner["required_framework_version"])
        except CartonFormatError as exc:
            fatal = True
            self._report(CartonFormatError(exc.code, exc.message, member=CARTON_TOML, key="runner.required_framework_version"))
        if "runner_compat_version" not in runner:
            self._nonconforming(
                "W-RUNNER-COMPAT-MISSING",
                "is missing; writers always write it (the original's reader requires it)",
                member=CARTON_TOML,
                key="runner.runner_compat_version",
            )
        short = document.get("short_description")
        if isinstance(short, str) and short_description_too_long(short):
            self._nonconforming("W-SHORT-DESCRIPTION", "is longer than 100 characters", member=CARTON_TOML, key="short_description")
        for key in sorted(set(document) - KNOWN_TOP_LEVEL_KEYS):
            self._warn("W-UNKNOWN-KEY", "unknown key ignored", member=CARTON_TOML, key=key)
        if fatal:  # in collect mode the errors were recorded; the info cannot be built
            raise ValidationStopped()
        return document

    def _load_index(self) -> TensorIndex:
        if INDEX_PATH not in self.manifest_info.entries:
            self._nonconforming("W-TENSOR-INDEX-MISSING", "is missing; treated as empty", member=INDEX_PATH)
            return TensorIndex.empty()
        document = parse_toml(self._read_small(INDEX_PATH, self._limits.max_toml_bytes, "E-LIMIT-TOML-SIZE"), INDEX_PATH, self._limits)
        self._check_schema(document, "tensor-index", INDEX_PATH)
        index = parse_index(document, self._limits)
        for i, entry in enumerate(index.entries.values()):
            if entry.member is not None and entry.member not in self.manifest_info.entries:
                self._report(
                    CartonFormatError(
                        "E-TENSOR-FILE-MISSING",
                        f"tensor {entry.name!r}: {entry.member} is not in MANIFEST",
                        member=INDEX_PATH,
                        key=f"tensor[{i}].file",
                    )
                )
        return index

    def _resolve_reference(self, reference: str, key: str) -> Any:
        """A lazy value for a reference; one per tensor or file however often it is named (a
        tensor several self tests share is loaded once, and a hostile carton.toml naming one
        tensor a million times costs a dict entry per name, not a lazy value and a lock)."""
        resolved = self._resolved.get(reference)
        if resolved is not None:
            return resolved
        if reference.startswith(TENSOR_REF_PREFIX):
            name = reference[len(TENSOR_REF_PREFIX):]
            if name in self.tensor_index.addressable:
                resolved = self._resolved[reference] = self.lazy_tensor(self.tensor_index.entries[name])
                return resolved
        elif reference.startswith(MISC_REF_PREFIX):
            path = MISC_DIR + reference[len(MISC_REF_PREFIX):]
            if path in self.manifest_info.entries:
                resolved = self._resolved[reference] = self._lazy_misc(path)
                return resolved
        if self._collect is not None and self._collect.room() == 0:
            self._collect.count_omitted(error=True)  # a full list: count, without building the error
            return None
        self._report(CartonFormatError("E-REF-DANGLING", f"{reference!r} names nothing in the archive", member=CARTON_TOML, key=key))
        return None

    def _misc_files(self) -> dict[str, Any] | None:
        misc = {p[len(MISC_DIR):]: self._lazy_misc(p) for p in self.manifest_info.entries if p.startswith(MISC_DIR)}
        return misc or None

    def _lazy_misc(self, path: str) -> Any:
        entry = self._files.get(path)
        return self._lazy.misc_file(path[len(MISC_DIR):], entry.size if entry else None, lambda: self.open(path))

    def lazy_tensor(self, entry: IndexEntry) -> Any:
        """A lazy value for the entry, from the reader's lazy factories; loading it verifies the bytes."""
        return self._lazy.tensor(entry.name, entry.dtype, entry.shape, lambda: self.load_tensor(entry))

    def load_tensor(self, entry: IndexEntry) -> Any:
        """Read one tensor (verified); nested tensors give a list of arrays.

        Refused before anything is allocated when it exceeds the limits (E-LIMIT-TENSOR: bytes,
        string count, the width of a string array, shapes numpy cannot hold); a numeric tensor
        is read straight into its array's buffer (memory: the array, once)."""
        if entry.dtype == NESTED_DTYPE:
            return [self.load_tensor(self.tensor_index.entries[name]) for name in entry.inner]
        assert entry.member is not None
        if entry.member not in self.manifest_info.entries:
            raise CartonFormatError("E-TENSOR-FILE-MISSING", f"tensor {entry.name!r}: {entry.member} is not in MANIFEST", member=INDEX_PATH)
        check_tensor_limits(entry, self._limits)
        if entry.dtype == STRING_DTYPE:
            return decode_strings({"data": self._string_elements(entry)}, entry, self._limits)
        check_array_shape(entry, NUMERIC_DTYPES[entry.dtype].itemsize)
        expected = self._check_declared_size(entry)
        return decode_numeric(self._read_numeric(entry, expected), entry)

    def _check_declared_size(self, entry: IndexEntry) -> int:
        """A numeric tensor's size in bytes; E-TENSOR-SIZE, before reading, when the member
        declares another size."""
        expected = expected_numeric_size(entry)
        member = self._files.get(entry.member or "")
        if member is not None and member.size != expected:
            raise self._size_error(entry, expected, member.size)
        return expected

    @staticmethod
    def _size_error(entry: IndexEntry, expected: int, actual: int | str) -> CartonFormatError:
        return CartonFormatError(
            "E-TENSOR-SIZE",
            f"tensor {entry.name!r} ({entry.dtype}, shape {list(entry.shape or ())}) needs {expected} bytes, the file has {actual}",
            member=entry.member,
        )

    def _read_numeric(self, entry: IndexEntry, size: int) -> bytearray:
        """A numeric tensor's file (verified) read into one buffer of ``size`` bytes;
        E-TENSOR-SIZE when it holds more or fewer."""
        assert entry.member is not None
        buffer = bytearray(size)
        got = 0
        with self.open(entry.member, max_bytes=size, limit_code="E-TENSOR-SIZE") as stream, memoryview(buffer) as view:
            while got < size and (n := stream.readinto(view[got : got + CHUNK_SIZE])):
                got += n
            if got == size and stream.read(1):  # reaching the end checks the hash
                raise self._size_error(entry, size, f"more than {size}")
        if got != size:
            raise self._size_error(entry, size, got)
        return buffer

    def _string_elements(self, entry: IndexEntry) -> list[str]:
        """The strings of a string tensor (verified, parsed, schema-checked, counted); the file's
        values are counted before it is parsed (``max_string_tensor_elements``)."""
        assert entry.member is not None
        data = self._read_small(entry.member, self._limits.max_string_tensor_bytes, "E-LIMIT-TENSOR")
        cap = self._limits.max_string_tensor_elements
        document = parse_toml(data, entry.member, self._limits_for_strings(), max_values=max(cap, entry.numel))
        problems, _ = _schema.check_limited(document, "string-tensor", entry.member, 1)
        if problems:
            raise CartonFormatError("E-TENSOR-STRING", f"{problems[0].key or ''} {problems[0].message}".strip(), member=entry.member)
        return check_strings(document, entry)

    def _check_numeric_file(self, entry: IndexEntry) -> None:
        """Validation of a numeric tensor file without loading it: its declared size, then (when
        verify() did not already hash it) the bytes counted while it is streamed and hashed."""
        assert entry.member is not None
        expected = self._check_declared_size(entry)
        if entry.member in self._hashed:
            return  # hashed by verify(); the container checked its length against the declared size
        got = 0
        with self.open(entry.member, max_bytes=expected, limit_code="E-TENSOR-SIZE") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                got += len(chunk)
        if got != expected:
            raise self._size_error(entry, expected, got)

    def _limits_for_strings(self) -> Limits:
        return replace(self._limits, max_toml_bytes=self._limits.max_string_tensor_bytes)

    # -- member access ----------------------------------------------------------------------

    def open(self, path: str, *, max_bytes: int | None = None, limit_code: str = "E-LIMIT-MEMBER-SIZE") -> BinaryIO:
        """Stream a MANIFEST path's content (symlinks followed, LINKS used when needed); the
        sha256 is checked when the stream reaches its end (E-MANIFEST-MISMATCH)."""
        if max_bytes is not None and (not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0):
            raise CartonFormatError("E-ARG-INVALID", f"max_bytes must be a non-negative int or None, not {max_bytes!r}")
        expected = self.manifest_info.entries.get(path) if isinstance(path, str) else None
        if expected is None:
            raise CartonFormatError("E-ARG-INVALID", f"{path!r} is not listed in MANIFEST")
        if path in self._files:
            if max_bytes is not None:
                target = self._source.resolve_symlink(path)
                size = self._files[target].size if target in self._files else 0
                if size > max_bytes:
                    raise CartonFormatError(limit_code, f"is {size} bytes, more than the limit of {max_bytes}", member=path)
            raw = self._source.open(path)
        else:
            urls = self.linked_urls(path)
            if not urls:
                raise CartonFormatError("E-MANIFEST-MISSING-FILE", "is neither in the archive nor in LINKS", member=path)
            if self._fetch_linked is None:
                raise CartonFormatError("E-LINKS-NOT-FETCHED", f"lives behind LINKS ({urls[0]}) and no fetcher was given", member=path)
            raw = self._fetch_linked(path, expected, urls)
        return verified_stream(raw, expected, path)  # type: ignore[return-value]

    def read_bytes(self, path: str, max_bytes: int | None = None) -> bytes:
        """A whole member, verified."""
        return self._read_small(path, self._limits.max_member_bytes if max_bytes is None else max_bytes)

    def members(self) -> list[MemberStatus]:
        """Every MANIFEST path with where it lives (for listings)."""
        result = []
        for path, sha in self.manifest_info.entries.items():
            entry = self._files.get(path)
            link = None
            if entry is not None and entry.is_symlink:
                try:
                    link = self._source.resolve_symlink(path)
                except CartonFormatError:
                    link = "?"
            result.append(
                MemberStatus(
                    path,
                    sha,
                    entry is not None,
                    entry.size if entry else None,
                    entry.stored_size if entry else None,
                    entry.method if entry else None,
                    link,
                    tuple(self.linked_urls(path)),
                )
            )
        return result

    def verify(self, *, progress: bool | None = None) -> None:
        """Deep check: container layout, CRCs, sizes and every MANIFEST hash of members present."""
        self._source.check_container()
        files = [e for e in self._files.values() if not e.is_symlink and e.name not in UNLISTED_PATHS]
        bar = _progress_bar(sum(e.size for e in files), progress, "verifying")
        computed: dict[str, str] = {}
        try:
            for entry in files:
                with self._source.open(entry.name) as stream:
                    computed[entry.name] = hash_stream(stream, progress=bar.update if bar is not None else None)
                self._hashed.add(entry.name)
        finally:
            if bar is not None:
                bar.close()
        for name, entry in self._files.items():
            expected = self.manifest_info.entries.get(name)
            if expected is None:
                continue
            actual = computed.get(self._source.resolve_symlink(name) if entry.is_symlink else name)
            if actual != expected:
                self._report(mismatch_error(name, expected, str(actual)))
        unverified = [p for p in self.manifest_info.entries if p not in self._files]
        if unverified:
            self._warn("W-HASHES-NOT-VERIFIED", f"{len(unverified)} linked file(s) were not fetched, so not verified")

    def check_tensors(self) -> None:
        """Check every tensor file (validation) in bounded memory, building no array: a numeric
        file holds exactly shape x itemsize bytes (declared, and counted while it is hashed unless
        verify() hashed it); a string file parses, fits its schema and holds product(shape)
        strings.  Nested structure was checked with the index."""
        for entry in self.tensor_index.entries.values():
            if entry.dtype == NESTED_DTYPE or entry.member not in self._files:
                continue
            try:
                if entry.dtype == STRING_DTYPE:
                    self._string_elements(entry)
                else:
                    self._check_numeric_file(entry)
            except CartonError as exc:
                self._report(exc)

    def close(self) -> None:
        """Close the archive's source."""
        self._source.close()

    def __enter__(self) -> "CartonArchive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _not_a_carton_hint(files: dict[str, MemberInfo]) -> str:
    """What a zip without MANIFEST probably is, when it looks like something else."""
    if any(name.endswith("/data.pkl") or "/code/" in name for name in files):
        return ("; this looks like a TorchScript file (torch.jit.save), not a carton: pack it first, "
                "e.g. `carton pack model.pt --runner torchscript -o model.carton`")
    return ""


def _progress_bar(total: int, enabled: bool | None, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty() and total > 256 * 1024 * 1024
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr)


def check_source_argument(source: object) -> None:
    """E-ARG-INVALID for a ``source`` that can never be an archive, before anything is opened:
    a text-mode file (a zip is bytes), or a path holding a NUL character."""
    if isinstance(source, io.TextIOBase):
        raise CartonFormatError("E-ARG-INVALID", "source is a text-mode file; open the archive in binary mode ('rb')")
    if isinstance(source, (str, os.PathLike)):
        try:
            path = os.fspath(source)
        except TypeError as exc:
            raise CartonFormatError("E-ARG-INVALID", f"source is not a usable path: {exc}") from None
        if not isinstance(path, str):
            raise CartonFormatError("E-ARG-INVALID", f"source must be a str path, not {type(path).__name__}")
        if "\0" in path:
            raise CartonFormatError("E-ARG-INVALID", f"source {path!r} holds a NUL character")


def read(
    source: PathOrFile | ArchiveSource,
    *,
    verify_hashes: bool = True,
    limits: Limits = DEFAULT_LIMITS,
    fetch_linked: LinkedFetcher | None = None,
    progress: bool | None = None,
    lazy: LazyFactories = DEFAULT_LAZY,
) -> CartonArchive:
    """Open and check an archive; raises CartonFormatError on the first problem.

    ``source`` is a ``.carton`` path, an unpacked carton directory, a seekable binary file or an
    ArchiveSource (which the archive then owns and closes).  With ``verify_hashes=False`` only
    the metadata members are read (and verified); other members are verified when they are read
    to their end.  ``lazy`` chooses the classes of lazy tensors and misc files in ``info``.
    """
    limits = checked_limits(limits)
    check_source_argument(source)
    if fetch_linked is not None and not callable(fetch_linked):
        raise CartonFormatError("E-ARG-INVALID", f"fetch_linked must be callable, not {type(fetch_linked).__name__}")
    opened = open_source(source, limits)
    try:
        archive = CartonArchive(opened, limits=limits, fetch_linked=fetch_linked, lazy=lazy)
        if verify_hashes:
            archive.verify(progress=progress)
        return archive
    except BaseException:
        opened.close()
        raise


__all__ = ["CartonArchive", "LinkedFetcher", "MemberStatus", "check_source_argument", "read"]
