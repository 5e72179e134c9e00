"""The same API blocks in plain code and is awaitable in async code; a blocking call made
where it would freeze a running asyncio loop is refused with a RuntimeError that names the
awaitable form."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest


def echo_upper(data):
    """A sync handler: reads its reader to the end, writes the upper-cased bytes back."""
    payload = data["input"].read_all()
    data["output"].stream.write(payload.upper())
    data["output"].stream.end()
    return {"read": len(payload)}


@pytest.mark.timeout(20)
def test_blocking_api_in_plain_code(worker):
    worker.register_function("t::upper", echo_upper)
    inbound, outbound = worker.create_channel(), worker.create_channel()
    assert inbound.writer.write(b"hello ") is None
    inbound.writer.send_message(json.dumps({"note": "ignored by the reader's bytes"}))
    inbound.writer.write(bytearray(b"plain "))
    inbound.writer.write(memoryview(b"code"))
    inbound.writer.close()
    result = worker.trigger({
        "function_id": "t::upper",
        "payload": {"input": inbound.reader_ref.model_dump(), "output": outbound.writer_ref.model_dump()},
    })
    assert result == {"read": 16}
    assert b"".join(chunk for chunk in outbound.reader) == b"HELLO PLAIN CODE"


@pytest.mark.timeout(20)
def test_asyncio_run_with_awaitable_forms(worker):
    worker.register_function("t::upper", echo_upper)

    async def main():
        await worker.ready_async()
        inbound = await worker.create_channel_async()
        outbound = await worker.create_channel_async()
        call = worker.trigger_async({
            "function_id": "t::upper",
            "payload": {"input": inbound.reader_ref, "output": outbound.writer_ref},
        })
        write = inbound.writer.write(b"from asyncio")
        assert inspect.isawaitable(write), "write() under a running loop must be awaitable"
        await write
        await inbound.writer.write_async(b" run")
        await inbound.writer.close_async()
        read = outbound.reader.read_all()
        assert inspect.isawaitable(read), "read_all() under a running loop must be awaitable"
        return await call, await read

    result, data = asyncio.run(main())
    assert result == {"read": len(b"from asyncio run")}
    assert data == b"FROM ASYNCIO RUN"


@pytest.mark.timeout(20)
async def test_stream_views_under_a_loop(worker):
    """`writer.stream.write` / `end` and `async for chunk in reader.stream`, as the guide's
    table shows them."""
    channel = await worker.create_channel_async()
    await channel.writer.stream.write(b"one ")
    await channel.writer.stream.end(b"two")
    chunks = [chunk async for chunk in channel.reader.stream]
    assert b"".join(chunks) == b"one two"


@pytest.mark.timeout(20)
async def test_blocking_calls_inside_a_running_loop_raise(worker):
    worker.register_function("t::one", lambda _data: 1)
    channel = await worker.create_channel_async()
    calls = {
        "trigger_async": lambda: worker.trigger({"function_id": "t::one", "payload": {}}),
        "create_channel_async": lambda: worker.create_channel(),
        "ready_async": lambda: worker.ready(),
        "__anext__": lambda: next(iter(channel.reader)),
    }
    for async_form, call in calls.items():
        with pytest.raises(RuntimeError, match=f"await {async_form}") as info:
            call()
        assert "asyncio event loop" in str(info.value)
    # The loop was never blocked: the awaitable forms still work.
    assert await worker.trigger_async({"function_id": "t::one", "payload": {}}) == 1
