"""A channel round trip with the installed `iii` wheel: 20 MiB written in 1 MiB pieces to a
function that reads it all, started before the writes; prints one JSON line."""

import asyncio
import hashlib
import json
import os

import iii

SIZE = 20 * 1024 * 1024
PIECE = 1024 * 1024

worker = iii.register_worker(os.environ["III_URL"])


def consume(data):
    body = data["reader"].read_all()
    return {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


worker.register_function("packaging::consume", consume)


async def main() -> dict:
    channel = await worker.create_channel_async()
    call = asyncio.ensure_future(worker.trigger_async({
        "function_id": "packaging::consume",
        "payload": {"reader": channel.reader_ref.model_dump()},
    }))
    payload = os.urandom(SIZE)
    for start in range(0, SIZE, PIECE):
        await channel.writer.write(payload[start:start + PIECE])
    await channel.writer.close_async()
    result = await call
    expected = {"bytes": SIZE, "sha256": hashlib.sha256(payload).hexdigest()}
    assert result == expected, (result, expected)
    return {"python": "ok", "bytes": result["bytes"], "package": os.path.dirname(iii.__file__)}


print(json.dumps(asyncio.run(main())), flush=True)
worker.shutdown()
