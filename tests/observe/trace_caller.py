"""Calls a function through the engine with the *published* Python client, inside an
OpenTelemetry context carrying a known span and baggage (the client injects the active
context into `traceparent` / `baggage`). Prints the function's result as one JSON line.

Usage: trace_caller.py URL FUNCTION_ID TRACEPARENT BAGGAGE_KEY BAGGAGE_VALUE
"""

import json
import sys

from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from iii import register_worker

url, function_id, traceparent, key, value = sys.argv[1:6]
_, trace_id, span_id, _ = traceparent.split("-")
span = NonRecordingSpan(
    SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1))
)
ctx = baggage.set_baggage(key, value, trace.set_span_in_context(span))
token = context.attach(ctx)
client = register_worker(url)
try:
    result = client.trigger({"function_id": function_id, "payload": {}, "timeout_ms": 10_000})
    print(json.dumps(result), flush=True)
finally:
    context.detach(token)
    client.shutdown()
