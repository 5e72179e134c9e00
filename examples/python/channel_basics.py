"""The channel guide's (docs/ARCHITECTURE.md, Examples) steps (Python tabs), as written: create a channel, write to it with
the blocking API, hand its reader ref to `files::process` through ``trigger()``, and read the
stream there with ``async for``.

Run it against a running engine (default ws://localhost:49134; set III_URL otherwise):

    iii &
    python examples/python/channel_basics.py

It prints what `files::process` read as one JSON line.
"""

import json
import os

from iii import register_worker

iii_client = register_worker(os.environ.get("III_URL", "ws://localhost:49134"))


async def process(input_data):
    # Step 4: read data from the channel.
    chunks = []
    async for chunk in input_data["reader"]:
        chunks.append(chunk)
    data = b"".join(chunks)

    return {
        "filename": input_data["filename"],
        "chunks": len(chunks),
        "text": data.decode("utf-8"),
    }


def main() -> None:
    iii_client.register_function("files::process", process)

    # Step 1: create a channel.
    channel = iii_client.create_channel()

    # channel.writer      — ChannelWriter (local writable stream)
    # channel.reader      — ChannelReader (local readable stream)
    # channel.writer_ref  — StreamChannelRef (serializable)
    # channel.reader_ref  — StreamChannelRef (serializable)

    # Step 3: write data to the channel. The engine holds what is written until the reader
    # connects, so this small stream can be written before the call that reads it.
    channel.writer.write(b"first chunk")
    channel.writer.write(b"second chunk")
    channel.writer.close()  # signals completion

    # Step 2: pass the ref to another function.
    result = iii_client.trigger({
        "function_id": "files::process",
        "payload": {
            "filename": "report.csv",
            "reader": channel.reader_ref.model_dump(),
        },
    })

    print(json.dumps(result), flush=True)
    iii_client.shutdown()


if __name__ == "__main__":
    main()
