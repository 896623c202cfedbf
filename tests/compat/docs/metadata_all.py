# ruff: noqa
# docs/website/pages/docs/metadata.mdx (python): the first block, with the `# ...` in main()
# completed by the page's field blocks, in page order (each block's lines unchanged).
# Changed: the import.
import asyncio
import carton_runtime as carton

async def main():
    info = await carton.get_model_info("https://carton.pub/cartonml/basic_example")

    # ... (completion: the field blocks of the page follow)
    print(info.model_name)
    # 'Test Model'
    print(info.short_description)
    # 'A short description that should be less than or equal to 100 characters.'
    print(info.model_description)
    print(info.license)
    print(info.repository)
    print(info.homepage)
    print(info.required_platforms)
    print(info.inputs)
    print(info.outputs)
    print(info.self_tests)

    # Note: To get the value of an input or output tensor, call `get()` on it
    # For example:
    # await info.self_tests[0].inputs["f"].get()
    print(info.examples)

    # Note: To get the value of an input or output tensor, call `get()` on it
    # For example:
    # await info.examples[0].inputs["x"].get()
    #
    # To read a misc file, call `read()` on it.
    # For example:
    # await info.examples[0].inputs["some_misc_input"].read()
    print(info.misc_files)

    # To read a misc file, call `read()` on it.
    # For example:
    # await info.misc_files["model_architecture.png"].read()

    global fetched_info  # completion: lets the test look at what the page printed
    fetched_info = info

asyncio.run(main())
