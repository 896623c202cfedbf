"""Carton v1 conformance suite: language-neutral cases, a harness and adapters (conformance/README.md)."""
