"""Fuzzing the format layer with atheris: targets, seeds, a runner (``python -m fuzz``).

Nothing here is imported by the library; see fuzz/README.md.  This package imports nothing at
import time, so that the worker can import ``carton_format`` under atheris' instrumentation.
"""
