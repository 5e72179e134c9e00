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
use crate::ends::WithEnds;
use crate::errors::invalid;
use crate::promise::settle;

/// The response of an HTTP invocation.
#[napi]
pub struct NativeHttpResponse {
    inner: Arc<HttpResponse>,
}

impl NativeHttpResponse {
    /// Wraps the core's response.
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
    /// Sets the status code given as JSON (effective before the first body byte; a value that
    /// is no status code is ignored, as the engine ignores it).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn status<'env>(&self, env: &'env Env, status_json: String) -> Result<Object<'env>> {
        let status = serde_json::from_str(&status_json).unwrap_or(Value::Null);
        settle(
            env,
            self.inner.queue_status_value(&status).wait(),
            |_, ()| Ok(()),
        )
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
        NativeWriter::from_queue(self.inner.queue())
    }

    /// Sends the file `name` from `directory` as the whole response and ends it (see
    /// [`HttpResponse::send_file`]: 400 for a name that is not one plain file name, 404 for
    /// no such file inside `directory`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send_file<'env>(
        &self,
        env: &'env Env,
        directory: String,
        name: String,
    ) -> Result<Object<'env>> {
        let response = self.inner.clone();
        let sending = async move { response.send_file(directory, &name).await };
        settle(env, sending, |_, ()| Ok(()))
    }
}

/// What an `http()` function receives: `{ http: true, request, body, response }` — the
/// request as plain JSON with any refs in it made live (`{ json, ends }`), its body reader and
/// the response.
pub struct HttpInvocation {
    /// The request.
    pub(crate) request: WithEnds,
    /// The request body's reader.
    pub(crate) body: NativeReader,
    /// The response.
    pub(crate) response: NativeHttpResponse,
}

impl ToNapiValue for HttpInvocation {
    unsafe fn to_napi_value(raw_env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let mut object = Object::new(&Env::from_raw(raw_env))?;
        object.set_named_property("http", true)?;
        object.set_named_property("request", value.request)?;
        object.set_named_property("body", value.body)?;
        object.set_named_property("response", value.response)?;
        // SAFETY: `object` was created in `raw_env`, on this (the JavaScript) thread.
        unsafe { Object::to_napi_value(raw_env, object) }
    }
}
