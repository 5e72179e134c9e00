//! The response side of an HTTP trigger (docs/PROTOCOL.md §6): control messages on the response
//! channel set the status and headers, the first body byte (or the channel's end) sends
//! them, and every later binary frame goes out as a chunk of the body. A function may instead
//! return a plain result, which becomes the whole response.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use iii_protocol::{EndStatus, ErrorBody};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::body::{HttpBody, StreamBody};
use crate::channels::Channel;
use crate::channels::buffer::{BufferRx, Frame};
use crate::channels::registry::ChannelRegistry;
use crate::invocations::Outcome;
use iii_protocol::codes::{
    EXPIRED, INVALID_RESPONSE, INVOCATION_STOPPED, RESPONSE_ABORTED, TIMEOUT, WORKER_BUSY,
    WRITER_LOST,
};
use iii_protocol::http::{
    RESULT_BODY, RESULT_HEADERS, RESULT_STATUS_CODE, RESULT_STATUS_CODE_CAMEL, ResponseControl,
};

/// One request's channels and call, cleaned up when the request is done, however it ends:
/// the response channel is finished (a writer still writing gets `reader_closed`), and the
/// request-body channel is given up on once the function has returned, if nobody read it.
pub(crate) struct Exchange {
    /// The channel registry, which retires both channels.
    pub(crate) channels: Arc<ChannelRegistry>,
    /// The response channel; the engine holds its reader end.
    pub(crate) response: Arc<Channel>,
    /// The request-body channel; the engine holds its writer end.
    pub(crate) request: Arc<Channel>,
    /// The function's answer, while it is awaited.
    pub(crate) outcome: Option<oneshot::Receiver<Outcome>>,
}

impl Exchange {
    /// Waits for the function's answer (a lost answer counts as a stopped invocation).
    async fn next_outcome(&mut self) -> Outcome {
        let Some(receiver) = self.outcome.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = receiver.await.unwrap_or_else(|_| {
            Err(ErrorBody::new(
                INVOCATION_STOPPED,
                "the invocation was stopped before it answered",
            ))
        });
        self.outcome = None;
        outcome
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if let Some(status) = self.response.reader_finished() {
            self.channels.retire(&self.response, status);
        }
        let (channels, request) = (self.channels.clone(), self.request.clone());
        let abandon = move || {
            if let Some(status) = request.abandon_reader() {
                channels.retire(&request, status);
            }
        };
        match (self.outcome.take(), tokio::runtime::Handle::try_current()) {
            // The function may still read the request body until it returns.
            (Some(outcome), Ok(runtime)) => {
                runtime.spawn(async move {
                    let _ = outcome.await;
                    abandon();
                });
            }
            _ => abandon(),
        }
    }
}

/// Status and headers gathered from control messages.
#[derive(Default)]
struct Head {
    status: Option<StatusCode>,
    headers: HeaderMap,
}

impl Head {
    /// Applies one text message from the response channel.
    fn apply(&mut self, text: &str) {
        match ResponseControl::parse(text) {
            Some(ResponseControl::SetStatus { status_code }) => {
                match StatusCode::from_u16(status_code) {
                    Ok(status) => self.status = Some(status),
                    Err(_) => tracing::debug!(status_code, "ignoring an invalid status"),
                }
            }
            Some(ResponseControl::SetHeaders { headers }) => {
                add_headers(&mut self.headers, &headers)
            }
            None => tracing::debug!(
                text,
                "ignoring a response message that is not a control message"
            ),
        }
    }

    fn into_response(self, body: HttpBody) -> Response<HttpBody> {
        let mut response = Response::new(body);
        *response.status_mut() = self.status.unwrap_or(StatusCode::OK);
        *response.headers_mut() = self.headers;
        response
    }
}

/// Headers the server manages itself; a function's values for them are dropped.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "te" | "trailer"
    )
}

/// Adds headers given as an object (`{"name": "value" | ["v1", "v2"]}`) or a list of
/// `"Name: value"` strings; later values of a name replace earlier ones.
fn add_headers(map: &mut HeaderMap, headers: &Value) {
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    match headers {
        Value::Object(object) => {
            for (name, value) in object {
                let values = match value {
                    Value::Array(items) => items.iter().filter_map(scalar).collect(),
                    other => scalar(other).into_iter().collect(),
                };
                pairs.push((name.clone(), values));
            }
        }
        Value::Array(lines) => {
            for line in lines.iter().filter_map(Value::as_str) {
                if let Some((name, value)) = line.split_once(':') {
                    pairs.push((name.trim().to_string(), vec![value.trim().to_string()]));
                }
            }
        }
        _ => tracing::debug!("ignoring headers that are neither an object nor a list"),
    }
    for (name, values) in pairs {
        let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            tracing::debug!(%name, "ignoring an invalid header name");
            continue;
        };
        if is_hop_by_hop(&name) {
            continue;
        }
        map.remove(&name);
        for value in values {
            match HeaderValue::from_str(&value) {
                Ok(value) => {
                    map.append(name.clone(), value);
                }
                Err(_) => tracing::debug!(%name, "ignoring an invalid header value"),
            }
        }
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A JSON error response: `{"error": {"code": …, "message": …}}`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<HttpBody> {
    json_response(status, Bytes::from(error_json(code, message)))
}

/// The JSON text of an error answer: `{"error": {"code": …, "message": …}}`.
pub(crate) fn error_json(code: &str, message: &str) -> String {
    json!({"error": {"code": code, "message": message}}).to_string()
}

/// A response with `status` and the JSON text `body`.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<HttpBody> {
    let mut response = Response::new(HttpBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The response for a failed invocation: 504 for the engine's deadline, 500 otherwise. The
/// client gets the error's code only: a function's message may hold server paths or a
/// traceback, so it goes to the engine's log (see `invocations::report_failure`) instead.
fn failed(error: &ErrorBody) -> Response<HttpBody> {
    if error.code == TIMEOUT {
        let message = "the function did not answer in time";
        return error_response(StatusCode::GATEWAY_TIMEOUT, &error.code, message);
    }
    if error.code == WORKER_BUSY {
        let message = "the function's worker is not keeping up: try again later";
        return error_response(StatusCode::SERVICE_UNAVAILABLE, &error.code, message);
    }
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &error.code,
        FUNCTION_FAILED_MESSAGE,
    )
}

/// What an HTTP client is told when a function failed (the details are in the engine's log).
const FUNCTION_FAILED_MESSAGE: &str = "the function failed (the details are in the engine's log)";

/// The response for a plain result: `{"status_code"|"statusCode", "headers", "body"}`; any
/// other value is sent as a 200 JSON body.
fn plain(value: Value) -> Response<HttpBody> {
    let has_status = |object: &serde_json::Map<String, Value>| {
        object.contains_key(RESULT_STATUS_CODE) || object.contains_key(RESULT_STATUS_CODE_CAMEL)
    };
    let (status, headers, body) = match value {
        Value::Object(mut object) if has_status(&object) => {
            let code = object
                .get(RESULT_STATUS_CODE)
                .filter(|code| !code.is_null())
                .or_else(|| object.get(RESULT_STATUS_CODE_CAMEL))
                .and_then(Value::as_u64)
                .and_then(|code| u16::try_from(code).ok())
                .and_then(|code| StatusCode::from_u16(code).ok());
            let Some(status) = code else {
                let message = "the function returned an invalid status code";
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    INVALID_RESPONSE,
                    message,
                );
            };
            let headers = object.remove(RESULT_HEADERS).unwrap_or(Value::Null);
            (
                status,
                headers,
                object.remove(RESULT_BODY).unwrap_or(Value::Null),
            )
        }
        other => (StatusCode::OK, Value::Null, other),
    };
    let mut map = HeaderMap::new();
    add_headers(&mut map, &headers);
    let (bytes, default_type) = match body {
        Value::Null => (Bytes::new(), None),
        Value::String(text) => (Bytes::from(text), Some("text/plain; charset=utf-8")),
        other => (Bytes::from(other.to_string()), Some("application/json")),
    };
    if let Some(content_type) = default_type
        && !map.contains_key(CONTENT_TYPE)
    {
        map.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    let mut response = Response::new(HttpBody::full(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = map;
    response
}

/// The error code and message for a response channel that ended without completing.
fn unfinished(status: &EndStatus) -> (&'static str, String) {
    match status {
        EndStatus::Aborted(reason) => {
            // The reason is the function's own text: logged, not sent to the client.
            tracing::warn!(?reason, "a function aborted its HTTP response");
            (
                RESPONSE_ABORTED,
                "the function aborted its response".to_string(),
            )
        }
        EndStatus::Expired => (EXPIRED, "the response channel expired".to_string()),
        _ => (
            WRITER_LOST,
            "the function's response writer was lost".to_string(),
        ),
    }
}

/// Builds the HTTP response from the response channel and the function's answer, waiting at
/// most `timeout` for the status and headers (then 504).
pub(crate) async fn respond(
    mut rx: BufferRx,
    mut exchange: Exchange,
    timeout: Duration,
) -> Response<HttpBody> {
    let mut head = Head::default();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    // How the channel ended, once drained without a body byte.
    let mut ended: Option<EndStatus> = None;
    loop {
        if let Some(status) = &ended
            && exchange.outcome.is_none()
        {
            return match status {
                EndStatus::Complete => head.into_response(HttpBody::empty()),
                other => {
                    let (code, message) = unfinished(other);
                    error_response(StatusCode::INTERNAL_SERVER_ERROR, code, &message)
                }
            };
        }
        tokio::select! {
            biased;
            frame = rx.recv(), if ended.is_none() => match frame {
                Some(Frame::Text(text)) => {
                    rx.release(text.len());
                    head.apply(text.as_str());
                }
                Some(Frame::Binary(bytes)) => {
                    rx.release(bytes.len());
                    if !bytes.is_empty() {
                        let body = StreamBody::new(rx, bytes, exchange);
                        return head.into_response(HttpBody::Stream(Box::new(body)));
                    }
                }
                None => ended = Some(exchange.response.reader_close_status()),
            },
            outcome = exchange.next_outcome(), if exchange.outcome.is_some() => match outcome {
                Ok(Value::Null) => {}
                Ok(value) => return plain(value),
                Err(error) => return failed(&error),
            },
            () = &mut deadline => {
                if ended.is_some() {
                    // The channel ended cleanly or not; the function just has not returned.
                    exchange.outcome = None;
                    continue;
                }
                let message = format!("no response within {} ms", timeout.as_millis());
                return error_response(StatusCode::GATEWAY_TIMEOUT, TIMEOUT, &message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(response: Response<HttpBody>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("full body").to_bytes();
        (parts.status, parts.headers, bytes.to_vec())
    }

    #[tokio::test]
    async fn plain_results() {
        let (status, headers, body) = body_of(plain(json!({
            "statusCode": 201,
            "headers": ["X-Id: 7", "bad line"],
            "body": {"ok": true}
        })))
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers.get("x-id").map(|v| v.as_bytes()), Some(&b"7"[..]));
        assert_eq!(
            headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        assert_eq!(body, br#"{"ok":true}"#);

        let (status, headers, body) = body_of(plain(json!({
            "status_code": 200,
            "headers": {"content-type": "text/csv", "connection": "close"},
            "body": "a,b\n"
        })))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"text/csv"[..])
        );
        assert!(
            headers.get("connection").is_none(),
            "hop-by-hop headers are the server's"
        );
        assert_eq!(body, b"a,b\n");

        let (status, _, body) = body_of(plain(json!({"hello": "world"}))).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, br#"{"hello":"world"}"#.to_vec())
        );

        let (status, _, body) = body_of(plain(json!({"status_code": 1000}))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(String::from_utf8_lossy(&body).contains(INVALID_RESPONSE));
    }

    #[test]
    fn control_messages_set_status_and_headers() {
        let mut head = Head::default();
        head.apply(r#"{"type":"set_status","status_code":206}"#);
        head.apply(r#"{"type":"set_status","status_code":"x"}"#);
        head.apply(r#"{"type":"set_headers","headers":{"content-type":"text/event-stream","x-n":["1","2"]}}"#);
        head.apply(r#"{"type":"set_headers","headers":{"x-n":3}}"#);
        head.apply("not json");
        let response = head.into_response(HttpBody::empty());
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            response.headers().get_all("x-n").iter().collect::<Vec<_>>(),
            vec![HeaderValue::from_static("3")]
        );
        assert_eq!(
            response.headers().get(CONTENT_TYPE),
            Some(&HeaderValue::from_static("text/event-stream"))
        );
    }
}
