//! HTTP endpoints as functions: the [`http`] adapter turns a handler taking an
//! [`HttpRequest`] and an [`HttpResponse`] into a function handler for `http` triggers.
//!
//! The engine serves HTTP itself and invokes the bound function with the request in the
//! invocation's `data` and two channel refs: one streaming the request body in, one carrying
//! the response out (docs/PROTOCOL.md §6). Written by hand, a handler would dig those refs out of
//! the JSON, open the channel ends, speak the response channel's control messages and end the
//! response on every path, errors included. This module does that once, so a handler reads
//! like an ordinary HTTP handler and can stream a body of any size, or server-sent events,
//! without buffering it.
//!
//! ```no_run
//! use iii_sdk::http::{HttpRequest, HttpResponse, http};
//! use iii_sdk::{IIIError, RegisterFunction, RegisterTrigger, register_worker};
//!
//! # fn demo() -> Result<(), IIIError> {
//! let iii = register_worker("ws://127.0.0.1:49134");
//! iii.register_function(RegisterFunction::new_async(
//!     "greet::hello",
//!     http(|req: HttpRequest, res: HttpResponse| async move {
//!         let name = req.query("name").unwrap_or("world");
//!         res.status(200).await?;
//!         res.headers([("content-type", "text/plain")]).await?;
//!         res.write(format!("hello, {name}\n").as_bytes()).await?;
//!         res.close().await
//!     }),
//! ));
//! iii.register_trigger(RegisterTrigger::http("greet::hello", "/hello", "GET"))?;
//! # Ok(()) }
//! ```
//!
//! When the handler returns `Ok(())` the response is closed if it is not yet; when it returns
//! an error (or panics) a response already under way is aborted, so the client sees a
//! truncated response instead of a complete-looking one, and the error becomes the
//! invocation's result, which the engine answers with a 500 when nothing was sent yet.

mod file;
mod request;
mod response;

pub use request::{HttpRequest, MultiMap};
pub use response::{HttpResponse, header_pairs};

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use iii_protocol::ChannelDirection;
use iii_protocol::http::FIELD_RESPONSE;
use serde_json::Value;

use crate::IIIError;
use crate::function::HandlerFuture;
use crate::invocation::{current_engine_address, panic_message};

/// Adapts an HTTP handler into a function handler for
/// [`RegisterFunction::new_async`](crate::RegisterFunction::new_async).
///
/// The handler gets the request and the response of one HTTP request and returns once it has
/// answered it; see the [module documentation](self) for how the response is ended. The
/// function returns `null` to the engine on success.
///
/// The channel ends are built on the engine URL of the worker running the invocation (see
/// [`current_engine_address`]), so the adapter needs no worker handle. An invocation whose
/// `data` lacks the `response` or `request_body` ref (the function was not called by an `http`
/// trigger) fails with [`IIIError::Protocol`].
pub fn http<F, Fut>(handler: F) -> impl Fn(Value) -> HandlerFuture + Send + Sync + 'static
where
    F: Fn(HttpRequest, HttpResponse) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), IIIError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    move |data: Value| -> HandlerFuture {
        let handler = handler.clone();
        Box::pin(async move {
            let address = current_engine_address().ok_or_else(|| {
                IIIError::Handler(
                    "an http() handler ran outside an invocation of an iii worker".into(),
                )
            })?;
            serve(&address, data, move |request, response| {
                handler(request, response)
            })
            .await
        })
    }
}

/// Runs one HTTP invocation: parses `data` (the invocation's input) into a request and a
/// response whose channel ends connect to the engine at `address`, runs `handler`, then ends
/// the response as [`http`] does. Returns the invocation's result (`null`).
///
/// [`http`] is this with the address of the running worker.
pub async fn serve<F, Fut>(address: &str, data: Value, handler: F) -> Result<Value, IIIError>
where
    F: FnOnce(HttpRequest, HttpResponse) -> Fut,
    Fut: Future<Output = Result<(), IIIError>>,
{
    serve_returning(address, data, move |request, response| {
        let handled = handler(request, response);
        async move { handled.await.map(|()| Value::Null) }
    })
    .await
}

/// [`serve`] for handlers that may return a plain result, as the Python and Node helpers
/// allow: `null` ends the response (closing it unless the handler did); any other value is the
/// invocation's result, with the response channel left alone, so a handler that wrote nothing
/// can answer `{"status_code", "headers", "body"}` and the engine sends that. Bindings call it
/// with handlers from their own language.
pub async fn serve_returning<F, Fut>(
    address: &str,
    data: Value,
    handler: F,
) -> Result<Value, IIIError>
where
    F: FnOnce(HttpRequest, HttpResponse) -> Fut,
    Fut: Future<Output = Result<Value, IIIError>>,
{
    let (request, response) = split(address, data)?;
    let completion = response.completion();
    let outcome = AssertUnwindSafe(async move { handler(request, response).await })
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(IIIError::Handler(panic_message(&*panic))));
    if let Err(error) = &outcome {
        tracing::debug!(%error, "an HTTP handler failed");
    }
    completion.finish(outcome).await
}

/// The request and the response of an HTTP invocation's `data`.
fn split(address: &str, data: Value) -> Result<(HttpRequest, HttpResponse), IIIError> {
    let Value::Object(mut fields) = data else {
        return Err(IIIError::Protocol(
            "an HTTP invocation's data must be a JSON object".into(),
        ));
    };
    let response_ref = request::channel_ref(&fields, FIELD_RESPONSE, ChannelDirection::Write)?;
    let request = HttpRequest::from_fields(address, &mut fields)?;
    Ok((request, HttpResponse::new(address, &response_ref)))
}

#[cfg(test)]
mod tests;
