"""The channel guide's (docs/ARCHITECTURE.md, Examples) "Bidirectional Streaming with Progress" example (shown there in Node),
in Python: `transform::coordinator` streams text to `transform::worker` over one channel; the
worker reports progress as text messages and streams the upper-cased text back over a second
channel. Both handlers are ``async def`` and use the awaitable API.

Run it against a running engine (default ws://localhost:49134; set III_URL otherwise):

    iii &
    python examples/python/bidirectional.py

It registers both functions, triggers the coordinator once and prints its result (the text,
the progress messages and the worker's answer) as one JSON line.
"""

import asyncio
import json
import os

from iii import register_worker

iii_client = register_worker(os.environ.get("III_URL", "ws://localhost:49134"))


async def transform_worker(input_data):
    reader = input_data["reader"]
    writer = input_data["writer"]
    chunks = []
    count = 0

    async for chunk in reader:
        chunks.append(chunk)
        count += 1
        await writer.send_message_async(json.dumps({"type": "progress", "chunks": count}))

    result = b"".join(chunks).decode("utf-8").upper()
    await writer.write(result.encode("utf-8"))
    await writer.close_async()

    return {"status": "done", "chunks": count}


async def transform_coordinator(input_data):
    input_channel = await iii_client.create_channel_async()
    output_channel = await iii_client.create_channel_async()

    progress = []
    output_channel.reader.on_message(lambda msg: progress.append(json.loads(msg)))

    # The text goes in `pieces` writes, so the worker has several chunks to report on.
    text = input_data["text"].encode("utf-8")
    pieces = input_data.get("pieces", 1)
    step = -(-len(text) // pieces)
    for start in range(0, len(text), step):
        await input_channel.writer.write(text[start:start + step])
    await input_channel.writer.close_async()

    trigger = asyncio.ensure_future(iii_client.trigger_async({
        "function_id": "transform::worker",
        "payload": {
            "reader": input_channel.reader_ref.model_dump(),
            "writer": output_channel.writer_ref.model_dump(),
        },
    }))

    result_chunks = []
    async for chunk in output_channel.reader:
        result_chunks.append(chunk)

    worker = await trigger
    return {
        "result": b"".join(result_chunks).decode("utf-8"),
        "progress": progress,
        "worker": worker,
    }


def main() -> None:
    iii_client.register_function("transform::worker", transform_worker)
    iii_client.register_function("transform::coordinator", transform_coordinator)
    text = "".join(f"the quick brown fox jumps over the lazy dog {i}\n" for i in range(200))
    result = iii_client.trigger({
        "function_id": "transform::coordinator",
        "payload": {"text": text, "pieces": 8},
    })
    print(json.dumps(result), flush=True)
    iii_client.shutdown()


if __name__ == "__main__":
    main()
