"""The published client's ``iii.state``: the shapes of a state store's calls and events, and
its interface (``IState``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import Any, Generic, TypeVar

from ._model import Model

__all__ = [
    "IState", "StateDeleteInput", "StateDeleteResult", "StateEventData", "StateEventType",
    "StateGetInput", "StateListInput", "StateSetInput", "StateSetResult", "StateUpdateInput",
    "StateUpdateResult",
]

TData = TypeVar("TData")


class StateGetInput(Model):
    """``scope``, ``key``."""

    _fields = (("scope", ...), ("key", ...))


class StateSetInput(Model):
    """``scope``, ``key``, ``value``."""

    _fields = (("scope", ...), ("key", ...), ("value", None))


class StateDeleteInput(Model):
    """``scope``, ``key``."""

    _fields = (("scope", ...), ("key", ...))


class StateListInput(Model):
    """``scope``."""

    _fields = (("scope", ...),)


class StateUpdateInput(Model):
    """``scope``, ``key``, ``ops`` (applied in order)."""

    _fields = (("scope", ...), ("key", ...), ("ops", list))


class StateSetResult(Model):
    """``old_value``, ``new_value``."""

    _fields = (("old_value", None), ("new_value", None))


class StateUpdateResult(Model):
    """``old_value``, ``new_value``."""

    _fields = (("old_value", None), ("new_value", None))


class StateDeleteResult(Model):
    """``old_value``."""

    _fields = (("old_value", None),)


class StateEventType(str, Enum):
    """What changed."""

    CREATED = "state:created"
    UPDATED = "state:updated"
    DELETED = "state:deleted"


class StateEventData(Model):
    """A state change event."""

    _fields = (("type", "state"), ("event_type", ...), ("scope", ...), ("key", ...),
               ("old_value", None), ("new_value", None))


class IState(ABC, Generic[TData]):
    """A state store."""

    @abstractmethod
    async def get(self, input: StateGetInput) -> Any: ...

    @abstractmethod
    async def set(self, input: StateSetInput) -> Any: ...

    @abstractmethod
    async def delete(self, input: StateDeleteInput) -> Any: ...

    @abstractmethod
    async def list(self, input: StateListInput) -> Any: ...

    @abstractmethod
    async def update(self, input: StateUpdateInput) -> Any: ...
