"""The published client's ``iii.stream``: the interface of a stream store (deprecated there;
subclassing it warns the same way)."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

__all__ = ["IStream"]

TData = TypeVar("TData")


class IStream(ABC, Generic[TData]):
    """A stream store (``get``, ``set``, ``delete``, ``list``, ``list_groups``, ``update``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        warnings.warn("IStream is deprecated", FutureWarning, stacklevel=2)

    @abstractmethod
    async def get(self, input: Any) -> Any: ...

    @abstractmethod
    async def set(self, input: Any) -> Any: ...

    @abstractmethod
    async def delete(self, input: Any) -> Any: ...

    @abstractmethod
    async def list(self, input: Any) -> Any: ...

    @abstractmethod
    async def list_groups(self, input: Any) -> Any: ...

    @abstractmethod
    async def update(self, input: Any) -> Any: ...
