//! The request side of an HTTP trigger: the invocation payload a function receives
//! (docs/PROTOCOL.md §6) and the request body streamed into its `request_body` channel as it
//! arrives, so an upload is never held whole in the engine.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use iii_protocol::{EndStatus, StreamChannelRef};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use super::routes::RouteMatch;
use crate::channels::Channel;
use crate::channels::buffer::{BufferClosed, BufferTx, Frame, split_binary};
use crate::channels::registry::ChannelRegistry;
use iii_protocol::http::{
    FIELD_BODY, FIELD_HEADERS, FIELD_METHOD, FIELD_PATH, FIELD_PATH_PARAMS, FIELD_QUERY_PARAMS,
    FIELD_RAW_PATH, FIELD_REQUEST_BODY, FIELD_RESPONSE, FIELD_TRIGGER, TRIGGER_TYPE,
};

/// The refs a function gets for one request.
pub(crate) struct BodyRefs {
    /// Where the function reads the request body.
    pub(crate) request_body: StreamChannelRef,
    /// Where the function writes the response.
    pub(crate) response: StreamChannelRef,
}

/// The invocation `data` for a request that matched `route`.
pub(crate) fn payload(route: &RouteMatch, parts: &Parts, body: Value, refs: BodyRefs) -> Value {
    let path_params: Map<String, Value> = route
        .params
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let mut data = Map::new();
    let mut put = |key: &str, value: Value| data.insert(key.to_string(), value);
    put(FIELD_METHOD, parts.method.as_str().into());
    put(FIELD_PATH, route.pattern.clone().into());
    put(FIELD_RAW_PATH, parts.uri.path().into());
    put(FIELD_PATH_PARAMS, Value::Object(path_params));
    put(
        FIELD_QUERY_PARAMS,
        Value::Object(query_params(parts.uri.query())),
    );
    put(FIELD_HEADERS, Value::Object(headers(&parts.headers)));
    put(FIELD_BODY, body);
    put(FIELD_REQUEST_BODY, Value::from(refs.request_body));
    put(FIELD_RESPONSE, Value::from(refs.response));
    put(
        FIELD_TRIGGER,
        json!({"type": TRIGGER_TYPE, "path": route.pattern, "method": route.method.as_str()}),
    );
    Value::Object(data)
}

/// Adds `value` under `key`: a string the first time, a list once the key repeats.
fn insert_repeated(map: &mut Map<String, Value>, key: String, value: String) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, Value::String(value));
        }
        Some(Value::Array(values)) => values.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
    }
}

/// Query parameters, percent-decoded; a repeated key gives a list.
fn query_params(query: Option<&str>) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        insert_repeated(&mut map, key.into_owned(), value.into_owned());
    }
    map
}

/// Headers with lower-case names; a repeated header gives a list.
fn headers(headers: &HeaderMap) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        insert_repeated(&mut map, name.as_str().to_string(), value);
    }
    map
}

/// True when the request declares a JSON body (`application/json` or `application/*+json`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Why a JSON body could not be taken.
#[derive(Debug)]
pub(crate) enum JsonBodyError {
    /// Larger than the configured cap.
    TooLarge(usize),
    /// Not JSON.
    Invalid(serde_json::Error),
    /// The client's upload failed.
    Failed(hyper::Error),
}

/// Reads a JSON body whole (it is parsed into `body`), refusing more than `cap` bytes.
/// Returns the raw bytes (still streamed to `request_body`) and the parsed value.
pub(crate) async fn read_json(
    headers: &HeaderMap,
    mut body: Incoming,
    cap: usize,
) -> Result<(Bytes, Value), JsonBodyError> {
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > cap) {
        return Err(JsonBodyError::TooLarge(cap));
    }
    let mut collected = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(JsonBodyError::Failed)?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > cap {
                return Err(JsonBodyError::TooLarge(cap));
            }
            collected.extend_from_slice(&data);
        }
    }
    let value = if collected.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&collected).map_err(JsonBodyError::Invalid)?
    };
    Ok((Bytes::from(collected), value))
}

/// Where a request body comes from.
pub(crate) enum BodySource {
    /// Still arriving from the client.
    Streaming(Incoming),
    /// Already read (a JSON body).
    Read(Bytes),
}

impl BodySource {
    /// True when there is no body at all (known from the request's framing).
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Self::Streaming(body) => hyper::body::Body::is_end_stream(body),
            Self::Read(data) => data.is_empty(),
        }
    }
}

/// The engine's writer end of a request-body channel.
pub(crate) struct BodyWriter {
    /// The channel.
    pub(crate) channel: Arc<Channel>,
    /// Its buffer's writer side.
    pub(crate) buffer: BufferTx,
    /// Fires when the engine gives up on the channel (nobody reads it).
    pub(crate) stop: oneshot::Receiver<EndStatus>,
}

/// Feeds the request body into its channel in ≤ 64 KiB frames, waiting while the buffer is
/// full (so TCP backpressure reaches the uploading client), then ends the channel: complete,
/// or writer-lost when the client's upload broke off.
pub(crate) async fn pump_body(
    channels: Arc<ChannelRegistry>,
    source: BodySource,
    mut writer: BodyWriter,
) {
    let status = tokio::select! {
        biased;
        status = &mut writer.stop => status.unwrap_or(EndStatus::Expired),
        status = feed(source, &mut writer.buffer) => status,
    };
    finish_body(&channels, writer, status);
}

/// Ends the request-body channel's writer side with `status`.
pub(crate) fn finish_body(channels: &ChannelRegistry, writer: BodyWriter, status: EndStatus) {
    let channel = writer.channel;
    tracing::debug!(channel_id = %channel.id, ?status, "request body finished");
    if let Some(final_status) = channel.writer_finished(status) {
        channels.retire(&channel, final_status);
    }
    drop(writer.buffer);
}

/// Puts `data` in the buffer in frames of at most 64 KiB.
async fn push_all(buffer: &mut BufferTx, data: Bytes) -> Result<(), BufferClosed> {
    for piece in split_binary(data) {
        buffer.push(Frame::Binary(piece)).await?;
    }
    Ok(())
}

async fn feed(source: BodySource, buffer: &mut BufferTx) -> EndStatus {
    match source {
        BodySource::Read(data) => {
            if !data.is_empty() && push_all(buffer, data).await.is_err() {
                return EndStatus::ReaderClosed;
            }
            EndStatus::Complete
        }
        BodySource::Streaming(mut body) => loop {
            match body.frame().await {
                None => return EndStatus::Complete,
                Some(Err(error)) => {
                    tracing::debug!(%error, "request body broke off");
                    return EndStatus::WriterLost;
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                        && push_all(buffer, data).await.is_err()
                    {
                        return EndStatus::ReaderClosed;
                    }
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn repeated_query_keys_and_headers_become_lists() {
        let query = query_params(Some("a=1&tag=x&tag=y%20z&tag=w&empty"));
        assert_eq!(
            Value::Object(query),
            json!({"a": "1", "tag": ["x", "y z", "w"], "empty": ""})
        );
        let mut map = HeaderMap::new();
        map.append("Accept", HeaderValue::from_static("*/*"));
        map.append("x-multi", HeaderValue::from_static("a"));
        map.append("X-Multi", HeaderValue::from_static("b"));
        assert_eq!(
            Value::Object(headers(&map)),
            json!({"accept": "*/*", "x-multi": ["a", "b"]})
        );
    }

    #[test]
    fn json_content_types() {
        let with = |value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_json(&map)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/vnd.api+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
