"""Every public name of the published client (iii-sdk 0.25) and its HTTP helper
(iii-helpers 0.25) imports from the installed package. Prints the names that are missing."""

import importlib
import json

from report import report

EXPECTED = {
    "iii": [
        "Caller", "Capture", "ConnectionStateCallback", "DEFAULT_ENGINE_URL", "EnqueueResult",
        "Filter", "IIIClient", "IIIConnectionState", "IStream", "InitOptions",
        "InvocationContext", "InvocationError", "MiddlewareFunctionInput", "ObserveHooks",
        "ObserveRejection", "ObserveSource", "Observed", "Observer", "ObserverHandle",
        "ObserverOptions", "ObserverState", "RegistrationRejectedError", "StreamRequest",
        "StreamResponse", "Target", "TelemetryOptions", "TriggerAction", "TriggerActionEnqueue",
        "TriggerActionVoid", "current_invocation", "register_worker",
    ],
    "iii.helpers": [
        "ChannelDirection", "ChannelItem", "create_channel", "create_channel_async",
        "create_stream", "extract_channel_refs", "is_channel_ref",
    ],
    "iii.channel": ["Channel", "ChannelReader", "ChannelWriter", "StreamChannelRef"],
    "iii.trigger": ["Trigger", "TriggerActionVoid", "TriggerConfig", "TriggerHandler"],
    "iii.runtime": ["FunctionRef", "IIIConnectionState", "TriggerTypeRef"],
    "iii.engine": ["EngineFunctions", "EngineTriggers", "RemoteFunctionHandler"],
    "iii.protocol": [
        "FEATURE_LARGE_MESSAGES_V1", "FEATURE_LOCAL_DISPATCH_V1", "FEATURE_OBSERVE_V1",
        "MessageType", "RegisterFunctionFormat", "RegisterFunctionInput",
        "RegisterFunctionMessage", "RegisterTriggerInput", "RegisterTriggerMessage",
        "RegisterTriggerTypeInput", "RegisterTriggerTypeMessage", "SDK_FEATURES", "TriggerRequest",
    ],
    "iii.internal": ["InternalHttpRequest"],
    "iii.stream": ["IStream"],
    "iii.state": [
        "StateGetInput", "StateSetInput", "StateDeleteInput", "StateListInput",
        "StateUpdateInput", "StateSetResult", "StateUpdateResult", "StateDeleteResult",
        "StateEventType", "StateEventData", "IState",
    ],
    "iii.utils": ["is_channel_ref", "safe_stringify"],
    "iii.errors": ["InvocationError", "RegistrationRejectedError", "ObserveRejection"],
    "iii.types": ["StreamRequest", "StreamResponse", "InternalHttpRequest", "IIIClient"],
    "iii_helpers.http": [
        "HttpAuthApiKey", "HttpAuthBearer", "HttpAuthConfig", "HttpAuthHmac",
        "HttpInvocationConfig", "HttpMethod", "HttpRequest", "HttpResponse", "http",
    ],
}

missing = {}
for module_name, names in EXPECTED.items():
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        missing[module_name] = f"ImportError: {error}"
        continue
    absent = [name for name in names if not hasattr(module, name)]
    if absent:
        missing[module_name] = absent


from iii.engine import EngineFunctions, EngineTriggers  # noqa: E402
from iii.protocol import MessageType  # noqa: E402

report({
    "missing": missing,
    "engine_functions": {k: v for k, v in vars(EngineFunctions).items() if k.isupper()},
    "engine_triggers": {k: v for k, v in vars(EngineTriggers).items() if k.isupper()},
    "message_types": sorted(m.value for m in MessageType),
})
