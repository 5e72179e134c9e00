"""Blocks in a sync call that nothing will complete, to be stopped with Ctrl-C (SIGINT):

    blocked.py read_all    reader.read_all() on a channel nobody writes
    blocked.py write       writer.write() on a full channel nobody reads
    blocked.py trigger     trigger() of `t::hang`, which answers after 20 s

Prints BLOCKED just before blocking, and KeyboardInterrupt when interrupted (re-raised)."""

import os
import signal
import sys

import iii

# Ctrl-C raises KeyboardInterrupt even when the parent started us with SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

worker = iii.register_worker(os.environ["III_URL"])
channel = worker.create_channel()
mode = sys.argv[1]
print("BLOCKED", flush=True)
try:
    if mode == "read_all":
        channel.reader.read_all()
    elif mode == "write":
        while True:
            channel.writer.write(b"x" * 65536)
    elif mode == "trigger":
        worker.trigger({"function_id": "t::hang", "payload": {}})
    print("RETURNED", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    raise
