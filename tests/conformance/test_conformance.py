"""The conformance suite (carton_conformance/): our implementation passes it, it covers every requirement of
spec/format-v1.md, its files match their schemas, and the generator reproduces them byte for byte."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from carton_conformance import harness
from carton_conformance.generate import generate

from ..helpers.original import require_original

ROOT = Path(__file__).resolve().parents[2]
KNOWN = harness.PACKAGE / "known-failures"
SCHEMAS = harness.PACKAGE / "schemas"
CASES = harness.load_cases()


def _runtime_available() -> bool:
    try:
        import carton_runtime.sync as carton_sync
    except Exception:  # noqa: BLE001
        return False
    return callable(getattr(carton_sync, "load", None))


# -- the suite itself ------------------------------------------------------------------------------------


def test_case_count_and_kinds() -> None:
    kinds = {k: sum(c.kind == k for c in CASES) for k in harness.KINDS}
    assert len(CASES) >= 200, kinds
    assert all(kinds.values()), kinds


def test_every_requirement_has_a_case() -> None:
    cov = harness.coverage(CASES)
    spec = harness.spec_requirements()
    assert len(spec) >= 130 and len(set(spec)) == len(spec)
    assert [req for req in spec if not cov[req]] == []


def test_cases_cite_only_requirements_of_the_spec() -> None:
    spec = set(harness.spec_requirements())
    assert {req for c in CASES for req in c.requirements} - spec == set()


def test_regenerating_gives_identical_bytes(tmp_path: Path) -> None:
    out = tmp_path / "cases"
    generate(out)
    committed = harness.CASES_DIR
    theirs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    ours = sorted(p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file())
    assert theirs == ours, "run: python -m carton_conformance generate"
    differ = [rel for rel in ours if (out / rel).read_bytes() != (committed / rel).read_bytes()]
    assert differ == [], "run: python -m carton_conformance generate"


def test_case_files_stay_small() -> None:
    sizes = {p: p.stat().st_size for p in harness.CASES_DIR.rglob("*") if p.is_file()}
    generated = sum(size for p, size in sizes.items() if "/original/" not in p.as_posix())
    assert generated < 1_500_000, generated
    assert sum(sizes.values()) < 3_000_000


def _registry() -> tuple[Registry, dict, dict]:
    case = json.loads((SCHEMAS / "conformance-case.schema.json").read_text())
    adapter = json.loads((SCHEMAS / "conformance-adapter.schema.json").read_text())
    registry = Registry().with_resources([(case["$id"], Resource.from_contents(case)), (adapter["$id"], Resource.from_contents(adapter))])
    return registry, case, adapter


def _validator(name: str) -> Draft202012Validator:
    registry, _, adapter = _registry()
    return Draft202012Validator({"$ref": f"{adapter['$id']}#/$defs/{name}"}, registry=registry)


def test_schemas_are_valid_draft_2020_12() -> None:
    _, case, adapter = _registry()
    for schema in (case, adapter):
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["title"] and schema["description"]
        assert (SCHEMAS / f"{schema['$id'].rsplit(':', 1)[1]}.schema.json").exists()


def test_every_case_file_matches_its_schema() -> None:
    registry, case_schema, _ = _registry()
    validator = Draft202012Validator(case_schema, registry=registry)
    problems = []
    for case in CASES:
        with open(case.directory / "case.toml", "rb") as f:
            doc = tomllib.load(f)
        problems += [f"{case.id}/case.toml: {e.message}" for e in validator.iter_errors(doc)]
        for key in ("archive", "inputs"):
            if key in doc and not (case.directory / doc[key]).is_file():
                problems.append(f"{case.id}: {doc[key]} is missing")
        expect = doc["expect"]
        if "output" in expect:
            data = json.loads((case.directory / expect["output"]).read_text("utf-8"))
            name = "inspectExpected" if case.kind == "inspect" else "inferExpected"
            problems += [f"{case.id}/{expect['output']}: {e.message}" for e in _validator(name).iter_errors(data)]
        if "inputs" in doc:
            data = json.loads((case.directory / doc["inputs"]).read_text("utf-8"))
            problems += [f"{case.id}/{doc['inputs']}: {e.message}" for e in _validator("inferInputs").iter_errors(data)]
    assert problems == []


def test_invalid_cases_name_their_categories_and_codes() -> None:
    from carton_format.errors import CODES

    for case in CASES:
        expect = case.expect
        if expect["result"] in ("invalid", "error"):
            for code in expect.get("codes", []):
                assert code in CODES or code.startswith("E-RUNTIME-"), (case.id, code)
                if code in CODES and case.kind != "infer":
                    assert CODES[code][0].value in expect["categories"], (case.id, code)


# -- our implementation passes it --------------------------------------------------------------------------


def test_builtin_adapter_passes_the_whole_suite() -> None:
    adapter = harness.Adapter("builtin")
    try:
        assert adapter.persistent
        run = harness.run_cases(CASES, adapter, known=harness.load_known_failures(KNOWN / "builtin.toml"))
    finally:
        adapter.close()
    assert run.unexpected(strict=True) == [], harness.format_summary(run, strict=True)
    skipped = [r for r in run.results if r.status == "skipped"]
    if _runtime_available():
        assert skipped == [], [(r.case.id, r.reason) for r in skipped]
    else:
        assert {r.case.kind for r in skipped} <= {"infer"}
    assert run.totals()["passed"] >= 0.95 * len(CASES)
    # the replies follow the protocol schema
    assert adapter.capabilities["protocol"] == 1
    _validator("capabilities").validate(adapter.capabilities)


def test_builtin_replies_match_the_protocol_schema() -> None:
    from carton_conformance.adapters.builtin import Builtin

    b = Builtin()
    sample = [c for c in CASES if c.kind != "infer" and "fetch" not in c.doc.get("requires", [])][::7]
    for case in sample:
        if case.kind == "inspect":
            code, result = b.inspect(case.path("archive"), case.doc.get("limits"))
            _validator("inspectAccepted" if code == 0 else "inspectRejected").validate(result)
        elif case.kind == "verify":
            code, result = b.verify(case.path("archive"), case.path("key"))
            _validator("verifyAnswer").validate(result)
        else:
            code, result = b.versionreq(case.doc["requirement"], case.doc["version"])
            _validator("versionreqAnswer").validate(result)
        _validator("reply").validate({"seq": 1, "exit": code, "result": result})


def test_one_shot_mode_gives_the_same_results() -> None:
    sample = [c for c in CASES if c.kind != "infer" and "fetch" not in c.doc.get("requires", [])][::80]
    adapter = harness.Adapter("builtin", persistent=False)
    try:
        run = harness.run_cases(sample, adapter)
    finally:
        adapter.close()
    assert [r.status for r in run.results] == ["passed"] * len(sample), harness.format_summary(run)


def test_cli_writes_reports(tmp_path: Path) -> None:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "carton_conformance", "run", "--adapter", "builtin", "--only", "versionreq/invalid/*",
         "--only", "inspect/invalid/zip/ambiguous-end-record", "--report", str(report), "--junit", str(junit)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed, 0 failed" in proc.stdout
    data = json.loads(report.read_text())
    n = sum(c.id.startswith("versionreq/invalid/") for c in CASES) + 1
    assert data["totals"]["passed"] == n and data["totals"]["failed"] == 0 and data["totals"]["skipped"] == 0
    assert {c["status"] for c in data["cases"]} == {"passed"}
    import xml.etree.ElementTree as ET

    assert len(ET.parse(junit).getroot().findall(".//testcase")) == n


def test_cli_refuses_unknown_known_failures(tmp_path: Path) -> None:
    known = tmp_path / "known.toml"
    known.write_text('[known-failures]\n"inspect/no/such/case" = "x"\n')
    proc = subprocess.run([sys.executable, "-m", "carton_conformance", "run", "--adapter", "builtin", "--known-failures", str(known)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "do not exist" in proc.stderr


# -- the harness judges strictly -----------------------------------------------------------------------------


def _answer(case: harness.Case) -> harness.Reply:
    from carton_conformance.adapters.builtin import Builtin

    b = Builtin()
    if case.kind == "inspect":
        code, result = b.inspect(case.path("archive"), case.doc.get("limits"))
    elif case.kind == "verify":
        code, result = b.verify(case.path("archive"), case.path("key"))
    else:
        code, result = b.versionreq(case.doc["requirement"], case.doc["version"])
    return harness.Reply("answer", code, result)


FEATURES = {"error-categories", "error-codes", "manifest", "warnings", "normalized-versionreq", "limits"}


def _status(case: harness.Case, reply: harness.Reply, features: set[str] = FEATURES) -> str:
    return harness.judge(case, reply, features)[0]


def _first_tensor(node):
    if isinstance(node, dict):
        if "values" in node and node.get("values"):
            return node
        for v in node.values():
            found = _first_tensor(v)
            if found is not None:
                return found
    elif isinstance(node, list):
        for v in node:
            found = _first_tensor(v)
            if found is not None:
                return found
    return None


def test_mutated_inspect_answers_fail() -> None:
    import copy

    valid = [c for c in CASES if c.kind == "inspect" and c.expect["result"] == "valid" and "fetch" not in c.doc.get("requires", [])]
    checked_tensor = 0
    for case in valid:
        good = _answer(case)
        assert _status(case, good) == "passed", case.id
        mutants = []
        for mutate in (
            lambda r: r["info"].__setitem__("model_name", "mutant"),
            lambda r: r["info"]["runner"].__setitem__("runner_compat_version", 99),
            lambda r: r["info"]["runner"].__setitem__(
                "required_framework_version", "*" if r["info"]["runner"]["required_framework_version"] != "*" else "=1"),
            lambda r: r.__setitem__("manifest_sha256", "0" * 64),
            lambda r: r.__setitem__("manifest", r["manifest"] + "x"),
            lambda r: r.__setitem__("warnings", [*r["warnings"], "W-MUTANT"]),
        ):
            result = copy.deepcopy(good.result)
            mutate(result)
            mutants.append(result)
        result = copy.deepcopy(good.result)
        tensor = _first_tensor(result["info"])
        if tensor is not None:
            checked_tensor += 1
            v = tensor["values"][0]
            tensor["values"][0] = v + "!" if isinstance(v, str) else v * 2 + 1 if isinstance(v, float) else v + 1
            mutants.append(result)
            result = copy.deepcopy(good.result)
            _first_tensor(result["info"])["shape"].append(1)
            mutants.append(result)
        for mutant in mutants:
            assert _status(case, harness.Reply("answer", 0, mutant)) == "failed", (case.id, mutant)
        assert _status(case, harness.Reply("answer", 1, {"valid": False, "errors": [{"category": "zip"}]})) == "failed"
        assert _status(case, harness.Reply("crash", detail="boom")) == "failed"
    assert checked_tensor >= 15


def test_opts_types_and_float32_rounding_are_judged() -> None:
    case = next(c for c in CASES if c.id == "inspect/valid/runner/opts-every-type")
    good = _answer(case)
    import copy

    as_float = copy.deepcopy(good.result)
    as_float["info"]["runner"]["opts"]["num_threads"] = {"type": "float", "value": 4.0}
    assert _status(case, harness.Reply("answer", 0, as_float)) == "failed"
    bool_as_int = copy.deepcopy(good.result)
    bool_as_int["info"]["runner"]["opts"]["flag"] = {"type": "integer", "value": 0}
    assert _status(case, harness.Reply("answer", 0, bool_as_int)) == "failed"
    # float32 values printed with 9 significant digits (as C would) still match
    case = next(c for c in CASES if c.id == "inspect/valid/tensor/every-dtype")
    reply = copy.deepcopy(_answer(case).result)
    t = reply["info"]["self_tests"][0]["inputs"]["float32"]
    t["values"] = [float(f"{v:.9g}") for v in t["values"]]
    assert _status(case, harness.Reply("answer", 0, reply)) == "passed"
    t["values"][0] = float(f"{t['values'][0]:.5g}")
    assert _status(case, harness.Reply("answer", 0, reply)) == "failed"


def test_rejections_are_judged_by_category() -> None:
    invalid = [c for c in CASES if c.expect["result"] == "invalid"]
    for case in invalid:
        assert _status(case, harness.Reply("answer", 0, {"valid": True, "info": {}, "matches": True})) == "failed", case.id
        wrong = "io" if "io" not in case.expect["categories"] else "zip"
        assert _status(case, harness.Reply("answer", 1, {"valid": False, "errors": [{"category": wrong}]})) == "failed", case.id
        right = {"valid": False, "errors": [{"category": wrong}, {"category": case.expect["categories"][-1], "code": "E-OTHER"}]}
        status, _, _, notes = harness.judge(case, harness.Reply("answer", 1, right), FEATURES)
        assert status == "passed" and (not case.expect.get("codes") or any("differ" in n for n in notes)), case.id
        # an adapter that cannot categorise passes on rejection alone, with a note
        status, _, _, notes = harness.judge(case, harness.Reply("answer", 1, {"errors": [{"category": None}]}), set())
        assert status == "passed" and notes
    vr = next(c for c in CASES if c.id.startswith("versionreq/match/") and "normalized" in c.expect)
    good = _answer(vr)
    assert _status(vr, good) == "passed"
    assert _status(vr, harness.Reply("answer", 0, {**good.result, "matches": False})) == "failed"
    assert _status(vr, harness.Reply("answer", 0, {**good.result, "normalized": "x"})) == "failed"
    assert _status(vr, harness.Reply("answer", 0, {**good.result, "normalized": "x"}), FEATURES - {"normalized-versionreq"}) == "passed"


def test_infer_answers_are_judged_with_tolerances() -> None:
    case = next(c for c in CASES if c.id == "infer/torchscript/affine-tolerance")
    expected = json.loads((case.directory / "expected.json").read_text())
    outputs = expected["outputs"]
    assert _status(case, harness.Reply("answer", 0, {"outputs": outputs})) == "passed"
    import copy

    near = copy.deepcopy(outputs)
    near["y"]["values"] = [v * (1 + 5e-3) for v in near["y"]["values"]]
    assert _status(case, harness.Reply("answer", 0, {"outputs": near})) == "passed"  # rtol 1e-2
    far = copy.deepcopy(outputs)
    far["y"]["values"][0] = far["y"]["values"][0] * 1.5 + 1
    assert _status(case, harness.Reply("answer", 0, {"outputs": far})) == "failed"
    extra = {**outputs, "more": outputs["y"]}
    assert _status(case, harness.Reply("answer", 0, {"outputs": extra})) == "failed"
    retyped = copy.deepcopy(outputs)
    retyped["y"]["dtype"] = "float64"
    assert _status(case, harness.Reply("answer", 0, {"outputs": retyped})) == "failed"
    strict = next(c for c in CASES if c.id == "infer/torchscript/double-int64-exact")
    out = json.loads((strict.directory / "expected.json").read_text())["outputs"]
    out["y"]["values"][0] -= 1
    assert _status(strict, harness.Reply("answer", 0, {"outputs": out})) == "failed"


FAKE = r'''
import json, sys, time
mode, op = sys.argv[1], sys.argv[2]
if op == "capabilities":
    print(json.dumps({"protocol": 1, "name": "fake", "kinds": ["inspect", "versionreq"], "features": ["error-categories"],
                      "persistent": mode.startswith("serve")}))
    sys.exit(0)
if op == "serve":
    import os
    marker = sys.argv[0] + ".once"
    for line in sys.stdin:
        req = json.loads(line)
        if mode in ("serve-dies", "serve-hangs") and not os.path.exists(marker):
            open(marker, "w").close()  # misbehave once, on the first request
            if mode == "serve-dies":
                sys.exit(3)
            time.sleep(60)
        print(json.dumps({"seq": req["seq"], "exit": 1, "result": {"valid": False, "errors": [{"category": "versionreq"}]}}), flush=True)
    sys.exit(0)
if mode == "crash":
    sys.exit(3)
if mode == "traceback":
    print("Traceback (most recent call last):\n  oops", file=sys.stderr)
    print(json.dumps({"valid": False, "errors": [{"category": "versionreq"}]}))
    sys.exit(1)
if mode == "garbage":
    print("not json")
    sys.exit(0)
if mode == "slow":
    time.sleep(60)
print(json.dumps({"valid": False, "errors": [{"category": "versionreq"}]}))
sys.exit(1)
'''


@pytest.mark.parametrize(
    "mode, failure",
    [("crash", "crash"), ("traceback", "crash"), ("garbage", "protocol"), ("slow", "timeout"), ("reject", None),
     ("serve-dies", "crash"), ("serve-hangs", "timeout"), ("serve", None)],
)
def test_adapter_failures_are_failures(tmp_path: Path, mode: str, failure: str | None) -> None:
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    cases = [c for c in CASES if c.id.startswith("versionreq/invalid/")][:2]
    adapter = harness.Adapter(shlex.join([sys.executable, str(script), mode]))
    try:
        run = harness.run_cases(cases, adapter, timeout=1)
    finally:
        adapter.close()
    first = run.results[0]
    if failure is None:
        assert [r.status for r in run.results] == ["passed", "passed"]
    else:
        assert first.status == "failed" and first.failure == failure, first
    if mode.startswith("serve-"):
        assert run.results[1].status == "passed"  # restarted after the crash or timeout
    skipped = harness.run_cases([c for c in CASES if c.kind == "infer"][:1], adapter)
    assert skipped.results[0].status == "skipped"


# -- the original implementation's published results ----------------------------------------------------------


@pytest.mark.interop
def test_original_results_match_the_published_table() -> None:
    python = require_original()
    adapter = harness.Adapter(shlex.join([python, str(harness.PACKAGE / "adapters" / "original.py")]),
                              env={**os.environ, "RUST_BACKTRACE": "0"})
    try:
        run = harness.run_cases(CASES, adapter, known=harness.load_known_failures(KNOWN / "original.toml"))
    finally:
        adapter.close()
    assert run.unexpected(strict=True) == [], harness.format_summary(run, strict=True)
    totals = run.totals()
    assert totals["passed"] > 100 and totals["known_failures"] > 100
