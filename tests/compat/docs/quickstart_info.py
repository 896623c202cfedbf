# ruff: noqa
# docs/website/pages/quickstart.mdx, "Fetch model metadata" (python). Changed: the import.
import asyncio
import carton_runtime as carton

async def main():
    info = await carton.get_model_info("https://carton.pub/cartonml/basic_example")

    print(info.model_name)
    # 'Test Model'

    print(info.short_description)
    # 'A short description that should be less than or equal to 100 characters.'

asyncio.run(main())
