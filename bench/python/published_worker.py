"""Benchmark worker on the *published* Python client (PyPI iii-sdk==0.25.0, import name `iii`).
Run it with the python of the venv it is installed in (tests/interop/setup.sh puts it in
~/.cache/iii-interop/py); bench.py starts it. Same roles and output as ours_worker.py:

    published_worker.py URL writer                  serve bench::write (prints READY)
    published_worker.py URL reader --bytes N        create a channel, have bench::write fill
                                                    it, read it (prints RESULT <json>)
    published_worker.py URL echo                    serve bench::echo (prints READY)
    published_worker.py URL ping --count N          time N text-message round trips

0.25's channel API is asynchronous only (`await writer.write(b)`, `await
writer.send_message_async(t)`, `await writer.close_async()`, `async for chunk in reader`;
`on_message` callbacks run while the reader is iterated), so there is no `--api` choice.
Every write is awaited: 0.25's fire-and-forget forms (`writer.stream.write`,
`send_message`) schedule a task per call, which can reorder frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback

from iii import InitOptions, register_worker
from iii.helpers import create_channel_async

from common import CHUNK, WARMUP_TRIPS, chunk_bytes, emit, machine_cpu, percentiles, since


async def trigger_retry(iii, request: dict, deadline_s: float = 30.0):
    """Trigger, retrying while the target is not registered yet (bounded)."""
    until = time.monotonic() + deadline_s
    while True:
        try:
            return await iii.trigger_async(request)
        except Exception as error:  # InvocationError carries .code
            if getattr(error, "code", None) == "function_not_found" and time.monotonic() < until:
                await asyncio.sleep(0.1)
                continue
            raise


def await_registered(iii) -> None:
    """Registrations go out before this call on the same socket, so a call of our own probe
    function through the engine proves the engine has processed them (0.25 has no
    ready() call)."""
    probe = f"bench::ready::{os.getpid()}"

    async def ready(_data):
        return {"ok": True}

    iii.register_function(probe, ready)
    deadline = time.monotonic() + 30
    while True:
        try:
            iii.trigger({"function_id": probe, "payload": {}, "timeout_ms": 10_000})
            return
        except Exception as error:
            if getattr(error, "code", None) == "function_not_found" and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise


def serve_until_stdin_closes(iii) -> None:
    await_registered(iii)
    emit("READY")
    sys.stdin.read()
    # main() shuts the worker down (0.25's shutdown() blocks forever when called twice).


# ---------------------------------------------------------------- throughput


def serve_writer(iii) -> None:
    data = chunk_bytes()

    async def write(payload):
        writer, total = payload["writer"], payload["bytes"]
        cpu = time.process_time()
        sent = 0
        while sent < total:
            piece = data if total - sent >= CHUNK else data[: total - sent]
            await writer.write(piece)
            sent += len(piece)
        await writer.close_async()
        return {"sent": sent, "cpu": time.process_time() - cpu}

    iii.register_function("bench::write", write)
    serve_until_stdin_closes(iii)


async def read(iii, total: int) -> dict:
    channel = await create_channel_async(iii)
    call = asyncio.ensure_future(
        trigger_retry(
            iii,
            {
                "function_id": "bench::write",
                "payload": {"writer": channel.writer_ref.model_dump(), "bytes": total},
                "timeout_ms": 900_000,
            },
        )
    )
    received = 0
    first = cpu = None
    async for chunk in channel.reader:
        if first is None:
            first, cpu, busy = time.perf_counter(), time.process_time(), machine_cpu()
        received += len(chunk)
    secs = time.perf_counter() - first if first is not None else 0.0
    cpu = time.process_time() - cpu if cpu is not None else 0.0
    machine = since(busy) if first is not None else {}
    result = {"bytes": received, "secs": secs, "cpu": cpu, **machine}
    try:
        result["writer"] = await asyncio.wait_for(call, 60)
    except BaseException as error:
        result["error"] = f"{type(error).__name__}: {error}"
    return result


# ---------------------------------------------------------------- message round trip


def serve_echo(iii) -> None:
    async def echo(payload):
        reader, writer = payload["reader"], payload["writer"]
        cpu = time.process_time()

        def on_message(text: str) -> None:
            if text != "STOP":
                # 0.25's callback API is synchronous; its send_message() schedules the send
                # on the running loop (one message in flight at a time here, so no reordering).
                writer.send_message(text)

        reader.on_message(on_message)
        await writer.send_message_async("READY")
        async for _chunk in reader:  # callbacks are dispatched while the reader is iterated
            pass
        await writer.close_async()
        return {"ok": True, "cpu": time.process_time() - cpu}

    iii.register_function("bench::echo", echo)
    serve_until_stdin_closes(iii)


async def ping(iii, count: int) -> dict:
    there = await create_channel_async(iii)
    back = await create_channel_async(iii)
    answers: "asyncio.Queue[str]" = asyncio.Queue()
    back.reader.on_message(answers.put_nowait)

    async def pump() -> None:
        async for _chunk in back.reader:
            pass

    pumping = asyncio.ensure_future(pump())
    call = asyncio.ensure_future(
        trigger_retry(
            iii,
            {
                "function_id": "bench::echo",
                "payload": {"reader": there.reader_ref.model_dump(), "writer": back.writer_ref.model_dump()},
                "timeout_ms": 900_000,
            },
        )
    )
    if await asyncio.wait_for(answers.get(), 30) != "READY":
        raise RuntimeError("echo did not start")
    samples = []
    cpu, busy, window = time.process_time(), machine_cpu(), time.perf_counter()
    for i in range(WARMUP_TRIPS + count):
        text = json.dumps({"seq": i})
        started = time.perf_counter()
        await there.writer.send_message_async(text)
        answer = await asyncio.wait_for(answers.get(), 10)
        elapsed = time.perf_counter() - started
        if answer != text:
            raise RuntimeError(f"echo returned {answer}, sent {text}")
        if i >= WARMUP_TRIPS:
            samples.append(elapsed * 1e6)
    await there.writer.send_message_async("STOP")
    await there.writer.close_async()
    echoed = await asyncio.wait_for(call, 30)
    await asyncio.wait_for(pumping, 30)
    return percentiles(samples, time.perf_counter() - window, time.process_time() - cpu, since(busy), echoed.get("cpu", 0.0))


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("role", choices=["writer", "reader", "echo", "ping"])
    parser.add_argument("--api", choices=["async"], default="async")
    parser.add_argument("--bytes", type=int, default=1 << 30)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()

    iii = register_worker(
        args.url,
        InitOptions(
            worker_name=f"bench-published-{args.role}-{os.getpid()}",
            otel={"enabled": False},
            enable_metrics_reporting=False,
            invocation_timeout_ms=900_000,
        ),
    )
    code = 0
    try:
        if args.role == "writer":
            serve_writer(iii)
        elif args.role == "echo":
            serve_echo(iii)
        elif args.role == "reader":
            emit("RESULT " + json.dumps(asyncio.run(read(iii, args.bytes))))
        else:
            emit("RESULT " + json.dumps(asyncio.run(ping(iii, args.count))))
    except BaseException as error:
        traceback.print_exc()
        emit("ERROR " + json.dumps({"code": getattr(error, "code", None), "message": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}))
        code = 1
    finally:
        try:
            iii.shutdown()
        finally:
            os._exit(code)  # the client's loop thread is not a daemon


if __name__ == "__main__":
    sys.exit(main())
