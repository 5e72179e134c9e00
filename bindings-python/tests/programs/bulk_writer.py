"""Writes MIB mebibytes with the plain blocking `writer.write()` into a channel whose reader
is `bp::read` (another process): prints START once set up, waits for a line on stdin, writes,
closes, and prints the seconds the writes took as JSON.

    bulk_writer.py MIB
"""

import json
import os
import sys
import time

import iii

CHUNK = bytes(range(256)) * 4096  # 1 MiB

worker = iii.register_worker(os.environ["III_URL"])
channel = worker.create_channel()
worker.trigger({
    "function_id": "bp::read",
    "payload": {"reader": channel.reader_ref.model_dump()},
    "action": iii.TriggerAction.Void(),
})
print("START", flush=True)
sys.stdin.readline()

started = time.monotonic()
for _ in range(int(sys.argv[1])):
    channel.writer.write(CHUNK)
channel.writer.close()
print(json.dumps({"seconds": time.monotonic() - started}), flush=True)
worker.shutdown()
