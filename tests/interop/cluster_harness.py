"""The harness of the cluster tests (test_cluster.py, test_cluster_failures.py; docs/CLUSTER.md):
Debian's nats-server started with JetStream, three engines joined to it, and workers of every
kind attached to different nodes.

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
LOSS_BOUND_SECS = NODE_TIMEOUT_MS / 1000 + 0.25 + 1.25



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
    name: str,
    nats: Nats,
    workdir: Path,
    request,
    extra: list[str] | None = None,
    via_file: bool = False,
    env: dict | None = None,
    port: int | None = None,
) -> Engine:
    """An engine joining `nats` as node `name`: through the flags, or through a config
    file's `cluster:` section."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
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
    scheme = "wss" if "--tls-cert" in (extra or []) else "ws"
    return Engine(url=f"{scheme}://127.0.0.1:{port}", port=port, proc=proc, log=log, workdir=workdir, http_url=http[0], http_port=http[1])


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
