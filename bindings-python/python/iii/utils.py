"""Helpers for writing functions: the :func:`http` decorator for HTTP-triggered functions."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Awaitable, Callable, Union

from .errors import IIIError
from .types import HttpRequest, HttpResponse

__all__ = ["http"]

Handler = Callable[[HttpRequest, HttpResponse], Union[Awaitable[Any], Any]]


def http(handler: Handler) -> Callable[[Any], Awaitable[Any]]:
    """Makes ``handler(req, response)`` a function for an ``http`` trigger.

    The handler sets ``await response.status(...)`` and ``await response.headers(...)``,
    then writes the body through ``response.writer``. When it returns, the response is
    ended (unless it returned a plain result such as ``{"status_code": 200, "body": ...}``,
    which is then the response). When it raises, the response is aborted, so a client
    sees a cut-off body instead of a short one that looks complete, or a 500 if nothing
    was sent yet.
    """

    @functools.wraps(handler)
    async def wrapper(data: Any) -> Any:
        request = HttpRequest(data)
        response = HttpResponse(data["response"])
        try:
            result = handler(request, response)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as error:
            try:
                await response.writer.abort_async(f"{type(error).__name__}: {error}")
            except IIIError:
                pass
            raise
        if result is None:
            try:
                await response.writer.close_async()
            except IIIError:
                # The client left (or the handler closed the writer itself): nothing to end.
                pass
        return result

    return wrapper


