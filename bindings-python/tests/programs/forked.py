"""Forks after using iii: the child's calls must fail at once with a RuntimeError naming
fork() (the runtime's threads do not survive it), not hang. Prints the child's outcome."""

import json
import os
import sys

import iii

worker = iii.register_worker(os.environ["III_URL"])
worker.ready()
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    try:
        worker.create_channel()
        outcome = "returned"
    except RuntimeError as error:
        outcome = f"RuntimeError: {error}"
    except BaseException as error:  # noqa: BLE001 (reported to the parent)
        outcome = f"{type(error).__name__}: {error}"
    os.write(write_end, outcome.encode())
    os._exit(0)
os.close(write_end)
with os.fdopen(read_end, "rb") as pipe:
    outcome = pipe.read().decode()
_, status = os.waitpid(pid, 0)
print(json.dumps({"child": outcome, "status": status}), flush=True)
worker.shutdown()
sys.exit(0)
