"""The call a handler is serving, for :func:`iii.current_invocation`, and how a handler is
called: with ``metadata=`` when it declares that parameter, as the published client does."""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

__all__ = ["InvocationContext", "current_invocation"]


@dataclass(frozen=True)
class InvocationContext:
    """The call a handler serves: the function called and the call's id (empty for a
    fire-and-forget call). ``observe_depth``, ``caller`` and ``activation`` belong to the
    published client's observers, which this package does not have; they keep their
    defaults."""

    function_id: str
    invocation_id: str
    observe_depth: int = 0
    caller: Optional[dict] = None
    activation: Optional[dict] = None
    #: The caller's W3C trace context, as it sent it; calls the handler makes carry it on
    #: unless they give their own ``traceparent`` / ``tracestate`` / ``baggage``.
    traceparent: Optional[str] = None
    tracestate: Optional[str] = None
    baggage: Optional[str] = None


_current: ContextVar[Optional[InvocationContext]] = ContextVar("iii_current_invocation", default=None)


def current_invocation() -> Optional[InvocationContext]:
    """The call the running handler serves, or ``None`` outside a handler."""
    return _current.get()


def current_trace() -> Optional[Tuple[Optional[str], Optional[str], Optional[str]]]:
    """The trace context of the call the running handler serves, or ``None``."""
    context = _current.get()
    if context is None:
        return None
    return context.traceparent, context.tracestate, context.baggage


def takes_metadata(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` declares a ``metadata`` parameter it can take by keyword."""
    try:
        parameter = inspect.signature(handler).parameters.get("metadata")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def call(
    handler: Callable[..., Any],
    data: Any,
    function_id: str,
    invocation_id: Optional[str],
    metadata: Any,
    pass_metadata: bool,
    trace: Tuple[Optional[str], Optional[str], Optional[str]] = (None, None, None),
) -> Any:
    """Calls ``handler`` as the call ``function_id`` / ``invocation_id`` (with ``metadata=``
    when it declares that parameter)."""
    keywords = {"metadata": metadata} if pass_metadata else {}
    return call_with(handler, (data,), keywords, function_id, invocation_id, trace)


def call_with(
    handler: Callable[..., Any],
    args: Tuple[Any, ...],
    keywords: Dict[str, Any],
    function_id: str,
    invocation_id: Optional[str],
    trace: Tuple[Optional[str], Optional[str], Optional[str]] = (None, None, None),
) -> Any:
    """Calls ``handler(*args, **keywords)`` as the call ``function_id`` / ``invocation_id``; a
    coroutine it returns is wrapped so that it also sees the call."""
    traceparent, tracestate, baggage = trace
    context = InvocationContext(
        function_id,
        invocation_id or "",
        traceparent=traceparent,
        tracestate=tracestate,
        baggage=baggage,
    )
    token = _current.set(context)
    try:
        result = handler(*args, **keywords)
    finally:
        _current.reset(token)
    if inspect.isawaitable(result):
        return _within(context, result)
    return result


async def _within(context: InvocationContext, awaitable: Awaitable[Any]) -> Any:
    _current.set(context)
    return await awaitable
