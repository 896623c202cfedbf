"""The TOML pre-scan (carton_format._toml): linear time, memory a small multiple of the document.

Three defects it had: the dotted-key search backtracked from every character of a long bare
key (a 40 KB key took 13 s, a 1 MiB one hours: quadratic); the skeleton was built by one re.sub
whose ~170 bytes per string made a 16 MiB document of tiny strings cost ~1.3 GiB; a Python
callback per string cost more than the parse it protected.  And a string tensor file of a
hundred million values was parsed before its count was compared with its shape.
"""

from __future__ import annotations

import random
import re
import time
import tracemalloc
from typing import Callable

import pytest
import tomli
from hypothesis import given, settings
from hypothesis import strategies as st

from carton_format import _toml
from carton_format.errors import CartonFormatError
from carton_format.limits import Limits

from ..helpers import hostile

BIG = Limits(max_toml_bytes=1 << 30)


def _elapsed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_a_long_bare_key_is_scanned_in_linear_time() -> None:
    data = b"k" * (4 * hostile.MiB) + b" = 1\n"
    assert _elapsed(lambda: _toml._prescan(data, "carton.toml", BIG)) < 5  # was hours (40 KB: 13 s)


def test_many_dotted_keys_just_under_the_limit_are_scanned_in_linear_time() -> None:
    data = (b".".join([b"ab"] * 128) + b" = 1\n") * 20_000  # 7.7 MB, each key 128 parts
    assert _elapsed(lambda: _toml._prescan(data, "carton.toml", BIG)) < 5  # was ~9 s


@pytest.mark.parametrize("prefix", [b"", b"  ", b"[", b"x = {", b'"q".', b"a = 1\n"])
@pytest.mark.parametrize("blank", [b".", b" . ", b"\t.\t"])
def test_dotted_keys_at_the_limit(prefix: bytes, blank: bytes) -> None:
    for parts, refused in ((128, False), (129, True)):
        data = prefix + blank.join([b"k"] * (parts - prefix.count(b'"q"'))) + b" = 1\n"
        if refused:
            with pytest.raises(CartonFormatError, match="more than 128 parts"):
                _toml._prescan(data, "m", Limits())
        else:
            _toml._prescan(data, "m", Limits())


_OLD_DOTTED = re.compile(rb"(?:[A-Za-z0-9_-]+[ \t]*\.[ \t]*){%d,}" % 4)
_OLD_STRING_OR_COMMENT = _toml._STRING_OR_COMMENT


def _old_skeleton(data: bytes) -> bytes:
    return _OLD_STRING_OR_COMMENT.sub(lambda m: b"" if m.group().startswith(b"#") else b"s", data)


TOKENS = [b'"', b"'", b'"""', b"'''", b"#", b"\n", b"\\", b"a", b"k", b"1", b".", b".", b",", b"=", b"[", b"]", b"{", b"}", b" ", b"\t", b"\0"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.sampled_from([1, 2, 3, 7, 16, 1 << 16]))
def test_the_chunked_skeleton_is_the_one_pass_skeleton(tokens: list[bytes], chunk: int) -> None:
    data = b"".join(tokens)
    reference = _toml._STRING_OR_COMMENT.sub(b"s", data).translate(_toml._NUL_TO_S)
    old = _toml._SCAN_CHUNK
    _toml._SCAN_CHUNK = chunk
    try:
        assert _toml._skeleton(data) == reference
    finally:
        _toml._SCAN_CHUNK = old


_BLANK = st.sampled_from(["", " ", "\t", "  "])
_PART = st.sampled_from(["k", "a1", "x-y", '"q"', "'l'", '"a.b"'])


@st.composite
def _dotted(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_PART, min_size=1, max_size=7))
    return "".join(p if i == 0 else draw(_BLANK) + "." + draw(_BLANK) + p for i, p in enumerate(parts))


def _value(depth: int) -> st.SearchStrategy[str]:
    scalars = st.sampled_from(["1", "1.5", '"s.t"', "'x'", "true", "1979-05-27", "07:32:00.5"])
    if depth >= 5:
        return scalars
    inner = _value(depth + 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(_dotted(), inner), max_size=2).map(lambda kv: "{" + ", ".join(f"{k} = {v}" for k, v in kv) + "}"),
    )


_LINE = st.one_of(
    st.tuples(_dotted(), _value(0)).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    _dotted().map(lambda k: f"[{k}]"),
    _dotted().map(lambda k: f"[[{k}]]"),
    st.just("# a comment [[with . dots . in . it . and . more . parts]]"),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_LINE, max_size=6))
def test_the_prescan_stays_conservative(lines: list[str]) -> None:
    """Whatever the old scan refused and the parser accepts, the new scan refuses too
    (here with a limit of 4 parts and 3 levels, so that short documents reach them)."""
    data = "\n".join(lines).encode()
    limits = Limits(max_toml_key_parts=4, max_toml_nesting=3)
    skeleton = _old_skeleton(data)
    depth = deepest = 0
    for byte in skeleton:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}" and depth:
            depth -= 1
    old_refused = deepest > 3 or bool(_OLD_DOTTED.search(skeleton))
    try:
        tomli.loads(data.decode("utf-8"))
    except tomli.TOMLDecodeError:
        return  # a document the parser refuses anyway (duplicate keys...)
    if old_refused:
        with pytest.raises(CartonFormatError):
            _toml._prescan(data, "m", limits)
    else:
        _toml._prescan(data, "m", limits)  # and accepts what the old one accepted


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(b"[]{}"), max_size=80))
def test_max_depth_is_the_clamped_walk(brackets: list[int]) -> None:
    data = bytes(brackets)
    depth = deepest = 0
    for byte in data:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif depth:
            depth -= 1
    assert _toml._max_depth(data) == deepest  # the loop, for short documents
    old, old_loop = _toml._DEPTH_CHUNK, _toml._DEPTH_LOOP_MAX
    _toml._DEPTH_CHUNK, _toml._DEPTH_LOOP_MAX = random.choice([1, 3, 8]), -1  # numpy, in chunks
    try:
        assert _toml._max_depth(data) == deepest
    finally:
        _toml._DEPTH_CHUNK, _toml._DEPTH_LOOP_MAX = old, old_loop


def test_the_skeleton_of_many_tiny_strings_costs_a_few_times_the_document() -> None:
    data = b"a = [" + b'"",' * (4 * hostile.MiB // 3) + b"]\n"  # 1.4 million strings
    tracemalloc.start()
    try:
        _toml._prescan(data, "m", BIG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(data), peak  # one re.sub: ~60x the document


def test_values_are_counted_before_the_parse_and_the_count_stops_early() -> None:
    data = b"data = [" + b"1," * (32 * hostile.MiB) + b"]\n"  # 64 MiB, 33 million values
    with pytest.raises(CartonFormatError) as err:
        start = time.perf_counter()
        _toml.parse_toml(data, "tensor_data/t.toml", BIG, max_values=1000)
    assert time.perf_counter() - start < 2
    assert err.value.code == "E-LIMIT-TENSOR" and "more than 1000 values" in err.value.message


@pytest.mark.parametrize("count", [0, 1, 999, 1000])
@pytest.mark.parametrize("layout", ["inline", "lines", "trailing comma"])
def test_a_string_array_within_max_values_is_accepted(count: int, layout: str) -> None:
    items = [f'"s,{i}#[="' for i in range(count)]  # separators inside strings do not count
    body = {"inline": ", ".join(items), "lines": "\n".join(x + "," for x in items), "trailing comma": ",".join(items) + ("," if items else "")}
    data = f"data = [{body[layout]}]\n".encode()
    assert len(_toml.parse_toml(data, "m", BIG, max_values=1000)["data"]) == count
