"""Functions, handles and errors as a program written for the published client uses them:
register_function returns a FunctionRef, duplicates and empty ids raise ValueError, handler
failures and timeouts arrive as InvocationError (code, function_id), metadata reaches the
handler, unregister() takes the function away, current_invocation() names the call."""

import json

from report import report
import os
import time

from iii import InitOptions, InvocationError, TriggerAction, current_invocation, register_worker

iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="compat-functions"))
out = {}

ref = iii.register_function("compat::double", lambda data: {"n": data["n"] * 2}, description="doubles")
out["ref_id"] = ref.id
out["double"] = iii.trigger({"function_id": "compat::double", "payload": {"n": 21}})

for bad in ("compat::double", ""):
    try:
        iii.register_function(bad, lambda data: None)
        out[f"register {bad!r}"] = "accepted"
    except ValueError:
        out[f"register {bad!r}"] = "ValueError"


def with_metadata(data, metadata=None):
    return {"data": data, "metadata": metadata}


iii.register_function("compat::metadata", with_metadata)
out["metadata"] = iii.trigger(
    {"function_id": "compat::metadata", "payload": 1, "metadata": {"tenant": "t1"}}
)


def who_am_i(data):
    context = current_invocation()
    return {"function_id": context.function_id, "has_invocation_id": bool(context.invocation_id)}


iii.register_function("compat::context", who_am_i)
out["context"] = iii.trigger({"function_id": "compat::context", "payload": None})
out["context outside"] = current_invocation()


def fails(data):
    raise RuntimeError("no such thing")


iii.register_function("compat::fails", fails)
try:
    iii.trigger({"function_id": "compat::fails", "payload": {}})
except InvocationError as error:
    out["failure"] = {
        "code": error.code,
        "message": error.message,
        "function_id": error.function_id,
        "has_stacktrace": bool(error.stacktrace),
    }


def slow(data):
    time.sleep(1.0)
    return "late"


iii.register_function("compat::slow", slow)
try:
    iii.trigger({"function_id": "compat::slow", "payload": {}, "timeout_ms": 200})
except InvocationError as error:
    out["timeout"] = {"code": error.code, "function_id": error.function_id}

try:
    iii.trigger({"function_id": "compat::nobody", "payload": {}})
except InvocationError as error:
    out["unknown"] = {"code": error.code, "function_id": error.function_id}

out["void"] = iii.trigger(
    {"function_id": "compat::double", "payload": {"n": 1}, "action": TriggerAction.Void()}
)

ref.unregister()
time.sleep(0.2)
try:
    iii.trigger({"function_id": "compat::double", "payload": {"n": 1}})
    out["after unregister"] = "answered"
except InvocationError as error:
    out["after unregister"] = error.code

iii.shutdown()
report(out)
