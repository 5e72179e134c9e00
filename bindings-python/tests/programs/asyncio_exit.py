"""Uses the awaitable API under asyncio.run, then shuts the worker down and lets the
interpreter exit right away: the process must exit 0. Prints the results as JSON."""

import asyncio
import json
import os

import iii

worker = iii.register_worker(os.environ["III_URL"])


async def double(data):
    return data["n"] * 2


FUNCTION = f"p::double::{os.getpid()}"  # several of these programs share one engine
worker.register_function(FUNCTION, double)


async def main():
    channel = await worker.create_channel_async()
    await channel.writer.write(b"bytes")
    await channel.writer.close_async()
    data = await channel.reader.read_all()
    answer = await worker.trigger_async({"function_id": FUNCTION, "payload": {"n": 21}})
    return {"data": data.decode(), "answer": answer}


print(json.dumps(asyncio.run(main())), flush=True)
worker.shutdown()
