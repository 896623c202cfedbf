"""Tests of the conformance suite (carton_conformance): cases, harness, adapters, generator."""
