"""The Python side of trigger types a worker provides: the core calls one function with
``{"op": "register" | "unregister", "trigger": {...}}``; this turns that into the published
client's ``handler.register_trigger(config)`` / ``handler.unregister_trigger(config)`` calls
(sync or async), with ``config`` a :class:`TriggerConfig`."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional


@dataclass
class TriggerConfig:
    """A trigger of a type this worker provides, as the engine hands it over."""

    id: str
    function_id: str
    config: Any = None
    metadata: Optional[Dict[str, Any]] = field(default=None)


def adapter(handler: Any) -> Callable[[Dict[str, Any]], Any]:
    """The one function the core calls for ``handler``'s trigger type."""
    for method in ("register_trigger", "unregister_trigger"):
        if not callable(getattr(handler, method, None)):
            raise TypeError(f"a trigger type handler needs a {method}(config) method")

    async def handle(data: Dict[str, Any]) -> None:
        trigger = data.get("trigger") or {}
        config = TriggerConfig(
            id=trigger.get("id", ""),
            function_id=trigger.get("function_id", ""),
            config=trigger.get("config"),
            metadata=trigger.get("metadata"),
        )
        step = handler.register_trigger if data.get("op") == "register" else handler.unregister_trigger
        outcome = step(config)
        if inspect.isawaitable(outcome):
            await outcome

    return handle
