# ruff: noqa
# docs/website/pages/docs/packing/torchscript.mdx, "2. Pack the model" (python). Changed: the import.
import asyncio
import carton_runtime as carton

async def main():
    packed_model_path = await carton.pack(
        # Path to the model from above
        "/path/to/my/model.pt",

        # This model runs with the torchscript runner
        runner_name="torchscript",

        # `required_framework_version` is a semver version range.
        #
        # See https://docs.rs/semver/1.0.16/semver/enum.Op.html and
        # https://docs.rs/semver/1.0.16/semver/struct.VersionReq.html
        # We want to run this model with Torch 2.0.x.
        # The below value means any 2.0.x version is okay.
        required_framework_version="=2.0",
    )
    global packed  # completion: lets the test load what the page packed
    packed = packed_model_path

asyncio.run(main())
