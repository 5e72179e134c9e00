"""The published client's observer names (``observe.v1``). This package's engine offers no
observers: :meth:`iii.III.observe` gives a handle that is rejected at once, so programs that
set observers up get a clear :class:`~iii.errors.ObserveRejection` instead of an
``ImportError``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Literal, Optional, TypedDict, Union

from .errors import ObserveRejection

__all__ = [
    "Caller", "Capture", "Filter", "ObserveHooks", "ObserveSource", "Observed", "Observer",
    "ObserverHandle", "ObserverOptions", "ObserverState", "Target",
]

Capture = Literal["input", "output", "error", "caller", "metadata"]
ObserverState = Literal["pending", "active", "suspended", "error", "disposed"]
Filter = Dict[str, Any]
Target = Union[str, Dict[str, Any]]


class Caller(TypedDict, total=False):
    """Who made an observed call."""

    function_id: str
    worker_id: str


class Observed(TypedDict, total=False):
    """One observed call."""

    function_id: str
    invocation_id: str
    input: Any
    output: Any
    error: Any


class ObserveSource(TypedDict, total=False):
    """What to observe."""

    function_id: str
    capture: List[Capture]
    filter: Filter


class ObserverOptions(TypedDict, total=False):
    """How to observe."""

    delivery: str


class Observer:
    """An observer as its hooks see it."""

    state: ObserverState = "error"


@dataclass
class ObserveHooks:
    """Hooks of a function that may be observed."""

    on_observe: Optional[Callable[[Observer], Union[None, Awaitable[None]]]] = None
    on_unobserve: Optional[Callable[[Observer], Union[None, Awaitable[None]]]] = None


class ObserverHandle:
    """The handle :meth:`iii.III.observe` returns."""

    def __init__(self, state: ObserverState, reason: Optional[Dict[str, str]]) -> None:
        self._state, self._reason = state, reason

    @classmethod
    def rejected(cls, code: str, message: str) -> "ObserverHandle":
        """A handle that failed with ``code``."""
        return cls("error", {"code": code, "message": message})

    @property
    def state(self) -> ObserverState:
        """``error`` here (see the module's note)."""
        return self._state

    @property
    def reason(self) -> Optional[Dict[str, str]]:
        """Why it failed: ``{"code", "message"}``."""
        return self._reason

    def _raise(self) -> None:
        reason = self._reason or {"code": "OBSERVE_UNSUPPORTED", "message": ""}
        raise ObserveRejection(reason["code"], reason["message"])

    def ready(self, timeout: Optional[float] = None) -> None:
        """Raises the rejection."""
        self._raise()

    async def ready_async(self) -> None:
        """Raises the rejection."""
        self._raise()

    def on_state_change(self, listener: Callable[..., None]) -> Callable[[], None]:
        """The state never changes; returns a no-op unsubscribe."""
        return lambda: None

    def dispose(self) -> None:
        """Marks the handle disposed."""
        self._state = "disposed"

    async def dispose_async(self) -> None:
        """:meth:`dispose`, for async code."""
        self.dispose()
