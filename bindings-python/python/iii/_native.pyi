"""Type stubs of the native core (``iii._native``), re-exported by :mod:`iii`."""

from typing import Any, Awaitable, Callable, Dict, Iterator, AsyncIterator, List, Optional, Tuple, Union

from .types import StreamChannelRef

__version__: str

BytesLike = Union[bytes, bytearray, memoryview, str]
#: In plain code the call blocks and returns ``None``; under a running asyncio loop it
#: returns an awaitable. Either way the operation is queued in call order at once.
MaybeAwaitable = Optional[Awaitable[None]]

class ChannelWriter:
    """The writing end of a channel."""

    def stats(self) -> Dict[str, Any]:
        """``{"bytes", "frames", "messages", "blocked_secs"}`` written so far."""
        ...

    def write(self, data: BytesLike) -> MaybeAwaitable:
        """Writes ``data`` (``str`` as UTF-8). Blocks until sent in plain code; awaitable in async code."""
    def write_async(self, data: BytesLike) -> Awaitable[None]:
        """Awaitable write."""
    def send_message(self, message: str) -> MaybeAwaitable:
        """Sends a text message beside the byte stream."""
    def send_message_async(self, message: str) -> Awaitable[None]:
        """Awaitable ``send_message``."""
    def close(self) -> MaybeAwaitable:
        """Ends the stream cleanly."""
    def close_async(self) -> Awaitable[None]:
        """Awaitable ``close``."""
    def abort(self, reason: str = "") -> MaybeAwaitable:
        """Ends the stream as failed; the reader gets ``ChannelAborted(reason)``."""
    def abort_async(self, reason: str = "") -> Awaitable[None]:
        """Awaitable ``abort``."""
    def end(self, data: Optional[BytesLike] = None) -> MaybeAwaitable:
        """Writes ``data`` if given, then closes."""
    @property
    def stream(self) -> "ChannelWriter":
        """The writer as a stream (``write``, ``end``)."""
    @property
    def channel_ref(self) -> Dict[str, str]:
        """This end's ref as a plain dict."""

class ChannelReader:
    """The reading end of a channel."""

    def next_chunk(self) -> Union[Optional[bytes], Awaitable[Optional[bytes]]]:
        """The next chunk, ``None`` at a clean end (blocking, or awaitable in async code)."""
    def next_chunk_async(self) -> Awaitable[Optional[bytes]]:
        """Awaitable ``next_chunk``."""
    def read_all(self) -> Union[bytes, Awaitable[bytes]]:
        """Everything to the end (blocking, or awaitable in async code)."""
    def read_all_async(self) -> Awaitable[bytes]:
        """Awaitable ``read_all``."""
    def stats(self) -> Dict[str, Any]:
        """``{"bytes", "frames", "messages", "blocked_secs"}`` received so far."""
        ...
    def on_message(self, callback: Callable[[str], Any]) -> None:
        """Calls ``callback(text)`` for each text message; registering starts receiving."""
    def close(self) -> MaybeAwaitable:
        """Stops reading; the writer's next write fails with ``ReaderClosed``."""
    @property
    def stream(self) -> "ChannelReader":
        """The reader as a stream (it iterates)."""
    @property
    def channel_ref(self) -> Dict[str, str]:
        """This end's ref as a plain dict."""
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    def __anext__(self) -> Awaitable[bytes]: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...

class Channel:
    """Both ends of a new channel, and their refs."""

    writer: ChannelWriter
    reader: ChannelReader
    writer_ref: StreamChannelRef
    reader_ref: StreamChannelRef

class III:
    """A worker connected to an engine (create with :func:`iii.register_worker`)."""

    def __init__(
        self,
        url: str,
        worker_name: Optional[str] = None,
        invocation_timeout_ms: Optional[int] = None,
        connect_timeout_ms: Optional[int] = None,
        worker_description: Optional[str] = None,
        settings: Optional[Dict[str, Any]] = None,
    ) -> None: ...
    @property
    def address(self) -> str:
        """The engine URL."""
    def ready(self) -> None:
        """Waits until connected and everything registered so far is known to the engine."""
    def ready_async(self) -> Awaitable[None]:
        """Awaitable ``ready``."""
    def create_channel(self, buffer_size: Optional[int] = None) -> Channel:
        """Creates a channel (blocking; raises inside a running asyncio loop)."""
    def create_channel_async(self, buffer_size: Optional[int] = None) -> Awaitable[Channel]:
        """Awaitable ``create_channel``."""
    def trigger(self, request: Dict[str, Any]) -> Any:
        """Calls a function (``function_id``, ``payload``, optional ``action``, ``timeout_ms``)."""
    def trigger_async(self, request: Dict[str, Any]) -> Awaitable[Any]:
        """Awaitable ``trigger``."""
    def register_function(
        self,
        function_id: str,
        handler: Any,
        description: Optional[str] = None,
        metadata: Any = None,
        request_format: Any = None,
        response_format: Any = None,
        **ignored: Any,
    ) -> FunctionRef:
        """Registers a sync or async handler, or an ``HttpInvocationConfig`` the engine calls;
        a duplicate or empty id is a ``ValueError``."""
    def register_trigger(self, trigger: Any) -> Trigger:
        """Registers a trigger: ``{"type", "function_id", "config", "metadata"?}``."""
    def register_trigger_type(self, trigger_type: Any, handler: Any) -> TriggerTypeRef:
        """Provides a trigger type; ``handler.register_trigger`` / ``unregister_trigger`` get its triggers."""
    def unregister_trigger_type(self, trigger_type: Any) -> None:
        """Stops providing a trigger type."""
    def get_address(self) -> str:
        """The engine URL."""
    def get_connection_state(self) -> str:
        """``connecting``, ``connected``, ``reconnecting``, ``disconnected`` or ``failed``."""
    def add_connection_state_listener(self, handler: Callable[[str], None]) -> Callable[[], None]:
        """Calls ``handler(state)`` now and on every change; returns the unsubscribe function."""
    def wait_stopped(self) -> None:
        """Blocks until the worker stopped."""
    def shutdown(self) -> None:
        """Disconnects from the engine."""

class HttpResponse:
    """The response of an HTTP invocation (wrapped by ``iii.types.HttpResponse``)."""
    def status(self, status_code: int) -> Awaitable[None]: ...
    def headers(self, headers: Dict[str, Any]) -> Awaitable[None]: ...
    @property
    def writer(self) -> ChannelWriter: ...
    def send_file(self, directory: str, name: str) -> Awaitable[None]: ...
    def close(self) -> Awaitable[None]: ...

class Completion:
    """Internal: hands an asyncio result back to the core."""

    def __call__(self, future: Any) -> None: ...

class FunctionRef:
    """A registered function."""
    @property
    def id(self) -> str: ...
    def unregister(self) -> None:
        """Withdraws the function from the engine."""

class Trigger:
    """A registered trigger."""
    @property
    def id(self) -> str: ...
    def unregister(self) -> None:
        """Withdraws the trigger from the engine."""

def is_channel_ref(value: Any) -> bool: ...
def extract_channel_refs(value: Any) -> List[Tuple[str, Dict[str, str]]]: ...

class TriggerTypeRef:
    """A trigger type this worker provides."""
    @property
    def id(self) -> str: ...
    def register_trigger(self, function_id: str, config: Any, metadata: Any = None) -> Trigger: ...
    def register_function(self, function_id: str, handler: Callable[..., Any], description: Optional[str] = None) -> FunctionRef: ...
    def unregister(self) -> None: ...
