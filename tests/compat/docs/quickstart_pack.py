# ruff: noqa
# docs/website/pages/quickstart.mdx, "Pack a model" (python). Changed: the import.
import asyncio
import carton_runtime as carton

async def main():
    packed_model_path = await carton.pack(
        "/path/to/model.pt",
        runner_name="torchscript",
        # `required_framework_version` is a semver version range.
        # The below value means any 2.0.x version is okay.
        required_framework_version="=2.0"
    )

asyncio.run(main())
