"""The deterministic generator of the conformance cases (see carton_conformance/generate.py)."""
