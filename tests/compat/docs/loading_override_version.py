# ruff: noqa
# docs/website/pages/docs/loading.mdx, "Options" (python): the
# `override_required_framework_version` fragment, completed: `# ...` -> the path of a packed
# *python* model (the fragment's comment says it is one), inside `async def main()`.
import asyncio
import carton_runtime as carton

async def main():
    await carton.load(
        "/path/to/packed_python_model.carton",  # completion of `# ...`

        # If we know this is a python model and we want to force it to
        # run with a `3.10.x` version of python.
        override_required_framework_version = "=3.10",
    )

asyncio.run(main())
