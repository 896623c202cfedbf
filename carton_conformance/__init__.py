"""Carton v1 conformance suite: language-neutral cases, a harness and adapters (carton_conformance/README.md)."""
