"""The engine's built-in functions and trigger types, by name (the published client's
``iii.engine``). Call them with ``trigger({"function_id": EngineFunctions.LIST_FUNCTIONS})``;
bind ``EngineTriggers.FUNCTIONS_AVAILABLE`` with ``register_trigger``."""

from typing import Any, Awaitable, Callable

__all__ = ["EngineFunctions", "EngineTriggers", "RemoteFunctionHandler"]

#: A function handler as the published client types it.
RemoteFunctionHandler = Callable[[Any], Awaitable[Any]]


class EngineFunctions:
    """Ids of the engine's built-in functions."""

    LIST_FUNCTIONS = "engine::functions::list"
    INFO_FUNCTIONS = "engine::functions::info"
    LIST_WORKERS = "engine::workers::list"
    INFO_WORKERS = "engine::workers::info"
    LIST_TRIGGERS = "engine::triggers::list"
    INFO_TRIGGERS = "engine::triggers::info"
    LIST_REGISTERED_TRIGGERS = "engine::registered-triggers::list"
    INFO_REGISTERED_TRIGGERS = "engine::registered-triggers::info"
    REGISTER_WORKER = "engine::workers::register"


class EngineTriggers:
    """Ids of the engine's built-in trigger types."""

    FUNCTIONS_AVAILABLE = "engine::functions-available"
    LOG = "log"
