"""Section 16.2 (reading): what a metadata read touches, robustness on any input, errors versus
warnings, no code execution, order independence and the order of checks."""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carton_format as cf
from carton_conformance.gen import zipcraft as zc
from carton_format.errors import CODES, LENIENT_WARNINGS, WARNING_CODES

from ..helpers import rawzip
from ..helpers.cartoncraft import sample_info
from ..helpers.spechelp import SHA_A, craft, expect_ok, manifest_of, replace, sample


class RecordingFile(io.RawIOBase):
    """A seekable in-memory file that records every (offset, length) read."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else (len(self._data) + pos if whence == 2 else self._pos + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        out = self._data[self._pos : len(self._data) if n < 0 else self._pos + n]
        if out:
            self.reads.append((self._pos, len(out)))
        self._pos += len(out)
        return out

    def readinto(self, buffer: object) -> int:
        data = self.read(memoryview(buffer).nbytes)  # type: ignore[arg-type]
        memoryview(buffer)[: len(data)] = data  # type: ignore[index]
        return len(data)


@pytest.mark.spec("FMT-READ-1")
def test_a_metadata_read_touches_only_metadata(tmp_path: Path) -> None:
    big = np.arange(40_000, dtype=np.float32)  # 160 KB tensors: beyond the 64 KiB tail read
    info = sample_info(self_tests=[cf.SelfTest(inputs={"a": big}, expected_out={"b": big + 1})], misc_files={"m.bin": bytes(100_000)})
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pt").write_bytes(bytes(range(256)) * 4000)
    data = cf.write(tmp_path / "big.carton", info, model_dir=model).path.read_bytes()
    raw = rawzip.parse(data)
    metadata = {"carton.toml", "MANIFEST", "tensor_data/index.toml"}
    content = {e.name: (e.local.data_start, e.end) for e in raw.entries if e.name not in metadata}
    tail_start = len(data) - (64 * 1024 + 22)

    def touched(reads: list[tuple[int, int]]) -> set[str]:
        return {name for offset, n in reads for name, (lo, hi) in content.items() if offset < hi and lo < offset + n and offset < tail_start}

    f = RecordingFile(data)
    with cf.read(f, verify_hashes=False) as archive:  # type: ignore[arg-type]
        x = archive.info.self_tests[0].inputs["a"]
        assert (x.dtype, x.shape) == ("float32", (40_000,))
        assert touched(f.reads) == set()
        assert sum(n for _, n in f.reads) < 64 * 1024 + 22 + raw.cd_size + 4096
        f.reads.clear()
        np.testing.assert_array_equal(x.load(), big)  # read when asked for, and nothing else
        assert touched(f.reads) == {"tensor_data/tensor_0.bin"}


TOKENS = [b"[", b"]", b"[[", b"]]", b"=", b'"', b"'", b"\n", b"#", b".", b",", b"{", b"}", b"-1", b"0", b"1.5", b"true",
          b"1979-05-27", b"nested", b"string", b"uint8", b"@tensor_data/", b"@misc/", b"_tensor_0", b"tensor_0.bin",
          b"../", b"/", b"\\", b"\x00", b"\xff", b"shape", b"inner", b"file", b"name", b"dtype", b"*", b"data", b"spec_version",
          b"runner", b"a" * 64, b"https://", b"version", b"urls"]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.spec("FMT-READ-5", "FMT-READ-6")
def test_any_document_content_gives_a_report_never_a_crash(tmp_path: Path, data: st.DataObject) -> None:
    """Mutated metadata and tensor members, zipped correctly (so the checks above the zip layer
    run), with or without a matching MANIFEST: codes from section 17 only, never an exception."""
    members = sample()
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from([*members, "LINKS"]))
        text = members.get(name, b"version = 1\n[urls]\n")
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        insert = b"".join(data.draw(st.lists(st.sampled_from(TOKENS) | st.binary(max_size=3), max_size=3)))
        members[name] = text[:start] + insert + text[end:]
    links = members.pop("LINKS", None)
    manifest = members.pop("MANIFEST") if data.draw(st.booleans()) else None
    path = tmp_path / "fuzz.carton"
    path.write_bytes(craft(members, manifest=manifest, links=links))
    report = cf.validate(path)
    assert all(f.code in CODES for f in report.errors) and all(f.code in WARNING_CODES for f in report.warnings)
    assert report.ok == (not report.errors)
    lenient: set[str] = set()
    try:
        with cf.read(path) as archive:
            lenient = {w.code for w in archive.warnings} & set(LENIENT_WARNINGS)
            archive.check_tensors()
            for path_in_manifest in archive.manifest:
                if not archive.linked_urls(path_in_manifest):
                    archive.read_bytes(path_in_manifest)
    except cf.CartonFormatError as exc:
        assert exc.code in CODES
        assert not report.ok, (exc, report.findings)  # read() fails only where validate() finds an error
    else:  # read() accepts only what validate() accepts, or breaks of writer rules it warns about
        assert report.ok or {LENIENT_WARNINGS[w] for w in lenient} >= {e.code for e in report.errors}, report.findings


@pytest.mark.spec("FMT-READ-6")
def test_validators_report_every_independent_finding(tmp_path: Path) -> None:
    members = {**sample(), "model/unlisted.bin": b"u"}
    entries = {k: hashlib.sha256(v).hexdigest() for k, v in sample().items() if k != "MANIFEST"}
    entries["misc/arch.png"] = SHA_A
    manifest = "".join(f"{k}={entries[k]}\n" for k in sorted(entries, reverse=True)).encode()  # unsorted: an error too
    path = tmp_path / "many.carton"
    path.write_bytes(craft(members, manifest=manifest))
    report = cf.validate(path)
    assert not report.ok
    assert sorted((f.code, f.member) for f in report.errors) == [
        ("E-MANIFEST-MISMATCH", "misc/arch.png"),
        ("E-MANIFEST-UNLISTED", "model/unlisted.bin"),
        ("E-MANIFEST-UNSORTED", "MANIFEST"),
    ]
    assert report.warnings == []
    with pytest.raises(cf.CartonFormatError) as err:  # a reader stops at the first
        cf.read(path)
    assert err.value.code == "E-MANIFEST-UNLISTED"


@pytest.mark.spec("FMT-READ-6")
def test_warnings_never_make_an_archive_invalid(tmp_path: Path) -> None:
    members = replace(sample(), "carton.toml", "spec_version = 1\n", "spec_version = 1\nsomething_new = 1\n")
    members = {**members, "model/": b"", "model/CON": b"c"}
    data = craft(members, manifest=manifest_of({k: v for k, v in members.items() if k != "model/"}), comment=b"a comment",
                 member_overrides={"model/": {"external_attr": zc.unix_attr(zc.S_IFDIR | 0o755)}})  # fmt: skip
    expect_ok(tmp_path, data, ["W-UNKNOWN-KEY", "W-ZIP-DIRECTORY", "W-PATH-NONPORTABLE", "W-ZIP-COMMENT"])


@pytest.mark.spec("FMT-READ-6", "FMT-META-5", "FMT-RUNNER-5", "FMT-LINKS-4", "FMT-LINKS-6")
def test_writer_rules_are_errors_for_validators_and_warnings_for_lenient_readers(tmp_path: Path) -> None:
    members = replace(sample(), "carton.toml", "spec_version = 1\n", 'spec_version = 1\nshort_description = "' + "s" * 101 + '"\n')
    members = replace(members, "carton.toml", 'short_description = "Doubles its input"\n', "")
    members = replace(members, "carton.toml", "runner_compat_version = 1\n", "")
    data = craft(members, manifest=manifest_of(members), links=b"version = 3\n[urls]\n" + SHA_A.encode() + b' = ["https://e.com/x"]\n')
    path = tmp_path / "lenient.carton"
    path.write_bytes(data)
    report = cf.validate(path)
    assert sorted((e.code, e.key) for e in report.errors) == [
        ("E-LINKS-INVALID", f"urls.{SHA_A}"),
        ("E-LINKS-INVALID", "version"),
        ("E-SCHEMA", "runner.runner_compat_version"),
        ("E-SCHEMA", "short_description"),
    ]
    with cf.read(path) as archive:
        archive.check_tensors()
        warned = sorted(w.code for w in archive.warnings)
    assert warned == ["W-LINKS-UNUSED", "W-LINKS-VERSION", "W-RUNNER-COMPAT-MISSING", "W-SHORT-DESCRIPTION"]
    assert sorted(LENIENT_WARNINGS[w] for w in warned) == sorted(e.code for e in report.errors)


@pytest.mark.spec("FMT-READ-7")
def test_nothing_under_model_is_loaded_executed_or_extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    hostile = {
        "model/model.pt": pickle.dumps(Payload()),
        "model/__init__.py": f"open({str(marker)!r}, 'w')\n".encode(),
        "model/weights.pkl": pickle.dumps(Payload()),
    }
    members = {**sample(), **hostile}
    archive_dir = tmp_path / "archives"
    archive_dir.mkdir()
    path = archive_dir / "hostile.carton"
    path.write_bytes(craft(members))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    modules = set(sys.modules)
    assert cf.validate(path).ok
    with cf.read(path) as archive:
        for name, content in hostile.items():
            assert archive.read_bytes(name) == content  # hashed and returned, never interpreted
    assert not marker.exists()
    assert list(workdir.iterdir()) == [] and list(archive_dir.iterdir()) == [path]
    assert not {m for m in set(sys.modules) - modules if m.split(".")[0] in ("model", "torch", "pickle")}


@pytest.mark.spec("FMT-READ-8")
def test_member_order_does_not_matter(tmp_path: Path) -> None:
    members = sample()
    built = [zc.member(name, data) for name, data in reversed(list(members.items()))]  # MANIFEST first
    assert built[0].name == "MANIFEST"
    expect_ok(tmp_path, zc.build(built))


def _order_case(**changes: object) -> bytes:
    members = sample()
    for name, (old, new) in changes.get("edits", {}).items():  # type: ignore[union-attr]
        members = replace(members, name, old, new)
    members.update(changes.get("add", {}))  # type: ignore[arg-type]
    manifest = changes.get("manifest")
    if manifest == "listed-before-edits":
        manifest = sample()["MANIFEST"]
    return craft(members, manifest=manifest, links=changes.get("links"), member_overrides=changes.get("overrides"),  # type: ignore[arg-type]
                 **changes.get("archive", {}))  # type: ignore[arg-type]


BAD_TOML = ("carton.toml", ("spec_version = 1", "spec_version = 'x'"))
BAD_INDEX = ("tensor_data/index.toml", ('dtype = "float32"', 'dtype = "complex64"'))
DANGLING = ("carton.toml", ('x = "@tensor_data/_tensor_0"', 'x = "@tensor_data/missing"'))
ORDER = [
    ("container before MANIFEST", {"archive": {"trailing": b"\x00"}, "manifest": b"broken"}, "E-ZIP-UNACCOUNTED-DATA"),
    ("MANIFEST before LINKS", {"manifest": b"broken", "links": b"[urls\n"}, "E-MANIFEST-SYNTAX"),
    ("LINKS before the member set", {"links": b"version = 1\n[urls]\nx = 1\n", "add": {"model/x": b"x"}, "manifest": "listed-before-edits"},
     "E-LINKS-INVALID"),
    ("member set before carton.toml", {"edits": dict([BAD_TOML]), "add": {"model/x": b"x"}, "manifest": "listed-before-edits"},
     "E-MANIFEST-UNLISTED"),
    ("carton.toml before index.toml", {"edits": dict([BAD_TOML, BAD_INDEX])}, "E-SCHEMA"),
    ("index.toml before references", {"edits": dict([BAD_INDEX]) | {"carton.toml": DANGLING[1]}}, "E-TENSOR-DTYPE"),
    ("references before hashes", {"edits": {"carton.toml": DANGLING[1]}, "overrides": {"model/model.pt": {"crc32": 1}}}, "E-REF-DANGLING"),
    ("layout before CRCs and hashes", {"archive": {"before_cd": b"gap"}, "overrides": {"model/model.pt": {"crc32": 1}}}, "E-ZIP-UNACCOUNTED-DATA"),
    ("hashes before tensor files",
     {"add": {"tensor_data/tensor_0.bin": b"\0" * 25, "misc/arch.png": b"x"}, "overrides": {"misc/arch.png": {"crc32": 1}}}, "E-ZIP-CRC"),
]  # fmt: skip


@pytest.mark.spec("FMT-READ-10")
@pytest.mark.parametrize(("changes", "code"), [pytest.param(c, code, id=name) for name, c, code in ORDER])
def test_the_first_failing_step_gives_the_code(tmp_path: Path, changes: dict[str, object], code: str) -> None:
    path = tmp_path / "order.carton"
    path.write_bytes(_order_case(**changes))
    with pytest.raises(cf.CartonFormatError) as err:
        with cf.read(path) as archive:
            archive.check_tensors()
    assert err.value.code == code
    report = cf.validate(path)
    assert report.errors[0].code == code, report.findings
    assert len({f.code for f in report.errors}) >= 1
