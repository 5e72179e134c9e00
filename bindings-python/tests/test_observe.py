"""What an operator sees (docs/OBSERVABILITY.md): `GET /metrics` parsed with
prometheus_client's own text parser, whose counters must move by exactly the traffic sent;
`GET /status` and `iii status` showing a live channel and its bytes while it streams; the
per-channel statistics of this package; and W3C trace context arriving intact in a handler
when the published Node and Python clients call through the engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import iii
from helpers import REPO, StoppableEngine, harness

MIB = 1024 * 1024


def scrape(engine) -> dict:
    """Every sample of /metrics (OpenMetrics, as its content type says), parsed by Prometheus's
    own Python client: {(name, ((label, value), ...)): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{engine.port}/metrics", timeout=10) as answer:
        assert answer.headers["content-type"].startswith("application/openmetrics-text")
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def status(engine) -> dict:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{engine.port}/status", timeout=10).read())


def test_metrics_move_by_exactly_the_traffic_sent(engine, worker):
    def ok(data):
        return {"n": data["n"]}

    def failing(_data):
        raise RuntimeError("on purpose")

    def drain(data):
        return {"bytes": len(data["reader"].read_all())}

    worker.register_function("observe::ok", ok)
    worker.register_function("observe::fail", failing)
    worker.register_function("observe::drain", drain)
    worker.trigger({"function_id": "observe::ok", "payload": {"n": 0}})  # the functions are in place

    before = scrape(engine)
    for n in range(3):
        assert worker.trigger({"function_id": "observe::ok", "payload": {"n": n}}) == {"n": n}
    for _ in range(2):
        with pytest.raises(Exception):
            worker.trigger({"function_id": "observe::fail", "payload": {}})
    # A made-up id: counted, but under no label of its own.
    with pytest.raises(Exception):
        worker.trigger({"function_id": "observe::made-up", "payload": {}})

    # A complete stream of a known size, with one message.
    size = 3 * MIB + 12345
    channel = worker.create_channel()
    done = {}
    reading = threading.Thread(
        target=lambda: done.update(
            worker.trigger({"function_id": "observe::drain", "payload": {"reader": channel.reader_ref}})
        )
    )
    reading.start()
    channel.writer.send_message("halfway")
    channel.writer.write(os.urandom(size))
    channel.writer.close()
    reading.join(30)
    assert done == {"bytes": size}
    written = channel.writer.stats()
    assert (written["bytes"], written["messages"]) == (size, 1)
    assert written["frames"] >= size // (64 * 1024)

    # An aborted stream: the reader learns it, the engine counts it as aborted.
    aborted = worker.create_channel()
    aborted.writer.write(b"x" * 1000)
    aborted.writer.abort("on purpose")
    with pytest.raises(Exception):
        aborted.reader.read_all()
    got = aborted.reader.stats()
    assert got["bytes"] == 1000

    deadline = time.monotonic() + 10
    while True:
        after = scrape(engine)
        if value(after, "iii_channels_ended_total", status="aborted") > value(
            before, "iii_channels_ended_total", status="aborted"
        ) or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("iii_invocations_total", function="observe::ok", outcome="ok") == 3
    assert delta("iii_invocations_total", function="observe::fail", outcome="invocation_failed") == 2
    assert delta("iii_invocations_total", function="observe::drain", outcome="ok") == 1
    assert delta("iii_invocations_total", function="engine::channels::create", outcome="ok") == 2
    assert delta("iii_invocation_duration_seconds_count", function="observe::ok") == 3
    assert delta("iii_invocations_total", function="_unresolved", outcome="function_not_found") == 1
    assert not [key for key in after if ("function", "observe::made-up") in key[1]]
    assert delta("iii_channels_created_total") == 2
    assert delta("iii_channels_ended_total", status="complete") == 1
    assert delta("iii_channels_ended_total", status="aborted") == 1
    # The bytes and the message of both streams, in and out; the aborted stream's 1000 bytes
    # went out too (the reader drained them before it learnt of the abort).
    stream_bytes = size + len("halfway") + 1000
    assert delta("iii_channel_bytes_total", direction="in") == stream_bytes
    assert delta("iii_channel_bytes_total", direction="out") == stream_bytes
    assert delta("iii_channel_frames_total", direction="in") == delta("iii_channel_frames_total", direction="out")
    assert value(after, "iii_channels_active") == 0
    assert value(after, "iii_workers_connected", listener=f"127.0.0.1:{engine.port}") == 1
    assert value(after, "iii_functions_registered") == 3
    assert value(after, "iii_invocations_in_flight") == 0
    assert value(after, "iii_channel_buffer_limit_bytes") > 0


def test_status_and_iii_status_show_a_live_channel_and_its_bytes(engine, worker):
    channel = worker.create_channel(64)
    channel.writer.write(b"y" * (2 * MIB))  # held by the engine: nobody reads yet
    deadline = time.monotonic() + 10
    while True:  # the engine reads what the socket holds on its own time
        live = status(engine)
        [entry] = [c for c in live["channels"] if c["id"] == channel.writer_ref.channel_id]
        if entry["bytes_in"] == 2 * MIB or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert entry["bytes_in"] == 2 * MIB and entry["bytes_out"] == 0
    assert entry["buffered_bytes"] == 2 * MIB and entry["buffer_capacity_bytes"] == 64 * 64 * 1024
    assert (entry["writer"], entry["reader"]) == ("connected", "waiting")
    assert "access_key" not in json.dumps(live) and channel.writer_ref.access_key not in json.dumps(live)
    [me] = live["workers"]
    assert me["runtime"] == "python" and me["address"].startswith("127.0.0.1:")

    shown = subprocess.run(
        [str(harness.ENGINE_BIN), "status", "--url", engine.url], capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith(channel.writer_ref.channel_id[:8]))
    assert "connected  waiting" in row and "2.0 MiB" in row, shown.stdout

    # Reading it drains the buffer; /status follows.
    got = {}
    reading = threading.Thread(target=lambda: got.update(data=channel.reader.read_all()))
    reading.start()
    channel.writer.close()
    reading.join(30)
    assert len(got["data"]) == 2 * MIB
    assert not [c for c in status(engine)["channels"] if c["id"] == channel.writer_ref.channel_id]

    # Many channels: /status lists the oldest (?limit=), and says how many there are.
    many = [worker.create_channel() for _ in range(3)]
    for open_one in many:
        open_one.writer.write(b"w")
    limited = json.loads(get(f"http://127.0.0.1:{engine.port}/status?limit=2")[1])
    assert [c["id"] for c in limited["channels"]] == [c.writer_ref.channel_id for c in many[:2]]
    assert limited["channels_total"] == 3 and limited["channels_truncated"] is True


def test_a_slow_reader_shows_as_blocked_time_on_both_sides(engine, worker):
    pause = 0.6
    channel = worker.create_channel(4)  # 256 KiB of buffer

    def late_reader():
        time.sleep(pause)
        channel.reader.read_all()

    before = scrape(engine)
    reading = threading.Thread(target=late_reader)
    reading.start()
    # More than the channel's buffer and both sockets' kernel buffers hold.
    started = time.monotonic()
    channel.writer.write(b"b" * (32 * MIB))
    writing = time.monotonic() - started
    channel.writer.close()
    reading.join(30)
    blocked = channel.writer.stats()["blocked_secs"]
    # Held back at least while the reader slept; never longer than the write took.
    assert pause * 0.5 <= blocked <= writing + 0.05, (blocked, writing)
    after = scrape(engine)
    engine_blocked = value(after, "iii_channel_writer_blocked_seconds_total") - value(
        before, "iii_channel_writer_blocked_seconds_total"
    )
    assert engine_blocked >= pause * 0.5, engine_blocked
    # The reader waited for nothing: everything was there when it started.
    assert channel.reader.stats()["blocked_secs"] < pause * 0.5


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("client", ["node", "python"])
def test_trace_context_from_the_published_clients_arrives_intact(engine, worker, client, node_client):
    seen = {}

    def inner(_data):
        call = iii.current_invocation()
        return {"traceparent": call.traceparent, "baggage": call.baggage}

    def outer(_data):
        call = iii.current_invocation()
        seen.update(traceparent=call.traceparent, baggage=call.baggage)
        # A call the handler makes carries the served call's context on.
        return {"here": dict(seen), "onward": worker.trigger({"function_id": "observe::inner", "payload": {}})}

    worker.register_function("observe::inner", inner)
    worker.register_function("observe::outer", outer)
    worker.trigger({"function_id": "observe::inner", "payload": {}})
    args = [engine.url, "observe::outer", TRACEPARENT, "tenant", "acme"]
    if client == "node":
        command = ["node", str(REPO / "tests/observe/trace_caller.mjs"), str(harness.CACHE / "node"), *args]
    else:
        command = [str(harness.PY), str(REPO / "tests/observe/trace_caller.py"), *args]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    expected = {"traceparent": TRACEPARENT, "baggage": "tenant=acme"}
    assert result == {"here": expected, "onward": expected}


def get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_the_endpoints_follow_the_listener_rules_and_no_metrics(tmp_path):
    config = tmp_path / "config.yaml"
    rbac_port, open_port = harness.free_port(), harness.free_port()
    config.write_text(
        "workers:\n"
        "  - name: iii-worker-manager\n    config:\n      host: 127.0.0.1\n"
        f"  - name: iii-worker-manager\n    config:\n      host: 127.0.0.1\n      port: {rbac_port}\n"
        "      rbac:\n        auth_function_id: observe::auth\n"
        f"  - name: iii-worker-manager\n    config:\n      host: 0.0.0.0\n      port: {open_port}\n"
        "      allowed_hosts: [engine.internal]\n"
    )
    with StoppableEngine(tmp_path, "--config", str(config), env={"III_NO_METRICS": "1"}) as engine:
        base = f"http://127.0.0.1:{engine.port}"
        assert get(f"{base}/metrics")[0] == 404  # III_NO_METRICS=1
        assert get(f"{base}/status")[0] == 200
        # Under rbac both are refused: they list every worker and function.
        for path in ("/metrics", "/status"):
            code, body = get(f"http://127.0.0.1:{rbac_port}{path}")
            assert code == 403 and json.loads(body)["error"]["code"] == "FORBIDDEN", body
        # A page of another site, or a rebinding DNS name, is refused as on upgrades: on the
        # loopback listener any name but a loopback one, on the 0.0.0.0 one any name but an
        # address or an allowed name.
        assert get(f"{base}/status", {"Origin": "https://evil.example"})[0] == 403
        assert get(f"{base}/status", {"Host": "evil.example"})[0] == 403
        wide = f"http://127.0.0.1:{open_port}/status"
        assert get(wide)[0] == 200
        assert get(wide, {"Host": f"10.1.2.3:{open_port}"})[0] == 200
        assert get(wide, {"Host": f"engine.internal:{open_port}"})[0] == 200
        assert get(wide, {"Host": f"evil.example:{open_port}"})[0] == 403
        # iii status reports a refusal and fails, rather than printing nothing.
        refused = subprocess.run(
            [str(harness.ENGINE_BIN), "status", "--url", f"http://127.0.0.1:{rbac_port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode != 0 and "403" in refused.stderr, refused
        shown = subprocess.run(
            [str(harness.ENGINE_BIN), "status", "--url", f"ws://localhost:{open_port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert shown.returncode == 0 and "0 open channels" in shown.stdout, shown


def test_json_logs_name_workers_channels_and_traces(tmp_path):
    env = {"RUST_LOG": "iii_engine=debug", "NO_COLOR": "1"}
    with StoppableEngine(tmp_path, "--log-format", "json", env=env) as engine:
        client = iii.register_worker(engine.url)
        client.ready()
        def failing(_data):
            raise RuntimeError("on purpose")

        client.register_function("observe::fail", failing)
        with pytest.raises(Exception):
            client.trigger({"function_id": "observe::fail", "payload": {}, "traceparent": TRACEPARENT})
        channel = client.create_channel()
        got = {}
        reading = threading.Thread(target=lambda: got.update(data=channel.reader.read_all()))
        reading.start()
        channel.writer.write(b"z" * 5000)
        channel.writer.close()
        reading.join(30)
        client.shutdown()
        deadline = time.monotonic() + 10
        while "worker disconnected" not in engine.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    lines = [line for line in engine.log.read_text().splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]  # every log line is one JSON object
    by_message = {}
    for event in events:
        by_message.setdefault(event["fields"]["message"], []).append(event["fields"])
    assert by_message["worker connected"][0]["peer"].startswith("127.0.0.1:")
    assert by_message["worker disconnected"][0]["reason"] == "closed by the worker"
    trace_id = TRACEPARENT.split("-")[1]
    forwarded = [f for f in by_message["invocation forwarded"] if f["function_id"] == "observe::fail"]
    assert forwarded and forwarded[0]["trace_id"] == trace_id and forwarded[0]["invocation_id"]
    [failed] = [f for f in by_message["invocation failed"] if f["function_id"] == "observe::fail"]
    assert failed["trace_id"] == trace_id
    ended = [f for f in by_message["channel ended"] if f["written_bytes"] == 5000]
    assert ended and ended[0]["read_bytes"] == 5000 and ended[0]["status"] == "Complete"


def test_iii_status_watch_refreshes_until_interrupted(engine, worker):
    watching = subprocess.Popen(
        [str(harness.ENGINE_BIN), "status", "--url", engine.url, "--watch", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.5)
    watching.send_signal(signal.SIGINT)
    out, _ = watching.communicate(timeout=10)
    assert watching.returncode == 0
    assert out.count("WORKER") >= 3, out  # refreshed several times


def test_http_requests_are_counted_and_carry_their_trace_context(engine, worker):
    def traced(_request):
        call = iii.current_invocation()
        return {"status_code": 202, "body": {"traceparent": call.traceparent, "tracestate": call.tracestate}}

    worker.register_function("observe::traced", traced)
    worker.register_trigger(
        {"type": "http", "function_id": "observe::traced", "config": {"api_path": "/traced/:id", "http_method": "GET"}}
    )
    worker.ready()
    before = scrape(engine)
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    for n in range(3):
        code, body = get(f"{engine.http_url}/traced/{n}", headers)
        assert code == 202 and json.loads(body) == {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    assert get(f"{engine.http_url}/nowhere")[0] == 404
    after = scrape(engine)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("iii_http_requests_total", route="/traced/:id", method="GET", status="202") == 3
    assert delta("iii_http_requests_total", route="_unmatched", method="GET", status="404") == 1
    assert delta("iii_http_request_duration_seconds_count", route="/traced/:id") == 3
    assert delta("iii_invocations_total", function="observe::traced", outcome="ok") == 3
    version = subprocess.run([str(harness.ENGINE_BIN), "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert value(after, "iii_build_info", version=version) == 1
