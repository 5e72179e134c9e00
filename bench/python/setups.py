"""Channel setups, one program for both Python clients (written for the published client's
asyncio API, which ours also offers): run with the python of the venv holding the client.

    setups.py URL serve                          serve bench::count (prints READY), until
                                                 stdin closes
    setups.py URL run --count N --in-flight K    N setups after 50 untimed, K at a time;
                                                 prints RESULT <json>

A setup is what an application does to hand a stream to another process: create a channel,
call `bench::count` (in the serving process) with its reader ref, write 1 KiB, close, and
await the call, whose result must count every byte.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time

from iii import InitOptions, register_worker
from iii.helpers import create_channel_async

SETUP_BYTES = 1024
WARMUP = 50


def emit(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def serve(iii) -> None:
    async def count(payload):
        total = 0
        async for chunk in payload["reader"]:
            total += len(chunk)
        return {"bytes": total}

    iii.register_function("bench::count", count)
    # Registrations travel in order on one socket: once a probe registered after bench::count
    # answers through the engine, bench::count is registered too.
    probe = f"bench::ready::{os.getpid()}"
    iii.register_function(probe, lambda _payload: {"ok": True})
    deadline = time.monotonic() + 30
    while True:
        try:
            iii.trigger({"function_id": probe, "payload": {}, "timeout_ms": 10_000})
            break
        except Exception as error:
            if getattr(error, "code", None) == "function_not_found" and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise
    emit("READY")
    sys.stdin.read()


async def one_setup(iii, data: bytes) -> None:
    channel = await create_channel_async(iii)
    call = asyncio.ensure_future(
        iii.trigger_async(
            {"function_id": "bench::count", "payload": {"reader": channel.reader_ref.model_dump()}, "timeout_ms": 30_000}
        )
    )
    await channel.writer.write(data)
    await channel.writer.close_async()
    result = await call
    if not isinstance(result, dict) or result.get("bytes") != SETUP_BYTES:
        raise RuntimeError(f"bench::count returned {result!r}, sent {SETUP_BYTES} bytes")


async def run(iii, count: int, in_flight: int) -> dict:
    data = bytes(range(256)) * (SETUP_BYTES // 256)

    async def batch(total: int) -> None:
        remaining = [total]

        async def lane() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                await one_setup(iii, data)

        await asyncio.gather(*(lane() for _ in range(min(in_flight, total))))

    await batch(WARMUP)
    cpu, started = time.process_time(), time.perf_counter()
    await batch(count)
    secs = time.perf_counter() - started
    return {"count": count, "in_flight": in_flight, "secs": secs, "per_sec": count / secs, "cpu": time.process_time() - cpu}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("role", choices=["serve", "run"])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--in-flight", type=int, default=1)
    args = parser.parse_args()
    iii = register_worker(args.url, InitOptions(worker_name=f"bench-setups-{args.role}-{os.getpid()}"))
    try:
        if args.role == "serve":
            serve(iii)
        else:
            emit(f"RESULT {json.dumps(asyncio.run(run(iii, args.count, args.in_flight)))}")
    except Exception as error:
        emit(f"ERROR {json.dumps({'message': repr(error)})}")
        return 1
    finally:
        # The published 0.25 client's shutdown() can block; never let it hold the benchmark.
        threading.Thread(target=iii.shutdown, daemon=True).start()
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    os._exit(main())
