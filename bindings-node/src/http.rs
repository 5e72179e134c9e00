//! `NativeHttpResponse`: the core's [`HttpResponse`] for JavaScript, and the invocation an
//! `http()` function receives. The core parses the request, speaks the response channel's
//! control messages and ends the response after the handler ([`iii_sdk::http::serve_returning`]);
//! the JavaScript layer only gives them Node names and streams.

use std::sync::Arc;

use iii_sdk::HttpResponse;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

use crate::channel::{NativeReader, NativeWriter};
use crate::errors::invalid;
use crate::promise::settle;

/// The response of an HTTP invocation.
#[napi]
pub struct NativeHttpResponse {
    inner: Arc<HttpResponse>,
}

impl NativeHttpResponse {
    pub(crate) fn new(inner: HttpResponse) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

/// Header pairs from JSON `{ name: value | [values] }`.
fn header_pairs(json: &str) -> Result<Vec<(String, String)>> {
    serde_json::from_str::<Value>(json)
        .ok()
        .as_ref()
        .and_then(iii_sdk::http::header_pairs)
        .ok_or_else(|| invalid("iii-sdk: headers() takes an object { name: value | [values] }"))
}

#[napi]
impl NativeHttpResponse {
    /// Sets the status code (effective before the first body byte).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn status<'env>(&self, env: &'env Env, status_code: u32) -> Result<Object<'env>> {
        let code = u16::try_from(status_code)
            .map_err(|_| invalid(format!("iii-sdk: {status_code} is not a status code")))?;
        settle(env, self.inner.queue_status(code).wait(), |_, ()| Ok(()))
    }

    /// Sets headers given as JSON `{ name: value | [values] }` (effective before the first
    /// body byte).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn headers<'env>(&self, env: &'env Env, headers_json: String) -> Result<Object<'env>> {
        let pairs = header_pairs(&headers_json)?;
        settle(env, self.inner.queue_headers(pairs).wait(), |_, ()| Ok(()))
    }

    /// The body's writer (its operations in order with status, headers and the end).
    #[napi]
    pub fn writer(&self) -> NativeWriter {
        NativeWriter::from_queue(self.inner.queue(), self.inner.channel_ref())
    }

    /// Ends the response; resolves once the engine holds the whole body.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        settle(env, self.inner.queue_close().wait(), |_, ()| Ok(()))
    }
}

/// What an `http()` function receives: `{ http: true, json, body, response }` — the request
/// as plain JSON, its body reader and the response.
pub struct HttpInvocation {
    /// The request as plain JSON text.
    pub(crate) request_json: String,
    /// The request body's reader.
    pub(crate) body: NativeReader,
    /// The response.
    pub(crate) response: NativeHttpResponse,
}

impl HttpInvocation {
    pub(crate) fn fill(self, object: &mut Object<'_>) -> Result<()> {
        object.set_named_property("http", true)?;
        object.set_named_property("json", self.request_json)?;
        object.set_named_property("body", self.body)?;
        object.set_named_property("response", self.response)?;
        Ok(())
    }
}
