"""Process lifetime: a script that registers a function and ends without shutdown() keeps
serving (the published worker runs until shutdown()); a call that makes it shut down lets
it exit."""

import json

from report import report
import os
import subprocess
import sys
import time

from iii import InitOptions, TriggerAction, register_worker

CHILD = r'''
import os
from iii import InitOptions, register_worker
iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="compat-lifetime-child"))
iii.register_function("compat::alive", lambda data: {"pid": os.getpid()})
def stop(data):
    iii.shutdown()
    return "stopping"
iii.register_function("compat::stop", stop)
print("registered", flush=True)
'''

out = {}
child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
out["child said"] = child.stdout.readline().strip()
iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="compat-lifetime"))
time.sleep(1.5)
out["running after its script ended"] = child.poll() is None
out["serves"] = iii.trigger({"function_id": "compat::alive", "payload": None})["pid"] == child.pid
out["stop"] = iii.trigger({"function_id": "compat::stop", "payload": None, "action": TriggerAction.Void()})
try:
    out["exit code after shutdown"] = child.wait(timeout=10)
except subprocess.TimeoutExpired:
    child.kill()
    out["exit code after shutdown"] = "still running 10 s after shutdown()"
iii.shutdown()
report(out)
