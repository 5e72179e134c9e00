"""The published client's ``iii.helpers``: channel helpers as free functions, so programs
written against it run unchanged. The work is the core's (``iii._native``)."""

from __future__ import annotations

from enum import Enum
from typing import Any, Awaitable, List, Optional, Tuple

from . import _native
from ._native import Channel
from .types import StreamChannelRef

__all__ = [
    "ChannelDirection",
    "create_channel",
    "create_channel_async",
    "extract_channel_refs",
    "is_channel_ref",
]


class ChannelDirection(str, Enum):
    """Which end of a channel a ref opens."""

    READ = "read"
    WRITE = "write"


def create_channel(iii: Any, buffer_size: Optional[int] = None) -> Channel:
    """``iii.create_channel(buffer_size)`` as a free function (blocking)."""
    return iii.create_channel(buffer_size)


def create_channel_async(iii: Any, buffer_size: Optional[int] = None) -> Awaitable[Channel]:
    """``iii.create_channel_async(buffer_size)`` as a free function."""
    return iii.create_channel_async(buffer_size)


def is_channel_ref(value: Any) -> bool:
    """Whether ``value`` is a dict shaped as a channel ref (``channel_id``, ``access_key``,
    ``direction`` of ``"read"`` or ``"write"``)."""
    return _native.is_channel_ref(value)


def extract_channel_refs(data: Any) -> List[Tuple[str, StreamChannelRef]]:
    """Every channel ref in ``data``, at any depth, as ``(path, ref)``; paths join keys with
    dots and put list indices in brackets (``items[0].writer``)."""
    return [(path, StreamChannelRef(**ref)) for path, ref in _native.extract_channel_refs(data)]
