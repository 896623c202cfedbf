"""JSON Schema checks of parsed TOML documents, reported as CartonFormatErrors in plain words.

The four schemas live in ``carton_format/schemas/`` (draft 2020-12) and are loaded once, lazily.
``check()`` validates a document as parsed by tomli (so values may also be ``datetime``/``date``/
``time`` objects, which fail wherever a string is expected) and returns one error per location:

* ``key`` is the key path in dotted form with list indices (``input[0].dtype``,
  ``self_test[1].inputs.x``); a key that is not a bare TOML key is written as a quoted string
  (``runner.opts."a.b"``); ``None`` for the document itself;
* ``message`` is plain words ("is required", "must be a string, not an integer");
* for ``anyOf`` the most specific explanation is reported: the branch whose type fits the value,
  or the subschema's ``x-message``, never jsonschema's raw dump of every branch.

TOML distinguishes integers from floats, so here ``integer`` means a Python ``int`` (never a
``float`` such as ``1.0``, never a ``bool``).
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import re
from importlib import resources
from typing import Any, Iterable, Iterator

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import CartonFormatError

__all__ = ["SCHEMAS", "check", "schema_json"]

# schema name -> (file name, error code reported for violations)
SCHEMAS: dict[str, tuple[str, str]] = {
    "carton-toml": ("carton-toml.schema.json", "E-SCHEMA"),
    "tensor-index": ("tensor-index.schema.json", "E-SCHEMA"),
    "string-tensor": ("string-tensor.schema.json", "E-SCHEMA"),
    "links": ("links.schema.json", "E-LINKS-INVALID"),
}

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_JSON_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "a table",
    "null": "null",
}

Path = tuple[Any, ...]


def _is_integer(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, (int, float)) and not isinstance(instance, bool)


_TomlValidator = jsonschema.validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number}),
)


@functools.lru_cache(maxsize=None)
def _load(name: str) -> dict[str, Any]:
    if name not in SCHEMAS:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(SCHEMAS)}")
    text = resources.files(__package__ or "carton_format").joinpath("schemas").joinpath(SCHEMAS[name][0]).read_text(encoding="utf-8")
    return json.loads(text)


def schema_json(name: str) -> dict[str, Any]:
    """The parsed schema ``name`` (one of ``SCHEMAS``); a copy the caller may modify."""
    return copy.deepcopy(_load(name))


@functools.lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    return _TomlValidator(_load(name))


def check(document: dict[str, Any], schema: str, member: str) -> list[CartonFormatError]:
    """Validate ``document`` against ``schema``; an empty list means it conforms.

    ``schema`` is one of ``carton-toml``, ``tensor-index``, ``string-tensor`` (code ``E-SCHEMA``)
    or ``links`` (code ``E-LINKS-INVALID``); ``member`` is the archive path the errors name.
    Never raises for any document content.
    """
    code = SCHEMAS[schema][1] if schema in SCHEMAS else None
    validator = _validator(schema)  # raises ValueError for an unknown schema name
    found: dict[Path, str] = {}
    try:
        errors = list(validator.iter_errors(document))
    except RecursionError:
        return [CartonFormatError(code or "E-SCHEMA", "nests too deeply to check", member=member)]
    for error in errors:
        for path, message in _explain(error):
            found.setdefault(path, message)
    return [
        CartonFormatError(code or "E-SCHEMA", message, member=member, key=format_key(path)) for path, message in found.items()
    ]


def format_key(path: Iterable[Any]) -> str | None:
    """``("input", 0, "dtype")`` -> ``input[0].dtype``; ``()`` -> None."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if not _BARE_KEY.fullmatch(text):
            text = json.dumps(text, ensure_ascii=False)
        out += f".{text}" if out else text
    return out or None


# ---------------------------------------------------------------------------------------------
# Turning jsonschema errors into (path, message)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _join_alternatives(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _expected_types(value: Any) -> list[str]:
    types = value if isinstance(value, list) else [value]
    return [_JSON_TYPE_NAMES.get(t, str(t)) for t in types]


def _path_of(error: ValidationError) -> Path:
    """Instance path of an error; for ``propertyNames`` failures the offending key is appended."""
    path = tuple(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        path += (error.instance,)
    return path


def _x_message(error: ValidationError) -> str | None:
    schema = error.schema if isinstance(error.schema, dict) else {}
    message = schema.get("x-message")
    return message if isinstance(message, str) else None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: ValidationError) -> str:
    """Plain words for a single (non-anyOf) failure at the error's own location."""
    keyword = error.validator
    value = error.validator_value
    if keyword == "type":
        return f"must be {_join_alternatives(_expected_types(value))}, not {_type_name(error.instance)}"
    custom = _x_message(error)
    if custom and keyword not in ("required",):
        return custom
    if keyword == "enum":
        return "must be one of: " + ", ".join(str(v) for v in value)
    if keyword == "const":
        return f"must be {_short(value)}"
    if keyword == "minimum":
        return f"must be at least {value}"
    if keyword == "maximum":
        return f"must be at most {value}"
    if keyword == "exclusiveMinimum":
        return f"must be greater than {value}"
    if keyword == "exclusiveMaximum":
        return f"must be less than {value}"
    if keyword == "pattern":
        return f"must match the pattern {value}"
    if keyword in ("minItems", "minLength", "minProperties"):
        return "must not be empty" if value == 1 else f"must have at least {value} items"
    if keyword in ("maxItems", "maxLength", "maxProperties"):
        return f"must have at most {value} items"
    if keyword in ("not", "false", "additionalProperties", "unevaluatedProperties"):
        return "is not allowed"
    return error.message


def _explain(error: ValidationError) -> Iterator[tuple[Path, str]]:
    path = _path_of(error)
    keyword = error.validator
    if keyword == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        for name in error.validator_value:
            if name not in instance:
                yield path + (name,), "is required"
        return
    if keyword in ("anyOf", "oneOf") and error.context:
        yield from _explain_alternatives(error, path)
        return
    yield path, _message(error)


def _is_type_error_at(error: ValidationError, path: Path) -> bool:
    return error.validator == "type" and _path_of(error) == path


def _explain_alternatives(error: ValidationError, path: Path) -> Iterator[tuple[Path, str]]:
    """The most specific explanation of an anyOf failure.

    A branch "fits" the value when it does not reject the value's type at this location.  If a
    fitting branch failed deeper inside the value (an array item, a table key), its errors are
    explained recursively; if it failed here, the subschema's ``x-message`` (or the branch's own
    message) is used.  If no branch fits, the message lists what the value may be.
    """
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        branches.setdefault(index if isinstance(index, int) else 0, []).append(sub)
    fitting = [errs for _, errs in sorted(branches.items()) if not any(_is_type_error_at(e, path) for e in errs)]
    custom = _x_message(error)
    if fitting:
        deeper = [errs for errs in fitting if any(len(_path_of(e)) > len(path) for e in errs)]
        if deeper:
            for sub in deeper[0]:
                yield from _explain(sub)
            return
        if custom:
            yield path, custom
            return
        yield from _explain(fitting[0][0])
        return
    actual = _type_name(error.instance)
    if custom:
        yield path, f"{custom}, not {actual}"
        return
    expected: list[str] = []
    for errs in branches.values():
        for sub in errs:
            if _is_type_error_at(sub, path):
                for name in _expected_types(sub.validator_value):
                    if name not in expected:
                        expected.append(name)
    yield path, f"must be {_join_alternatives(expected)}, not {actual}"
