//! Functions the engine calls over HTTP instead of over a worker's socket: the `invocation`
//! of a `registerfunction` message, in the published clients' shape
//! (`{url, method?, timeout_ms?, headers?, auth?}`), and the names of the headers the engine
//! sends with each call. Read here once, so the SDK refuses a malformed one at registration
//! and the engine reads exactly what the SDK accepted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Header: the called function's id.
pub const HEADER_FUNCTION: &str = "x-iii-function-path";
/// Header: the call's id (a fresh UUID per call).
pub const HEADER_INVOCATION: &str = "x-iii-invocation-id";
/// Header: the call's time, in Unix seconds (part of what an HMAC signs).
pub const HEADER_TIMESTAMP: &str = "x-iii-timestamp";
/// Header: `sha256=<hex HMAC-SHA256 of "<timestamp>:<base64 of the body>">` (HMAC auth).
pub const HEADER_SIGNATURE: &str = "x-iii-signature";
/// How long a call waits for the response when the config gives no `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// How the engine calls a function over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInvocation {
    /// `http://` or `https://` URL the call goes to.
    pub url: String,
    /// `GET`, `POST` (the default), `PUT`, `PATCH` or `DELETE`.
    #[serde(default = "default_method")]
    pub method: HttpMethod,
    /// How long the call may take, in milliseconds ([`DEFAULT_TIMEOUT_MS`] when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// How the call authenticates; every secret is named by an environment variable of the
    /// engine, never sent by the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HttpAuth>,
}

/// The methods an HTTP-invoked function may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET (the payload is still sent as the body).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

fn default_method() -> HttpMethod {
    HttpMethod::Post
}

impl HttpMethod {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// How an HTTP-invoked function's calls authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// Signs each call: [`HEADER_SIGNATURE`] with the secret in env var `secret_key`.
    Hmac {
        /// The environment variable holding the shared secret.
        secret_key: String,
    },
    /// `Authorization: Bearer <token>`, the token in env var `token_key`.
    Bearer {
        /// The environment variable holding the token.
        token_key: String,
    },
    /// Header `header` set to the key in env var `value_key`.
    ApiKey {
        /// The header's name.
        header: String,
        /// The environment variable holding the key.
        value_key: String,
    },
}

/// Headers a config may not set: they frame the request or belong to the connection, so
/// setting them could make the engine send something else than one well-formed request.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// Whether `name` is an HTTP header name (RFC 9110 token characters).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be a header value (visible ASCII, spaces and tabs; no line breaks).
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

impl HttpInvocation {
    /// Reads an `invocation` value and checks it once for every reader (the SDK at
    /// registration, the engine before calling): an `http://` or `https://` URL with a host and
    /// no user name or password in it, header names and values that are valid HTTP and none of
    /// the headers that frame a request. The error says what is wrong.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let invalid = |why: String| format!("invalid HTTP invocation config: {why}");
        let invocation: Self =
            serde_json::from_value(value.clone()).map_err(|error| invalid(error.to_string()))?;
        let rest = match invocation.url.split_once("://") {
            Some(("http" | "https", rest)) => rest,
            _ => {
                return Err(invalid(format!(
                    "url {:?} is not an http:// or https:// URL",
                    invocation.url
                )));
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(invalid(format!("url {:?} has no host", invocation.url)));
        }
        if authority.contains('@') {
            return Err(invalid(
                "the url may not carry a user name or password (use auth)".into(),
            ));
        }
        for (name, value) in invocation.headers.iter().flatten() {
            if !is_header_name(name) || !is_header_value(value) {
                return Err(invalid(format!(
                    "header {name:?} is not a valid HTTP header"
                )));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(invalid(format!(
                    "header {name:?} is set by the engine itself"
                )));
            }
        }
        Ok(invocation)
    }

    /// The call's timeout in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
            .filter(|ms| *ms > 0)
            .unwrap_or(DEFAULT_TIMEOUT_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_published_shape() {
        let given = json!({"url": "https://fn.example/x", "timeout_ms": 500,
            "headers": {"a": "b"}, "auth": {"type": "api_key", "header": "x-key", "value_key": "KEY"}});
        let invocation = HttpInvocation::from_value(&given).expect("valid");
        assert_eq!(invocation.method, HttpMethod::Post);
        assert_eq!(invocation.timeout_ms(), 500);
        let auth = HttpAuth::ApiKey {
            header: "x-key".into(),
            value_key: "KEY".into(),
        };
        assert_eq!(invocation.auth, Some(auth));
        let bare = HttpInvocation::from_value(&json!({"url": "http://h/", "method": "GET"}));
        assert_eq!(bare.expect("valid").timeout_ms(), DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn refuses_what_cannot_be_called() {
        for bad in [
            json!({"method": "POST"}),
            json!({"url": "ftp://h/x"}),
            json!({"url": "h/x"}),
            json!({"url": "http://h/", "method": "TRACE"}),
            json!({"url": "http://h/", "auth": {"type": "basic"}}),
            json!({"url": "http://h/", "surprise": 1}),
            json!({"url": "http:///x"}),
            json!({"url": "https://user:secret@h/x"}),
            json!({"url": "http://h/", "headers": {"content-length": "5"}}),
            json!({"url": "http://h/", "headers": {"Transfer-Encoding": "chunked"}}),
            json!({"url": "http://h/", "headers": {"x-a": "b\r\nx-injected: 1"}}),
            json!({"url": "http://h/", "headers": {"bad name": "v"}}),
        ] {
            assert!(HttpInvocation::from_value(&bad).is_err(), "{bad}");
        }
    }
}
