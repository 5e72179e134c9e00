//! What happens between a worker's request head and its upgrade: the browser checks
//! ([`super::origin`]), and, on a listener with an `auth_function_id`, the call of that
//! function with the request's headers, query and address. Its error refuses the upgrade with
//! 401; its result becomes the connection's [`Session`]. All of it before the upgrade, so a
//! refused client never holds a socket the engine serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use iii_protocol::ErrorBody;
use iii_protocol::codes::{AUTH_ERROR, FUNCTION_NOT_FOUND, INVOCATION_STOPPED, TIMEOUT};
use serde_json::{Map, Value, json};

use super::{Grant, ListenerPolicy, Session};
use crate::state::EngineState;

/// How long an auth function may take to answer.
const AUTH_WAIT: Duration = Duration::from_secs(10);

/// Headers past this many are not parsed (the request is refused with 431).
const MAX_HEADERS: usize = 128;

/// A worker's upgrade request, as read from its head.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UpgradeHead {
    /// The request path, without the query.
    pub(crate) path: String,
    /// The raw query (after `?`), not decoded.
    pub(crate) query: String,
    /// Header names in lower case with their values (visible ASCII only), in order.
    pub(crate) headers: Vec<(String, String)>,
}

impl UpgradeHead {
    /// Parses a complete request head; `None` when it is not one.
    pub(crate) fn parse(head: &[u8]) -> Option<Self> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut slots);
        match request.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        // The browser checks read these two: one that is not plain text is no request.
        let unreadable = |header: &httparse::Header<'_>| {
            let checked = ["origin", "host"]
                .iter()
                .any(|n| header.name.eq_ignore_ascii_case(n));
            checked
                && !header
                    .value
                    .iter()
                    .all(|b| *b == b'\t' || (b' '..=b'~').contains(b))
        };
        if request.headers.iter().any(unreadable) {
            return None;
        }
        let target = request.path.unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers = (request.headers.iter())
            .filter_map(|header| {
                let value = std::str::from_utf8(header.value).ok()?;
                let visible = value
                    .bytes()
                    .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
                visible.then(|| (header.name.to_ascii_lowercase(), value.trim().to_string()))
            })
            .collect();
        Some(Self {
            path: path.to_string(),
            query: query.to_string(),
            headers,
        })
    }

    /// The last value of header `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter().rev())
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether an auth function admits this upgrade: anything but a channel socket (which
    /// carries its own keys). Any other target, however written, goes through auth; the
    /// upgrade then refuses a worker socket the auth step did not admit.
    pub(crate) fn is_worker_socket(&self) -> bool {
        !self.path.starts_with("/ws/channels/")
    }

    /// The auth function's input: `headers` (lower-case names; the last of repeated ones),
    /// `query_params` (each name with all its values, not decoded, as the published engine
    /// passes them) and `ip_address`.
    pub(crate) fn auth_input(&self, peer: SocketAddr) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            headers.insert(name.clone(), Value::from(value.as_str()));
        }
        let mut query = Map::new();
        for pair in self.query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name.is_empty() {
                continue;
            }
            let values = query
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(values) = values {
                values.push(Value::from(value));
            }
        }
        json!({
            "headers": headers,
            "query_params": query,
            "ip_address": peer.ip().to_string(),
        })
    }
}

/// Why an upgrade is refused before it happens: the status and the error body to send.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The HTTP status of the answer.
    pub(crate) status: StatusCode,
    /// Its JSON body.
    pub(crate) error: ErrorBody,
}

impl Refusal {
    /// A refusal with `status`, `code` and `message`.
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: ErrorBody::new(code, message),
        }
    }
}

/// The session a worker socket gets on a listener with `policy`: open when the listener has
/// no auth function, else what that function grants (its error refuses the upgrade).
pub(crate) async fn authenticate(
    shared: &EngineState,
    policy: &Arc<ListenerPolicy>,
    head: &UpgradeHead,
    peer: SocketAddr,
) -> Result<Session, Refusal> {
    let auth = (policy.rbac.as_ref()).and_then(|rbac| rbac.auth_function_id.as_deref());
    let Some(auth) = auth else {
        return Ok(Session::open(policy.clone()));
    };
    let answer =
        crate::forward::call_for_engine(shared, auth, head.auth_input(peer), AUTH_WAIT).await;
    let granted = match answer {
        Ok(granted) => granted,
        Err(error) => {
            tracing::info!(%peer, code = %error.code, message = %error.message, "worker refused by the auth function");
            let unavailable = [FUNCTION_NOT_FOUND, TIMEOUT, INVOCATION_STOPPED];
            let status = if unavailable.contains(&error.code.as_str()) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            return Err(Refusal::new(status, AUTH_ERROR, error.message));
        }
    };
    if granted.is_null() {
        let why = "auth function returned no result";
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, AUTH_ERROR, why));
    }
    match serde_json::from_value::<Grant>(granted) {
        Ok(grant) => Ok(Session {
            policy: policy.clone(),
            grant,
        }),
        Err(error) => {
            let why = format!("the auth function's result is not a grant: {error}");
            tracing::warn!(function_id = %auth, %why);
            Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                AUTH_ERROR,
                why,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_input_has_the_published_shape() {
        let head = UpgradeHead::parse(
            b"GET /?token=a%20b&tag=x&tag=y&flag&=z HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\nX-Twice: 1\r\nx-twice: 2\r\n\r\n",
        )
        .expect("a head");
        assert!(head.is_worker_socket());
        let peer: SocketAddr = "10.1.2.3:5555".parse().expect("addr");
        assert_eq!(
            head.auth_input(peer),
            json!({
                "headers": {"host": "h", "authorization": "Bearer t", "x-twice": "2"},
                "query_params": {"token": ["a%20b"], "tag": ["x", "y"], "flag": [""]},
                "ip_address": "10.1.2.3",
            })
        );
        assert!(UpgradeHead::parse(b"GET / HTTP/1.1\r\nHost: h\r\n").is_none());
        let channel = UpgradeHead::parse(b"GET /ws/channels/x?key=k HTTP/1.1\r\n\r\n");
        assert!(channel.is_some_and(|head| !head.is_worker_socket()));
        for target in ["http://x/", "/#x", "//", "/otel/x", "*"] {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            let parsed = UpgradeHead::parse(raw.as_bytes());
            assert!(
                parsed.is_some_and(|head| head.is_worker_socket()),
                "{target}"
            );
        }
        let bad_origin = b"GET / HTTP/1.1\r\nOrigin: \xffevil\r\n\r\n";
        assert!(
            UpgradeHead::parse(bad_origin).is_none(),
            "an unreadable Origin is no request"
        );
    }
}
