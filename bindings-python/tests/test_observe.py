"""What an operator sees (docs/OBSERVABILITY.md): `GET /metrics` parsed with
prometheus_client's own text parser, whose counters must move by exactly the traffic sent;
`GET /status` and `iii status` showing a live channel and its bytes while it streams; the
per-channel statistics of this package; and W3C trace context arriving intact in a handler
when the published Node and Python clients call through the engine."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import iii
from helpers import REPO, harness

MIB = 1024 * 1024


def scrape(engine) -> dict:
    """Every sample of /metrics: {(name, ((label, value), ...)): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{engine.port}/metrics", timeout=10).read().decode()
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
    assert got["bytes"] == 1000 and got["blocked_secs"] >= 0

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
    live = status(engine)
    [entry] = [c for c in live["channels"] if c["id"] == channel.writer_ref.channel_id]
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
