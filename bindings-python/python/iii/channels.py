"""Channel ends: :class:`ChannelWriter` and :class:`ChannelReader`.

A channel streams bytes (and text messages) from one function to another through the
engine. Refs to channel ends found anywhere in a handler's input arrive as these live
objects. Their methods block in plain code and return awaitables under a running asyncio
loop (``channel.writer.write(b"x")`` and ``await writer.write(b"x")`` both work); each also
has an ``_async`` form that is always awaitable.
"""

from ._native import ChannelReader, ChannelWriter

__all__ = ["ChannelReader", "ChannelWriter"]
