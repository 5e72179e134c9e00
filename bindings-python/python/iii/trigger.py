"""The published client's ``iii.trigger``: trigger handles and what a trigger type's provider
implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from ._native import Trigger
from ._trigger_types import TriggerConfig
from .types import TriggerActionVoid

__all__ = ["Trigger", "TriggerActionVoid", "TriggerConfig", "TriggerHandler"]

TConfig = TypeVar("TConfig")


class TriggerHandler(ABC, Generic[TConfig]):
    """The provider of a trigger type: told when a trigger of its type is registered or
    unregistered (methods may be plain or ``async``)."""

    @abstractmethod
    async def register_trigger(self, config: TriggerConfig) -> Any:
        """A trigger of this type was registered."""

    @abstractmethod
    async def unregister_trigger(self, config: TriggerConfig) -> Any:
        """A trigger of this type was unregistered."""
