//! Error codes: the stable, machine-readable `code` of an error body on the wire, of an HTTP
//! error body, and of an SDK error as every binding exposes it (a JS error's `code`, a Python
//! exception's `.code`). One list, so the engine, the SDK and the bindings spell them alike
//! (docs/PROTOCOL.md §3.2).

/// A call, registration or connection the listener's access rules do not allow (the published
/// engine's spelling).
pub const FORBIDDEN: &str = "FORBIDDEN";
/// The listener's auth function refused the connection, failed, or answered nonsense.
pub const AUTH_ERROR: &str = "AUTH_ERROR";
/// A main-socket message that is not valid JSON or lacks a required field.
pub const INVALID_MESSAGE: &str = "invalid_message";
/// No connected worker has registered the function.
pub const FUNCTION_NOT_FOUND: &str = "function_not_found";
/// A trigger the engine cannot bind (an unknown type, a bad HTTP route).
pub const TRIGGER_REGISTRATION_FAILED: &str = "trigger_registration_failed";
/// A trigger of a type no worker (and not the engine) provides.
pub const TRIGGER_TYPE_NOT_FOUND: &str = "trigger_type_not_found";
/// A call this worker made got no answer within its timeout (the published clients' code).
pub const CALL_TIMED_OUT: &str = "TIMEOUT";
/// An `enqueue` action: this engine has no queue provider.
pub const ENQUEUE_ERROR: &str = "enqueue_error";
/// A built-in function's input could not be read.
pub const DESERIALIZATION_ERROR: &str = "deserialization_error";
/// The engine failed on its side (e.g. could not make channel keys).
pub const INTERNAL_ERROR: &str = "internal_error";
/// The worker running the invocation disconnected, or the engine is stopping.
pub const INVOCATION_STOPPED: &str = "invocation_stopped";
/// A handler failed (raised, threw, panicked or returned an error).
pub const INVOCATION_FAILED: &str = "invocation_failed";
/// No answer came within the time allowed.
pub const TIMEOUT: &str = "timeout";

/// HTTP: a JSON request body larger than the engine parses (413).
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// HTTP: a request body declared as JSON that is not JSON (400).
pub const INVALID_JSON: &str = "invalid_json";
/// HTTP: a request the engine cannot read (400).
pub const BAD_REQUEST: &str = "bad_request";
/// A call refused at once because the worker serving it does not read its socket: its queue
/// is over the engine's bound (HTTP routes answer 503).
pub const WORKER_BUSY: &str = "worker_busy";
/// A quota of the engine would be exceeded (channels, functions or triggers per connection,
/// the length of an id); the message names the quota and the flag that sets it.
pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
/// The worker port: a plain HTTP request where a WebSocket upgrade was expected (426).
pub const UPGRADE_REQUIRED: &str = "upgrade_required";
/// The worker port: a method its plain HTTP endpoints do not answer (405).
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
/// Nothing by that name: no HTTP route matches the request (404), or a listing built-in was
/// asked about a function, worker or trigger that does not exist. Spelled as the published
/// engine spells it.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// HTTP: the function's result or response messages are not a valid response (500).
pub const INVALID_RESPONSE: &str = "invalid_response";
/// HTTP: the function aborted its response before sending its head (500).
pub const RESPONSE_ABORTED: &str = "response_aborted";
/// HTTP: the response channel expired before the function wrote to it (500).
pub const EXPIRED: &str = "expired";

/// A function the engine calls over HTTP was invoked on a worker's socket.
pub const FUNCTION_NOT_INVOKABLE: &str = "function_not_invokable";
/// HTTP-invoked function: its URL may not be called (not http/https, or a private address
/// the engine is not allowed to reach).
pub const URL_VALIDATION_FAILED: &str = "url_validation_failed";
/// HTTP-invoked function: the request could not be sent, or no response came in time.
pub const HTTP_REQUEST_FAILED: &str = "http_request_failed";
/// HTTP-invoked function: the response body could not be read (or was too large).
pub const HTTP_RESPONSE_FAILED: &str = "http_response_failed";
/// HTTP-invoked function: it answered with a 4xx or 5xx status.
pub const HTTP_ERROR: &str = "http_error";
/// HTTP-invoked function: the environment variable holding its credentials is not set on the
/// engine.
pub const CREDENTIALS_NOT_FOUND: &str = "credentials_not_found";

/// SDK: a handler of this process failed (before it became an invocation error).
pub const HANDLER: &str = "handler";
/// SDK: the remote function failed; the remote code is the error's own code.
pub const INVOCATION: &str = "invocation";
/// SDK: no connection to the engine.
pub const NOT_CONNECTED: &str = "not_connected";
/// SDK: a value could not be converted to or from JSON.
pub const SERDE: &str = "serde";
/// SDK: the worker has stopped (`shutdown`, or reconnecting gave up).
pub const SHUTDOWN: &str = "shutdown";
/// SDK: the main socket failed or is not connected.
pub const CONNECTION: &str = "connection";
/// SDK: the engine sent something this client cannot read.
pub const PROTOCOL: &str = "protocol";
/// SDK: the writer aborted the channel (the reader's error).
pub const CHANNEL_ABORTED: &str = "channel_aborted";
/// SDK: the writer went away without closing (the reader's error).
pub const WRITER_LOST: &str = "writer_lost";
/// SDK: the reader closed its end (the writer's error, and a closed reader's own).
pub const READER_CLOSED: &str = "reader_closed";
/// SDK: the channel expired before both ends connected.
pub const CHANNEL_EXPIRED: &str = "channel_expired";
/// SDK: the channel ended with another close code.
pub const CHANNEL_CLOSED: &str = "channel_closed";
/// SDK: the engine refused or could not take the channel socket.
pub const CHANNEL_CONNECT: &str = "channel_connect";
/// SDK: the engine is going away (it is shutting down): the channel or call was cut by the
/// engine's stop, not by its peer.
pub const GOING_AWAY: &str = "going_away";
/// SDK: a caller passed an argument the SDK cannot use.
pub const INVALID_ARGUMENT: &str = "invalid_argument";

/// The codes the engine or an SDK itself puts on a call's error (beside those a worker's
/// handler chooses): what metrics keep as outcomes whatever workers send.
pub const CALL_ERRORS: [&str; 19] = [
    FORBIDDEN,
    INVALID_MESSAGE,
    FUNCTION_NOT_FOUND,
    CALL_TIMED_OUT,
    ENQUEUE_ERROR,
    DESERIALIZATION_ERROR,
    INTERNAL_ERROR,
    INVOCATION_STOPPED,
    INVOCATION_FAILED,
    TIMEOUT,
    WORKER_BUSY,
    QUOTA_EXCEEDED,
    FUNCTION_NOT_INVOKABLE,
    URL_VALIDATION_FAILED,
    HTTP_REQUEST_FAILED,
    HTTP_RESPONSE_FAILED,
    HTTP_ERROR,
    CREDENTIALS_NOT_FOUND,
    INVALID_ARGUMENT,
];
