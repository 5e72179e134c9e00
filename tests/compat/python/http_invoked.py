"""A function the engine calls over HTTP (registered with the published HttpInvocationConfig):
the engine posts the payload as JSON to the program's own little HTTP server and the JSON
answer is the result; a failing endpoint's status comes back as an InvocationError."""

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from report import report

from iii import InitOptions, InvocationError, register_worker
from iii_helpers.http import HttpInvocationConfig

seen = []


class Endpoint(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        seen.append({
            "path": self.path,
            "content-type": self.headers["content-type"],
            "function": self.headers["x-iii-function-path"],
            "n": body.get("n"),
        })
        status, answer = (200, {"n": body["n"] * 3}) if self.path == "/triple" else (503, {"busy": True})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_address[1]}"

iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="compat-http-invoked"))
ref = iii.register_function("compat::triple", HttpInvocationConfig(url=f"{base}/triple", timeout_ms=5000))
iii.register_function("compat::busy", HttpInvocationConfig(url=f"{base}/busy"))
time.sleep(0.5)
out = {"ref_id": ref.id}
out["triple"] = iii.trigger({"function_id": "compat::triple", "payload": {"n": 14}})
try:
    iii.trigger({"function_id": "compat::busy", "payload": {"n": 1}})
except InvocationError as error:
    out["busy"] = {"code": error.code, "message": error.message}
out["seen"] = seen
iii.shutdown()
server.shutdown()
report(out)
