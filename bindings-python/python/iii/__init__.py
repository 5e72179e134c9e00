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
import dataclasses
import os
import sys
import threading
import weakref
from typing import Any, Callable, Mapping, Optional

from . import _native, errors
from ._client import III
from ._invocation import InvocationContext, current_invocation
from ._native import Channel, ChannelReader, ChannelWriter, FunctionRef, Trigger, __version__
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
    IIIForbiddenError,
    InvocationError,
    NativeError,
    ObserveRejection,
    RegistrationRejectedError,
    RemoteTraceback,
    NotConnected,
    ProtocolError,
    ReaderClosed,
    SerializationError,
    ShutdownError,
    GoingAway,
    TimeoutError,
    WriterLost,
)
from .observe import (
    Caller,
    Capture,
    Filter,
    ObserveHooks,
    ObserveSource,
    Observed,
    Observer,
    ObserverHandle,
    ObserverOptions,
    ObserverState,
    Target,
)
from .runtime import IIIConnectionState
from .stream import IStream
from .types import (
    EnqueueResult,
    HttpRequest,
    HttpResponse,
    IIIClient,
    InitOptions,
    MiddlewareFunctionInput,
    StreamChannelRef,
    StreamRequest,
    StreamResponse,
    TelemetryOptions,
    TriggerAction,
    TriggerActionEnqueue,
    TriggerActionVoid,
)

#: A connection-state listener (:meth:`III.add_connection_state_listener`).
ConnectionStateCallback = Callable[[IIIConnectionState], None]

__all__ = [
    "III",
    "Channel",
    "ChannelReader",
    "ChannelWriter",
    "StreamChannelRef",
    "TriggerAction",
    "TriggerActionEnqueue",
    "TriggerActionVoid",
    "FunctionRef",
    "Trigger",
    "InitOptions",
    "TelemetryOptions",
    "HttpRequest",
    "HttpResponse",
    "StreamRequest",
    "StreamResponse",
    "IIIClient",
    "IStream",
    "MiddlewareFunctionInput",
    "EnqueueResult",
    "IIIConnectionState",
    "ConnectionStateCallback",
    "DEFAULT_ENGINE_URL",
    "InvocationContext",
    "current_invocation",
    "Caller",
    "Capture",
    "Filter",
    "ObserveHooks",
    "ObserveSource",
    "Observed",
    "Observer",
    "ObserverHandle",
    "ObserverOptions",
    "ObserverState",
    "Target",
    "register_worker",
    "__version__",
    *errors.__all__,
]

#: The engine a worker connects to when no address is given and ``III_URL`` is unset.
DEFAULT_ENGINE_URL = "ws://127.0.0.1:49134"

_workers: "weakref.WeakSet[III]" = weakref.WeakSet()


def register_worker(address: Optional[str] = None, options: Optional[Any] = None) -> III:
    """Connects a worker to the engine at ``address`` (default: ``III_URL``, then
    ``ws://127.0.0.1:49134``). The connection is made in the background and kept up
    (reconnecting with backoff); calls wait for it. As with the published client, a running
    worker keeps the process alive until :meth:`III.shutdown` (or a signal) stops it.

    ``options`` (an :class:`InitOptions` or a dict) may set ``worker_name``,
    ``worker_description``, ``invocation_timeout_ms`` (the default timeout of ``trigger``),
    ``headers`` (sent with the WebSocket handshake; ``III_TOKEN`` adds ``Authorization:
    Bearer …`` when no ``Authorization`` is given), ``ca_file`` (a PEM file of CA certificates
    trusted for ``wss://`` besides the system roots and ``III_CA_FILE``),
    ``reconnection_config`` (the backoff) and
    ``connect_timeout_ms`` (how long a call waits for the connection before it fails with
    :class:`ConnectionError` naming the URL and the cause; 5000 by default). The published
    client's other options are accepted and not used (see the README). An ``address`` that is
    not ``ws://`` or ``wss://`` raises :class:`InvalidArgument` (a ``ValueError``).
    """
    url = address or os.environ.get("III_URL") or DEFAULT_ENGINE_URL
    options = dict(_options_dict(options))
    worker_name = options.get("worker_name") or os.environ.get("III_WORKER_NAME") or None
    worker = III(
        url,
        worker_name=worker_name,
        invocation_timeout_ms=options.get("invocation_timeout_ms"),
        connect_timeout_ms=options.get("connect_timeout_ms"),
        worker_description=options.get("worker_description"),
        settings={
            "headers": dict(options.get("headers") or {}),
            "reconnection_config": dict(_options_dict(options.get("reconnection_config"))) or None,
            "ca_file": os.fspath(options["ca_file"]) if options.get("ca_file") else None,
        },
    )
    _workers.add(worker)
    return worker


def _serve_until_stopped() -> None:
    """Run by the interpreter when the main script ends (before it joins threads): as with
    the published client, running workers keep the process serving until ``shutdown()`` (from
    a handler, another thread or a signal handler) stops them. Ctrl-C stops the wait (the
    workers are then shut down at exit); a script that ended with an exception does not wait."""
    if getattr(sys, "last_value", None) is not None:
        return
    try:
        for worker in list(_workers):
            worker.wait_stopped()
    except KeyboardInterrupt:
        pass  # Ctrl-C: stop serving; the workers are shut down at exit


threading._register_atexit(_serve_until_stopped)  # type: ignore[attr-defined]


def _options_dict(options: Any) -> Mapping[str, Any]:
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return options
    if hasattr(options, "model_dump"):
        return options.model_dump()
    if dataclasses.is_dataclass(options):
        return {field.name: getattr(options, field.name) for field in dataclasses.fields(options)}
    return vars(options)


@atexit.register
def _shutdown_all() -> None:
    for worker in list(_workers):
        worker.shutdown()
    # iii's threads may be settling a result in Python right now: let them finish, and keep
    # them out from here on, before the interpreter starts tearing itself down.
    _native.quiesce(2.0)
