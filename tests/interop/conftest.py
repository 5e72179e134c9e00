"""Harness of the interop suite: starts our engine binary and runs worker programs built
on the published iii clients (and on our Rust SDK) against it.

Environment:
  III_ENGINE_BIN        engine binary (default <repo>/target/debug/iii)
  III_INTEROP_CACHE     where setup.sh installed the published clients
                        (default ~/.cache/iii-interop)
  III_INTEROP_RUST_WORKER  the Rust interop worker binary
                        (default <repo>/target/debug/examples/interop_worker)
  RUST_LOG              engine log filter (default "info"); the log is shown on failure

The engine fixture starts the engine on a free worker port and a free HTTP trigger port
(`engine.url`, `engine.http_url`).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKERS = HERE / "peers"
CACHE = Path(os.environ.get("III_INTEROP_CACHE") or Path.home() / ".cache" / "iii-interop")
# Absolute: the engine runs in each test's tmp_path.
ENGINE_BIN = Path(os.environ.get("III_ENGINE_BIN") or REPO / "target" / "debug" / "iii").absolute()
RUST_WORKER = Path(os.environ.get("III_INTEROP_RUST_WORKER") or REPO / "target" / "debug" / "examples" / "interop_worker")
NODE = shutil.which("node") or "node"
PY = CACHE / "py" / "bin" / "python"

LOG_TAIL = 6000  # characters of each log shown in a failure report


def tail(path: Path, limit: int = LOG_TAIL) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"<unreadable: {e}>"
    text = data[-limit:].decode("utf-8", "replace")
    return ("...\n" if len(data) > limit else "") + text


# ---------------------------------------------------------------- failure reports

def _logs_of(node) -> list[tuple[str, Path]]:
    if not hasattr(node, "_interop_logs"):
        node._interop_logs = []
    return node._interop_logs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name, path in getattr(item, "_interop_logs", []):
            report.sections.append((f"{name} ({path})", tail(path)))


# ---------------------------------------------------------------- engine

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Engine:
    url: str  # ws://127.0.0.1:<port>, the workers' socket
    port: int
    proc: subprocess.Popen
    log: Path
    workdir: Path
    http_url: str = ""  # http://127.0.0.1:<http_port>, the HTTP trigger server
    http_port: int = 0
    logs: list = field(default_factory=list)

    def log_tail(self) -> str:
        return tail(self.log)


@pytest.fixture(scope="session")
def published_clients():
    """The published clients must have been installed by setup.sh."""
    missing = [p for p in (CACHE / "node" / "node_modules" / "iii-sdk" / "package.json", PY) if not p.exists()]
    if missing:
        pytest.fail(f"published clients not installed ({', '.join(map(str, missing))}); run tests/interop/setup.sh")
    return CACHE


HTTP_READY_LINE = re.compile(rb"^iii http triggers on (https?://[^\s]+:(\d+))\s*$", re.MULTILINE)


def _printed_http_url(log: Path) -> tuple[str, int] | None:
    """The HTTP trigger server's URL, from the line the engine prints on stdout once it
    listens (`iii http triggers on http://127.0.0.1:<port>`)."""
    try:
        m = HTTP_READY_LINE.search(log.read_bytes())
    except OSError:
        return None
    return (m.group(1).decode(), int(m.group(2))) if m else None


@pytest.fixture
def engine(request, tmp_path, published_clients):
    if not ENGINE_BIN.exists():
        pytest.fail(f"engine binary {ENGINE_BIN} not found: build it (cargo build -p iii-engine) or set III_ENGINE_BIN")
    port = free_port()
    log = tmp_path / "engine.log"
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    env.setdefault("NO_COLOR", "1")
    # Never the default :3111 (another engine may hold it): the engine picks a free HTTP
    # port and prints its URL, read back below.
    env.pop("III_HTTP_PORT", None)
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            [str(ENGINE_BIN), "--host", "127.0.0.1", "--port", str(port), "--http-port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
    _logs_of(request.node).append(("engine log", log))
    deadline = time.monotonic() + 20
    http = None
    while not (port_open(port) and (http := _printed_http_url(log))):
        if proc.poll() is not None:
            pytest.fail(f"engine exited with {proc.returncode} before listening:\n{tail(log)}")
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"engine did not listen on {port} (and print its HTTP URL) within 20 s:\n{tail(log)}")
        time.sleep(0.05)
    eng = Engine(
        url=f"ws://127.0.0.1:{port}", port=port, proc=proc, log=log, workdir=tmp_path, http_url=http[0], http_port=http[1]
    )
    try:
        yield eng
    finally:
        crashed = proc.poll()
        _stop(proc)
        if crashed is not None:
            pytest.fail(f"engine exited during the test with {crashed}:\n{tail(log)}")


def _stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- workers

def worker_command(lang: str) -> list[str]:
    if lang == "node":
        return [NODE, str(WORKERS / "worker.mjs")]
    if lang == "python":
        return [str(PY), str(WORKERS / "worker.py")]
    if lang == "rust":
        return [str(RUST_WORKER)]
    raise ValueError(lang)


def worker_env(engine: Engine, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["III_URL"] = engine.url
    env["III_INTEROP_CACHE"] = str(CACHE)
    env["PYTHONUNBUFFERED"] = "1"
    # The workers' RUST_LOG would otherwise inherit the engine's filter.
    env["RUST_LOG"] = os.environ.get("III_INTEROP_WORKER_LOG", "warn")
    env.update(extra or {})
    return env


class ServingWorker:
    """A worker process that registers functions and serves until stopped."""

    def __init__(
        self, lang: str, flows: list[str], engine: Engine, request, ready_timeout: float = 30, env: dict | None = None
    ):
        self.lang = lang
        self.stderr_path = engine.workdir / f"serve-{lang}-{'-'.join(flows)}.stderr"
        _logs_of(request.node).append((f"{lang} serving worker stderr", self.stderr_path))
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            worker_command(lang) + ["serve", *flows],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=worker_env(engine, env),
            cwd=engine.workdir,
            start_new_session=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError(f"{lang} worker not READY within {ready_timeout} s:\n{tail(self.stderr_path)}")
            if line is None:
                self.stop()
                raise AssertionError(
                    f"{lang} worker exited ({self.proc.poll()}) before READY:\n{tail(self.stderr_path)}"
                )
            if line.strip() == "READY":
                break

    def _pump(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def stop(self) -> None:
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _stop(self.proc, grace=3)
        self._stderr.close()


@pytest.fixture
def serve(engine, request):
    """serve(lang, *flows, env=...): start a worker that registers the reader-side functions."""
    started: list[ServingWorker] = []

    def start(lang: str, *flows: str, env: dict | None = None) -> ServingWorker:
        w = ServingWorker(lang, list(flows), engine, request, env=env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


class DriverFailed(AssertionError):
    pass


def run_driver(
    engine: Engine, request, lang: str, flow: str, *args: str, timeout: float = 60, env: dict | None = None
) -> dict:
    """Runs a driver process to completion and returns its RESULT."""
    n = len([1 for name, _ in _logs_of(request.node) if name.startswith("driver")])
    stderr_path = engine.workdir / f"drive-{lang}-{flow}-{n}.stderr"
    _logs_of(request.node).append((f"driver {lang} {flow} stderr", stderr_path))
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            worker_command(lang) + ["drive", flow, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=worker_env(engine, env),
            cwd=engine.workdir,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, grace=2)
            out = proc.stdout.read() if proc.stdout else b""
            raise DriverFailed(
                f"{lang} driver of {flow} did not finish within {timeout} s\n"
                f"stdout: {out.decode('utf-8', 'replace')[-2000:]}\nstderr:\n{tail(stderr_path)}"
            )
    result = None
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        elif line.startswith("ERROR "):
            raise DriverFailed(f"{lang} driver of {flow} failed: {line[len('ERROR '):][:4000]}\nstderr:\n{tail(stderr_path)}")
    if result is None:
        raise DriverFailed(
            f"{lang} driver of {flow} exited {proc.returncode} without a RESULT\nstderr:\n{tail(stderr_path)}"
        )
    return result


@pytest.fixture
def drive(engine, request):
    """drive(lang, flow, *args, timeout=..., env=...): run a driver and return its RESULT."""

    def run(lang: str, flow: str, *args: str, timeout: float = 60, env: dict | None = None) -> dict:
        return run_driver(engine, request, lang, flow, *args, timeout=timeout, env=env)

    return run


def rust_sdk_example_wired() -> bool:
    cargo = REPO / "core" / "sdk" / "Cargo.toml"
    try:
        return 'name = "interop_worker"' in cargo.read_text()
    except OSError:
        return False


@pytest.fixture(scope="session")
def rust_worker():
    """The Rust interop worker (tests/interop/peers/rust_worker.rs, built as the `interop_worker`
    example of core/sdk)."""
    if "III_INTEROP_RUST_WORKER" not in os.environ:
        if not rust_sdk_example_wired():
            pytest.skip("core/sdk/Cargo.toml has no [[example]] interop_worker (tests/interop/peers/rust_worker.rs) yet")
        # A no-op when it is up to date (run.sh and CI build it beforehand).
        build = subprocess.run(
            ["cargo", "build", "-p", "iii-sdk", "--example", "interop_worker"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if build.returncode != 0:
            pytest.fail(f"building the Rust interop worker failed:\n{build.stderr[-6000:]}")
    if not RUST_WORKER.exists():
        pytest.fail(f"Rust interop worker {RUST_WORKER} not found")
    return RUST_WORKER


def pytest_report_header(config):
    return [
        f"iii engine: {ENGINE_BIN}{'' if ENGINE_BIN.exists() else ' (missing)'}",
        f"published clients cache: {CACHE}",
        f"python: {sys.executable}",
    ]
