"""tensor_data/: the index (index.toml), numeric ``.bin`` files and string ``.toml`` files.

Numeric tensors are raw little-endian C-order bytes; string tensors are a TOML document
``data = [...]``; a nested tensor is an index entry listing other (non-nested) entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ._paths import check_member_path
from .dtypes import DTYPES, NESTED_DTYPE, NUMERIC_DTYPES, STRING_DTYPE, carton_dtype_of
from .errors import CartonFormatError
from .limits import DEFAULT_LIMITS, Limits

INDEX_PATH = "tensor_data/index.toml"
U64_MAX = 2**64 - 1
TENSOR_DIR = "tensor_data/"


@dataclass(frozen=True)
class IndexEntry:
    """One ``[[tensor]]`` entry of index.toml."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None
    file: str | None = None
    inner: tuple[str, ...] = ()

    @property
    def member(self) -> str | None:
        """Archive path of the tensor's file."""
        return None if self.file is None else TENSOR_DIR + self.file

    @property
    def numel(self) -> int:
        """Number of elements the shape holds (1 for a scalar)."""
        return math.prod(self.shape or ())

    def to_document(self) -> dict[str, Any]:
        """The entry as an index.toml ``[[tensor]]`` table."""
        doc: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.shape is not None:
            doc["shape"] = list(self.shape)
        if self.file is not None:
            doc["file"] = self.file
        doc["inner"] = list(self.inner)  # the original's reader requires the key
        return doc


@dataclass(frozen=True)
class TensorIndex:
    """Parsed index: entries by name; ``addressable`` excludes the inner tensors of nested ones
    (the original removes them from the pool that references resolve against)."""

    entries: dict[str, IndexEntry]
    addressable: frozenset[str]

    @classmethod
    def empty(cls) -> "TensorIndex":
        """An index with no tensors (an archive without index.toml)."""
        return cls({}, frozenset())


def _tensor_error(code: str, message: str, index: int) -> CartonFormatError:
    return CartonFormatError(code, message, member=INDEX_PATH, key=f"tensor[{index}]")


def parse_index(doc: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> TensorIndex:
    """Semantic checks on a schema-checked index.toml document."""
    entries: dict[str, IndexEntry] = {}
    positions: dict[str, int] = {}
    for i, raw in enumerate(doc.get("tensor", [])):
        name, dtype = raw["name"], raw["dtype"]
        if name in entries:
            raise _tensor_error("E-TENSOR-DUPLICATE-NAME", f"tensor name {name!r} is used twice", i)
        if dtype not in DTYPES and dtype != NESTED_DTYPE:
            raise _tensor_error("E-TENSOR-DTYPE", f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)} or nested)", i)
        shape = tuple(raw["shape"]) if "shape" in raw else None
        file = raw.get("file")
        if dtype != NESTED_DTYPE:
            if shape is None:
                raise _tensor_error("E-TENSOR-SHAPE", f"tensor {name!r} has no shape", i)
            if any(d < 0 or d > U64_MAX for d in shape):
                raise _tensor_error("E-TENSOR-SHAPE", f"tensor {name!r} has a negative or too large dimension {list(shape)}", i)
            if file is None:
                raise _tensor_error("E-TENSOR-FILE-MISSING", f"tensor {name!r} has no file", i)
            try:
                check_member_path(TENSOR_DIR + file, limits)
            except CartonFormatError as exc:
                raise CartonFormatError(exc.code, f"tensor {name!r} file: {exc.message}", member=INDEX_PATH, key=f"tensor[{i}].file") from None
            try:
                check_tensor_limits(IndexEntry(name, dtype, shape, file), limits)
            except CartonFormatError as exc:
                raise _tensor_error(exc.code, exc.message, i) from None
        entries[name] = IndexEntry(name, dtype, shape, file, tuple(raw.get("inner", ())))
        positions[name] = i
    owner: dict[str, str] = {}
    for entry in entries.values():
        if entry.dtype != NESTED_DTYPE:
            continue
        i = positions[entry.name]
        for inner in entry.inner:
            target = entries.get(inner)
            if target is None:
                raise _tensor_error("E-TENSOR-NESTED", f"nested tensor {entry.name!r} lists unknown tensor {inner!r}", i)
            if target.dtype == NESTED_DTYPE:
                raise _tensor_error("E-TENSOR-NESTED", f"nested tensor {entry.name!r} lists nested tensor {inner!r}", i)
            if inner in owner:
                raise _tensor_error(
                    "E-TENSOR-NESTED", f"tensor {inner!r} is inner to both {owner[inner]!r} and {entry.name!r}", i
                )
            owner[inner] = entry.name
    return TensorIndex(entries, frozenset(n for n in entries if n not in owner))


def check_tensor_limits(entry: IndexEntry, limits: Limits = DEFAULT_LIMITS) -> None:
    """E-LIMIT-TENSOR unless a (non-nested) tensor is within ``limits``: a numeric one's
    product(shape) x itemsize at most ``max_numeric_tensor_bytes``, a string one's product(shape)
    at most ``max_string_tensor_elements`` (and ``max_string_tensor_bytes``, a string costing at
    least a byte of TOML).  Exact integer arithmetic, from the declared shape alone."""
    numel = entry.numel
    if entry.dtype == STRING_DTYPE:
        cap = min(limits.max_string_tensor_elements, limits.max_string_tensor_bytes)
        if numel > cap:
            raise CartonFormatError(
                "E-LIMIT-TENSOR", f"string tensor {entry.name!r} has {numel} elements, more than the limit of {cap}", member=INDEX_PATH
            )
    elif entry.dtype in NUMERIC_DTYPES and numel * NUMERIC_DTYPES[entry.dtype].itemsize > limits.max_numeric_tensor_bytes:
        raise CartonFormatError(
            "E-LIMIT-TENSOR",
            f"tensor {entry.name!r} needs {numel * NUMERIC_DTYPES[entry.dtype].itemsize} bytes, more than the limit of "
            f"{limits.max_numeric_tensor_bytes}",
            member=INDEX_PATH,
        )


#: numpy holds an array only when every dimension, and the product of the non-zero dimensions
#: times the item size, fit a signed 64-bit index (np.intp).
NUMPY_MAX = 2**63 - 1


def check_array_shape(entry: IndexEntry, itemsize: int) -> None:
    """E-LIMIT-TENSOR when numpy cannot represent the tensor's array (e.g. shape [0, 2**63]: no
    element, yet a dimension numpy cannot index), checked with Python integers before any numpy
    call.  Such a tensor may be valid (FMT-TENSOR-6); this reader cannot hold it in memory."""
    shape = entry.shape or ()
    nonzero = math.prod(d for d in shape if d) * max(itemsize, 1)
    if any(d > NUMPY_MAX for d in shape) or nonzero > NUMPY_MAX:
        raise CartonFormatError(
            "E-LIMIT-TENSOR",
            f"tensor {entry.name!r} of shape {list(shape)} cannot be held in memory: a dimension, or the product of the "
            f"non-zero dimensions times the item size ({itemsize}), is above {NUMPY_MAX}",
            member=entry.member,
        )


def index_to_document(entries: Iterable[IndexEntry]) -> dict[str, Any]:
    """The index.toml document for these entries, in order."""
    return {"tensor": [e.to_document() for e in entries]}


# ---------------------------------------------------------------------------------------------
# Tensor files


def expected_numeric_size(entry: IndexEntry) -> int:
    """Bytes a numeric tensor's ``.bin`` file must hold (elements x item size)."""
    return entry.numel * NUMERIC_DTYPES[entry.dtype].itemsize


def decode_numeric(data: bytes | bytearray, entry: IndexEntry) -> np.ndarray:
    """Array from a ``.bin`` file; E-TENSOR-SIZE unless it holds exactly shape x itemsize bytes,
    E-LIMIT-TENSOR when numpy cannot hold the shape.  The array is read-only; a ``bytearray``
    is used in place (no copy)."""
    dtype = NUMERIC_DTYPES[entry.dtype]
    check_array_shape(entry, dtype.itemsize)
    expected = expected_numeric_size(entry)
    if len(data) != expected:
        raise CartonFormatError(
            "E-TENSOR-SIZE",
            f"tensor {entry.name!r} ({entry.dtype}, shape {list(entry.shape or ())}) needs {expected} bytes, "
            f"the file has {len(data)}",
            member=entry.member,
        )
    array = np.frombuffer(data, dtype=dtype).reshape(entry.shape or ())
    array.flags.writeable = False  # as for bytes: the same array whatever buffer it came from
    return array.astype(dtype.newbyteorder("="), copy=False) if not dtype.isnative else array


def check_strings(doc: dict[str, Any], entry: IndexEntry) -> list[str]:
    """The elements of a schema-checked string tensor document; E-TENSOR-STRING unless there
    are exactly product(shape) of them.  Builds no array (validation stops here)."""
    data = doc["data"]
    if len(data) != entry.numel:
        raise CartonFormatError(
            "E-TENSOR-STRING",
            f"string tensor {entry.name!r} of shape {list(entry.shape or ())} needs {entry.numel} strings, "
            f"the file has {len(data)}",
            member=entry.member,
        )
    return data


def decode_strings(doc: dict[str, Any], entry: IndexEntry, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """Array of str from a schema-checked string tensor document.

    numpy stores strings at the width of the longest (4 bytes a character): E-LIMIT-TENSOR,
    before anything is allocated, when that array would exceed ``max_numeric_tensor_bytes``
    (a file of a million empty strings and one of 100,000 characters would need 400 GB)."""
    data = check_strings(doc, entry)
    width = max(map(len, data), default=0)
    itemsize = 4 * max(width, 1)
    check_array_shape(entry, itemsize)
    if entry.numel * itemsize > limits.max_numeric_tensor_bytes:
        raise CartonFormatError(
            "E-LIMIT-TENSOR",
            f"string tensor {entry.name!r}: {entry.numel} strings of up to {width} characters need "
            f"{entry.numel * itemsize} bytes as an array, more than the limit of {limits.max_numeric_tensor_bytes}",
            member=entry.member,
        )
    if not data:
        return np.empty(entry.shape or (), dtype="<U1")
    return np.array(data, dtype=f"<U{max(width, 1)}").reshape(entry.shape or ())


@dataclass(frozen=True)
class EncodedTensor:
    """An index entry and the bytes of its file (None for nested entries)."""

    entry: IndexEntry
    payload: bytes | None


def _as_array(value: Any, where: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    raise CartonFormatError("E-ARG-INVALID", f"{where}: expected a numpy array, not {type(value).__name__}")


def encode_string_payload(array: np.ndarray, where: str) -> bytes:
    """A string tensor's ``.toml`` file (``data = [...]``, C order); E-ARG-INVALID for a string that is not valid Unicode."""
    from ._toml import dump_toml

    items = [str(x) for x in array.reshape(-1)]
    for item in items:
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise CartonFormatError("E-ARG-INVALID", f"{where}: string {item!r} is not valid Unicode") from None
    return dump_toml({"data": items})


def encode_tensor(name: str, value: Any, file_stem: str, where: str) -> list[EncodedTensor]:
    """Encode one tensor value (ndarray, or a list of ndarrays for a nested tensor).

    ``file_stem`` names the file (``tensor_N``); inner tensors of a nested tensor get
    ``{file_stem}_{k}`` files and ``{name}_inner_{k}`` names.
    """
    if isinstance(value, (list, tuple)):
        parts: list[EncodedTensor] = []
        inner_names = []
        for k, item in enumerate(value):
            if isinstance(item, (list, tuple)):
                raise CartonFormatError("E-ARG-INVALID", f"{where}[{k}]: nested tensors cannot contain nested tensors")
            inner_name = f"{name}_inner_{k}"
            parts += encode_tensor(inner_name, item, f"{file_stem}_{k}", f"{where}[{k}]")
            inner_names.append(inner_name)
        return [EncodedTensor(IndexEntry(name, NESTED_DTYPE, inner=tuple(inner_names)), None), *parts]
    array = _as_array(value, where)
    dtype = carton_dtype_of(array, where=where)
    shape = tuple(int(d) for d in array.shape)
    limits = DEFAULT_LIMITS  # writers stay within what readers accept (FMT-LIMIT-1, FMT-LIMIT-10)
    if dtype == STRING_DTYPE:
        cap = min(limits.max_string_tensor_elements, limits.max_string_tensor_bytes)
        if array.size > cap:
            raise CartonFormatError("E-ARG-INVALID", f"{where}: {array.size} strings; readers accept at most {cap}")
        payload = encode_string_payload(array, where)
        cap = limits.max_string_tensor_bytes
        if len(payload) > cap:
            raise CartonFormatError("E-ARG-INVALID", f"{where}: the string file would be {len(payload)} bytes; readers accept {cap}")
        width = max((len(str(x)) for x in array.reshape(-1)), default=0)
        if array.size * 4 * max(width, 1) > limits.max_numeric_tensor_bytes:
            raise CartonFormatError(
                "E-ARG-INVALID", f"{where}: readers would need more than {limits.max_numeric_tensor_bytes} bytes to load these strings"
            )
        return [EncodedTensor(IndexEntry(name, dtype, shape, f"{file_stem}.toml"), payload)]
    size = array.size * NUMERIC_DTYPES[dtype].itemsize
    if size > limits.max_numeric_tensor_bytes:
        raise CartonFormatError("E-ARG-INVALID", f"{where}: {size} bytes; readers accept at most {limits.max_numeric_tensor_bytes}")
    payload = np.ascontiguousarray(array, dtype=NUMERIC_DTYPES[dtype]).tobytes()
    return [EncodedTensor(IndexEntry(name, dtype, shape, f"{file_stem}.bin"), payload)]

__all__ = [
    "INDEX_PATH",
    "TENSOR_DIR",
    "U64_MAX",
    "NUMPY_MAX",
    "EncodedTensor",
    "IndexEntry",
    "TensorIndex",
    "check_array_shape",
    "check_strings",
    "check_tensor_limits",
    "decode_numeric",
    "decode_strings",
    "encode_string_payload",
    "encode_tensor",
    "expected_numeric_size",
    "index_to_document",
    "parse_index",
]
