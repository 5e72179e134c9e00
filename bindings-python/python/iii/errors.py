"""The exceptions iii raises: one tree under :class:`IIIError`.

Every error of the native core maps to exactly one class here; ``code`` carries the stable
error code (for :class:`InvocationError`, the remote code such as ``function_not_found`` or
``invocation_failed``). The ``__cause__`` is a :class:`NativeError`: for a failure in another
worker its :class:`RemoteTraceback`, printed as its own section of the traceback, else the
core's description of the error.
"""

from __future__ import annotations

import builtins
from typing import Optional

__all__ = [
    "IIIError",
    "NativeError",
    "RemoteTraceback",
    "HandlerError",
    "InvocationError",
    "RegistrationRejectedError",
    "ObserveRejection",
    "TimeoutError",
    "IIIForbiddenError",
    "ConnectionError",
    "NotConnected",
    "ChannelError",
    "ChannelAborted",
    "WriterLost",
    "ReaderClosed",
    "ChannelExpired",
    "ChannelClosed",
    "ChannelNotFound",
    "ProtocolError",
    "SerializationError",
    "ShutdownError",
    "GoingAway",
    "InvalidArgument",
]


class NativeError(builtins.RuntimeError):
    """The native core's description of an error (the ``__cause__`` of an :class:`IIIError`)."""


class RemoteTraceback(NativeError):
    """The traceback of a failure in another worker (the ``__cause__`` of an
    :class:`InvocationError` that has one), printed as its own section of a traceback."""

    def __init__(self, traceback: str) -> None:
        super().__init__(traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        return "\n" + self.traceback.rstrip("\n")


class IIIError(Exception):
    """Base class of every iii error. ``code`` is the error's stable code."""

    code: str = "iii_error"


class HandlerError(IIIError):
    """A handler failed (reported to its caller as ``invocation_failed``)."""


class InvocationError(IIIError):
    """A called function (or the engine) answered with an error.

    ``code`` is the remote code (``function_not_found``, ``invocation_failed``,
    ``invocation_stopped``, ``TIMEOUT``, …), ``message`` its message and ``stacktrace`` the
    remote traceback, if any; ``str(error)`` is ``"<code>: <message>"``. Constructed as the
    published client's: ``InvocationError(code, message, function_id=None, stacktrace=None,
    invocation_id=None)``.
    """

    stacktrace: Optional[str] = None
    #: The function that was called (as the published client's ``InvocationError`` has it).
    function_id: Optional[str] = None
    invocation_id: Optional[str] = None
    message: str = ""

    def __init__(
        self,
        code: str = "",
        message: Optional[str] = None,
        function_id: Optional[str] = None,
        stacktrace: Optional[str] = None,
        invocation_id: Optional[str] = None,
    ) -> None:
        if message is None:  # iii's own: one text (code and the rest are set after)
            super().__init__(code)
            self.message = code
            return
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message
        self.function_id, self.stacktrace, self.invocation_id = function_id, stacktrace, invocation_id


class IIIForbiddenError(InvocationError):
    """A call the engine's access rules refuse (code ``FORBIDDEN``; the message names what
    would allow it), as the published client raises it."""


class RegistrationRejectedError(IIIError):
    """The engine refused this worker's registration (the published client's error; this
    package's engine never sends such a refusal, so it is not raised by iii itself)."""

    def __init__(
        self,
        code: str,
        namespace: Optional[str] = None,
        worker_name: Optional[str] = None,
        owner_worker_id: Optional[str] = None,
    ) -> None:
        super().__init__(f"registration rejected: {code}")
        self.code, self.namespace = code, namespace
        self.worker_name, self.owner_worker_id = worker_name, owner_worker_id


class ObserveRejection(IIIError):
    """An observer could not be set up (see :meth:`iii.III.observe`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class TimeoutError(InvocationError, builtins.TimeoutError):
    """No answer arrived within the call's timeout: code ``TIMEOUT``, as the published client
    reports it (an :class:`InvocationError`, and a built-in ``TimeoutError`` too)."""


class ConnectionError(IIIError, builtins.ConnectionError):
    """The connection to the engine failed or was lost."""


class NotConnected(ConnectionError):
    """The worker is not connected and gave up reconnecting."""


class ChannelError(IIIError):
    """Base class of the errors of a channel end."""


class ChannelAborted(ChannelError):
    """The writer aborted the stream; the data is incomplete."""


class WriterLost(ChannelError):
    """The writer disappeared without closing; the data is incomplete."""


class ReaderClosed(ChannelError):
    """The reader went away: nothing more can be written."""


class ChannelExpired(ChannelError):
    """The channel expired before both of its ends connected."""


class ChannelClosed(ChannelError):
    """The channel end was closed (this writer already closed, or another close code)."""


class ChannelNotFound(ChannelError):
    """The engine refused the channel socket: unknown channel or wrong key."""


class ProtocolError(IIIError):
    """A peer sent something that does not follow the protocol."""


class SerializationError(IIIError, builtins.ValueError):
    """A value could not be converted to or from JSON."""


class ShutdownError(IIIError):
    """The worker was shut down."""


class GoingAway(ChannelError, ConnectionError):
    """The engine is going away (it is shutting down): a channel end or a call in flight was
    cut by the engine's stop, not by its peer. The data is incomplete; the worker reconnects
    on its own."""


class InvalidArgument(IIIError, builtins.ValueError):
    """An argument iii cannot use (a malformed call request, say)."""
