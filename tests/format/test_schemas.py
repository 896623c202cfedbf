"""JSON Schemas (carton_format/schemas), their checker (schema_check) and the spec's requirement ids."""

from __future__ import annotations

import copy
import datetime
import io
import json
import math
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
import tomli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from carton_format import _schema as schema_check
from carton_format.errors import CODES, WARNING_CODES, CartonFormatError

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL_TOML = ROOT / "tests" / "data" / "original_toml"
TEST_CARTON = Path("/work/shared/fixtures/original/test.carton")
SPEC = ROOT / "spec" / "format-v1.md"
SCHEMA_NAMES = ("carton-toml", "tensor-index", "string-tensor", "links")
EXPECTED_CODE = {"carton-toml": "E-SCHEMA", "tensor-index": "E-SCHEMA", "string-tensor": "E-SCHEMA", "links": "E-LINKS-INVALID"}
SHA = "e550f6224a5133f597d823ab4590f369e0b20e3c6446488225fc6f7a372b9fe2"
U64_MAX = 2**64 - 1


def keys_and_messages(document: Any, schema: str, member: str = "x") -> dict[str | None, str]:
    errors = schema_check.check(document, schema, member)
    for error in errors:
        assert isinstance(error, CartonFormatError)
        assert error.code == EXPECTED_CODE[schema]
        assert error.member == member
    return {e.key: e.message for e in errors}


# ---------------------------------------------------------------------------------------------
# The schema files themselves


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = schema_check.schema_json(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_files_are_on_disk_under_both_paths(name: str) -> None:
    packaged = ROOT / "carton_format" / "schemas" / f"{name}.schema.json"
    assert json.loads(packaged.read_text("utf-8")) == schema_check.schema_json(name)
    root_link = ROOT / "schemas" / f"{name}.schema.json"
    if root_link.exists():
        assert root_link.read_bytes() == packaged.read_bytes()


def _walk_schema(node: Any, where: str = "#"):
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk_schema(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_schema(value, f"{where}/{i}")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_property_has_title_and_description(name: str) -> None:
    for where, node in _walk_schema(schema_check.schema_json(name)):
        for key in ("properties", "$defs"):
            for prop, sub in node.get(key, {}).items() if isinstance(node.get(key), dict) else ():
                assert isinstance(sub, dict), f"{where}/{key}/{prop}"
                assert sub.get("title") and sub.get("description"), f"{where}/{key}/{prop} lacks title/description"
        for key in ("items", "additionalProperties", "propertyNames"):
            sub = node.get(key)
            if isinstance(sub, dict) and "$ref" not in sub:
                assert sub.get("title") and sub.get("description"), f"{where}/{key} lacks title/description"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_descriptions_name_the_codes_code_adds(name: str) -> None:
    description = schema_check.schema_json(name)["description"]
    expected = {
        "carton-toml": ["E-SCHEMA", "E-SPEC-VERSION", "E-VERSIONREQ-INVALID", "E-REF-DANGLING", "W-RUNNER-COMPAT-MISSING"],
        "tensor-index": ["E-SCHEMA", "E-TENSOR-DTYPE", "E-TENSOR-SHAPE", "E-TENSOR-FILE-MISSING", "E-TENSOR-NESTED", "E-TENSOR-DUPLICATE-NAME"],
        "string-tensor": ["E-TENSOR-STRING"],
        "links": ["E-LINKS-INVALID", "E-LINKS-URL", "W-LINKS-VERSION", "W-LINKS-UNUSED"],
    }[name]
    for code in expected:
        assert code in description
    for code in re.findall(r"\b[EW]-[A-Z0-9]+(?:-[A-Z0-9]+)*\b", description):
        assert code in CODES or code in WARNING_CODES, code


def test_schema_json_returns_a_copy() -> None:
    first = schema_check.schema_json("links")
    first["properties"].clear()
    assert schema_check.schema_json("links")["properties"]


def test_unknown_schema_name_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        schema_check.check({}, "nope", "x")
    with pytest.raises(ValueError):
        schema_check.schema_json("nope")


# ---------------------------------------------------------------------------------------------
# The original implementation's own test cases


ORIGINAL_PASS = ["complete", "minimal", "opt_types", "required_platforms", "self_test", "shapes"]
ORIGINAL_FAIL = {
    "required_platforms_expect_failure": ("required_platforms[4]", "known architecture"),
    "invalid_self_test_expect_failure": ("self_test[0].inputs.x", "must start with @tensor_data/"),
    "invalid_self_test_2_expect_failure": ("self_test[0].inputs.x", "must start with @tensor_data/"),
}


def test_all_original_cases_are_covered() -> None:
    on_disk = {p.stem for p in ORIGINAL_TOML.glob("*.toml")}
    assert on_disk == set(ORIGINAL_PASS) | set(ORIGINAL_FAIL)


@pytest.mark.parametrize("name", ORIGINAL_PASS)
def test_original_valid_documents_pass(name: str) -> None:
    document = tomli.loads((ORIGINAL_TOML / f"{name}.toml").read_text("utf-8"))
    assert schema_check.check(document, "carton-toml", "carton.toml") == []


@pytest.mark.parametrize("name", sorted(ORIGINAL_FAIL))
@pytest.mark.spec("FMT-META-6", "FMT-META-13")
def test_original_invalid_documents_fail(name: str) -> None:
    document = tomli.loads((ORIGINAL_TOML / f"{name}.toml").read_text("utf-8"))
    key, message = ORIGINAL_FAIL[name]
    found = keys_and_messages(document, "carton-toml", "carton.toml")
    assert list(found) == [key]
    assert message in found[key]


def _fixture_member(name: str) -> bytes:
    """A member of the original's test.carton (zstd frames without content size)."""
    zstandard = pytest.importorskip("zstandard")
    if not TEST_CARTON.exists():
        pytest.skip("fixture test.carton is not available")
    raw = TEST_CARTON.read_bytes()
    info = zipfile.ZipFile(io.BytesIO(raw)).getinfo(name)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data = raw[start : start + info.compress_size]
    if info.compress_type == 93:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=info.file_size)
    assert info.compress_type == 0
    return data


@pytest.mark.parametrize(
    ("member", "schema"),
    [
        ("carton.toml", "carton-toml"),
        ("tensor_data/index.toml", "tensor-index"),
        ("tensor_data/tensor_1.toml", "string-tensor"),
    ],
)
def test_original_archive_documents_pass(member: str, schema: str) -> None:
    document = tomli.loads(_fixture_member(member).decode("utf-8"))
    assert schema_check.check(document, schema, member) == []


# ---------------------------------------------------------------------------------------------
# carton.toml: valid documents


def minimal() -> dict[str, Any]:
    return {
        "spec_version": 1,
        "runner": {"runner_name": "torchscript", "required_framework_version": "=2.0", "runner_compat_version": 1},
    }


def full() -> dict[str, Any]:
    doc = minimal()
    doc.update(
        model_name="m",
        short_description="s",
        model_description="d",
        license="Apache-2.0",
        repository="https://example.com/r",
        homepage="https://example.com",
        required_platforms=["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"],
        input=[
            {"name": "a", "dtype": "float32", "shape": "*"},
            {"name": "b", "dtype": "string", "shape": ["batch", 3, "*"], "description": "x", "internal_name": "n:0"},
        ],
        output=[{"name": "y", "dtype": "uint64", "shape": []}],
        self_test=[{"name": "t", "description": "d", "inputs": {"a": "@tensor_data/_tensor_0"}, "expected_out": {"y": "@tensor_data/_tensor_1"}}],
        example=[{"inputs": {"a": "@misc/_example_misc_file_0"}, "sample_out": {"y": "@tensor_data/_tensor_2"}}],
    )
    doc["runner"]["opts"] = {"i": -(2**63), "j": 2**63 - 1, "f": 4.0, "n": math.nan, "inf": -math.inf, "s": "x", "b": False}
    return doc


VALID_CARTON_VARIANTS = {
    "minimal": minimal(),
    "full": full(),
    "no runner_compat_version (warning only)": {"spec_version": 1, "runner": {"runner_name": "x", "required_framework_version": "*"}},
    "spec_version 2 (E-SPEC-VERSION is code's)": dict(minimal(), spec_version=2),
    "largest u64": dict(minimal(), spec_version=U64_MAX),
    "version requirement not parsed here": {"spec_version": 1,
                                            "runner": {"runner_name": "x", "required_framework_version": "not a req", "runner_compat_version": 0}},
    "shape symbol": dict(minimal(), input=[{"name": "a", "dtype": "int8", "shape": "some_symbol"}]),
    "empty-string symbol": dict(minimal(), input=[{"name": "a", "dtype": "int8", "shape": ""}]),
    "scalar": dict(minimal(), input=[{"name": "a", "dtype": "int8", "shape": []}]),
    "mixed dims": dict(minimal(), input=[{"name": "a", "dtype": "int8", "shape": [0, "*", "s", U64_MAX]}]),
    "empty tables": dict(minimal(), self_test=[{"inputs": {}}], example=[{"inputs": {}, "sample_out": {}}]),
    "empty reference names (resolution is code's)": dict(minimal(), self_test=[{"inputs": {"x": "@tensor_data/"}}]),
    "bare arch": dict(minimal(), required_platforms=["x86_64", "clever1.0", "armv8m.base-none-eabi", "unknown-unknown-unknown"]),
    "no platforms": dict(minimal(), required_platforms=[]),
    "unknown keys everywhere": dict(
        minimal(),
        future={"anything": [1, datetime.date(2020, 1, 1)]},
        input=[{"name": "a", "dtype": "int8", "shape": [], "extra": {"x": 1}}],
        self_test=[{"inputs": {}, "extra": 1}],
        runner={"runner_name": "x", "required_framework_version": "*", "runner_compat_version": 1, "more": [[]]},
    ),
}


@pytest.mark.parametrize("name", sorted(VALID_CARTON_VARIANTS))
@pytest.mark.spec("FMT-META-6", "FMT-META-9", "FMT-META-10", "FMT-META-14", "FMT-TOML-4")
def test_valid_carton_documents(name: str) -> None:
    assert schema_check.check(VALID_CARTON_VARIANTS[name], "carton-toml", "carton.toml") == []


# ---------------------------------------------------------------------------------------------
# carton.toml: targeted invalid documents (each breaks one rule)


def mutate(base: dict[str, Any], path: tuple[Any, ...], value: Any = ..., delete: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    node = doc
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


DT = datetime.datetime(1979, 5, 27, 7, 32, tzinfo=datetime.timezone.utc)
INVALID_CARTON = [
    # (id, document, key, message fragment)
    ("spec_version missing", mutate(minimal(), ("spec_version",), delete=True), "spec_version", "is required"),
    ("spec_version string", mutate(minimal(), ("spec_version",), "1"), "spec_version", "must be an integer, not a string"),
    ("spec_version float", mutate(minimal(), ("spec_version",), 1.0), "spec_version", "must be an integer, not a float"),
    ("spec_version bool", mutate(minimal(), ("spec_version",), True), "spec_version", "must be an integer, not a boolean"),
    ("spec_version negative", mutate(minimal(), ("spec_version",), -1), "spec_version", "must be an integer from 0 to 18446744073709551615"),
    ("spec_version > u64", mutate(minimal(), ("spec_version",), 2**64), "spec_version", "must be an integer from 0 to"),
    ("model_name integer", mutate(minimal(), ("model_name",), 5), "model_name", "must be a string, not an integer"),
    ("short_description datetime", mutate(minimal(), ("short_description",), DT), "short_description", "must be a string, not a date-time"),
    ("license date", mutate(minimal(), ("license",), datetime.date(2020, 1, 2)), "license", "must be a string, not a date"),
    ("homepage time", mutate(minimal(), ("homepage",), datetime.time(1, 2)), "homepage", "must be a string, not a time"),
    ("repository array", mutate(minimal(), ("repository",), ["x"]), "repository", "must be a string, not an array"),
    ("model_description table", mutate(minimal(), ("model_description",), {}), "model_description", "must be a string, not a table"),
    ("required_platforms string", mutate(minimal(), ("required_platforms",), "x86_64-apple-darwin"), "required_platforms",
     "must be an array, not a string"),
    ("unknown architecture", mutate(minimal(), ("required_platforms",), ["x86_64-apple-darwin", "aninvalidplatform"]), "required_platforms[1]",
     "known architecture"),
    ("empty triple", mutate(minimal(), ("required_platforms",), [""]), "required_platforms[0]", "known architecture"),
    ("arch case", mutate(minimal(), ("required_platforms",), ["X86_64-apple-darwin"]), "required_platforms[0]", "known architecture"),
    ("triple integer", mutate(minimal(), ("required_platforms",), [64]), "required_platforms[0]", "must be a string, not an integer"),
    ("runner missing", mutate(minimal(), ("runner",), delete=True), "runner", "is required"),
    ("runner string", mutate(minimal(), ("runner",), "torchscript"), "runner", "must be a table, not a string"),
    ("runner_name missing", mutate(minimal(), ("runner", "runner_name"), delete=True), "runner.runner_name", "is required"),
    ("runner_name integer", mutate(minimal(), ("runner", "runner_name"), 1), "runner.runner_name", "must be a string, not an integer"),
    ("framework version missing", mutate(minimal(), ("runner", "required_framework_version"), delete=True), "runner.required_framework_version",
     "is required"),
    ("framework version float", mutate(minimal(), ("runner", "required_framework_version"), 2.0), "runner.required_framework_version",
     "must be a string, not a float"),
    ("compat version string", mutate(minimal(), ("runner", "runner_compat_version"), "1"), "runner.runner_compat_version",
     "must be an integer, not a string"),
    ("compat version negative", mutate(minimal(), ("runner", "runner_compat_version"), -1), "runner.runner_compat_version", "from 0 to"),
    ("opts array", mutate(minimal(), ("runner", "opts"), [1]), "runner.opts", "must be a table, not an array"),
    ("opt array", mutate(minimal(), ("runner", "opts"), {"x": [1]}), "runner.opts.x", "a float, a string or a boolean, not an array"),
    ("opt table", mutate(minimal(), ("runner", "opts"), {"x": {}}), "runner.opts.x", "not a table"),
    ("opt datetime", mutate(minimal(), ("runner", "opts"), {"x": DT}), "runner.opts.x", "not a date-time"),
    ("opt beyond i64", mutate(minimal(), ("runner", "opts"), {"x": 2**63}), "runner.opts.x", "must be a 64-bit signed integer"),
    ("opt below i64", mutate(minimal(), ("runner", "opts"), {"x": -(2**63) - 1}), "runner.opts.x", "must be a 64-bit signed integer"),
    ("opt key quoted", mutate(minimal(), ("runner", "opts"), {"a.b": []}), 'runner.opts."a.b"', "not an array"),
    ("input table", mutate(minimal(), ("input",), {"name": "x"}), "input", "must be an array, not a table"),
    ("input item string", mutate(minimal(), ("input",), ["x"]), "input[0]", "must be a table, not a string"),
    ("input name missing", mutate(minimal(), ("input",), [{"dtype": "int8", "shape": []}]), "input[0].name", "is required"),
    ("input dtype missing", mutate(minimal(), ("input",), [{"name": "a", "shape": []}]), "input[0].dtype", "is required"),
    ("input shape missing", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8"}]), "input[0].shape", "is required"),
    ("dtype case", mutate(minimal(), ("input",), [{"name": "a", "dtype": "Float32", "shape": []}]), "input[0].dtype",
     "must be one of: float32, float64, string, int8"),
    ("dtype float16", mutate(minimal(), ("output",), [{"name": "a", "dtype": "float16", "shape": []}]), "output[0].dtype", "must be one of:"),
    ("dtype bool", mutate(minimal(), ("output",), [{"name": "a", "dtype": "bool", "shape": []}]), "output[0].dtype", "must be one of:"),
    ("dtype nested", mutate(minimal(), ("output",), [{"name": "a", "dtype": "nested", "shape": []}]), "output[0].dtype", "must be one of:"),
    ("dtype integer", mutate(minimal(), ("output",), [{"name": "a", "dtype": 32, "shape": []}]), "output[0].dtype",
     "must be a string, not an integer"),
    ("shape integer", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": 3}]), "input[0].shape",
     "or an array of dimensions, not an integer"),
    ("shape table", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": {}}]), "input[0].shape", "not a table"),
    ("dim negative", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": [1, -1]}]), "input[0].shape[1]",
     "must be a non-negative integer or a string"),
    ("dim float", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": [1.5]}]), "input[0].shape[0]",
     "must be a non-negative integer or a string, not a float"),
    ("dim bool", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": [True]}]), "input[0].shape[0]", "not a boolean"),
    ("dim nested array", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": [[1]]}]), "input[0].shape[0]", "not an array"),
    ("dim > u64", mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": [2**64]}]), "input[0].shape[0]",
     "must be a non-negative integer"),
    ("description integer", mutate(minimal(), ("output",), [{"name": "a", "dtype": "int8", "shape": [], "description": 1}]), "output[0].description",
     "must be a string"),
    ("internal_name array", mutate(minimal(), ("output",), [{"name": "a", "dtype": "int8", "shape": [], "internal_name": []}]),
     "output[0].internal_name", "must be a string"),
    ("self_test table", mutate(minimal(), ("self_test",), {"inputs": {}}), "self_test", "must be an array, not a table"),
    ("self_test inputs missing", mutate(minimal(), ("self_test",), [{"name": "x"}]), "self_test[0].inputs", "is required"),
    ("self_test inputs string", mutate(minimal(), ("self_test",), [{"inputs": "@tensor_data/x"}]), "self_test[0].inputs",
     "must be a table, not a string"),
    ("self_test misc reference", mutate(minimal(), ("self_test",), [{"inputs": {"x": "@misc/y"}}]), "self_test[0].inputs.x",
     "must start with @tensor_data/"),
    ("self_test no prefix", mutate(minimal(), ("self_test",), [{"inputs": {"x": "tensor_data/y"}}]), "self_test[0].inputs.x",
     "must start with @tensor_data/"),
    ("self_test prefix case", mutate(minimal(), ("self_test",), [{"inputs": {"x": "@Tensor_data/y"}}]), "self_test[0].inputs.x",
     "must start with @tensor_data/"),
    ("self_test reference integer", mutate(minimal(), ("self_test",), [{"inputs": {"x": 1}}]), "self_test[0].inputs.x",
     "must be a string, not an integer"),
    (
        "expected_out misc",
        mutate(minimal(), ("self_test",), [{"inputs": {}}, {"inputs": {}, "expected_out": {"y": "@misc/y"}}]),
        "self_test[1].expected_out.y",
        "must start with @tensor_data/",
    ),
    ("expected_out array", mutate(minimal(), ("self_test",), [{"inputs": {}, "expected_out": []}]), "self_test[0].expected_out",
     "must be a table, not an array"),
    ("self_test name integer", mutate(minimal(), ("self_test",), [{"inputs": {}, "name": 1}]), "self_test[0].name", "must be a string"),
    ("quoted tensor key", mutate(minimal(), ("self_test",), [{"inputs": {"my input": "x"}}]), 'self_test[0].inputs."my input"',
     "must start with @tensor_data/"),
    ("example sample_out missing", mutate(minimal(), ("example",), [{"inputs": {}}]), "example[0].sample_out", "is required"),
    ("example inputs missing", mutate(minimal(), ("example",), [{"sample_out": {}}]), "example[0].inputs", "is required"),
    ("example bad prefix", mutate(minimal(), ("example",), [{"inputs": {"x": "@other/x"}, "sample_out": {}}]), "example[0].inputs.x",
     "must start with @tensor_data/ or @misc/"),
    ("example value integer", mutate(minimal(), ("example",), [{"inputs": {}, "sample_out": {"y": 3}}]), "example[0].sample_out.y",
     "must be a string, not an integer"),
    ("example description date", mutate(minimal(), ("example",), [{"inputs": {}, "sample_out": {}, "description": datetime.date(2000, 1, 1)}]),
     "example[0].description", "not a date"),
]


# The requirement each case checks, from the key path its error must name.
_CARTON_KEY_SPEC = [
    (r"spec_version$", "FMT-META-2"),
    (r"(model_name|short_description|model_description|license|repository|homepage)$", "FMT-META-4"),
    (r"required_platforms", "FMT-META-6"),
    (r"runner$", "FMT-RUNNER-1"),
    (r"runner\.(runner_name|required_framework_version)$", "FMT-RUNNER-2"),
    (r"runner\.runner_compat_version$", "FMT-RUNNER-4"),
    (r"runner\.opts", "FMT-RUNNER-6"),
    (r"(input|output)(\[\d+\])?(\.(name|description|internal_name))?$", "FMT-META-7"),
    (r"(input|output)\[\d+\]\.dtype$", "FMT-META-8"),
    (r"(input|output)\[\d+\]\.shape$", "FMT-META-9"),
    (r"(input|output)\[\d+\]\.shape\[\d+\]$", "FMT-META-10"),
    (r"self_test", "FMT-META-13"),
    (r"example", "FMT-META-14"),
]
# Cases where a TOML float, boolean or date-time meets an integer or string type (FMT-TOML-5).
_TOML_TYPE_CASES = {
    "spec_version float", "spec_version bool", "short_description datetime", "license date", "homepage time",
    "opt datetime", "dim float", "dim bool", "example description date",
}  # fmt: skip


def _carton_case(case: tuple[str, dict[str, Any], str, str]) -> Any:
    ids = [spec for pattern, spec in _CARTON_KEY_SPEC if re.match(pattern, case[2])]
    assert len(ids) == 1, case[0]
    if case[0] in _TOML_TYPE_CASES:
        ids.append("FMT-TOML-5")
    return pytest.param(*case[1:], id=case[0], marks=pytest.mark.spec(*ids))


@pytest.mark.parametrize(("document", "key", "fragment"), [_carton_case(c) for c in INVALID_CARTON])
def test_invalid_carton_documents(document: dict[str, Any], key: str, fragment: str) -> None:
    found = keys_and_messages(document, "carton-toml", "carton.toml")
    assert list(found) == [key], found
    assert fragment in found[key]


def test_document_that_is_not_a_table() -> None:
    for document in ([], "x", 1, None):
        found = keys_and_messages(document, "carton-toml")
        assert list(found) == [None]
        assert found[None].startswith("must be a table, not ")


def test_several_errors_are_reported_once_per_location_in_document_order() -> None:
    doc = minimal()
    doc["spec_version"] = "1"
    doc["input"] = [{"name": "a", "dtype": "x", "shape": [-1, 2, 1.5]}]
    doc["runner"] = {"opts": {"x": []}}
    found = keys_and_messages(doc, "carton-toml")
    assert set(found) == {
        "spec_version",
        "input[0].dtype",
        "input[0].shape[0]",
        "input[0].shape[2]",
        "runner.runner_name",
        "runner.required_framework_version",
        "runner.opts.x",
    }


def test_messages_never_dump_alternatives() -> None:
    doc = mutate(minimal(), ("input",), [{"name": "a", "dtype": "int8", "shape": [{"x": 1}]}])
    for message in keys_and_messages(doc, "carton-toml").values():
        assert "anyOf" not in message and "is not valid under any of the given schemas" not in message


def test_error_str_names_member_and_key() -> None:
    [error] = schema_check.check(mutate(minimal(), ("spec_version",), "1"), "carton-toml", "carton.toml")
    assert str(error) == "E-SCHEMA carton.toml: spec_version: must be an integer, not a string"
    assert error.category.value == "schema"


def test_format_key() -> None:
    assert schema_check.format_key(()) is None
    assert schema_check.format_key(("input", 0, "dtype")) == "input[0].dtype"
    assert schema_check.format_key(("runner", "opts", "a.b")) == 'runner.opts."a.b"'
    assert schema_check.format_key(("self_test", 1, "inputs", "")) == 'self_test[1].inputs.""'
    assert schema_check.format_key(("urls", SHA, 0)) == f"urls.{SHA}[0]"


# ---------------------------------------------------------------------------------------------
# tensor_data/index.toml


VALID_INDEX = {
    "empty table": {},
    "empty list": {"tensor": []},
    "numeric": {"tensor": [{"name": "_tensor_0", "dtype": "float32", "shape": [5], "file": "tensor_0.bin", "inner": []}]},
    "scalar without inner (accepted)": {"tensor": [{"name": "a", "dtype": "int64", "shape": [], "file": "a.bin"}]},
    "nested": {
        "tensor": [
            {"name": "n", "dtype": "nested", "inner": ["a", "b"]},
            {"name": "a", "dtype": "int8", "shape": [1], "file": "a.bin", "inner": []},
            {"name": "b", "dtype": "int8", "shape": [2], "file": "b.bin", "inner": []},
        ]
    },
    "unknown dtype (E-TENSOR-DTYPE is code's)": {"tensor": [{"name": "a", "dtype": "float16", "shape": [1], "file": "a.bin"}]},
    "negative dim (E-TENSOR-SHAPE is code's)": {"tensor": [{"name": "a", "dtype": "int8", "shape": [-1], "file": "a.bin"}]},
    "missing shape and file (code's)": {"tensor": [{"name": "a", "dtype": "int8"}]},
    "unknown keys": {"future": 1, "tensor": [{"name": "a", "dtype": "int8", "shape": [1], "file": "a.bin", "x": DT}]},
}


@pytest.mark.parametrize("name", sorted(VALID_INDEX))
@pytest.mark.spec("FMT-TENSOR-1", "FMT-TENSOR-3")
def test_valid_index_documents(name: str) -> None:
    assert schema_check.check(VALID_INDEX[name], "tensor-index", "tensor_data/index.toml") == []


def entry(**fields: Any) -> dict[str, Any]:
    base = {"name": "a", "dtype": "int8", "shape": [1], "file": "a.bin", "inner": []}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


INVALID_INDEX = [
    ("tensor table", {"tensor": {"name": "a"}}, "tensor", "must be an array, not a table"),
    ("entry string", {"tensor": ["a"]}, "tensor[0]", "must be a table, not a string"),
    ("name missing", {"tensor": [entry(name=...)]}, "tensor[0].name", "is required"),
    ("dtype missing", {"tensor": [entry(), entry(name="b", dtype=...)]}, "tensor[1].dtype", "is required"),
    ("name integer", {"tensor": [entry(name=1)]}, "tensor[0].name", "must be a string, not an integer"),
    ("dtype array", {"tensor": [entry(dtype=["int8"])]}, "tensor[0].dtype", "must be a string, not an array"),
    ("shape string", {"tensor": [entry(shape="*")]}, "tensor[0].shape", "must be an array, not a string"),
    ("dim float", {"tensor": [entry(shape=[2, 1.0])]}, "tensor[0].shape[1]", "must be an integer, not a float"),
    ("dim string", {"tensor": [entry(shape=["n"])]}, "tensor[0].shape[0]", "must be an integer, not a string"),
    ("file integer", {"tensor": [entry(file=0)]}, "tensor[0].file", "must be a string, not an integer"),
    ("inner string", {"tensor": [entry(inner="b")]}, "tensor[0].inner", "must be an array, not a string"),
    ("inner item integer", {"tensor": [entry(dtype="nested", inner=[1])]}, "tensor[0].inner[0]", "must be a string, not an integer"),
]


@pytest.mark.parametrize(("document", "key", "fragment"), [c[1:] for c in INVALID_INDEX], ids=[c[0] for c in INVALID_INDEX])
@pytest.mark.spec("FMT-TENSOR-3")
def test_invalid_index_documents(document: dict[str, Any], key: str, fragment: str) -> None:
    found = keys_and_messages(document, "tensor-index", "tensor_data/index.toml")
    assert list(found) == [key], found
    assert fragment in found[key]


# ---------------------------------------------------------------------------------------------
# string tensor files


@pytest.mark.parametrize("document", [{"data": []}, {"data": ["a", "", "💖"]}, {"data": ["x"], "future": 1}])
@pytest.mark.spec("FMT-TENSOR-11")
def test_valid_string_tensor_documents(document: dict[str, Any]) -> None:
    assert schema_check.check(document, "string-tensor", "tensor_data/tensor_0.toml") == []


@pytest.mark.parametrize(
    ("document", "key", "fragment"),
    [
        ({}, "data", "is required"),
        ({"data": "abc"}, "data", "must be an array, not a string"),
        ({"data": ["a", 1]}, "data[1]", "must be a string, not an integer"),
        ({"data": [DT]}, "data[0]", "must be a string, not a date-time"),
        ({"data": [["a"]]}, "data[0]", "must be a string, not an array"),
    ],
)
@pytest.mark.spec("FMT-TENSOR-11")
def test_invalid_string_tensor_documents(document: dict[str, Any], key: str, fragment: str) -> None:
    found = keys_and_messages(document, "string-tensor", "tensor_data/tensor_0.toml")
    assert list(found) == [key], found
    assert fragment in found[key]


# ---------------------------------------------------------------------------------------------
# LINKS


@pytest.mark.parametrize(
    "document",
    [
        {"version": 1, "urls": {}},
        {"version": 1, "urls": {SHA: ["https://example.com/model.pt", "http://mirror.example/model.pt"]}},
        {"urls": {SHA: ["https://example.com/x"]}},  # no version: W-LINKS-VERSION is code's
        {"version": 7, "urls": {SHA: ["ftp://example.com/x"]}},  # W-LINKS-VERSION and E-LINKS-URL are code's
        {"version": 1, "urls": {}, "future": {"x": 1}},
    ],
)
@pytest.mark.spec("FMT-LINKS-2")
def test_valid_links_documents(document: dict[str, Any]) -> None:
    assert schema_check.check(document, "links", "LINKS") == []


INVALID_LINKS = [
    ("urls missing", {"version": 1}, "urls", "is required"),
    ("urls array", {"version": 1, "urls": []}, "urls", "must be a table, not an array"),
    ("version string", {"version": "1", "urls": {}}, "version", "must be an integer, not a string"),
    ("version negative", {"version": -1, "urls": {}}, "version", "from 0 to"),
    ("version float", {"version": 1.0, "urls": {}}, "version", "must be an integer, not a float"),
    ("uppercase hash", {"version": 1, "urls": {SHA.upper(): ["https://x"]}}, f"urls.{SHA.upper()}", "key must be a sha256"),
    ("short hash", {"version": 1, "urls": {SHA[:-1]: ["https://x"]}}, f"urls.{SHA[:-1]}", "key must be a sha256"),
    ("hash with prefix", {"version": 1, "urls": {"sha256:" + SHA: ["https://x"]}}, f'urls."sha256:{SHA}"', "key must be a sha256"),
    ("empty url list", {"version": 1, "urls": {SHA: []}}, f"urls.{SHA}", "must not be empty"),
    ("url list string", {"version": 1, "urls": {SHA: "https://x"}}, f"urls.{SHA}", "must be an array, not a string"),
    ("url integer", {"version": 1, "urls": {SHA: ["https://x", 3]}}, f"urls.{SHA}[1]", "must be a string, not an integer"),
]


_LINKS_KEY_CASES = {"uppercase hash", "short hash", "hash with prefix"}  # FMT-LINKS-3, the others FMT-LINKS-2


@pytest.mark.parametrize(
    ("document", "key", "fragment"),
    [
        pytest.param(*c[1:], id=c[0], marks=pytest.mark.spec("FMT-LINKS-3" if c[0] in _LINKS_KEY_CASES else "FMT-LINKS-2"))
        for c in INVALID_LINKS
    ],
)
def test_invalid_links_documents(document: dict[str, Any], key: str, fragment: str) -> None:
    found = keys_and_messages(document, "links", "LINKS")
    assert list(found) == [key], found
    assert fragment in found[key]


# ---------------------------------------------------------------------------------------------
# Property: no document makes check() raise


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["*", "@tensor_data/x", "@misc/y", "@", "float32", "nested", "x86_64-apple-darwin", SHA, "https://x"])
    | st.datetimes()
    | st.dates()
    | st.times()
)
VOCABULARY = sorted(
    {
        key
        for name in SCHEMA_NAMES
        for _, node in _walk_schema(schema_check.schema_json(name))
        for key in (node.get("properties") or {})
        if isinstance(node.get("properties"), dict)
    }
)
KEYS = st.sampled_from(VOCABULARY) | st.text(max_size=8) | st.just(SHA)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=st.sampled_from(SCHEMA_NAMES), document=st.dictionaries(KEYS, JSON_LIKE, max_size=8) | JSON_LIKE)
@pytest.mark.spec("FMT-READ-5")
def test_check_never_raises(schema: str, document: Any) -> None:
    errors = schema_check.check(document, schema, "m")
    again = schema_check.check(document, schema, "m")
    assert [str(e) for e in errors] == [str(e) for e in again]
    keys = [e.key for e in errors]
    assert len(keys) == len(set(keys))
    for error in errors:
        assert isinstance(error, CartonFormatError)
        assert error.code == EXPECTED_CODE[schema]
        assert error.key is None or (isinstance(error.key, str) and error.key)
        assert isinstance(error.message, str) and error.message


@settings(max_examples=200, deadline=None)
@given(
    section=st.sampled_from(["runner", "input", "self_test", "example", "extra"]),
    key=KEYS,
    value=JSON_LIKE,
)
def test_check_never_raises_on_near_valid_documents(section: str, key: str, value: Any) -> None:
    doc = full()
    if section == "runner":
        doc["runner"][key] = value
    elif section == "input":
        doc["input"][1][key] = value
    elif section == "self_test":
        doc["self_test"][0]["inputs"][key] = value
    elif section == "example":
        doc["example"][0][key] = value
    else:
        doc[key] = value
    for error in schema_check.check(doc, "carton-toml", "carton.toml"):
        assert error.code == "E-SCHEMA" and error.message


@settings(max_examples=100, deadline=None)
@given(key=st.text(min_size=1, max_size=10).filter(lambda k: k not in VOCABULARY), value=JSON_LIKE)
@pytest.mark.spec("FMT-TOML-4")
def test_unknown_top_level_keys_are_allowed(key: str, value: Any) -> None:
    for schema, doc in (("carton-toml", minimal()), ("tensor-index", {"tensor": []}), ("string-tensor", {"data": []}),
                        ("links", {"version": 1, "urls": {}})):
        doc[key] = value
        assert schema_check.check(doc, schema, "m") == []


# ---------------------------------------------------------------------------------------------
# The specification's requirement ids and codes


AREAS = (
    "ZIP", "PATH", "LIMIT", "MANIFEST", "TOML", "META", "TENSOR", "MISC", "LINKS", "VREQ", "RUNNER", "WRITE", "READ", "SIG",
    "EXPORT", "AOTI", "PYTHON", "ENV",
)
REQUIREMENT = re.compile(
    r"^- \*\*FMT-(?P<area>[A-Z]+)-(?P<n>[1-9][0-9]*)\*\* \((?P<who>W|R|W,R)\) (?P<text>\S.*)$"
)
CODE_IN_BACKTICKS = re.compile(r"`([EW]-[A-Z0-9]+(?:-[A-Z0-9]+)*)`")


def spec_text() -> str:
    if not SPEC.exists():
        pytest.skip("spec/format-v1.md is not written yet")
    return SPEC.read_text("utf-8")


def spec_lines_outside_code_blocks() -> list[str]:
    lines, fenced = [], False
    for line in spec_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def requirements() -> list[re.Match[str]]:
    found = []
    for line in spec_lines_outside_code_blocks():
        if "**FMT-" in line and line.lstrip().startswith("- "):
            match = REQUIREMENT.match(line)
            assert match, f"malformed requirement line: {line[:120]}"
            found.append(match)
    return found


def test_requirement_ids_are_well_formed_unique_and_gapless() -> None:
    reqs = requirements()
    assert 80 <= len(reqs) <= 200, len(reqs)
    ids = [f"FMT-{m['area']}-{m['n']}" for m in reqs]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    by_area: dict[str, list[int]] = {}
    for m in reqs:
        assert m["area"] in AREAS, m["area"]
        by_area.setdefault(m["area"], []).append(int(m["n"]))
    assert set(by_area) == set(AREAS)
    for area, numbers in by_area.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"{area}: {numbers}"


def test_requirement_violation_clauses() -> None:
    for m in requirements():
        text = m["text"]
        if "Violation:" in text:
            assert re.search(r"Violation: `[EW]-[A-Z0-9]+(?:-[A-Z0-9]+)*`\.$", text), text[:120]
            assert text.count("Violation:") == 1, text[:120]


def test_every_cited_code_exists() -> None:
    for code in CODE_IN_BACKTICKS.findall(spec_text()):
        assert code in CODES or code in WARNING_CODES, code


def test_error_table_lists_every_code() -> None:
    text = spec_text()
    for code in list(CODES) + list(WARNING_CODES):
        assert re.search(rf"^\| `{re.escape(code)}` \|", text, re.MULTILINE), f"{code} missing from the error table"


def test_no_other_fmt_ids_in_the_text() -> None:
    """Ids cited in prose must exist (ids are only defined by requirement bullets)."""
    defined = {f"FMT-{m['area']}-{m['n']}" for m in requirements()}
    for cited in re.findall(r"FMT-[A-Z]+-[0-9]+", spec_text()):
        assert cited in defined, cited


def test_spec_toml_examples_conform() -> None:
    """The carton.toml, index.toml and LINKS examples of the spec pass their schemas."""
    blocks = re.findall(r"```toml\n(.*?)```", spec_text(), re.S)
    kinds = []
    for block in blocks:
        document = tomli.loads(block)
        kind = "carton-toml" if "spec_version" in document else "tensor-index" if "tensor" in document else "links"
        kinds.append(kind)
        assert schema_check.check(document, kind, "example") == [], block[:80]
    assert sorted(kinds) == ["carton-toml", "links", "tensor-index"]


def test_appendix_b_lists_the_schema_architectures() -> None:
    text = spec_text()
    appendix = text[text.index("## Appendix B") :]
    listed = set(re.findall(r"`([a-z0-9_.]+)`", appendix))
    pattern = schema_check.schema_json("carton-toml")["$defs"]["targetTriple"]["pattern"]
    alternation = re.match(r"\^\((.*)\)\(-\.\*\)\?\$$", pattern).group(1)
    in_schema = {name.replace("\\.", ".") for name in alternation.split("|")}
    assert listed == in_schema
