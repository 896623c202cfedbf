"""``inspect`` cases: archives a reader must accept (with the expected normalised result) or reject
(with an expected error category).  Every invalid case starts from a valid archive and breaks one
rule; its name says which.  Cases that must break two rules on purpose say so (``order-*``)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import LOOPBACK_BASE
from . import zipcraft as zc
from .carton import (
    FILE_ATTR,
    LINK_ATTR,
    MODEL_BYTES,
    VERSION_MADE_BY,
    CaseArchive,
    manifest_bytes,
    minimal,
    opts_json,
    runner,
    sha256,
    standard,
)
from .registry import Case, Registry, json_bytes

ROOT = Path(__file__).resolve().parents[2]
SHA_A = "a" * 64
TiB = 1 << 40
MiB = 1 << 20
# A URL no reader can fetch from: the discard port of the loopback interface.
DEAD_URL = "http://127.0.0.1:9/conformance/unreachable"


class Inspect:
    def __init__(self, reg: Registry):
        self.reg = reg

    def valid(self, name: str, description: str, requirements: list[str], carton: CaseArchive | None = None, *,
              data: bytes | None = None, expected: dict[str, Any] | None = None, warnings: list[str] | None = None,
              may_warn: list[str] | None = None, origin: str | None = None, requires: list[str] | None = None,
              extra: dict[str, bytes] | None = None, **zip_kw: Any) -> None:
        if data is None:
            assert carton is not None
            data = carton.zip(**zip_kw)
        if expected is None:
            assert carton is not None
            expected = carton.expected()
        expect: dict[str, Any] = {"result": "valid", "output": "expected.json", "warnings": sorted(warnings or [])}
        if may_warn:
            expect["may_warn"] = sorted(may_warn)
        fields: dict[str, Any] = {"archive": "archive.carton"}
        if origin:
            fields["origin"] = origin
        if requires:
            fields["requires"] = requires
        self.reg.add(Case(f"inspect/valid/{name}", "inspect", description, requirements, expect,
                          {"archive.carton": data, "expected.json": json_bytes(expected), **(extra or {})}, fields))

    def invalid(self, name: str, description: str, requirements: list[str], data: bytes | CaseArchive,
                categories: list[str], codes: list[str], *, limits: dict[str, int] | None = None,
                requires: list[str] | None = None, extra: dict[str, bytes] | None = None, **zip_kw: Any) -> None:
        if isinstance(data, CaseArchive):
            data = data.zip(**zip_kw)
        fields: dict[str, Any] = {"archive": "archive.carton"}
        needs = list(requires or [])
        if limits:
            needs.append("limits")
        if needs:
            fields["requires"] = sorted(needs)
        if limits:
            fields["limits"] = limits
        expect = {"result": "invalid", "categories": categories, "codes": codes}
        self.reg.add(Case(f"inspect/invalid/{name}", "inspect", description, requirements, expect,
                          {"archive.carton": data, **(extra or {})}, fields))


# -- helpers ------------------------------------------------------------------------------------


def zbase(overrides: dict[str, dict[str, Any]] | None = None, carton: CaseArchive | None = None, **archive: Any) -> bytes:
    """The minimal valid archive with zip-level overrides (per member and for the end records)."""
    return (carton or minimal()).zip(overrides=overrides, **archive)


def model(**kw: Any) -> dict[str, dict[str, Any]]:
    return {"model/model.pt": kw}


def built(carton: CaseArchive | None = None, overrides: dict[str, dict[str, Any]] | None = None, **archive: Any) -> zc.Built:
    return zc.archive((carton or minimal()).zip_members(overrides=overrides), **archive).build()


def index_of(carton: CaseArchive, name: str) -> int:
    return list(carton.members()).index(name)


def with_text(carton: CaseArchive, old: str, new: str, member: str = "carton.toml", count: int = 1) -> CaseArchive:
    c = carton.copy()
    text = (c.carton_toml() if member == "carton.toml" else c.index_toml() or b"").decode()
    assert old in text, f"{old!r} not in {member}:\n{text}"
    text = text.replace(old, new, count)
    if member == "carton.toml":
        c.toml_text = text
    else:
        c.index_text = text
    return c


def with_files(carton: CaseArchive, changes: dict[str, bytes | None]) -> CaseArchive:
    c = carton.copy()
    for path, data in changes.items():
        if data is None:
            c.files.pop(path)
        else:
            c.files[path] = data
    return c


def with_members(carton: CaseArchive, files: dict[str, bytes]) -> CaseArchive:
    c = carton.copy()
    c.files.update(files)
    return c


def links_doc(urls: dict[str, list[str]], version: Any = 1) -> bytes:
    from . import tomlw

    doc: dict[str, Any] = {}
    if version is not None:
        doc["version"] = version
    doc["urls"] = urls
    return tomlw.dumps(doc).encode()


def original_expected(path: Path, description: dict[str, Any]) -> dict[str, Any]:
    import zipfile

    with zipfile.ZipFile(path) as z:
        manifest = z.read("MANIFEST")
    info = dict(description)
    info["runner"] = {**info["runner"], "opts": opts_json(info["runner"]["opts"])}
    return {"info": info, "manifest": manifest.decode(), "manifest_sha256": sha256(manifest)}


# -- the cases ------------------------------------------------------------------------------------


def generate(reg: Registry) -> None:
    t = Inspect(reg)
    _valid(t)
    _originals(t)
    _zip(t)
    _paths(t)
    _limits(t)
    _manifest(t)
    _toml(t)
    _meta(t)
    _runner(t)
    _tensors(t)
    _links(t)
    _read(t)


def _valid(t: Inspect) -> None:
    t.valid("basic/minimal", "Only the required members and keys: a runner, an empty tensor index, one model file.",
            ["FMT-META-1", "FMT-META-2", "FMT-RUNNER-1", "FMT-RUNNER-2", "FMT-TENSOR-1", "FMT-MANIFEST-11", "FMT-PATH-5"],
            minimal())
    t.valid("basic/standard", "Specs, a self test, an example mixing tensors and a misc file, misc files and runner options.",
            ["FMT-META-7", "FMT-META-13", "FMT-META-14", "FMT-META-15", "FMT-MISC-1", "FMT-MISC-2", "FMT-MANIFEST-2",
             "FMT-MANIFEST-8", "FMT-MANIFEST-10", "FMT-MANIFEST-11", "FMT-TOML-3", "FMT-LIMIT-1"],
            standard())
    t.valid("basic/writer-layout", "Members in byte-wise path order with MANIFEST last, fixed DOS time, Unix modes, stored.",
            ["FMT-WRITE-1", "FMT-WRITE-2", "FMT-WRITE-3", "FMT-WRITE-4", "FMT-WRITE-5", "FMT-WRITE-6", "FMT-WRITE-7", "FMT-WRITE-8",
             "FMT-WRITE-9"], standard())
    # every metadata field
    c = standard()
    c.doc.update({
        "model_description": "# Title\n\nMarkdown with ![figure](@misc/arch.png), 'quotes' and \"double quotes\".\n",
        "license": "Apache-2.0 OR MIT",
        "repository": "https://example.com/repo",
        "homepage": "https://example.com",
        "required_platforms": ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "x86_64-apple-darwin", "aarch64-apple-darwin"],
    })
    c.doc["input"][0].update({"description": "any batch of rows", "internal_name": "graph/input:0"})
    c.doc["self_test"][0]["description"] = "doubles ones"
    c.doc["example"][0].update({"name": "ex", "description": "an example"})
    t.valid("metadata/every-field", "Every optional carton.toml field set, with unicode-free text.",
            ["FMT-META-4", "FMT-META-6", "FMT-META-7", "FMT-META-13", "FMT-META-14"], c)
    c = standard()
    c.doc.update({"model_name": "modèle ✓ 💖", "short_description": "ü" * 100, "license": "",
                  "model_description": "tab\there\nnull-free \\ backslash \"quoted\" \u00e9\u0301"})
    t.valid("metadata/unicode-text", "Unicode text fields, an empty license string, and a 100-character short description.",
            ["FMT-META-4", "FMT-META-5", "FMT-TOML-1"], c)
    c = minimal()
    c.doc["required_platforms"] = []
    t.valid("metadata/required-platforms-empty", "An empty required_platforms array means every platform.", ["FMT-META-6"], c)
    c = minimal()
    c.doc["required_platforms"] = ["wasm32-unknown-unknown", "riscv64gc-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf", "i686-pc-windows-msvc"]
    t.valid("metadata/required-platforms-other-architectures", "Triples whose architecture target-lexicon knows.", ["FMT-META-6"], c)
    # shapes
    c = minimal()
    c.doc["input"] = [
        {"name": "any", "dtype": "float32", "shape": "*"},
        {"name": "symbol", "dtype": "float64", "shape": "image"},
        {"name": "empty-symbol", "dtype": "int8", "shape": ""},
        {"name": "scalar", "dtype": "int16", "shape": []},
        {"name": "fixed", "dtype": "int32", "shape": [2, 3]},
        {"name": "mixed", "dtype": "int64", "shape": ["batch", "*", 3, 0]},
        {"name": "big", "dtype": "uint64", "shape": [9223372036854775807]},
    ]
    c.doc["output"] = [{"name": s, "dtype": s, "shape": ["*"]} for s in ("uint8", "uint16", "uint32", "string")]
    t.valid("metadata/shapes-and-dtypes", "Every spec dtype and every shape form: any, symbol, empty symbol, scalar, fixed, mixed.",
            ["FMT-META-8", "FMT-META-9", "FMT-META-10", "FMT-META-11"], c)
    c = minimal()
    c.doc["input"] = [{"name": "x", "dtype": "float32", "shape": [1]}, {"name": "x", "dtype": "int8", "shape": [2]}]
    x = c.add_tensor("_tensor_0", np.ones(3, np.float32))
    c.doc["self_test"] = [{"inputs": {"not_declared": x}}]
    t.valid("metadata/names-are-documentation", "Repeated input names and self-test keys that match no declared name are accepted.",
            ["FMT-META-12"], c, may_warn=["W-UNKNOWN-KEY"])
    c = minimal()
    c.doc["input"] = []
    c.doc["output"] = []
    c.doc["self_test"] = []
    c.doc["example"] = []
    t.valid("metadata/empty-arrays", "Empty input, output, self_test and example arrays.", ["FMT-META-7", "FMT-META-12"], c)
    c = minimal()
    x = c.add_tensor("_tensor_0", np.float64(1.5))
    c.doc["self_test"] = [{"inputs": {"": x, "ключ": x}}]
    c.doc["example"] = [{"inputs": {}, "sample_out": {}}]
    t.valid("metadata/self-test-without-expected-out", "A self test with no expected_out (two keys share a tensor) and an empty example.",
            ["FMT-META-13", "FMT-META-14"], c)
    c = minimal()
    c.doc["runner"]["opts"] = {"num_threads": 4, "ratio": 4.0, "small": -0.5, "mode": "fast", "flag": False, "on": True,
                               "big": 9223372036854775807, "neg": -9223372036854775808, "a.b": "dotted key"}
    t.valid("runner/opts-every-type", "Runner options of every allowed type; 4.0 stays a float, booleans stay booleans.",
            ["FMT-RUNNER-6"], c)
    c = minimal()
    c.doc["runner"]["required_framework_version"] = ">= 2.0.0, < 3"
    c.display_req = ">=2.0.0, <3"
    t.valid("runner/framework-version-normalised", "required_framework_version is exposed in its normalised form.",
            ["FMT-RUNNER-3", "FMT-VREQ-8"], c)
    c = minimal()
    c.doc["runner"]["required_framework_version"] = "2.0"
    c.display_req = "^2.0"
    t.valid("runner/framework-version-caret", "A requirement without operator is exposed with an explicit caret.", ["FMT-VREQ-8"], c)
    c = minimal()
    c.doc["runner"]["required_framework_version"] = "1.x"
    c.display_req = "1.*"
    t.valid("runner/framework-version-wildcard", "A wildcard requirement 1.x is exposed as 1.*.", ["FMT-VREQ-8"], c)
    c = minimal()
    c.doc["runner"] = {"runner_name": "anything-goes", "required_framework_version": "*", "runner_compat_version": 0}
    t.valid("runner/other-runner", "A runner name this reader has never heard of, any framework version, compat version 0.",
            ["FMT-RUNNER-2", "FMT-RUNNER-4"], c)
    c = minimal()
    c.doc["runner"]["runner_compat_version"] = 18446744073709551615 >> 1
    t.valid("runner/compat-version-large", "runner_compat_version as large as TOML can write.", ["FMT-RUNNER-4"], c)


def _originals(t: Inspect) -> None:
    src = ROOT / "tests" / "data" / "original" / "test.carton"
    desc = json.loads((Path(__file__).parent / "original-test-carton.json").read_text())
    t.valid("original/test-carton", "The original's own test archive (python runner, July 2023 writer, zstd, DOS time 0).",
            ["FMT-ZIP-13", "FMT-ZIP-22", "FMT-READ-3", "FMT-MISC-1"], data=src.read_bytes(),
            expected=original_expected(src, desc), origin="original")
    written = ROOT / "tests" / "data" / "original_written"
    for stem, warnings, reqs, text in [
        ("kitchen_sink_shrunk", [], ["FMT-ZIP-13", "FMT-ZIP-21", "FMT-READ-9"],
         "Every dtype and string rank, symlinks in model/, re-written by the original's shrink (zstd, its zip layout)."),
        ("kitchen_sink_linked", ["W-HASHES-NOT-VERIFIED"], ["FMT-LINKS-1", "FMT-LINKS-12", "FMT-READ-4"],
         "The kitchen sink shrunk by the original with its weights behind LINKS."),
    ]:
        path = written / f"{stem}.carton"
        desc = json.loads((written / f"{stem}.json").read_text())
        t.valid(f"original/{stem.replace('_', '-')}", text, reqs, data=path.read_bytes(), expected=original_expected(path, desc),
                warnings=warnings, origin="original")
    t.invalid("original/minimal-shrunk", "Only the required fields and no model file, written by the original: not a conforming archive.",
              ["FMT-PATH-5"], (written / "minimal_shrunk.carton").read_bytes(), ["structure"], ["E-STRUCTURE-MISSING"])


def _zip(t: Inspect) -> None:
    zip_cats = ["zip"]
    # FMT-ZIP-1
    t.invalid("zip/not-a-zip", "A PDF header and text, no end of central directory record.", ["FMT-ZIP-1", "FMT-READ-5"],
              b"%PDF-1.7\n" + b"not a zip archive\n" * 20, zip_cats, ["E-ZIP-NOT-ZIP"])
    t.invalid("zip/empty-file", "A file of zero bytes.", ["FMT-ZIP-1"], b"", zip_cats, ["E-ZIP-NOT-ZIP"])
    b = built()
    t.invalid("zip/eocd-signature-damaged", "The end record's signature is PK\\x05\\x07.", ["FMT-ZIP-1"],
              zc.patch(b.data, b.eocd_offset, "<I", 0x07054B50), zip_cats, ["E-ZIP-NOT-ZIP"])
    # FMT-ZIP-2
    t.valid("zip/archive-comment", "The end record has a 5-byte comment: ignored, with a warning.", ["FMT-ZIP-2", "FMT-ZIP-1"], minimal(),
            warnings=["W-ZIP-COMMENT"], comment=b"hello")
    t.valid("zip/archive-comment-maximal", "The end record has a 65,535-byte comment, the most the zip format allows.", ["FMT-ZIP-2"],
            minimal(), warnings=["W-ZIP-COMMENT"], comment=bytes(range(256)) * 255 + b"\x00" * 255)
    t.valid("zip/archive-comment-holding-a-signature", "The archive comment holds an end record signature whose comment length "
            "does not reach the end of the file: only the real end record qualifies.", ["FMT-ZIP-2", "FMT-ZIP-1", "FMT-ZIP-23"],
            minimal(), warnings=["W-ZIP-COMMENT"], comment=b"PK\x05\x06" + b"\x00" * 18 + b"tail")
    t.valid("zip/member-comment", "carton.toml's central header has a file comment: ignored, with a warning.", ["FMT-ZIP-2"],
            minimal(), warnings=["W-ZIP-COMMENT"], overrides={"carton.toml": {"comment": b"note"}})
    plain = zbase()
    t.invalid("zip/ambiguous-end-record", "The archive comment is a second end record whose comment length also reaches the end "
              "of the file.", ["FMT-ZIP-23"], plain[:-2] + (22).to_bytes(2, "little") + plain[-22:], zip_cats, ["E-ZIP-MALFORMED"])
    # FMT-ZIP-3
    t.invalid("zip/eocd-truncated", "The last 5 bytes of the end record are cut off.", ["FMT-ZIP-3"], zbase()[:-5], zip_cats,
              ["E-ZIP-TRUNCATED", "E-ZIP-NOT-ZIP"])
    t.invalid("zip/local-header-offset-past-end", "MANIFEST's central header gives a local header offset past the end of the file.",
              ["FMT-ZIP-3"], zbase({"MANIFEST": {"header_offset": 10**6}}), zip_cats, ["E-ZIP-TRUNCATED"])
    # FMT-ZIP-4
    for name, desc, kw in [
        ("version-needed-64", "A member needs version 6.4 to extract (above 63).", {"version_needed": 64}),
        ("flag-bit-14", "A member sets general-purpose flag bit 14 (reserved).", {"flags": 0x4000}),
        ("extra-field-overruns", "A central extra field declares 10 bytes but 3 remain.", {"central_extra": struct.pack("<HH", 0x5455, 10) + b"abc"}),
        ("extra-block-stray-bytes", "A central extra block holds 2 bytes, too few for a field header.", {"central_extra": b"\x01\x00"}),
        ("zip64-extra-too-long", "A zip64 extra field holds a value no header field is saturated for.", {"central_extra": zc.zip64_extra(4)}),
        ("zip64-extra-twice", "A central header has two zip64 extra fields.", {"zip64": True, "central_extra": zc.zip64_extra()}),
        ("offset-saturated-without-zip64", "The local header offset is 0xFFFFFFFF and there is no zip64 extra field.", {"header_offset": 0xFFFFFFFF}),
        ("local-size-saturated-without-zip64", "The local compressed size is 0xFFFFFFFF without a local zip64 extra field.",
         {"local_compressed_size": 0xFFFFFFFF}),
        ("stored-sizes-differ", "A stored member whose compressed and uncompressed sizes differ.", {"uncompressed_size": len(MODEL_BYTES) - 5}),
    ]:
        t.invalid(f"zip/{name}", desc, ["FMT-ZIP-4"], zbase(model(**kw)), zip_cats, ["E-ZIP-MALFORMED"])
    b = built()
    t.invalid("zip/central-signature-wrong", "The first central header's signature is PK\\x01\\x03.", ["FMT-ZIP-4"],
              zc.patch(b.data, b.central_offsets[0], "<I", 0x03014B50), zip_cats, ["E-ZIP-MALFORMED"])
    i = index_of(minimal(), "model/model.pt")
    t.invalid("zip/local-signature-wrong", "model/model.pt's local header signature is PK\\x03\\x05.", ["FMT-ZIP-4"],
              zc.patch(b.data, b.local_offsets[i], "<I", 0x05034B50), zip_cats, ["E-ZIP-MALFORMED", "E-ZIP-HEADER-MISMATCH"])
    # FMT-ZIP-5
    n = len(minimal().members())
    t.invalid("zip/eocd-disk-number", "The end record says this is disk 1.", ["FMT-ZIP-5"], zbase(disk_number=1), zip_cats, ["E-ZIP-MULTIDISK"])
    t.invalid("zip/eocd-central-directory-disk", "The end record puts the central directory on disk 2.", ["FMT-ZIP-5"], zbase(cd_disk=2), zip_cats,
              ["E-ZIP-MULTIDISK"])
    t.invalid("zip/eocd-entries-on-disk-differ", "Entries on this disk is less than the total.", ["FMT-ZIP-5"], zbase(entries_on_disk=n - 1),
              zip_cats, ["E-ZIP-MULTIDISK"])
    t.invalid("zip/member-disk-start", "A member starts on disk 1.", ["FMT-ZIP-5"], zbase(model(disk_start=1)), zip_cats, ["E-ZIP-MULTIDISK"])
    t.invalid("zip/zip64-locator-total-disks", "The zip64 locator counts 2 disks.", ["FMT-ZIP-5", "FMT-ZIP-6"],
              zbase(zip64_end=True, locator_total_disks=2), zip_cats, ["E-ZIP-MULTIDISK"])
    # FMT-ZIP-6
    t.valid("zip/zip64-end-records", "Zip64 end records with saturated end-record fields and zip64 extras on every member.",
            ["FMT-ZIP-6", "FMT-ZIP-4"], minimal(), overrides={p: {"zip64": True, "version_needed": 45} for p in minimal().members()},
            zip64_end=True)
    t.invalid("zip/zip64-locator-offset-wrong", "The zip64 locator points 3 bytes into the file.", ["FMT-ZIP-6"],
              zbase(zip64_end=True, locator_offset=3), zip_cats, ["E-ZIP-ZIP64"])
    b = built(zip64_end=True)
    t.invalid("zip/zip64-record-signature-wrong", "The zip64 end record's signature is wrong.", ["FMT-ZIP-6"],
              zc.patch(b.data, b.zip64_eocd_offset, "<I", 0x06064B51), zip_cats, ["E-ZIP-ZIP64"])
    t.invalid("zip/zip64-record-extensible-data", "The zip64 end record carries 8 bytes of extensible data.", ["FMT-ZIP-6"],
              zbase(zip64_end=True, zip64_record_size=52, zip64_extensible=b"8 bytes!"), zip_cats, ["E-ZIP-ZIP64"])
    t.invalid("zip/zip64-gap-before-locator", "Three bytes lie between the zip64 end record and its locator.", ["FMT-ZIP-6"],
              zbase(zip64_end=True, between_zip64_and_locator=b"gap"), zip_cats, ["E-ZIP-ZIP64"])
    t.invalid("zip/zip64-disagrees-with-eocd", "The end record and the zip64 end record give different central directory sizes.",
              ["FMT-ZIP-6"], zbase(zip64_end=True, zip64_sentinels=False, zip64_cd_size=10**6), zip_cats, ["E-ZIP-ZIP64"])
    t.invalid("zip/eocd-saturated-without-zip64", "The end record's central directory offset is 0xFFFFFFFF and there is no zip64 locator.",
              ["FMT-ZIP-6"], zbase(cd_offset=0xFFFFFFFF), zip_cats, ["E-ZIP-ZIP64"])
    # FMT-ZIP-7
    b = built()
    t.invalid("zip/cd-offset-off-by-one", "The end record's central directory offset is one byte too far.", ["FMT-ZIP-7"],
              zbase(cd_offset=b.cd_offset + 1), zip_cats, ["E-ZIP-CD-MISMATCH"])
    t.invalid("zip/cd-size-too-small", "The end record's central directory size is too small.", ["FMT-ZIP-7"],
              zbase(cd_size=b.cd_size - 10), zip_cats, ["E-ZIP-CD-MISMATCH"])
    t.invalid("zip/entry-count-too-high", "The end record counts one entry more than the central directory holds.", ["FMT-ZIP-7"],
              zbase(entries_total=n + 1, entries_on_disk=n + 1), zip_cats, ["E-ZIP-CD-MISMATCH"])
    t.invalid("zip/entry-count-too-low", "The end record counts one entry less than the central directory holds.", ["FMT-ZIP-7"],
              zbase(entries_total=n - 1, entries_on_disk=n - 1), zip_cats, ["E-ZIP-CD-MISMATCH"])
    t.invalid("zip/cd-extra-bytes", "Four bytes of junk follow the last central header inside the declared directory.", ["FMT-ZIP-7"],
              zbase(extra_central=[b"junk"]), zip_cats, ["E-ZIP-CD-MISMATCH"])
    # FMT-ZIP-8
    plain = MODEL_BYTES
    for name, desc, kw in [
        ("local-name-differs", "model/model.pt's local header names model/model.pu.", {"local_name": "model/model.pu"}),
        ("local-method-differs", "The local header says deflate, the central header stored.", {"local_method": 8}),
        ("local-flags-differ", "The local header sets flag bit 11, the central header does not.", {"local_flags": 0x800}),
        ("local-crc-differs", "The local header's CRC-32 differs from the central header's.", {"local_crc32": 1}),
        ("local-compressed-size-differs", "The local compressed size is one less than the central one.",
         {"local_compressed_size": len(plain) - 1, "local_uncompressed_size": len(plain) - 1}),
        ("data-descriptor-disagrees", "Flag bit 3 is set and the data descriptor's CRC-32 differs from the central header.",
         {"flags": 0x8, "local_crc32": 0, "local_compressed_size": 0, "local_uncompressed_size": 0,
          "data_descriptor": zc.data_descriptor(zlib.crc32(plain) ^ 1, len(plain), len(plain))}),
    ]:
        t.invalid(f"zip/{name}", desc, ["FMT-ZIP-8"], zbase(model(**kw)), zip_cats, ["E-ZIP-HEADER-MISMATCH"])
    dd = {}
    for path, sig in [("model/model.pt", True), ("carton.toml", False)]:
        data = minimal().members()[path][0]
        dd[path] = {"flags": 0x8, "local_crc32": 0, "local_compressed_size": 0, "local_uncompressed_size": 0,
                    "data_descriptor": zc.data_descriptor(zlib.crc32(data), len(data), len(data), signature=sig)}
    t.valid("zip/data-descriptors", "Two members with flag bit 3, zero local sizes and data descriptors, with and without signature.",
            ["FMT-ZIP-8"], minimal(), overrides=dd)
    # FMT-ZIP-9
    t.invalid("zip/prefix-offsets-adjusted", "Eight bytes before the first member, with every offset adjusted.", ["FMT-ZIP-9"],
              zbase(prefix=b"MZ\x90\x00stub"), zip_cats, ["E-ZIP-UNACCOUNTED-DATA"])
    t.invalid("zip/trailing-byte", "One zero byte after the end record.", ["FMT-ZIP-9"], zbase() + b"\x00", zip_cats,
              ["E-ZIP-UNACCOUNTED-DATA"])
    t.invalid("zip/gap-between-members", "Six bytes between two members.", ["FMT-ZIP-9"], zbase(model(gap_before=b"hidden")), zip_cats,
              ["E-ZIP-UNACCOUNTED-DATA"])
    t.invalid("zip/gap-before-central-directory", "Six bytes between the last member and the central directory.", ["FMT-ZIP-9"],
              zbase(before_cd=b"hidden"), zip_cats, ["E-ZIP-UNACCOUNTED-DATA"])
    c = minimal()
    ms = c.zip_members()
    ms.insert(index_of(c, "model/model.pt") + 1, zc.member("model/hidden.py", b"import os\n", in_central=False,
                                                             external_attr=FILE_ATTR, version_made_by=VERSION_MADE_BY))
    t.invalid("zip/local-entry-not-in-central-directory", "A local entry model/hidden.py that the central directory does not list.",
              ["FMT-ZIP-9"], zc.build(ms), zip_cats, ["E-ZIP-UNACCOUNTED-DATA"])
    # FMT-ZIP-10
    order = list(range(n))
    order[0], order[1] = order[1], order[0]
    t.invalid("zip/central-directory-out-of-order", "The central directory lists the first two members in reverse local order.",
              ["FMT-ZIP-10", "FMT-ZIP-9"], zbase(central_order=order), zip_cats, ["E-ZIP-OVERLAP"])
    manifest = minimal().manifest_data()
    t.invalid("zip/member-runs-into-central-directory", "MANIFEST declares 20 more stored bytes than precede the central directory.",
              ["FMT-ZIP-10"], zbase({"MANIFEST": {"compressed_size": len(manifest) + 20, "uncompressed_size": len(manifest) + 20}}), zip_cats,
              ["E-ZIP-OVERLAP", "E-ZIP-TRUNCATED"])
    b = built()
    t.invalid("zip/two-entries-one-local-header", "Two central headers point at the same local header.", ["FMT-ZIP-10"],
              zc.patch(b.data, b.central_offsets[i] + 42, "<I", b.local_offsets[i - 1]), zip_cats, ["E-ZIP-OVERLAP", "E-ZIP-HEADER-MISMATCH"])
    # FMT-ZIP-11
    for name, desc, kw in [
        ("method-bzip2", "model/model.pt uses compression method 12 (bzip2).", {"method": 12}),
        ("method-lzma", "model/model.pt uses compression method 14 (LZMA).", {"method": 14}),
        ("method-deflate64", "model/model.pt uses compression method 9 (deflate64).", {"method": 9}),
        ("patched-data-flag", "model/model.pt sets flag bit 5 (compressed patched data).", {"flags": 0x20}),
    ]:
        t.invalid(f"zip/{name}", desc, ["FMT-ZIP-11"], zbase(model(**kw)), zip_cats, ["E-ZIP-METHOD"])
    # FMT-ZIP-12
    for name, desc, kw in [
        ("encrypted-flag", "model/model.pt sets flag bit 0 (encrypted).", {"flags": 0x1}),
        ("strong-encryption-flag", "model/model.pt sets flag bits 0 and 6 (strong encryption).", {"flags": 0x41}),
        ("encrypted-central-directory-flag", "model/model.pt sets flag bit 13 (masked local header).", {"flags": 0x2000}),
        ("aes-method", "model/model.pt uses method 99 (AES).", {"method": 99}),
    ]:
        t.invalid(f"zip/{name}", desc, ["FMT-ZIP-12"], zbase(model(**kw)), zip_cats, ["E-ZIP-ENCRYPTED"])
    # FMT-ZIP-13 / 14 / 15: member data
    big = b"".join(b"weights %05d " % k for k in range(400))
    heavy = with_files(minimal(), {"model/model.pt": big})
    t.valid("zip/deflate-and-zstd", "Content members compressed with deflate, zstd with and without frame content size.",
            ["FMT-ZIP-11", "FMT-ZIP-13"], heavy,
            overrides={"model/model.pt": {"method": zc.DEFLATE}, "carton.toml": {"method": zc.ZSTD, "zstd_content_size": False},
                       "tensor_data/index.toml": {"method": zc.ZSTD}})
    frames = zc.compress(big[:3000], zc.ZSTD) + b"\x50\x2a\x4d\x18\x03\x00\x00\x00abc" + zc.compress(big[3000:], zc.ZSTD, zstd_content_size=False)
    ms = heavy.zip_members()
    k = index_of(heavy, "model/model.pt")
    ms[k] = zc.Member("model/model.pt", payload=frames, plain=big, method=zc.ZSTD, external_attr=FILE_ATTR, version_made_by=VERSION_MADE_BY)
    t.valid("zip/zstd-several-frames", "model/model.pt is two zstd frames with a skippable frame between them.", ["FMT-ZIP-13"],
            heavy, data=zc.build(ms))

    def member_payload(payload: bytes, method: int, **kw: Any) -> bytes:
        ms = heavy.zip_members()
        ms[k] = zc.Member("model/model.pt", payload=payload, plain=big, method=method, external_attr=FILE_ATTR,
                          version_made_by=VERSION_MADE_BY, **kw)
        return zc.build(ms)

    deflated = zc.compress(big, zc.DEFLATE)
    zstded = zc.compress(big, zc.ZSTD, zstd_content_size=False)
    t.invalid("zip/deflate-garbage", "model/model.pt's deflate data is 0xFF bytes.", ["FMT-ZIP-13"],
              member_payload(b"\xff" * 50, zc.DEFLATE), zip_cats, ["E-ZIP-CORRUPT-DATA"])
    t.invalid("zip/deflate-truncated", "model/model.pt's deflate stream lacks its last 10 bytes.", ["FMT-ZIP-13"],
              member_payload(deflated[:-10], zc.DEFLATE), zip_cats, ["E-ZIP-CORRUPT-DATA", "E-ZIP-SIZE-MISMATCH"])
    t.invalid("zip/deflate-trailing-bytes", "Six bytes follow the end of model/model.pt's deflate stream.", ["FMT-ZIP-13"],
              member_payload(deflated + b"hidden", zc.DEFLATE), zip_cats, ["E-ZIP-CORRUPT-DATA"])
    t.invalid("zip/zstd-garbage", "model/model.pt's zstd frame header is followed by 0xFF bytes.", ["FMT-ZIP-13"],
              member_payload(b"\x28\xb5\x2f\xfd" + b"\xff" * 50, zc.ZSTD), zip_cats, ["E-ZIP-CORRUPT-DATA"])
    t.invalid("zip/zstd-not-a-frame", "model/model.pt is declared zstd but holds plain text.", ["FMT-ZIP-13"],
              member_payload(big[:200], zc.ZSTD), zip_cats, ["E-ZIP-CORRUPT-DATA"])
    t.invalid("zip/zstd-trailing-bytes", "Six bytes follow model/model.pt's zstd frame.", ["FMT-ZIP-13"],
              member_payload(zstded + b"hidden", zc.ZSTD), zip_cats, ["E-ZIP-CORRUPT-DATA"])
    t.invalid("zip/deflate-longer-than-declared", "model/model.pt inflates to one byte more than its declared size.", ["FMT-ZIP-14"],
              member_payload(deflated, zc.DEFLATE, uncompressed_size=len(big) - 1, crc32=zlib.crc32(big[:-1])), zip_cats, ["E-ZIP-SIZE-MISMATCH"])
    t.invalid("zip/zstd-shorter-than-declared", "model/model.pt's zstd data (no content size) ends one byte before its declared size.",
              ["FMT-ZIP-14"], member_payload(zstded, zc.ZSTD, uncompressed_size=len(big) + 1), zip_cats, ["E-ZIP-SIZE-MISMATCH"])
    t.invalid("zip/zstd-content-size-disagrees", "The zstd frame content size differs from the declared uncompressed size.", ["FMT-ZIP-14"],
              member_payload(zc.compress(big, zc.ZSTD), zc.ZSTD, uncompressed_size=len(big) + 1), zip_cats,
              ["E-ZIP-SIZE-MISMATCH", "E-ZIP-CORRUPT-DATA"])
    for name, method in [("stored", zc.STORED), ("deflate", zc.DEFLATE), ("zstd", zc.ZSTD)]:
        t.invalid(f"zip/crc-wrong-{name}", f"model/model.pt ({name}) does not match its CRC-32 (its MANIFEST hash is right).",
                  ["FMT-ZIP-15", "FMT-READ-3"], zbase(model(method=method, crc32=zlib.crc32(big) ^ 0x10), carton=heavy), zip_cats, ["E-ZIP-CRC"])
    # FMT-ZIP-16
    t.invalid("zip/name-latin-1", "A member name holds the Latin-1 byte 0xE9, flag bit 11 clear.", ["FMT-ZIP-16"],
              zbase(model(name=b"model/caf\xe9.pt")), zip_cats, ["E-ZIP-NAME-ENCODING"])
    t.invalid("zip/name-not-utf8-with-flag", "A member name is not UTF-8 although flag bit 11 says it is.", ["FMT-ZIP-16"],
              zbase(model(name=b"model/caf\xe9.pt", flags=0x800)), zip_cats, ["E-ZIP-NAME-ENCODING"])
    t.invalid("zip/name-surrogate", "A member name holds an encoded UTF-16 surrogate (ED A0 80).", ["FMT-ZIP-16"],
              zbase(model(name=b"model/a\xed\xa0\x80.pt", flags=0x800)), zip_cats, ["E-ZIP-NAME-ENCODING"])
    t.invalid("zip/unicode-path-extra-disagrees", "An Info-ZIP Unicode Path extra field names another file.", ["FMT-ZIP-16"],
              zbase(model(central_extra=zc.unicode_path_extra(b"model/model.pt", "model/evil.pt"))), zip_cats, ["E-ZIP-NAME-ENCODING"])
    t.invalid("zip/unicode-path-extra-stale", "An Info-ZIP Unicode Path extra field carries the CRC-32 of another name.", ["FMT-ZIP-16"],
              zbase(model(central_extra=zc.unicode_path_extra(b"model/old.pt", "model/model.pt"))), zip_cats, ["E-ZIP-NAME-ENCODING"])
    c = with_files(minimal(), {"model/model.pt": None})
    c.files.update({"model/日本.pt": b"utf-8 with flag", "model/é.bin": b"utf-8 without flag"})
    t.valid("zip/utf8-names", "UTF-8 member names with flag bit 11 and without it.", ["FMT-ZIP-16"], c,
            overrides={"model/é.bin": {"flags": 0}})
    # FMT-ZIP-17
    c = minimal()
    ms = c.zip_members()
    ms.insert(index_of(c, "model/model.pt") + 1, ms[index_of(c, "model/model.pt")])
    t.invalid("zip/duplicate-name", "model/model.pt appears twice.", ["FMT-ZIP-17"], zc.build(ms), zip_cats, ["E-ZIP-DUPLICATE"])
    t.invalid("zip/duplicate-case-folded", "model/Model.pt and model/model.pt differ only in case.", ["FMT-ZIP-17"],
              with_members(minimal(), {"model/Model.pt": b"other"}), zip_cats, ["E-ZIP-DUPLICATE"])
    t.invalid("zip/duplicate-nfc-nfd", "model/caf\u00e9.pt and model/cafe\u0301.pt are the same name after NFC.", ["FMT-ZIP-17"],
              with_members(minimal(), {"model/caf\u00e9.pt": b"1", "model/cafe\u0301.pt": b"2"}), zip_cats, ["E-ZIP-DUPLICATE"])
    t.invalid("zip/file-is-parent-of-file", "model/a is a file and model/a/b another.", ["FMT-ZIP-17"],
              with_members(minimal(), {"model/a": b"1", "model/a/b": b"2"}), zip_cats, ["E-ZIP-DUPLICATE"])
    t.invalid("zip/duplicate-case-folded-sharp-s", "model/STRASSE.pt and model/straße.pt collide under full case folding.", ["FMT-ZIP-17"],
              with_members(minimal(), {"model/STRASSE.pt": b"1", "model/straße.pt": b"2"}), zip_cats, ["E-ZIP-DUPLICATE"])
    # FMT-ZIP-18 / 19 / 20 / 21 / 22
    c = minimal()
    ms = c.zip_members()
    dir_member = zc.member("model/", b"", external_attr=zc.unix_attr(zc.S_IFDIR | 0o755), version_made_by=VERSION_MADE_BY)
    ms.insert(index_of(c, "model/model.pt"), dir_member)
    ms.insert(0, zc.member("misc/", b"", version_made_by=0x0014))
    t.valid("zip/directory-entries", "Directory entries model/ (Unix directory mode) and misc/ (MS-DOS host) are ignored with a warning.",
            ["FMT-ZIP-18", "FMT-ZIP-19"], c, data=zc.build(ms), warnings=["W-ZIP-DIRECTORY"])
    for name, desc, kw in [
        ("fifo", "model/model.pt has the Unix type FIFO.", {"external_attr": zc.unix_attr(zc.S_IFIFO | 0o644)}),
        ("character-device", "model/model.pt has the Unix type character device.", {"external_attr": zc.unix_attr(zc.S_IFCHR | 0o644)}),
        ("block-device", "model/model.pt has the Unix type block device.", {"external_attr": zc.unix_attr(zc.S_IFBLK | 0o644)}),
        ("socket", "model/model.pt has the Unix type socket.", {"external_attr": zc.unix_attr(zc.S_IFSOCK | 0o644)}),
        ("directory-mode-on-file-name", "model/model.pt has the Unix directory type but no trailing slash.",
         {"external_attr": zc.unix_attr(zc.S_IFDIR | 0o755)}),
    ]:
        t.invalid(f"zip/member-type-{name}", desc, ["FMT-ZIP-19"], zbase(model(**kw)), zip_cats, ["E-ZIP-NOT-REGULAR"])
    ms = minimal().zip_members()
    ms.insert(0, zc.member("model/d/", b"data", external_attr=zc.unix_attr(zc.S_IFDIR | 0o755), version_made_by=VERSION_MADE_BY))
    t.invalid("zip/directory-entry-with-data", "The directory entry model/d/ declares 4 bytes of data.", ["FMT-ZIP-19"],
              zc.build(ms), zip_cats, ["E-ZIP-NOT-REGULAR"])
    t.valid("zip/dos-host-attributes-ignored", "A member from an MS-DOS host whose attributes would mean FIFO on Unix is a regular file.",
            ["FMT-ZIP-19", "FMT-ZIP-22"], minimal(), overrides=model(version_made_by=0x0014, external_attr=zc.unix_attr(zc.S_IFIFO) | 0x20))
    t.valid("zip/times-and-attributes-not-checked", "DOS time and date 0, external attributes 0, odd internal attributes and an unknown extra field.",
            ["FMT-ZIP-22"], minimal(), overrides={p: {"mtime": 0, "mdate": 0, "external_attr": 0, "internal_attr": 1,
                                                      "central_extra": zc.extra_field(0x5455, b"\x01\x00\x00\x00\x00"),
                                                      "local_extra": zc.extra_field(0x5455, b"\x01\x00\x00\x00\x00"),
                                                      "version_made_by": (10 << 8) | 45} for p in minimal().members()})
    # symlinks
    link_base = with_files(minimal(), {"model/weights/real.bin": b"real weights"})
    c = link_base.copy()
    c.symlinks = {"model/a.bin": "weights/real.bin", "model/sub/b.bin": "../a.bin", "model/sub/c.bin": "./b.bin", "model/d.bin": "sub//c.bin"}
    t.valid("zip/symlink-chain", "Symbolic links under model/ resolving through ., empty and .. components; MANIFEST lists the target's hash.",
            ["FMT-ZIP-21", "FMT-READ-9", "FMT-MANIFEST-10", "FMT-WRITE-10", "FMT-MANIFEST-8"], c)
    chain = link_base.copy()
    chain.symlinks = {f"model/l{k:02d}": f"l{k + 1:02d}" for k in range(40)}
    chain.files["model/l40"] = b"end of the chain"
    t.valid("zip/symlink-chain-of-40", "A chain of exactly 40 links ends at a regular member.", ["FMT-ZIP-21"], chain)
    bad_links: list[tuple[str, str, dict[str, str], dict[str, bytes]]] = [
        ("absolute", "A link's target is /etc/passwd.", {"model/a": "/etc/passwd"}, {}),
        ("drive-letter", "A link's target is C:/x.", {"model/a": "C:/x"}, {}),
        ("escapes-model", "A link's target ../carton.toml leaves model/.", {"model/a": "../carton.toml"}, {}),
        ("escapes-root", "A link's target climbs above the archive root.", {"model/a": "../../../etc/passwd"}, {}),
        ("dangling", "A link's target does not exist.", {"model/a": "missing.bin"}, {}),
        ("loop", "Two links point at each other.", {"model/a": "b", "model/b": "a"}, {}),
        ("self", "A link points at itself.", {"model/a": "a"}, {}),
        ("backslash", "A link's target uses a backslash separator.", {"model/a": "weights\\real.bin"}, {}),
        ("empty", "A link's target is empty.", {"model/a": ""}, {}),
        ("trailing-slash", "A link's target ends in a slash.", {"model/a": "weights/"}, {}),
        ("to-directory", "A link's target is a directory of the archive.", {"model/a": "weights"}, {}),
        ("too-long", "A link's target is 4097 bytes long.", {"model/a": "x/" * 2048 + "y"}, {}),
        ("chain-of-41", "A chain of 41 links.", {f"model/l{k:02d}": f"l{k + 1:02d}" for k in range(41)}, {"model/l41": b"end"}),
        ("control-character", "A link's target contains an escape character.", {"model/a": "weights/\x1breal.bin"}, {}),
    ]
    for name, desc, links, extra in bad_links:
        c = link_base.copy()
        c.files.update(extra)
        c.symlinks = links
        c.manifest = manifest_bytes({**{p: sha256(d) for p, d in c.content().items()}, **{p: SHA_A for p in links}})
        t.invalid(f"zip/symlink-{name}", desc, ["FMT-ZIP-21"], c, zip_cats, ["E-ZIP-SYMLINK"])
    c = link_base.copy()
    c.manifest = manifest_bytes({**{p: sha256(d) for p, d in c.content().items()}, "model/a": SHA_A})
    ms = c.zip_members()
    ms.insert(index_of(c, "model/model.pt"), zc.member("model/a", b"\xff\xfe", external_attr=LINK_ATTR, version_made_by=VERSION_MADE_BY))
    t.invalid("zip/symlink-target-not-utf8", "A link's target is not UTF-8.", ["FMT-ZIP-21"], zc.build(ms), zip_cats, ["E-ZIP-SYMLINK"])
    c = with_members(minimal(), {"misc/arch.png": b"png"})
    c.symlinks = {"misc/alias.png": "arch.png"}
    t.invalid("zip/symlink-outside-model", "A symbolic link misc/alias.png (to misc/arch.png) outside model/.", ["FMT-ZIP-20"], c, zip_cats,
              ["E-ZIP-SYMLINK"])
    ms = minimal().zip_members()
    ms.insert(0, zc.member("model/d/", b"", external_attr=LINK_ATTR, version_made_by=VERSION_MADE_BY))
    t.invalid("zip/symlink-directory-entry", "A directory entry model/d/ with the symbolic link type.", ["FMT-ZIP-20"], zc.build(ms), zip_cats,
              ["E-ZIP-SYMLINK", "E-ZIP-NOT-REGULAR"])
    c = link_base.copy()
    c.symlinks = {"model/a.bin": "weights/real.bin"}
    c.manifest = manifest_bytes({**{p: sha256(d) for p, d in c.content().items()}, "model/a.bin": sha256(b"weights/real.bin")})
    t.invalid("manifest/symlink-hash-of-target-path", "MANIFEST lists a symbolic link with the hash of its target path, not of its content.",
              ["FMT-MANIFEST-10", "FMT-READ-9"], c, ["manifest"], ["E-MANIFEST-MISMATCH"])


def _paths(t: Inspect) -> None:
    path_cats = ["path"]
    for name, path, reqs, desc in [
        ("parent-component", "model/../evil.pt", ["FMT-PATH-1"], "A member path with a .. component."),
        ("absolute", "/model/evil.pt", ["FMT-PATH-1"], "A member path starting with /."),
        ("empty-component", "model//evil.pt", ["FMT-PATH-1"], "A member path with an empty component."),
        ("dot-component", "model/./evil.pt", ["FMT-PATH-1"], "A member path with a . component."),
        ("backslash", "model\\evil.pt", ["FMT-PATH-2"], "A member path with a backslash."),
        ("nul", "model/evil\x00.pt", ["FMT-PATH-2"], "A member path with a NUL character."),
        ("escape-character", "model/evil\x1b[31m.pt", ["FMT-PATH-2"], "A member path with an escape (U+001B) character."),
        ("delete-character", "model/evil\x7f.pt", ["FMT-PATH-2"], "A member path with a DEL (U+007F) character."),
        ("drive-letter", "C:/model/evil.pt", ["FMT-PATH-2"], "A member path starting with a drive designator."),
        ("drive-letter-relative", "c:model.pt", ["FMT-PATH-2"], "A member path starting with a drive-relative designator."),
    ]:
        t.invalid(f"path/{name}", desc, reqs, with_members(minimal(), {path: b"x"}), path_cats, ["E-PATH-UNSAFE"])
    for name, path in [("device-name", "model/CON"), ("device-name-with-extension", "model/aux.txt"), ("trailing-dot", "model/weights."),
                       ("trailing-space", "model/weights "), ("colon", "model/a:b.bin"), ("question-mark", "model/what?.bin"),
                       ("superscript-device", "model/COM\u00b9.txt")]:
        t.valid(f"path/nonportable-{name}", f"The member path {path!r} cannot be extracted everywhere: a warning, not an error.",
                ["FMT-PATH-3"], with_members(minimal(), {path: b"x"}), warnings=["W-PATH-NONPORTABLE"])
    c = with_members(minimal(), {"README.txt": b"not part of the format", "extra/notes.md": b"ignored"})
    t.valid("path/other-top-level-members", "Members outside the known top-level names are listed in MANIFEST and ignored.",
            ["FMT-PATH-4"], c, may_warn=["W-UNKNOWN-KEY"])
    c = minimal()
    c.files = {"model/model.pt": MODEL_BYTES}
    t.invalid("path/carton-toml-wrong-case", "The metadata member is named Carton.toml: names are case-sensitive.", ["FMT-PATH-4", "FMT-META-1"],
              _renamed(c, "carton.toml", "Carton.toml"), ["structure"], ["E-STRUCTURE-MISSING"])
    c = minimal()
    c.files = {}
    t.invalid("path/no-model-files", "Nothing is listed under model/.", ["FMT-PATH-5"], c, ["structure"], ["E-STRUCTURE-MISSING"])
    c = minimal()
    c.files = {"misc/readme.txt": b"no model"}
    t.invalid("path/only-misc-files", "Files under misc/ but none under model/.", ["FMT-PATH-5", "FMT-MISC-1"], c,
              ["structure"], ["E-STRUCTURE-MISSING"])


def _renamed(c: CaseArchive, old: str, new: str) -> bytes:
    members = c.members()
    entries = {}
    out = []
    for name, (data, _) in members.items():
        if name == "MANIFEST":
            continue
        name = new if name == old else name
        entries[name] = sha256(data)
        out.append((name, data))
    out.sort(key=lambda kv: kv[0].encode())
    ms = [zc.member(n, d, external_attr=FILE_ATTR, version_made_by=VERSION_MADE_BY) for n, d in out]
    ms.append(zc.member("MANIFEST", manifest_bytes(entries), external_attr=FILE_ATTR, version_made_by=VERSION_MADE_BY))
    return zc.build(ms)


def _limits(t: Inspect) -> None:
    limit_cats = ["limit"]
    long_path = "model/" + "a" * (1024 - len("model/"))
    deep_path = "model/" + "/".join(["d"] * 62) + "/f"
    t.valid("limit/path-at-limits", "A member path of exactly 1,024 bytes and one of exactly 64 components.", ["FMT-LIMIT-1", "FMT-LIMIT-4"],
            with_members(minimal(), {long_path: b"long", deep_path: b"deep"}))
    t.invalid("limit/path-too-long", "A member path of 1,025 bytes.", ["FMT-LIMIT-4"], with_members(minimal(), {long_path + "b": b"x"}),
              limit_cats, ["E-LIMIT-PATH-LENGTH"])
    t.invalid("limit/path-too-deep", "A member path of 65 components.", ["FMT-LIMIT-4"],
              with_members(minimal(), {"model/" + "/".join(["d"] * 63) + "/f": b"x"}), limit_cats, ["E-LIMIT-PATH-LENGTH"])
    t.invalid("limit/path-too-long-multibyte", "A member path of 513 two-byte characters (1,026 bytes, 513 characters).", ["FMT-LIMIT-4"],
              with_members(minimal(), {"model/" + "é" * 510: b"x"}), limit_cats, ["E-LIMIT-PATH-LENGTH"])
    n = len(minimal().members())
    t.invalid("limit/entry-count-declared", "The end records declare 100,001 entries (checked before the central directory is read).",
              ["FMT-LIMIT-2"], zbase(zip64_end=True, zip64_entries_total=100_001, zip64_entries_on_disk=100_001), limit_cats + ["zip"],
              ["E-LIMIT-ENTRY-COUNT"])
    t.invalid("limit/entry-count-configured", "Four entries where the reader is configured with max_entries = 3.", ["FMT-LIMIT-2"],
              zbase(), limit_cats, ["E-LIMIT-ENTRY-COUNT"], limits={"max_entries": n - 1})
    t.invalid("limit/central-directory-size-declared", "The zip64 end record declares a central directory of 64 MiB + 1 bytes.",
              ["FMT-LIMIT-3"], zbase(zip64_end=True, zip64_cd_size=64 * MiB + 1), limit_cats + ["zip"], ["E-LIMIT-CD-SIZE"])
    t.invalid("limit/central-directory-size-configured", "A central directory larger than a configured max_central_directory_bytes of 100.",
              ["FMT-LIMIT-3"], zbase(), limit_cats, ["E-LIMIT-CD-SIZE"], limits={"max_central_directory_bytes": 100})
    t.invalid("limit/member-size-declared", "model/model.pt declares 1 TiB + 1 uncompressed bytes (zip64), checked before decompressing.",
              ["FMT-LIMIT-5"], zbase(model(method=zc.DEFLATE, zip64=True, uncompressed_size=TiB + 1, version_needed=45)), limit_cats,
              ["E-LIMIT-MEMBER-SIZE", "E-LIMIT-RATIO", "E-LIMIT-TOTAL-SIZE"])
    t.invalid("limit/member-size-configured", "model/model.pt is larger than a configured max_member_bytes of 16.", ["FMT-LIMIT-5"],
              zbase(), limit_cats, ["E-LIMIT-MEMBER-SIZE"], limits={"max_member_bytes": 16})
    t.invalid("limit/manifest-size-declared", "MANIFEST declares 64 MiB + 1 uncompressed bytes.", ["FMT-LIMIT-5"],
              zbase({"MANIFEST": {"method": zc.DEFLATE, "uncompressed_size": 64 * MiB + 1}}), limit_cats, ["E-LIMIT-MEMBER-SIZE", "E-LIMIT-RATIO"])
    big = {p: {"method": zc.DEFLATE, "zip64": True, "uncompressed_size": TiB - 1, "version_needed": 45}
           for p in ["model/a", "model/b", "model/c", "model/d", "model/e"]}
    t.invalid("limit/total-size-declared", "Five members each declare just under 1 TiB (over 4 TiB together).", ["FMT-LIMIT-6"],
              zbase(big, carton=with_members(minimal(), {p: b"x" for p in big})), limit_cats, ["E-LIMIT-TOTAL-SIZE", "E-LIMIT-RATIO"])
    t.invalid("limit/total-size-configured", "Members larger in total than a configured max_total_bytes of 64.", ["FMT-LIMIT-6"],
              zbase(), limit_cats, ["E-LIMIT-TOTAL-SIZE"], limits={"max_total_bytes": 64})
    t.invalid("limit/compression-ratio-declared", "model/model.pt declares 32 MiB from about 70 deflate bytes (a ratio far above 50,000).",
              ["FMT-LIMIT-7"], zbase(model(method=zc.DEFLATE, uncompressed_size=32 * MiB)), limit_cats, ["E-LIMIT-RATIO"])
    zeros = with_files(minimal(), {"model/model.pt": bytes(1 << 20)})
    t.invalid("limit/compression-ratio-configured", "1 MiB of zeros deflated, with max_compression_ratio = 100 above 1,000 bytes.",
              ["FMT-LIMIT-7"], zbase(model(method=zc.DEFLATE), carton=zeros), limit_cats, ["E-LIMIT-RATIO"],
              limits={"max_compression_ratio": 100, "ratio_floor_bytes": 1000})
    c = minimal()
    c.toml_text = c.carton_toml().decode() + ("#" + " " * 1022 + "\n") * (16 * 1024) + "\n"
    t.invalid("limit/carton-toml-too-large", "carton.toml is 16 MiB + 1 byte of valid TOML (deflated).", ["FMT-LIMIT-8"],
              c, limit_cats, ["E-LIMIT-TOML-SIZE"], overrides={"carton.toml": {"method": zc.DEFLATE}})
    t.invalid("limit/index-toml-too-large-configured", "tensor_data/index.toml is larger than a configured max_toml_bytes of 32.",
              ["FMT-LIMIT-8"], _index_padded(),
              limit_cats, ["E-LIMIT-TOML-SIZE"], limits={"max_toml_bytes": 60})
    c = minimal()
    c.toml_text = "spec_version = 1\nfuture = " + "[" * 65 + "]" * 65 + "\n" + c.carton_toml().decode().split("\n", 1)[1]
    t.invalid("limit/toml-nesting", "An unknown key holds arrays nested 65 deep.", ["FMT-LIMIT-9"], c, limit_cats, ["E-LIMIT-TOML-NESTING"])
    c = minimal()
    c.toml_text = "spec_version = 1\nfuture" + ".a" * 128 + " = 1\n" + c.carton_toml().decode().split("\n", 1)[1]
    t.invalid("limit/toml-dotted-key", "A dotted key of 129 parts.", ["FMT-LIMIT-9"], c, limit_cats, ["E-LIMIT-TOML-NESTING"])
    c = minimal()
    c.toml_text = "spec_version = 1\nfuture = " + "[" * 64 + "]" * 64 + "\n" + c.carton_toml().decode().split("\n", 1)[1]
    t.valid("limit/toml-nesting-at-limit", "An unknown key holds arrays nested exactly 64 deep.", ["FMT-LIMIT-9", "FMT-TOML-4"], c,
            may_warn=["W-UNKNOWN-KEY"])
    c = standard()
    c.index[0]["shape"] = [65536, 65536, 65536]
    t.invalid("limit/numeric-tensor-too-large", "A float32 tensor of shape 65536 x 65536 x 65536 (1 PiB).", ["FMT-LIMIT-10"],
              c, limit_cats + ["tensor"], ["E-LIMIT-TENSOR", "E-TENSOR-SIZE"])
    c = standard()
    c.index[2]["shape"] = [1 << 29]
    t.invalid("limit/string-tensor-too-many-elements", "A string tensor of 2^29 elements (more than 256 Mi).", ["FMT-LIMIT-10"],
              c, limit_cats + ["tensor"], ["E-LIMIT-TENSOR", "E-TENSOR-STRING"])
    t.invalid("limit/string-tensor-file-configured", "A string tensor file larger than a configured max_string_tensor_bytes of 8.",
              ["FMT-LIMIT-10"], standard(), limit_cats, ["E-LIMIT-TENSOR"], limits={"max_string_tensor_bytes": 8})


def _index_padded() -> CaseArchive:
    c = minimal()
    c.index_text = "# " + "x" * 100 + "\ntensor = []\n"
    return c


def _manifest(t: Inspect) -> None:
    manifest_cats = ["manifest"]
    base = standard()
    entries = base.manifest_entries()
    good = manifest_bytes(entries)

    def with_manifest(data: bytes) -> CaseArchive:
        c = base.copy()
        c.manifest = data
        return c

    t.invalid("structure/manifest-missing", "The archive has no MANIFEST member.", ["FMT-MANIFEST-1"], _without(base, "MANIFEST"),
              ["structure"], ["E-STRUCTURE-MISSING"])
    t.invalid("structure/carton-toml-missing", "The archive has no carton.toml and MANIFEST does not list one.", ["FMT-META-1"],
              _without(minimal(), "carton.toml"), ["structure"], ["E-STRUCTURE-MISSING"])
    first, rest = good.split(b"\n", 1)
    for name, data, reqs, desc in [
        ("line-without-equals", first.replace(b"=", b" ") + b"\n" + rest, ["FMT-MANIFEST-2"], "A MANIFEST line without '='."),
        ("empty-line", first + b"\n\n" + rest, ["FMT-MANIFEST-2"], "An empty line in MANIFEST."),
        ("carriage-returns", good.replace(b"\n", b"\r\n"), ["FMT-MANIFEST-2"], "MANIFEST lines end in CR LF."),
        ("not-utf8", good + b"model/caf\xe9=" + SHA_A.encode() + b"\n", ["FMT-MANIFEST-2"], "A MANIFEST line is not UTF-8."),
        ("hash-uppercase", first.upper().replace(b"CARTON.TOML", b"carton.toml") + b"\n" + rest, ["FMT-MANIFEST-3"],
         "A MANIFEST hash in uppercase hexadecimal."),
        ("hash-too-short", first[:-1] + b"\n" + rest, ["FMT-MANIFEST-3"], "A MANIFEST hash of 63 digits."),
        ("hash-not-hex", first[:-1] + b"g\n" + rest, ["FMT-MANIFEST-3"], "A MANIFEST hash with the letter g."),
        ("hash-trailing-space", first + b" \n" + rest, ["FMT-MANIFEST-3"], "A MANIFEST hash followed by a space."),
        ("lists-manifest", manifest_bytes({**entries, "MANIFEST": SHA_A}), ["FMT-MANIFEST-5"], "MANIFEST lists MANIFEST."),
        ("lists-links", manifest_bytes({**entries, "LINKS": SHA_A}), ["FMT-MANIFEST-5", "FMT-LINKS-1"], "MANIFEST lists LINKS."),
    ]:
        t.invalid(f"manifest/{name}", desc, reqs, with_manifest(data), manifest_cats, ["E-MANIFEST-SYNTAX"])
    t.valid("manifest/no-final-line-feed", "The last MANIFEST line has no line feed.", ["FMT-MANIFEST-2", "FMT-MANIFEST-11"],
            with_manifest(good.rstrip(b"\n")))
    c = with_members(minimal(), {"model/a=b.bin": b"equals", "model/with space.bin": b"space"})
    t.valid("manifest/path-with-equals-and-space", "Paths containing '=' and a space: each line splits at its last '='.",
            ["FMT-MANIFEST-2"], c)
    order = sorted(entries, key=lambda p: p.encode(), reverse=True)
    t.invalid("manifest/unsorted", "MANIFEST lines in reverse order.", ["FMT-MANIFEST-7", "FMT-READ-6"],
              with_manifest("".join(f"{p}={entries[p]}\n" for p in order).encode()), ["manifest"], ["E-MANIFEST-UNSORTED"])
    c = with_members(minimal(), {"model/B.bin": b"upper", "model/a.bin": b"lower", "model/\u00e9.bin": b"e acute"})
    t.valid("manifest/byte-order", "Uppercase sorts before lowercase and ASCII before other characters (byte-wise UTF-8 order).",
            ["FMT-MANIFEST-7"], c)
    for name, path, desc in [("parent-component", "model/../x.bin", "MANIFEST lists a path with a .. component."),
                             ("absolute", "/model/x.bin", "MANIFEST lists an absolute path."),
                             ("backslash", "model\\x.bin", "MANIFEST lists a path with a backslash."),
                             ("trailing-slash", "model/x/", "MANIFEST lists a path ending in a slash.")]:
        c = with_manifest(manifest_bytes({**entries, path: SHA_A}))
        t.invalid(f"manifest/unsafe-path-{name}", desc, ["FMT-MANIFEST-4"], c, ["path"], ["E-PATH-UNSAFE"])
    t.invalid("manifest/path-too-long", "MANIFEST lists a 1,025-byte path.", ["FMT-MANIFEST-4", "FMT-LIMIT-4"],
              with_manifest(manifest_bytes({**entries, "model/" + "a" * 1019: SHA_A})), ["limit", "path"], ["E-LIMIT-PATH-LENGTH"])
    t.invalid("manifest/duplicate-path", "MANIFEST lists carton.toml twice.", ["FMT-MANIFEST-6"],
              with_manifest(good + f"carton.toml={entries['carton.toml']}\n".encode()), manifest_cats, ["E-MANIFEST-DUPLICATE"])
    c = with_members(base, {"model/extra.bin": b"sneaky"})
    c.unlisted = {"model/extra.bin"}
    t.invalid("manifest/member-not-listed", "model/extra.bin is in the zip but not in MANIFEST.", ["FMT-MANIFEST-8"], c, manifest_cats,
              ["E-MANIFEST-UNLISTED"])
    c = with_members(base, {"README.txt": b"top level"})
    c.unlisted = {"README.txt"}
    t.invalid("manifest/other-member-not-listed", "A top-level README.txt is in the zip but not in MANIFEST.", ["FMT-MANIFEST-8", "FMT-PATH-4"],
              c, manifest_cats, ["E-MANIFEST-UNLISTED"])
    c = with_members(base, {"model/weights.bin": b"w"})
    c.symlinks = {"model/alias.bin": "weights.bin"}
    c.unlisted = {"model/alias.bin"}
    t.invalid("manifest/symlink-not-listed", "A symbolic link member is not listed in MANIFEST.", ["FMT-MANIFEST-8"], c, manifest_cats,
              ["E-MANIFEST-UNLISTED"])
    t.invalid("manifest/listed-file-missing", "MANIFEST lists model/ghost.bin, which is neither in the zip nor in LINKS.", ["FMT-MANIFEST-9"],
              with_manifest(manifest_bytes({**entries, "model/ghost.bin": SHA_A})), manifest_cats, ["E-MANIFEST-MISSING-FILE"])
    for path, reqs in [("model/model.pt", ["FMT-MANIFEST-10", "FMT-READ-3"]), ("carton.toml", ["FMT-MANIFEST-10", "FMT-READ-2"]),
                       ("tensor_data/index.toml", ["FMT-MANIFEST-10", "FMT-READ-2"]),
                       ("tensor_data/tensor_0.bin", ["FMT-MANIFEST-10"]), ("misc/arch.png", ["FMT-MANIFEST-10"])]:
        slug = path.replace("/", "-").replace("_", "-").replace(".", "-")
        t.invalid(f"manifest/hash-mismatch-{slug}", f"{path} does not have the sha256 MANIFEST lists.", reqs,
                  with_manifest(manifest_bytes({**entries, path: SHA_A})), manifest_cats, ["E-MANIFEST-MISMATCH"])


def _without(c: CaseArchive, name: str) -> bytes:
    ms = [m for m in c.zip_members() if m.name != name]
    if name != "MANIFEST":
        entries = {m.name: sha256(m.plain or b"") for m in ms if m.name != "MANIFEST"}
        ms[-1] = zc.member("MANIFEST", manifest_bytes(entries), external_attr=FILE_ATTR, version_made_by=VERSION_MADE_BY)
    return zc.build(ms)


def _toml(t: Inspect) -> None:
    toml_cats = ["toml"]
    base = standard()
    t.invalid("toml/carton-toml-syntax", "carton.toml has an unterminated array.", ["FMT-TOML-1"],
              with_text(base, "spec_version = 1", "spec_version = ["), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/carton-toml-key-defined-twice", "carton.toml defines spec_version twice.", ["FMT-TOML-1"],
              with_text(base, "spec_version = 1", "spec_version = 1\nspec_version = 1"), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/carton-toml-table-defined-twice", "carton.toml has two [runner] tables.", ["FMT-TOML-1"],
              with_text(base, "[runner.opts]", "[runner]\n\n[runner.opts]"), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/carton-toml-not-utf8", "carton.toml ends with a comment holding the byte 0xE9.", ["FMT-TOML-1"],
              _raw_toml(base.copy(), base.carton_toml() + b"# caf\xe9\n"), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/carton-toml-byte-order-mark", "carton.toml starts with a UTF-8 byte-order mark.", ["FMT-TOML-2"],
              _raw_toml(base.copy(), b"\xef\xbb\xbf" + base.carton_toml()), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/carton-toml-control-character", "A carton.toml string holds a raw escape character.", ["FMT-TOML-1"],
              with_text(base, '"doubler"', '"doub\x1bler"'), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/index-toml-syntax", "tensor_data/index.toml has an unterminated table header.", ["FMT-TOML-1"],
              with_text(base, "[[tensor]]", "[[tensor]", "tensor_data/index.toml"), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/index-toml-byte-order-mark", "tensor_data/index.toml starts with a byte-order mark.", ["FMT-TOML-2"],
              _raw_index(base.copy(), b"\xef\xbb\xbf" + (base.index_toml() or b"")), toml_cats, ["E-TOML-SYNTAX"])
    t.invalid("toml/string-tensor-syntax", "A string tensor file is not valid TOML.", ["FMT-TOML-1", "FMT-TENSOR-11"],
              with_files(base, {"tensor_data/tensor_2.toml": b"data = [\n"}), toml_cats + ["tensor"], ["E-TOML-SYNTAX", "E-TENSOR-STRING"])
    # TOML 1.0 constructs a reader must accept
    c = base.copy()
    c.toml_text = (
        "# comment\n"
        "spec_version = 0x1\n"
        "model_name = 'doubler'\n"
        'short_description = """\\\n    Doubles its input"""\n'
        "input = [{ name = \"x\", dtype = \"float32\", shape = [\"batch\", 3] }]\n"
        "output = [{ name = \"y\", dtype = 'float32', shape = [ \"batch\" , 3 , ] }]\n\n"
        "[[self_test]]\n"
        "name = \"t\"\n"
        "inputs.x = \"@tensor_data/_tensor_0\"\n"
        "expected_out = { y = \"@tensor_data/_tensor_1\" }\n\n"
        "[[example]]\n"
        "inputs = { s = \"@tensor_data/_tensor_2\", x = \"@tensor_data/_tensor_3\" }\n"
        "sample_out.\"y\" = '@misc/_example_misc_file_0'\n\n"
        "[runner]\n"
        "runner_name = \"torch\\u0073cript\"\n"
        "required_framework_version = \"=2.13\"\n"
        "runner_compat_version = +1\n"
        "opts.num_threads = 0o1\n"
    )
    t.valid("toml/toml-1.0-constructs", "carton.toml uses hex and octal integers, literal and multi-line strings, dotted keys and inline tables.",
            ["FMT-TOML-1"], c)
    c = minimal()
    c.doc["runner"]["opts"] = {"ratio": 4.0, "count": 4}
    t.valid("toml/float-stays-float", "The runner option 4.0 reads as a float, 4 as an integer.", ["FMT-TOML-5", "FMT-RUNNER-6"], c)
    c = base.copy()
    c.doc["future_top_level"] = {"nested": [1, 2]}
    c.doc["runner"]["future_runner_key"] = "x"
    c.doc["input"][0]["future_spec_key"] = True
    c.doc["self_test"][0]["future_test_key"] = 1.5
    c.index[0]["future_index_key"] = "y"
    t.valid("toml/unknown-keys-ignored", "Unknown keys at the top level, in runner, in a tensor spec, in a self test and in index.toml.",
            ["FMT-TOML-4"], c, may_warn=["W-UNKNOWN-KEY"])
    schema_cats = ["schema"]
    for name, old, new, reqs, desc in [
        ("spec-version-float", "spec_version = 1", "spec_version = 1.0", ["FMT-TOML-5", "FMT-META-2"],
         "spec_version = 1.0 is a float, not an integer."),
        ("spec-version-boolean", "spec_version = 1", "spec_version = true", ["FMT-TOML-5", "FMT-META-2"], "spec_version = true is not an integer."),
        ("model-name-date", 'model_name = "doubler"', "model_name = 2024-01-01", ["FMT-TOML-5", "FMT-META-4"], "model_name is a TOML date."),
        ("framework-version-datetime", 'required_framework_version = "=2.13"', "required_framework_version = 1979-05-27T07:32:00Z",
         ["FMT-TOML-5", "FMT-RUNNER-2"], "required_framework_version is a TOML date-time."),
        ("compat-version-float", "runner_compat_version = 1", "runner_compat_version = 1.0", ["FMT-TOML-5", "FMT-RUNNER-4"],
         "runner_compat_version = 1.0 is a float."),
    ]:
        t.invalid(f"schema/{name}", desc, reqs, with_text(base, old, new), schema_cats, ["E-SCHEMA"])


def _raw_toml(c: CaseArchive, data: bytes) -> CaseArchive:
    return _RawCarton.of(c, "carton.toml", data)


def _raw_index(c: CaseArchive, data: bytes) -> CaseArchive:
    return _RawCarton.of(c, "tensor_data/index.toml", data)


class _RawCarton(CaseArchive):
    """A carton whose carton.toml or index.toml are given as raw bytes (not UTF-8 text)."""

    raw: dict[str, bytes]

    @classmethod
    def of(cls, c: CaseArchive, member: str, data: bytes) -> "_RawCarton":
        new = cls(**{f: getattr(c, f) for f in c.__dataclass_fields__})
        new.raw = {member: data}
        return new

    def content(self) -> dict[str, bytes]:
        out = super().content()
        out.update(self.raw)
        return out


def _meta(t: Inspect) -> None:
    schema_cats = ["schema"]
    base = standard()

    def doc_case(name: str, desc: str, reqs: list[str], mutate: Any, cats: list[str] = schema_cats, codes: list[str] | None = None) -> None:
        c = base.copy()
        mutate(c.doc)
        t.invalid(f"{cats[0]}/{name}", desc, reqs, c, cats, codes or ["E-SCHEMA"])

    def setk(path: str, value: Any) -> Any:
        def mutate(doc: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            node: Any = doc
            for p in parents:
                node = node[int(p)] if p.isdigit() else node[p]
            if value is _DELETE:
                del node[int(last) if last.isdigit() else last]
            else:
                node[int(last) if last.isdigit() else last] = value
        return mutate

    doc_case("spec-version-missing", "carton.toml has no spec_version.", ["FMT-META-2"], setk("spec_version", _DELETE))
    doc_case("spec-version-string", "spec_version is the string \"1\".", ["FMT-META-2"], setk("spec_version", "1"))
    doc_case("spec-version-negative", "spec_version is -1.", ["FMT-META-2"], setk("spec_version", -1), schema_cats, ["E-SCHEMA", "E-SPEC-VERSION"])
    doc_case("spec-version-2", "spec_version is 2.", ["FMT-META-3"], setk("spec_version", 2), schema_cats, ["E-SPEC-VERSION"])
    doc_case("spec-version-0", "spec_version is 0.", ["FMT-META-3"], setk("spec_version", 0), schema_cats, ["E-SPEC-VERSION"])
    doc_case("model-name-integer", "model_name is an integer.", ["FMT-META-4"], setk("model_name", 7))
    doc_case("license-array", "license is an array of strings.", ["FMT-META-4"], setk("license", ["MIT"]))
    doc_case("homepage-boolean", "homepage is a boolean.", ["FMT-META-4"], setk("homepage", True))
    doc_case("model-description-table", "model_description is a table.", ["FMT-META-4"], setk("model_description", {"text": "x"}))
    doc_case("repository-float", "repository is a float.", ["FMT-META-4"], setk("repository", 1.5))
    c = base.copy()
    c.doc["short_description"] = "x" * 101
    t.invalid("metadata/short-description-too-long", "A short_description of 101 characters.", ["FMT-META-5"], c,
              ["schema"], ["E-SCHEMA"])
    doc_case("required-platforms-string", "required_platforms is a string, not an array.", ["FMT-META-6"],
             setk("required_platforms", "x86_64-unknown-linux-gnu"))
    doc_case("required-platforms-integer-element", "required_platforms holds an integer.", ["FMT-META-6"], setk("required_platforms", [64]))
    doc_case("required-platforms-unknown-architecture", "required_platforms names the architecture pdp11.", ["FMT-META-6"],
             setk("required_platforms", ["pdp11-unknown-linux-gnu"]))
    doc_case("required-platforms-architecture-case", "required_platforms names X86_64 (architectures are case-sensitive).",
             ["FMT-META-6"], setk("required_platforms", ["X86_64-unknown-linux-gnu"]))
    doc_case("input-not-array", "input is a string.", ["FMT-META-7"], setk("input", "x"))
    doc_case("input-name-missing", "An input spec has no name.", ["FMT-META-7"], setk("input.0.name", _DELETE))
    doc_case("input-name-integer", "An input spec's name is an integer.", ["FMT-META-7"], setk("input.0.name", 1))
    doc_case("output-description-integer", "An output spec's description is an integer.", ["FMT-META-7"], setk("output.0.description", 3))
    doc_case("input-internal-name-array", "An input spec's internal_name is an array.", ["FMT-META-7"], setk("input.0.internal_name", ["a"]))
    doc_case("input-dtype-missing", "An input spec has no dtype.", ["FMT-META-8"], setk("input.0.dtype", _DELETE))
    for dtype, slug in [("float16", "float16"), ("bfloat16", "bfloat16"), ("bool", "bool"), ("Float32", "capitalised"),
                        ("nested", "nested"), ("int128", "int128")]:
        doc_case(f"input-dtype-{slug}", f"An input spec's dtype is {dtype}.", ["FMT-META-8"], setk("input.0.dtype", dtype))
    doc_case("input-shape-missing", "An input spec has no shape.", ["FMT-META-9"], setk("input.0.shape", _DELETE))
    doc_case("input-shape-integer", "An input spec's shape is the integer 3.", ["FMT-META-9"], setk("input.0.shape", 3))
    doc_case("input-shape-table", "An input spec's shape is a table.", ["FMT-META-9"], setk("input.0.shape", {"dims": [3]}))
    doc_case("input-dimension-negative", "An input spec's dimension is -1.", ["FMT-META-10"], setk("input.0.shape", ["batch", -1]))
    doc_case("input-dimension-float", "An input spec's dimension is 1.5.", ["FMT-META-10"], setk("input.0.shape", [1.5]))
    doc_case("input-dimension-boolean", "An input spec's dimension is true.", ["FMT-META-10"], setk("input.0.shape", [True]))
    doc_case("input-dimension-array", "An input spec's dimension is an array.", ["FMT-META-10"], setk("input.0.shape", [[3]]))
    doc_case("self-test-inputs-missing", "A self test has no inputs table.", ["FMT-META-13"], setk("self_test.0.inputs", _DELETE))
    doc_case("self-test-value-integer", "A self-test input value is an integer.", ["FMT-META-13"], setk("self_test.0.inputs.x", 0))
    doc_case("self-test-misc-reference", "A self-test input refers to @misc/ (only @tensor_data/ is allowed).", ["FMT-META-13"],
             setk("self_test.0.inputs.x", "@misc/arch.png"))
    doc_case("self-test-expected-out-string", "A self test's expected_out is a string.", ["FMT-META-13"],
             setk("self_test.0.expected_out", "@tensor_data/_tensor_1"))
    doc_case("self-test-name-integer", "A self test's name is an integer.", ["FMT-META-13"], setk("self_test.0.name", 1))
    doc_case("self-test-not-array", "self_test is a table, not an array of tables.", ["FMT-META-13"],
             setk("self_test", {"inputs": {"x": "@tensor_data/_tensor_0"}}))
    doc_case("example-sample-out-missing", "An example has no sample_out table.", ["FMT-META-14"], setk("example.0.sample_out", _DELETE))
    doc_case("example-inputs-missing", "An example has no inputs table.", ["FMT-META-14"], setk("example.0.inputs", _DELETE))
    doc_case("example-reference-without-prefix", "An example value lacks the @ prefix.", ["FMT-META-14"],
             setk("example.0.inputs.x", "tensor_data/_tensor_3"))
    doc_case("example-reference-prefix-case", "An example value starts with @Misc/ (prefixes are case-sensitive).", ["FMT-META-14"],
             setk("example.0.sample_out.y", "@Misc/_example_misc_file_0"))
    doc_case("example-description-boolean", "An example's description is a boolean.", ["FMT-META-14"], setk("example.0.description", False))
    ref_cats = ["reference"]
    doc_case("dangling-tensor-reference", "A self test refers to @tensor_data/nope, which index.toml does not have.", ["FMT-META-15"],
             setk("self_test.0.inputs.x", "@tensor_data/nope"), ref_cats, ["E-REF-DANGLING"])
    doc_case("dangling-misc-reference", "An example refers to @misc/nope.png, which MANIFEST does not list.", ["FMT-META-15"],
             setk("example.0.sample_out.y", "@misc/nope.png"), ref_cats, ["E-REF-DANGLING"])
    doc_case("tensor-reference-case", "A reference names _Tensor_0 where index.toml has _tensor_0 (names are exact).", ["FMT-META-15"],
             setk("self_test.0.inputs.x", "@tensor_data/_Tensor_0"), ref_cats, ["E-REF-DANGLING"])
    doc_case("misc-reference-to-directory", "An example refers to @misc/ itself.", ["FMT-META-15"],
             setk("example.0.sample_out.y", "@misc/"), ref_cats, ["E-REF-DANGLING"])
    c = base.copy()
    c.index.append({"name": "nested", "dtype": "nested", "inner": ["_tensor_0"]})
    t.invalid("reference/inner-tensor-reference", "A self test refers to a tensor that is the inner tensor of a nested one.",
              ["FMT-META-15", "FMT-TENSOR-12"], c, ref_cats, ["E-REF-DANGLING"])
    c = minimal()
    c.files["misc/arch.png"] = b"png"
    c.doc["model_description"] = "![figure](@misc/missing.png) is text, not a reference"
    t.valid("metadata/description-references-are-text", "model_description mentions @misc/missing.png: descriptions are never resolved.",
            ["FMT-META-15"], c)


_DELETE = object()


def _runner(t: Inspect) -> None:
    schema_cats = ["schema"]
    base = minimal()

    def rcase(name: str, desc: str, reqs: list[str], runner_doc: Any, cats: list[str] = schema_cats, codes: list[str] | None = None) -> None:
        c = base.copy()
        if runner_doc is _DELETE:
            del c.doc["runner"]
        else:
            c.doc["runner"] = runner_doc
        t.invalid(f"{cats[0]}/{name}", desc, reqs, c, cats, codes or ["E-SCHEMA"])

    rcase("runner-missing", "carton.toml has no runner table.", ["FMT-RUNNER-1"], _DELETE)
    rcase("runner-string", "runner is a string.", ["FMT-RUNNER-1"], "torchscript")
    rcase("runner-name-missing", "runner has no runner_name.", ["FMT-RUNNER-2"], {"required_framework_version": "=2.13", "runner_compat_version": 1})
    rcase("runner-name-integer", "runner_name is an integer.", ["FMT-RUNNER-2"], runner(runner_name=1))
    rcase("framework-version-missing", "runner has no required_framework_version.", ["FMT-RUNNER-2"],
          {"runner_name": "torchscript", "runner_compat_version": 1})
    rcase("framework-version-array", "required_framework_version is an array.", ["FMT-RUNNER-2"], runner(required_framework_version=["=2.13"]))
    versionreq_cats = ["versionreq"]
    for name, req in [("operator-typo", "=>2.13"), ("hyphen-range", "1.0 - 2.0"), ("logical-or", ">=1 || <0.5"), ("v-prefix", "v2.13"),
                      ("empty", ""), ("pep440", "==2.13")]:
        rcase(f"framework-version-{name}", f"required_framework_version is {req!r}.", ["FMT-RUNNER-3"],
              runner(required_framework_version=req), versionreq_cats, ["E-VERSIONREQ-INVALID"])
    rcase("compat-version-negative", "runner_compat_version is -1.", ["FMT-RUNNER-4"], runner(runner_compat_version=-1))
    rcase("compat-version-string", "runner_compat_version is the string \"1\".", ["FMT-RUNNER-4"], runner(runner_compat_version="1"))
    c = base.copy()
    del c.doc["runner"]["runner_compat_version"]
    t.invalid("runner/compat-version-missing", "runner has no runner_compat_version, which writers always write.",
              ["FMT-RUNNER-5", "FMT-READ-6"], c, ["schema"], ["E-SCHEMA"])
    rcase("opts-string", "runner.opts is a string.", ["FMT-RUNNER-6"], runner(opts="num_threads=1"))
    rcase("opts-array-value", "A runner option is an array.", ["FMT-RUNNER-6"], runner(opts={"num_threads": [1]}))
    rcase("opts-table-value", "A runner option is a table.", ["FMT-RUNNER-6"], runner(opts={"threads": {"intra": 1}}))
    c = base.copy()
    c.doc["runner"]["opts"] = {"num_threads": 1}
    t.invalid("schema/opts-date-value", "A runner option is a TOML date.", ["FMT-RUNNER-6", "FMT-TOML-5"],
              with_text(c, "num_threads = 1", "num_threads = 2024-01-01"), schema_cats, ["E-SCHEMA"])


def _tensors(t: Inspect) -> None:
    base = standard()
    tensor_cats = ["tensor"]
    c = standard()
    c.index_text = (c.index_toml() or b"").decode().replace("inner = []\n", "")
    t.valid("tensor/index-without-inner", "index.toml entries without inner keys.", ["FMT-TENSOR-1"], c)
    c = minimal()
    c.index_text = "# no tensors, no tensor key\n"
    t.valid("tensor/index-without-tensor-key", "An index.toml without a tensor key has no tensors.", ["FMT-TENSOR-1"], c)
    c = minimal()
    c.index = None
    t.invalid("tensor/index-missing", "No tensor_data/index.toml, although nothing refers to a tensor: writers always write it.",
              ["FMT-TENSOR-2"], c, ["structure"], ["E-STRUCTURE-MISSING"])
    c = base.copy()
    c.index = None
    c.files = {k: v for k, v in c.files.items() if not k.startswith("tensor_data/")}
    t.invalid("reference/index-missing-but-referenced", "No tensor_data/index.toml, but a self test refers to a tensor.",
              ["FMT-TENSOR-2", "FMT-META-15"], c, ["reference"], ["E-REF-DANGLING"])
    schema_cats = ["schema"]
    for name, desc, _text_old, text_new in [
        ("index-tensor-table", "index.toml's tensor is a table, not an array of tables.", None, "[tensor]\nname = \"x\"\n"),
        ("index-tensor-string", "index.toml's tensor is a string.", None, "tensor = \"none\"\n"),
    ]:
        c = base.copy()
        c.index_text = text_new
        t.invalid(f"schema/{name}", desc, ["FMT-TENSOR-3"], c, schema_cats, ["E-SCHEMA"])

    def entry_case(name: str, desc: str, reqs: list[str], k: int, key: str, value: Any, cats: list[str], codes: list[str]) -> None:
        c = base.copy()
        if value is _DELETE:
            del c.index[k][key]
        else:
            c.index[k][key] = value
        t.invalid(name, desc, reqs, c, cats, codes)

    entry_case("schema/index-name-integer", "An index entry's name is an integer.", ["FMT-TENSOR-3"], 0, "name", 0, schema_cats, ["E-SCHEMA"])
    entry_case("schema/index-name-missing", "An index entry has no name.", ["FMT-TENSOR-3"], 2, "name", _DELETE, schema_cats, ["E-SCHEMA"])
    entry_case("schema/index-dtype-integer", "An index entry's dtype is an integer.", ["FMT-TENSOR-3"], 0, "dtype", 4, schema_cats, ["E-SCHEMA"])
    entry_case("schema/index-shape-string", "An index entry's shape is a string.", ["FMT-TENSOR-3"], 0, "shape", "2x3", schema_cats, ["E-SCHEMA"])
    entry_case("schema/index-shape-symbol", "An index entry's shape holds a symbol.", ["FMT-TENSOR-3"], 0, "shape", ["batch", 3],
               schema_cats + tensor_cats, ["E-SCHEMA", "E-TENSOR-SHAPE"])
    entry_case("schema/index-file-integer", "An index entry's file is an integer.", ["FMT-TENSOR-3"], 0, "file", 0, schema_cats, ["E-SCHEMA"])
    entry_case("schema/index-inner-string", "An index entry's inner is a string.", ["FMT-TENSOR-3"], 0, "inner", "x", schema_cats, ["E-SCHEMA"])
    c = base.copy()
    c.index[1]["name"] = "_tensor_0"
    c.doc["self_test"][0]["expected_out"]["y"] = "@tensor_data/_tensor_0"
    t.invalid("tensor/duplicate-name", "Two index entries are named _tensor_0.", ["FMT-TENSOR-4"], c, tensor_cats, ["E-TENSOR-DUPLICATE-NAME"])
    for dtype, slug in [("float16", "float16"), ("FLOAT32", "uppercase"), ("bool", "bool"), ("complex64", "complex64"), ("str", "str")]:
        entry_case(f"tensor/dtype-{slug}", f"An index entry's dtype is {dtype}.", ["FMT-TENSOR-5"], 0, "dtype", dtype, tensor_cats,
                   ["E-TENSOR-DTYPE"])
    entry_case("tensor/shape-negative", "An index entry's dimension is -1.", ["FMT-TENSOR-6"], 0, "shape", [-1, 3], tensor_cats + schema_cats,
               ["E-TENSOR-SHAPE", "E-SCHEMA"])
    entry_case("tensor/shape-missing", "A numeric index entry has no shape.", ["FMT-TENSOR-6"], 0, "shape", _DELETE, tensor_cats, ["E-TENSOR-SHAPE"])
    entry_case("tensor/file-missing-key", "A numeric index entry has no file.", ["FMT-TENSOR-7"], 0, "file", _DELETE, tensor_cats,
               ["E-TENSOR-FILE-MISSING"])
    for name, file, desc in [("parent-component", "../carton.toml", "A tensor file ../carton.toml leaves tensor_data/."),
                             ("absolute", "/tensor_0.bin", "A tensor file name starts with / (tensor_data//tensor_0.bin)."),
                             ("backslash", "sub\\tensor_0.bin", "A tensor file name holds a backslash."),
                             ("empty", "", "A tensor file name is empty (tensor_data/ names a directory).")]:
        entry_case(f"path/tensor-file-{name}", desc, ["FMT-TENSOR-8"], 0, "file", file, ["path"], ["E-PATH-UNSAFE"])
    entry_case("tensor/file-not-in-manifest", "A tensor's file tensor_9.bin is not in MANIFEST.", ["FMT-TENSOR-9"], 0, "file", "tensor_9.bin",
               tensor_cats, ["E-TENSOR-FILE-MISSING"])
    c = minimal()
    c.add_tensor("scalar", np.float32(3.5))
    c.add_tensor("empty", np.zeros((0, 4), np.int32))
    c.add_tensor("string-scalar", np.array("só"))
    c.add_tensor("string-empty", np.array([], dtype=str).reshape(2, 0))
    c.doc["self_test"] = [{"inputs": {k: f"@tensor_data/{k}" for k in ("scalar", "empty", "string-scalar", "string-empty")}}]
    t.valid("tensor/scalars-and-empty", "A scalar holds one element and a zero dimension none, for numbers and strings.",
            ["FMT-TENSOR-6", "FMT-TENSOR-10", "FMT-TENSOR-11"], c)
    c = minimal()
    rng = np.random.default_rng(1)
    refs = {}
    for dtype in ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        if dtype.startswith("float"):
            value = rng.standard_normal((2, 3)).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = np.array([[info.min, info.max, 0], [1, info.max - 1, info.min + 1]], dtype=dtype)
        refs[dtype] = c.add_tensor(f"t_{dtype}", value)
    refs["special"] = c.add_tensor("t_special", np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4028235e38], np.float32))
    refs["strings"] = c.add_tensor("t_strings", np.array([["Hello 💖", "tab\there"], ["'quote' \"this\"", ""], ["back\\slash", "ü"]]))
    c.doc["self_test"] = [{"name": "every dtype", "inputs": refs}]
    t.valid("tensor/every-dtype", "A tensor of every dtype with extreme values, NaN and infinities, and a 3x2 string tensor.",
            ["FMT-TENSOR-5", "FMT-TENSOR-10", "FMT-TENSOR-11"], c)
    c = base.copy()
    c.files["tensor_data/tensor_0.bin"] = c.files["tensor_data/tensor_0.bin"][:-1]
    t.invalid("tensor/numeric-file-one-byte-short", "A float32 tensor file lacks one byte.", ["FMT-TENSOR-10"], c, tensor_cats, ["E-TENSOR-SIZE"])
    c = base.copy()
    c.files["tensor_data/tensor_0.bin"] += b"\x00\x00"
    t.invalid("tensor/numeric-file-partial-element", "A float32 tensor file has two extra bytes (a partial element).", ["FMT-TENSOR-10"],
              c, tensor_cats, ["E-TENSOR-SIZE"])
    c = base.copy()
    c.files["tensor_data/tensor_0.bin"] += bytes(4)
    t.invalid("tensor/numeric-file-extra-element", "A float32 tensor file holds one element more than its shape.", ["FMT-TENSOR-10"],
              c, tensor_cats, ["E-TENSOR-SIZE"])
    entry_case("tensor/numeric-shape-larger-than-file", "An index entry's shape [2, 4] needs more bytes than its file holds.",
               ["FMT-TENSOR-10"], 0, "shape", [2, 4], tensor_cats, ["E-TENSOR-SIZE"])
    for name, data, desc in [
        ("not-strings", b"data = [1, 2]\n", "A string tensor file's data holds integers."),
        ("data-missing", b"values = [\"a\", \"b\"]\n", "A string tensor file has no data key."),
        ("data-string", b"data = \"ab\"\n", "A string tensor file's data is a string, not an array."),
        ("too-few-elements", b"data = [\"a\"]\n", "A string tensor file holds one element where the shape needs two."),
        ("too-many-elements", b"data = [\"a\", \"b\", \"c\"]\n", "A string tensor file holds three elements where the shape needs two."),
        ("nested-arrays", b"data = [[\"a\"], [\"b\"]]\n", "A string tensor file's data is nested (values are flat, in C order)."),
    ]:
        t.invalid(f"tensor/string-file-{name}", desc, ["FMT-TENSOR-11"], with_files(base, {"tensor_data/tensor_2.toml": data}), tensor_cats,
                  ["E-TENSOR-STRING"])
    c = minimal()
    n_ref = c.add_nested("ragged", [np.arange(3, dtype=np.float32), np.array(["a", "b"]), np.zeros((2, 2), np.int64)])
    c.doc["self_test"] = [{"inputs": {"r": n_ref}}]
    t.valid("tensor/nested", "A nested tensor of three inner tensors of different dtypes and shapes.",
            ["FMT-TENSOR-12", "FMT-TENSOR-13", "FMT-WRITE-7"], c)
    c = minimal()
    x = c.add_tensor("_tensor_0", np.arange(3, dtype=np.float32))
    c.index.append({"name": "empty-nested", "dtype": "nested", "inner": []})
    c.values["empty-nested"] = []
    c.doc["self_test"] = [{"inputs": {"x": x}}]
    t.valid("tensor/nested-unreferenced-and-empty", "An unreferenced nested tensor with no inner tensors.", ["FMT-TENSOR-12"], c)

    def nested_case(name: str, desc: str, reqs: list[str], entries: list[dict[str, Any]]) -> None:
        c = base.copy()
        c.index.extend(entries)
        t.invalid(f"tensor/{name}", desc, reqs, c, tensor_cats, ["E-TENSOR-NESTED"])

    nested_case("nested-inner-missing", "A nested tensor's inner names an entry that does not exist.", ["FMT-TENSOR-12"],
                [{"name": "n", "dtype": "nested", "inner": ["nope"]}])
    nested_case("nested-inner-nested", "A nested tensor's inner names another nested tensor.", ["FMT-TENSOR-12"],
                [{"name": "n1", "dtype": "nested", "inner": ["n2"]}, {"name": "n2", "dtype": "nested", "inner": []}])
    nested_case("nested-inner-self", "A nested tensor lists itself as inner.", ["FMT-TENSOR-12"],
                [{"name": "n", "dtype": "nested", "inner": ["n"]}])
    c = base.copy()
    c.add_tensor("i", np.ones(2, np.float32))
    c.index.extend([{"name": "n1", "dtype": "nested", "inner": ["i"]}, {"name": "n2", "dtype": "nested", "inner": ["i"]}])
    t.invalid("tensor/nested-inner-shared", "Two nested tensors share an inner tensor.", ["FMT-TENSOR-13"], c, tensor_cats, ["E-TENSOR-NESTED"])
    c = base.copy()
    c.add_tensor("i", np.ones(2, np.float32))
    c.index.append({"name": "n", "dtype": "nested", "inner": ["i", "i"]})
    t.invalid("tensor/nested-inner-twice", "A nested tensor lists the same inner tensor twice.", ["FMT-TENSOR-13"], c, tensor_cats,
              ["E-TENSOR-NESTED"])


def _links(t: Inspect) -> None:
    links_cats = ["links"]
    c = minimal()
    c.files["model/weights.bin"] = b"weights " * 64
    sha = sha256(c.files["model/weights.bin"])
    linked = c.copy()
    linked.omit = {"model/weights.bin"}
    linked.links = links_doc({sha: ["https://example.com/weights.bin", DEAD_URL]})
    t.valid("links/model-file-linked", "model/weights.bin lives only behind LINKS; metadata needs no fetch; its hash stays unverified.",
            ["FMT-LINKS-1", "FMT-LINKS-2", "FMT-LINKS-3", "FMT-LINKS-5", "FMT-LINKS-7", "FMT-LINKS-12", "FMT-MANIFEST-9", "FMT-READ-1", "FMT-READ-4"],
            linked, warnings=["W-HASHES-NOT-VERIFIED"])
    both = c.copy()
    both.links = links_doc({sha: [DEAD_URL]})
    t.valid("links/member-in-zip-is-not-fetched", "A file in the zip whose hash LINKS also lists (unreachable URL) is read from the zip.",
            ["FMT-LINKS-8", "FMT-LINKS-1"], both)
    for name, version, desc in [("version-2", 2, "LINKS version is 2."), ("version-missing", None, "LINKS has no version.")]:
        d = linked.copy()
        d.links = links_doc({sha: ["https://example.com/weights.bin"]}, version=version)
        t.invalid(f"links/{name}", desc, ["FMT-LINKS-4"], d, links_cats, ["E-LINKS-INVALID"])
    d = both.copy()
    d.links = links_doc({sha: [DEAD_URL], SHA_A: ["https://example.com/other.bin"]})
    t.invalid("links/unused-hash", "LINKS lists a hash no MANIFEST line has.", ["FMT-LINKS-6"], d, links_cats, ["E-LINKS-INVALID"])

    def bad(name: str, desc: str, reqs: list[str], links: bytes, cats: list[str] = links_cats, codes: list[str] | None = None) -> None:
        d = linked.copy()
        d.links = links
        t.invalid(f"links/{name}", desc, reqs, d, cats, codes or ["E-LINKS-INVALID"])

    bad("urls-missing", "LINKS has no urls table.", ["FMT-LINKS-2"], b"version = 1\n")
    bad("urls-not-table", "LINKS urls is an array.", ["FMT-LINKS-2"], b"version = 1\nurls = [\"https://example.com/w\"]\n")
    bad("url-list-empty", "A LINKS hash has an empty URL list.", ["FMT-LINKS-2"], links_doc({sha: []}))
    bad("url-list-string", "A LINKS hash maps to a string, not an array.", ["FMT-LINKS-2"],
        f'version = 1\n\n[urls]\n{sha} = "https://example.com/weights.bin"\n'.encode())
    bad("url-integer", "A LINKS URL is an integer.", ["FMT-LINKS-2"], f"version = 1\n\n[urls]\n{sha} = [1]\n".encode())
    bad("key-short", "A LINKS key has 63 hex digits.", ["FMT-LINKS-3"], links_doc({sha: ["https://example.com/w"], sha[:-1]: ["https://example.com/w"]}))
    bad("key-uppercase", "A LINKS key is uppercase hexadecimal.", ["FMT-LINKS-3"], links_doc({sha.upper(): ["https://example.com/w"]}))
    bad("key-not-hash", "A LINKS key is a path, not a sha256.", ["FMT-LINKS-3"],
        links_doc({sha: ["https://example.com/w"], "model/weights.bin": ["https://example.com/w"]}))
    for name, url in [("ftp", "ftp://example.com/weights.bin"), ("relative", "/weights.bin"), ("no-host", "https://"),
                      ("space", "https://example.com/my weights.bin"), ("file", "file:///tmp/weights.bin"),
                      ("control-character", "https://example.com/\x07"), ("no-scheme", "example.com/weights.bin")]:
        bad(f"url-{name}", f"A LINKS URL is {url!r}.", ["FMT-LINKS-5"], links_doc({sha: [url]}), links_cats, ["E-LINKS-URL"])
    bad("syntax", "LINKS is not valid TOML.", ["FMT-LINKS-2", "FMT-TOML-1"], b"version = 1\n[urls\n", ["toml"], ["E-TOML-SYNTAX"])
    # linked content that is needed and cannot be had
    d = standard()
    d.omit = {"tensor_data/tensor_0.bin"}
    d.links = links_doc({sha256(d.files["tensor_data/tensor_0.bin"]): [DEAD_URL]})
    t.invalid("links/tensor-behind-links-unreachable", "A self-test tensor lives only behind an unreachable LINKS URL.",
              ["FMT-LINKS-8", "FMT-LINKS-12"], d, links_cats, ["E-LINKS-NOT-FETCHED", "E-LINKS-FETCH"])
    _fetch(t)


def _fetch(t: Inspect) -> None:
    """Cases that need the harness's loopback HTTP server (feature ``fetch``)."""
    import gzip

    def served(case_id: str, name: str) -> str:
        return f"{LOOPBACK_BASE}{case_id}/{name}"

    def http(status: int = 200, **headers: str) -> bytes:
        return json_bytes({"status": status, "headers": headers})

    def linked_tensor(seed: int) -> tuple[CaseArchive, bytes]:
        c = minimal()
        value = np.arange(64, dtype=np.float32) * np.float32(seed) + np.float32(0.5)
        ref = c.add_tensor("t", value)
        c.doc["self_test"] = [{"inputs": {"t": ref}}]
        c.omit = {"tensor_data/tensor_0.bin"}
        return c, c.files["tensor_data/tensor_0.bin"]

    def encoded(data: bytes, encoding: str) -> bytes:
        if encoding == "gzip":
            return gzip.compress(data, compresslevel=6, mtime=0)
        if encoding == "deflate":
            return zlib.compress(data, 6)
        if encoding == "zstd":
            return zc.compress(data, zc.ZSTD)
        return data

    for k, (encoding, reqs) in enumerate([("identity", ["FMT-LINKS-8", "FMT-LINKS-9", "FMT-READ-2"]), ("gzip", ["FMT-LINKS-9"]),
                                          ("deflate", ["FMT-LINKS-9"]), ("zstd", ["FMT-LINKS-9"])]):
        name = f"links/fetch-{encoding}"
        c, data = linked_tensor(k + 1)
        headers = {} if encoding == "identity" else {"Content-Encoding": encoding}
        c.links = links_doc({sha256(data): [served(f"inspect/valid/{name}", "tensor.bin")]})
        t.valid(name, f"A self-test tensor is fetched through LINKS from the harness's server ({encoding} Content-Encoding).", reqs, c,
                may_warn=["W-HASHES-NOT-VERIFIED"], requires=["fetch"],
                extra={"tensor.bin": encoded(data, encoding), "tensor.bin.http.json": http(**headers)})
    name = "links/fetch-second-url"
    c, data = linked_tensor(7)
    c.links = links_doc({sha256(data): [served(f"inspect/valid/{name}", "missing.bin"), served(f"inspect/valid/{name}", "tensor.bin")]})
    t.valid(name, "The first LINKS URL answers 404, the second gives the file: URLs are tried in order.", ["FMT-LINKS-8"], c,
            may_warn=["W-HASHES-NOT-VERIFIED"], requires=["fetch"],
            extra={"missing.bin": b"not found\n", "missing.bin.http.json": http(404), "tensor.bin": data})
    # shrink may leave out any file whose hash LINKS lists, not only model files (FMT-LINKS-7)
    name = "links/fetch-misc-file"
    c = with_members(minimal(), {"misc/arch.png": b"png bytes behind LINKS"})
    c.omit = {"misc/arch.png"}
    c.links = links_doc({sha256(b"png bytes behind LINKS"): [served(f"inspect/valid/{name}", "arch.png")]})
    t.valid(name, "A misc file lives only behind LINKS (as shrink leaves it); it is fetched and verified.",
            ["FMT-LINKS-7", "FMT-LINKS-8", "FMT-MISC-1"], c, may_warn=["W-HASHES-NOT-VERIFIED"], requires=["fetch"],
            extra={"arch.png": b"png bytes behind LINKS"})
    name = "links/fetch-carton-toml"
    c = minimal()
    toml_bytes = c.content()["carton.toml"]
    c.omit = {"carton.toml"}
    c.links = links_doc({sha256(toml_bytes): [served(f"inspect/valid/{name}", "carton.toml")]})
    t.valid(name, "carton.toml lives only behind LINKS (as shrink may leave it): metadata reads fetch and verify it.",
            ["FMT-LINKS-7", "FMT-LINKS-12", "FMT-META-1"], c, may_warn=["W-HASHES-NOT-VERIFIED"], requires=["fetch"],
            extra={"carton.toml": toml_bytes})
    name = "links/fetch-wrong-content"
    c, data = linked_tensor(8)
    c.links = links_doc({sha256(data): [served(f"inspect/invalid/{name}", "tensor.bin")]})
    t.invalid(name, "The only LINKS URL serves content with another sha256.", ["FMT-LINKS-10"], c, ["manifest"],
              ["E-MANIFEST-MISMATCH"], requires=["fetch"], extra={"tensor.bin": data[:-4] + b"\0\0\0\0"})
    name = "links/fetch-every-url-fails"
    c, data = linked_tensor(9)
    c.links = links_doc({sha256(data): [served(f"inspect/invalid/{name}", "gone.bin"), DEAD_URL]})
    t.invalid(name, "The first LINKS URL answers 410 and the second refuses the connection.", ["FMT-LINKS-8"], c, ["links"],
              ["E-LINKS-FETCH"], requires=["fetch"], extra={"gone.bin": b"gone\n", "gone.bin.http.json": http(410)})
    name = "links/fetch-unsupported-encoding"
    c, data = linked_tensor(10)
    c.links = links_doc({sha256(data): [served(f"inspect/invalid/{name}", "tensor.bin")]})
    t.invalid(name, "The server answers with Content-Encoding x-unknown, which no reader decodes.", ["FMT-LINKS-9"], c, ["links"],
              ["E-LINKS-FETCH"], requires=["fetch"],
              extra={"tensor.bin": data, "tensor.bin.http.json": http(**{"Content-Encoding": "x-unknown"})})
    name = "links/fetch-too-large"
    c, data = linked_tensor(11)
    big = np.arange(256, dtype=np.float32)
    c.values["t"] = big
    c.index[0]["shape"] = [256]
    data = big.tobytes()
    c.files["tensor_data/tensor_0.bin"] = data
    c.links = links_doc({sha256(data): [served(f"inspect/invalid/{name}", "tensor.bin")]})
    t.invalid(name, "A fetched file of 1,024 bytes where the reader is configured with max_member_bytes = 512.", ["FMT-LINKS-11"], c,
              ["limit"], ["E-LIMIT-MEMBER-SIZE"], requires=["fetch"], limits={"max_member_bytes": 512}, extra={"tensor.bin": data})


def _read(t: Inspect) -> None:
    c = standard()
    ms = c.zip_members()
    ms = [ms[-1], *reversed(ms[:-1])]  # MANIFEST first, the rest in reverse order
    t.valid("read/members-in-any-order", "MANIFEST comes first and the other members in reverse path order.", ["FMT-READ-8"], c, data=zc.build(ms))
    c = standard()
    c.files["model/model.pt"] = b"\x80\x04\x95 a pickle that would run code if it were ever unpickled \x94."
    t.valid("read/model-never-loaded", "model/model.pt is not a loadable model: validators never deserialise it.", ["FMT-READ-7"], c)
    c = standard()
    c.doc["spec_version"] = 2
    c.manifest = manifest_bytes(c.manifest_entries()).replace(b"=", b"~", 1)
    t.invalid("read/order-manifest-before-carton-toml",
              "Two faults on purpose: a MANIFEST syntax error and spec_version = 2; MANIFEST is checked first.",
              ["FMT-READ-10", "FMT-READ-6"], c, ["manifest"], ["E-MANIFEST-SYNTAX"])
    c = standard()
    c.doc["spec_version"] = 2
    c.index[0]["dtype"] = "float16"
    t.invalid("read/order-carton-toml-before-index",
              "Two faults on purpose: spec_version = 2 and an unknown dtype in index.toml; carton.toml is checked first.",
              ["FMT-READ-10"], c, ["schema"], ["E-SPEC-VERSION"])
    c = standard()
    c.files["tensor_data/tensor_0.bin"] = c.files["tensor_data/tensor_0.bin"][:-4]
    t.invalid("read/order-container-before-tensor-files",
              "Two faults on purpose: a byte after the end record and a tensor file of the wrong size; the container is checked first.",
              ["FMT-READ-10"], c.zip() + b"\x00", ["zip"], ["E-ZIP-UNACCOUNTED-DATA"])
    c = standard()
    c.files["model/model.pt"] = b""
    t.valid("read/empty-model-file", "An empty model file is still a model file.", ["FMT-READ-3", "FMT-PATH-5"], c)

__all__ = [
    "DEAD_URL",
    "ROOT",
    "SHA_A",
    "Inspect",
    "MiB",
    "TiB",
    "built",
    "generate",
    "index_of",
    "links_doc",
    "model",
    "original_expected",
    "with_files",
    "with_members",
    "with_text",
    "zbase",
]
