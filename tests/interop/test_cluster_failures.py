"""Cluster mode (docs/CLUSTER.md), the failures: nodes killed or frozen mid-stream and
mid-call, NATS killed and restarted, answers too large for NATS — each within the bounds
docs/CLUSTER.md gives, and never a clean end where a stream was cut."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from cluster_harness import (  # noqa: F401 - fixtures
    LOSS_BOUND_SECS,
    Nats,
    _stop,
    sees_function,
    cluster,
    our_blob_sha256,
    our_run,
    peers,
    peers_of,
    start_node,
    status,
    wait_for,
)

@pytest.mark.timeout(120)
@pytest.mark.parametrize("killed", ["owner", "owner-frozen", "writer-node"])
def test_a_killed_node_gives_readers_an_error_not_an_end(cluster, peers, request, killed):
    """A stream runs while node C is SIGKILLed — the channel's owner (the reader's relay loses
    it: going away) or the node the writer is attached to (the owner loses the writer:
    writer_lost) — or frozen with SIGSTOP, as a machine that vanished (its sockets stay open:
    the reader's node learns from the membership, within the node timeout). Either way the
    reader on node B gets an error, within the documented bound, never a clean end."""
    reader = peers(cluster["b"], "b", "serve")
    if killed.startswith("owner"):
        cluster.wait_visible("cluster::read_report::b", on=["c"])
        peers(cluster["c"], "c", "drive-kill", "cluster::read_report::b", ready="STARTED")
    else:
        peers(cluster["c"], "c", "serve")
        cluster.wait_visible("cluster::read_report::b", on=["a"])
        cluster.wait_visible("cluster::write_slowly::c", on=["a"])
        args = ("drive-kill", "cluster::read_report::b", "cluster::write_slowly::c")
        peers(cluster["a"], "a", *args, ready="STARTED")
    reader.expect("PROGRESS", 30)
    if killed == "owner-frozen":
        killed_at = time.monotonic()
        os.kill(cluster["c"].proc.pid, signal.SIGSTOP)
    else:
        killed_at = cluster.kill("c")
    try:
        report = json.loads(reader.expect("READ", LOSS_BOUND_SECS + 5))
    finally:
        if killed == "owner-frozen":
            cluster.kill("c")
    took = time.monotonic() - killed_at
    assert report["error"], f"the reader saw a clean end after {report['bytes']} bytes"
    assert took <= LOSS_BOUND_SECS, f"the reader learned after {took:.2f} s (bound {LOSS_BOUND_SECS} s)"
    error = report["error"].lower()
    if killed == "writer-node":
        assert "writer" in error, report
    else:
        assert "going away" in error or "going_away" in error or "1001" in error, report


@pytest.mark.timeout(120)
@pytest.mark.parametrize("restarted", [False, True], ids=["killed", "killed-and-restarted"])
def test_calls_pending_on_a_killed_node_stop_within_the_bound(cluster, peers, request, tmp_path, restarted):
    """A call in flight on node B when B is SIGKILLed fails with invocation_stopped once B's
    membership entry ages out (node timeout), not at the call's deadline — also when B starts
    again under its id at once (its entry never ages: the new process is told apart)."""
    peers(cluster["b"], "b", "serve")
    cluster.wait_visible("cluster::sleep::b", on=["a"])
    outcome: dict = {}

    def call() -> None:
        outcome["run"] = our_run(cluster["a"], "a", request, "call", "cluster::sleep::b", '{"secs": 60}', timeout=90)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for("the call to reach node b", lambda: status(cluster["a"])["cluster"]["calls_pending"] == 1)
    killed_at = cluster.kill("b")
    if restarted:
        cluster.nodes["b"] = start_node("b", cluster.nats, tmp_path / "again", request)
    caller.join(timeout=60)
    kind, out = outcome["run"]
    took = time.monotonic() - killed_at
    assert kind == "ERROR" and out["code"] == "invocation_stopped", out
    assert "node b" in out["message"], out
    assert took <= LOSS_BOUND_SECS + 1, f"stopped {took:.2f} s after the kill (bound {LOSS_BOUND_SECS} s)"
    if restarted:
        wait_for("node a to see b again", lambda: sorted(peers_of(cluster["a"])) == ["b", "c"])
    else:
        assert sorted(peers_of(cluster["a"])) == ["c"]
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::sleep::b", "{}")
    assert kind == "ERROR" and out["code"] == "function_not_found" and out["secs"] < 2, out


@pytest.mark.timeout(180)
def test_nats_down_keeps_local_traffic_and_the_cluster_recovers(cluster, peers, request):
    """With NATS killed, each node still serves its own workers (calls and channels); calls
    to peers fail at once instead of hanging. Once NATS is back, the nodes publish and
    follow everything again and calls cross nodes as before."""
    peers(cluster["a"], "a", "serve")
    reader = peers(cluster["b"], "b", "serve")
    cluster.wait_visible("cluster::whoami::b", on=["a"])
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::b")
    assert (kind, out["result"]) == ("RESULT", {"tag": "b"}), out
    # A stream from node A to a reader on node B (relayed by B) runs across the outage.
    size = 24 << 20
    outcome: dict = {}

    def stream() -> None:
        args = ("drive-stream", str(size), "cluster::read_report::b")
        outcome["run"] = our_run(cluster["a"], "a", request, *args, timeout=120, env={"PAUSE": "0.05"})

    streaming = threading.Thread(target=stream)
    streaming.start()
    reader.expect("PROGRESS", 30)
    cluster.nats.kill()
    wait_for("node a to lose its peers", lambda: peers_of(cluster["a"]) == [], timeout=LOSS_BOUND_SECS + 5)
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::a")
    assert (kind, out["result"]) == ("RESULT", {"tag": "a"}), out
    kind, out = our_run(cluster["a"], "a", request, "drive-slow", str(4 << 20), "cluster::slow_read::a")
    assert kind == "RESULT" and out["result"]["sha256"] == our_blob_sha256(4 << 20), out
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::b")
    assert kind == "ERROR" and out["secs"] < 5, out
    streaming.join(timeout=90)
    kind, out = outcome["run"]
    assert kind == "RESULT", out
    report = json.loads(reader.expect("READ", 30))
    assert report == {"bytes": size, "sha256": our_blob_sha256(size), "error": None}, report
    cluster.nats.start()
    for name in "abc":
        others = sorted(set("abc") - {name})
        wait_for(f"node {name} to see {others} again", lambda name=name, others=others: sorted(peers_of(cluster[name])) == others, timeout=30)
    cluster.wait_visible("cluster::whoami::b", on=["a"])
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::b")
    assert (kind, out["result"]) == ("RESULT", {"tag": "b"}), out


@pytest.mark.timeout(60)
def test_an_answer_too_large_for_nats_fails_at_once(cluster, peers, request):
    """A function on node B answers 2 MiB, over what NATS carries (1 MiB): the caller on node
    A gets payload_too_large at once, not a timeout; a small answer still crosses."""
    peers(cluster["b"], "b", "serve")
    cluster.wait_visible("cluster::big::b", on=["a"])
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::big::b", '{"size": 2097152}')
    assert kind == "ERROR" and out["code"] == "payload_too_large" and out["secs"] < 5, out
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::big::b", '{"size": 1000}')
    assert kind == "RESULT" and len(out["result"]["text"]) == 1000, out


@pytest.mark.timeout(60)
def test_the_engine_deadline_holds_across_nodes(request, tmp_path, peers):
    """Nodes run with a 2 s invocation timeout: a call from node A of a function on node B that
    sleeps 20 s is answered `timeout` by the engine after about 2 s, not when B's worker
    finishes."""
    nats = Nats(tmp_path, request)
    nodes = []
    try:
        for name in "ab":
            nodes.append(start_node(name, nats, tmp_path, request, extra=["--invocation-timeout-secs", "2"]))
        wait_for("node a to see b", lambda: peers_of(nodes[0]) == ["b"])
        peers(nodes[1], "b", "serve")
        wait_for("node a to see cluster::sleep::b", lambda: sees_function(nodes[0], "cluster::sleep::b"))
        kind, out = our_run(nodes[0], "a", request, "call", "cluster::sleep::b", '{"secs": 20}', timeout=30)
        assert kind == "ERROR" and out["code"] == "timeout", out
        assert 1.5 <= out["secs"] <= 6, out
    finally:
        for engine in nodes:
            _stop(engine.proc)
        nats.kill()
