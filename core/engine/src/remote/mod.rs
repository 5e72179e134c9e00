//! Functions the engine calls over HTTP instead of over a worker's socket (a worker registers
//! them with an `invocation` config, as the published clients do): the payload goes out as a
//! JSON body, the JSON response body comes back as the result. The registering worker owns
//! the function: it goes away when the worker unregisters it or disconnects.
//!
//! What such a call may reach is bounded: only `http://` and `https://`, no loopback, private
//! or link-local address unless the engine allows it (`--http-functions-allow-private`), the
//! address checked after resolution and connected to as checked, credentials only from the
//! environment variables the operator names (`--http-functions-secret`), a response body no
//! larger than the engine's JSON body limit, a call no longer than the invocation timeout, and
//! at most [`MAX_CONCURRENT_CALLS`] calls at once.

mod address;
mod client;
mod credentials;

use std::sync::Arc;

use iii_protocol::ErrorBody;
use iii_protocol::codes::{HTTP_REQUEST_FAILED, URL_VALIDATION_FAILED};
use iii_protocol::remote::HttpInvocation;
use serde_json::Value;

use address::Target;
pub(crate) use client::{RemoteClient, RemoteSettings};
use credentials::Credentials;

use crate::invocations::Waiter;

/// Calls in flight at once over all HTTP-invoked functions; more wait for a free slot.
pub(crate) const MAX_CONCURRENT_CALLS: usize = 256;

/// A function the engine calls over HTTP, as registered: everything a call needs, read once,
/// or why it cannot be called (each call then fails with that error).
#[derive(Debug)]
pub(crate) struct RemoteFunction {
    setup: Result<Prepared, ErrorBody>,
}

/// What every call of one function shares, prepared at registration.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) invocation: HttpInvocation,
    pub(crate) target: Target,
    /// The config's headers, as HTTP headers.
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) credentials: Credentials,
}

impl RemoteFunction {
    /// Reads `invocation` and the credentials its auth names (from the engine's environment,
    /// once, now; only variables the operator allowed in `allowed_secrets`).
    pub(crate) fn new(
        function_id: &str,
        invocation: &Value,
        allowed_secrets: &[String],
    ) -> Arc<Self> {
        let setup = HttpInvocation::from_value(invocation)
            .map_err(|message| ErrorBody::new(URL_VALIDATION_FAILED, message))
            .and_then(|invocation| {
                Ok(Prepared {
                    target: Target::parse(&invocation.url)?,
                    headers: client::config_headers(&invocation)?,
                    credentials: Credentials::from_env(invocation.auth.as_ref(), allowed_secrets)?,
                    invocation,
                })
            });
        if let Err(error) = &setup {
            tracing::warn!(%function_id, code = %error.code, reason = ?error.message,
                "an HTTP-invoked function cannot be called; its calls will fail");
        }
        Arc::new(Self { setup })
    }
}

/// Calls `function` with `data` in a task of its own, and hands the outcome to `waiter` (a
/// void call's outcome is only logged). When [`MAX_CONCURRENT_CALLS`] calls are in flight,
/// the call fails at once instead of waiting (a slow endpoint cannot pile up calls).
pub(crate) fn spawn_call(
    client: Arc<RemoteClient>,
    function: Arc<RemoteFunction>,
    function_id: String,
    (data, trace): (Value, iii_protocol::TraceContext),
    waiter: Option<Waiter>,
) {
    let permit = client.permits.clone().try_acquire_owned();
    tokio::spawn(async move {
        let outcome = match (&function.setup, permit) {
            (Err(error), _) => Err(error.clone()),
            (Ok(_), Err(_)) => Err(ErrorBody::new(
                HTTP_REQUEST_FAILED,
                format!(
                    "{MAX_CONCURRENT_CALLS} calls of HTTP-invoked functions are in flight already"
                ),
            )),
            (Ok(prepared), Ok(_permit)) => {
                (client.call(prepared, &function_id, (&data, &trace))).await
            }
        };
        match (waiter, outcome) {
            (Some(waiter), Ok(result)) => waiter.answer(function_id, Some(result), None).await,
            (Some(waiter), Err(error)) => waiter.fail(function_id, error).await,
            (None, Err(error)) => {
                tracing::warn!(%function_id, code = %error.code, reason = ?error.message,
                    "a void call of an HTTP-invoked function failed");
            }
            (None, Ok(_)) => {}
        }
    });
}
