"""The eleven Carton tensor dtypes and their numpy equivalents."""

from __future__ import annotations

import numpy as np

from .errors import CartonFormatError

NUMERIC_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
}
STRING_DTYPE = "string"
NESTED_DTYPE = "nested"
DTYPES: tuple[str, ...] = (
    "float32", "float64", "string", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
)  # fmt: skip


def carton_dtype_of(array: np.ndarray, *, where: str) -> str:
    """Carton dtype name of a numpy array, or E-ARG-INVALID for dtypes Carton v1 lacks."""
    kind = array.dtype.kind
    if kind == "U" or (kind == "O" and all(isinstance(x, str) for x in array.flat)):
        return STRING_DTYPE
    for name, dtype in NUMERIC_DTYPES.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            return name
    raise CartonFormatError(
        "E-ARG-INVALID",
        f"{where}: numpy dtype {array.dtype} has no Carton equivalent "
        f"(supported: {', '.join(DTYPES)})",
    )

__all__ = [
    "DTYPES",
    "NESTED_DTYPE",
    "NUMERIC_DTYPES",
    "STRING_DTYPE",
    "carton_dtype_of",
]
