//! Channel refs: the small serializable tokens that travel inside trigger payloads and let the
//! receiving side connect to one end of a channel.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Which end of a channel a ref opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelDirection {
    /// The reading end.
    Read,
    /// The writing end.
    Write,
}

impl ChannelDirection {
    /// The wire spelling: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A serializable ref to one end of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamChannelRef {
    /// The channel's id.
    pub channel_id: String,
    /// The key that opens this end (and only this end, on our engine).
    pub access_key: String,
    /// Which end this ref opens.
    pub direction: ChannelDirection,
}

impl StreamChannelRef {
    /// Reads a ref from a JSON value, if the value is one (see [`is_channel_ref`]).
    pub fn from_value(value: &Value) -> Option<Self> {
        let object = value.as_object()?;
        Some(Self {
            channel_id: object.get("channel_id")?.as_str()?.to_string(),
            access_key: object.get("access_key")?.as_str()?.to_string(),
            direction: ChannelDirection::parse(object.get("direction")?.as_str()?)?,
        })
    }

    /// The channel socket URL for this end, given the engine's base address
    /// (`ws://host:port`, with or without a trailing slash or path).
    pub fn url(&self, engine_address: &str) -> String {
        let base = engine_base(engine_address);
        let channel = form_urlencode_component(&self.channel_id);
        let key = form_urlencode_component(&self.access_key);
        format!(
            "{base}/ws/channels/{channel}?key={key}&dir={}",
            self.direction
        )
    }
}

impl From<StreamChannelRef> for Value {
    fn from(channel_ref: StreamChannelRef) -> Self {
        serde_json::json!({
            "channel_id": channel_ref.channel_id,
            "access_key": channel_ref.access_key,
            "direction": channel_ref.direction.as_str(),
        })
    }
}

/// Strips any path, query or trailing slash from an engine URL, leaving `scheme://host:port`.
pub fn engine_base(engine_address: &str) -> &str {
    let after_scheme = engine_address.find("://").map_or(0, |i| i + 3);
    let end = engine_address[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(engine_address.len(), |i| after_scheme + i);
    &engine_address[..end]
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn form_urlencode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// True when `value` is a channel ref: an object with string `channel_id`, string
/// `access_key` and `direction` of `read` or `write`.
pub fn is_channel_ref(value: &Value) -> bool {
    StreamChannelRef::from_value(value).is_some()
}

/// One step into a JSON value: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A key of an object.
    Key(String),
    /// An index of an array.
    Index(usize),
}

/// How deep [`find_channel_refs`] looks (deeper values are not searched).
pub const MAX_REF_DEPTH: usize = 256;

/// Finds every channel ref in `value`, at any depth (up to [`MAX_REF_DEPTH`]), with the path
/// that leads to it (empty when `value` itself is a ref). This is the one walk every SDK uses
/// to turn the refs in a payload into live channel ends.
pub fn find_channel_refs(value: &Value) -> Vec<(Vec<PathStep>, StreamChannelRef)> {
    let mut found = Vec::new();
    let mut path = Vec::new();
    walk(value, &mut path, &mut found);
    found
}

fn walk(
    value: &Value,
    path: &mut Vec<PathStep>,
    found: &mut Vec<(Vec<PathStep>, StreamChannelRef)>,
) {
    if path.len() > MAX_REF_DEPTH {
        return;
    }
    if let Some(channel_ref) = StreamChannelRef::from_value(value) {
        found.push((path.clone(), channel_ref));
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(PathStep::Key(key.clone()));
                walk(child, path, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(PathStep::Index(index));
                walk(item, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `path` as the published clients write one: keys joined with dots, array indices in
/// brackets, e.g. `items[0].writer` (empty for the value itself).
pub fn path_text(path: &[PathStep]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            PathStep::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            PathStep::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// Finds every channel ref in `value`, at any depth, with the key it was found under (the
/// object key that holds it; for refs inside an array, the key that holds the array; `""` at
/// the top level).
pub fn extract_channel_refs(value: &Value) -> Vec<(String, StreamChannelRef)> {
    find_channel_refs(value)
        .into_iter()
        .map(|(path, channel_ref)| {
            let key = path.iter().rev().find_map(|step| match step {
                PathStep::Key(key) => Some(key.clone()),
                PathStep::Index(_) => None,
            });
            (key.unwrap_or_default(), channel_ref)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_written_with_dots_and_brackets() {
        let path = [
            PathStep::Key("items".into()),
            PathStep::Index(0),
            PathStep::Key("writer".into()),
        ];
        assert_eq!(path_text(&path), "items[0].writer");
        assert_eq!(path_text(&[PathStep::Index(2)]), "[2]");
        assert_eq!(path_text(&[]), "");
    }

    fn sample(direction: &str) -> Value {
        json!({"channel_id": "c1", "access_key": "k/1+", "direction": direction})
    }

    #[test]
    fn recognises_only_complete_refs() {
        assert!(is_channel_ref(&sample("read")));
        assert!(is_channel_ref(&sample("write")));
        assert!(!is_channel_ref(&sample("both")));
        assert!(!is_channel_ref(
            &json!({"channel_id": "c1", "direction": "read"})
        ));
        assert!(!is_channel_ref(
            &json!({"channel_id": 1, "access_key": "k", "direction": "read"})
        ));
        assert!(!is_channel_ref(&json!("text")));
    }

    #[test]
    fn finds_refs_at_any_depth_with_their_keys() {
        let payload = json!({
            "label": "x",
            "reader": sample("read"),
            "nested": {"deep": [sample("write"), 3]},
        });
        let mut refs = extract_channel_refs(&payload);
        refs.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].0, "deep");
        assert_eq!(refs[0].1.direction, ChannelDirection::Write);
        assert_eq!(refs[1].0, "reader");
        assert_eq!(refs[1].1.direction, ChannelDirection::Read);
    }

    #[test]
    fn finds_refs_with_their_paths() {
        let payload = json!({"a": [1, {"r": sample("read")}], "w": sample("write")});
        let found = find_channel_refs(&payload);
        let paths: Vec<_> = found.iter().map(|(path, _)| path.clone()).collect();
        assert!(paths.contains(&vec![
            PathStep::Key("a".into()),
            PathStep::Index(1),
            PathStep::Key("r".into())
        ]));
        assert!(paths.contains(&vec![PathStep::Key("w".into())]));
        assert_eq!(find_channel_refs(&sample("read"))[0].0, Vec::new());
        assert!(find_channel_refs(&json!({"x": [1, "y"]})).is_empty());
    }

    #[test]
    fn builds_channel_urls_with_encoded_key() {
        let channel_ref = StreamChannelRef::from_value(&sample("read")).expect("a ref");
        assert_eq!(
            channel_ref.url("ws://127.0.0.1:49134/"),
            "ws://127.0.0.1:49134/ws/channels/c1?key=k%2F1%2B&dir=read"
        );
        assert_eq!(engine_base("ws://h:1/x?y"), "ws://h:1");
        assert_eq!(engine_base("ws://h:1"), "ws://h:1");
    }

    #[test]
    fn ref_serializes_to_the_wire_shape() {
        let channel_ref = StreamChannelRef::from_value(&sample("write")).expect("a ref");
        assert_eq!(
            serde_json::to_value(&channel_ref).expect("json"),
            sample("write")
        );
        assert_eq!(Value::from(channel_ref), sample("write"));
    }
}
