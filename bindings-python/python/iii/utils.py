"""Helpers for writing functions: the :func:`http` decorator for HTTP-triggered functions."""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any, Awaitable, Callable, Union

from .helpers import is_channel_ref
from .types import HttpRequest, HttpResponse

__all__ = ["http", "is_channel_ref", "safe_stringify"]

Handler = Callable[[HttpRequest, HttpResponse], Union[Awaitable[Any], Any]]


def http(handler: Handler) -> Callable[..., Awaitable[Any]]:
    """Makes ``handler(req, response)`` a function for an ``http`` trigger.

    The handler sets ``await response.status(...)`` and ``await response.headers(...)``,
    then writes the body through ``response.writer``. When it returns, the response is
    ended (unless it returned a plain result such as ``{"status_code": 200, "body": ...}``,
    which is then the response). When it raises, a response already under way is aborted, so
    a client sees a cut-off body instead of a short one that looks complete, or a 500 if
    nothing was sent yet. The core does all of this; this wrapper only builds the request and
    response objects and awaits the handler on iii's event loop.
    """

    @functools.wraps(handler)
    async def wrapper(fields: Any, request_body: Any, response: Any) -> Any:
        result = handler(HttpRequest(fields, request_body), HttpResponse(response))
        if inspect.isawaitable(result):
            result = await result
        return result

    wrapper.__iii_http__ = True  # type: ignore[attr-defined]
    return wrapper


def safe_stringify(value: Any) -> str:
    """``value`` as JSON text (anything JSON cannot hold as its ``str``), or
    ``"[unserializable]"``."""
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return "[unserializable]"
