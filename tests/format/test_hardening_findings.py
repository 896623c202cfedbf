"""Hostile metadata: millions of schema violations or dangling references in a ~1 KB archive.

Before the fix a 1 KB zstd archive whose carton.toml held 2 MiB of empty ``[[input]]`` tables
cost ``carton validate --json`` 31 s, 2.5 GiB and printed 120 MB; 600k dangling references gave
600k findings.  Now validate() lists at most ``Limits.max_findings`` findings, counts the rest
(``ValidationReport.findings_omitted``, a W-FINDINGS-OMITTED warning), schema checks stop at the
limit and never build jsonschema's error trees, and read() still raises the first error.

Memory is each child interpreter's own peak (VmHWM) minus that of an interpreter that only
imported carton_format; the bounds are several times what the fixed code needs and a small
fraction of what the old code took, so a slow or busy CI machine cannot make them flaky.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import carton_format as cf
from carton_format.errors import FindingCollector

from ..helpers import hostile


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_many_schema_violations_cost_little_and_print_little(tmp_path: Path) -> None:
    path = _write(tmp_path, "inputs.carton", hostile.many_invalid_inputs(2 * hostile.MiB))
    assert path.stat().st_size < 4096  # ~210,000 tables, 3 violations each
    run = hostile.measure_cli("validate", "--json", str(path))
    assert run.rc == 1, run.stderr
    assert run.peak_mib - hostile.baseline_mib() < 300, run.peak_mib  # was ~2,500 MiB
    assert run.seconds < 20, run.seconds  # was ~31 s, now ~1 s
    assert len(run.stdout) < 2_000_000, len(run.stdout)  # was ~120 MB
    [report] = json.loads(run.stdout)["files"]
    assert report["ok"] is False
    assert len(report["errors"]) == cf.DEFAULT_LIMITS.max_findings
    assert {e["code"] for e in report["errors"]} == {"E-SCHEMA"}
    assert report["errors"][0]["key"] == "input[0].name"
    assert report["findings_omitted"] >= 1 and report["findings_omitted_exact"] is False
    [omitted] = [w for w in report["warnings"] if w["code"] == "W-FINDINGS-OMITTED"]
    assert "at least" in omitted["message"] and "1000" in omitted["message"]


def test_read_and_info_stop_at_the_first_schema_violation(tmp_path: Path) -> None:
    path = _write(tmp_path, "inputs.carton", hostile.many_invalid_inputs(2 * hostile.MiB))
    with pytest.raises(cf.CartonFormatError) as err:
        cf.read(path)
    assert (err.value.code, err.value.key) == ("E-SCHEMA", "input[0].name")
    run = hostile.measure_cli("info", "--json", str(path))
    assert run.rc == 1
    assert json.loads(run.stdout)["error"]["key"] == "input[0].name"
    assert run.peak_mib - hostile.baseline_mib() < 300 and run.seconds < 20, (run.peak_mib, run.seconds)


def test_dangling_references_are_counted_exactly_not_listed(tmp_path: Path) -> None:
    size = 2 * hostile.MiB
    count = hostile.dangling_refs_toml(size).count(b"@tensor_data/")
    path = _write(tmp_path, "refs.carton", hostile.many_dangling_refs(size))
    report = cf.validate(path)
    assert not report.ok
    kept = [f for f in report.findings if f.code == "E-REF-DANGLING"]
    assert len(kept) == cf.DEFAULT_LIMITS.max_findings
    assert report.findings_omitted == report.errors_omitted == count - len(kept)
    assert report.findings_omitted_exact
    assert report.findings[-1].code == "W-FINDINGS-OMITTED"
    assert f"{count - len(kept)} more finding(s) ({count - len(kept)} of them errors)" in report.findings[-1].message


def test_dangling_references_validate_in_bounded_memory(tmp_path: Path) -> None:
    path = _write(tmp_path, "refs.carton", hostile.many_dangling_refs(8 * hostile.MiB))  # ~360,000 references
    run = hostile.measure_cli("validate", "--json", str(path))
    assert run.rc == 1, run.stderr
    assert len(run.stdout) < 2_000_000, len(run.stdout)  # was ~115 MB
    assert run.peak_mib - hostile.baseline_mib() < 400, run.peak_mib  # the parsed document itself is ~100 MiB
    assert run.seconds < 30, run.seconds  # was ~34 s at 14 MiB, now ~3 s


def test_invalid_items_of_an_anyof_are_explained_in_bounded_memory(tmp_path: Path) -> None:
    """One shape of ~500,000 floats: jsonschema built an error (with a repr of the whole
    array in its message) per item and per branch: 109 s and 5.8 GiB for 2 MiB."""
    path = _write(tmp_path, "dims.carton", hostile.many_invalid_dims(2 * hostile.MiB))
    run = hostile.measure_cli("validate", "--json", str(path))
    assert run.rc == 1, run.stderr
    assert run.peak_mib - hostile.baseline_mib() < 300 and run.seconds < 20, (run.peak_mib, run.seconds)
    [report] = json.loads(run.stdout)["files"]
    errors = report["errors"]
    assert 1 <= len(errors) <= 64 and errors[0]["key"] == "input[0].shape[0]"
    assert errors[0]["message"] == "must be a non-negative integer or a string, not a float"
    assert report["findings_omitted_exact"] is False


def test_invalid_links_are_bounded(tmp_path: Path) -> None:
    path = _write(tmp_path, "links.carton", hostile.invalid_links_archive(2 * hostile.MiB))
    report = cf.validate(path)
    assert not report.ok and len(report.errors) == cf.DEFAULT_LIMITS.max_findings
    assert {e.code for e in report.errors} == {"E-LINKS-INVALID"}
    assert report.findings_omitted >= 1


def test_max_findings_is_a_limit_the_caller_sets(tmp_path: Path) -> None:
    path = _write(tmp_path, "refs.carton", hostile.many_dangling_refs(4096))
    count = hostile.dangling_refs_toml(4096).count(b"@tensor_data/")
    report = cf.validate(path, limits=cf.Limits(max_findings=7))
    assert [f.code for f in report.findings] == ["E-REF-DANGLING"] * 7 + ["W-FINDINGS-OMITTED"]
    assert report.findings_omitted == count - 7 and report.findings_omitted_exact
    everything = cf.validate(path, limits=cf.Limits(max_findings=10**9))
    assert len(everything.findings) == count and everything.findings_omitted == 0
    assert not [f for f in everything.findings if f.code == "W-FINDINGS-OMITTED"]


def test_text_output_says_how_many_were_left_out(tmp_path: Path) -> None:
    path = _write(tmp_path, "refs.carton", hostile.many_dangling_refs(64 * 1024))
    run = hostile.measure_cli("validate", str(path))
    lines = run.stdout.decode().splitlines()
    assert run.rc == 1 and len(lines) == cf.DEFAULT_LIMITS.max_findings + 1
    assert "W-FINDINGS-OMITTED" in lines[-1] and "more finding(s)" in lines[-1]


def test_an_error_left_out_still_makes_the_report_invalid() -> None:
    collector = FindingCollector(max_findings=1)
    collector.warn("W-UNKNOWN-KEY", "unknown key ignored", key="a")
    collector.error(cf.CartonFormatError("E-SCHEMA", "is required", key="b"))
    assert collector.omitted == collector.omitted_errors == 1
    report = cf.ValidationReport("x", list(collector.findings), findings_omitted=1, errors_omitted=1)
    assert report.errors == [] and not report.ok
    assert report.to_dict()["ok"] is False


def test_the_collector_drops_duplicates_and_counts_the_rest() -> None:
    collector = FindingCollector(max_findings=2)
    for _ in range(3):
        collector.warn("W-UNKNOWN-KEY", "unknown key ignored", key="a")
    collector.warn("W-UNKNOWN-KEY", "unknown key ignored", key="b")
    collector.warn("W-UNKNOWN-KEY", "unknown key ignored", key="c")
    assert [f.key for f in collector.findings] == ["a", "b"]
    assert (collector.omitted, collector.omitted_errors, collector.omitted_exact) == (1, 0, True)
    assert collector.room() == 0 and FindingCollector().room() is None
