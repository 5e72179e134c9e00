"""The channel guide's (docs/ARCHITECTURE.md, Examples) "Server-Sent Events (SSE) Streaming" example (shown there in Node), in
Python: `events::stream` answers ``GET /events/stream`` with five ``progress`` events, one per
interval, then a ``done`` event, each written to the response as it happens.

Run it against a running engine (default ws://localhost:49134; set III_URL otherwise):

    iii &
    python examples/python/http_sse.py             # serve until Ctrl-C or stdin ends
    curl -N http://localhost:3111/events/stream

    python examples/python/http_sse.py fetch       # serve, read the stream once, exit

III_SSE_INTERVAL_MS sets the pause between events (default 1000). With ``fetch`` it reads the
stream itself through the engine's HTTP port (III_HTTP_URL, default http://localhost:3111)
and prints the events and the seconds each arrived after the first, as one JSON line.
Serving, it prints ``READY`` once the engine has the route.
"""

import asyncio
import json
import os
import sys
import time
from http.client import HTTPConnection
from urllib.parse import urlsplit

from iii import register_worker
from iii.types import HttpRequest, HttpResponse
from iii.utils import http

INTERVAL_S = int(os.environ.get("III_SSE_INTERVAL_MS", "1000")) / 1000

iii = register_worker(os.environ.get("III_URL", "ws://localhost:49134"))


def sse_frame(event_id: int, event: str, data: dict) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@http
async def stream_events(_req: HttpRequest, response: HttpResponse):
    await response.status(200)
    await response.headers({
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "connection": "keep-alive",
    })

    for i in range(1, 6):
        await response.writer.write(sse_frame(i, "progress", {"step": i, "total": 5}))
        await asyncio.sleep(INTERVAL_S)

    await response.writer.write(sse_frame(6, "done", {"message": "complete"}))
    await response.writer.close_async()

iii.register_function("events::stream", stream_events)

iii.register_trigger({
    "type": "http",
    "function_id": "events::stream",
    "config": {"api_path": "/events/stream", "http_method": "GET"},
})


def fetch() -> dict:
    url = urlsplit(os.environ.get("III_HTTP_URL", "http://localhost:3111"))
    conn = HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", "/events/stream", headers={"accept": "text/event-stream"})
    resp = conn.getresponse()
    events, arrivals, pending = [], [], b""
    while chunk := resp.read1(65536):
        pending += chunk
        while b"\n\n" in pending:
            block, pending = pending.split(b"\n\n", 1)
            events.append(block.decode("utf-8"))
            arrivals.append(time.monotonic())
    conn.close()
    return {
        "status": resp.status,
        "content_type": resp.getheader("content-type"),
        "events": events,
        "after_first_s": [round(t - arrivals[0], 3) for t in arrivals],
    }


def main(argv) -> None:
    iii.ready()
    if argv[:1] == ["fetch"]:
        print(json.dumps(fetch()), flush=True)
    else:
        print("READY", flush=True)
        sys.stdin.read()
    iii.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
