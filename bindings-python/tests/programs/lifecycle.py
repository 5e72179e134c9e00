"""A worker that uses its connection and channels, then ends:

    lifecycle.py shutdown   calls shutdown() while a trigger() of `t::slow` is pending
    lifecycle.py exit       just returns from the script (no shutdown()), with a registered
                            function, a message callback and open channel ends still alive:
                            the worker keeps serving until Ctrl-C

Prints one JSON line before ending."""

import json
import os
import sys
import threading
import time

import iii

worker = iii.register_worker(os.environ["III_URL"])
worker.register_function("p::echo", lambda data: data["n"] + 1)
assert worker.trigger({"function_id": "p::echo", "payload": {"n": 1}}) == 2

channel = worker.create_channel()
messages = []
channel.reader.on_message(messages.append)
channel.writer.send_message("hello")
channel.writer.write(b"unread bytes")
deadline = time.monotonic() + 10
while not messages and time.monotonic() < deadline:
    time.sleep(0.01)

if sys.argv[1] == "shutdown":
    outcome = {}

    def pending():
        try:
            outcome["result"] = worker.trigger({"function_id": "t::slow", "payload": {}})
        except iii.IIIError as error:
            outcome["error"] = type(error).__name__

    thread = threading.Thread(target=pending)
    thread.start()
    time.sleep(0.3)
    worker.shutdown()
    thread.join(10)
    print(json.dumps({"messages": messages, "pending": outcome, "joined": not thread.is_alive()}), flush=True)
else:
    print(json.dumps({"messages": messages}), flush=True)
