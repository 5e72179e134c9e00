"""Liveness with real processes: a worker process frozen with SIGSTOP answers nothing, not even
the engine's pings, so the engine drops it and the call it owed fails `invocation_stopped`
within the ping interval and timeout (1 s each here), instead of waiting for the invocation
timeout (300 s)."""

from __future__ import annotations

import signal
import time

import pytest

import iii
from helpers import PROGRAMS, start_python, stop, wait_line


@pytest.fixture
def quick_pings(monkeypatch):
    """The engine (started after this fixture) pings a quiet worker after 1 s and drops it 1 s
    after an unanswered ping."""
    monkeypatch.setenv("III_PING_INTERVAL_SECS", "1")
    monkeypatch.setenv("III_PING_TIMEOUT_SECS", "1")


@pytest.mark.timeout(60)
def test_a_frozen_worker_process_is_dropped_and_its_call_stopped(quick_pings, engine, request, worker):
    child = start_python(engine, request, PROGRAMS / "frozen.py")
    try:
        wait_line(child, "READY")
        assert worker.trigger({"function_id": "frozen::work", "payload": {}}) == {"ok": True}
        child.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(iii.InvocationError) as info:
            worker.trigger({"function_id": "frozen::work", "payload": {}, "timeout_ms": 60_000})
        waited = time.monotonic() - started
        assert info.value.code == "invocation_stopped", info.value
        # One interval and one or two timeouts (a ping still queued may get one more).
        assert waited < 10, waited
        with pytest.raises(iii.InvocationError) as gone:
            worker.trigger({"function_id": "frozen::work", "payload": {}})
        assert gone.value.code == "function_not_found"
        log = engine.log.read_text(errors="replace")
        assert "unresponsive" in log, log[-2000:]
    finally:
        child.send_signal(signal.SIGCONT)
        stop(child)
