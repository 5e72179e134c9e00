"""Names and behaviours of the published client (PyPI ``iii-sdk`` 0.25) that programs rely on:
registration handles, a duplicate id refused, ``iii.helpers``, ``InitOptions``; and the
engine's discovery built-ins seen through them."""

from __future__ import annotations

import time

import pytest

import iii
from iii import InitOptions, register_worker
from iii.helpers import ChannelDirection, create_channel, extract_channel_refs, is_channel_ref


@pytest.mark.timeout(20)
def test_register_function_returns_a_handle_and_refuses_a_duplicate(worker):
    ref = worker.register_function(
        "compat::double",
        lambda data: data["n"] * 2,
        description="Doubles n",
        metadata={"team": "math"},
        request_format={"type": "object"},
        observe=None,  # a keyword of the published client this package does not use
    )
    assert isinstance(ref, iii.FunctionRef) and ref.id == "compat::double"
    assert worker.trigger({"function_id": "compat::double", "payload": {"n": 21}}) == 42
    with pytest.raises(iii.InvocationError) as failed:
        worker.trigger({"function_id": "compat::double", "payload": {}})
    assert failed.value.function_id == "compat::double" and failed.value.code == "invocation_failed"
    with pytest.raises(ValueError, match="already registered"):
        worker.register_function("compat::double", lambda data: data)
    with pytest.raises(ValueError):
        worker.register_function("  ", lambda data: data)
    with pytest.raises(TypeError):
        worker.register_function(7, lambda data: data)
    with pytest.raises(TypeError):
        worker.register_function("compat::not_callable", 5)
    info = worker.trigger({"function_id": "engine::functions::info", "payload": {"function_id": "compat::double"}})
    assert info["description"] == "Doubles n" and info["metadata"] == {"team": "math"}
    assert info["request_schema"] == {"type": "object"}
    ref.unregister()
    deadline = time.monotonic() + 10
    while True:
        listed = worker.trigger({"function_id": "engine::functions::list", "payload": {"prefix": "compat::"}})
        if listed["functions"] == []:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.05)
    # Once withdrawn, the id may be registered again.
    worker.register_function("compat::double", lambda data: data["n"] * 3)


@pytest.mark.timeout(20)
def test_register_trigger_returns_a_handle(worker):
    worker.register_function("compat::route", lambda data: {"status_code": 200, "body": "ok"})
    trigger = worker.register_trigger(
        {"type": "http", "function_id": "compat::route", "config": {"api_path": "/compat"}, "metadata": {"k": 1}}
    )
    assert isinstance(trigger, iii.Trigger) and trigger.id
    worker.ready()
    listed = worker.trigger({"function_id": "engine::registered-triggers::list", "payload": {"function_id": "compat::route"}})
    assert [t["id"] for t in listed["registered_triggers"]] == [trigger.id]
    info = worker.trigger({"function_id": "engine::registered-triggers::info", "payload": {"id": trigger.id}})
    assert info["metadata"] == {"k": 1}
    trigger.unregister()


def test_helpers_find_refs_as_the_published_client_does(worker):
    channel = create_channel(worker)
    writer_ref = channel.writer_ref.model_dump()
    assert is_channel_ref(writer_ref)
    assert not is_channel_ref({"channel_id": "x", "access_key": "k", "direction": "sideways"})
    assert not is_channel_ref(channel.writer_ref)  # a model, not a dict
    found = extract_channel_refs({"items": [{"writer": writer_ref}], "reader": channel.reader_ref.model_dump()})
    assert [path for path, _ in found] == ["items[0].writer", "reader"]
    assert found[0][1] == channel.writer_ref
    assert ChannelDirection.READ == "read"
    channel.writer.close()


def test_init_options_dataclass_is_accepted(engine):
    options = InitOptions(worker_name="compat-worker", worker_description="compat test", invocation_timeout_ms=5000,
                          headers={"x": "y"}, namespace="ignored")
    client = register_worker(engine.url, options)
    try:
        client.ready()
        workers = client.trigger({"function_id": "engine::workers::list", "payload": {"search": "compat-worker"}})
        assert [w["description"] for w in workers["workers"]] == ["compat test"]
    finally:
        client.shutdown()


@pytest.mark.timeout(30)
def test_a_provided_trigger_type_gets_the_triggers_of_its_type(engine, worker):
    seen = []

    class Ticker:
        def register_trigger(self, config):
            seen.append(("register", config.id, config.function_id, config.config, config.metadata))

        async def unregister_trigger(self, config):
            seen.append(("unregister", config.id))

    ticker = worker.register_trigger_type({"id": "py-ticker", "description": "ticks"}, Ticker())
    assert ticker.id == "py-ticker"
    worker.ready()
    user = register_worker(engine.url)
    try:
        user.register_function("compat::tick", lambda data: None)
        trigger = user.register_trigger(
            {"type": "py-ticker", "function_id": "compat::tick", "config": {"every": 5}, "metadata": {"k": 1}}
        )
        deadline = time.monotonic() + 10
        while len(seen) < 1:
            assert time.monotonic() < deadline, "the provider never got the trigger"
            time.sleep(0.02)
        assert seen[0] == ("register", trigger.id, "compat::tick", {"every": 5}, {"k": 1})
        trigger.unregister()
        while len(seen) < 2:
            assert time.monotonic() < deadline, "the provider never got the withdrawal"
            time.sleep(0.02)
        assert seen[1] == ("unregister", trigger.id)
        info = user.trigger({"function_id": "engine::triggers::info", "payload": {"id": "py-ticker"}})
        assert info["description"] == "ticks"
    finally:
        user.shutdown()
        worker.unregister_trigger_type({"id": "py-ticker"})


@pytest.mark.timeout(20)
def test_a_call_that_times_out_is_an_invocation_error_with_code_timeout(worker):
    worker.register_function("compat::slow", lambda data: time.sleep(2))
    with pytest.raises(iii.InvocationError) as failed:
        worker.trigger({"function_id": "compat::slow", "payload": {}, "timeout_ms": 200})
    assert failed.value.code == "TIMEOUT"
    assert failed.value.function_id == "compat::slow"
    assert isinstance(failed.value, iii.TimeoutError) and isinstance(failed.value, TimeoutError)


@pytest.mark.timeout(20)
def test_handlers_get_metadata_and_the_current_invocation(worker):
    def handler(data, metadata=None):
        context = iii.current_invocation()
        return {"metadata": metadata, "function_id": context.function_id, "id": bool(context.invocation_id)}

    async def no_metadata(data):
        return iii.current_invocation().function_id

    worker.register_function("compat::context", handler)
    worker.register_function("compat::plain", no_metadata)
    assert worker.trigger({"function_id": "compat::context", "payload": 1, "metadata": {"t": 1}}) == {
        "metadata": {"t": 1},
        "function_id": "compat::context",
        "id": True,
    }
    assert worker.trigger({"function_id": "compat::plain", "payload": 1, "metadata": {"t": 1}}) == "compat::plain"
    assert iii.current_invocation() is None


@pytest.mark.timeout(20)
def test_http_handlers_see_the_current_invocation(engine, worker):
    import urllib.request

    from iii.utils import http

    @http
    async def where(req, res):
        return {"status_code": 200, "body": iii.current_invocation().function_id}

    worker.register_function("compat::where", where)
    worker.register_trigger({"type": "http", "function_id": "compat::where", "config": {"api_path": "/where"}})
    worker.ready()
    with urllib.request.urlopen(f"{engine.http_url}/where", timeout=10) as response:
        assert response.read() == b"compat::where"


@pytest.mark.timeout(20)
def test_connection_states_reach_listeners_on_their_loop(engine):
    import asyncio
    import threading

    async def main():
        client = register_worker(engine.url)
        loop_thread = threading.get_ident()
        seen = []
        changed = asyncio.get_running_loop().create_future()

        def listener(state):
            seen.append((state, threading.get_ident() == loop_thread))
            if state == "disconnected" and not changed.done():
                changed.set_result(None)  # completes a future of this loop: must run on it

        unsubscribe = client.add_connection_state_listener(listener)
        await client.ready_async()
        assert client.get_connection_state() == "connected"
        client.shutdown()
        await asyncio.wait_for(changed, 5)
        unsubscribe()
        unsubscribe()  # idempotent
        return seen

    seen = asyncio.run(main())
    assert seen[-1] == ("disconnected", True), seen
    assert all(on_loop for _, on_loop in seen), seen


@pytest.mark.timeout(20)
def test_message_callbacks_run_on_the_loop_that_registered_them(worker):
    import asyncio
    import threading

    async def main():
        channel = await worker.create_channel_async()
        loop_thread = threading.get_ident()
        heard = asyncio.get_running_loop().create_future()
        heard_texts = []

        def on_message(text):
            heard_texts.append((text, threading.get_ident() == loop_thread))
            if text == "last":
                heard.set_result(None)

        channel.reader.on_message(on_message)
        for text in ("first", "second", "last"):
            await channel.writer.send_message_async(text)
        await asyncio.wait_for(heard, 5)
        return heard_texts

    heard_texts = asyncio.run(main())
    assert heard_texts == [("first", True), ("second", True), ("last", True)], heard_texts


@pytest.mark.timeout(20)
def test_a_function_called_over_http_is_registered_with_its_config(worker):
    ref = worker.register_function("compat::remote", {"url": "https://functions.example/run", "timeout_ms": 100})
    assert ref.id == "compat::remote"
    listed = worker.trigger({"function_id": "engine::functions::list", "payload": {}})
    assert "compat::remote" in [f["function_id"] for f in listed["functions"]]
    with pytest.raises(ValueError, match="http"):
        worker.register_function("compat::bad", {"url": "ftp://functions.example/run"})
