"""HTTP triggers (docs/PROTOCOL.md §6) served through our engine by handlers written with the
*published* `http` helpers: Node `http` from @iii-dev/helpers/http (0.22.1) with iii-sdk's
registerWorker, Python `http` from iii_helpers.http (0.25.0) with the `iii` client.

The handlers are the guide's "Example 1: File Download via HTTP Endpoint" (`files::download`
on GET /files/:filename) and "Example 2: Server-Sent Events (SSE) Streaming"
(`events::stream` on GET /events/stream: five `progress` events, then `done`), registered by
`worker.{mjs,py} serve download sse`. The HTTP clients here are the standard library and
curl, talking to the engine's HTTP port (`engine.http_url`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

LANGS = ["node", "python"]

DOWNLOAD_SIZE = 5 * 1024 * 1024
# What each guide handler sets: the Node tab an octet stream with a content-disposition, the
# Python tab application/pdf.
DOWNLOAD_CONTENT_TYPE = {"node": "application/octet-stream", "python": "application/pdf"}

# The handlers wait this long between events (the guide waits 1 s): 5 intervals per stream.
SSE_INTERVAL_S = 0.25
# The first and the last event are written >= 5 intervals (1.25 s) apart. A stream that is
# delivered as it is written shows most of that gap; a buffered one shows none. Requiring
# 2 intervals leaves 0.75 s for scheduling delays on a loaded machine.
SSE_MIN_SPREAD_S = 2 * SSE_INTERVAL_S

EXPECTED_EVENTS = [(str(i), "progress", {"step": i, "total": 5}) for i in range(1, 6)] + [
    ("6", "done", {"message": "complete"})
]


def serve_http(serve, lang: str, *flows: str, files_dir=None):
    env = {"III_INTEROP_SSE_INTERVAL_MS": str(int(SSE_INTERVAL_S * 1000))}
    if files_dir is not None:
        env["III_INTEROP_FILES_DIR"] = str(files_dir)
    return serve(lang, *flows, env=env)


# ---------------------------------------------------------------- SSE parsing

@dataclass
class Event:
    at: float  # time.monotonic() when the bytes completing it arrived
    id: str | None
    event: str | None
    data: object


class SseCollector:
    """Splits a text/event-stream body into events as its bytes arrive, noting when each one
    was complete."""

    def __init__(self) -> None:
        self.buf = b""
        self.events: list[Event] = []

    def feed(self, data: bytes, at: float) -> None:
        self.buf += data
        while b"\n\n" in self.buf:
            block, self.buf = self.buf.split(b"\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.decode("utf-8").split("\n"):
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
            data_field = fields.get("data")
            self.events.append(
                Event(at, fields.get("id"), fields.get("event"), None if data_field is None else json.loads(data_field))
            )

    def check(self, t0: float) -> None:
        assert self.buf == b"", f"stream ended inside an event: {self.buf[:200]!r}"
        got = [(e.id, e.event, e.data) for e in self.events]
        assert got == EXPECTED_EVENTS, got
        arrivals = [round(e.at - t0, 3) for e in self.events]
        spread = self.events[-1].at - self.events[0].at
        assert spread >= SSE_MIN_SPREAD_S, (
            f"events arrived {spread:.3f} s apart (first to last), written >= {5 * SSE_INTERVAL_S} s apart: "
            f"the stream was buffered, not flushed per write (arrivals after the request, s: {arrivals})"
        )


# ---------------------------------------------------------------- download

@pytest.mark.timeout(90)
@pytest.mark.parametrize("lang", LANGS)
def test_download(engine, serve, tmp_path, lang):
    """Guide example 1: a 5 MiB random file through the engine's HTTP port, byte-exact."""
    files = tmp_path / "files"
    files.mkdir()
    data = os.urandom(DOWNLOAD_SIZE)
    (files / "report-5mib.bin").write_bytes(data)
    serve_http(serve, lang, "download", files_dir=files)

    with urllib.request.urlopen(f"{engine.http_url}/files/report-5mib.bin", timeout=60) as resp:
        status = resp.status
        headers = resp.headers
        body = resp.read()

    assert status == 200
    assert headers.get("content-type") == DOWNLOAD_CONTENT_TYPE[lang], dict(headers)
    if lang == "node":
        assert headers.get("content-disposition") == 'attachment; filename="report-5mib.bin"', dict(headers)
    assert len(body) == len(data)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest(), "downloaded bytes differ"


# ---------------------------------------------------------------- SSE

@pytest.mark.timeout(60)
@pytest.mark.parametrize("lang", LANGS)
def test_sse(engine, serve, lang):
    """Guide example 2, read incrementally with http.client: six events in order, each
    delivered when written."""
    serve_http(serve, lang, "sse")
    url = urlsplit(engine.http_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        t0 = time.monotonic()
        conn.request("GET", "/events/stream", headers={"accept": "text/event-stream"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("content-type") == "text/event-stream", resp.getheaders()
        assert resp.getheader("cache-control") == "no-cache", resp.getheaders()
        sse = SseCollector()
        while chunk := resp.read1(65536):
            sse.feed(chunk, time.monotonic())
    finally:
        conn.close()
    sse.check(t0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lang", LANGS)
def test_sse_with_curl(engine, serve, tmp_path, lang):
    """Guide example 2 as the docs read it: `curl -N` prints the events as they arrive."""
    curl = shutil.which("curl")
    assert curl, "curl is not installed (scripts/test.sh installs it)"
    serve_http(serve, lang, "sse")
    header_file = tmp_path / f"curl-{lang}.headers"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [curl, "-sS", "-N", "--max-time", "30", "-D", str(header_file), f"{engine.http_url}/events/stream"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    sse = SseCollector()
    try:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            sse.feed(chunk, time.monotonic())
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode("utf-8", "replace")
    assert rc == 0, f"curl exited {rc}: {stderr}"
    lines = header_file.read_text().splitlines()
    assert lines and lines[0].split()[1] == "200", lines
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)}
    assert headers.get("content-type") == "text/event-stream", headers
    sse.check(t0)
