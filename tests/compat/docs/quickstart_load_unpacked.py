# ruff: noqa
# docs/website/pages/quickstart.mdx, "Load an unpacked model" (python). Changed: the import.
import asyncio
import carton_runtime as carton

async def main():
    model = await carton.load_unpacked(
        "/path/to/model.pt",
        runner_name="torchscript",
        # `required_framework_version` is a semver version range.
        # The below value means any 2.0.x version is okay.
        required_framework_version="=2.0"
    )

asyncio.run(main())
