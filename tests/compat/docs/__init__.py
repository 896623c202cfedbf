"""The Python blocks of the original documentation, one file each; run by tests/compat/test_docs.py (never imported)."""
