"""Helpers of the Python package's tests: the interop harness (tests/interop/conftest.py,
loaded once under its own name) with ``"ours"`` added to its worker languages, and running
Python programs against a test's engine in child processes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples" / "python"
PROGRAMS = HERE / "programs"
PEERS = REPO / "tests" / "interop" / "peers"


def load_module(name: str, path: Path):
    """Imports the file at `path` as module `name` (once)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = load_module("iii_interop_harness", REPO / "tests" / "interop" / "conftest.py")
tail = harness.tail
_published_command = harness.worker_command


def _worker_command(lang: str) -> list[str]:
    if lang == "ours":
        return [sys.executable, str(PEERS / "peer.py")]
    return _published_command(lang)


harness.worker_command = _worker_command


def python_env(engine, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(III_URL=engine.url, III_HTTP_URL=engine.http_url, PYTHONUNBUFFERED="1")
    env["RUST_LOG"] = os.environ.get("III_TEST_WORKER_LOG", "warn")
    env.update(extra or {})
    return env


def start_python(engine, request, program: Path, *args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """Starts ``python program args...`` against the engine; its stderr is shown if the test
    fails. stdout is a pipe unless ``popen`` says otherwise."""
    stderr_path = engine.workdir / f"{program.stem}-{len(harness._logs_of(request.node))}.stderr"
    harness._logs_of(request.node).append((f"{program.name} stderr", stderr_path))
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(program), *args],
            stdin=popen.pop("stdin", subprocess.DEVNULL),
            stdout=popen.pop("stdout", subprocess.PIPE),
            stderr=stderr,
            env=python_env(engine, env),
            cwd=engine.workdir,
            bufsize=0,
            **popen,
        )
    proc.stderr_path = stderr_path
    return proc


def run_python(engine, request, program: Path, *args: str, env: dict | None = None, timeout: float = 30) -> dict:
    """Runs a program to its end; it must exit 0 and print a JSON line last."""
    proc = start_python(engine, request, program, *args, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"{program.name} did not finish within {timeout} s:\n{tail(proc.stderr_path)}")
    lines = out.decode("utf-8", "replace").strip().splitlines()
    assert proc.returncode == 0 and lines, (
        f"{program.name} exited {proc.returncode}; stdout {lines[-5:]}\n{tail(proc.stderr_path)}"
    )
    return json.loads(lines[-1])


def wait_line(proc: subprocess.Popen, expected: str, timeout: float = 20) -> None:
    """Reads ``proc``'s stdout (unbuffered, see `start_python`) until the line ``expected``,
    within ``timeout`` seconds."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.decode("utf-8", "replace").rstrip("\n"))
        if seen[-1] == expected:
            return
    raise AssertionError(
        f"no {expected!r} line within {timeout} s (exit {proc.poll()}); stdout {seen}\n{tail(proc.stderr_path)}"
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


class StoppableEngine:
    """An engine of a test's own, which the test stops itself (the shared fixture treats an
    engine that exits as a crash): `url` for workers, `http_url` for HTTP triggers."""

    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None):
        self.port = harness.free_port()
        self.log = tmp_path / "stoppable-engine.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(harness.ENGINE_BIN), "--host", "127.0.0.1", "--port", str(self.port), "--http-port", "0", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        deadline = time.monotonic() + 20
        while not (harness.port_open(self.port) and (http := harness._printed_http_url(self.log))):
            assert self.proc.poll() is None, f"the engine exited:\n{tail(self.log)}"
            assert time.monotonic() < deadline, f"the engine did not listen:\n{tail(self.log)}"
            time.sleep(0.05)
        printed = self.log.read_text("utf-8", "replace")
        self.url = re.search(r"^iii engine listening on (\S+)", printed, re.MULTILINE).group(1)
        #: The URLs of the extra listeners a config file opens, in its order.
        self.extra_urls = re.findall(r"^iii engine also listening on (\S+)", printed, re.MULTILINE)
        self.http_url = http[0]

    def stop_while_draining(self) -> None:
        """SIGTERM (what is in flight holds the drain), then SIGINT (stops at once)."""
        self.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert self.proc.poll() is None, "what is in flight holds the drain"
        self.proc.send_signal(signal.SIGINT)

    def __enter__(self) -> "StoppableEngine":
        return self

    def __exit__(self, *_exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
