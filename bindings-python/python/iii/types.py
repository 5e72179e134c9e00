"""Plain value types of the iii API: channel refs, trigger actions, and the request and
response of an HTTP-triggered function."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Union

from ._model import Model
from . import _native
from ._native import ChannelReader, ChannelWriter

__all__ = [
    "StreamChannelRef", "TriggerAction", "TriggerActionVoid", "TriggerActionEnqueue", "HttpRequest",
    "HttpResponse", "StreamRequest", "StreamResponse", "InternalHttpRequest", "IIIClient",
    "MiddlewareFunctionInput", "EnqueueResult",
]


class StreamChannelRef:
    """A serializable reference to one end of a channel. Put it (or ``model_dump()``) in a
    trigger payload; the receiving function gets the live end."""

    __slots__ = ("channel_id", "access_key", "direction")

    def __init__(self, channel_id: str, access_key: str, direction: str) -> None:
        self.channel_id = channel_id
        self.access_key = access_key
        self.direction = direction

    def model_dump(self) -> Dict[str, str]:
        """The ref as a plain dict, as it travels on the wire."""
        return {"channel_id": self.channel_id, "access_key": self.access_key, "direction": self.direction}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StreamChannelRef) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash((self.channel_id, self.access_key, self.direction))

    def __repr__(self) -> str:
        return f"StreamChannelRef(channel_id={self.channel_id!r}, direction={self.direction!r})"


class TriggerActionVoid(Model):
    """Fire and forget: ``trigger`` returns ``None`` at once."""

    _fields = (("type", "void"),)


class TriggerActionEnqueue(Model):
    """Through a named queue (needs a queue provider on the engine)."""

    _fields = (("type", "enqueue"), ("queue", ...))


class TriggerAction:
    """How :meth:`III.trigger` routes a call."""

    @staticmethod
    def Void() -> TriggerActionVoid:  # noqa: N802 (the published API's name)
        """Fire and forget: no result, ``trigger`` returns ``None`` at once."""
        return TriggerActionVoid()

    @staticmethod
    def Enqueue(*, queue: str) -> TriggerActionEnqueue:  # noqa: N802
        """Through a named queue (needs a queue provider on the engine)."""
        return TriggerActionEnqueue(queue=queue)


class MiddlewareFunctionInput(Model):
    """What a middleware function receives (the published engine's RBAC hooks)."""

    _fields = (("function_id", ...), ("payload", dict), ("action", None), ("context", dict), ("namespace", None))


class EnqueueResult(Model):
    """The answer of an enqueued call."""

    _fields = (("messageReceiptId", ...),)


Values = Dict[str, Union[str, List[str]]]


class HttpRequest:
    """The request of an HTTP-triggered function (see :func:`iii.utils.http`), as the core
    parsed it: ``method`` (e.g. ``GET``), ``path`` (the route pattern, e.g.
    ``/files/:filename``), ``raw_path`` (the path as requested), ``path_params`` (the ``:name``
    segments, percent-decoded), ``query_params`` and ``headers`` (lower-case names; a repeated
    key gives a list), ``body`` (the parsed JSON body, else ``None``) and ``request_body`` (the
    raw body, streamed as it arrives)."""

    method: str
    path: str
    raw_path: Optional[str]
    path_params: Dict[str, str]
    query_params: Values
    headers: Values
    body: Any
    request_body: ChannelReader

    def __init__(self, fields: Mapping[str, Any], request_body: ChannelReader) -> None:
        for name in ("method", "path", "raw_path", "path_params", "query_params", "headers", "body"):
            setattr(self, name, fields.get(name))
        self.request_body = request_body

    def __repr__(self) -> str:
        return f"HttpRequest({self.method} {self.raw_path or self.path})"


class HttpResponse:
    """The response of an HTTP-triggered function: status and headers first, then the body
    through :attr:`writer` (each write reaches the client as it is written). Status, headers,
    writes and the end keep the order they were called in."""

    def __init__(self, native: Any) -> None:
        self._native = native

    async def status(self, status_code: int) -> None:
        """Sets the status code (before the first body byte)."""
        await self._native.status(status_code)

    async def headers(self, headers: Mapping[str, Union[str, List[str]]]) -> None:
        """Sets response headers (before the first body byte)."""
        await self._native.headers(dict(headers))

    @property
    def writer(self) -> ChannelWriter:
        """The body's writer."""
        return self._native.writer

    @property
    def stream(self) -> ChannelWriter:
        """The body as a stream (``stream.write``, ``stream.end``)."""
        return self._native.writer

    async def close(self) -> None:
        """Ends the response."""
        await self._native.close()

    async def send_file(self, directory: Union[str, "os.PathLike[str]"], name: str) -> None:
        """Sends the file ``name`` from ``directory`` as the whole response and ends it: 200
        with its bytes, content type and length; 400 when ``name`` is not one plain file name
        (``.``, ``..``, a slash or backslash); 404 when there is no such file inside
        ``directory`` (a symbolic link leading out of it counts as none). No server path
        reaches the client. Use it instead of joining a request's file name to a directory."""
        await self._native.send_file(os.fspath(directory), name)


@dataclass
class TelemetryOptions:
    """Accepted for programs written for the published client; this package sends no telemetry."""

    language: Optional[str] = None
    project_name: Optional[str] = None
    framework: Optional[str] = None


@dataclass
class InitOptions:
    """Options of :func:`iii.register_worker`, with the published client's fields.

    Used here: ``worker_name``, ``worker_description``, ``invocation_timeout_ms``, ``headers``
    (sent with the WebSocket handshake), ``reconnection_config``, and ours:
    ``connect_timeout_ms`` (how long a call waits for the connection) and ``ca_file`` (a PEM
    file of CA certificates trusted for ``wss://``). Accepted and not used (see the package
    README's compatibility table): ``namespace``, ``enable_metrics_reporting``, ``otel``,
    ``telemetry``.
    """

    worker_name: Optional[str] = None
    worker_description: Optional[str] = None
    namespace: Optional[str] = None
    enable_metrics_reporting: bool = True
    invocation_timeout_ms: int = 30000
    reconnection_config: Any = None
    otel: Any = None
    headers: Optional[Dict[str, str]] = None
    telemetry: Optional[TelemetryOptions] = None
    connect_timeout_ms: Optional[int] = None
    ca_file: Optional[str] = None


@dataclass
class StreamRequest:
    """The request of an HTTP-triggered function as the published client's ``http`` helper
    (``iii_helpers.http``) gives it; ``request_body`` streams the raw body."""

    path_params: Dict[str, str]
    query_params: Values
    body: Any
    headers: Values
    method: str
    request_body: ChannelReader


@dataclass
class InternalHttpRequest:
    """:class:`StreamRequest` plus the ``response`` writer, as the engine hands it over."""

    path_params: Dict[str, str]
    query_params: Values
    body: Any
    headers: Values
    method: str
    response: ChannelWriter
    request_body: ChannelReader


class StreamResponse:
    """A response written through its channel writer (the published client's shape):
    ``await status(code)`` and ``await headers({...})`` before the body, the body through
    :attr:`stream` / :attr:`writer`, ``close()`` to end it."""

    def __init__(self, writer: ChannelWriter) -> None:
        self._writer = writer

    async def status(self, status_code: int) -> None:
        """Sets the status code (before the first body byte)."""
        await self._writer.send_message_async(_native.status_message(status_code))

    async def headers(self, headers: Mapping[str, Union[str, List[str]]]) -> None:
        """Sets response headers (before the first body byte)."""
        message = _native.headers_message(dict(headers))
        if message is not None:
            await self._writer.send_message_async(message)

    @property
    def stream(self) -> ChannelWriter:
        """The body's writer (``write``, ``end``)."""
        return self._writer

    @property
    def writer(self) -> ChannelWriter:
        """The body's writer."""
        return self._writer

    def close(self) -> None:
        """Ends the response (the end is queued after what was written)."""
        self._writer.close()


class IIIClient(Protocol):
    """What a worker offers, as a type (the published client's protocol)."""

    def register_trigger(self, trigger: Any) -> Any: ...
    def register_function(self, function_id: str, handler_or_invocation: Any, **options: Any) -> Any: ...
    def trigger(self, request: Any) -> Any: ...
    def observe(self, source: Any, target: Any, options: Any = None) -> Any: ...
    def current_invocation(self) -> Any: ...
    def register_trigger_type(self, trigger_type: Any, handler: Any) -> Any: ...
    def unregister_trigger_type(self, trigger_type: Any) -> None: ...
    def add_connection_state_listener(self, handler: Callable[[str], None]) -> Callable[[], None]: ...
    def shutdown(self) -> None: ...
