"""Tests of the format layer (carton_format): reader, writer, validator, schemas, CLI, interop."""
