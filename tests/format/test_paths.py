"""Member-name safety (carton_format._paths)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carton_format._paths import check_member_path, collision_key, portability_problem
from carton_format.errors import CartonFormatError
from carton_format.limits import Limits

SAFE = [
    "carton.toml",
    "MANIFEST",
    "model/model.pt",
    "model/.carton/carton.lock",
    "misc/a b/c=d.txt",
    "tensor_data/tensor_0.bin",
    "model/täst/日本語.txt",
    "a/...",
    "a/..b",
    "a/.hidden",
    "CON",  # not portable, but safe
    "ab:c",
]

UNSAFE = [
    "",
    "/etc/passwd",
    "//server/share",
    "../evil",
    "a/../../evil",
    "a/..",
    "..",
    ".",
    "./a",
    "a/./b",
    "a//b",
    "a/",  # trailing slash on a file name
    "a\\b",
    "..\\..\\evil",
    "C:/windows",
    "c:evil",
    "a:b",
    "a\x00b",
    "a\nb",
    "a\tb",
    "a\x1fb",
    "a\x7fb",
    "a/\rb",
]


@pytest.mark.parametrize("name", SAFE)
@pytest.mark.spec("FMT-PATH-1", "FMT-PATH-2")
def test_safe_names_pass(name: str) -> None:
    check_member_path(name)


@pytest.mark.parametrize("name", UNSAFE)
@pytest.mark.spec("FMT-PATH-1", "FMT-PATH-2")
def test_unsafe_names_are_rejected(name: str) -> None:
    with pytest.raises(CartonFormatError) as info:
        check_member_path(name)
    assert info.value.code == "E-PATH-UNSAFE"


@pytest.mark.spec("FMT-PATH-1")
def test_directory_names() -> None:
    check_member_path("model/sub/", is_dir=True)
    for bad in ("model/sub", "model//", "/", "model/../", "./"):
        with pytest.raises(CartonFormatError) as info:
            check_member_path(bad, is_dir=True)
        assert info.value.code == "E-PATH-UNSAFE"


def test_lone_surrogate_is_unsafe() -> None:
    with pytest.raises(CartonFormatError) as info:
        check_member_path("a\udcff")
    assert info.value.code == "E-PATH-UNSAFE"


@pytest.mark.spec("FMT-LIMIT-4")
def test_length_limit_counts_utf8_bytes() -> None:
    limits = Limits(max_path_bytes=10)
    check_member_path("é" * 5, limits)  # 10 bytes
    with pytest.raises(CartonFormatError) as info:
        check_member_path("é" * 5 + "x", limits)
    assert info.value.code == "E-LIMIT-PATH-LENGTH"
    assert info.value.member == "é" * 5 + "x"


@pytest.mark.spec("FMT-LIMIT-4")
def test_depth_limit() -> None:
    limits = Limits(max_path_depth=3)
    check_member_path("a/b/c", limits)
    check_member_path("a/b/c/", limits, is_dir=True)
    with pytest.raises(CartonFormatError) as info:
        check_member_path("a/b/c/d", limits)
    assert info.value.code == "E-LIMIT-PATH-LENGTH"


@pytest.mark.spec("FMT-LIMIT-1", "FMT-LIMIT-4")
def test_default_limits() -> None:
    check_member_path("a" * 1024)
    with pytest.raises(CartonFormatError):
        check_member_path("a" * 1025)
    check_member_path("/".join(["a"] * 64))
    with pytest.raises(CartonFormatError):
        check_member_path("/".join(["a"] * 65))


@pytest.mark.parametrize(
    "name",
    ["CON", "con.txt", "model/aux", "Nul.tar.gz", "COM1", "lpt9.x", "COM\u00b9", "a/b.", "a/b ", "a:b", "x?y",
     "a<b", "a>b", 'a"b', "a|b", "a*b", "dir./x", "PRN /x"],
)
@pytest.mark.spec("FMT-PATH-3")
def test_non_portable_names(name: str) -> None:
    assert portability_problem(name)


@pytest.mark.parametrize("name", ["model/model.pt", "CONSOLE", "com0", "COM10", "lpt", "a/.b", "con_", "x/", "auxiliary.txt"])
@pytest.mark.spec("FMT-PATH-3")
def test_portable_names(name: str) -> None:
    assert portability_problem(name) is None


@pytest.mark.spec("FMT-ZIP-17")
def test_collision_key_folds_case_and_normalisation() -> None:
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    assert collision_key(nfc) == collision_key(nfd) == collision_key("CAFÉ")
    assert collision_key("Straße") == collision_key("STRASSE")
    assert collision_key("a.txt") != collision_key("a.txt/")
    assert collision_key("model/A") == collision_key("MODEL/a")


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=40))
@pytest.mark.spec("FMT-PATH-1", "FMT-PATH-2")
def test_check_member_path_only_raises_format_errors(name: str) -> None:
    try:
        check_member_path(name)
    except CartonFormatError as exc:
        assert exc.code in ("E-PATH-UNSAFE", "E-LIMIT-PATH-LENGTH")
    else:
        parts = name.split("/")
        assert name and not name.startswith("/") and "\\" not in name
        assert all(p not in ("", ".", "..") for p in parts)
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    portability_problem(name)
    collision_key(name)
