"""The published client's ``iii.helpers``: channel helpers as free functions, so programs
written against it run unchanged. The work is the core's (``iii._native``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import Enum
from types import SimpleNamespace
from typing import Any, Awaitable, List, Optional, Tuple

from . import _native
from ._native import Channel
from .types import StreamChannelRef

__all__ = [
    "ChannelDirection",
    "ChannelItem",
    "create_stream",
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


@dataclass
class ChannelItem:
    """One frame of a channel: exactly one of ``text`` (a message) or ``binary`` (bytes)."""

    text: Optional[str] = None
    binary: Optional[bytes] = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.binary is None):
            raise ValueError("ChannelItem requires exactly one of `text` or `binary`")

    @classmethod
    def text_item(cls, value: str) -> "ChannelItem":
        """A text frame."""
        return cls(text=value)

    @classmethod
    def binary_item(cls, value: bytes) -> "ChannelItem":
        """A binary frame."""
        return cls(binary=value)

    @property
    def is_text(self) -> bool:
        """Whether this is a text frame."""
        return self.text is not None

    @property
    def is_binary(self) -> bool:
        """Whether this is a binary frame."""
        return self.binary is not None


def _dumped(result: Any) -> Any:
    return result.model_dump() if hasattr(result, "model_dump") else result


def create_stream(iii: Any, stream_name: str, stream: Any) -> None:
    """Registers ``stream`` (an :class:`iii.stream.IStream`) as the functions
    ``stream::get(<name>)``, ``stream::set(…)``, ``stream::delete(…)``, ``stream::list(…)``
    and ``stream::list_groups(…)``; each gets its input with attribute access. Deprecated, as
    in the published client (a ``FutureWarning``)."""
    warnings.warn("create_stream is deprecated", FutureWarning, stacklevel=2)

    def handler(method: str) -> Any:
        async def call(data: Any) -> Any:
            given = SimpleNamespace(**data) if isinstance(data, dict) else data
            return _dumped(await getattr(stream, method)(given))

        return call

    for method in ("get", "set", "delete", "list", "list_groups"):
        iii.register_function(f"stream::{method}({stream_name})", handler(method))
