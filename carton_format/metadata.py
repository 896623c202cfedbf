"""carton.toml: the metadata data classes and their mapping to and from the TOML document.

Field names and the Python shape encoding follow the original's Python API: a shape is ``None``
(any shape, ``"*"`` in TOML), a ``str`` (a symbol for the whole shape) or a list whose items are
``int`` (a fixed dimension), ``str`` (a symbol) or ``None`` (any dimension, ``"*"``); ``[]`` is a
scalar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from .dtypes import DTYPES
from .errors import CartonFormatError
from .lazy import LazyMiscFile, LazyTensor

Dim = Union[int, str, None]
Shape = Union[None, str, list[Dim]]
RunnerOpt = Union[int, float, str, bool]
TensorValue = Union[np.ndarray, list[np.ndarray], LazyTensor]
ExampleValue = Union[np.ndarray, list[np.ndarray], LazyTensor, bytes, LazyMiscFile]

SPEC_VERSION = 1
TENSOR_REF_PREFIX = "@tensor_data/"
MISC_REF_PREFIX = "@misc/"
ANY = "*"


@dataclass
class TensorSpec:
    """Declared input or output of a model.  ``dtype`` and ``shape`` are checked when set (on
    construction and on assignment), as the original's bindings do: a bad one raises
    E-ARG-INVALID (a ``ValueError``) at once instead of when the archive is written."""

    name: str
    dtype: str
    shape: Shape
    description: str | None = None
    internal_name: str | None = None

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "dtype":
            value = check_dtype(value)
        elif key == "shape":
            value = check_shape(value)
        object.__setattr__(self, key, value)


@dataclass
class RunnerInfo:
    """Which runner loads the model, and which framework versions it needs."""

    runner_name: str
    required_framework_version: str
    runner_compat_version: int | None = None
    opts: dict[str, RunnerOpt] | None = None


@dataclass(eq=False)
class SelfTest:
    """Inputs (and optionally expected outputs) that a runtime can run to check the model."""

    inputs: dict[str, TensorValue]
    name: str | None = None
    description: str | None = None
    expected_out: dict[str, TensorValue] | None = None


@dataclass(eq=False)
class Example:
    """Documentation example: values are tensors or misc files (e.g. an image)."""

    inputs: dict[str, ExampleValue]
    sample_out: dict[str, ExampleValue]
    name: str | None = None
    description: str | None = None


@dataclass(eq=False, kw_only=True)
class CartonInfo:
    """Everything carton.toml says, plus the misc files the archive carries."""

    runner: RunnerInfo
    model_name: str | None = None
    short_description: str | None = None
    model_description: str | None = None
    license: str | None = None
    repository: str | None = None
    homepage: str | None = None
    required_platforms: list[str] | None = None
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None
    self_tests: list[SelfTest] | None = None
    examples: list[Example] | None = None
    misc_files: dict[str, bytes | LazyMiscFile] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Unknown top-level keys found when reading (ignored, kept for tools)."""


TEXT_FIELDS = ("model_name", "short_description", "model_description", "license", "repository", "homepage")
MAX_SHORT_DESCRIPTION = 100


def short_description_too_long(text: str) -> bool:
    """The original rejects only when both the byte and the character counts exceed 100."""
    return len(text.encode("utf-8")) > MAX_SHORT_DESCRIPTION and len(text) > MAX_SHORT_DESCRIPTION


_DTYPE_NAMES = frozenset(DTYPES)
_MAX_DIM = 2**64


def check_dtype(value: Any) -> str:
    """``value`` if it is one of the original's DataType names, else E-ARG-INVALID at ``dtype``."""
    if isinstance(value, str) and value in _DTYPE_NAMES:
        return value
    raise CartonFormatError("E-ARG-INVALID", f"Invalid datatype: `{value}` (expected one of {', '.join(DTYPES)})", key="dtype")


def check_shape(value: Any) -> Shape:
    """A shape in the Python encoding (None, a str, or a list of non-negative int / str / None);
    tuples become lists and numpy integers ints; anything else raises E-ARG-INVALID at ``shape``."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, (list, tuple)):
        raise CartonFormatError("E-ARG-INVALID", f"must be None, a str or a list of dimensions, not {type(value).__name__}", key="shape")
    dims = list(value)  # the spec's own list, as the original's bindings keep their own copy
    for i, dim in enumerate(dims):
        if dim is None or isinstance(dim, str) or (type(dim) is int and 0 <= dim < _MAX_DIM):
            continue
        if isinstance(dim, np.integer) and 0 <= dim < _MAX_DIM:
            dims[i] = int(dim)
            continue
        raise CartonFormatError("E-ARG-INVALID", f"must be a non-negative int, a str or None, not {dim!r}", key=f"shape[{i}]")
    return dims


# ---------------------------------------------------------------------------------------------
# Python -> TOML


def _arg_error(key: str, message: str) -> CartonFormatError:
    return CartonFormatError("E-ARG-INVALID", message, key=key)


def shape_to_toml(shape: Shape, key: str) -> str | list[int | str]:
    """A Python shape as carton.toml spells it (``None`` becomes ``"*"``); a bad one (see
    :func:`check_shape`) raises E-ARG-INVALID at ``key``."""
    try:
        shape = check_shape(shape)
    except CartonFormatError as exc:
        raise _arg_error(key + (exc.key or "")[len("shape"):], exc.message) from None
    if shape is None:
        return ANY
    if isinstance(shape, str):
        return shape
    return [ANY if dim is None else dim for dim in shape]


def tensor_spec_to_toml(spec: TensorSpec, key: str) -> dict[str, Any]:
    """A TensorSpec as an ``[[input]]`` / ``[[output]]`` table; a bad one raises E-ARG-INVALID at ``key``."""
    if not isinstance(spec, TensorSpec):
        raise _arg_error(key, f"must be a TensorSpec, not {type(spec).__name__}")
    doc: dict[str, Any] = {"name": spec.name, "dtype": spec.dtype, "shape": shape_to_toml(spec.shape, f"{key}.shape")}
    if spec.description is not None:
        doc["description"] = spec.description
    if spec.internal_name is not None:
        doc["internal_name"] = spec.internal_name
    return doc


def runner_to_toml(runner: RunnerInfo) -> dict[str, Any]:
    """The ``[runner]`` table, version requirement normalised; refuses what a reader could not load."""
    from .version_req import VersionReq

    if not isinstance(runner, RunnerInfo):
        raise _arg_error("runner", f"must be a RunnerInfo, not {type(runner).__name__}")
    if not isinstance(runner.required_framework_version, str):
        raise _arg_error("runner.required_framework_version", "must be a str")
    try:
        required = str(VersionReq.parse(runner.required_framework_version))
    except CartonFormatError as exc:
        raise CartonFormatError(exc.code, exc.message, key="runner.required_framework_version") from None
    if runner.runner_compat_version is None:
        raise _arg_error(
            "runner.runner_compat_version",
            "is required when writing (the original's reader needs it; torchscript uses 1)",
        )
    doc: dict[str, Any] = {
        "runner_name": runner.runner_name,
        "required_framework_version": required,
        "runner_compat_version": runner.runner_compat_version,
    }
    if runner.opts is not None:
        if not isinstance(runner.opts, dict):
            raise _arg_error("runner.opts", "must be a dict")
        doc["opts"] = {k: runner.opts[k] for k in sorted(runner.opts, key=str)}
    return doc


def info_to_document(
    info: CartonInfo,
    self_test_refs: list[tuple[dict[str, str], dict[str, str] | None]],
    example_refs: list[tuple[dict[str, str], dict[str, str]]],
) -> dict[str, Any]:
    """Build the carton.toml document; tensors and misc values are replaced by the references
    the writer assigned to them (``self_test_refs`` / ``example_refs`` align with the info)."""
    doc: dict[str, Any] = {"spec_version": SPEC_VERSION}
    for name in TEXT_FIELDS:
        value = getattr(info, name)
        if value is not None:
            doc[name] = value
    if isinstance(info.short_description, str) and short_description_too_long(info.short_description):
        raise _arg_error("short_description", f"is longer than {MAX_SHORT_DESCRIPTION} characters")
    if info.required_platforms is not None:
        doc["required_platforms"] = info.required_platforms
    for attr, toml_key in (("inputs", "input"), ("outputs", "output")):
        specs = getattr(info, attr)
        if specs is not None:
            if not isinstance(specs, (list, tuple)):
                raise _arg_error(attr, "must be a list of TensorSpec")
            doc[toml_key] = [tensor_spec_to_toml(s, f"{toml_key}[{i}]") for i, s in enumerate(specs)]
    if self_test_refs:
        tests = []
        for test, (inputs, expected) in zip(info.self_tests or [], self_test_refs):
            item: dict[str, Any] = _name_and_description(test)
            item["inputs"] = inputs
            if expected is not None:
                item["expected_out"] = expected
            tests.append(item)
        doc["self_test"] = tests
    if example_refs:
        examples = []
        for example, (inputs, sample_out) in zip(info.examples or [], example_refs):
            item = _name_and_description(example)
            item["inputs"] = inputs
            item["sample_out"] = sample_out
            examples.append(item)
        doc["example"] = examples
    doc["runner"] = runner_to_toml(info.runner)
    return doc


def _name_and_description(obj: SelfTest | Example) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if obj.name is not None:
        item["name"] = obj.name
    if obj.description is not None:
        item["description"] = obj.description
    return item


# ---------------------------------------------------------------------------------------------
# TOML -> Python (the document has already passed the JSON Schema)


def shape_from_toml(value: str | list[int | str]) -> Shape:
    """A carton.toml shape in the Python encoding (``"*"`` becomes ``None``)."""
    if isinstance(value, str):
        return None if value == ANY else value
    return [None if dim == ANY else dim for dim in value]


def tensor_spec_from_toml(doc: dict[str, Any]) -> TensorSpec:
    """A TensorSpec from a schema-checked ``[[input]]`` / ``[[output]]`` table."""
    return TensorSpec(
        name=doc["name"],
        dtype=doc["dtype"],
        shape=shape_from_toml(doc["shape"]),
        description=doc.get("description"),
        internal_name=doc.get("internal_name"),
    )


def runner_from_toml(doc: dict[str, Any]) -> RunnerInfo:
    """A RunnerInfo from a schema-checked ``[runner]`` table (version requirement normalised)."""
    from .version_req import VersionReq

    opts = doc.get("opts")
    return RunnerInfo(
        runner_name=doc["runner_name"],
        required_framework_version=str(VersionReq.parse(doc["required_framework_version"])),
        runner_compat_version=doc.get("runner_compat_version"),
        opts=dict(opts) if opts is not None else None,
    )


KNOWN_TOP_LEVEL_KEYS = frozenset(
    {"spec_version", *TEXT_FIELDS, "required_platforms", "input", "output", "self_test", "example", "runner"}
)


def info_from_document(
    doc: dict[str, Any],
    resolve: Callable[[str, str], Any],
    misc_files: dict[str, LazyMiscFile] | None,
    *,
    self_test_class: type[SelfTest] | None = None,
    example_class: type[Example] | None = None,
) -> CartonInfo:
    """Build a CartonInfo from a schema-checked carton.toml document.

    ``resolve(reference, key_path)`` turns ``@tensor_data/...`` and ``@misc/...`` strings into lazy
    values (and raises E-REF-DANGLING for references that name nothing).  ``self_test_class`` /
    ``example_class`` (subclasses of SelfTest / Example, e.g. another API's) build the tests and
    examples, so that API's ``isinstance`` checks hold for what it reads.
    """
    self_test_cls = self_test_class or SelfTest
    example_cls = example_class or Example

    def resolve_map(mapping: dict[str, str], key: str) -> dict[str, Any]:
        return {name: resolve(ref, f"{key}.{name}") for name, ref in mapping.items()}

    self_tests = None
    if "self_test" in doc:
        self_tests = []
        for i, item in enumerate(doc["self_test"]):
            expected = item.get("expected_out")
            self_tests.append(
                self_test_cls(
                    inputs=resolve_map(item["inputs"], f"self_test[{i}].inputs"),
                    name=item.get("name"),
                    description=item.get("description"),
                    expected_out=None if expected is None else resolve_map(expected, f"self_test[{i}].expected_out"),
                )
            )
    examples = None
    if "example" in doc:
        examples = [
            example_cls(
                inputs=resolve_map(item["inputs"], f"example[{i}].inputs"),
                sample_out=resolve_map(item["sample_out"], f"example[{i}].sample_out"),
                name=item.get("name"),
                description=item.get("description"),
            )
            for i, item in enumerate(doc["example"])
        ]
    return CartonInfo(
        runner=runner_from_toml(doc["runner"]),
        **{name: doc.get(name) for name in TEXT_FIELDS},
        required_platforms=list(doc["required_platforms"]) if "required_platforms" in doc else None,
        inputs=[tensor_spec_from_toml(s) for s in doc["input"]] if "input" in doc else None,
        outputs=[tensor_spec_from_toml(s) for s in doc["output"]] if "output" in doc else None,
        self_tests=self_tests,
        examples=examples,
        misc_files=misc_files,
        extra={k: v for k, v in doc.items() if k not in KNOWN_TOP_LEVEL_KEYS},
    )

__all__ = [
    "ANY",
    "KNOWN_TOP_LEVEL_KEYS",
    "MAX_SHORT_DESCRIPTION",
    "MISC_REF_PREFIX",
    "SPEC_VERSION",
    "TENSOR_REF_PREFIX",
    "TEXT_FIELDS",
    "CartonInfo",
    "Dim",
    "Example",
    "ExampleValue",
    "RunnerInfo",
    "RunnerOpt",
    "SelfTest",
    "Shape",
    "TensorSpec",
    "TensorValue",
    "check_dtype",
    "check_shape",
    "info_from_document",
    "info_to_document",
    "runner_from_toml",
    "runner_to_toml",
    "shape_from_toml",
    "shape_to_toml",
    "short_description_too_long",
    "tensor_spec_from_toml",
    "tensor_spec_to_toml",
]
