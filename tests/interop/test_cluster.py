"""Cluster mode (docs/CLUSTER.md): three engines on one NATS server (Debian's nats-server,
started here with JetStream), with workers of every kind attached to different nodes.

Peers: the published clients (peers/worker.py, peers/worker.mjs), our Rust SDK
(peers/rust_worker.rs) and our Python SDK (peers/cluster_peer.py, run with the package
tests' virtualenv: III_PY_VENV, default <repo>/target/python-venv).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import (
    ENGINE_BIN,
    REPO,
    WORKERS,
    Engine,
    ServingWorker,
    _logs_of,
    _printed_http_url,
    _stop,
    free_port,
    port_open,
    run_driver,
    tail,
)

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
OUR_PYTHON = Path(os.environ.get("III_PY_VENV") or REPO / "target" / "python-venv") / "bin" / "python"
PEER = WORKERS / "cluster_peer.py"
NODE_TIMEOUT_MS = 3000
# A lost node's calls and relays end within the node timeout, a sweep, and slack for a
# loaded 2-core machine (docs/CLUSTER.md, "Failure semantics").
LOSS_BOUND_SECS = NODE_TIMEOUT_MS / 1000 + 0.25 + 2.0



# ---------------------------------------------------------------- NATS and the nodes


class Nats:
    """nats-server with JetStream, on a fixed port so it can be restarted in place."""

    def __init__(self, workdir: Path, request, extra: list[str] | None = None) -> None:
        self.extra = extra or []
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store = workdir / "nats-store"
        self.log = workdir / "nats.log"
        self.proc: subprocess.Popen | None = None
        _logs_of(request.node).append(("nats-server log", self.log))
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store), *self.extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            assert self.proc.poll() is None, f"nats-server exited:\n{tail(self.log)}"
            assert time.monotonic() < deadline, f"nats-server did not listen:\n{tail(self.log)}"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def start_node(
    name: str, nats: Nats, workdir: Path, request, extra: list[str] | None = None, via_file: bool = False, env: dict | None = None
) -> Engine:
    """An engine joining `nats` as node `name`: through the flags, or through a config
    file's `cluster:` section."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / f"engine-{name}.log"
    env = dict(os.environ, NO_COLOR="1", **(env or {}))
    env.setdefault("RUST_LOG", "info")
    env.pop("III_HTTP_PORT", None)
    command = [str(ENGINE_BIN), "--host", "127.0.0.1", "--port", str(port), "--http-port", "0"]
    if via_file:
        config = workdir / f"config-{name}.yaml"
        config.write_text(f"cluster:\n  nats: {nats.url}\n  node_id: {name}\n  node_timeout_ms: {NODE_TIMEOUT_MS}\n")
        command += ["--config", str(config)]
    else:
        command += ["--cluster", nats.url, "--node-id", name, "--node-timeout-ms", str(NODE_TIMEOUT_MS)]
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            command + (extra or []),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
    _logs_of(request.node).append((f"engine {name} log", log))
    deadline = time.monotonic() + 20
    while not (port_open(port) and (http := _printed_http_url(log))):
        if proc.poll() is not None:
            pytest.fail(f"engine {name} exited with {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"engine {name} did not listen within 20 s:\n{tail(log)}")
        time.sleep(0.05)
    return Engine(url=f"ws://127.0.0.1:{port}", port=port, proc=proc, log=log, workdir=workdir, http_url=http[0], http_port=http[1])


def status(engine: Engine) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{engine.port}/status", timeout=5) as answer:
        return json.load(answer)


def wait_for(what: str, check, timeout: float = 15.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout} s (last: {last!r})")


def peers_of(engine: Engine) -> list[str]:
    return [m["node"] for m in status(engine)["cluster"]["members"]]


def sees_function(engine: Engine, function_id: str) -> list[str]:
    listed = status(engine)["cluster"]["remote_functions"]
    return next((f["nodes"] for f in listed if f["id"] == function_id), [])


@dataclass
class Cluster:
    nats: Nats
    nodes: dict[str, Engine]

    def __getitem__(self, name: str) -> Engine:
        return self.nodes[name]

    def kill(self, name: str) -> float:
        """SIGKILLs node `name`; returns when (time.monotonic)."""
        proc = self.nodes[name].proc
        killed = time.monotonic()
        proc.kill()
        proc.wait(timeout=5)
        return killed

    def wait_visible(self, function_id: str, on: list[str], served_by: list[str] | None = None) -> None:
        for name in on:
            wait_for(
                f"node {name} to see {function_id}" + (f" on {served_by}" if served_by else ""),
                lambda: (nodes := sees_function(self.nodes[name], function_id))
                and (served_by is None or sorted(nodes) == sorted(served_by)),
            )


@pytest.fixture
def cluster(request, tmp_path, published_clients):
    if not ENGINE_BIN.exists():
        pytest.fail(f"engine binary {ENGINE_BIN} not found")
    if not Path(NATS_SERVER).exists():
        pytest.fail("nats-server not found: apt-get install nats-server (scripts/test.sh does)")
    if not OUR_PYTHON.exists():
        pytest.fail(f"{OUR_PYTHON} not found: the package tests' virtualenv with our Python SDK (III_PY_VENV)")
    nats = Nats(tmp_path, request)
    nodes: dict[str, Engine] = {}
    try:
        for name in "abc":
            # Node c joins through a config file's `cluster:` section, a and b through flags.
            nodes[name] = start_node(name, nats, tmp_path, request, via_file=name == "c")
        for name, engine in nodes.items():
            others = sorted(set(nodes) - {name})
            wait_for(f"node {name} to see {others}", lambda engine=engine, others=others: sorted(peers_of(engine)) == others)
        yield Cluster(nats, nodes)
    finally:
        for engine in nodes.values():
            _stop(engine.proc)
        nats.kill()


# ---------------------------------------------------------------- our Python SDK peer


def peer_env(engine: Engine, tag: str, extra: dict | None = None) -> dict:
    env = dict(os.environ, III_URL=engine.url, TAG=tag, PYTHONUNBUFFERED="1", RUST_LOG="warn")
    env.update(extra or {})
    return env


class OurPeer:
    """cluster_peer.py serving (or driving without end) on one node; its stdout lines queued."""

    def __init__(self, engine: Engine, tag: str, request, *args: str, env: dict | None = None, ready: str = "READY"):
        self.stderr_path = engine.workdir / f"peer-{tag}-{args[0]}-{time.monotonic_ns()}.stderr"
        _logs_of(request.node).append((f"our peer {tag} {args[0]} stderr", self.stderr_path))
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(OUR_PYTHON), str(PEER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=peer_env(engine, tag, env),
            start_new_session=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.expect(ready, 30)

    def _pump(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").strip())
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix} line within {timeout} s:\n{tail(self.stderr_path)}") from None
            if line is None:
                raise AssertionError(f"peer exited before {prefix}:\n{tail(self.stderr_path)}")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _stop(self.proc, grace=2)
        self._stderr.close()


def our_run(engine: Engine, tag: str, request, *args: str, timeout: float = 120, env: dict | None = None) -> tuple[str, dict]:
    """Runs cluster_peer.py to completion; returns ("RESULT"|"ERROR", its JSON)."""
    stderr_path = engine.workdir / f"run-{tag}-{args[0]}-{time.monotonic_ns()}.stderr"
    _logs_of(request.node).append((f"our peer run {args[0]} stderr", stderr_path))
    with open(stderr_path, "wb") as err:
        done = subprocess.run(
            [str(OUR_PYTHON), str(PEER), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=peer_env(engine, tag, env),
            timeout=timeout,
        )
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        for kind in ("RESULT", "ERROR"):
            if line.startswith(kind + " "):
                return kind, json.loads(line[len(kind) + 1:])
    raise AssertionError(f"peer printed no RESULT (exit {done.returncode}):\n{tail(stderr_path)}")


@pytest.fixture
def peers(request):
    started: list = []

    def start(engine: Engine, tag: str, *args: str, **kwargs):
        peer = OurPeer(engine, tag, request, *(args or ("serve",)), **kwargs)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def serving(request):
    started: list[ServingWorker] = []

    def start(engine: Engine, lang: str, *flows: str, env: dict | None = None) -> ServingWorker:
        worker = ServingWorker(lang, list(flows), engine, request, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class PeakRss:
    """Samples the resident memory of processes every 20 ms while it runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.base = {name: rss_kib(pid) for name, pid in pids.items()}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for name, pid in self.pids.items():
                try:
                    self.peak[name] = max(self.peak[name], rss_kib(pid))
                except (OSError, AssertionError):
                    pass

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return {name: self.peak[name] - self.base[name] for name in self.pids}


def blob_sha256(size: int) -> str:
    return hashlib.sha256(hashlib.shake_256(f"iii-interop:{size}".encode()).digest(size)).hexdigest()


def our_blob_sha256(size: int) -> str:
    return hashlib.sha256(hashlib.shake_256(f"iii-cluster:{size}".encode()).digest(size)).hexdigest()


# ---------------------------------------------------------------- calls and channels across nodes

from test_channels import RECORDS, TEXT_LINES, PIECES, check_pipeline, check_transform  # noqa: E402


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
    # The reader sleeps 2 ms per chunk of at most 64 KiB: at least 1536 sleeps.
    assert out["secs"] >= SLOW / 65536 * 0.002, out
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


# ---------------------------------------------------------------- failures


@pytest.mark.timeout(120)
@pytest.mark.parametrize("killed", ["owner", "writer-node"])
def test_a_killed_node_gives_readers_an_error_not_an_end(cluster, peers, request, killed):
    """A stream runs while a node is SIGKILLed: the channel's owner (the reader's relay loses
    it: going away), or the node the writer is attached to (the owner loses the writer:
    writer_lost). Either way the reader on node B gets an error, within the documented bound,
    never a clean end."""
    reader = peers(cluster["b"], "b", "serve")
    if killed == "owner":
        cluster.wait_visible("cluster::read_report::b", on=["c"])
        peers(cluster["c"], "c", "drive-kill", "cluster::read_report::b", ready="STARTED")
    else:
        peers(cluster["c"], "c", "serve")
        cluster.wait_visible("cluster::read_report::b", on=["a"])
        cluster.wait_visible("cluster::write_slowly::c", on=["a"])
        args = ("drive-kill", "cluster::read_report::b", "cluster::write_slowly::c")
        peers(cluster["a"], "a", *args, ready="STARTED")
    reader.expect("PROGRESS", 30)
    killed_at = cluster.kill("c")
    report = json.loads(reader.expect("READ", LOSS_BOUND_SECS + 5))
    took = time.monotonic() - killed_at
    assert report["error"], f"the reader saw a clean end after {report['bytes']} bytes"
    assert took <= LOSS_BOUND_SECS, f"the reader learned after {took:.2f} s (bound {LOSS_BOUND_SECS} s)"
    expected = "going away" if killed == "owner" else "writer"
    assert expected in report["error"].lower() or "1001" in report["error"], report


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
    peers(cluster["b"], "b", "serve")
    cluster.wait_visible("cluster::whoami::b", on=["a"])
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::b")
    assert (kind, out["result"]) == ("RESULT", {"tag": "b"}), out
    cluster.nats.kill()
    wait_for("node a to lose its peers", lambda: peers_of(cluster["a"]) == [], timeout=LOSS_BOUND_SECS + 5)
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::a")
    assert (kind, out["result"]) == ("RESULT", {"tag": "a"}), out
    kind, out = our_run(cluster["a"], "a", request, "drive-slow", str(4 << 20), "cluster::slow_read::a")
    assert kind == "RESULT" and out["result"]["sha256"] == our_blob_sha256(4 << 20), out
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::b")
    assert kind == "ERROR" and out["secs"] < 5, out
    cluster.nats.start()
    for name in "abc":
        others = sorted(set("abc") - {name})
        wait_for(f"node {name} to see {others} again", lambda name=name, others=others: sorted(peers_of(cluster[name])) == others, timeout=30)
    cluster.wait_visible("cluster::whoami::b", on=["a"])
    kind, out = our_run(cluster["a"], "a", request, "call", "cluster::whoami::b")
    assert (kind, out["result"]) == ("RESULT", {"tag": "b"}), out


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
