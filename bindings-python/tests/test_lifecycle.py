"""A worker process ends cleanly: on shutdown(), on Ctrl-C once its script has ended (a
running worker keeps serving until then, as with the published client), and on Ctrl-C while
blocked in a sync call."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from helpers import PROGRAMS, start_python, stop, tail, wait_line

FATAL = ("Fatal Python error", "panicked at", "Segmentation fault", "Traceback")


def finish(proc, within: float) -> tuple[list[str], str]:
    """Waits for the process to exit by itself; returns its stdout lines and stderr."""
    try:
        out, _ = proc.communicate(timeout=within)
    except Exception:
        stop(proc)
        raise AssertionError(f"the process did not exit within {within} s:\n{tail(proc.stderr_path)}")
    return out.decode().splitlines(), proc.stderr_path.read_text()


@pytest.mark.timeout(30)
def test_shutdown_ends_pending_calls_and_exits(engine, request, worker):
    async def slow(_data):
        await asyncio.sleep(10)
        return "too late"

    worker.register_function("t::slow", slow)
    proc = start_python(engine, request, PROGRAMS / "lifecycle.py", "shutdown")
    lines, stderr = finish(proc, within=10)
    assert proc.returncode == 0, stderr
    assert not any(marker in stderr for marker in FATAL), stderr
    result = json.loads(lines[-1])
    assert result == {"messages": ["hello"], "pending": {"error": "ShutdownError"}, "joined": True}


@pytest.mark.timeout(30)
def test_serves_after_the_script_ends_until_ctrl_c(engine, request, worker):
    # As with the published client, a worker keeps the process serving when its script ends
    # without shutdown(); Ctrl-C ends it cleanly.
    proc = start_python(engine, request, PROGRAMS / "lifecycle.py", "exit")
    try:
        wait_line(proc, json.dumps({"messages": ["hello"]}))
        time.sleep(1.0)
        assert proc.poll() is None, f"the process ended with its script:\n{tail(proc.stderr_path)}"
        assert worker.trigger({"function_id": "p::echo", "payload": {"n": 41}}) == 42
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = finish(proc, within=5)
    finally:
        stop(proc)
    assert time.monotonic() - interrupted < 3
    assert proc.returncode == 0, stderr
    assert not any(marker in stderr for marker in FATAL), stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["read_all", "write", "trigger"])
def test_ctrl_c_stops_a_blocked_sync_call(engine, request, worker, mode):
    async def hang(_data):
        await asyncio.sleep(20)

    worker.register_function("t::hang", hang)
    proc = start_python(engine, request, PROGRAMS / "blocked.py", mode)
    try:
        wait_line(proc, "BLOCKED")
        time.sleep(0.5)  # well inside the blocking call by now
        assert proc.poll() is None, f"the call returned instead of blocking:\n{tail(proc.stderr_path)}"
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        lines, stderr = finish(proc, within=5)
    finally:
        stop(proc)
    elapsed = time.monotonic() - interrupted
    assert lines[-1:] == ["KeyboardInterrupt"], (lines, stderr)
    assert "KeyboardInterrupt" in stderr and "Fatal Python error" not in stderr, stderr
    assert proc.returncode in (-signal.SIGINT, 128 + signal.SIGINT), proc.returncode
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop after SIGINT"


@pytest.mark.timeout(30)
def test_forked_child_fails_clearly(engine, request):
    proc = start_python(engine, request, PROGRAMS / "forked.py")
    lines, stderr = finish(proc, within=10)
    assert proc.returncode == 0, stderr
    result = json.loads(lines[-1])
    assert result["status"] == 0
    assert result["child"].startswith("RuntimeError") and "fork" in result["child"], result


@pytest.mark.timeout(60)
def test_exits_cleanly_after_asyncio_run(engine, request):
    """The awaitable forms settle their futures from iii's threads; none of that may still be
    touching Python while the interpreter finalizes. Run a few times: a race shows up in
    some runs only."""
    runs = 12
    procs = []
    for _ in range(0, runs, 4):
        started = [start_python(engine, request, PROGRAMS / "asyncio_exit.py") for _ in range(4)]
        procs += [(proc, *finish(proc, within=15)) for proc in started]
    failed = [(proc.returncode, stderr[-1500:]) for proc, _, stderr in procs if proc.returncode != 0]
    assert not failed, f"{len(failed)} of {runs} runs did not exit 0: {failed[0]}"
    for _, lines, _ in procs:
        assert json.loads(lines[-1]) == {"data": "bytes", "answer": 42}
