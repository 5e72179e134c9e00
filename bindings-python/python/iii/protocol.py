"""The published client's ``iii.protocol``: message type names and the shapes of
registrations and calls (accepted by :meth:`iii.III.register_function`,
``register_trigger``, ``register_trigger_type`` and ``trigger`` as well as plain dicts)."""

from __future__ import annotations

from enum import Enum
from typing import Tuple

from ._model import Model

__all__ = [
    "FEATURE_LARGE_MESSAGES_V1", "FEATURE_LOCAL_DISPATCH_V1", "FEATURE_OBSERVE_V1", "SDK_FEATURES",
    "MessageType", "RegisterFunctionFormat", "RegisterFunctionInput", "RegisterFunctionMessage",
    "RegisterTriggerInput", "RegisterTriggerMessage", "RegisterTriggerTypeInput",
    "RegisterTriggerTypeMessage", "TriggerRequest",
]

FEATURE_OBSERVE_V1 = "observe.v1"
FEATURE_LOCAL_DISPATCH_V1 = "local-dispatch.v1"
FEATURE_LARGE_MESSAGES_V1 = "large-messages.v1"
#: The optional protocol features this package announces: none (it speaks the base protocol;
#: large messages need no feature with this package's engine).
SDK_FEATURES: Tuple[str, ...] = ()


class MessageType(str, Enum):
    """The ``type`` of every message on a worker's socket."""

    REGISTER_FUNCTION = "registerfunction"
    UNREGISTER_FUNCTION = "unregisterfunction"
    REGISTER_SERVICE = "registerservice"
    INVOKE_FUNCTION = "invokefunction"
    INVOCATION_RESULT = "invocationresult"
    REGISTER_TRIGGER_TYPE = "registertriggertype"
    REGISTER_TRIGGER = "registertrigger"
    UNREGISTER_TRIGGER = "unregistertrigger"
    UNREGISTER_TRIGGER_TYPE = "unregistertriggertype"
    TRIGGER_REGISTRATION_RESULT = "triggerregistrationresult"
    WORKER_REGISTERED = "workerregistered"
    REGISTRATION_REJECTED = "registrationrejected"
    REATTACH = "reattach"
    # The observer messages (observe.v1): named here, not used by this package or its engine.
    OBSERVE = "observe"
    UNOBSERVE = "unobserve"
    OBSERVE_RESULT = "observeresult"
    OBSERVER_STATE_CHANGED = "observerstatechanged"
    FUNCTION_REGISTERED = "functionregistered"
    OBSERVER_ADDED = "observeradded"
    OBSERVER_REMOVED = "observerremoved"
    OBSERVER_ACK = "observerack"
    INVOCATIONS_OBSERVED = "invocationsobserved"
    LOCAL_INVOCATION_STATS = "localinvocationstats"


class RegisterFunctionFormat(Model):
    """A JSON-Schema-like description of a function's input or output."""

    _fields = (("name", ...), ("type", ...), ("description", None), ("body", None), ("items", None),
               ("required", False))


class RegisterFunctionInput(Model):
    """A function registration."""

    _fields = (("id", ...), ("description", None), ("request_format", None), ("response_format", None),
               ("metadata", None), ("invocation", None))


class RegisterFunctionMessage(Model):
    """The ``registerfunction`` message."""

    _fields = (("id", ...), ("description", None), ("request_format", None), ("response_format", None),
               ("metadata", None), ("invocation", None))


class RegisterTriggerInput(Model):
    """A trigger registration: ``type``, ``function_id``, ``config``, ``metadata``."""

    _fields = (("type", ...), ("function_id", ...), ("config", None), ("metadata", None),
               ("namespace", None), ("trigger_namespace", None))


class RegisterTriggerMessage(Model):
    """The ``registertrigger`` message."""

    _fields = (("id", ...), ("trigger_type", ...), ("function_id", ...), ("config", None),
               ("metadata", None), ("namespace", None), ("trigger_namespace", None))


class RegisterTriggerTypeInput(Model):
    """A trigger type registration."""

    _fields = (("id", ...), ("description", ""), ("trigger_request_format", None),
               ("call_request_format", None))


class RegisterTriggerTypeMessage(Model):
    """The ``registertriggertype`` message."""

    _fields = (("id", ...), ("description", ""), ("trigger_request_format", None),
               ("call_request_format", None), ("namespace", None))


class TriggerRequest(Model):
    """A call: ``function_id``, ``payload``, optional ``action``, ``timeout_ms``, ``metadata``."""

    _fields = (("function_id", ...), ("payload", None), ("action", None), ("timeout_ms", None),
               ("metadata", None), ("namespace", None), ("dispatch", None))
