"""The channels reference (Python tabs), as written, with the awaitable API under
``asyncio.run``: create a channel, write and close it, hand its reader ref to
`files::process` with ``trigger_async``; then hand a writer ref to `files::generate` and read
what it writes with ``async for``.

Run it against a running engine (default ws://localhost:49134; set III_URL otherwise):

    iii &
    python examples/python/channel_async.py

It prints both functions' results and what was read back as one JSON line.
"""

import asyncio
import json
import os

from iii import register_worker

iii_client = register_worker(os.environ.get("III_URL", "ws://localhost:49134"))
worker = iii_client  # the reference names the same worker both ways


async def process_file(input: dict) -> dict:
    reader = input["reader"]
    total = 0
    async for chunk in reader:
        total += len(chunk)
    return {"bytes": total}

worker.register_function("files::process", process_file)


async def generate_file(input: dict) -> dict:
    writer = input["writer"]
    await writer.write(b"hello ")
    await writer.write(b"world")
    await writer.close_async()
    return {"ok": True}

worker.register_function("files::generate", generate_file)


async def write_then_process() -> dict:
    # Write to a channel.
    channel = await iii_client.create_channel_async()

    await channel.writer.write(b"file contents")
    await channel.writer.close_async()

    # Pass a channel ref to another function.
    result = await iii_client.trigger_async({
        "function_id": "files::process",
        "payload": {
            "filename": "report.csv",
            "reader": channel.reader_ref.model_dump(),
        },
    })
    return result


async def generate_then_read() -> dict:
    # Read from a channel, written by `files::generate` through the writer ref.
    channel = await iii_client.create_channel_async()
    generated = asyncio.ensure_future(iii_client.trigger_async({
        "function_id": "files::generate",
        "payload": {"writer": channel.writer_ref.model_dump()},
    }))

    bytes_total = 0
    data = b""
    async for chunk in channel.reader:
        bytes_total += len(chunk)
        data += chunk

    return {"result": await generated, "bytes_total": bytes_total, "text": data.decode("utf-8")}


async def main() -> None:
    processed = await write_then_process()
    generated = await generate_then_read()
    print(json.dumps({"process": processed, "generate": generated}), flush=True)
    iii_client.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
