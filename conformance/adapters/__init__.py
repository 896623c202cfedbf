"""Adapters: the conformance protocol spoken by each implementation (see conformance/README.md)."""
