"""API misuse: every public format-layer call answers a wrong argument with a coded
CartonFormatError naming the argument, never AttributeError, TypeError or a bare ValueError.

Before: ``write(path, info)`` with ``self_tests="x"`` raised AttributeError, ``misc_files=[1]``
AttributeError, ``compression=[]`` and ``linked_files={sha: [1]}`` TypeError, a target holding a
NUL ValueError ("embedded null byte"), a target under a regular file "E-IO ... File exists";
``read``/``validate``/``open_source`` with ``limits=None`` reported E-ZIP-MALFORMED "internal
error", a text-mode file E-ZIP-MALFORMED; ``shrink`` with a NUL target or a non-str key raised.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import carton_format as cf

from ..helpers.cartoncraft import sample_info, write_sample

SHA = "a" * 64


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("api")
    good = write_sample(tmp)
    regular = tmp / "regular"
    regular.write_text("x")
    return {"tmp": tmp, "good": good, "model": Path(f"{good}.model"), "regular": regular}


def _info(**overrides: Any) -> cf.CartonInfo:
    return sample_info(**overrides)


WRITE_CASES: list[tuple[str, Callable[[dict[str, Path]], dict[str, Any]], str, str]] = [
    # (id, keyword arguments of write() given the setting, code, words the message must hold)
    ("info None", lambda s: {"info": None}, "E-ARG-INVALID", "info"),
    ("self_tests str", lambda s: {"info": _info(self_tests="x")}, "E-ARG-INVALID", "self_tests"),
    ("self_tests item", lambda s: {"info": _info(self_tests=[1])}, "E-ARG-INVALID", "self_tests[0]"),
    ("examples str", lambda s: {"info": _info(examples="x")}, "E-ARG-INVALID", "examples"),
    ("examples item", lambda s: {"info": _info(examples=[None])}, "E-ARG-INVALID", "examples[0]"),
    ("inputs str", lambda s: {"info": _info(inputs="x")}, "E-ARG-INVALID", "inputs"),
    ("inputs item", lambda s: {"info": _info(inputs=[1])}, "E-ARG-INVALID", "input[0]"),
    ("misc_files list", lambda s: {"info": _info(misc_files=[1])}, "E-ARG-INVALID", "misc_files"),
    ("misc_files str", lambda s: {"info": _info(misc_files="x")}, "E-ARG-INVALID", "misc_files"),
    ("extra", lambda s: {"info": _info(extra=[1])}, "E-ARG-INVALID", "extra"),
    ("self test inputs", lambda s: {"info": _info(self_tests=[cf.SelfTest(inputs=None)])}, "E-ARG-INVALID", "self_tests[0].inputs"),
    ("self test value", lambda s: {"info": _info(self_tests=[cf.SelfTest(inputs={"a": "x"})])}, "E-ARG-INVALID", "self_tests[0].inputs.a"),
    ("object array", lambda s: {"info": _info(self_tests=[cf.SelfTest(inputs={"a": np.array([object()])})])}, "E-ARG-INVALID", "inputs.a"),
    ("runner None", lambda s: {"info": _info(runner=None)}, "E-ARG-INVALID", "runner"),
    ("target None", lambda s: {"target": None}, "E-ARG-INVALID", "target"),
    ("target int", lambda s: {"target": 1}, "E-ARG-INVALID", "target"),
    ("target bytes", lambda s: {"target": b"x.carton"}, "E-ARG-INVALID", "target"),
    ("target NUL", lambda s: {"target": str(s["tmp"] / "a\0b.carton")}, "E-ARG-INVALID", "NUL"),
    ("target under a file", lambda s: {"target": s["regular"] / "x.carton"}, "E-IO", "is not a directory"),
    ("target deep under a file", lambda s: {"target": s["regular"] / "d" / "x.carton"}, "E-IO", "is not a directory"),
    ("model_dir int", lambda s: {"model_dir": 1}, "E-ARG-INVALID", "model_dir"),
    ("model_dir NUL", lambda s: {"model_dir": str(s["tmp"] / "m\0")}, "E-ARG-INVALID", "model_dir"),
    ("model_dir a file", lambda s: {"model_dir": s["regular"]}, "E-ARG-INVALID", "model_dir"),
    ("compression list", lambda s: {"compression": []}, "E-ARG-INVALID", "compression"),
    ("compression None", lambda s: {"compression": None}, "E-ARG-INVALID", "compression"),
    ("linked_files str", lambda s: {"linked_files": "x"}, "E-ARG-INVALID", "linked_files"),
    ("linked_files list", lambda s: {"linked_files": [1]}, "E-ARG-INVALID", "linked_files"),
    ("linked_files key", lambda s: {"linked_files": {1: ["https://h/x"]}}, "E-ARG-INVALID", "linked_files"),
    ("linked_files urls", lambda s: {"linked_files": {SHA: [1]}}, "E-ARG-INVALID", "linked_files"),
    ("linked_files url str", lambda s: {"linked_files": {SHA: "https://h/x"}}, "E-ARG-INVALID", "linked_files"),
    ("overwrite str", lambda s: {"overwrite": "yes"}, "E-ARG-INVALID", "overwrite"),
    ("progress str", lambda s: {"progress": "yes"}, "E-ARG-INVALID", "progress"),
]


@pytest.mark.parametrize(("case", "arguments", "code", "words"), WRITE_CASES, ids=[c[0] for c in WRITE_CASES])
def test_write_refuses_bad_arguments_with_a_code(
    setting: dict[str, Path], case: str, arguments: Callable[[dict[str, Path]], dict[str, Any]], code: str, words: str
) -> None:
    kwargs: dict[str, Any] = {"target": setting["tmp"] / f"{case}.carton", "info": _info(), "model_dir": setting["model"]}
    kwargs.update(arguments(setting))
    with pytest.raises(cf.CartonFormatError) as err:
        cf.write(kwargs.pop("target"), kwargs.pop("info"), **kwargs)
    assert err.value.code == code, err.value
    assert words in str(err.value)
    assert not [p for p in setting["tmp"].iterdir() if p.name.endswith(".tmp")]


def _reads(setting: dict[str, Path]) -> list[tuple[str, Callable[[], object], str, str]]:
    good, tmp = setting["good"], setting["tmp"]
    return [
        ("read None", lambda: cf.read(None), "E-ARG-INVALID", "expected a path"),
        ("read bytes", lambda: cf.read(good.read_bytes()), "E-ARG-INVALID", "bytes"),
        ("read NUL", lambda: cf.read(str(tmp / "a\0b")), "E-ARG-INVALID", "NUL"),
        ("read under a file", lambda: cf.read(setting["regular"] / "x"), "E-IO", "no such file"),
        ("read limits None", lambda: cf.read(good, limits=None), "E-ARG-INVALID", "limits"),
        ("read limits str", lambda: cf.read(good, limits="x"), "E-ARG-INVALID", "limits"),
        ("read negative limit", lambda: cf.read(good, limits=cf.Limits(max_findings=-1)), "E-ARG-INVALID", "limits.max_findings"),
        ("read text file", lambda: cf.read(io.StringIO("PK")), "E-ARG-INVALID", "binary mode"),
        ("read fetch_linked", lambda: cf.read(good, fetch_linked="x"), "E-ARG-INVALID", "fetch_linked"),
        ("open_source limits", lambda: cf.open_source(good, None), "E-ARG-INVALID", "limits"),
        ("open_source text", lambda: cf.open_source(io.StringIO("PK")), "E-ARG-INVALID", "binary mode"),
        ("shrink NUL target", lambda: cf.shrink(good, str(tmp / "s\0.carton"), {}), "E-ARG-INVALID", "NUL"),
        ("shrink under a file", lambda: cf.shrink(good, setting["regular"] / "s.carton", {}), "E-IO", "is not a directory"),
        ("shrink urls key", lambda: cf.shrink(good, tmp / "s.carton", {1: ["https://h/x"]}), "E-ARG-INVALID", "urls"),
        ("shrink urls None", lambda: cf.shrink(good, tmp / "s.carton", None), "E-ARG-INVALID", "urls"),
    ]


def test_read_open_source_and_shrink_refuse_bad_arguments_with_a_code(setting: dict[str, Path]) -> None:
    for case, call, code, words in _reads(setting):
        with pytest.raises(cf.CartonFormatError) as err:
            result = call()
            getattr(result, "close", lambda: None)()
        assert (err.value.code, words in str(err.value)) == (code, True), (case, err.value)


def test_archive_methods_refuse_bad_arguments_with_a_code(setting: dict[str, Path]) -> None:
    with cf.read(setting["good"]) as archive:
        for call in (lambda: archive.read_bytes("carton.toml", "x"), lambda: archive.open(None), lambda: archive.open(1)):
            with pytest.raises(cf.CartonFormatError) as err:
                call()
            assert err.value.code == "E-ARG-INVALID"


@pytest.mark.parametrize(
    "source",
    [None, 1, b"PK", io.StringIO("PK"), "", "a\0b", object()],
    ids=["None", "int", "bytes", "text file", "empty", "NUL", "object"],
)
def test_validate_never_raises_for_a_bad_source(source: object) -> None:
    report = cf.validate(source)  # type: ignore[arg-type]
    assert not report.ok and report.errors[0].code in ("E-ARG-INVALID", "E-IO")


@pytest.mark.parametrize("limits", [None, "x", cf.Limits(max_findings=-1), cf.Limits(max_toml_bytes=1.5)])  # type: ignore[arg-type]
def test_validate_reports_bad_limits(setting: dict[str, Path], limits: object) -> None:
    report = cf.validate(setting["good"], limits=limits)  # type: ignore[arg-type]
    assert [(f.code, "limits" in f.message) for f in report.errors] == [("E-ARG-INVALID", True)]


def test_good_arguments_still_work(setting: dict[str, Path]) -> None:
    target = setting["tmp"] / "new" / "dir" / "ok.carton"  # missing parents are created
    result = cf.write(os.fspath(target), _info(), model_dir=setting["model"], compression="zstd", linked_files=None, overwrite=False)
    assert cf.validate(result.path).ok
    with open(result.path, "rb") as fh:
        assert cf.validate(fh).ok
    assert cf.validate(result.path, limits=cf.DEFAULT_LIMITS).ok
