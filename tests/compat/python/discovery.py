"""Engine discovery as the published client's programs use it: the EngineFunctions listings
through trigger(), and a function bound to engine::functions-available hearing about a
function registered later."""

import json

from report import report
import os
import queue
import time

from iii import InitOptions, register_worker
from iii.engine import EngineFunctions, EngineTriggers

iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="compat-discovery"))
out = {}
events: "queue.Queue[dict]" = queue.Queue()


def on_functions(event):
    events.put(event)
    return None


iii.register_function("compat::watch", on_functions)
iii.register_trigger({"type": EngineTriggers.FUNCTIONS_AVAILABLE, "function_id": "compat::watch", "config": {}})
iii.register_function("compat::listed", lambda data: data, description="listed", metadata={"team": "a"})
iii.register_trigger({"type": "http", "function_id": "compat::listed", "config": {"api_path": "/compat/listed", "http_method": "GET"}})
time.sleep(0.5)

listed = iii.trigger({"function_id": EngineFunctions.LIST_FUNCTIONS, "payload": {}})
mine = sorted(
    (f["function_id"], f.get("description"), f.get("metadata"))
    for f in listed["functions"]
    if f["function_id"].startswith("compat::")
)
out["functions"] = mine
out["internal hidden"] = not any(f["function_id"].startswith("engine::") for f in listed["functions"])

info = iii.trigger({"function_id": EngineFunctions.INFO_FUNCTIONS, "payload": {"function_id": "compat::listed"}})
out["info"] = {
    "function_id": info["function_id"],
    "description": info.get("description"),
    "triggers": sorted(t["trigger_type"] for t in info.get("registered_triggers", [])),
}

workers = iii.trigger({"function_id": EngineFunctions.LIST_WORKERS, "payload": {}})
out["workers"] = sorted(w.get("name") for w in workers["workers"] if w.get("name", "").startswith("compat-"))

types = iii.trigger({"function_id": EngineFunctions.LIST_TRIGGERS, "payload": {"include_internal": True}})
out["trigger types include http"] = any(t["id"] == "http" for t in types["triggers"])

registered = iii.trigger({"function_id": EngineFunctions.LIST_REGISTERED_TRIGGERS, "payload": {}})
out["registered"] = sorted(
    (t["trigger_type"], t["function_id"]) for t in registered["registered_triggers"] if t["function_id"].startswith("compat::")
)

# drain what the registrations above announced, then register one more function
time.sleep(0.5)
while not events.empty():
    events.get_nowait()
iii.register_function("compat::late", lambda data: data)
deadline = time.time() + 10
seen = None
while time.time() < deadline:
    try:
        event = events.get(timeout=deadline - time.time())
    except queue.Empty:
        break
    ids = [f["function_id"] for f in event.get("functions", [])]
    if "compat::late" in ids:
        seen = {"event": event.get("event"), "late listed": True}
        break
out["functions-available"] = seen

iii.shutdown()
report(out)
