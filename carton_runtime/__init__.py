"""Carton runtime (TorchScript runner and the original's async API): not implemented yet, see issue 3."""
