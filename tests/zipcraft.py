"""Raw zip bytes field by field, for tests: the conformance generator's zipcraft, re-exported.

One implementation serves both: the conformance cases are built with it, and
tests/test_conformance.py checks that regenerating them is byte-identical, so a change here
that alters archive bytes is caught there.
"""

from conformance.gen.zipcraft import *  # noqa: F403
from conformance.gen.zipcraft import __dict__ as _source

globals().update({k: v for k, v in _source.items() if not k.startswith("__")})
