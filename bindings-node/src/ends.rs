//! Values with live channel ends, handed to JavaScript: the JSON text of a payload plus every
//! ref in it made live by the core ([`iii_sdk::binding::live_ends`]), each with its path, so
//! the JavaScript layer parses the text and puts the ends in place without walking it.

use iii_sdk::PathStep;
use iii_sdk::binding::{FoundEnd, LiveEnd, live_ends};
use iii_sdk::channel::WriteQueue;
use napi::bindgen_prelude::*;
use serde_json::Value;

use crate::channel::{NativeReader, NativeWriter};

/// A payload as `{ json, ends: [{ path, end }], metadata?, call? }` for JavaScript
/// (`metadata`: the JSON text of what the caller sent beside the input; `call`: the JSON text
/// of `{ invocation_id?, traceparent?, tracestate?, baggage? }`).
pub struct WithEnds {
    json: String,
    ends: Vec<FoundEnd>,
    metadata: Option<String>,
    call: Option<String>,
}

impl WithEnds {
    /// `value` with its refs made live on the engine at `address`.
    pub(crate) fn new(address: &str, value: &Value) -> Self {
        Self {
            json: value.to_string(),
            ends: live_ends(address, value),
            metadata: None,
            call: None,
        }
    }

    /// The same, carrying the metadata of the call being served (if any).
    pub(crate) fn with_metadata(mut self, metadata: Option<&Value>) -> Self {
        self.metadata = metadata.map(Value::to_string);
        self
    }

    /// The same, carrying what JavaScript's `currentInvocation()` tells of the call being
    /// served: its id and W3C trace context (the fields it has).
    pub(crate) fn with_call(
        mut self,
        invocation_id: Option<&str>,
        trace: &iii_sdk::TraceContext,
    ) -> Self {
        let mut fields = serde_json::Map::new();
        let present = [
            ("invocation_id", invocation_id),
            ("traceparent", trace.traceparent.as_deref()),
            ("tracestate", trace.tracestate.as_deref()),
            ("baggage", trace.baggage.as_deref()),
        ];
        for (name, value) in present {
            if let Some(value) = value {
                fields.insert(name.into(), Value::from(value));
            }
        }
        self.call = Some(Value::Object(fields).to_string());
        self
    }
}

impl ToNapiValue for WithEnds {
    unsafe fn to_napi_value(raw_env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let mut object = Object::new(&env)?;
        object.set_named_property("json", value.json)?;
        let mut ends = Vec::with_capacity(value.ends.len());
        for found in value.ends {
            let mut entry = Object::new(&env)?;
            let path: Vec<Either<String, u32>> = found
                .path
                .into_iter()
                .map(|step| match step {
                    PathStep::Key(key) => Either::A(key),
                    PathStep::Index(index) => Either::B(index as u32),
                })
                .collect();
            entry.set_named_property("path", path)?;
            match found.end {
                LiveEnd::Reader(reader) => {
                    entry.set_named_property("end", NativeReader::from_core(reader))?
                }
                LiveEnd::Writer(writer) => entry.set_named_property(
                    "end",
                    NativeWriter::from_queue(WriteQueue::over(writer)),
                )?,
            }
            ends.push(entry);
        }
        object.set_named_property("ends", ends)?;
        if let Some(metadata) = value.metadata {
            object.set_named_property("metadata", metadata)?;
        }
        if let Some(call) = value.call {
            object.set_named_property("call", call)?;
        }
        // SAFETY: `object` was created in `raw_env`, on this (the JavaScript) thread.
        unsafe { Object::to_napi_value(raw_env, object) }
    }
}

/// Every channel ref in `json` (a payload as JSON text), at any depth, as the JSON text of
/// `[[path, ref], …]` with paths such as `items[0].writer` (the core finds them).
#[napi_derive::napi]
pub fn extract_channel_refs(json: String) -> Result<String> {
    let value: Value = serde_json::from_str(&json)
        .map_err(|error| crate::errors::invalid(format!("not JSON: {error}")))?;
    let found: Vec<(String, iii_sdk::StreamChannelRef)> =
        iii_sdk::protocol::find_channel_refs(&value)
            .into_iter()
            .map(|(path, channel_ref)| (iii_sdk::protocol::channel::path_text(&path), channel_ref))
            .collect();
    serde_json::to_string(&found).map_err(|error| crate::errors::invalid(error.to_string()))
}

/// Whether `json` (a value as JSON text) is a channel ref: `channel_id`, `access_key`, and a
/// `direction` of `read` or `write`.
#[napi_derive::napi]
pub fn is_channel_ref(json: String) -> bool {
    serde_json::from_str::<Value>(&json)
        .ok()
        .and_then(|value| iii_sdk::StreamChannelRef::from_value(&value))
        .is_some()
}
