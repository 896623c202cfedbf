# ruff: noqa
# docs/website/pages/quickstart.mdx, "Logging" (python). Changed: nothing (no cartonml import);
# completed: the last line runs main() (the docs leave calling it to the reader).
import logging

async def main():
    # Configure logging format
    FORMAT = '[%(asctime)s %(levelname)s %(name)s] %(filename)s:%(lineno)d %(message)s'
    logging.basicConfig(format=FORMAT)

    # If you want trace messages to show up, set the log level to <= 5
    # logging.getLogger().setLevel(5)
    logging.getLogger().setLevel(logging.INFO)

import asyncio; asyncio.run(main())  # completion
