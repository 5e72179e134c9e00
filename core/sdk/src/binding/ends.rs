//! Channel refs in JSON, for bindings: every ref in a payload as a live end with the path
//! that leads to it (so a binding converts the plain value its own way, then puts the ends in
//! place), and the ref under a key that an API names explicitly (C's `iii_reader_open`, the
//! HTTP adapter's `response` and `request_body`).

use iii_protocol::{ChannelDirection, PathStep, StreamChannelRef, find_channel_refs};
use serde_json::Value;

use crate::{ChannelReader, ChannelWriter};

/// A live channel end made from a ref.
#[derive(Debug)]
pub enum LiveEnd {
    /// From a read ref.
    Reader(ChannelReader),
    /// From a write ref.
    Writer(ChannelWriter),
}

impl LiveEnd {
    /// The end `channel_ref` opens, on the engine at `address` (nothing connects yet).
    pub fn open(address: &str, channel_ref: &StreamChannelRef) -> Self {
        match channel_ref.direction {
            ChannelDirection::Read => Self::Reader(ChannelReader::new(address, channel_ref)),
            ChannelDirection::Write => Self::Writer(ChannelWriter::new(address, channel_ref)),
        }
    }
}

/// A ref found in a payload, made live.
#[derive(Debug)]
pub struct FoundEnd {
    /// Where the ref sits in the payload (empty: the payload is the ref).
    pub path: Vec<PathStep>,
    /// The ref itself.
    pub channel_ref: StreamChannelRef,
    /// The live end it opens.
    pub end: LiveEnd,
}

/// Every ref in `value` as a live end on the engine at `address`, with its path.
pub fn live_ends(address: &str, value: &Value) -> Vec<FoundEnd> {
    find_channel_refs(value)
        .into_iter()
        .map(|(path, channel_ref)| FoundEnd {
            end: LiveEnd::open(address, &channel_ref),
            path,
            channel_ref,
        })
        .collect()
}

/// Why [`ref_at`] found no usable ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefLookupError {
    /// A key was given, but the value is not an object.
    NotAnObject,
    /// The object has no (non-null) value under the key.
    MissingKey(String),
    /// The value is not a channel ref.
    NotARef,
    /// The ref opens the other end.
    WrongDirection {
        /// The end the ref opens.
        found: ChannelDirection,
        /// The end the caller wants.
        wanted: ChannelDirection,
    },
}

impl std::fmt::Display for RefLookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAnObject => write!(f, "not a JSON object, so no key can name a ref in it"),
            Self::MissingKey(key) => write!(f, "the JSON object has no key {key:?}"),
            Self::NotARef => write!(
                f,
                "not a channel ref: expected {{\"channel_id\": string, \"access_key\": string, \
                 \"direction\": \"read\" | \"write\"}}"
            ),
            Self::WrongDirection { found, wanted } => write!(
                f,
                "this ref opens the {found} end of the channel, not the {wanted} end"
            ),
        }
    }
}

impl std::error::Error for RefLookupError {}

/// The ref that is `value` (or that sits under the top-level `key` of `value`), which must
/// open the `wanted` end.
pub fn ref_at(
    value: &Value,
    key: Option<&str>,
    wanted: ChannelDirection,
) -> Result<StreamChannelRef, RefLookupError> {
    let value = match key {
        None => value,
        Some(key) => match value {
            Value::Object(object) => object
                .get(key)
                .filter(|value| !value.is_null())
                .ok_or_else(|| RefLookupError::MissingKey(key.to_string()))?,
            _ => return Err(RefLookupError::NotAnObject),
        },
    };
    let channel_ref = StreamChannelRef::from_value(value).ok_or(RefLookupError::NotARef)?;
    if channel_ref.direction != wanted {
        return Err(RefLookupError::WrongDirection {
            found: channel_ref.direction,
            wanted,
        });
    }
    Ok(channel_ref)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(direction: &str) -> Value {
        let direction = ChannelDirection::parse(direction).unwrap_or(ChannelDirection::Read);
        Value::from(StreamChannelRef {
            channel_id: "c".into(),
            access_key: "k".into(),
            direction,
        })
    }

    #[test]
    fn refs_become_live_ends_with_their_paths() {
        let payload = json!({"reader": sample("read"), "list": [sample("write")], "n": 1});
        let ends = live_ends("ws://127.0.0.1:1", &payload);
        assert_eq!(ends.len(), 2);
        for found in &ends {
            match (&found.end, found.path.first()) {
                (LiveEnd::Reader(_), Some(PathStep::Key(key))) => assert_eq!(key, "reader"),
                (LiveEnd::Writer(_), Some(PathStep::Key(key))) => assert_eq!(key, "list"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn ref_at_checks_key_shape_and_direction() {
        let input = json!({"reader": sample("read"), "n": 1});
        assert!(ref_at(&input, Some("reader"), ChannelDirection::Read).is_ok());
        assert!(ref_at(&sample("write"), None, ChannelDirection::Write).is_ok());
        assert_eq!(
            ref_at(&input, Some("x"), ChannelDirection::Read),
            Err(RefLookupError::MissingKey("x".into()))
        );
        assert_eq!(
            ref_at(&input, Some("n"), ChannelDirection::Read),
            Err(RefLookupError::NotARef)
        );
        assert_eq!(
            ref_at(&json!([1]), Some("n"), ChannelDirection::Read),
            Err(RefLookupError::NotAnObject)
        );
        assert!(matches!(
            ref_at(&input, Some("reader"), ChannelDirection::Write),
            Err(RefLookupError::WrongDirection { .. })
        ));
    }
}
