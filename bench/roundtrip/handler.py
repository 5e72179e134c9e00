"""The serving side of the round-trip benchmark, written for the published client's API:
registers `rt::noop` (returns its input) and serves until stdin closes."""

import os
import sys

from iii import InitOptions, register_worker

iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="rt-handler"))
iii.register_function("rt::noop", lambda data: data)
print("ready", flush=True)
sys.stdin.read()
iii.shutdown()
