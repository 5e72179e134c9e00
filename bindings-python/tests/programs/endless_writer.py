"""A worker whose `child::write` writes to the writer it is given until the process is killed:
prints READY once registered, then WROTE after the first MiB."""

import os
import time

import iii

worker = iii.register_worker(os.environ["III_URL"])


def write_forever(data):
    writer = data["writer"]
    chunk = b"w" * 65536
    written = 0
    while True:
        writer.write(chunk)
        written += len(chunk)
        if written == 1024 * 1024:
            print("WROTE", flush=True)
        time.sleep(0.001)


worker.register_function("child::write", write_forever)
worker.ready()
print("READY", flush=True)
time.sleep(600)
