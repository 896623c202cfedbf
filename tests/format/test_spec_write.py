"""Writer conformance: what ``carton_format.write()`` produces obeys every writer-side rule.

A rich archive (self tests, examples with misc bytes, string and nested tensors, runner options,
non-ASCII and mixed-case model paths, symbolic links inside and outside the model directory, a
linked file) is written with each compression and inspected with ``rawzip``, a zip parser
independent of ``carton_format``; the checks are also run over arbitrary infos (hypothesis).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import math
import os
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carton_format as cf
from carton_format import _schema as schema_check
from tests.helpers.cartoncraft import write_info

from ..helpers import rawzip
from .test_roundtrip import infos

SHA_RE = re.compile(r"[0-9a-f]{64}")
LINKED_CONTENT = b"linked weights " * 500
LINKED_SHA = hashlib.sha256(LINKED_CONTENT).hexdigest()
LINK_URLS = ["https://example.com/weights.bin", "http://mirror.example.org/weights.bin"]
DTYPE_ITEMSIZE = {"float32": 4, "float64": 8, "int8": 1, "int16": 2, "int32": 4, "int64": 8,
                  "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8}  # fmt: skip
CARTON_KEY_ORDER = [
    "spec_version", "model_name", "short_description", "model_description", "license", "repository", "homepage",
    "required_platforms", "input", "output", "self_test", "example", "runner",
]  # fmt: skip
X = np.arange(6, dtype=np.float32).reshape(2, 3)


def rich_info() -> cf.CartonInfo:
    return cf.CartonInfo(
        runner=cf.RunnerInfo("torchscript", ">= 2.0.0", 1, {"num_threads": 4, "b": True, "f": 4.0, "s": "x", "a.b": -1}),
        model_name="rich",
        short_description="é" * 100,
        model_description="# Rich\n\n![figure](@misc/arch.png)\n",
        license="MIT",
        repository="https://example.com/repo",
        homepage="https://example.com",
        required_platforms=["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"],
        inputs=[cf.TensorSpec("x", "float32", ["batch", 3]), cf.TensorSpec("s", "string", None, "text", "in:0")],
        outputs=[cf.TensorSpec("y", "float32", "image")],
        self_tests=[
            cf.SelfTest(inputs={"x": X, "b": np.array(["a", "é"])}, expected_out={"y": 2 * X}, name="t"),
            cf.SelfTest(inputs={"n": [np.arange(3, dtype=np.int64), np.array([["q"]])]}),
        ],
        examples=[cf.Example(inputs={"x": X, "img": b"\x89PNG fake"}, sample_out={"y": b"out"}, name="e")],
        misc_files={"arch.png": b"png bytes", "Notes.txt": b"notes"},
    )


def make_model_dir(root: Path) -> Path:
    model = root / "model_dir"
    (model / "sub").mkdir(parents=True)
    files = {"model.pt": b"torchscript", "B.bin": b"upper", "a.bin": b"lower", "\u00e9.bin": b"accent",
             "sub/w.bin": b"W" * 100, "linked.bin": LINKED_CONTENT}  # fmt: skip
    for rel, data in files.items():
        (model / rel).write_bytes(data)
    outside = root / "outside.bin"
    outside.write_bytes(b"outside content")
    (model / "alias.bin").symlink_to("sub/w.bin")  # inside: a symlink member
    (model / "outside.pt").symlink_to(outside)  # outside: stored as content
    (model / "dirlink").symlink_to("sub")  # a directory: walked
    return model


@dataclass
class Written:
    compression: str
    linked: bool
    result: cf.WriteResult
    raw: rawzip.RawZip
    contents: dict[str, bytes]  # decoded member data (a symlink member's is its target text)
    manifest: list[tuple[str, str]]  # MANIFEST lines in file order

    @property
    def entries(self) -> dict[str, rawzip.Entry]:
        return self.raw.by_name()

    def toml(self, name: str) -> dict[str, Any]:
        return tomli.loads(self.contents[name].decode("utf-8"))

    def content(self, path: str) -> bytes:
        """A MANIFEST path's content, symbolic links followed (independently of carton_format)."""
        seen = 0
        while is_symlink(self.entries[path]):
            path = resolve_link(path, self.contents[path].decode("utf-8"))
            seen += 1
            assert seen <= 40
        return self.contents[path]


def decode(raw: rawzip.RawZip, entry: rawzip.Entry) -> bytes:
    payload = raw.payload(entry)
    if entry.method == 0:
        return payload
    if entry.method == 8:
        d = zlib.decompressobj(-15)
        out = d.decompress(payload) + d.flush()
        assert d.eof and not d.unused_data
        return out
    assert entry.method == 93, entry.method
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload), read_across_frames=True).read()


def is_symlink(entry: rawzip.Entry) -> bool:
    return entry.version_made_by >> 8 == 3 and (entry.external_attr >> 16) & 0o170000 == 0o120000


def resolve_link(link: str, target: str) -> str:
    parts = link.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            assert parts, "escapes the archive"
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def inspect(path: Path, result: cf.WriteResult, compression: str, linked: bool) -> Written:
    data = path.read_bytes()
    raw = rawzip.parse(data)
    contents = {e.name: decode(raw, e) for e in raw.entries}
    lines = contents["MANIFEST"].decode("utf-8").split("\n")
    assert lines[-1] == ""
    manifest = [tuple(line.rsplit("=", 1)) for line in lines[:-1]]
    return Written(compression, linked, result, raw, contents, manifest)  # type: ignore[arg-type]


VARIANTS = [("stored", False), ("zstd", True), ("deflate", False)]


@pytest.fixture(scope="module", params=VARIANTS, ids=[f"{c}{'-linked' if linked else ''}" for c, linked in VARIANTS])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    compression, linked = request.param
    root = tmp_path_factory.mktemp("write")
    model = make_model_dir(root)
    path = root / "rich.carton"
    result = cf.write(path, rich_info(), model_dir=model, compression=compression,
                      linked_files={LINKED_SHA: LINK_URLS} if linked else None)  # fmt: skip
    return inspect(path, result, compression, linked)


# -- checks, shared by the fixed archives and the hypothesis test -------------------------------


def check_zip_records(w: Written) -> None:
    raw = w.raw
    assert raw.comment == b"" and all(e.comment == b"" for e in raw.entries)  # FMT-ZIP-2
    assert (raw.disk_number, raw.cd_disk) == (0, 0) and raw.entries_on_disk == raw.entries_total  # FMT-ZIP-5
    for e in raw.entries:
        assert e.disk_start == 0
        for version_needed, flags in ((e.version_needed, e.flags), (e.local.version_needed, e.local.flags)):
            assert version_needed & 0xFF <= 63  # FMT-ZIP-4
            assert flags == (0 if e.raw_name.isascii() else 0x0800), e.name  # FMT-ZIP-4, -12, FMT-WRITE-5
        assert e.method in (0, 8, 93)  # FMT-ZIP-11
        if e.method == 0:
            assert e.compressed_size == e.uncompressed_size  # FMT-ZIP-4
        assert e.extra == b"" and e.local.extra == b""  # FMT-WRITE-5: no extra fields (no zip64 needed)


def check_zip_layout(w: Written) -> None:
    raw = w.raw
    assert not raw.has_zip64_records  # FMT-ZIP-6, FMT-WRITE-5
    assert raw.cd_offset + raw.cd_size == len(raw.data) - 22 and raw.entries_total == len(raw.entries)  # FMT-ZIP-7
    position = 0
    for e in raw.entries:  # FMT-ZIP-9, FMT-ZIP-10: members tile the file in central directory order
        assert e.header_offset == position, e.name
        local = e.local
        assert (local.raw_name, local.flags, local.method) == (e.raw_name, e.flags, e.method)  # FMT-ZIP-8
        assert (local.crc32, local.compressed_size, local.uncompressed_size) == (e.crc32, e.compressed_size, e.uncompressed_size)
        data = w.contents[e.name]
        assert len(data) == e.uncompressed_size and zlib.crc32(data) == e.crc32
        position = e.end
    assert position == raw.cd_offset


def _collision_key(name: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def check_path(path: str) -> None:
    """FMT-PATH-1, FMT-PATH-2 and the default limits of FMT-LIMIT-4, written independently."""
    parts = path.split("/")
    assert all(p not in ("", ".", "..") for p in parts), path
    assert not re.search(r"[\x00-\x1f\x7f\\]", path) and not re.match(r"[A-Za-z]:", path), path
    assert len(path.encode("utf-8")) <= 1024 and len(parts) <= 64


def check_names(w: Written) -> None:
    keys = {}
    for e in w.raw.entries:
        name = e.raw_name.decode("utf-8")  # FMT-ZIP-16
        check_path(name)
        key = _collision_key(name)
        assert key not in keys, (name, keys.get(key))  # FMT-ZIP-17
        keys[key] = name
        top = name.split("/", 1)[0]
        assert name in ("carton.toml", "MANIFEST", "LINKS") or (top in ("model", "tensor_data", "misc") and "/" in name)  # FMT-PATH-4
    for key in keys:  # FMT-ZIP-17: no member is the parent directory of another
        assert not any(other.startswith(key + "/") for other in keys), key


def check_member_types(w: Written) -> None:
    for e in w.raw.entries:
        assert e.version_made_by >> 8 == 3  # FMT-WRITE-3, FMT-ZIP-19
        for mtime, mdate in ((e.mtime, e.mdate), (e.local.mtime, e.local.mdate)):
            assert (mtime, mdate) == (0, 0x0021)  # FMT-WRITE-3
        assert not e.name.endswith("/")  # FMT-WRITE-5: no directory entries
        if is_symlink(e):
            assert e.external_attr == 0o120777 << 16  # FMT-WRITE-3
            assert e.name.startswith("model/")  # FMT-ZIP-20
            target = w.contents[e.name].decode("utf-8")  # FMT-ZIP-21
            assert 0 < len(target.encode()) <= 4096 and not target.startswith("/") and not target.endswith("/")
            assert not re.search(r"[\x00-\x1f\x7f\\]", target) and not re.match(r"[A-Za-z]:", target)
            resolved = resolve_link(e.name, target)
            assert resolved.startswith("model/") and resolved in w.entries and not is_symlink(w.entries[resolved])
        else:
            assert e.external_attr == 0o100644 << 16  # FMT-WRITE-3, FMT-ZIP-19: a regular file


def check_order_and_methods(w: Written) -> None:
    names = [e.name for e in w.raw.entries]
    tail = ["MANIFEST", "LINKS"] if "LINKS" in names else ["MANIFEST"]
    content = names[: len(names) - len(tail)]
    assert names[len(content) :] == tail and content == sorted(content, key=lambda n: n.encode("utf-8"))  # FMT-WRITE-2
    method = {"stored": 0, "deflate": 8, "zstd": 93}[w.compression]
    for e in w.raw.entries:  # FMT-WRITE-4
        expected = 0 if e.name in ("MANIFEST", "LINKS") or is_symlink(e) else method
        assert e.method == expected, e.name


def check_manifest(w: Written) -> None:
    raw_manifest = w.contents["MANIFEST"]  # FMT-MANIFEST-1
    text = raw_manifest.decode("utf-8")
    assert "\r" not in text and text.endswith("\n") and "\n\n" not in text  # FMT-MANIFEST-2
    paths = [p for p, _ in w.manifest]
    for path, sha in w.manifest:
        assert SHA_RE.fullmatch(sha), sha  # FMT-MANIFEST-3
        check_path(path)  # FMT-MANIFEST-4
        assert path not in ("MANIFEST", "LINKS")  # FMT-MANIFEST-5
    assert len(paths) == len(set(paths))  # FMT-MANIFEST-6
    assert paths == sorted(paths, key=lambda p: p.encode("utf-8"))  # FMT-MANIFEST-7
    members = {e.name for e in w.raw.entries} - {"MANIFEST", "LINKS"}
    links = w.toml("LINKS")["urls"] if "LINKS" in w.contents else {}
    left_out = set(paths) - members
    assert members <= set(paths)  # FMT-MANIFEST-8
    for path, sha in w.manifest:
        if path in left_out:
            assert links.get(sha), path  # FMT-MANIFEST-9
        else:
            assert hashlib.sha256(w.content(path)).hexdigest() == sha, path  # FMT-MANIFEST-10
    assert w.result.manifest_sha256 == hashlib.sha256(raw_manifest).hexdigest()  # FMT-MANIFEST-11
    assert w.result.manifest == dict(w.manifest)


_KEY = r"(?:[A-Za-z0-9_-]+|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*')"
_DOTTED_KEY = re.compile(rf"^[ \t]*{_KEY}(?:[ \t]*\.[ \t]*{_KEY})+[ \t]*=", re.MULTILINE)


def _check_toml_text(text: str, where: str) -> None:
    """FMT-TOML-3: no dotted keys left of '=' (the writer uses [a.b] headers instead)."""
    match = _DOTTED_KEY.search(text)
    assert match is None, f"{where}: dotted key {match.group(0)!r}"


def _check_toml_values(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_toml_values(v, f"{where}.{k}")
    elif isinstance(value, list):
        for v in value:
            _check_toml_values(v, where)
    else:
        assert not isinstance(value, (datetime.date, datetime.time)), where
        if isinstance(value, int) and not isinstance(value, bool):
            assert -(2**63) <= value < 2**63, where


def check_toml_documents(w: Written) -> None:
    for name, data in w.contents.items():
        if name in ("carton.toml", "LINKS") or name.endswith(".toml"):
            assert not data.startswith(b"\xef\xbb\xbf")  # FMT-TOML-2
            document = tomli.loads(data.decode("utf-8"))  # FMT-TOML-1
            _check_toml_text(data.decode("utf-8"), name)  # FMT-TOML-3
            _check_toml_values(document, name)


def check_carton_toml(w: Written) -> None:
    doc = w.toml("carton.toml")
    assert schema_check.check(doc, "carton-toml", "carton.toml") == []  # FMT-META-2 .. -14, FMT-RUNNER-1, -2, -4, -6
    assert doc["spec_version"] == 1 and type(doc["spec_version"]) is int  # FMT-META-3
    # FMT-WRITE-9: the spec order, except that empty arrays (plain `input = []` values) precede the
    # tables, as TOML requires; arrays of tables are written with [[...]] headers
    tables = [k for k in CARTON_KEY_ORDER if isinstance(doc.get(k), dict) or (isinstance(doc.get(k), list) and doc[k] and k != "required_platforms")]
    plain = [k for k in CARTON_KEY_ORDER if k in doc and k not in tables]
    assert list(doc) == plain + tables
    text = w.contents["carton.toml"].decode("utf-8")
    for k in tables:
        if k == "runner":
            assert "\n[runner]\n" in text
        else:
            assert text.count(f"\n[[{k}]]\n") == len(doc[k]), k
    runner = doc["runner"]
    assert "runner_compat_version" in runner  # FMT-RUNNER-5
    assert list(runner)[:3] == ["runner_name", "required_framework_version", "runner_compat_version"]
    req = runner["required_framework_version"]
    assert req == str(cf.VersionReq.parse(req))  # FMT-RUNNER-3, FMT-VREQ-8
    assert list(runner.get("opts", {})) == sorted(runner.get("opts", {}))  # FMT-WRITE-9
    if "short_description" in doc:
        assert len(doc["short_description"]) <= 100  # FMT-META-5
    index = w.toml("tensor_data/index.toml")
    names = {t["name"]: t for t in index.get("tensor", [])}
    manifest_paths = {p for p, _ in w.manifest}
    for item in doc.get("self_test", []) + doc.get("example", []):  # FMT-META-15
        for mapping in (item.get("inputs", {}), item.get("expected_out", {}), item.get("sample_out", {})):
            for ref in mapping.values():
                if ref.startswith("@tensor_data/"):
                    name = ref[len("@tensor_data/") :]
                    assert name in names and not any(name in t.get("inner", []) for t in names.values()), ref
                else:
                    assert "misc/" + ref[len("@misc/") :] in manifest_paths, ref


def check_tensor_data(w: Written) -> None:
    raw_index = w.contents["tensor_data/index.toml"]  # FMT-TENSOR-1: always written
    index = tomli.loads(raw_index.decode("utf-8"))
    assert schema_check.check(index, "tensor-index", "tensor_data/index.toml") == []  # FMT-TENSOR-3
    assert "tensor" in index  # FMT-TENSOR-1
    entries = index["tensor"]
    names = [t["name"] for t in entries]
    assert len(names) == len(set(names))  # FMT-TENSOR-4
    by_name = {t["name"]: t for t in entries}
    manifest = dict(w.manifest)
    inner_seen: list[str] = []
    for t in entries:
        assert "inner" in t  # FMT-TENSOR-1
        expected_keys = ["name", "dtype", "inner"] if t["dtype"] == "nested" else ["name", "dtype", "shape", "file", "inner"]
        assert list(t) == expected_keys  # FMT-WRITE-9
        if t["dtype"] == "nested":
            for inner in t["inner"]:  # FMT-TENSOR-12
                assert by_name[inner]["dtype"] != "nested"
            inner_seen += t["inner"]
            continue
        assert t["dtype"] in DTYPE_ITEMSIZE or t["dtype"] == "string"  # FMT-TENSOR-5
        assert all(isinstance(d, int) and 0 <= d < 2**64 for d in t["shape"])  # FMT-TENSOR-6
        path = "tensor_data/" + t["file"]  # FMT-TENSOR-7
        check_path(path)  # FMT-TENSOR-8
        assert path in manifest  # FMT-TENSOR-9
        count = math.prod(t["shape"])
        data = w.content(path)
        if t["dtype"] == "string":  # FMT-TENSOR-11
            strings = tomli.loads(data.decode("utf-8"))
            assert list(strings) == ["data"] and len(strings["data"]) == count
            assert all(isinstance(s, str) for s in strings["data"])
        else:
            assert len(data) == count * DTYPE_ITEMSIZE[t["dtype"]]  # FMT-TENSOR-10
    assert len(inner_seen) == len(set(inner_seen))  # FMT-TENSOR-13


def check_links(w: Written) -> None:
    names = [e.name for e in w.raw.entries]
    if "LINKS" not in names:
        assert {p for p, _ in w.manifest} <= set(names)
        return
    entry = w.entries["LINKS"]
    assert entry.method == 0 and "/" not in entry.name  # FMT-LINKS-1
    doc = w.toml("LINKS")
    assert schema_check.check(doc, "links", "LINKS") == []  # FMT-LINKS-2
    assert list(doc) == ["version", "urls"] and doc["version"] == 1  # FMT-LINKS-4, FMT-WRITE-9
    assert list(doc["urls"]) == sorted(doc["urls"])
    hashes = {sha for _, sha in w.manifest}
    for sha, urls in doc["urls"].items():
        assert SHA_RE.fullmatch(sha)  # FMT-LINKS-3
        assert sha in hashes  # FMT-LINKS-6
        for url in urls:  # FMT-LINKS-5
            assert re.fullmatch(r"https?://[^/\s]+(/\S*)?", url), url
    for path, sha in w.manifest:  # FMT-LINKS-7: only model files whose hash LINKS lists are left out
        if path not in names:
            assert path.startswith("model/") and sha in doc["urls"], path


ALL_CHECKS = [check_zip_records, check_zip_layout, check_names, check_member_types, check_order_and_methods,
              check_manifest, check_toml_documents, check_carton_toml, check_tensor_data, check_links]  # fmt: skip


# -- the rich archive -------------------------------------------------------------------------


@pytest.mark.spec("FMT-ZIP-2", "FMT-ZIP-4", "FMT-ZIP-5", "FMT-ZIP-11", "FMT-ZIP-12")
def test_zip_records_are_well_formed(written: Written) -> None:
    check_zip_records(written)


@pytest.mark.spec("FMT-ZIP-6", "FMT-ZIP-7", "FMT-ZIP-8", "FMT-ZIP-9", "FMT-ZIP-10")
def test_members_tile_the_file_and_headers_agree(written: Written) -> None:
    check_zip_layout(written)


@pytest.mark.spec("FMT-ZIP-16", "FMT-ZIP-17", "FMT-PATH-1", "FMT-PATH-2", "FMT-PATH-4", "FMT-LIMIT-4")
def test_member_names(written: Written) -> None:
    check_names(written)
    assert "model/\u00e9.bin" in written.entries and written.entries["model/\u00e9.bin"].flags == 0x0800


@pytest.mark.spec("FMT-ZIP-19", "FMT-ZIP-20", "FMT-ZIP-21", "FMT-WRITE-3")
def test_member_types_times_and_attributes(written: Written) -> None:
    check_member_types(written)
    assert is_symlink(written.entries["model/alias.bin"])


@pytest.mark.spec("FMT-WRITE-2", "FMT-WRITE-4", "FMT-WRITE-5")
def test_member_order_and_methods(written: Written) -> None:
    check_order_and_methods(written)
    names = [e.name for e in written.raw.entries]
    assert names.index("model/B.bin") < names.index("model/a.bin") < names.index("model/\u00e9.bin")  # bytes, not locale
    assert all(not e.flags & 0x0008 for e in written.raw.entries)  # no data descriptors


@pytest.mark.spec(*(f"FMT-MANIFEST-{n}" for n in range(1, 12)))
def test_manifest(written: Written) -> None:
    check_manifest(written)
    manifest = dict(written.manifest)
    assert manifest["model/alias.bin"] == hashlib.sha256(b"W" * 100).hexdigest()  # a symlink: its target's hash
    assert manifest["model/linked.bin"] == LINKED_SHA
    assert ("model/linked.bin" in written.entries) is not written.linked


@pytest.mark.spec("FMT-TOML-1", "FMT-TOML-2", "FMT-TOML-3")
def test_toml_documents(written: Written) -> None:
    check_toml_documents(written)
    assert "\n[runner.opts]\n" in written.contents["carton.toml"].decode()


@pytest.mark.spec(
    "FMT-META-2", "FMT-META-3", "FMT-META-4", "FMT-META-5", "FMT-META-6", "FMT-META-7", "FMT-META-13", "FMT-META-14",
    "FMT-META-15", "FMT-RUNNER-1", "FMT-RUNNER-2", "FMT-RUNNER-3", "FMT-RUNNER-4", "FMT-RUNNER-5", "FMT-WRITE-9",
)  # fmt: skip
def test_carton_toml(written: Written) -> None:
    check_carton_toml(written)
    runner = written.toml("carton.toml")["runner"]
    assert runner["required_framework_version"] == ">=2.0.0"
    assert list(runner["opts"]) == ["a.b", "b", "f", "num_threads", "s"]


@pytest.mark.spec(*(f"FMT-TENSOR-{n}" for n in range(1, 14) if n != 2), "FMT-WRITE-9")  # FMT-TENSOR-2 binds readers only
def test_tensor_data(written: Written) -> None:
    check_tensor_data(written)


@pytest.mark.spec("FMT-LINKS-1", "FMT-LINKS-2", "FMT-LINKS-3", "FMT-LINKS-4", "FMT-LINKS-5", "FMT-LINKS-6", "FMT-LINKS-7")
def test_links(written: Written) -> None:
    check_links(written)
    if written.linked:
        assert [e.name for e in written.raw.entries][-1] == "LINKS"
        assert written.toml("LINKS")["urls"] == {LINKED_SHA: LINK_URLS}


@pytest.mark.spec("FMT-LIMIT-1", "FMT-PATH-5")
def test_readers_accept_it_without_warnings(written: Written) -> None:
    """Within the default limits, so a conforming reader accepts it; model/ holds files."""
    report = cf.validate(written.result.path)
    assert report.ok, report.findings
    expected = ["W-HASHES-NOT-VERIFIED"] if written.linked else []
    assert [w.code for w in report.warnings] == expected


@pytest.mark.spec("FMT-WRITE-6", "FMT-WRITE-7", "FMT-WRITE-8")
def test_generated_tensor_and_misc_names(written: Written) -> None:
    doc = written.toml("carton.toml")
    t = "@tensor_data/_tensor_"
    # one counter over the self tests, then the examples; inputs then outputs; keys sorted
    assert doc["self_test"][0]["inputs"] == {"b": t + "0", "x": t + "1"}
    assert doc["self_test"][0]["expected_out"] == {"y": t + "2"}
    assert doc["self_test"][1]["inputs"] == {"n": t + "3"}
    assert doc["example"][0]["inputs"] == {"img": "@misc/_example_misc_file_0", "x": t + "4"}
    assert doc["example"][0]["sample_out"] == {"y": "@misc/_example_misc_file_1"}
    index = written.toml("tensor_data/index.toml")["tensor"]
    assert [(e["name"], e.get("file")) for e in index] == [
        ("_tensor_0", "tensor_0.toml"),
        ("_tensor_1", "tensor_1.bin"),
        ("_tensor_2", "tensor_2.bin"),
        ("_tensor_3", None),
        ("_tensor_3_inner_0", "tensor_3_0.bin"),
        ("_tensor_3_inner_1", "tensor_3_1.toml"),
        ("_tensor_4", "tensor_4.bin"),
    ]
    assert index[3] == {"name": "_tensor_3", "dtype": "nested", "inner": ["_tensor_3_inner_0", "_tensor_3_inner_1"]}
    assert written.content("misc/_example_misc_file_0") == b"\x89PNG fake"
    assert written.content("misc/_example_misc_file_1") == b"out"


@pytest.mark.spec("FMT-TENSOR-10", "FMT-TENSOR-11")
def test_tensor_file_bytes(written: Written) -> None:
    """Numeric: raw little-endian C order, no header; string: `data = [...]` in C order."""
    assert written.content("tensor_data/tensor_1.bin") == X.astype("<f4").tobytes(order="C")
    assert written.content("tensor_data/tensor_2.bin") == (2 * X).astype("<f4").tobytes()
    assert written.content("tensor_data/tensor_3_0.bin") == bytes.fromhex("00" * 8 + "01" + "00" * 7 + "02" + "00" * 7)
    assert tomli.loads(written.content("tensor_data/tensor_0.toml").decode()) == {"data": ["a", "é"]}
    assert tomli.loads(written.content("tensor_data/tensor_3_1.toml").decode()) == {"data": ["q"]}


@pytest.mark.spec("FMT-MISC-2")
def test_user_misc_files(written: Written) -> None:
    assert written.content("misc/arch.png") == b"png bytes"
    assert written.content("misc/Notes.txt") == b"notes"
    misc = sorted(p for p, _ in written.manifest if p.startswith("misc/"))
    assert misc == ["misc/Notes.txt", "misc/_example_misc_file_0", "misc/_example_misc_file_1", "misc/arch.png"]


@pytest.mark.spec("FMT-WRITE-10")
def test_model_directory_links(written: Written) -> None:
    model = {p for p, _ in written.manifest if p.startswith("model/")}
    assert model == {"model/B.bin", "model/a.bin", "model/\u00e9.bin", "model/alias.bin", "model/dirlink/w.bin",
                     "model/linked.bin", "model/model.pt", "model/outside.pt", "model/sub/w.bin"}  # fmt: skip
    assert written.contents["model/alias.bin"] == b"sub/w.bin" and is_symlink(written.entries["model/alias.bin"])
    assert written.contents["model/outside.pt"] == b"outside content" and not is_symlink(written.entries["model/outside.pt"])
    assert written.contents["model/dirlink/w.bin"] == b"W" * 100 and not is_symlink(written.entries["model/dirlink/w.bin"])


@pytest.mark.spec("FMT-WRITE-10")
@pytest.mark.parametrize("kind", ["loop", "fifo"])
def test_model_directory_loops_and_special_files_are_refused(tmp_path: Path, kind: str) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.pt").write_bytes(b"x")
    if kind == "loop":
        (model / "a").symlink_to("b")
        (model / "b").symlink_to("a")
    else:
        os.mkfifo(model / "pipe")
    with pytest.raises(cf.CartonFormatError) as err:
        cf.write(tmp_path / "x.carton", rich_info(), model_dir=model)
    assert err.value.code == "E-MODEL-DIR"
    assert not (tmp_path / "x.carton").exists()


@pytest.mark.spec("FMT-WRITE-1")
def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path)
    a = cf.write(tmp_path / "a.carton", rich_info(), model_dir=model, compression="deflate", linked_files={LINKED_SHA: LINK_URLS})
    b = cf.write(tmp_path / "b.carton", rich_info(), model_dir=model, compression="deflate", linked_files={LINKED_SHA: LINK_URLS})
    assert a.path.read_bytes() == b.path.read_bytes()


@pytest.mark.spec("FMT-META-4", "FMT-WRITE-9")
def test_unset_values_are_omitted(tmp_path: Path) -> None:
    result = write_info(tmp_path / "min.carton", cf.CartonInfo(runner=cf.RunnerInfo("noop", "*", 0)))
    w = inspect(result.path, result, "stored", False)
    assert w.contents["carton.toml"].decode() == (
        'spec_version = 1\n\n[runner]\nrunner_name = "noop"\nrequired_framework_version = "*"\nrunner_compat_version = 0\n'
    )
    assert w.toml("tensor_data/index.toml") == {"tensor": []}  # FMT-TENSOR-1 too
    for check in ALL_CHECKS:
        check(w)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(info=infos(), compression=st.sampled_from(["stored", "zstd", "deflate"]))
@pytest.mark.spec("FMT-MANIFEST-7", "FMT-TOML-3", "FMT-WRITE-2", "FMT-WRITE-9", "FMT-TENSOR-1", "FMT-TENSOR-10", "FMT-TENSOR-11")
def test_any_info_gives_a_conforming_archive(tmp_path_factory: pytest.TempPathFactory, info: cf.CartonInfo, compression: str) -> None:
    path = tmp_path_factory.mktemp("any") / "a.carton"
    result = write_info(path, info, compression=compression)
    w = inspect(path, result, compression, False)
    for check in ALL_CHECKS:
        check(w)
