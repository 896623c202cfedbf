"""Suite-wide pytest configuration: the ``spec`` marker that ties tests to spec requirements.

``@pytest.mark.spec("FMT-ZIP-1", ...)`` on a test (or on a ``pytest.param`` case, or as a
module's ``pytestmark``) says that the test checks those requirements of spec/format-v1.md.
Every session records which ids its collected tests cite (before ``-k``/``-m`` deselection, and
in every pytest-xdist worker, each of which collects the whole suite); test_spec_coverage.py
reads the record and fails for requirements without a test and for ids the spec does not define.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

#: requirement id (or whatever a marker passed) -> node ids of the tests citing it
SPEC_CITATIONS = pytest.StashKey[dict[object, list[str]]]()
#: test modules the session collected (to know whether the record covers the whole suite)
COLLECTED_MODULES = pytest.StashKey[set[Path]]()
#: set by test_spec_coverage.py when it collects the suite in a subprocess
DUMP_ENV = "CARTON_SPEC_CITATIONS_OUT"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "spec(*ids): the test checks these requirements of spec/format-v1.md, e.g. spec('FMT-ZIP-1')",
    )


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect anything
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    cited: dict[object, list[str]] = {}
    for item in items:
        for mark in item.iter_markers("spec"):
            for requirement in mark.args or (None,):  # a bare @pytest.mark.spec cites "None"
                cited.setdefault(requirement, []).append(item.nodeid)
    config.stash[SPEC_CITATIONS] = cited
    config.stash[COLLECTED_MODULES] = {Path(str(item.path)).resolve() for item in items}
    out = os.environ.get(DUMP_ENV)
    if out:
        record = {"citations": {str(k): v for k, v in cited.items()}, "modules": sorted(map(str, config.stash[COLLECTED_MODULES]))}
        Path(out).write_text(json.dumps(record), "utf-8")


@pytest.fixture(autouse=True, scope="session")
def _private_carton_cache(tmp_path_factory: pytest.TempPathFactory):
    """No test touches the user's real cache: the runtime (and every subprocess a test starts)
    caches under a session temporary directory unless CARTON_CACHE_DIR is already set."""
    patch = pytest.MonkeyPatch()
    if "CARTON_CACHE_DIR" not in os.environ:
        patch.setenv("CARTON_CACHE_DIR", str(tmp_path_factory.mktemp("carton-cache")))
    if "CARTON_RUNNER_DATA_DIR" not in os.environ:  # runner environments: one directory per session
        from tests.helpers.python_envs import session_runner_data_dir

        patch.setenv("CARTON_RUNNER_DATA_DIR", str(session_runner_data_dir(tmp_path_factory)))
    yield
    patch.undo()
