# ruff: noqa
# docs/website/pages/docs/loading.mdx, "Options" (python): the `visible_device` and
# `override_runner_opts` fragments, completed: each `await carton.load(# ..., OPTION)` becomes a
# load of a packed TorchScript model (`# ...` -> "/path/to/packed.carton") inside `async def main()`.
import asyncio
import carton_runtime as carton

async def main():
    global visible_device_model, runner_opts_model

    visible_device_model = await carton.load(
        "/path/to/packed.carton",  # completion of `# ...`
        visible_device = "0",
    )

    runner_opts_model = await carton.load(
        "/path/to/packed.carton",  # completion of `# ...`
        override_runner_opts = {
            # For example, if we know this is a torchscript model and we want to set
            # threading configuration for running this model.
            "num_interop_threads": 4,
            "num_threads": 1,
        },
    )

asyncio.run(main())
