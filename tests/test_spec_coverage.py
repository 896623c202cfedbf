"""Traceability: every requirement of spec/format-v1.md is checked by at least one test.

Tests cite requirements with ``@pytest.mark.spec("FMT-AREA-N", ...)`` (see conftest.py).  This
module fails, listing them, for requirements that no test cites (except the explicit runtime
list below) and for markers that cite an id the spec does not define.  The record covers the
whole tree: every ``test_*.py`` under tests/ (tests/format, tests/conformance, tests/runtime, ...).
When the session did not collect all of them (``pytest tests/test_spec_coverage.py``, or
``--ignore=tests/runtime``), the whole suite is collected once in a subprocess to get the
complete record.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import COLLECTED_MODULES, DUMP_ENV, SPEC_CITATIONS

TESTS = Path(__file__).resolve().parent
SPEC = TESTS.parent / "spec" / "format-v1.md"
REQUIREMENT_LINE = re.compile(r"^- \*\*(FMT-[A-Z]+-[1-9][0-9]*)\*\* \((?:W|R|W,R)\) ", re.MULTILINE)

#: Requirements that only the runtime can check (runner selection, fetching LINKS over the
#: network); their tests live with the runtime.  Exact: an id cited by a test of this suite must
#: leave this list (test_runtime_deferred_list_is_exact).
RUNTIME_DEFERRED: dict[str, str] = {}  # every requirement, the runtime's included, has tests now


def spec_requirements() -> list[str]:
    ids = REQUIREMENT_LINE.findall(SPEC.read_text("utf-8"))
    assert len(ids) == len(set(ids)), "duplicate requirement ids in the spec"
    return ids


def suite_modules() -> set[Path]:
    """Every test module of the suite, at any depth under tests/."""
    return {p.resolve() for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts}


def _whole_suite_collected(config: pytest.Config) -> bool:
    return suite_modules() <= config.stash.get(COLLECTED_MODULES, set())


def _collect_in_subprocess(tmp_path: Path) -> tuple[dict[str, list[str]], set[Path]]:
    out = tmp_path / "citations.json"
    env = {**os.environ, DUMP_ENV: str(out)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(TESTS)],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads(out.read_text("utf-8"))
    return record["citations"], {Path(p) for p in record["modules"]}


@pytest.fixture(scope="module")
def record(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[object, list[str]], set[Path]]:
    """(requirement id -> tests citing it, test modules collected), for the whole suite."""
    if _whole_suite_collected(request.config):
        return request.config.stash[SPEC_CITATIONS], request.config.stash[COLLECTED_MODULES]
    return _collect_in_subprocess(tmp_path_factory.mktemp("spec-citations"))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def citations(record: tuple[dict[object, list[str]], set[Path]]) -> dict[object, list[str]]:
    """Requirement id -> tests citing it, for the whole suite."""
    return record[0]


def test_the_record_covers_every_test_module(record: tuple[dict[object, list[str]], set[Path]]) -> None:
    modules = suite_modules()
    assert len(modules) >= 30 and {"format", "conformance", "runtime"} <= {p.parent.name for p in modules}
    missing = sorted(str(p.relative_to(TESTS.parent)) for p in modules - record[1])
    assert not missing, "test modules the collection did not reach (no tests, or not collected): " + ", ".join(missing)


def test_every_test_directory_is_a_package() -> None:
    """tests/ and every directory below it that holds Python files (tests/data aside) has an __init__.py,
    so modules are named by their package (tests.format.test_cli) and names never clash."""
    dirs = {p.parent for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts and (TESTS / "data") not in p.parents}
    missing = sorted(str(d.relative_to(TESTS.parent)) for d in dirs if not (d / "__init__.py").is_file())
    assert not missing, "directories without __init__.py: " + ", ".join(missing)


def test_spec_defines_requirements() -> None:
    ids = spec_requirements()
    assert len(ids) >= 100
    assert set(RUNTIME_DEFERRED) <= set(ids), sorted(set(RUNTIME_DEFERRED) - set(ids))


def test_every_requirement_has_a_test(citations: dict[object, list[str]]) -> None:
    missing = [rid for rid in spec_requirements() if rid not in citations and rid not in RUNTIME_DEFERRED]
    assert not missing, f"{len(missing)} requirement(s) without a test citing them with @pytest.mark.spec: " + ", ".join(missing)


def test_every_cited_id_exists(citations: dict[object, list[str]]) -> None:
    defined = set(spec_requirements())
    unknown = {rid: tests for rid, tests in citations.items() if not (isinstance(rid, str) and rid in defined)}
    lines = [f"{rid!r} cited by {', '.join(tests[:3])}{' ...' if len(tests) > 3 else ''}" for rid, tests in unknown.items()]
    assert not unknown, "spec markers citing ids that spec/format-v1.md does not define:\n" + "\n".join(lines)


def test_runtime_deferred_list_is_exact(citations: dict[object, list[str]]) -> None:
    now_tested = sorted(rid for rid in RUNTIME_DEFERRED if rid in citations)
    assert not now_tested, f"now cited by tests, remove from RUNTIME_DEFERRED: {', '.join(now_tested)}"
