"""The calling side of the round-trip benchmark, written for the published client's API:
after a warm-up, times N blocking `trigger()` calls of `rt::noop` one after another and prints
one JSON line with p50 and p99 in microseconds."""

import json
import os
import sys
import time

from iii import InitOptions, register_worker

calls = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="rt-caller"))
request = {"function_id": "rt::noop", "payload": {"n": 1}}
for _ in range(200):
    iii.trigger(request)
samples = []
for _ in range(calls):
    started = time.perf_counter()
    iii.trigger(request)
    samples.append((time.perf_counter() - started) * 1e6)
samples.sort()
print(json.dumps({"p50_us": round(samples[len(samples) // 2]), "p99_us": round(samples[int(len(samples) * 0.99)])}))
iii.shutdown()
