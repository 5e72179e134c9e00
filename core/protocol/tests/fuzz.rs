//! Property tests of everything the protocol crate reads from a peer: main-socket messages,
//! stream frames, and channel refs inside payloads. Nothing a peer sends may panic a reader,
//! and what we write reads back the same.

use iii_protocol::streams::{self, Op};
use iii_protocol::{Message, channel};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, up to a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Eighths: exact in binary and in short decimals, so they print and parse back to the
        // same value (arbitrary floats need serde_json's `float_roundtrip` to do that).
        any::<i32>().prop_map(|n| Value::from(f64::from(n) / 8.0)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const TYPES: &[&str] = &[
    "registerfunction",
    "unregisterfunction",
    "registertrigger",
    "unregistertrigger",
    "registertriggertype",
    "unregistertriggertype",
    "triggerregistrationresult",
    "invokefunction",
    "invocationresult",
    "workerregistered",
    "reattach",
    "ping",
    "pong",
    "somethingelse",
];

const FIELDS: &[&str] = &[
    "id",
    "function_id",
    "invocation_id",
    "trigger_type",
    "data",
    "result",
    "error",
    "action",
    "config",
    "metadata",
    "worker_id",
    "description",
    "traceparent",
];

/// A JSON object shaped like a message: a known `type` and fields with the names messages
/// use, holding any values.
fn message_like() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(TYPES),
        proptest::collection::vec((proptest::sample::select(FIELDS), json()), 0..8),
    )
        .prop_map(|(kind, fields)| {
            let mut object = Map::new();
            object.insert("type".into(), Value::from(kind));
            for (name, value) in fields {
                object.insert(name.into(), value);
            }
            Value::Object(object)
        })
}

const OPS: &[Op] = &[
    Op::Open,
    Op::Opened,
    Op::Data,
    Op::Text,
    Op::Close,
    Op::Credit,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_is_read_without_a_panic(text in ".{0,300}") {
        let _ = serde_json::from_str::<Message>(&text);
    }

    #[test]
    fn a_message_read_writes_back_to_what_reads_the_same(value in message_like()) {
        if let Ok(message) = serde_json::from_value::<Message>(value) {
            let written = message.to_json();
            let again: Message = serde_json::from_str(&written).map_err(|error| {
                TestCaseError::fail(format!("{written} does not read back: {error}"))
            })?;
            prop_assert_eq!(again.to_json(), written);
        }
    }

    #[test]
    fn any_binary_frame_is_decoded_or_refused_without_a_panic(
        frame in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = streams::decode(&frame);
        let _ = streams::parse_close(&frame);
        let _ = streams::parse_credit(&frame);
    }

    #[test]
    fn stream_frames_round_trip(
        op in proptest::sample::select(OPS),
        stream in any::<u32>(),
        code in any::<u16>(),
        reason in ".{0,40}",
        credit in any::<u32>(),
    ) {
        let frame = streams::encode(op, stream, b"payload");
        prop_assert_eq!(streams::decode(&frame), Ok((op, stream)));
        let close = streams::close_payload(code, &reason);
        prop_assert_eq!(streams::parse_close(&close), Some((code, reason.as_str())));
        prop_assert_eq!(streams::parse_credit(&streams::credit_payload(credit)), Some(credit));
    }

    #[test]
    fn refs_are_found_in_any_payload_without_a_panic(value in json()) {
        let _ = channel::find_channel_refs(&value);
        let _ = channel::extract_channel_refs(&value);
    }
}

#[test]
fn refs_nested_past_the_depth_limit_are_not_searched_and_do_not_overflow() {
    let mut value = serde_json::json!({"channel_id": "c", "access_key": "k", "direction": "read"});
    for _ in 0..100_000 {
        value = Value::Array(vec![value]);
    }
    assert!(channel::find_channel_refs(&value).is_empty());
    // Taken apart level by level: dropping a value this deep in one go would overflow.
    while let Value::Array(mut items) = value {
        value = items.pop().unwrap_or(Value::Null);
    }
}
