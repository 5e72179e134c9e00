//! The request half of an HTTP invocation: the `data` the engine's HTTP server sends
//! (docs/PROTOCOL.md §6), parsed leniently into an [`HttpRequest`].
//!
//! Only the channel refs are required; every other field defaults when it is missing or has an
//! unexpected shape, so an engine that adds or omits optional fields does not break handlers.

use std::borrow::Cow;
use std::collections::HashMap;

use iii_protocol::{ChannelDirection, StreamChannelRef};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use iii_protocol::http::{
    FIELD_BODY, FIELD_HEADERS, FIELD_METHOD, FIELD_PATH, FIELD_PATH_PARAMS, FIELD_QUERY_PARAMS,
    FIELD_RAW_PATH, FIELD_REQUEST_BODY, FIELD_TRIGGER,
};

use crate::binding::ref_at;
use crate::{ChannelReader, IIIError};

/// Names with one or more values each, in the order they came: query parameters and headers.
/// A name given once maps to a one-element list; a name with no value is left out, so every
/// list holds at least one value.
pub type MultiMap = HashMap<String, Vec<String>>;

/// An HTTP request routed to a function by an `http` trigger.
///
/// The body is available twice: parsed in [`body`](Self::body) when it was JSON, and always as
/// a byte stream in [`request_body`](Self::request_body) (read it for uploads and non-JSON
/// bodies; leaving it unread is fine).
#[derive(Debug)]
pub struct HttpRequest {
    /// The request method, upper case (`GET`, `POST`, …).
    pub method: String,
    /// The route pattern the request matched, as registered (`/files/:filename`).
    pub path: String,
    /// The path as the client sent it (`/files/report.pdf`), when the engine reports it.
    pub raw_path: Option<String>,
    /// Values of the pattern's `:name` segments, by name.
    pub path_params: HashMap<String, String>,
    /// Query parameters (`?tag=a&tag=b` gives `tag → ["a", "b"]`); see [`query`](Self::query).
    pub query_params: MultiMap,
    /// Request headers, names in lower case; see [`header`](Self::header).
    pub headers: MultiMap,
    /// The body parsed as JSON when the request was `application/json`, else `Value::Null`.
    pub body: Value,
    /// The trigger that matched, as the engine describes it (`{"type", "path", "method"}`),
    /// or `Value::Null`.
    pub trigger: Value,
    /// The raw request body as a stream (the engine writes it in chunks of at most 64 KiB,
    /// then ends the stream).
    pub request_body: ChannelReader,
}

impl HttpRequest {
    /// Parses the invocation's fields (the `response` ref is taken by the caller). Moves the
    /// JSON body out of `fields` instead of copying it.
    pub(super) fn from_fields(
        address: &str,
        fields: &mut Map<String, Value>,
    ) -> Result<Self, IIIError> {
        let body_ref = channel_ref(fields, FIELD_REQUEST_BODY, ChannelDirection::Read)?;
        let trigger = fields.remove(FIELD_TRIGGER).unwrap_or(Value::Null);
        let from_trigger = |key: &str| trigger.get(key).and_then(Value::as_str);
        let method = text(fields, FIELD_METHOD)
            .or_else(|| from_trigger(FIELD_METHOD))
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let path = text(fields, FIELD_PATH)
            .or_else(|| from_trigger(FIELD_PATH))
            .unwrap_or_default()
            .to_string();
        let raw_path = text(fields, FIELD_RAW_PATH).map(str::to_string);
        Ok(Self {
            method,
            path,
            raw_path,
            path_params: single_values(fields.remove(FIELD_PATH_PARAMS), FIELD_PATH_PARAMS),
            query_params: multi_values(
                fields.remove(FIELD_QUERY_PARAMS),
                FIELD_QUERY_PARAMS,
                false,
            ),
            headers: multi_values(fields.remove(FIELD_HEADERS), FIELD_HEADERS, true),
            body: fields.remove(FIELD_BODY).unwrap_or(Value::Null),
            trigger,
            request_body: ChannelReader::new(address, &body_ref),
        })
    }

    /// The value of the path segment `:name`.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params.get(name).map(String::as_str)
    }

    /// The first value of the query parameter `name` (case-sensitive).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query_all(name).first().map(String::as_str)
    }

    /// Every value of the query parameter `name`, in order (empty if absent).
    pub fn query_all(&self, name: &str) -> &[String] {
        self.query_params.get(name).map_or(&[], Vec::as_slice)
    }

    /// The first value of the header `name`, whatever the case of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().map(String::as_str)
    }

    /// Every value of the header `name` (case-insensitive), in order (empty if absent).
    pub fn header_all(&self, name: &str) -> &[String] {
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        self.headers.get(name.as_ref()).map_or(&[], Vec::as_slice)
    }

    /// The request as the plain JSON object a scripting language's handler sees (`method`,
    /// `path`, `raw_path`, `path_params`, `query_params` and `headers` with a single value as a
    /// string and repeated ones as a list, `body`, `trigger`), and its body stream: how the
    /// Python and Node helpers build their request objects.
    pub fn into_plain(self) -> (Value, ChannelReader) {
        let values = |map: MultiMap| -> Value {
            map.into_iter()
                .map(|(name, mut values)| {
                    let value = match values.len() {
                        1 => Value::String(values.remove(0)),
                        _ => Value::from(values),
                    };
                    (name, value)
                })
                .collect::<Map<String, Value>>()
                .into()
        };
        let mut plain = Map::new();
        plain.insert(FIELD_METHOD.into(), self.method.into());
        plain.insert(FIELD_PATH.into(), self.path.into());
        if let Some(raw_path) = self.raw_path {
            plain.insert(FIELD_RAW_PATH.into(), raw_path.into());
        }
        let params: Map<String, Value> = self
            .path_params
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        plain.insert(FIELD_PATH_PARAMS.into(), params.into());
        plain.insert(FIELD_QUERY_PARAMS.into(), values(self.query_params));
        plain.insert(FIELD_HEADERS.into(), values(self.headers));
        plain.insert(FIELD_BODY.into(), self.body);
        if !self.trigger.is_null() {
            plain.insert(FIELD_TRIGGER.into(), self.trigger);
        }
        (Value::Object(plain), self.request_body)
    }

    /// The JSON body deserialized into `T` (a missing or non-JSON body is `null`).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, IIIError> {
        Ok(T::deserialize(&self.body)?)
    }
}

/// The channel ref under `key` of an HTTP invocation's fields, which must exist and point at
/// the `direction` end.
pub(super) fn channel_ref(
    fields: &Map<String, Value>,
    key: &str,
    direction: ChannelDirection,
) -> Result<StreamChannelRef, IIIError> {
    let Some(value) = fields.get(key).filter(|value| !value.is_null()) else {
        return Err(IIIError::Protocol(format!(
            "the HTTP invocation has no `{key}` channel ref (is the function bound to an http \
             trigger?)"
        )));
    };
    ref_at(value, None, direction)
        .map_err(|error| IIIError::Protocol(format!("`{key}` of the HTTP invocation: {error}")))
}

fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    fields.get(key).and_then(Value::as_str)
}

/// A string, number or boolean as text; anything else is not a parameter value.
fn scalar(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The object's entries, or none (logged) when `value` is present but not an object.
fn entries(value: Option<Value>, what: &str) -> Map<String, Value> {
    match value {
        Some(Value::Object(entries)) => entries,
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            tracing::debug!(field = what, value = %other, "ignoring a malformed HTTP request field");
            Map::new()
        }
    }
}

/// `{"name": "value"}` with single values (path params).
fn single_values(value: Option<Value>, what: &str) -> HashMap<String, String> {
    entries(value, what)
        .into_iter()
        .filter_map(|(name, value)| scalar(value).map(|value| (name, value)))
        .collect()
}

/// `{"name": "value" | ["value", …]}` (query params, headers), names lower-cased if `lower`
/// (then names differing only in case are merged).
fn multi_values(value: Option<Value>, what: &str, lower: bool) -> MultiMap {
    let mut map = MultiMap::new();
    for (name, value) in entries(value, what) {
        let values: Vec<String> = match value {
            Value::Array(items) => items.into_iter().filter_map(scalar).collect(),
            single => scalar(single).into_iter().collect(),
        };
        if values.is_empty() {
            continue;
        }
        let name = if lower {
            name.to_ascii_lowercase()
        } else {
            name
        };
        map.entry(name).or_default().extend(values);
    }
    map
}
