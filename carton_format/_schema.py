"""JSON Schema checks of parsed TOML documents, reported as CartonFormatErrors in plain words.

The four schemas live in ``carton_format/schemas/`` (draft 2020-12) and are loaded once, lazily.
``check()`` validates a document as parsed by tomli (so values may also be ``datetime``/``date``/
``time`` objects, which fail wherever a string is expected) and returns one error per location:

* ``key`` is the key path in dotted form with list indices (``input[0].dtype``,
  ``self_test[1].inputs.x``); a key that is not a bare TOML key is written as a quoted string
  (``runner.opts."a.b"``); ``None`` for the document itself;
* ``message`` is plain words ("is required", "must be a string, not an integer");
* for ``anyOf`` the most specific explanation is reported: the branch whose type fits the value,
  or the subschema's ``x-message``, never jsonschema's raw dump of every branch;
* at most ``max_errors`` locations are reported, and checking stops there: the cost is linear in
  the document and the memory bounded, whatever the document (see ``check_limited``).

TOML distinguishes integers from floats, so here ``integer`` means a Python ``int`` (never a
``float`` such as ``1.0``, never a ``bool``).
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import logging
import re
from importlib import resources
from typing import Any, Callable, Iterable, Iterator

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import CartonFormatError

log = logging.getLogger(__name__)

__all__ = ["CONTEXT_CAP", "DEFAULT_MAX_ERRORS", "SCHEMAS", "check", "check_limited", "format_key", "schema_json"]

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


#: Default cap on the errors one check returns (the default ``Limits.max_findings``).
DEFAULT_MAX_ERRORS = 1000
#: Errors kept per branch of an ``anyOf`` to explain its failure: enough to find the branch that
#: fits and to explain it (an array of a million bad items is explained by its first ones).
CONTEXT_CAP = 64


def check(document: dict[str, Any], schema: str, member: str, *, max_errors: int | None = DEFAULT_MAX_ERRORS) -> list[CartonFormatError]:
    """Validate ``document`` against ``schema``; an empty list means it conforms.

    ``schema`` is one of ``carton-toml``, ``tensor-index``, ``string-tensor`` (code ``E-SCHEMA``)
    or ``links`` (code ``E-LINKS-INVALID``); ``member`` is the archive path the errors name.
    At most ``max_errors`` errors (one per location) are returned (None: no cap).  Never raises
    for any document content.
    """
    return check_limited(document, schema, member, max_errors)[0]


def check_limited(document: Any, schema: str, member: str, max_errors: int | None) -> tuple[list[CartonFormatError], bool]:
    """``(errors, more)``: like :func:`check`; ``more`` is True when the check stopped at
    ``max_errors`` (or cut an explanation short) so that the document may hold other problems.

    Time is linear in the document (each value is checked once by a compiled validator; a value
    on the way to an error once more per schema level above it) and memory is bounded by
    ``max_errors`` x ``CONTEXT_CAP``: errors are produced lazily and nothing but the kept
    explanations is retained.  ``max_errors`` below 1 counts as 1 (an invalid document always
    gets an error).
    """
    compiled = _compiled(schema)  # raises ValueError for an unknown schema name
    code = SCHEMAS[schema][1]
    if compiled is None:
        return _collect(lambda: _jsonschema_errors(schema, document), code, member, max_errors)
    return _collect(lambda: () if compiled.valid(document) else compiled.errors(document, None), code, member, max_errors)


def _collect(
    errors: Callable[[], Iterable[_Error]], code: str, member: str, max_errors: int | None
) -> tuple[list[CartonFormatError], bool]:
    """Explain errors (one message per location) until ``max_errors`` locations are known."""
    if max_errors is not None:
        max_errors = max(1, max_errors)
    found: dict[Path, str] = {}
    more = False
    try:
        for error in errors():
            for path, message in _explain(error):
                if path in found:
                    continue
                if max_errors is not None and len(found) >= max_errors:
                    more = True
                    break
                found[path] = message
            if more:
                break
            if error.truncated:
                more = True
    except RecursionError:
        return [CartonFormatError(code, "nests too deeply to check", member=member)], False
    problems = [CartonFormatError(code, message, member=member, key=format_key(path)) for path, message in found.items()]
    return problems, more


# ---------------------------------------------------------------------------------------------
# A compiled validator for the keywords the packaged schemas use
#
# jsonschema costs ~15 us per value (reference resolution, validator objects), formats the repr
# of every failing instance into its message, and materialises every error of every branch of
# an anyOf: a few MiB of hostile TOML cost GiBs and minutes.  The schemas use a dozen keywords,
# so they are compiled once into closures that check a value without allocating and produce
# errors lazily, with the same keyword, value, instance, schema and path as jsonschema's
# (tests/format/test_hardening_schema.py checks both agree).  A schema with another keyword is
# checked by jsonschema itself (_jsonschema_errors).


class _Error:
    """One failure: the fields of jsonschema's ValidationError that the explanation uses."""

    __slots__ = ("keyword", "value", "instance", "schema", "where", "branch", "context", "truncated", "message")

    def __init__(
        self,
        keyword: str,
        value: Any,
        instance: Any,
        schema: Any,
        where: Path,
        context: list["_Error"] | None = None,
        truncated: bool = False,
        message: str | None = None,
    ) -> None:
        self.keyword = keyword
        self.value = value
        self.instance = instance
        self.schema = schema
        self.where = where  # instance path; for a propertyNames failure the key is appended
        self.branch = 0  # index of the anyOf branch it belongs to, in a context
        self.context = context
        self.truncated = truncated  # some branch errors were left out of the context
        self.message = message


_Cons = Any  # None, or (parent cons, key): a path built without copying until an error needs it


def _path(cons: _Cons) -> Path:
    parts: list[Any] = []
    while cons is not None:
        cons, key = cons
        parts.append(key)
    return tuple(reversed(parts))


class _Unsupported(Exception):
    pass


_ANNOTATIONS = frozenset(
    {"title", "description", "x-message", "$schema", "$id", "$defs", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly"}
)


def _is_str(x: Any) -> bool:
    return isinstance(x, str)


def _is_array(x: Any) -> bool:
    return isinstance(x, list)


def _is_object(x: Any) -> bool:
    return isinstance(x, dict)


def _is_bool(x: Any) -> bool:
    return isinstance(x, bool)


def _is_null(x: Any) -> bool:
    return x is None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": _is_str,
    "integer": _is_int,
    "number": _is_num,
    "boolean": _is_bool,
    "array": _is_array,
    "object": _is_object,
    "null": _is_null,
}

_Valid = Callable[[Any], bool]
_Errors = Callable[[Any, _Cons], Iterator[_Error]]


class _Node:
    """One compiled subschema: ``valid(x)`` (no allocation) and ``errors(x, path)`` (lazy)."""

    __slots__ = ("valid", "errors")

    def __init__(self) -> None:
        self.valid: _Valid = _always
        self.errors: _Errors = _no_errors


def _always(_x: Any) -> bool:
    return True


def _no_errors(_x: Any, _path: _Cons) -> Iterator[_Error]:
    return iter(())


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.nodes: dict[tuple[int, bool], _Node] = {}

    def node(self, schema: Any, names: bool = False) -> _Node:
        """``names``: the subschema of a propertyNames (its own failures name the key)."""
        if not isinstance(schema, dict):
            raise _Unsupported(f"boolean schema {schema!r}")
        key = (id(schema), names)
        if key in self.nodes:
            return self.nodes[key]
        node = self.nodes[key] = _Node()  # registered first: a $ref may come back here
        parts = [self.keyword(k, v, schema, names) for k, v in schema.items() if k not in _ANNOTATIONS]
        parts = [p for p in parts if p is not None]
        valids = tuple(p[0] for p in parts)
        makers = tuple(p[1] for p in parts)
        if not parts:
            return node
        if len(parts) == 1:
            node.valid = valids[0]
            node.errors = makers[0]
            return node

        def valid(x: Any) -> bool:
            for v in valids:  # noqa: SIM110 - the hot path: a loop is faster than all() over a generator
                if not v(x):
                    return False
            return True

        def errors(x: Any, path: _Cons) -> Iterator[_Error]:
            for v, make in zip(valids, makers):
                if not v(x):
                    yield from make(x, path)

        node.valid, node.errors = valid, errors
        return node

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Unsupported(f"$ref {ref!r}")
        target: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise _Unsupported(f"$ref {ref!r}")
        return target

    def keyword(self, k: str, v: Any, schema: dict[str, Any], names: bool) -> tuple[_Valid, _Errors] | None:
        def fail(x: Any, path: _Cons) -> Iterator[_Error]:
            where = _path(path)
            yield _Error(k, v, x, schema, where + (x,) if names else where)

        def simple(valid: _Valid) -> tuple[_Valid, _Errors]:
            return valid, fail

        if k == "$ref":
            target = self.node(self.resolve(v), names)
            return (lambda x: target.valid(x)), (lambda x, path: target.errors(x, path))
        if k == "type":
            types = v if isinstance(v, list) else [v]
            if not all(isinstance(t, str) and t in _TYPE_CHECKS for t in types):
                raise _Unsupported(f"type {v!r}")
            checks = tuple(_TYPE_CHECKS[t] for t in types)
            if len(checks) == 1:
                return simple(checks[0])
            return simple(lambda x: any(c(x) for c in checks))
        if k == "enum":
            if not isinstance(v, list) or not all(isinstance(e, str) for e in v):
                raise _Unsupported("enum of non-strings")
            allowed = frozenset(v)
            return simple(lambda x: isinstance(x, str) and x in allowed)
        if k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if not _is_num(v):
                raise _Unsupported(f"{k} {v!r}")
            compare = {
                "minimum": lambda x: not x < v,
                "maximum": lambda x: not x > v,
                "exclusiveMinimum": lambda x: not x <= v,
                "exclusiveMaximum": lambda x: not x >= v,
            }[k]
            return simple(lambda x: not _is_num(x) or compare(x))
        if k == "pattern":
            regex = re.compile(v)
            return simple(lambda x: not isinstance(x, str) or regex.search(x) is not None)
        if k in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
            if not _is_int(v):
                raise _Unsupported(f"{k} {v!r}")
            kind = {"I": list, "L": str, "P": dict}[k[3]]
            if k.startswith("min"):
                return simple(lambda x: not isinstance(x, kind) or len(x) >= v)
            return simple(lambda x: not isinstance(x, kind) or len(x) <= v)
        if k == "required":
            names_required = tuple(v)

            def required_valid(x: Any) -> bool:
                return not isinstance(x, dict) or all(n in x for n in names_required)

            def required_errors(x: Any, path: _Cons) -> Iterator[_Error]:
                where = _path(path)
                for n in names_required:  # one error per missing key, as jsonschema
                    if n not in x:
                        yield _Error(k, v, x, schema, where + (x,) if names else where)

            return required_valid, required_errors
        if k == "properties":
            props = tuple((name, self.node(sub)) for name, sub in v.items())

            def properties_valid(x: Any) -> bool:
                return not isinstance(x, dict) or all(name not in x or node.valid(x[name]) for name, node in props)

            def properties_errors(x: Any, path: _Cons) -> Iterator[_Error]:
                for name, node in props:
                    if name in x and not node.valid(x[name]):
                        yield from node.errors(x[name], (path, name))

            return properties_valid, properties_errors
        if k == "additionalProperties":
            if "patternProperties" in schema:
                raise _Unsupported("patternProperties")
            extra = self.node(v)
            known = frozenset(schema.get("properties", ()))

            def additional_valid(x: Any) -> bool:
                if not isinstance(x, dict):
                    return True
                for key, value in x.items():  # noqa: SIM110 - the hot path (a table of many keys)
                    if key not in known and not extra.valid(value):
                        return False
                return True

            def additional_errors(x: Any, path: _Cons) -> Iterator[_Error]:
                for key, value in x.items():
                    if key not in known and not extra.valid(value):
                        yield from extra.errors(value, (path, key))

            return additional_valid, additional_errors
        if k == "propertyNames":
            key_node = self.node(v, names=True)

            def names_valid(x: Any) -> bool:
                return not isinstance(x, dict) or all(map(key_node.valid, x))

            def names_errors(x: Any, path: _Cons) -> Iterator[_Error]:
                for key in x:
                    if not key_node.valid(key):
                        yield from key_node.errors(key, path)

            return names_valid, names_errors
        if k == "items":
            if "prefixItems" in schema:
                raise _Unsupported("prefixItems")
            item = self.node(v)
            item_valid = item.valid

            def items_valid(x: Any) -> bool:
                return not isinstance(x, list) or all(map(item_valid, x))

            def items_errors(x: Any, path: _Cons) -> Iterator[_Error]:
                for i, value in enumerate(x):
                    if not item_valid(value):
                        yield from item.errors(value, (path, i))

            return items_valid, items_errors
        if k == "not":
            negated = self.node(v)
            return simple(lambda x: not negated.valid(x))
        if k == "anyOf":
            if not isinstance(v, list) or not v:
                raise _Unsupported("anyOf")
            branches = tuple(self.node(sub) for sub in v)

            def any_valid(x: Any) -> bool:
                return any(b.valid(x) for b in branches)

            def any_errors(x: Any, path: _Cons) -> Iterator[_Error]:
                context: list[_Error] = []
                truncated = False
                for index, branch in enumerate(branches):
                    for n, sub in enumerate(branch.errors(x, path)):
                        if n == CONTEXT_CAP:
                            truncated = True
                            break
                        sub.branch = index
                        truncated = truncated or sub.truncated
                        context.append(sub)
                where = _path(path)
                yield _Error(k, v, x, schema, where + (x,) if names else where, context, truncated)

            return any_valid, any_errors
        raise _Unsupported(f"keyword {k!r}")


@functools.lru_cache(maxsize=None)
def _compiled(name: str) -> _Node | None:
    """The compiled root of schema ``name``; None when it uses a keyword the compiler lacks
    (then jsonschema checks it)."""
    root = _load(name)
    try:
        return _Compiler(root).node(root)
    except (_Unsupported, re.error, TypeError, AttributeError) as exc:
        log.warning("schema %s is checked by jsonschema (slower): %s", name, exc)
        return None


def _jsonschema_errors(name: str, document: Any) -> Iterator[_Error]:
    """jsonschema's errors (lazily) in the compiled validator's form (the fallback, and the
    reference the tests compare the compiled validator with)."""
    for error in _validator(name).iter_errors(document):
        yield _from_jsonschema(error)


def _from_jsonschema(error: ValidationError) -> _Error:
    path = tuple(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        path += (error.instance,)
    context = None
    if error.context:
        context = []
        for sub in error.context:
            converted = _from_jsonschema(sub)
            index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
            converted.branch = index if isinstance(index, int) else 0
            context.append(converted)
    return _Error(str(error.validator), error.validator_value, error.instance, error.schema, path, context, message=error.message)


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


def _x_message(error: _Error) -> str | None:
    schema = error.schema if isinstance(error.schema, dict) else {}
    message = schema.get("x-message")
    return message if isinstance(message, str) else None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: _Error) -> str:
    """Plain words for a single (non-anyOf) failure at the error's own location."""
    keyword = error.keyword
    value = error.value
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
    return error.message or "is not valid"


def _explain(error: _Error) -> Iterator[tuple[Path, str]]:
    path = error.where
    keyword = error.keyword
    if keyword == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        for name in error.value:
            if name not in instance:
                yield path + (name,), "is required"
        return
    if keyword in ("anyOf", "oneOf") and error.context:
        yield from _explain_alternatives(error, path)
        return
    yield path, _message(error)


def _is_type_error_at(error: _Error, path: Path) -> bool:
    return error.keyword == "type" and error.where == path


def _explain_alternatives(error: _Error, path: Path) -> Iterator[tuple[Path, str]]:
    """The most specific explanation of an anyOf failure.

    A branch "fits" the value when it does not reject the value's type at this location.  If a
    fitting branch failed deeper inside the value (an array item, a table key), its errors are
    explained recursively; if it failed here, the subschema's ``x-message`` (or the branch's own
    message) is used.  If no branch fits, the message lists what the value may be.
    """
    branches: dict[int, list[_Error]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.branch, []).append(sub)
    fitting = [errs for _, errs in sorted(branches.items()) if not any(_is_type_error_at(e, path) for e in errs)]
    custom = _x_message(error)
    if fitting:
        deeper = [errs for errs in fitting if any(len(e.where) > len(path) for e in errs)]
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
                for name in _expected_types(sub.value):
                    if name not in expected:
                        expected.append(name)
    yield path, f"must be {_join_alternatives(expected)}, not {actual}"
