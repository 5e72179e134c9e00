"""The calling side of the round-trip benchmark with the asyncio API, written for the
published client's API: after a warm-up, times N `await trigger_async()` calls of `rt::noop`
one after another and prints one JSON line with p50 and p99 in microseconds."""

import asyncio
import json
import os
import sys
import time

from iii import InitOptions, register_worker


async def main(calls: int) -> None:
    iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="rt-caller-async"))
    request = {"function_id": "rt::noop", "payload": {"n": 1}}
    for _ in range(200):
        await iii.trigger_async(request)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await iii.trigger_async(request)
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    print(json.dumps({"p50_us": round(samples[len(samples) // 2]), "p99_us": round(samples[int(len(samples) * 0.99)])}))
    iii.shutdown()


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
