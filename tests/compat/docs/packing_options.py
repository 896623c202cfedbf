# ruff: noqa
# docs/website/pages/docs/packing/options.mdx (python). Changed: the imports
# (`from cartonml import ...` -> `from carton_runtime import ...`). Completed: every
# `await carton.pack(# ..., OPTION)` fragment packs the docs' TorchScript doubler
# (`# ...` -> PACK_ARGS below) into its own archive, collected in `packed[OPTION]`; the blocks run
# in page order inside `async def main()`; '/path/to/...' files are generated PNGs.
import asyncio
import carton_runtime as carton

PACK_ARGS = dict(path="/path/to/doubler.pt", runner_name="torchscript", required_framework_version="=2.0")  # completion of `# ...`
packed = {}

async def main():
    packed["model_name"] = await carton.pack(
        **PACK_ARGS,
        model_name = "super_awesome_test_model",
    )

    packed["short_description"] = await carton.pack(
        **PACK_ARGS,
        short_description = "A short description that should be less than or equal to 100 characters.",
    )

    MODEL_DESCRIPTION = """
Some description of the model that can be as detailed as you want it to be

This can span multiple lines. It can use markdown, but shouldn't use arbitrary HTML
(which will usually be treated as text instead of HTML when this is rendered)

You can use images and links, but the paths must either be complete https
URLs (e.g. https://example.com/image.png) or must reference a file in the misc folder (e.g `@misc/file.png`).
See the `misc_files` section of this document for more details
"""

    packed["model_description"] = await carton.pack(
        **PACK_ARGS,
        model_description = MODEL_DESCRIPTION,
    )

    packed["license"] = await carton.pack(
        **PACK_ARGS,
        license = "Apache-2.0",
    )

    packed["repository"] = await carton.pack(
        **PACK_ARGS,
        repository = "https://github.com/VivekPanyam/carton",
    )

    packed["homepage"] = await carton.pack(
        **PACK_ARGS,
        homepage = "https://carton.run",
    )

    packed["required_platforms"] = await carton.pack(
        **PACK_ARGS,

        # The contents of this list are target triples. For example:
        # x86_64-unknown-linux-gnu
        # aarch64-unknown-linux-gnu
        # x86_64-apple-darwin
        # aarch64-apple-darwin
        required_platforms = [],
    )

    from carton_runtime import TensorSpec

    input_x = TensorSpec(
        # The name of the input or output
        name="x",

        # The datatype of the tensor.  Valid values are
        # - float32
        # - float64
        # - string
        # - int8
        # - int16
        # - int32
        # - int64
        # - uint8
        # - uint16
        # - uint32
        # - uint64
        dtype = "float32",

        # A shape of none means the tensor can be of any shape
        shape = None,

        # A shape with 3 dims of any value
        # Note: this also supports ragged/nested tensors
        # shape = [None, None, None],

        # A shape of an exact size
        # shape = [2, 3, 512, 512],

        # A scalar
        # shape = [],

        # A shape containing a "symbol"
        # shape = ["batch_size", 3, 512, 512],

        # A symbol is an arbitrary string that should resolve to the same value each time it's used.
        # (i.e. at runtime, every dimension of size "batch_size" should
        # resolve to the same concrete value)

        # A symbol for the overall shape:
        # shape = "input_shape",

        # Optional
        description = "The input image as a NCHW tensor"
    )

    packed["inputs"] = await carton.pack(
        **PACK_ARGS,
        inputs = [input_x],
    )

    packed["outputs"] = await carton.pack(
        **PACK_ARGS,
        outputs = [],
    )

    from carton_runtime import SelfTest
    import numpy as np

    st = SelfTest(
        # Optional
        name = "a_self_test",

        # Optional
        description = "A self test",

        # A dict mapping input tensor names to values
        inputs = dict(x = np.ones(5, dtype=np.float32)),

        # Optional
        # If specified, the output will be compared using
        # something conceptually similar to np.allclose
        # Note: this comparison is not currently implemented, but may be in the future
        expected_out = dict(out = np.ones(5, dtype=np.float32) * 2)
    )

    packed["self_tests"] = await carton.pack(
        **PACK_ARGS,
        self_tests = [st],
    )

    from carton_runtime import Example
    import numpy as np

    # Read an input image
    with open('/path/to/input.png', 'rb') as f:
        input_image = f.read()

    e = Example(
        # Optional
        name = "an_optional_name",

        # Optional
        description = "An example for classification of an image",

        # A dict mapping input tensor names to values
        inputs = dict(x = input_image),

        # A dict mapping output tensor names to values
        sample_out = dict(out = np.array(5))
    )

    packed["examples"] = await carton.pack(
        **PACK_ARGS,
        examples = [e],
    )

    # ... (the misc_files block defines its own main(); completed as misc_main below)

asyncio.run(main())

MODEL_DESCRIPTION = """
This model has an interesting architecture:

![Model Architecture](@misc/model_architecture.png)
"""

async def misc_main():  # the block's `async def main()`, renamed so both run
    with open('/path/to/model_architecture.png', 'rb') as f:
        model_architecture = f.read()

    packed["misc_files"] = await carton.pack(
        **PACK_ARGS,
        model_description = MODEL_DESCRIPTION,
        misc_files = {
            "model_architecture.png": model_architecture
        }
    )

asyncio.run(misc_main())
