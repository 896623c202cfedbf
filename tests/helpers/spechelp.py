"""Helpers for the test_spec_*.py modules: a valid sample archive taken apart, and assertions that
an archive breaking one rule gets exactly that rule's code from both ``validate()`` and ``read()``.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from pathlib import Path

import pytest

import carton_format as cf
from carton_conformance.gen import zipcraft as zc
from carton_format.limits import DEFAULT_LIMITS, Limits
from carton_format.manifest import format_manifest

from .cartoncraft import members_of, write_sample

SHA_A = "a" * 64


@functools.lru_cache(maxsize=1)
def _sample() -> tuple[tuple[str, bytes], ...]:
    with tempfile.TemporaryDirectory() as tmp:
        return tuple(members_of(write_sample(Path(tmp))).items())


def sample() -> dict[str, bytes]:
    """The members of a valid archive (cartoncraft.sample_info + model/model.pt), MANIFEST included."""
    return dict(_sample())


def manifest_of(members: dict[str, bytes], **extra: str) -> bytes:
    """MANIFEST bytes for ``members`` (MANIFEST and LINKS excluded) plus ``extra`` path=sha lines."""
    entries = {k: hashlib.sha256(v).hexdigest() for k, v in members.items() if k not in ("MANIFEST", "LINKS")}
    entries.update(extra)
    return format_manifest(entries)


def replace(members: dict[str, bytes], name: str, old: str, new: str) -> dict[str, bytes]:
    text = members[name].decode("utf-8")
    assert old in text, f"{old!r} not in {name}"
    return {**members, name: text.replace(old, new, 1).encode("utf-8")}


def craft(
    members: dict[str, bytes],
    *,
    manifest: bytes | None = None,
    links: bytes | None = None,
    member_overrides: dict[str, dict[str, object]] | None = None,
    **archive: object,
) -> bytes:
    """Zip ``members`` with zipcraft (independent of carton_format's writer), MANIFEST recomputed
    unless given, LINKS appended when given; ``member_overrides`` sets zipcraft Member fields."""
    content = {k: v for k, v in members.items() if k not in ("MANIFEST", "LINKS")}
    content["MANIFEST"] = manifest_of(content) if manifest is None else manifest
    if links is not None:
        content["LINKS"] = links
    overrides = member_overrides or {}
    built = []
    for name, data in content.items():
        fields = overrides.get(name, {})
        if "payload" in fields:  # raw data given: plain is only the CRC and size default
            built.append(zc.Member(name=name, plain=data, **fields))  # type: ignore[arg-type]
        else:
            built.append(zc.member(name, data, **fields))  # type: ignore[arg-type]
    return zc.build(built, **archive)


def write(tmp_path: Path, data: bytes, name: str = "case.carton") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def expect_error(
    tmp_path: Path,
    data: bytes,
    code: str,
    *,
    member: str | None = None,
    key: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    only: bool = True,
) -> cf.ValidationReport:
    """``validate()`` reports ``code`` (as its only error when ``only``) and ``read()`` (followed by
    loading every tensor) raises it; ``member``/``key`` must match when given."""
    path = write(tmp_path, data)
    report = cf.validate(path, limits=limits)
    codes = [f.code for f in report.errors]
    if only:
        assert codes == [code], report.findings
    else:
        assert code in codes, report.findings
    found = [f for f in report.errors if f.code == code]
    if member is not None:
        assert any(f.member == member for f in found), report.findings
    if key is not None:
        assert any(f.key == key for f in found), report.findings
    with pytest.raises(cf.CartonFormatError) as err:
        with cf.read(path, limits=limits) as archive:
            archive.check_tensors()
    assert err.value.code == code, err.value
    return report


def expect_nonconforming(
    tmp_path: Path, data: bytes, code: str, warning: str, *, member: str | None = None, key: str | None = None
) -> cf.ValidationReport:
    """A break of a rule writers MUST follow that a reader can carry on past: ``validate()``
    reports ``code`` as its only error, while ``read()`` (and loading every tensor) succeeds with
    the lenient ``warning`` (spec section 1.3)."""
    path = write(tmp_path, data)
    report = cf.validate(path)
    assert [f.code for f in report.errors] == [code], report.findings
    if member is not None:
        assert report.errors[0].member == member, report.findings
    if key is not None:
        assert report.errors[0].key == key, report.findings
    with cf.read(path) as archive:
        archive.check_tensors()
        warned = [w for w in archive.warnings if w.code == warning]
    assert warned and (warned[0].member, warned[0].key) == (report.errors[0].member, report.errors[0].key), warned
    return report


def expect_ok(tmp_path: Path, data: bytes, warnings: list[str] | None = None, *, limits: Limits = DEFAULT_LIMITS) -> cf.ValidationReport:
    """The archive is valid; ``validate()`` gives exactly ``warnings`` (codes, sorted)."""
    path = write(tmp_path, data)
    report = cf.validate(path, limits=limits)
    assert report.ok, report.findings
    assert sorted(w.code for w in report.warnings) == sorted(warnings or []), report.warnings
    with cf.read(path, limits=limits) as archive:
        archive.check_tensors()
    return report
