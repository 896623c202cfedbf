"""Inputs checked against the archive's declared input specs, before the model runs.

:func:`make_input_checker` turns ``info.inputs`` (a list of :class:`carton_format.TensorSpec`)
into one function ``check(inputs)`` that raises ``E-RUNTIME-INPUT`` (with ``name=`` the input)
for the first problem it finds, in one short sentence:

* names: an input the model does not declare, or a declared one that is missing (the message
  lists the expected inputs);
* dtype: a numeric spec takes exactly its numpy dtype (either byte order); ``string`` takes
  numpy ``str`` arrays and object arrays holding only ``str``;
* shape: the rank, every fixed dimension, and every symbol (a symbolic dimension such as
  ``"batch"``, or a ``str`` naming a whole shape) must take the same value in every input of
  the call that uses it.  ``None`` (``*``) accepts anything.

Values that are not numpy arrays (a torch tensor, a list for a nested tensor) are only checked
by name; the runner converts or refuses them.  The checker is built once per model from the
specs alone (it does not depend on the runner); a call costs a key comparison plus a few
attribute reads per input.  ``make_input_checker(None)`` is None: models without specs are not
checked.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from carton_format.dtypes import NUMERIC_DTYPES, STRING_DTYPE

from .errors import CartonRuntimeError

Checker = Callable[[Any], None]


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "any shape"
    if isinstance(shape, str):
        return f"shape {shape!r}"
    return "[" + ", ".join("*" if d is None else str(d) for d in shape) + "]"


def _fail(name: str | None, message: str) -> CartonRuntimeError:
    return CartonRuntimeError("E-RUNTIME-INPUT", message, name=name)


def _names_error(inputs: Any, expected: tuple[str, ...], described: str) -> CartonRuntimeError:
    try:
        given = list(inputs.keys())
    except AttributeError:
        return _fail(None, f"inputs must be a dict of name -> numpy array, not {type(inputs).__name__}")
    for name in given:
        if name not in expected:
            return _fail(name, f"the model has no input {name!r}; it expects {described}")
    missing = [name for name in expected if name not in given]
    return _fail(missing[0], f"input {missing[0]!r} is missing; the model expects {described}")


def _check_string(name: str, value: np.ndarray) -> None:
    """A string spec, for an array that is not a ``str`` array: object arrays of ``str`` pass."""
    if value.dtype.kind == "O":
        for item in value.flat:
            if not isinstance(item, str):
                raise _fail(name, f"input {name!r} is declared string; its object array holds a {type(item).__name__}")
        return
    raise _fail(name, f"input {name!r} is declared string, got a {value.dtype} array (pass a numpy str array)")


def _accepted_dtypes(dtype: str) -> frozenset | None:
    """The numpy dtypes a numeric spec takes (both byte orders); None for any other dtype name."""
    target = NUMERIC_DTYPES.get(dtype)
    if target is None:
        return None
    return frozenset((target, target.newbyteorder("<"), target.newbyteorder(">")))


def make_input_checker(specs: Sequence[Any] | None) -> Checker | None:
    """``check(inputs)`` for the declared input specs, or None when there are none (``info.inputs`` None)."""
    if specs is None:
        return None
    expected = tuple(spec.name for spec in specs)
    expected_set = frozenset(expected)
    described = ", ".join(f"{s.name!r} ({s.dtype} {_shape_text(s.shape)})" for s in specs) if specs else "no inputs"
    # per input: (name, accepted numpy dtypes or None, string?, rank or -1, fixed dims
    # ((axis, size), ...), symbolic dims ((axis, symbol), ...), whole-shape symbol or None)
    plan: list[tuple[str, frozenset | None, bool, int, tuple, tuple, str | None]] = []
    for spec in specs:
        shape = spec.shape
        rank, fixed, symbols, whole = -1, (), (), None
        if isinstance(shape, str):
            whole = shape
        elif shape is not None:
            rank = len(shape)
            fixed = tuple((i, d) for i, d in enumerate(shape) if isinstance(d, int) and not isinstance(d, bool))
            symbols = tuple((i, d) for i, d in enumerate(shape) if isinstance(d, str))
        plan.append((spec.name, _accepted_dtypes(spec.dtype), spec.dtype == STRING_DTYPE, rank, fixed, symbols, whole))
    ndarray = np.ndarray
    generic = np.generic

    def check(inputs: Any) -> None:
        try:
            same = inputs.keys() == expected_set
        except AttributeError:
            same = False
        if not same:
            raise _names_error(inputs, expected, described)
        bound: dict[str, tuple[Any, str]] = {}
        for name, accepted, string, rank, fixed, symbols, whole in plan:
            value = inputs[name]
            if not isinstance(value, ndarray):
                if not isinstance(value, generic):
                    continue  # not a numpy array: the runner converts or refuses it
                value = np.asarray(value)
            if accepted is not None:
                if value.dtype not in accepted:
                    raise _dtype_error(name, value, specs)
            elif string and value.dtype.kind != "U":
                _check_string(name, value)
            shape = value.shape
            if rank >= 0:
                if len(shape) != rank:
                    raise _rank_error(name, shape, rank, fixed, symbols)
                for axis, size in fixed:
                    if shape[axis] != size:
                        raise _fail(name, f"input {name!r}: dimension {axis} must be {size}, got {shape[axis]} (shape {list(shape)})")
                if symbols:
                    for axis, symbol in symbols:
                        size = shape[axis]
                        seen = bound.get(symbol)
                        if seen is None:
                            bound[symbol] = (size, name)
                        elif seen[0] != size:
                            raise _mismatch(name, f"dimension {axis}", symbol, size, seen)
            elif whole is not None:
                key = "\0" + whole
                seen = bound.get(key)
                if seen is None:
                    bound[key] = (shape, name)
                elif seen[0] != shape:
                    raise _mismatch(name, "the shape", whole, list(shape), (list(seen[0]), seen[1]))

    return check


def _dtype_error(name: str, value: np.ndarray, specs: Sequence[Any]) -> CartonRuntimeError:
    dtype = next(s.dtype for s in specs if s.name == name)
    return _fail(name, f"input {name!r} is declared {dtype}, got {value.dtype} (convert it with .astype(np.{dtype}))")


def _rank_error(name: str, shape: tuple, rank: int, fixed: tuple, symbols: tuple) -> CartonRuntimeError:
    dims = dict(fixed) | dict(symbols)
    declared = "[" + ", ".join(str(dims.get(i, "*")) for i in range(rank)) + "]"
    what = "a scalar (0-d)" if rank == 0 else f"{rank}-d {declared}"
    return _fail(name, f"input {name!r} must be {what}, got shape {list(shape)}")


def _mismatch(name: str, where: str, symbol: str, value: Any, seen: tuple[Any, str]) -> CartonRuntimeError:
    return _fail(name, f"input {name!r}: {where} is {symbol!r} = {value}, but input {seen[1]!r} has {symbol!r} = {seen[0]}")


__all__ = ["Checker", "make_input_checker"]
