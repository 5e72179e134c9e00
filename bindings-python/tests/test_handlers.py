"""Functions written in Python: what handlers receive and return, how their failures reach
the caller, concurrency, and the trigger options (void action, timeout)."""

from __future__ import annotations

import asyncio
import threading
import time
import traceback

import pytest

import iii
from iii.channels import ChannelReader, ChannelWriter


# ---------------------------------------------------------------- results and failures

class Model:
    """Pydantic-style: serialized through model_dump()."""

    def __init__(self, **fields):
        self.fields = fields

    def model_dump(self):
        return dict(self.fields)


RESULTS = {
    "dict": ({"a": 1, "b": [True, None, 2.5, "x"]}, {"a": 1, "b": [True, None, 2.5, "x"]}),
    "list": ([1, "two", {"three": 3}], [1, "two", {"three": 3}]),
    "tuple": ((1, 2), [1, 2]),
    "model": (Model(name="report", size=3), {"name": "report", "size": 3}),
    "nested-model": ({"items": [Model(n=1), Model(n=2)]}, {"items": [{"n": 1}, {"n": 2}]}),
    "none": (None, None),
    "scalar": ("text", "text"),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", RESULTS)
@pytest.mark.parametrize("style", ["sync", "async"])
def test_return_values_are_json(worker, kind, style):
    value, expected = RESULTS[kind]
    if style == "sync":
        worker.register_function("t::value", lambda _data: value)
    else:
        async def handler(_data):
            return value

        worker.register_function("t::value", handler)
    assert worker.trigger({"function_id": "t::value", "payload": {}}) == expected


def failing_sync(data):
    raise ValueError(f"bad input {data['n']}")


async def failing_async(data):
    await asyncio.sleep(0)
    raise ValueError(f"bad input {data['n']}")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("handler", [failing_sync, failing_async], ids=["sync", "async"])
def test_handler_exception_is_invocation_error(worker, handler):
    worker.register_function("t::fail", handler)
    with pytest.raises(iii.InvocationError) as info:
        worker.trigger({"function_id": "t::fail", "payload": {"n": 42}})
    error = info.value
    assert isinstance(error, iii.IIIError)
    assert error.code == "invocation_failed"
    assert str(error) == "invocation_failed: bad input 42"  # the message alone, as published
    assert error.message == "bad input 42"
    assert error.stacktrace and "Traceback (most recent call last)" in error.stacktrace, error.stacktrace
    assert f"in {handler.__name__}" in error.stacktrace, error.stacktrace
    assert "raise ValueError(f\"bad input {data['n']}\")" in error.stacktrace, error.stacktrace
    assert isinstance(error.__cause__, iii.NativeError), repr(error.__cause__)
    # Printed, the remote traceback is a section of its own, one frame per line, followed by
    # the local one; the exception line carries the code and the message.
    printed = "".join(traceback.format_exception(error))
    assert isinstance(error.__cause__, iii.RemoteTraceback)
    assert "iii.errors.RemoteTraceback: \nTraceback (most recent call last):\n" in printed, printed
    assert f", in {handler.__name__}\n" in printed, printed
    assert "\nValueError: bad input 42\n" in printed, printed
    assert "The above exception was the direct cause of the following exception" in printed
    assert printed.rstrip().endswith("iii.errors.InvocationError: invocation_failed: bad input 42"), printed
    assert "\\n" not in printed, printed


@pytest.mark.timeout(20)
def test_unknown_function_is_invocation_error(worker):
    with pytest.raises(iii.InvocationError) as info:
        worker.trigger({"function_id": "t::missing", "payload": {}})
    assert info.value.code == "function_not_found"
    assert isinstance(info.value.__cause__, iii.NativeError)


@pytest.mark.timeout(20)
def test_unserializable_result_is_invocation_error(worker):
    worker.register_function("t::bytes", lambda _data: {"raw": b"\x00\x01"})
    with pytest.raises(iii.InvocationError) as info:
        worker.trigger({"function_id": "t::bytes", "payload": {}})
    assert info.value.code == "invocation_failed"
    assert "bytes" in str(info.value)


# ---------------------------------------------------------------- refs in the input

@pytest.mark.timeout(20)
def test_nested_refs_arrive_live(worker):
    """Refs inside dicts, lists and tuples of the payload arrive as live channel ends."""
    inbound = [worker.create_channel() for _ in range(2)]
    outbound = worker.create_channel()
    seen = {}

    def handler(data):
        first = data["jobs"][0]["source"]
        second = data["pair"][1]
        sink = data["deep"]["sinks"][0]["writer"]
        seen.update(first=type(first), second=type(second), sink=type(sink), label=data["pair"][0])
        sink.write(first.read_all() + b"|" + second.read_all())
        sink.close()
        return "ok"

    worker.register_function("t::refs", handler)
    for index, channel in enumerate(inbound):
        channel.writer.write(f"input {index}".encode())
        channel.writer.close()
    result = worker.trigger({
        "function_id": "t::refs",
        "payload": {
            "jobs": [{"source": inbound[0].reader_ref.model_dump()}],
            "pair": ("label", inbound[1].reader_ref),
            "deep": {"sinks": [{"writer": outbound.writer_ref.model_dump()}]},
        },
    })
    assert result == "ok"
    assert seen == {"first": ChannelReader, "second": ChannelReader, "sink": ChannelWriter, "label": "label"}
    assert outbound.reader.read_all() == b"input 0|input 1"


# ---------------------------------------------------------------- messages

@pytest.mark.timeout(20)
def test_on_message_alone_receives_messages(worker):
    """No read call: registering the callback starts receiving."""
    channel = worker.create_channel()
    got = []
    done = threading.Event()

    def on_message(text):
        got.append(text)
        if len(got) == 3:
            done.set()

    channel.reader.on_message(on_message)
    worker.register_function("t::talk", lambda data: [data["writer"].send_message(f"m{i}") for i in range(3)] and 3)
    assert worker.trigger({"function_id": "t::talk", "payload": {"writer": channel.writer_ref}}) == 3
    assert done.wait(10), f"messages received without a read: {got}"
    assert got == ["m0", "m1", "m2"]


@pytest.mark.timeout(20)
def test_blocking_call_in_a_message_callback_raises(worker):
    """Message callbacks run on iii's runtime threads, where a blocking call would deadlock:
    it raises RuntimeError instead."""
    worker.register_function("t::one", lambda _data: 1)
    channel = worker.create_channel()
    outcome = []
    done = threading.Event()

    def on_message(_text):
        try:
            outcome.append(worker.trigger({"function_id": "t::one", "payload": {}}))
        except RuntimeError as error:
            outcome.append(str(error))
        done.set()

    channel.reader.on_message(on_message)
    channel.writer.send_message("go")
    assert done.wait(10)
    assert len(outcome) == 1 and "trigger_async" in str(outcome[0]), outcome


# ---------------------------------------------------------------- trigger options

@pytest.mark.timeout(20)
def test_void_action_returns_none_at_once(worker):
    ran = threading.Event()

    def slow(data):
        time.sleep(1.0)
        ran.set()
        return {"never": "seen"}

    worker.register_function("t::slow", slow)
    started = time.monotonic()
    result = worker.trigger({"function_id": "t::slow", "payload": {}, "action": iii.TriggerAction.Void()})
    assert result is None
    assert time.monotonic() - started < 0.9, "a void trigger waited for the handler"
    assert ran.wait(10), "the handler of a void trigger did not run"


@pytest.mark.timeout(20)
def test_timeout_ms_raises_timeout_error(worker):
    worker.register_function("t::sleepy", lambda _data: time.sleep(3) or "late")
    started = time.monotonic()
    with pytest.raises(iii.TimeoutError) as info:
        worker.trigger({"function_id": "t::sleepy", "payload": {}, "timeout_ms": 300})
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2.5, elapsed
    assert isinstance(info.value, TimeoutError)  # also the built-in one
    assert isinstance(info.value.__cause__, iii.NativeError)


# ---------------------------------------------------------------- concurrency and order

@pytest.mark.timeout(30)
@pytest.mark.parametrize("style", ["sync", "async"])
def test_two_handlers_stream_concurrently(worker, style):
    """Two handlers write their streams at the same time: each stops half-way until the other
    has started, so running them one after the other would fail."""
    half = 2 * 1024 * 1024
    if style == "sync":
        barrier = threading.Barrier(2, timeout=10)

        def handler(data):
            piece = data["name"].encode() * 65536
            for offset in range(0, 2 * half, len(piece)):
                if offset == half:
                    barrier.wait()
                data["writer"].write(piece)
            data["writer"].close()
            return data["name"]
    else:
        arrived = []

        async def handler(data):
            piece = data["name"].encode() * 65536
            for offset in range(0, 2 * half, len(piece)):
                if offset == half:
                    arrived.append(data["name"])
                    deadline = time.monotonic() + 10
                    while len(arrived) < 2:
                        assert time.monotonic() < deadline, "the other handler did not run meanwhile"
                        await asyncio.sleep(0.01)
                await data["writer"].write(piece)
            await data["writer"].close_async()
            return data["name"]

    worker.register_function("t::stream", handler)

    async def run():
        channels = {name: await worker.create_channel_async() for name in ("a", "b")}
        calls = [
            worker.trigger_async({"function_id": "t::stream", "payload": {"name": name, "writer": ch.writer_ref}})
            for name, ch in channels.items()
        ]
        reads = [ch.reader.read_all() for ch in channels.values()]
        return await asyncio.gather(*calls), await asyncio.gather(*reads)

    names, data = asyncio.run(run())
    assert names == ["a", "b"]
    assert data == [b"a" * (2 * half), b"b" * (2 * half)]


@pytest.mark.timeout(20)
async def test_unawaited_writes_keep_their_order(worker):
    """Inside async code `writer.write()` returns an awaitable; many left un-awaited still
    reach the reader in call order."""
    channel = await worker.create_channel_async()
    # Reading meanwhile: the channel holds a bounded number of frames.
    received = channel.reader.read_all()
    pieces = [f"{i:05d};".encode() * (1 + i % 7) for i in range(3000)]
    for piece in pieces:
        channel.writer.write(piece)
    await channel.writer.close_async()
    assert await received == b"".join(pieces)


@pytest.mark.timeout(20)
def test_unawaited_writes_in_a_handler_keep_their_order(worker):
    async def producer(data):
        for i in range(2000):
            data["writer"].stream.write(f"{i},".encode())
        data["writer"].stream.end(b"end")
        return None

    worker.register_function("t::order", producer)
    channel = worker.create_channel()
    assert worker.trigger({"function_id": "t::order", "payload": {"writer": channel.writer_ref}}) is None
    assert channel.reader.read_all() == "".join(f"{i}," for i in range(2000)).encode() + b"end"
