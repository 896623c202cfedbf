"""One broken rule per case above the zip layer: MANIFEST, TOML, schema, references, tensor
data, LINKS.  Each gives its stable code from both validate() and read(), never a traceback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import carton_format as cf
from carton_format.limits import Limits

from ..helpers.cartoncraft import build, members_of, replace_text, write_sample

SHA_A = "a" * 64


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return members_of(write_sample(tmp_path_factory.mktemp("valid")))


def _check(tmp_path: Path, data: bytes, code: str, *, member: str | None = None, key: str | None = None) -> cf.ValidationReport:
    path = tmp_path / "case.carton"
    path.write_bytes(data)
    report = cf.validate(path)
    codes = [f.code for f in report.errors]
    assert code in codes, report.findings
    if member is not None:
        assert any(f.member == member for f in report.errors if f.code == code), report.findings
    if key is not None:
        assert any(f.key == key for f in report.errors if f.code == code), report.findings
    with pytest.raises(cf.CartonFormatError) as err:  # read() is lazy about tensor files
        with cf.read(path) as archive:
            archive.check_tensors()
    assert err.value.code in codes
    return report


def test_valid_baseline(tmp_path: Path, valid: dict[str, bytes]) -> None:
    path = tmp_path / "ok.carton"
    path.write_bytes(build(valid))
    report = cf.validate(path)
    assert report.ok, report.findings
    assert report.warnings == []


# -- MANIFEST (FMT-MANIFEST) ---------------------------------------------------------------------


@pytest.mark.spec("FMT-MANIFEST-1")
def test_manifest_missing(tmp_path: Path, valid: dict[str, bytes]) -> None:
    _check(tmp_path, build(valid, manifest=None), "E-STRUCTURE-MISSING", member="MANIFEST")


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(b"carton.toml\n", marks=pytest.mark.spec("FMT-MANIFEST-2")),  # no '='
        pytest.param(b"carton.toml=" + b"A" * 64 + b"\n", marks=pytest.mark.spec("FMT-MANIFEST-3")),  # uppercase hex
        pytest.param(b"carton.toml=" + b"a" * 63 + b"\n", marks=pytest.mark.spec("FMT-MANIFEST-3")),  # short hash
        pytest.param(b"carton.toml=" + b"a" * 64 + b"\n\n", marks=pytest.mark.spec("FMT-MANIFEST-2")),  # blank line
        pytest.param(b"carton.toml=" + b"a" * 64 + b"\r\n", marks=pytest.mark.spec("FMT-MANIFEST-2")),  # CR
        pytest.param(b"\xff\xfe=" + b"a" * 64 + b"\n", marks=pytest.mark.spec("FMT-MANIFEST-2")),  # not UTF-8
        pytest.param(b"../x=" + b"a" * 64 + b"\n", marks=pytest.mark.spec("FMT-MANIFEST-4")),  # unsafe path
        pytest.param(b"MANIFEST=" + b"a" * 64 + b"\n", marks=pytest.mark.spec("FMT-MANIFEST-5")),  # lists itself
    ],
)
def test_manifest_syntax(tmp_path: Path, valid: dict[str, bytes], manifest: bytes) -> None:
    report = _check(tmp_path, build(valid, manifest=manifest), "E-MANIFEST-SYNTAX" if b"../" not in manifest else "E-PATH-UNSAFE")
    assert len(report.errors) == 1


def _manifest_of(members: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in members.items() if k not in ("MANIFEST", "LINKS")}


def _fmt(entries: dict[str, str], order=None) -> bytes:
    keys = order or sorted(entries)
    return "".join(f"{k}={entries[k]}\n" for k in keys).encode()


@pytest.mark.spec("FMT-MANIFEST-6")
def test_manifest_duplicate(tmp_path: Path, valid: dict[str, bytes]) -> None:
    entries = _manifest_of(valid)
    data = _fmt(entries) + f"carton.toml={entries['carton.toml']}\n".encode()
    _check(tmp_path, build(valid, manifest=data), "E-MANIFEST-DUPLICATE")


@pytest.mark.spec("FMT-MANIFEST-7", "FMT-READ-6")
def test_manifest_unsorted_is_invalid_but_read_leniently(tmp_path: Path, valid: dict[str, bytes]) -> None:
    entries = _manifest_of(valid)
    path = tmp_path / "u.carton"
    path.write_bytes(build(valid, manifest=_fmt(entries, list(reversed(sorted(entries))))))
    report = cf.validate(path)
    assert [e.code for e in report.errors] == ["E-MANIFEST-UNSORTED"] and not report.warnings
    with cf.read(path) as archive:
        assert [w.code for w in archive.warnings] == ["W-MANIFEST-UNSORTED"]


@pytest.mark.spec("FMT-MANIFEST-2")
def test_manifest_without_final_newline_is_accepted(tmp_path: Path, valid: dict[str, bytes]) -> None:
    path = tmp_path / "nl.carton"
    path.write_bytes(build(valid, manifest=_fmt(_manifest_of(valid)).rstrip(b"\n")))
    assert cf.validate(path).ok


@pytest.mark.spec("FMT-MANIFEST-8")
def test_member_not_listed(tmp_path: Path, valid: dict[str, bytes]) -> None:
    extra = {**valid, "model/extra.bin": b"sneaky"}
    _check(tmp_path, build(extra, manifest=_fmt(_manifest_of(valid))), "E-MANIFEST-UNLISTED", member="model/extra.bin")


@pytest.mark.spec("FMT-MANIFEST-9")
def test_listed_file_missing(tmp_path: Path, valid: dict[str, bytes]) -> None:
    entries = {**_manifest_of(valid), "model/ghost.bin": SHA_A}
    _check(tmp_path, build(valid, manifest=_fmt(entries)), "E-MANIFEST-MISSING-FILE", member="model/ghost.bin")


@pytest.mark.spec("FMT-MANIFEST-10", "FMT-READ-3", "FMT-READ-6")
def test_hash_mismatch_reports_every_member(tmp_path: Path, valid: dict[str, bytes]) -> None:
    entries = _manifest_of(valid)
    entries["model/model.pt"] = SHA_A
    entries["misc/arch.png"] = SHA_A
    report = _check(tmp_path, build(valid, manifest=_fmt(entries)), "E-MANIFEST-MISMATCH")
    assert {f.member for f in report.errors} == {"model/model.pt", "misc/arch.png"}


@pytest.mark.spec("FMT-MANIFEST-10", "FMT-READ-2")
def test_metadata_hash_mismatch_is_caught_even_without_deep_verification(tmp_path: Path, valid: dict[str, bytes]) -> None:
    entries = _manifest_of(valid)
    entries["carton.toml"] = SHA_A
    path = tmp_path / "m.carton"
    path.write_bytes(build(valid, manifest=_fmt(entries)))
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(path, verify_hashes=False)
    assert err.value.code == "E-MANIFEST-MISMATCH" and err.value.member == "carton.toml"


@pytest.mark.spec("FMT-META-1")
def test_carton_toml_missing(tmp_path: Path, valid: dict[str, bytes]) -> None:
    members = {k: v for k, v in valid.items() if k != "carton.toml"}
    _check(tmp_path, build(members), "E-STRUCTURE-MISSING", member="carton.toml")


# -- TOML and schema (FMT-TOML, FMT-META) --------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, code, key",
    [
        pytest.param("spec_version = 1", "spec_version = 2", "E-SPEC-VERSION", "spec_version", marks=pytest.mark.spec("FMT-META-3")),
        pytest.param("spec_version = 1", "spec_version = [", "E-TOML-SYNTAX", None, marks=pytest.mark.spec("FMT-TOML-1")),
        pytest.param("spec_version = 1", "spec_version = 1\nspec_version = 1", "E-TOML-SYNTAX", None, marks=pytest.mark.spec("FMT-TOML-1")),
        pytest.param("spec_version = 1", "spec_version = 'one'", "E-SCHEMA", "spec_version", marks=pytest.mark.spec("FMT-META-2")),
        pytest.param("spec_version = 1\n", "", "E-SCHEMA", "spec_version", marks=pytest.mark.spec("FMT-META-2")),
        pytest.param('runner_name = "torchscript"\n', "", "E-SCHEMA", "runner.runner_name", marks=pytest.mark.spec("FMT-RUNNER-2")),
        pytest.param('required_framework_version = "=2.13"', 'required_framework_version = "=>2.13"', "E-VERSIONREQ-INVALID",
                     "runner.required_framework_version", marks=pytest.mark.spec("FMT-RUNNER-3")),
        pytest.param('required_framework_version = "=2.13"', "required_framework_version = 2024-01-01", "E-SCHEMA",
                     "runner.required_framework_version", marks=pytest.mark.spec("FMT-RUNNER-2", "FMT-TOML-5")),
        pytest.param('dtype = "float32"', 'dtype = "float16"', "E-SCHEMA", "input[0].dtype", marks=pytest.mark.spec("FMT-META-8")),
        pytest.param('"batch",', '-1,', "E-SCHEMA", "input[0].shape[0]", marks=pytest.mark.spec("FMT-META-10")),
        pytest.param("num_threads = 1", "num_threads = [1]", "E-SCHEMA", "runner.opts.num_threads", marks=pytest.mark.spec("FMT-RUNNER-6")),
        pytest.param('x = "@tensor_data/_tensor_0"', 'x = "@misc/arch.png"', "E-SCHEMA", "self_test[0].inputs.x",
                     marks=pytest.mark.spec("FMT-META-13")),
        pytest.param('x = "@tensor_data/_tensor_0"', 'x = "@tensor_data/nope"', "E-REF-DANGLING", "self_test[0].inputs.x",
                     marks=pytest.mark.spec("FMT-META-15")),
        pytest.param('y = "@misc/_example_misc_file_0"', 'y = "@misc/nope.png"', "E-REF-DANGLING", "example[0].sample_out.y",
                     marks=pytest.mark.spec("FMT-META-15")),
    ],
)
def test_carton_toml_errors(tmp_path: Path, valid: dict[str, bytes], old: str, new: str, code: str, key: str | None) -> None:
    members = replace_text(valid, "carton.toml", old, new)
    _check(tmp_path, build(members), code, member="carton.toml", key=key)


@pytest.mark.spec("FMT-TOML-1", "FMT-TOML-2")
def test_carton_toml_not_utf8_and_bom(tmp_path: Path, valid: dict[str, bytes]) -> None:
    _check(tmp_path, build({**valid, "carton.toml": b"\xef\xbb\xbf" + valid["carton.toml"]}), "E-TOML-SYNTAX")
    _check(tmp_path, build({**valid, "carton.toml": valid["carton.toml"] + b"# \xff\n"}), "E-TOML-SYNTAX")


@pytest.mark.spec("FMT-LIMIT-8", "FMT-LIMIT-9")
def test_toml_limits(tmp_path: Path, valid: dict[str, bytes]) -> None:
    deep = valid["carton.toml"] + b"deep = " + b"[" * 200 + b"]" * 200 + b"\n"
    _check(tmp_path, build({**valid, "carton.toml": deep}), "E-LIMIT-TOML-NESTING")
    dotted = valid["carton.toml"] + b"a" + b".a" * 5000 + b" = 1\n"
    _check(tmp_path, build({**valid, "carton.toml": dotted}), "E-LIMIT-TOML-NESTING")
    path = tmp_path / "big.carton"
    path.write_bytes(build(valid))
    report = cf.validate(path, limits=Limits(max_toml_bytes=100))
    assert "E-LIMIT-TOML-SIZE" in [f.code for f in report.errors]


@pytest.mark.spec("FMT-TOML-4")
def test_unknown_keys_are_ignored_with_a_warning(tmp_path: Path, valid: dict[str, bytes]) -> None:
    members = replace_text(valid, "carton.toml", "spec_version = 1", 'spec_version = 1\nfuture_field = "x"')
    path = tmp_path / "f.carton"
    path.write_bytes(build(members))
    report = cf.validate(path)
    assert report.ok and [w.code for w in report.warnings] == ["W-UNKNOWN-KEY"]


@pytest.mark.spec("FMT-RUNNER-5")
def test_runner_compat_version_missing_is_invalid_but_read_leniently(tmp_path: Path, valid: dict[str, bytes]) -> None:
    members = replace_text(valid, "carton.toml", "runner_compat_version = 1\n", "")
    path = tmp_path / "c.carton"
    path.write_bytes(build(members))
    report = cf.validate(path)
    assert [(e.code, e.key) for e in report.errors] == [("E-SCHEMA", "runner.runner_compat_version")]
    with cf.read(path) as archive:
        assert archive.info.runner.runner_compat_version is None
        assert [w.code for w in archive.warnings] == ["W-RUNNER-COMPAT-MISSING"]


# -- tensor data (FMT-TENSOR) -----------------------------------------------------------------------


@pytest.mark.spec("FMT-TENSOR-2")
def test_index_missing_is_invalid_but_read_leniently_when_nothing_refers_to_it(tmp_path: Path, valid: dict[str, bytes]) -> None:
    members = {k: v for k, v in valid.items() if not k.startswith("tensor_data/")}
    text = members["carton.toml"].decode()
    text = text[: text.index("[[self_test]]")] + text[text.index("[runner]") :]
    members["carton.toml"] = text.encode()
    path = tmp_path / "i.carton"
    path.write_bytes(build(members))
    report = cf.validate(path)
    assert [(e.code, e.member) for e in report.errors] == [("E-STRUCTURE-MISSING", "tensor_data/index.toml")]
    with cf.read(path) as archive:
        assert "W-TENSOR-INDEX-MISSING" in [w.code for w in archive.warnings] and archive.info.self_tests is None


@pytest.mark.parametrize(
    "old, new, code",
    [
        pytest.param('dtype = "float32"', 'dtype = "float16"', "E-TENSOR-DTYPE", marks=pytest.mark.spec("FMT-TENSOR-5")),
        pytest.param('name = "_tensor_1"', 'name = "_tensor_0"', "E-TENSOR-DUPLICATE-NAME", marks=pytest.mark.spec("FMT-TENSOR-4")),
        pytest.param('file = "tensor_0.bin"', 'file = "../tensor_0.bin"', "E-PATH-UNSAFE", marks=pytest.mark.spec("FMT-TENSOR-8")),
        pytest.param('file = "tensor_0.bin"', 'file = "tensor_9.bin"', "E-TENSOR-FILE-MISSING", marks=pytest.mark.spec("FMT-TENSOR-9")),
        pytest.param("shape = [\n    2,\n    3,\n]", "shape = [\n    2,\n    4,\n]", "E-TENSOR-SIZE", marks=pytest.mark.spec("FMT-TENSOR-10")),
        pytest.param("shape = [\n    2,\n    3,\n]", "shape = [\n    4294967296,\n    4294967296,\n]", "E-LIMIT-TENSOR",
                     marks=pytest.mark.spec("FMT-LIMIT-10")),
        pytest.param("shape = [\n    2,\n]", "shape = [\n    3,\n]", "E-TENSOR-STRING", marks=pytest.mark.spec("FMT-TENSOR-11")),
    ],
)
def test_index_errors(tmp_path: Path, valid: dict[str, bytes], old: str, new: str, code: str) -> None:
    members = replace_text(valid, "tensor_data/index.toml", old, new)
    _check(tmp_path, build(members), code)


@pytest.mark.spec("FMT-TENSOR-10", "FMT-READ-3")
def test_tensor_file_wrong_size(tmp_path: Path, valid: dict[str, bytes]) -> None:
    members = {**valid, "tensor_data/tensor_0.bin": valid["tensor_data/tensor_0.bin"] + b"\0"}
    report = _check(tmp_path, build(members), "E-TENSOR-SIZE", member="tensor_data/tensor_0.bin")
    assert len(report.errors) == 1


@pytest.mark.spec("FMT-TENSOR-11")
def test_string_tensor_file_malformed(tmp_path: Path, valid: dict[str, bytes]) -> None:
    name = next(k for k in valid if k.endswith(".toml") and k.startswith("tensor_data/tensor_"))
    _check(tmp_path, build({**valid, name: b"data = [1, 2]\n"}), "E-TENSOR-STRING")
    _check(tmp_path, build({**valid, name: b"data = [\n"}), "E-TOML-SYNTAX")


@pytest.mark.parametrize(
    "inner, code",
    [
        pytest.param('["_tensor_0"]', None, marks=pytest.mark.spec("FMT-META-15")),
        pytest.param('["nope"]', "E-TENSOR-NESTED", marks=pytest.mark.spec("FMT-TENSOR-12")),
        pytest.param('["n2"]', "E-TENSOR-NESTED", marks=pytest.mark.spec("FMT-TENSOR-12")),  # nested inside nested
    ],
)
def test_nested_tensors(tmp_path: Path, valid: dict[str, bytes], inner: str, code: str | None) -> None:
    index = valid["tensor_data/index.toml"].decode()
    index += f'\n[[tensor]]\nname = "n1"\ndtype = "nested"\ninner = {inner}\n\n[[tensor]]\nname = "n2"\ndtype = "nested"\ninner = []\n'
    members = {**valid, "tensor_data/index.toml": index.encode()}
    if code is None:
        # _tensor_0 becomes an inner tensor: the self test's reference to it now dangles.
        _check(tmp_path, build(members), "E-REF-DANGLING", key="self_test[0].inputs.x")
    else:
        _check(tmp_path, build(members), code)


# -- LINKS (FMT-LINKS) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "links, code",
    [
        pytest.param(b"version = 1\n[urls]\nabc = ['https://x/y']\n", "E-LINKS-INVALID", marks=pytest.mark.spec("FMT-LINKS-3")),
        pytest.param(b"version = 1\n[urls]\n" + SHA_A.encode() + b" = ['ftp://x/y']\n", "E-LINKS-URL", marks=pytest.mark.spec("FMT-LINKS-5")),
        pytest.param(b"version = 1\n[urls]\n" + SHA_A.encode() + b" = ['https://']\n", "E-LINKS-URL", marks=pytest.mark.spec("FMT-LINKS-5")),
        pytest.param(b"version = 1\n[urls]\n" + SHA_A.encode() + b" = 'https://x/y'\n", "E-LINKS-INVALID", marks=pytest.mark.spec("FMT-LINKS-2")),
        pytest.param(b"[urls\n", "E-TOML-SYNTAX", marks=pytest.mark.spec("FMT-TOML-1")),
    ],
)
def test_links_errors(tmp_path: Path, valid: dict[str, bytes], links: bytes, code: str) -> None:
    _check(tmp_path, build(valid, links=links), code, member="LINKS")


@pytest.mark.spec("FMT-LINKS-4", "FMT-LINKS-6")
def test_links_writer_rules_fail_validation_but_read_leniently(tmp_path: Path, valid: dict[str, bytes]) -> None:
    path = tmp_path / "l.carton"
    path.write_bytes(build(valid, links=b"version = 2\n[urls]\n" + SHA_A.encode() + b" = ['https://x/y']\n"))
    report = cf.validate(path)
    assert [(e.code, e.key) for e in report.errors] == [("E-LINKS-INVALID", "version"), ("E-LINKS-INVALID", f"urls.{SHA_A}")]
    with cf.read(path) as archive:
        assert sorted(w.code for w in archive.warnings) == ["W-LINKS-UNUSED", "W-LINKS-VERSION"]


@pytest.mark.spec("FMT-READ-5")
def test_validate_never_raises_for_missing_file(tmp_path: Path) -> None:
    report = cf.validate(tmp_path / "nope.carton")
    assert not report.ok and report.errors[0].code == "E-IO"
