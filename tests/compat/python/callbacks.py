"""Callbacks as asyncio programs written for the published client use them: an on_message
callback that completes a future of the caller's loop (the usual pattern), channel bytes
through iii.helpers, and the connection-state API."""

import asyncio
import json

from report import report
import os

from iii import InitOptions, register_worker
from iii.helpers import create_channel_async


async def main() -> dict:
    iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="compat-callbacks"))
    out = {}
    states = []
    unsubscribe = iii.add_connection_state_listener(states.append)
    channel = await create_channel_async(iii)
    loop = asyncio.get_running_loop()
    heard = loop.create_future()
    messages = []

    def on_message(text: str) -> None:
        messages.append(text)
        if text == "done" and not heard.done():
            heard.set_result(len(messages))

    channel.reader.on_message(on_message)

    async def produce() -> None:
        for i in range(3):
            await channel.writer.send_message_async(f"progress {i}")
            await channel.writer.write(b"x" * 1000)
        await channel.writer.send_message_async("done")
        await channel.writer.close_async()

    async def consume() -> bytes:
        data = b""
        async for chunk in channel.reader:
            data += chunk
        return data

    _, data = await asyncio.gather(produce(), consume())
    out["bytes"] = len(data)
    out["messages before done"] = await asyncio.wait_for(heard, 5)
    out["messages"] = messages
    out["state"] = iii.get_connection_state()
    out["states seen include connected"] = "connected" in states
    unsubscribe()
    unsubscribe()
    iii.shutdown()
    await asyncio.sleep(0.2)
    out["state after shutdown"] = iii.get_connection_state()
    return out


report(asyncio.run(main()))
