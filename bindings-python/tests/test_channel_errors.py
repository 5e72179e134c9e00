"""A stream that did not end cleanly never reads as complete: an aborted writer raises
`iii.ChannelAborted` and a writer whose process died raises `iii.WriterLost`, in every way of
reading, with the native error kept as ``__cause__``."""

from __future__ import annotations

import signal

import pytest

import iii
from helpers import PROGRAMS, StoppableEngine, start_python, stop, wait_line


def read_chunks(reader) -> int:
    """Reads to the end with `next_chunk`; returns the byte count of a clean end."""
    total = 0
    while (chunk := reader.next_chunk()) is not None:
        total += len(chunk)
    return total


def check_cause(error: BaseException) -> None:
    assert isinstance(error, iii.ChannelError) and isinstance(error, iii.IIIError)
    assert isinstance(error.__cause__, iii.NativeError), repr(error.__cause__)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("how", ["next_chunk", "read_all", "for"])
def test_abort_is_channel_aborted(worker, how):
    channel = worker.create_channel()
    channel.writer.write(b"partial data")
    channel.writer.abort("disk full")
    reader = channel.reader
    with pytest.raises(iii.ChannelAborted) as info:
        if how == "next_chunk":
            assert reader.next_chunk() == b"partial data"
            read_chunks(reader)
        elif how == "read_all":
            reader.read_all()
        else:
            for _ in reader:
                pass
    assert "disk full" in str(info.value)
    check_cause(info.value)


@pytest.mark.timeout(20)
async def test_abort_in_a_handler_is_channel_aborted_async(worker):
    """A handler aborts the writer it was given; `async for` in the caller raises."""

    async def producer(data):
        writer = data["writer"]
        await writer.write(b"some bytes")
        await writer.abort_async("upstream failed")
        return {"aborted": True}

    worker.register_function("t::abort", producer)
    channel = await worker.create_channel_async()
    answer = await worker.trigger_async({"function_id": "t::abort", "payload": {"writer": channel.writer_ref}})
    assert answer == {"aborted": True}
    got = b""
    with pytest.raises(iii.ChannelAborted, match="upstream failed") as info:
        async for chunk in channel.reader:
            got += chunk
    assert got == b"some bytes"
    check_cause(info.value)


def start_killed_writer(engine, request, worker):
    """A child process writing to our channel, killed with SIGKILL once it wrote 1 MiB."""
    child = start_python(engine, request, PROGRAMS / "endless_writer.py")
    wait_line(child, "READY")
    channel = worker.create_channel()
    void = worker.trigger({
        "function_id": "child::write",
        "payload": {"writer": channel.writer_ref.model_dump()},
        "action": iii.TriggerAction.Void(),
    })
    assert void is None
    return child, channel


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["next_chunk", "read_all"])
def test_killed_writer_is_writer_lost(engine, request, worker, how):
    child, channel = start_killed_writer(engine, request, worker)
    try:
        if how == "next_chunk":
            # Reading while it writes, then it dies mid-stream.
            received = 0
            while received < 512 * 1024:
                chunk = channel.reader.next_chunk()
                assert chunk is not None, "the stream ended cleanly while the writer was writing"
                received += len(chunk)
        wait_line(child, "WROTE")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        stop(child)
    with pytest.raises(iii.WriterLost) as info:
        if how == "next_chunk":
            total = read_chunks(channel.reader)
            pytest.fail(f"a killed writer ended the stream cleanly after {total} more bytes")
        else:
            data = channel.reader.read_all()
            pytest.fail(f"read_all() returned {len(data)} bytes from a killed writer")
    check_cause(info.value)


@pytest.mark.timeout(30)
async def test_killed_writer_is_writer_lost_async(engine, request, worker):
    child = start_python(engine, request, PROGRAMS / "endless_writer.py")
    try:
        wait_line(child, "READY")
        channel = await worker.create_channel_async()
        await worker.trigger_async({
            "function_id": "child::write",
            "payload": {"writer": channel.writer_ref},
            "action": iii.TriggerAction.Void(),
        })
        received = 0
        with pytest.raises(iii.WriterLost) as info:
            async for chunk in channel.reader:
                received += len(chunk)
                if received >= 256 * 1024 and child.poll() is None:
                    child.send_signal(signal.SIGKILL)
            pytest.fail(f"the stream ended cleanly after {received} bytes")
    finally:
        stop(child)
    assert received >= 256 * 1024
    check_cause(info.value)


@pytest.mark.timeout(20)
def test_write_after_the_reader_closed_is_reader_closed(worker):
    channel = worker.create_channel()
    channel.writer.write(b"first")
    assert channel.reader.next_chunk() == b"first"
    channel.reader.close()
    with pytest.raises(iii.ReaderClosed) as info:
        # The writer learns of the close asynchronously: it fails within a few writes.
        for _ in range(1000):
            channel.writer.write(b"x" * 65536)
    check_cause(info.value)


@pytest.mark.timeout(20)
def test_write_after_close_is_channel_closed(worker):
    channel = worker.create_channel()
    channel.writer.write(b"all of it")
    channel.writer.close()
    with pytest.raises(iii.ChannelClosed) as info:
        channel.writer.write(b"more")
    check_cause(info.value)
    assert channel.reader.read_all() == b"all of it"


@pytest.mark.timeout(30)
def test_an_engine_that_stops_is_going_away_never_a_clean_end(tmp_path):
    """SIGTERM drains (a stream in flight holds it), a second signal stops at once: the reader
    gets the bytes buffered before, then `iii.GoingAway` (code ``going_away``), and so does a
    call in flight; never a clean end."""
    import threading
    import time

    with StoppableEngine(tmp_path, "--shutdown-grace-secs", "60") as engine:
        client = iii.register_worker(engine.url)
        client.register_function("stop::never", lambda data: time.sleep(60))
        client.ready()
        channel = client.create_channel()
        channel.writer.write(b"x" * 100_000)
        first = channel.reader.next_chunk()
        outcome = {}

        def call():
            try:
                client.trigger({"function_id": "stop::never", "payload": {}})
            except BaseException as error:  # noqa: BLE001 - recorded for the assertion
                outcome["error"] = error

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.3)
        engine.stop_while_draining()
        total = len(first)
        with pytest.raises(iii.GoingAway) as info:
            while (chunk := channel.reader.next_chunk()) is not None:
                total += len(chunk)
        assert total == 100_000
        assert info.value.code == "going_away"
        check_cause(info.value)
        assert isinstance(info.value, iii.ConnectionError)
        caller.join(10)
        assert isinstance(outcome.get("error"), iii.GoingAway), outcome
        assert engine.proc.wait(10) == 0
        client.shutdown()
