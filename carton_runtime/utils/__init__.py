"""Helpers around packing that need optional extras (``carton_runtime.utils.hf``: ``pip install 'carton-py[hf]'``)."""
