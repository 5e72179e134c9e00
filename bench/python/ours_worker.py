"""Benchmark worker on *our* Python package `iii` (bindings-python). Run it with the python
of the venv our package is installed in; bench.py starts it.

    ours_worker.py URL writer --api sync|async      serve bench::write (prints READY)
    ours_worker.py URL reader --api sync|async --bytes N
                                                    create a channel, have bench::write fill
                                                    it, read it (prints RESULT <json>)
    ours_worker.py URL echo --api sync|async        serve bench::echo (prints READY)
    ours_worker.py URL ping --api sync|async --count N
                                                    time N text-message round trips through
                                                    two channels and bench::echo
    ours_worker.py URL mkchannel                    create a channel, print both refs, hold it
                                                    until stdin closes (for the Rust relay)

`--api sync` uses the blocking forms (plain functions, `writer.write(b)`, `for chunk in
reader`); `--api async` the awaitable forms (`async def`, `await writer.write(b)`, `async
for chunk in reader`). stdout carries only the protocol lines; errors go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import sys
import threading
import time
import traceback

from iii import InvocationError, register_worker

from common import CHUNK, WARMUP_TRIPS, chunk_bytes, emit, machine_cpu, percentiles, since


def serve_until_stdin_closes(iii) -> None:
    iii.ready()
    emit("READY")
    sys.stdin.read()
    iii.shutdown()


# ---------------------------------------------------------------- throughput


def serve_writer(iii, api: str) -> None:
    data = chunk_bytes()

    if api == "sync":
        # A plain handler runs on a thread of its own, where the blocking forms may be used.
        def write(payload):
            writer, total = payload["writer"], payload["bytes"]
            cpu = time.process_time()
            sent = 0
            while sent < total:
                piece = data if total - sent >= CHUNK else data[: total - sent]
                writer.write(piece)
                sent += len(piece)
            writer.close()
            return {"sent": sent, "cpu": time.process_time() - cpu}

    else:

        async def write(payload):
            writer, total = payload["writer"], payload["bytes"]
            cpu = time.process_time()
            sent = 0
            while sent < total:
                piece = data if total - sent >= CHUNK else data[: total - sent]
                await writer.write(piece)
                sent += len(piece)
            await writer.close()
            return {"sent": sent, "cpu": time.process_time() - cpu}

    iii.register_function("bench::write", write)
    serve_until_stdin_closes(iii)


def write_request(writer_ref, total: int) -> dict:
    return {
        "function_id": "bench::write",
        "payload": {"writer": writer_ref.model_dump(), "bytes": total},
        "timeout_ms": 900_000,
    }


def read_sync(iii, total: int) -> dict:
    channel = iii.create_channel()
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["writer"] = iii.trigger(write_request(channel.writer_ref, total))
        except BaseException as error:  # reported in RESULT
            outcome["error"] = f"{type(error).__name__}: {error}"

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    received = 0
    first = cpu = None
    for chunk in channel.reader:
        if first is None:
            first, cpu, busy = time.perf_counter(), time.process_time(), machine_cpu()
        received += len(chunk)
    secs = time.perf_counter() - first if first is not None else 0.0
    cpu = time.process_time() - cpu if cpu is not None else 0.0
    machine = since(busy) if first is not None else {}
    caller.join(60)
    return {"bytes": received, "secs": secs, "cpu": cpu, **machine, **outcome}


async def read_async(iii, total: int) -> dict:
    channel = await iii.create_channel_async()
    call = asyncio.ensure_future(iii.trigger_async(write_request(channel.writer_ref, total)))
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


def serve_echo(iii, api: str) -> None:
    if api == "sync":

        def echo(payload):
            reader, writer = payload["reader"], payload["writer"]
            cpu = time.process_time()
            texts: "queue.Queue[str]" = queue.Queue()
            reader.on_message(texts.put)
            writer.send_message("READY")
            while True:
                text = texts.get()
                if text == "STOP":
                    break
                writer.send_message(text)
            writer.close()
            return {"ok": True, "cpu": time.process_time() - cpu}

    else:

        async def echo(payload):
            reader, writer = payload["reader"], payload["writer"]
            cpu = time.process_time()
            stopped = asyncio.Event()

            async def on_message(text: str) -> None:
                if text == "STOP":
                    stopped.set()
                else:
                    await writer.send_message(text)

            reader.on_message(on_message)
            await writer.send_message("READY")
            await stopped.wait()
            await writer.close()
            return {"ok": True, "cpu": time.process_time() - cpu}

    iii.register_function("bench::echo", echo)
    serve_until_stdin_closes(iii)


def echo_request(there, back) -> dict:
    return {
        "function_id": "bench::echo",
        "payload": {"reader": there.reader_ref.model_dump(), "writer": back.writer_ref.model_dump()},
        "timeout_ms": 900_000,
    }


def ping_sync(iii, count: int) -> dict:
    there, back = iii.create_channel(), iii.create_channel()
    answers: "queue.Queue[str]" = queue.Queue()
    back.reader.on_message(answers.put)
    echoed: dict = {}
    call = threading.Thread(target=lambda: echoed.update(iii.trigger(echo_request(there, back))), daemon=True)
    call.start()
    if answers.get(timeout=30) != "READY":
        raise RuntimeError("echo did not start")
    samples = []
    cpu, busy, window = time.process_time(), machine_cpu(), time.perf_counter()
    for i in range(WARMUP_TRIPS + count):
        text = json.dumps({"seq": i})
        started = time.perf_counter()
        there.writer.send_message(text)
        answer = answers.get(timeout=10)
        elapsed = time.perf_counter() - started
        if answer != text:
            raise RuntimeError(f"echo returned {answer}, sent {text}")
        if i >= WARMUP_TRIPS:
            samples.append(elapsed * 1e6)
    # STOP ends the echo's call, which drops its reader end: closing our writer after that
    # would race with it (ReaderClosed), and every message was answered anyway.
    there.writer.send_message("STOP")
    call.join(30)
    return percentiles(samples, time.perf_counter() - window, time.process_time() - cpu, since(busy), echoed.get("cpu", 0.0))


async def ping_async(iii, count: int) -> dict:
    there = await iii.create_channel_async()
    back = await iii.create_channel_async()
    answers: "asyncio.Queue[str]" = asyncio.Queue()

    async def on_message(text: str) -> None:
        answers.put_nowait(text)

    back.reader.on_message(on_message)
    call = asyncio.ensure_future(iii.trigger_async(echo_request(there, back)))
    if await asyncio.wait_for(answers.get(), 30) != "READY":
        raise RuntimeError("echo did not start")
    samples = []
    cpu, busy, window = time.process_time(), machine_cpu(), time.perf_counter()
    for i in range(WARMUP_TRIPS + count):
        text = json.dumps({"seq": i})
        started = time.perf_counter()
        await there.writer.send_message(text)
        answer = await asyncio.wait_for(answers.get(), 10)
        elapsed = time.perf_counter() - started
        if answer != text:
            raise RuntimeError(f"echo returned {answer}, sent {text}")
        if i >= WARMUP_TRIPS:
            samples.append(elapsed * 1e6)
    # As in ping_sync: the echo's call ends at STOP; our writer is not closed after it.
    await there.writer.send_message("STOP")
    echoed = await asyncio.wait_for(call, 30)
    return percentiles(samples, time.perf_counter() - window, time.process_time() - cpu, since(busy), echoed.get("cpu", 0.0))


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("role", choices=["writer", "reader", "echo", "ping", "mkchannel"])
    parser.add_argument("--api", choices=["sync", "async"], default="sync")
    parser.add_argument("--bytes", type=int, default=1 << 30)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()

    iii = register_worker(args.url, {"worker_name": f"bench-ours-{args.role}-{os.getpid()}"})
    try:
        if args.role == "writer":
            serve_writer(iii, args.api)
        elif args.role == "echo":
            serve_echo(iii, args.api)
        elif args.role == "mkchannel":
            channel = iii.create_channel()
            emit("REFS " + json.dumps({"writer": channel.writer_ref.model_dump(), "reader": channel.reader_ref.model_dump()}))
            sys.stdin.read()
        elif args.role == "reader":
            result = read_sync(iii, args.bytes) if args.api == "sync" else asyncio.run(read_async(iii, args.bytes))
            emit("RESULT " + json.dumps(result))
        else:
            result = ping_sync(iii, args.count) if args.api == "sync" else asyncio.run(ping_async(iii, args.count))
            emit("RESULT " + json.dumps(result))
    except InvocationError as error:
        traceback.print_exc()
        emit("ERROR " + json.dumps({"code": error.code, "message": str(error), "traceback": traceback.format_exc()}))
        return 1
    except BaseException as error:
        traceback.print_exc()
        emit("ERROR " + json.dumps({"message": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}))
        return 1
    finally:
        iii.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
