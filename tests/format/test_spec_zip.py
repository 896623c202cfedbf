"""Section 3 (zip container) end to end: a valid carton with exactly one zip-level flaw gets that
rule's code from both ``validate()`` and ``read()``; directory entries and ignorable fields."""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

import carton_format as cf
from carton_conformance.gen import zipcraft as zc

from ..helpers.spechelp import craft, expect_error, expect_ok, manifest_of, sample

MODEL = "model/model.pt"


def _with(**overrides: object) -> Callable[[], bytes]:
    """The sample archive with ``overrides`` applied to model/model.pt's zipcraft Member."""
    return lambda: craft(sample(), member_overrides={MODEL: overrides})


def _archive(**fields: object) -> Callable[[], bytes]:
    return lambda: craft(sample(), **fields)


def _deflated_with_wrong_size() -> bytes:
    data = sample()[MODEL]
    payload = zc.compress(data, zc.DEFLATE)
    return craft(sample(), member_overrides={MODEL: {"payload": payload, "method": zc.DEFLATE, "uncompressed_size": len(data) + 1}})


def _zstd_garbage() -> bytes:
    return craft(sample(), member_overrides={MODEL: {"payload": b"\x28\xb5\x2f\xfd" + b"\xff" * 30, "method": zc.ZSTD}})


def _case_duplicate() -> bytes:
    members = {**sample(), "model/Model.pt": b"other"}
    return craft(members)


def _non_utf8_name() -> bytes:
    members = sample()
    built = [zc.member(k, v) for k, v in members.items() if k != "MANIFEST"]
    built.append(zc.member(b"model/caf\xe9", b"x"))
    built.append(zc.member("MANIFEST", manifest_of(members)))
    return zc.build(built)


def _symlink(name: str, target: str, **extra: str) -> Callable[[], bytes]:
    def make() -> bytes:
        members = {**sample(), name: target.encode()}
        manifest = manifest_of({k: v for k, v in members.items() if k != name}, **{name: extra.get("sha", "0" * 64)})
        return craft(members, manifest=manifest, member_overrides={name: {"external_attr": zc.unix_attr(zc.S_IFLNK | 0o777)}})

    return make


ONE_FLAW = [
    ("FMT-ZIP-1", "E-ZIP-NOT-ZIP", lambda: b"\x89PNG\r\n\x1a\n" + bytes(200)),
    ("FMT-ZIP-23", "E-ZIP-MALFORMED", lambda: (lambda d: d[:-2] + (22).to_bytes(2, "little") + d[-22:])(craft(sample()))),
    ("FMT-ZIP-3", "E-ZIP-TRUNCATED", lambda: craft(sample())[:-7]),
    ("FMT-ZIP-4", "E-ZIP-MALFORMED", _with(version_needed=64)),
    ("FMT-ZIP-4", "E-ZIP-MALFORMED", _with(flags=0x0010)),
    ("FMT-ZIP-4", "E-ZIP-MALFORMED", _with(uncompressed_size=3)),  # stored, sizes differ
    ("FMT-ZIP-5", "E-ZIP-MULTIDISK", _archive(disk_number=1)),
    ("FMT-ZIP-5", "E-ZIP-MULTIDISK", _with(disk_start=1)),
    ("FMT-ZIP-6", "E-ZIP-ZIP64", _archive(zip64_end=True, locator_offset=0)),
    ("FMT-ZIP-6", "E-ZIP-ZIP64", _archive(cd_size=0xFFFFFFFF)),  # saturated without a locator
    ("FMT-ZIP-7", "E-ZIP-CD-MISMATCH", _archive(entries_total=5, entries_on_disk=5)),
    ("FMT-ZIP-8", "E-ZIP-HEADER-MISMATCH", _with(local_crc32=1)),
    ("FMT-ZIP-9", "E-ZIP-UNACCOUNTED-DATA", lambda: craft(sample()) + b"\0"),
    ("FMT-ZIP-9", "E-ZIP-UNACCOUNTED-DATA", _archive(before_cd=b"hidden")),
    ("FMT-ZIP-10", "E-ZIP-OVERLAP", _archive(central_order=[1, 0, *range(2, len(sample()))])),
    ("FMT-ZIP-11", "E-ZIP-METHOD", _with(method=14)),
    ("FMT-ZIP-12", "E-ZIP-ENCRYPTED", _with(flags=0x0001)),
    ("FMT-ZIP-13", "E-ZIP-CORRUPT-DATA", _zstd_garbage),
    ("FMT-ZIP-14", "E-ZIP-SIZE-MISMATCH", _deflated_with_wrong_size),
    ("FMT-ZIP-15", "E-ZIP-CRC", _with(crc32=0x12345678)),
    ("FMT-ZIP-16", "E-ZIP-NAME-ENCODING", _non_utf8_name),
    ("FMT-ZIP-17", "E-ZIP-DUPLICATE", _case_duplicate),
    ("FMT-ZIP-19", "E-ZIP-NOT-REGULAR", _with(external_attr=zc.unix_attr(zc.S_IFIFO | 0o644))),
    ("FMT-ZIP-20", "E-ZIP-SYMLINK", _symlink("misc/link", "arch.png")),
    ("FMT-ZIP-21", "E-ZIP-SYMLINK", _symlink("model/link", "missing.pt")),
    ("FMT-ZIP-21", "E-ZIP-SYMLINK", _symlink("model/link", "../misc/arch.png")),
    ("FMT-ZIP-21", "E-ZIP-SYMLINK", _symlink("model/link", "/model/model.pt")),
]


@pytest.mark.spec("FMT-ZIP-2", "FMT-ZIP-1")
@pytest.mark.parametrize("make", [_with(comment=b"member comment"), _archive(comment=b"archive comment"), _archive(comment=b"\xff" * 65535),
                                  _archive(comment=b"PK\x05\x06 holds a signature, but its length field does not fit")])
def test_comments_are_ignored_with_a_warning(tmp_path: Path, make: Callable[[], bytes]) -> None:
    report = expect_ok(tmp_path, make(), ["W-ZIP-COMMENT"])
    assert "comment" in report.warnings[0].message


@pytest.mark.parametrize(
    ("code", "make"),
    [pytest.param(code, make, marks=pytest.mark.spec(rid), id=f"{rid}-{i}") for i, (rid, code, make) in enumerate(ONE_FLAW)],
)
def test_one_zip_flaw_gives_its_code(tmp_path: Path, code: str, make: Callable[[], bytes]) -> None:
    expect_error(tmp_path, make(), code)


@pytest.mark.spec("FMT-ZIP-21", "FMT-READ-9")
def test_symlink_member_resolves_to_its_target(tmp_path: Path) -> None:
    target = sample()[MODEL]
    data = _symlink("model/sub/link", "../model.pt", sha=hashlib.sha256(target).hexdigest())()
    expect_ok(tmp_path, data)
    with cf.read(tmp_path / "case.carton") as archive:
        assert archive.read_bytes("model/sub/link") == target


@pytest.mark.spec("FMT-ZIP-18", "FMT-MANIFEST-8")
def test_directory_entries_are_ignored_with_a_warning(tmp_path: Path) -> None:
    members = {"model/": b"", "tensor_data/": b"", **sample()}
    manifest = manifest_of(sample())  # directory entries are not listed
    dirs = {name: {"external_attr": zc.unix_attr(zc.S_IFDIR | 0o755)} for name in ("model/", "tensor_data/")}
    report = expect_ok(tmp_path, craft(members, manifest=manifest, member_overrides=dirs), ["W-ZIP-DIRECTORY", "W-ZIP-DIRECTORY"])
    assert {w.member for w in report.warnings} == {"model/", "tensor_data/"}
    with cf.read(tmp_path / "case.carton") as archive:
        assert "model/" not in archive.manifest and archive.read_bytes(MODEL) == sample()[MODEL]


@pytest.mark.spec("FMT-ZIP-18")
def test_a_listed_directory_entry_names_nothing(tmp_path: Path) -> None:
    members = {"model/": b"", **sample()}
    manifest = manifest_of(sample(), **{"model/x": "0" * 64})
    data = craft(members, manifest=manifest, member_overrides={"model/": {"external_attr": zc.unix_attr(zc.S_IFDIR | 0o755)}})
    expect_error(tmp_path, data, "E-MANIFEST-MISSING-FILE", member="model/x")


@pytest.mark.spec("FMT-ZIP-22")
def test_fields_readers_do_not_validate(tmp_path: Path) -> None:
    """Times, permissions, internal attributes, other hosts, lower versions, unknown extras."""
    rng = random.Random(7)
    overrides = {}
    for i, name in enumerate(sample()):
        unix = i % 2 == 0
        timestamp = zc.extra_field(0x5455, b"\x01" + struct.pack("<I", rng.getrandbits(32)))
        overrides[name] = {
            "mtime": rng.getrandbits(16),
            "mdate": rng.getrandbits(16),
            "internal_attr": rng.getrandbits(16),
            "version_made_by": (3 << 8 | 30) if unix else (0 << 8 | 20),  # Unix or MS-DOS
            "version_needed": 10,
            "external_attr": zc.unix_attr(zc.S_IFREG | rng.choice([0o600, 0o755, 0o444])) if unix else rng.getrandbits(8),
            "central_extra": timestamp,
            "local_extra": timestamp + zc.extra_field(0xCAFE, b"vendor data"),
        }
    expect_ok(tmp_path, craft(sample(), member_overrides=overrides))


@pytest.mark.spec("FMT-ZIP-22", "FMT-ZIP-19")
def test_the_original_older_writer_fields(tmp_path: Path) -> None:
    """DOS date and time 0 and external attributes 0 (the original before September 2023)."""
    overrides = {name: {"mtime": 0, "mdate": 0, "external_attr": 0} for name in sample()}
    expect_ok(tmp_path, craft(sample(), member_overrides=overrides))
