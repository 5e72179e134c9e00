"""iii workers in Python, on the native iii core.

::

    from iii import register_worker

    iii = register_worker("ws://localhost:49134")
    iii.register_function("math::double", lambda data: data["n"] * 2)
    channel = iii.create_channel()

Functions, triggers and channels behave as in the Rust, Node and C SDKs: the networking,
framing and backpressure all run in the shared Rust core.
"""

from __future__ import annotations

import atexit
import os
import weakref
from typing import Any, Mapping, Optional

from . import _native, errors
from ._native import III, Channel, ChannelReader, ChannelWriter, FunctionRef, Trigger, __version__
from .errors import (
    ChannelAborted,
    ChannelClosed,
    ChannelError,
    ChannelExpired,
    ChannelNotFound,
    ConnectionError,
    HandlerError,
    InvalidArgument,
    IIIError,
    InvocationError,
    NativeError,
    RemoteTraceback,
    NotConnected,
    ProtocolError,
    ReaderClosed,
    SerializationError,
    ShutdownError,
    TimeoutError,
    WriterLost,
)
from .types import (
    HttpRequest,
    HttpResponse,
    InitOptions,
    StreamChannelRef,
    TelemetryOptions,
    TriggerAction,
)

__all__ = [
    "III",
    "Channel",
    "ChannelReader",
    "ChannelWriter",
    "StreamChannelRef",
    "TriggerAction",
    "FunctionRef",
    "Trigger",
    "InitOptions",
    "TelemetryOptions",
    "HttpRequest",
    "HttpResponse",
    "register_worker",
    "__version__",
    *errors.__all__,
]

#: The engine a worker connects to when no address is given and ``III_URL`` is unset.
DEFAULT_ENGINE_URL = "ws://localhost:49134"

_workers: "weakref.WeakSet[III]" = weakref.WeakSet()


def register_worker(address: Optional[str] = None, options: Optional[Mapping[str, Any]] = None) -> III:
    """Connects a worker to the engine at ``address`` (default: ``III_URL``, then
    ``ws://localhost:49134``). The connection is made in the background and kept up
    (reconnecting with backoff); calls wait for it.

    ``options`` may set ``worker_name``, ``invocation_timeout_ms`` (the default timeout
    of ``trigger``) and ``connect_timeout_ms`` (how long a call waits for the connection
    before it fails with :class:`ConnectionError` naming the URL and the cause; 5000 by
    default). Other keys are accepted and ignored, so options written for the published
    client work unchanged. An ``address`` that is not ``ws://`` or ``wss://`` raises
    :class:`InvalidArgument` (a ``ValueError``).
    """
    url = address or os.environ.get("III_URL") or DEFAULT_ENGINE_URL
    options = dict(_options_dict(options))
    worker = III(
        url,
        worker_name=options.get("worker_name"),
        invocation_timeout_ms=options.get("invocation_timeout_ms"),
        connect_timeout_ms=options.get("connect_timeout_ms"),
        worker_description=options.get("worker_description"),
    )
    _workers.add(worker)
    return worker


def _options_dict(options: Any) -> Mapping[str, Any]:
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return options
    if hasattr(options, "model_dump"):
        return options.model_dump()
    return vars(options)


@atexit.register
def _shutdown_all() -> None:
    for worker in list(_workers):
        worker.shutdown()
    # iii's threads may be settling a result in Python right now: let them finish, and keep
    # them out from here on, before the interpreter starts tearing itself down.
    _native.quiesce(2.0)
