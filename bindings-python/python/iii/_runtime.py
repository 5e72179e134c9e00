"""iii's own asyncio event loop, on a daemon thread, where ``async def`` handlers (and
coroutines returned by message callbacks) run. One loop serves every worker of the process."""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback
from typing import Any, Callable, Optional

_lock = threading.Lock()
_loop: Optional[asyncio.AbstractEventLoop] = None


def loop() -> asyncio.AbstractEventLoop:
    """The loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            new_loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(new_loop)
                new_loop.call_soon(started.set)
                new_loop.run_forever()

            threading.Thread(target=run, name="iii-asyncio", daemon=True).start()
            started.wait()
            _loop = new_loop
        return _loop


async def _await(awaitable: Any) -> Any:
    return await awaitable


def submit(awaitable: Any, done: Callable[[Any], None], target: Optional[asyncio.AbstractEventLoop] = None) -> None:
    """Runs ``awaitable`` on ``target`` (or iii's loop) and calls ``done(future)`` when it ends."""
    event_loop = target if target is not None and not target.is_closed() else loop()
    future = asyncio.run_coroutine_threadsafe(_await(awaitable), event_loop)
    future.add_done_callback(done)


_running: "set[asyncio.Future[Any]]" = set()


def _finished(task: "asyncio.Future[Any]") -> None:
    _running.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None:
        traceback.print_exception(type(error), error, error.__traceback__)


def deliver(
    target: asyncio.AbstractEventLoop, callback: Callable[[str], Any], text: str, done: Callable[[], None]
) -> bool:
    """Schedules ``callback(text)`` on ``target`` (a coroutine it returns runs there too);
    ``done()`` once it ran. False when the loop is closed (the caller then calls it itself)."""

    def run() -> None:
        done()
        try:
            result = callback(text)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                _running.add(task)  # held until it ends (the loop keeps only weak references)
                task.add_done_callback(_finished)
        except Exception:  # reported, never raised into iii
            traceback.print_exc()

    if target.is_closed():
        return False
    try:
        target.call_soon_threadsafe(run)
    except RuntimeError:  # closed meanwhile
        return False
    return True


def settle(future: "asyncio.Future[Any]", error: Optional[BaseException], value: Any) -> None:
    """Completes ``future`` (on its loop) unless it was cancelled meanwhile."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
