"""Stable error codes, the exceptions that carry them, and validation findings.

Codes never change meaning once published: tools, CI pipelines and the conformance suite match on
them, never on message text.  Every code belongs to one coarse *category* that a third-party
implementation can map its own errors onto.  This module is the one registry of codes: the
runtime's ``E-RUNTIME-*`` codes live here too, so every code has exactly one category.

One exception hierarchy serves both layers: :class:`CartonError` (a ``ValueError``, as the
original's Python API raised ``ValueError`` for every failure) carries ``code``, ``message``,
``member``, ``key`` and ``category``; :class:`CartonFormatError` is raised by this package and
``carton_runtime.CartonRuntimeError`` by the runtime.  ``except CartonError`` catches both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Category(str, Enum):
    """Coarse error families shared with the conformance suite."""

    ZIP = "zip"  # zip container structure
    PATH = "path"  # unsafe or non-portable member names
    LIMIT = "limit"  # resource limits (sizes, counts, nesting)
    STRUCTURE = "structure"  # required members missing
    MANIFEST = "manifest"  # MANIFEST syntax, set and hashes
    TOML = "toml"  # TOML syntax / encoding
    SCHEMA = "schema"  # JSON Schema and semantic metadata rules
    REFERENCE = "reference"  # @tensor_data/ and @misc/ references
    TENSOR = "tensor"  # tensor index and tensor files
    LINKS = "links"  # LINKS file
    SIGNATURE = "signature"  # SIGNATURE member or detached signature, and its verification
    VERSIONREQ = "versionreq"  # version requirements
    ARGUMENT = "argument"  # bad arguments to the API (writer side)
    IO = "io"  # operating-system I/O, network
    RUNNER = "runner"  # no runner matches, or the runner cannot load the model
    INFERENCE = "inference"  # inputs, outputs or the model's own failure during inference
    INTERNAL = "internal"  # a bug in this implementation (never the archive's fault)


# code -> (category, one-line meaning).  Order is documentation order.
CODES: dict[str, tuple[Category, str]] = {
    # zip container
    "E-ZIP-NOT-ZIP": (Category.ZIP, "not a zip archive (no end of central directory record)"),
    "E-ZIP-TRUNCATED": (Category.ZIP, "the archive ends before a record or member data it declares"),
    "E-ZIP-MALFORMED": (Category.ZIP, "a zip record is malformed (bad signature, field or extra)"),
    "E-ZIP-COMMENT": (Category.ZIP, "retired: comments are allowed and only warned about (W-ZIP-COMMENT); never reported"),
    "E-ZIP-CD-MISMATCH": (Category.ZIP, "the central directory disagrees with the end record"),
    "E-ZIP-HEADER-MISMATCH": (Category.ZIP, "a local header disagrees with its central directory entry"),
    "E-ZIP-OVERLAP": (Category.ZIP, "member data overlaps another member or the central directory"),
    "E-ZIP-UNACCOUNTED-DATA": (Category.ZIP, "bytes before, between or after the members"),
    "E-ZIP-ZIP64": (Category.ZIP, "zip64 records are missing or inconsistent"),
    "E-ZIP-MULTIDISK": (Category.ZIP, "multi-disk (split) archives are not supported"),
    "E-ZIP-ENCRYPTED": (Category.ZIP, "encrypted members are not supported"),
    "E-ZIP-METHOD": (Category.ZIP, "compression method other than stored, deflate or zstd"),
    "E-ZIP-CRC": (Category.ZIP, "member data does not match its CRC-32"),
    "E-ZIP-SIZE-MISMATCH": (Category.ZIP, "member data does not have its declared size"),
    "E-ZIP-CORRUPT-DATA": (Category.ZIP, "compressed member data cannot be decoded"),
    "E-ZIP-DUPLICATE": (Category.ZIP, "two members have the same name (exactly, or after case folding / NFC)"),
    "E-ZIP-NAME-ENCODING": (Category.ZIP, "a member name is not valid UTF-8"),
    "E-ZIP-NOT-REGULAR": (Category.ZIP, "a member is neither a regular file, a directory nor an allowed symlink"),
    "E-ZIP-SYMLINK": (Category.ZIP, "a symlink member is absolute, escapes, dangles, loops or lies outside model/"),
    # member names
    "E-PATH-UNSAFE": (Category.PATH, "a member path is absolute, traverses upwards or has forbidden characters"),
    # resource limits
    "E-LIMIT-ENTRY-COUNT": (Category.LIMIT, "too many members"),
    "E-LIMIT-CD-SIZE": (Category.LIMIT, "the central directory is too large"),
    "E-LIMIT-PATH-LENGTH": (Category.LIMIT, "a member path is too long or too deep"),
    "E-LIMIT-MEMBER-SIZE": (Category.LIMIT, "a member declares more bytes than allowed"),
    "E-LIMIT-TOTAL-SIZE": (Category.LIMIT, "members declare more bytes in total than allowed"),
    "E-LIMIT-RATIO": (Category.LIMIT, "a member's compression ratio is implausibly high (decompression bomb)"),
    "E-LIMIT-TOML-SIZE": (Category.LIMIT, "a TOML document is larger than allowed"),
    "E-LIMIT-TOML-NESTING": (Category.LIMIT, "a TOML document nests or dots keys too deeply"),
    "E-LIMIT-TENSOR": (Category.LIMIT, "a tensor is larger than allowed"),
    # required members
    "E-STRUCTURE-MISSING": (Category.STRUCTURE, "a required member (carton.toml, MANIFEST) is missing"),
    # MANIFEST
    "E-MANIFEST-SYNTAX": (Category.MANIFEST, "a MANIFEST line is not `path=<64 lowercase hex>`"),
    "E-MANIFEST-DUPLICATE": (Category.MANIFEST, "a path is listed twice in MANIFEST"),
    "E-MANIFEST-UNLISTED": (Category.MANIFEST, "a member is not listed in MANIFEST"),
    "E-MANIFEST-MISSING-FILE": (Category.MANIFEST, "a MANIFEST path is neither in the archive nor in LINKS"),
    "E-MANIFEST-MISMATCH": (Category.MANIFEST, "a member's sha256 differs from MANIFEST"),
    "E-MANIFEST-UNSORTED": (Category.MANIFEST, "MANIFEST lines are not in byte-wise sorted order"),
    # TOML
    "E-TOML-SYNTAX": (Category.TOML, "a TOML document is not valid UTF-8 TOML"),
    # metadata
    "E-SCHEMA": (Category.SCHEMA, "a TOML document violates its schema"),
    "E-SPEC-VERSION": (Category.SCHEMA, "spec_version is not 1"),
    # references
    "E-REF-DANGLING": (Category.REFERENCE, "a @tensor_data/ or @misc/ reference names nothing"),
    # tensor data
    "E-TENSOR-DTYPE": (Category.TENSOR, "a tensor has an unknown dtype"),
    "E-TENSOR-SHAPE": (Category.TENSOR, "a tensor shape is invalid or overflows"),
    "E-TENSOR-SIZE": (Category.TENSOR, "a tensor file does not hold shape x itemsize bytes"),
    "E-TENSOR-FILE-MISSING": (Category.TENSOR, "a tensor's file is not in the archive"),
    "E-TENSOR-STRING": (Category.TENSOR, "a string tensor file is malformed or has the wrong element count"),
    "E-TENSOR-NESTED": (Category.TENSOR, "a nested tensor is malformed (missing, nested or shared inner tensors)"),
    "E-TENSOR-DUPLICATE-NAME": (Category.TENSOR, "two tensors in index.toml have the same name"),
    # LINKS
    "E-LINKS-INVALID": (Category.LINKS, "LINKS is not a valid links table"),
    "E-LINKS-URL": (Category.LINKS, "a LINKS URL is not an absolute http(s) URL"),
    "E-LINKS-NOT-FETCHED": (Category.LINKS, "a member lives only behind LINKS and no fetcher was given"),
    "E-LINKS-FETCH": (Category.LINKS, "no LINKS URL gave the file (network error, HTTP error, too large)"),
    # signatures (carton_format.signing)
    "E-SIGNATURE-INVALID": (Category.SIGNATURE, "the SIGNATURE member or a detached signature is malformed (JSON, fields, bundle, statement)"),
    "E-SIGNATURE-VERSION": (Category.SIGNATURE, "the signature document's version is not one this reader understands"),
    "E-SIGNATURE-MISMATCH": (Category.SIGNATURE, "the signed statement names another model id (manifest sha256) or format version"),
    "E-SIGNATURE-UNVERIFIED": (Category.SIGNATURE, "the signature does not verify with the trusted key, chain or identity"),
    "E-SIGNATURE-MISSING": (Category.SIGNATURE, "the archive is not signed (no SIGNATURE member, no detached signature)"),
    "E-SIGNATURE-UNAVAILABLE": (Category.SIGNATURE, "signing support is not installed (pip install 'carton-py[signing]')"),
    # version requirements
    "E-VERSIONREQ-INVALID": (Category.VERSIONREQ, "not a valid Cargo-style version requirement"),
    # API arguments and I/O
    "E-ARG-INVALID": (Category.ARGUMENT, "an argument is invalid"),
    "E-OUTPUT-EXISTS": (Category.ARGUMENT, "the output path exists and overwriting was not asked for"),
    "E-MODEL-DIR": (Category.ARGUMENT, "the model directory holds something that cannot be packed"),
    "E-IO": (Category.IO, "an operating-system I/O error"),
    "E-INTERNAL": (Category.INTERNAL, "the validator failed unexpectedly (a bug); the archive's validity is unknown"),
    # the runtime (carton_runtime); never reported for an archive by validate()
    "E-RUNTIME-ARG": (Category.ARGUMENT, "an argument to the runtime API is invalid"),
    "E-RUNTIME-SOURCE": (Category.IO, "the path or URL cannot be opened as a carton (missing, unsupported scheme)"),
    "E-RUNTIME-HTTP": (Category.IO, "an HTTP request failed or the server answered wrongly (status, range, length)"),
    "E-RUNTIME-CACHE": (Category.IO, "the local cache cannot be used"),
    "E-RUNTIME-NO-RUNNER": (Category.RUNNER, "no installed runner matches the model's runner requirements"),
    "E-RUNTIME-RUNNER": (Category.RUNNER, "the runner could not load the model"),
    "E-RUNTIME-ENV": (Category.RUNNER, "a runner environment could not be created (venv, pip or uv failed; the installer's last lines say why)"),
    "E-RUNTIME-DEVICE": (Category.ARGUMENT, "visible_device is malformed"),
    "E-RUNTIME-INPUT": (Category.INFERENCE, "an input cannot be given to the model (type, dtype, rank)"),
    "E-RUNTIME-OUTPUT": (Category.INFERENCE, "an output of the model cannot be returned (type, dtype)"),
    "E-RUNTIME-INFER": (Category.INFERENCE, "the model raised an error during inference"),
    "E-RUNTIME-HANDLE": (Category.ARGUMENT, "a seal handle is unknown, already used or from another model"),
    "E-RUNTIME-CLOSED": (Category.ARGUMENT, "the model was closed"),
    "E-RUNTIME-TARGET": (Category.RUNNER, "the model was built for another target (platform, machine, CPU instruction set, device)"),
    "E-RUNTIME-RUNNER-DIED": (Category.RUNNER, "the runner's worker process died (crash, exit, signal); the host keeps running"),
    "E-RUNTIME-SIGNATURE": (Category.SIGNATURE, "the loading policy requires a valid signature from a trusted key and the archive has none"),
    "E-RUNTIME-TIMEOUT": (Category.RUNNER, "a call to the runner's worker process took longer than its time limit; the worker was stopped"),
}

#: The runtime's codes (a view of :data:`CODES`: code -> meaning).
RUNTIME_CODES: dict[str, str] = {code: meaning for code, (_cat, meaning) in CODES.items() if code.startswith("E-RUNTIME-")}

# Warnings: the archive is usable but something deserves attention.  The ones marked "read()"
# are a lenient reader's: validate() reports the same problem as an error, because it breaks a
# rule writers MUST follow (spec section 1.3), while read() and the runtime can live with it.
WARNING_CODES: dict[str, str] = {
    "W-MANIFEST-UNSORTED": "read(): MANIFEST lines are not in byte-wise sorted order (validate: E-MANIFEST-UNSORTED)",
    "W-TENSOR-INDEX-MISSING": "read(): tensor_data/index.toml is missing (validate: E-STRUCTURE-MISSING)",
    "W-MODEL-EMPTY": "read(): there is nothing under model/ (validate: E-STRUCTURE-MISSING)",
    "W-LINKS-UNUSED": "read(): a LINKS hash names no MANIFEST entry (validate: E-LINKS-INVALID)",
    "W-LINKS-VERSION": "read(): LINKS version is not 1 (validate: E-LINKS-INVALID)",
    "W-PATH-NONPORTABLE": "a member path cannot be extracted on every operating system",
    "W-ZIP-DIRECTORY": "the archive holds directory entries (ignored)",
    "W-ZIP-COMMENT": "the archive or a member has a comment (ignored)",
    "W-SHORT-DESCRIPTION": "read(): short_description is longer than 100 characters (validate: E-SCHEMA)",
    "W-RUNNER-COMPAT-MISSING": "read(): runner.runner_compat_version is missing (validate: E-SCHEMA)",
    "W-UNKNOWN-KEY": "an unknown key is ignored",
    "W-HASHES-NOT-VERIFIED": "member hashes were not verified",
    "W-FINDINGS-OMITTED": "more findings than Limits.max_findings: the rest were counted, not listed",
}


#: The lenient reader's warnings (read(), the runtime) -> the error validate() reports for the
#: same archive: each names a rule writers MUST follow that a reader can safely carry on past.
LENIENT_WARNINGS: dict[str, str] = {
    "W-MANIFEST-UNSORTED": "E-MANIFEST-UNSORTED",
    "W-TENSOR-INDEX-MISSING": "E-STRUCTURE-MISSING",
    "W-MODEL-EMPTY": "E-STRUCTURE-MISSING",
    "W-LINKS-UNUSED": "E-LINKS-INVALID",
    "W-LINKS-VERSION": "E-LINKS-INVALID",
    "W-SHORT-DESCRIPTION": "E-SCHEMA",
    "W-RUNNER-COMPAT-MISSING": "E-SCHEMA",
}


def category_of(code: str) -> Category | None:
    """Category of an error code (None for warnings and unknown codes)."""
    entry = CODES.get(code) if isinstance(code, str) else None
    return entry[0] if entry else None


class CartonError(ValueError):
    """Every failure either layer reports: a stable code plus plain words.

    ``member`` is the archive path concerned (if any), ``key`` the TOML key path
    (e.g. ``runner.required_framework_version``), ``category`` the code's family.
    """

    def __init__(self, code: str, message: str, *, member: str | None = None, key: str | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message
        self.member = member
        self.key = key
        super().__init__(str(self))

    @property
    def category(self) -> Category:
        """The coarse family the code belongs to."""
        return CODES[self.code][0]

    def __str__(self) -> str:
        where = ""
        if self.member:
            where = f"{self.member}: "
        if self.key:
            where += f"{self.key}: "
        return f"{self.code} {where}{self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only fields survive pickling (worker processes, multiprocessing)
        return (_rebuild, (type(self), self.code, self.message, self.__dict__))

    def to_finding(self) -> "Finding":
        """This error as a validation :class:`Finding`."""
        return Finding(self.code, self.message, member=self.member, key=self.key)


def _rebuild(cls: type[CartonError], code: str, message: str, state: dict[str, Any]) -> CartonError:
    err = cls.__new__(cls)
    CartonError.__init__(err, code, message, member=state.get("member"), key=state.get("key"))
    err.__dict__.update(state)
    return err


class CartonFormatError(CartonError):
    """A problem with an archive, a format-layer argument or the I/O under it."""


@dataclass(frozen=True)
class Finding:
    """One validation result line: an error (``E-``) or a warning (``W-``)."""

    code: str
    message: str
    member: str | None = None
    key: str | None = None

    @property
    def is_error(self) -> bool:
        """True for an error (``E-``), False for a warning (``W-``)."""
        return self.code.startswith("E-")

    @property
    def category(self) -> str | None:
        """The code's category name, or None for warnings and unknown codes."""
        cat = category_of(self.code)
        return cat.value if cat else None

    def to_dict(self) -> dict[str, str | None]:
        """The finding as plain JSON values (``carton validate --json``)."""
        return {
            "code": self.code,
            "category": self.category,
            "message": self.message,
            "member": self.member,
            "key": self.key,
        }


@dataclass
class FindingCollector:
    """Accumulates findings while a validation pass goes on.

    A finding equal to one already kept is dropped.  With ``max_findings`` at most that many are
    kept; later ones are only counted in ``omitted`` (``omitted_errors`` of them errors).  A check
    that stops looking once the collector is full (see :meth:`room`) calls :meth:`stopped_early`:
    ``omitted`` is then a lower bound (``omitted_exact`` is False).
    """

    findings: list[Finding] = field(default_factory=list)
    max_findings: int | None = None
    omitted: int = 0
    omitted_errors: int = 0
    omitted_exact: bool = True
    _kept: set[Finding] = field(default_factory=set, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._kept.update(self.findings)

    def add(self, finding: Finding) -> None:
        """Record a finding (kept, dropped as a duplicate, or counted when the list is full)."""
        if finding in self._kept:
            return
        if self.max_findings is not None and len(self.findings) >= self.max_findings:
            self.omitted += 1
            self.omitted_errors += finding.is_error
            return
        self._kept.add(finding)
        self.findings.append(finding)

    def count_omitted(self, *, error: bool) -> None:
        """Count a finding without building it (the caller saw :meth:`room` is 0)."""
        self.omitted += 1
        self.omitted_errors += error

    def room(self) -> int | None:
        """How many more findings will be kept (None: no limit)."""
        return None if self.max_findings is None else max(0, self.max_findings - len(self.findings))

    def stopped_early(self) -> None:
        """A check stopped looking at the limit once it knew of at least one more error than it
        reported: that one is counted, and more may exist."""
        self.omitted += 1
        self.omitted_errors += 1
        self.omitted_exact = False

    def error(self, err: CartonError) -> None:
        """Record an error as a finding."""
        self.add(err.to_finding())

    def warn(self, code: str, message: str, *, member: str | None = None, key: str | None = None) -> None:
        """Record a warning; ``code`` must be a registered warning code."""
        if code not in WARNING_CODES:
            raise ValueError(f"unknown warning code {code!r}")
        self.add(Finding(code, message, member=member, key=key))


class ValidationStopped(Exception):
    """Raised inside a collecting read once the errors found make going on meaningless; the
    findings are in the collector (``validate()`` catches it, nothing else sees it)."""


__all__ = [
    "CODES",
    "LENIENT_WARNINGS",
    "RUNTIME_CODES",
    "WARNING_CODES",
    "CartonError",
    "CartonFormatError",
    "Category",
    "Finding",
    "FindingCollector",
    "ValidationStopped",
    "category_of",
]
