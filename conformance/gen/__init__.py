"""The deterministic generator of the conformance cases (see conformance/generate.py)."""
