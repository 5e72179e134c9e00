"""HTTP-triggered functions written with the published HTTP helper (iii_helpers.http):
status and headers through the response object, a streamed body, the request body read from
its channel, and an HttpResponse returned as a plain result."""

import json

from report import report
import os
import time
import urllib.error
import urllib.request

from iii import InitOptions, register_worker
from iii_helpers.http import HttpResponse, http

iii = register_worker(os.environ["III_URL"], InitOptions(worker_name="compat-http"))
HTTP = os.environ["III_HTTP_URL"]


@http
async def echo(req, res):
    body = b""
    async for chunk in req.request_body:
        body += chunk
    await res.status(201)
    await res.headers({"content-type": "text/plain", "x-compat": "yes"})
    res.stream.write(b"got ")
    res.stream.write(body.upper())
    res.close()


@http
async def plain(req, res):
    return HttpResponse(status_code=202, body={"name": req.path_params.get("name"), "q": req.query_params.get("q")})


iii.register_function("compat::echo", echo)
iii.register_trigger({"type": "http", "function_id": "compat::echo", "config": {"api_path": "/compat/echo", "http_method": "POST"}})
def with_metadata(data, metadata=None):
    return {"status_code": 200, "body": {"metadata": metadata, "method": data["method"]}}


iii.register_function("compat::plain", plain)
iii.register_function("compat::meta", with_metadata)
iii.register_trigger({"type": "http", "function_id": "compat::meta", "config": {"api_path": "/compat/meta", "http_method": "GET"}, "metadata": {"route": "meta"}})
iii.register_trigger({"type": "http", "function_id": "compat::plain", "config": {"api_path": "/compat/plain/:name", "http_method": "GET"}})
time.sleep(0.5)


def fetch(path, data=None):
    request = urllib.request.Request(HTTP + path, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


out = {}
status, headers, body = fetch("/compat/echo", b"hello")
out["echo"] = {"status": status, "type": headers.get("content-type"), "x-compat": headers.get("x-compat"), "body": body.decode()}
status, headers, body = fetch("/compat/plain/ann?q=1")
out["plain"] = {"status": status, "body": json.loads(body)}
status, headers, body = fetch("/compat/meta")
out["trigger metadata"] = {"status": status, "body": json.loads(body)}
iii.shutdown()
report(out)
