//! The HTTP trigger's wire shapes: the trigger type and its configuration keys, the fields of
//! the invocation data the engine sends for a request, and the control messages a function
//! sends on the response channel before the body (docs/PROTOCOL.md §6).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The trigger type of HTTP routes.
pub const TRIGGER_TYPE: &str = "http";
/// Trigger config key: the route pattern, e.g. `/files/:filename`.
pub const CONFIG_API_PATH: &str = "api_path";
/// Trigger config key: the method, e.g. `GET`.
pub const CONFIG_HTTP_METHOD: &str = "http_method";

/// Invocation data: the request method.
pub const FIELD_METHOD: &str = "method";
/// Invocation data: the route pattern that matched.
pub const FIELD_PATH: &str = "path";
/// Invocation data: the path as requested.
pub const FIELD_RAW_PATH: &str = "raw_path";
/// Invocation data: the `:name` segments, percent-decoded.
pub const FIELD_PATH_PARAMS: &str = "path_params";
/// Invocation data: query parameters (a repeated key gives a list).
pub const FIELD_QUERY_PARAMS: &str = "query_params";
/// Invocation data: headers, lower-case names (a repeated header gives a list).
pub const FIELD_HEADERS: &str = "headers";
/// Invocation data: the parsed JSON body, or `null`.
pub const FIELD_BODY: &str = "body";
/// Invocation data: the read ref of the raw request body.
pub const FIELD_REQUEST_BODY: &str = "request_body";
/// Invocation data: the write ref of the response.
pub const FIELD_RESPONSE: &str = "response";
/// Invocation data: the trigger that matched (`{type, path, method}`).
pub const FIELD_TRIGGER: &str = "trigger";

/// Plain-result key: the status code (also accepted as `statusCode`).
pub const RESULT_STATUS_CODE: &str = "status_code";
/// Plain-result key: the status code, camel-cased as the published Node client writes it.
pub const RESULT_STATUS_CODE_CAMEL: &str = "statusCode";

/// Plain-result key: the headers (`{"name": "value" | [values]}` or `["Name: value"]`).
pub const RESULT_HEADERS: &str = "headers";
/// Plain-result key: the body (a string is sent as text, other JSON as JSON).
pub const RESULT_BODY: &str = "body";

/// A control message on the response channel: a text frame sent before the first body byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseControl {
    /// Sets the status code.
    SetStatus {
        /// The status code (the engine ignores one outside 100..=999).
        status_code: u16,
    },
    /// Adds headers: `{"name": "value" | ["v1", "v2"]}` (the engine also accepts a list of
    /// `"Name: value"` strings).
    SetHeaders {
        /// The headers.
        headers: Value,
    },
}

impl ResponseControl {
    /// `set_status` with `status_code`.
    pub fn status(status_code: u16) -> Self {
        Self::SetStatus { status_code }
    }

    /// `set_headers` from name/value pairs: names in lower case, a name given more than once
    /// keeps every value (as a list). `None` when there are no headers.
    pub fn headers<I, K, V>(headers: I) -> Option<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut names = Map::new();
        for (name, value) in headers {
            let name = name.as_ref().to_ascii_lowercase();
            let value = Value::String(value.as_ref().to_string());
            match names.get_mut(&name) {
                None => {
                    names.insert(name, value);
                }
                Some(Value::Array(values)) => values.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
            }
        }
        (!names.is_empty()).then_some(Self::SetHeaders {
            headers: Value::Object(names),
        })
    }

    /// The message as the JSON text of its frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a control message; `None` for text that is not one.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Whether `segment` is one plain path segment: not empty, not `.` or `..`, and without `/`,
/// `\\` or NUL — a name that, joined to a directory, stays one entry of it. The engine refuses
/// a path parameter that is not one; the SDKs' `send_file` refuses such a file name.
pub fn is_plain_segment(segment: &str) -> bool {
    !matches!(segment, "" | "." | "..") && !segment.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_messages_have_the_wire_shape() {
        let status: Value = serde_json::from_str(&ResponseControl::status(206).to_json()).unwrap();
        assert_eq!(status, json!({"type": "set_status", "status_code": 206}));
        let headers =
            ResponseControl::headers([("Set-Cookie", "a"), ("set-cookie", "b"), ("X", "1")]);
        let headers: Value = serde_json::from_str(&headers.unwrap().to_json()).unwrap();
        assert_eq!(
            headers,
            json!({"type": "set_headers", "headers": {"set-cookie": ["a", "b"], "x": "1"}})
        );
        assert!(ResponseControl::headers(Vec::<(&str, &str)>::new()).is_none());
    }

    #[test]
    fn parsing_refuses_what_is_not_a_control_message() {
        assert_eq!(
            ResponseControl::parse(r#"{"type":"set_status","status_code":201}"#),
            Some(ResponseControl::status(201))
        );
        assert_eq!(
            ResponseControl::parse(r#"{"type":"set_status","status_code":"x"}"#),
            None
        );
        assert_eq!(ResponseControl::parse(r#"{"type":"other"}"#), None);
        assert_eq!(ResponseControl::parse("not json"), None);
    }
}
