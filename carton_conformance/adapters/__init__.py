"""Adapters: the conformance protocol spoken by each implementation (see carton_conformance/README.md)."""
