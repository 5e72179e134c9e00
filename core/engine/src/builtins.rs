//! The functions the engine serves itself: `engine::channels::create` and
//! `engine::workers::register` (docs/PROTOCOL.md §3.3).

use iii_protocol::ErrorBody;
use iii_protocol::builtins::{
    CHANNELS_CREATE_BUFFER_SIZE, CHANNELS_CREATE_READER, CHANNELS_CREATE_WRITER,
};
use iii_protocol::codes::DESERIALIZATION_ERROR;
use iii_protocol::limits::DEFAULT_BUFFER_FRAMES;
use serde_json::Value;

use crate::quota;
use crate::state::EngineState;
use crate::worker::Conn;

/// `engine::channels::create`: a new channel; the result is exactly
/// `{"writer": <ref>, "reader": <ref>}`.
pub(crate) fn create_channel(
    shared: &EngineState,
    conn: &Conn,
    data: &Value,
) -> Result<Value, ErrorBody> {
    let quotas = &shared.config.quotas;
    let frames = buffer_size(data, quotas.max_buffer_frames)?;
    let max = quotas.max_channels_per_connection;
    let Some(own) = conn.channels.try_take(max) else {
        return Err(quota::exceeded(
            "unfinished channels created by one connection",
            max,
            "max-channels-per-connection",
        ));
    };
    let max = quotas.max_channels;
    let Some(engine_wide) = shared.channels.created_by_workers().try_take(max) else {
        return Err(quota::exceeded(
            "unfinished channels created by workers",
            max,
            "max-channels",
        ));
    };
    let (writer, reader) = shared.channels.create(frames, vec![own, engine_wide]);
    let mut refs = serde_json::Map::new();
    refs.insert(CHANNELS_CREATE_WRITER.into(), Value::from(writer));
    refs.insert(CHANNELS_CREATE_READER.into(), Value::from(reader));
    Ok(Value::Object(refs))
}

/// `engine::workers::register`: records what the worker says about itself. Never fails.
pub(crate) fn register_worker(shared: &EngineState, conn: &Conn, data: &Value) {
    shared.connections.describe(conn.id, data);
}

/// Reads `buffer_size` (frames): absent or null → 64 (or `max` if smaller), clamped to
/// 1..=`max` (`--max-buffer-frames`); negative, fractional or non-numeric →
/// `deserialization_error`.
fn buffer_size(data: &Value, max: usize) -> Result<usize, ErrorBody> {
    let invalid = |why: &str| ErrorBody::new(DESERIALIZATION_ERROR, format!("buffer_size: {why}"));
    let raw = match data {
        Value::Null => None,
        Value::Object(map) => map.get(CHANNELS_CREATE_BUFFER_SIZE),
        _ => {
            return Err(ErrorBody::new(
                DESERIALIZATION_ERROR,
                "input must be an object",
            ));
        }
    };
    let frames = match raw {
        None | Some(Value::Null) => DEFAULT_BUFFER_FRAMES,
        Some(Value::Number(number)) => match (number.as_u64(), number.as_f64()) {
            (Some(frames), _) => frames,
            (None, Some(float)) if float >= 0.0 && float.fract() == 0.0 => {
                // Saturating conversion; anything this large is clamped below anyway.
                float as u64
            }
            (None, Some(float)) if float < 0.0 => return Err(invalid("must not be negative")),
            _ => return Err(invalid("must be an integer")),
        },
        Some(_) => return Err(invalid("must be a number")),
    };
    let max = max.max(1);
    Ok(usize::try_from(frames).unwrap_or(max).clamp(1, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(result: Result<usize, ErrorBody>) -> Result<usize, String> {
        result.map_err(|error| error.code)
    }

    #[test]
    fn buffer_size_defaults_clamps_and_rejects() {
        const MAX: usize = 1024;
        let bad = Err(DESERIALIZATION_ERROR.to_string());
        assert_eq!(code(buffer_size(&Value::Null, MAX)), Ok(64));
        assert_eq!(code(buffer_size(&json!({}), MAX)), Ok(64));
        assert_eq!(
            code(buffer_size(&json!({"buffer_size": null}), MAX)),
            Ok(64)
        );
        assert_eq!(code(buffer_size(&json!({"buffer_size": 8}), MAX)), Ok(8));
        assert_eq!(code(buffer_size(&json!({"buffer_size": 0}), MAX)), Ok(1));
        assert_eq!(
            code(buffer_size(&json!({"buffer_size": 5000}), MAX)),
            Ok(1024)
        );
        assert_eq!(
            code(buffer_size(&json!({"buffer_size": 16.0}), MAX)),
            Ok(16)
        );
        assert_eq!(
            code(buffer_size(&json!({"buffer_size": 1e300}), MAX)),
            Ok(1024)
        );
        assert_eq!(code(buffer_size(&json!({"buffer_size": -1}), MAX)), bad);
        assert_eq!(code(buffer_size(&json!({"buffer_size": -0.5}), MAX)), bad);
        assert_eq!(code(buffer_size(&json!({"buffer_size": 1.5}), MAX)), bad);
        assert_eq!(code(buffer_size(&json!({"buffer_size": "8"}), MAX)), bad);
        assert_eq!(code(buffer_size(&json!("x"), MAX)), bad);
        // --max-buffer-frames sets the cap, above 1024 too.
        assert_eq!(
            code(buffer_size(&json!({"buffer_size": 5000}), 4096)),
            Ok(4096)
        );
        assert_eq!(code(buffer_size(&Value::Null, 8)), Ok(8));
    }
}
