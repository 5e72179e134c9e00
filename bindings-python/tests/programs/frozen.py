"""Serves `frozen::work` (answers at once), prints READY once registered, then idles: the
test freezes this process with SIGSTOP, as a stuck or suspended worker would be."""

import os
import time

import iii

worker = iii.register_worker(os.environ["III_URL"])
worker.register_function("frozen::work", lambda data: {"ok": True})
worker.ready()
print("READY", flush=True)
while True:
    time.sleep(60)
