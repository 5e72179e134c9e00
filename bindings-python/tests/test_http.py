"""Functions behind the engine's HTTP triggers, written with `iii.utils.http`: the guide's
download handler and the SSE example (examples/python, serving in a child process), and
handlers of this process that stream a response in pieces, read the request, or fail."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from http.client import HTTPConnection, IncompleteRead
from urllib.parse import urlsplit

import pytest

import iii
from helpers import EXAMPLES, REPO, StoppableEngine, load_module, start_python, stop, wait_line
from iii.utils import http

# The SSE checks of the interop suite (six events in order, delivered as written).
interop_http = load_module("iii_interop_http", REPO / "tests" / "interop" / "test_http.py")


def serve_example(engine, request, name: str, env: dict):
    proc = start_python(engine, request, EXAMPLES / name, env=env, stdin=subprocess.PIPE)
    wait_line(proc, "READY")
    return proc


def route(worker, function_id: str, handler, method: str, path: str) -> None:
    """Registers `handler` as `function_id` behind `method path`, and waits for the engine."""
    worker.register_function(function_id, handler)
    worker.register_trigger({
        "type": "http",
        "function_id": function_id,
        "config": {"api_path": path, "http_method": method},
    })
    worker.ready()


def connect(engine) -> HTTPConnection:
    url = urlsplit(engine.http_url)
    return HTTPConnection(url.hostname, url.port, timeout=20)


def http_get(engine, path: str) -> tuple[int, bytes]:
    """The status and body of GET `path` on the engine's HTTP port (errors included)."""
    try:
        with urllib.request.urlopen(f"{engine.http_url}{path}", timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.timeout(30)
def test_seed_download_through_the_http_port(engine, request, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 3)
    files = tmp_path / "files"
    files.mkdir()
    (files / "quarterly-report.pdf").write_bytes(data)
    # A file outside the served directory that a traversal would reach.
    (tmp_path / "secret.txt").write_bytes(b"not for download")
    proc = serve_example(engine, request, "http_download.py", {"III_FILES_DIR": str(files)})
    try:
        with urllib.request.urlopen(f"{engine.http_url}/files/quarterly-report.pdf", timeout=20) as resp:
            status, content_type, body = resp.status, resp.headers.get("content-type"), resp.read()
        missing = http_get(engine, "/files/no-such-report.pdf")
        escapes = [
            http_get(engine, path)
            for path in ("/files/..%2Fsecret.txt", "/files/..%2F..%2F..%2Fetc%2Fhostname", "/files/..", "/files/.")
        ]
    finally:
        stop(proc)
    assert status == 200
    assert content_type == "application/pdf"
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest() and len(body) == len(data)
    # A missing file is a 404 (the example checks before opening), and says nothing of the server.
    assert missing[0] == 404, missing
    assert str(tmp_path).encode() not in missing[1]
    # The engine refuses a filename that could leave the directory: the handler never runs.
    for code, body in escapes:
        assert code == 400, (code, body)
        assert b"not for download" not in body and str(tmp_path).encode() not in body


@pytest.mark.timeout(30)
def test_sse_example_streams_events_as_written(engine, request):
    interval_ms = int(interop_http.SSE_INTERVAL_S * 1000)
    proc = serve_example(engine, request, "http_sse.py", {"III_SSE_INTERVAL_MS": str(interval_ms)})
    conn = connect(engine)
    try:
        started = time.monotonic()
        conn.request("GET", "/events/stream", headers={"accept": "text/event-stream"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("content-type") == "text/event-stream"
        assert resp.getheader("cache-control") == "no-cache"
        events = interop_http.SseCollector()
        while chunk := resp.read1(65536):
            events.feed(chunk, time.monotonic())
    finally:
        conn.close()
        stop(proc)
    events.check(started)


@pytest.mark.timeout(30)
def test_response_written_in_pieces_arrives_in_pieces(engine, worker):
    """A handler writes five pieces 200 ms apart through `response.stream`: each reaches the
    client before the next is written, in order; the route's path and query arrive parsed."""
    seen = {}

    @http
    async def ticker(req, response):
        seen.update(path_params=req.path_params, query=req.query_params, method=req.method)
        await response.status(201)
        await response.headers({"content-type": "text/plain", "x-ticks": "5"})
        for i in range(5):
            await response.stream.write(f"tick {i}\n".encode())
            await asyncio.sleep(0.2)
        response.stream.end(b"done\n")

    route(worker, "t::ticker", ticker, "GET", "/ticks/:name")
    conn = connect(engine)
    try:
        conn.request("GET", "/ticks/clock?every=200&unit=ms")
        resp = conn.getresponse()
        arrivals, body = [], b""
        while chunk := resp.read1(65536):
            body += chunk
            arrivals.append((time.monotonic(), body.count(b"\n")))
    finally:
        conn.close()
    assert resp.status == 201
    assert resp.getheader("x-ticks") == "5"
    assert body == b"".join(f"tick {i}\n".encode() for i in range(5)) + b"done\n"
    first_line = next(at for at, lines in arrivals if lines >= 1)
    assert arrivals[-1][0] - first_line >= 0.5, f"the pieces arrived together: {arrivals}"
    assert seen == {"path_params": {"name": "clock"}, "query": {"every": "200", "unit": "ms"}, "method": "GET"}


@pytest.mark.timeout(30)
def test_request_body_streams_to_the_handler(engine, worker):
    """A POST body reaches the handler as `request_body`, a live reader."""
    @http
    async def upload(req, response):
        digest, total = hashlib.sha256(), 0
        async for chunk in req.request_body:
            digest.update(chunk)
            total += len(chunk)
        await response.status(200)
        await response.headers({"content-type": "application/json"})
        await response.writer.write(json.dumps({"bytes": total, "sha256": digest.hexdigest()}).encode())

    route(worker, "t::upload", upload, "POST", "/upload")
    data = os.urandom(3 * 1024 * 1024)
    post = urllib.request.Request(
        f"{engine.http_url}/upload", data=data, method="POST", headers={"content-type": "application/octet-stream"}
    )
    with urllib.request.urlopen(post, timeout=20) as resp:
        answer = json.loads(resp.read())
    assert answer == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.timeout(30)
def test_handler_failing_mid_body_cuts_the_response(engine, worker):
    """Raising after part of the body was sent aborts it: the client sees a cut-off body,
    never a short one that looks complete."""
    @http
    async def broken(_req, response):
        await response.status(200)
        await response.headers({"content-type": "application/octet-stream"})
        await response.writer.write(b"x" * 100_000)
        raise RuntimeError("disk read failed")

    route(worker, "t::broken", broken, "GET", "/broken")
    conn = connect(engine)
    try:
        conn.request("GET", "/broken")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(IncompleteRead) as cut:
            resp.read()
    finally:
        conn.close()
    assert cut.value.partial == b"x" * 100_000


@pytest.mark.timeout(30)
def test_send_file_serves_plain_names_from_its_directory(engine, worker, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    data = os.urandom(2 * 1024 * 1024 + 9)
    (files / "report.pdf").write_bytes(data)
    (tmp_path / "secret.txt").write_bytes(b"not for download")

    @http
    async def send(req, response):
        await response.send_file(files, req.query_params.get("name", ""))

    route(worker, "files::send", send, "GET", "/send")
    status, body = http_get(engine, "/send?name=report.pdf")
    assert status == 200 and body == data
    for name, expected in [("..%2Fsecret.txt", 400), ("..", 400), ("a%5Cb", 400), ("missing.pdf", 404)]:
        status, body = http_get(engine, f"/send?name={name}")
        assert status == expected, (name, status, body)
        assert b"not for download" not in body and str(tmp_path).encode() not in body


@pytest.mark.timeout(30)
def test_a_stopping_engine_lets_a_download_run_through_the_drain_then_cuts_it_going_away(tmp_path):
    """SIGTERM: the download in flight goes on while the engine drains; a second signal stops
    the engine, the client sees a cut response (never a clean end) and the handler's next write
    raises `iii.GoingAway`."""
    import threading

    with StoppableEngine(tmp_path, "--shutdown-grace-secs", "60") as engine:
        worker = iii.register_worker(engine.url)
        try:
            outcome = {}
            ended = threading.Event()

            @http
            async def endless(_req, response):
                await response.status(200)
                await response.writer.write(b"x" * 100_000)
                try:
                    while True:
                        await asyncio.sleep(0.01)
                        await response.writer.write(b"y" * 1000)
                except BaseException as error:  # noqa: BLE001 - recorded for the assertion
                    outcome["error"] = error
                    ended.set()

            route(worker, "t::endless", endless, "GET", "/endless")
            url = urlsplit(engine.http_url)
            conn = HTTPConnection(url.hostname, url.port, timeout=20)
            try:
                conn.request("GET", "/endless")
                resp = conn.getresponse()
                assert resp.status == 200
                assert resp.read(100_000) == b"x" * 100_000
                engine.stop_while_draining()
                with pytest.raises(IncompleteRead) as cut:
                    resp.read()
            finally:
                conn.close()
            assert len(cut.value.partial) >= 10_000, "the download went on while the engine drained"
            assert set(cut.value.partial) == {ord("y")}
            assert ended.wait(10), "the handler's write never failed"
            assert isinstance(outcome["error"], iii.GoingAway), repr(outcome["error"])
            assert engine.proc.wait(10) == 0
        finally:
            worker.shutdown()
