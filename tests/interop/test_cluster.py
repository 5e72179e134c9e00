"""Cluster mode (docs/CLUSTER.md), the flows: calls and channels between workers of every kind
attached to different nodes of three engines on one NATS server; HTTP through a node that
does not hold the function; NATS credentials. The failures are in test_cluster_failures.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from cluster_harness import (  # noqa: F401 - fixtures
    ENGINE_BIN,
    REPO,
    free_port,
    Nats,
    PeakRss,
    _stop,
    blob_sha256,
    cluster,
    our_blob_sha256,
    our_run,
    peers,
    peers_of,
    run_driver,
    serving,
    start_node,
    status,
    wait_for,
)
from test_channels import PIECES, RECORDS, TEXT_LINES, check_pipeline, check_transform

@pytest.mark.timeout(240)
def test_python_on_a_calls_node_on_b_and_rust_on_c(cluster, serving, rust_worker, request):
    """The published Python client on node A drives the guide's pipeline (served by the
    published Node client on B) and its bidirectional transform (served by our Rust SDK on
    C): calls cross nodes over NATS, and every channel end is relayed to the node that
    created its channel."""
    serving(cluster["b"], "node", "pipeline")
    serving(cluster["c"], "rust", "transform")
    cluster.wait_visible("pipeline::consumer", on=["a"], served_by=["b"])
    cluster.wait_visible("transform::worker", on=["a"], served_by=["c"])
    check_pipeline(run_driver(cluster["a"], request, "python", "pipeline", "--records", str(RECORDS)), "node")
    transformed = run_driver(
        cluster["a"], request, "python", "transform", "--text-lines", str(TEXT_LINES), "--pieces", str(PIECES)
    )
    check_transform(transformed, "rust")
    a = status(cluster["a"])["cluster"]
    assert a["calls_sent"] >= 2, a
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster['a'].port}/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    for sample in ("iii_cluster_nodes 3", "iii_cluster_nats_connected 1"):
        assert sample in metrics.splitlines(), sample
    sent = [line for line in metrics.splitlines() if line.startswith("iii_cluster_calls_sent_total ")]
    assert sent and float(sent[0].split()[1]) >= 2, sent
    for name in "bc":
        relayed = status(cluster[name])["cluster"]
        assert relayed["relays_opened"] >= 1, (name, relayed)


BIG = 200 * 1024 * 1024


@pytest.mark.timeout(300)
def test_200_mib_channel_from_a_to_c_arrives_byte_exact(cluster, serving, rust_worker, request):
    """200 MiB written on node A (the published Python client) and read on node C (our Rust
    SDK, through C's relay to A), hashed on arrival."""
    serving(cluster["c"], "rust", "files")
    cluster.wait_visible("files::process", on=["a"], served_by=["c"])
    out = run_driver(cluster["a"], request, "python", "files", "--size", str(BIG), "--chunk", str(1 << 20), timeout=240)
    expected = blob_sha256(BIG)
    assert out["sent"] == {"bytes": BIG, "sha256": expected}
    assert out["result"]["bytes"] == BIG, out["result"]
    assert out["result"]["sha256"] == expected, "bytes arrived altered or out of order"
    c = status(cluster["c"])["cluster"]
    assert c["relayed_bytes_from_owner"] >= BIG, c


SLOW = 96 * 1024 * 1024
# The channel buffer (64 frames of 64 KiB), the relay's socket buffers and batch, and the
# allocator's slack: far below the 96 MiB that pass.
RSS_BOUND_KIB = 48 * 1024


@pytest.mark.timeout(300)
@pytest.mark.parametrize("streams", ["sockets", "streams"])
def test_a_slow_reader_on_one_node_bounds_a_writer_on_another(cluster, peers, request, streams):
    """Our Python SDK writes 96 MiB on node A as fast as it can; the reader on node B takes a
    chunk and sleeps. The writer waits on the reader (the run lasts at least the reader's
    sleeps), and neither engine holds more than the channel buffer and the relay's batch:
    their resident memory, read from /proc, stays far below what passed. With `streams`,
    both ends ride on their worker's main socket (docs/PROTOCOL.md §4.8)."""
    env = {"III_CHANNEL_STREAMS": "1"} if streams == "streams" else None
    peers(cluster["b"], "b", "serve", env=env)
    cluster.wait_visible("cluster::slow_read::b", on=["a"])
    pids = {name: cluster[name].proc.pid for name in "ab"}
    peak = PeakRss(pids)
    kind, out = our_run(cluster["a"], "a", request, "drive-slow", str(SLOW), "cluster::slow_read::b", env=env, timeout=240)
    grown = peak.stop()
    assert kind == "RESULT", out
    assert out["result"] == {"bytes": SLOW, "sha256": our_blob_sha256(SLOW), "tag": "b"}, out["result"]
    # The reader sleeps 2 ms per chunk of at most 64 KiB: at least 1536 sleeps. The writer
    # finishes only once all but a buffer's worth was read, so it waited on them too.
    reader_sleeps = SLOW / 65536 * 0.002
    assert out["writer_secs"] >= 0.8 * reader_sleeps, out
    for name, kib in grown.items():
        assert kib < RSS_BOUND_KIB, f"engine {name} grew by {kib} KiB while {SLOW >> 20} MiB passed (bound {RSS_BOUND_KIB} KiB)"
    b = status(cluster["b"])["cluster"]
    assert b["relayed_bytes_from_owner"] >= SLOW, b


PUBLISHED_ACROSS = [("node", "python"), ("python", "node")]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("driver,server", PUBLISHED_ACROSS, ids=[f"{d}-on-a-to-{s}-on-b" for d, s in PUBLISHED_ACROSS])
def test_published_clients_on_different_nodes_run_the_channel_flows(cluster, serving, request, driver, server):
    """The published clients, unchanged, each attached to its own node: they build channel
    URLs from their own engine, which relays the ends to the node that owns the channel."""
    serving(cluster["b"], server, "pipeline", "transform", "files")
    for function_id in ("pipeline::consumer", "transform::worker", "files::process"):
        cluster.wait_visible(function_id, on=["a"], served_by=["b"])
    a = cluster["a"]
    check_pipeline(run_driver(a, request, driver, "pipeline", "--records", str(RECORDS)), server)
    check_transform(run_driver(a, request, driver, "transform", "--text-lines", str(TEXT_LINES), "--pieces", str(PIECES)), server)
    size = 20 * 1024 * 1024
    out = run_driver(a, request, driver, "files", "--size", str(size), "--chunk", str(256 * 1024), timeout=120)
    assert out["result"]["bytes"] == size and out["result"]["sha256"] == blob_sha256(size), out["result"]


@pytest.mark.timeout(240)
def test_replicas_on_two_nodes_both_serve(cluster, serving, request):
    """pipeline::consumer served by the published Node client on A and the published Python
    client on B: calls from node C (which serves nothing) go to both in turn."""
    serving(cluster["a"], "node", "pipeline")
    serving(cluster["b"], "python", "pipeline")
    cluster.wait_visible("pipeline::consumer", on=["c"], served_by=["a", "b"])
    results = run_driver(cluster["c"], request, "node", "pipeline", "--records", "1000", "--parallel", "8")
    runtimes = {result["runtime"] for result in results}
    assert runtimes == {"node", "python"}, results
    for i, result in enumerate(results):
        n = 1000 + i
        assert (result["count"], result["total"]) == (n, n * (n + 1) // 2), (i, result)


@pytest.mark.timeout(60)
def test_nats_credentials_are_required_and_used(request, tmp_path):
    """Against a NATS server that requires a user and password, a node with the right ones
    (III_NATS_USER / III_NATS_PASSWORD) joins and sees its peer; one with a wrong password is
    refused at start-up with an error naming the cluster, instead of running alone."""
    nats = Nats(tmp_path, request, ["--user", "iii", "--pass", "s3cret"])
    good = {"III_NATS_USER": "iii", "III_NATS_PASSWORD": "s3cret"}
    nodes = []
    try:
        for name in "ab":
            nodes.append(start_node(name, nats, tmp_path, request, env=good))
        wait_for("node a to see b", lambda: peers_of(nodes[0]) == ["b"])
        env = dict(os.environ, III_NATS_USER="iii", III_NATS_PASSWORD="wrong", NO_COLOR="1")
        command = [str(ENGINE_BIN), "--port", "0", "--http-port", "0", "--cluster", nats.url, "--node-id", "x"]
        refused = subprocess.run(command, env=env, capture_output=True, timeout=30)
        output = (refused.stdout + refused.stderr).decode("utf-8", "replace")
        assert refused.returncode != 0, output
        assert "cannot join the cluster" in output and "authorization" in output.lower(), output
    finally:
        for engine in nodes:
            _stop(engine.proc)
        nats.kill()


@pytest.mark.timeout(120)
def test_http_download_through_a_node_without_the_function(cluster, serving, tmp_path):
    """GET on node A's HTTP port for a route only node B's worker (the published Python
    client) registered: the request reaches the function on B, and the 12 MiB response
    streams back through A, byte-exact."""
    files = tmp_path / "files"
    files.mkdir()
    data = os.urandom(12 * 1024 * 1024)
    (files / "report.bin").write_bytes(data)
    serving(cluster["b"], "python", "download", env={"III_INTEROP_FILES_DIR": str(files)})
    cluster.wait_visible("files::download", on=["a"], served_by=["b"])

    def fetch() -> bytes | None:
        try:
            with urllib.request.urlopen(f"{cluster['a'].http_url}/files/report.bin", timeout=60) as answer:
                return answer.read() if answer.status == 200 else None
        except urllib.error.HTTPError:
            return None  # the route has not reached node a yet

    body = wait_for("node a to serve the route", fetch, timeout=15, every=0.2)
    assert len(body) == len(data)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest(), "downloaded bytes differ"


@pytest.mark.timeout(120)
def test_tls_to_nats_and_between_nodes(request, tmp_path, peers):
    """TLS everywhere: NATS serves TLS only (the nodes check it against the test CA), and the
    nodes' worker ports serve wss:// only, so a channel end relayed from node B to node A
    travels over TLS, checked against --peer-ca. Calls cross and 8 MiB stream through the
    relay byte-exact."""
    certs = tmp_path / "certs"
    subprocess.run(["bash", str(REPO / "scripts" / "make-test-certs.sh"), str(certs)], check=True)
    ca, cert, key = (str(certs / name) for name in ("ca.pem", "leaf.pem", "leaf.key"))
    nats = Nats(tmp_path, request, ["--tls", "--tlscert", cert, "--tlskey", key])
    nodes = []
    try:
        for name in "ab":
            port = free_port()
            extra = ["--tls-cert", cert, "--tls-key", key, "--advertise", f"wss://127.0.0.1:{port}"]
            extra += ["--nats-tls", "--nats-ca", ca, "--peer-ca", ca]
            nodes.append(start_node(name, nats, tmp_path, request, extra=extra, port=port))
        tls = {"III_CA_FILE": ca}
        peers(nodes[1], "b", "serve", env=tls)

        def call() -> dict | None:
            kind, out = our_run(nodes[0], "a", request, "call", "cluster::whoami::b", env=tls)
            return out if kind == "RESULT" else None

        assert wait_for("a call from node a to reach node b", call, timeout=20, every=0.2)["result"] == {"tag": "b"}
        size = 8 << 20
        kind, out = our_run(nodes[0], "a", request, "drive-slow", str(size), "cluster::slow_read::b", env=tls)
        assert kind == "RESULT" and out["result"]["sha256"] == our_blob_sha256(size), out
    finally:
        for engine in nodes:
            _stop(engine.proc)
        nats.kill()
