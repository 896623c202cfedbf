"""carton_format: the Carton v1 archive format (pure Python, no torch).

``write()`` packs, ``read()`` opens and checks, ``validate()`` reports every finding; the data
classes mirror the original Carton Python API.
"""

from .errors import CODES, WARNING_CODES, CartonFormatError, Category, Finding, category_of
from .lazy import LazyMiscFile, LazyTensor
from .limits import DEFAULT_LIMITS, Limits
from .links import Links
from .metadata import CartonInfo, Example, RunnerInfo, SelfTest, TensorSpec
from .reader import CartonArchive, MemberStatus, read
from .validate import ValidationReport, validate
from .version_req import VersionReq
from .writer import WriteResult, write

__all__ = [
    "CODES",
    "DEFAULT_LIMITS",
    "WARNING_CODES",
    "CartonArchive",
    "CartonFormatError",
    "CartonInfo",
    "Category",
    "Example",
    "Finding",
    "LazyMiscFile",
    "LazyTensor",
    "Limits",
    "Links",
    "MemberStatus",
    "RunnerInfo",
    "SelfTest",
    "TensorSpec",
    "ValidationReport",
    "VersionReq",
    "WriteResult",
    "category_of",
    "read",
    "validate",
    "write",
]
