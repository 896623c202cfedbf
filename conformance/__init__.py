"""Language-neutral Carton conformance suite: not implemented yet, see issue 4."""
