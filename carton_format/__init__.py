"""carton_format: the Carton v1 archive format (pure Python, no torch).

``write()`` packs, ``read()`` opens and checks, ``validate()`` reports every finding and
``shrink()`` moves model files behind LINKS, ``sign()`` /
``verify_signature()`` sign and check the model id; the data classes mirror the original Carton Python
API.  Archives come from an :class:`ArchiveSource` (a zip file or stream, or an unpacked
directory).  Modules whose names start with ``_`` are private.
"""

from ._directory import DirectorySource
from ._zip.source import ZipSource
from .errors import CODES, RUNTIME_CODES, WARNING_CODES, CartonError, CartonFormatError, Category, Finding, category_of
from .lazy import DEFAULT_LAZY, LazyFactories, LazyMiscFile, LazyTensor
from .limits import DEFAULT_LIMITS, Limits
from .links import Links
from .metadata import CartonInfo, Example, RunnerInfo, SelfTest, TensorSpec
from .reader import CartonArchive, MemberStatus, read
from .shrink import shrink
from .signing import SignatureReport, SignResult, TrustRoot, sign, verify_signature
from .sources import ArchiveSource, MemberInfo, StoredSpan, open_source
from .validate import ValidationReport, validate
from .version_req import VersionReq
from .writer import WriteResult, write

__all__ = [
    "CODES",
    "DEFAULT_LAZY",
    "DEFAULT_LIMITS",
    "RUNTIME_CODES",
    "WARNING_CODES",
    "ArchiveSource",
    "CartonArchive",
    "CartonError",
    "CartonFormatError",
    "CartonInfo",
    "Category",
    "DirectorySource",
    "Example",
    "Finding",
    "LazyFactories",
    "LazyMiscFile",
    "LazyTensor",
    "Limits",
    "Links",
    "MemberInfo",
    "MemberStatus",
    "RunnerInfo",
    "SelfTest",
    "SignResult",
    "SignatureReport",
    "StoredSpan",
    "TensorSpec",
    "TrustRoot",
    "ValidationReport",
    "VersionReq",
    "WriteResult",
    "ZipSource",
    "category_of",
    "open_source",
    "read",
    "shrink",
    "sign",
    "validate",
    "verify_signature",
    "write",
]
