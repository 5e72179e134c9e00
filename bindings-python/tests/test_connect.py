"""A missing engine fails fast and says so: a refused or unreachable engine fails the first
call within the connect timeout, with the URL and the cause in the message; a URL that can
never work is refused by ``register_worker`` itself; and the worker keeps reconnecting, so a
call made once the engine is up succeeds."""

import asyncio
import socket
import subprocess
import time

import pytest

import iii

from helpers import harness

ENGINE_BIN = harness.ENGINE_BIN

CONNECT_TIMEOUT_MS = 800


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("address", ["localhost:49134", "http://127.0.0.1:49134", "ws://"])
def test_a_malformed_url_is_refused_at_register_worker(address):
    with pytest.raises(iii.InvalidArgument) as raised:
        iii.register_worker(address)
    assert isinstance(raised.value, ValueError)
    assert address in str(raised.value)


def test_a_refused_engine_fails_a_call_within_the_connect_timeout():
    url = f"ws://127.0.0.1:{free_port()}"
    worker = iii.register_worker(url, {"connect_timeout_ms": CONNECT_TIMEOUT_MS})
    try:
        for call in (lambda: worker.trigger({"function_id": "x::y", "payload": {}}), worker.create_channel):
            started = time.monotonic()
            with pytest.raises(iii.ConnectionError) as raised:
                call()
            waited = time.monotonic() - started
            assert waited < CONNECT_TIMEOUT_MS / 1000 + 2, waited
            assert url in str(raised.value)
            assert "refused" in str(raised.value).lower()
    finally:
        worker.shutdown()


def test_an_unreachable_engine_fails_the_async_api_within_the_connect_timeout():
    # A documentation address (TEST-NET-1, RFC 5737): nothing answers, so the attempt hangs.
    url = "ws://192.0.2.1:49134"
    worker = iii.register_worker(url, {"connect_timeout_ms": CONNECT_TIMEOUT_MS})

    async def call():
        return await worker.trigger_async({"function_id": "x::y", "payload": {}})

    try:
        started = time.monotonic()
        with pytest.raises(iii.ConnectionError) as raised:
            asyncio.run(call())
        assert time.monotonic() - started < CONNECT_TIMEOUT_MS / 1000 + 2
        assert url in str(raised.value)
    finally:
        worker.shutdown()


def test_the_worker_keeps_reconnecting_and_serves_once_the_engine_is_up():
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    worker = iii.register_worker(url, {"connect_timeout_ms": 500})
    engine = None
    try:
        worker.register_function("connect::echo", lambda data: data)
        with pytest.raises(iii.ConnectionError):
            worker.trigger({"function_id": "connect::echo", "payload": {"n": 1}})
        engine = subprocess.Popen(
            [str(ENGINE_BIN), "--port", str(port), "--no-http"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                echoed = worker.trigger({"function_id": "connect::echo", "payload": {"n": 1}})
                break
            except iii.ConnectionError:
                assert time.monotonic() < deadline, "the worker never reconnected"
        assert echoed["n"] == 1
    finally:
        worker.shutdown()
        if engine is not None:
            engine.terminate()
            engine.wait(10)
