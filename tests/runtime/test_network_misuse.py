"""Malformed paths and URLs: a coded error naming the argument, from every entry point, never a
raw ``ValueError`` / ``RuntimeError`` from the standard library, and no network I/O."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Callable

import pytest

import carton_runtime as carton
import carton_runtime.sync as carton_sync
from carton_runtime import http_range

BAD = [
    ("http://[::1", "E-RUNTIME-SOURCE", "Invalid IPv6 URL"),
    ("https://[zz::1]/m.carton", "E-RUNTIME-SOURCE", "malformed URL"),
    ("http://[::1]:abc/m.carton", "E-RUNTIME-SOURCE", "malformed URL"),
    ("http://127.0.0.1:99999/m.carton", "E-RUNTIME-SOURCE", "Port out of range"),
    ("http://127.0.0.1:80:80/m.carton", "E-RUNTIME-SOURCE", "malformed URL"),
    ("http://", "E-RUNTIME-SOURCE", "not an absolute http(s) URL"),
    ("http:///no-host.carton", "E-RUNTIME-SOURCE", "not an absolute http(s) URL"),
    ("http://exa mple.test/m.carton", "E-RUNTIME-SOURCE", "malformed host name"),
    ("http://\u3000/m.carton", "E-RUNTIME-SOURCE", "malformed host name"),
    ("http://127.0.0.1/m\n.carton", "E-RUNTIME-SOURCE", "contains the character"),
    ("http://127.0.0.1/m\x00.carton", "E-RUNTIME-ARG", "NUL"),
    ("http://user:pw@127.0.0.1/m.carton", "E-RUNTIME-SOURCE", "user information"),
    ("file://[::1/m.carton", "E-RUNTIME-SOURCE", "Invalid IPv6 URL"),
    ("file:///tmp/m%00.carton", "E-RUNTIME-ARG", "NUL"),
    ("file://elsewhere/m.carton", "E-RUNTIME-SOURCE", "must name a local path"),
    ("gopher://127.0.0.1/m.carton", "E-RUNTIME-SOURCE", "unsupported URL scheme"),
    ("~nosuchuser-carton-test/m.carton", "E-RUNTIME-SOURCE", "cannot expand"),
    ("~nosuchuser-carton-test", "E-RUNTIME-SOURCE", "cannot expand"),
    ("m\x00.carton", "E-RUNTIME-ARG", "NUL"),
    ("\ud800.carton", "E-RUNTIME-SOURCE", r"'\ud800.carton'"),
    (b"\xff\xfe.carton", "E-RUNTIME-SOURCE", "no such file or directory"),
    ("x" * 5000, "E-RUNTIME-SOURCE", ""),
    ("", "E-RUNTIME-ARG", "expected a path or a URL"),
    (None, "E-RUNTIME-ARG", "expected a path or a URL"),
    (42, "E-RUNTIME-ARG", "expected a path or a URL"),
    (["m.carton"], "E-RUNTIME-ARG", "expected a path or a URL"),
]


class BadFsPath(os.PathLike):  # type: ignore[type-arg]
    def __fspath__(self) -> str:
        raise RuntimeError("no path today")


BAD.append((BadFsPath(), "E-RUNTIME-ARG", "os.fspath() failed"))


def _async(fn: Callable[..., Any]) -> Callable[[Any], Any]:
    return lambda arg: asyncio.run(fn(arg))


ENTRY_POINTS = [
    ("load", "path", carton_sync.load),
    ("get_model_info", "url_or_path", carton_sync.get_model_info),
    ("async load", "path", _async(carton.load)),
    ("async get_model_info", "url_or_path", _async(carton.get_model_info)),
]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a malformed argument must be refused before any request")

    monkeypatch.setattr(http_range, "resolve", refuse)


@pytest.mark.parametrize(("entry", "arg", "fn"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
@pytest.mark.parametrize(("value", "code", "text"), BAD, ids=[repr(b[0])[:40] for b in BAD])
def test_a_malformed_argument_is_a_coded_error_naming_it(entry: str, arg: str, fn: Callable[[Any], Any], value: Any, code: str,
                                                         text: str) -> None:
    with pytest.raises(carton.CartonRuntimeError) as err:
        fn(value)
    assert err.value.code == code, err.value.message
    assert err.value.message.startswith(f"{arg}: "), err.value.message
    assert err.value.name == arg
    assert text in err.value.message
    str(err.value).encode("utf-8")  # printable, whatever the argument held


def test_a_valid_but_missing_path_still_names_the_argument(tmp_path: Path) -> None:
    with pytest.raises(carton.CartonRuntimeError) as err:
        carton_sync.load(tmp_path / "missing.carton")
    assert err.value.code == "E-RUNTIME-SOURCE"
    assert err.value.message == f"path: {tmp_path / 'missing.carton'}: no such file or directory"
    with pytest.raises(carton.CartonRuntimeError) as err:
        carton_sync.get_model_info((tmp_path / "missing.carton").as_uri())
    assert err.value.code == "E-RUNTIME-SOURCE" and err.value.message.startswith("url_or_path: ")
