# ruff: noqa
# docs/website/pages/docs/packing/python.mdx, "Packaging" (python). Changed: the import.
import asyncio
import carton_runtime as carton

async def main():
    packed_model_path = await carton.pack(
        # Path to the code directory from above
        "/path/to/code_dir",

        # This model runs with the python runner
        runner_name="python",

        # `required_framework_version` is a semver version range.
        #
        # See https://docs.rs/semver/1.0.16/semver/enum.Op.html and
        # https://docs.rs/semver/1.0.16/semver/struct.VersionReq.html
        # We want to run this model with Python 3.10.
        # The below value means any 3.10.x version is okay.
        required_framework_version="=3.10",

        # Options for the python runner (including entrypoint info) go here
        runner_opts={
            # `carton_entrypoint.py` from above
            "entrypoint_package": "carton_entrypoint",

            # The `get_model` function from above
            "entrypoint_fn": "get_model",

            # A custom option specific to your model. This is passed to your
            # entrypoint function without the `model.` prefix
            "model.an_example_custom_option": False,
        }
    )
    global packed  # completion: lets the test load what the page packed
    packed = packed_model_path

asyncio.run(main())
