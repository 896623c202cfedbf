"""Shared test helpers (not tests): archive builders, a raw zip parser, spec-test assertions and
the bridge to the original implementation.

    from tests.helpers.cartoncraft import build, sample_info, write_sample   # valid archives, members
    from tests.helpers.spechelp import craft, expect_error, expect_ok          # test_spec_*.py helpers
    from tests.helpers import rawzip                                           # zip parser, independent
    from tests.helpers.original import original_describe, require_original     # the original, own venv
    from tests.helpers.samples import write_kitchen_sink                       # interop sample archives
    from carton_conformance.gen import zipcraft as zc                          # raw zip bytes, by field

original_probe.py is a script run by the original's Python (through original.py), never imported.
"""

from pathlib import Path

#: the repository root and the test data directory, for tests at any depth under tests/
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
