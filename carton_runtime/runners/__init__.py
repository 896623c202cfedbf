"""Runners: the interface (``base``) and the built-in TorchScript runner (``torchscript``)."""
