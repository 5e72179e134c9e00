"""The published client's ``iii.channel``: a channel and its ends (see :mod:`iii.channels`)."""

from ._native import Channel, ChannelReader, ChannelWriter
from .types import StreamChannelRef

__all__ = ["Channel", "ChannelReader", "ChannelWriter", "StreamChannelRef"]
