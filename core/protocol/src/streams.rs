//! Channel streams on the main socket (docs/PROTOCOL.md §4.8): a worker that asked for them
//! in its upgrade request (and got the same header back) may open channel ends as numbered
//! streams inside its main WebSocket instead of one socket each. Each stream frame is one
//! binary WebSocket message: an op byte, the stream id (u32, big-endian), then the payload.
//!
//! The published clients never send binary frames on the main socket and never ask for
//! streams, so they are unaffected.

/// The upgrade header a worker sends to ask for channel streams; the engine answers with the
/// same header and value when it serves them.
pub const HEADER: &str = "x-iii-channel-streams";

/// The value of [`HEADER`]: the version of the stream framing.
pub const VERSION: &str = "1";

/// True when a [`HEADER`] value asks for (or agrees to) the streams of this [`VERSION`].
pub fn accepts(value: &[u8]) -> bool {
    value == VERSION.as_bytes()
}

/// Payload bytes (data and text) either side may send on a new stream before the other side
/// grants more with [`Op::Credit`].
pub const INITIAL_WINDOW: u32 = 1024 * 1024;

/// Bytes before the payload: op and stream id.
pub const HEADER_BYTES: usize = 5;

/// Close code of an `open` whose ref finds no channel (wrong id or key, or forgotten): the
/// stream counterpart of the HTTP 404 that refuses such a channel socket.
pub const NOT_FOUND: u16 = 4404;

/// Close reason sent with [`NOT_FOUND`].
pub const REASON_NOT_FOUND: &str = "channel_not_found";

/// Close code of a frame that breaks a stream's rules (payload past its window, a frame over
/// 16 MiB, malformed text, close or credit): the stream ends as if its socket had failed.
/// Frames with an unknown op, and opens of a stream id in use, are ignored.
pub const PROTOCOL_ERROR: u16 = 1002;

/// What a stream frame does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Worker → engine: open a channel end; the payload is its ref as JSON.
    Open = 1,
    /// Engine → worker: the end is open (it may still close at once with an end status).
    Opened = 2,
    /// Either way: payload bytes (at most 16 MiB; our SDKs send at most 64 KiB).
    Data = 3,
    /// Either way: a text message.
    Text = 4,
    /// Either way: a close, payload = code (u16, big-endian) + UTF-8 reason, meaning what the
    /// WebSocket close frame of a channel socket means (§4.4).
    Close = 5,
    /// Either way: payload = u32 (big-endian) more payload bytes the sender may receive.
    Credit = 6,
}

impl Op {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Open,
            2 => Self::Opened,
            3 => Self::Data,
            4 => Self::Text,
            5 => Self::Close,
            6 => Self::Credit,
            _ => return None,
        })
    }
}

/// A binary frame that is not a stream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

/// One frame: `op`, stream id and payload.
pub fn encode(op: Op, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
    frame.push(op as u8);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The op and stream id of `frame`; its payload starts at [`HEADER_BYTES`].
pub fn decode(frame: &[u8]) -> Result<(Op, u32), DecodeError> {
    let (&op, rest) = frame.split_first().ok_or(DecodeError("empty frame"))?;
    let op = Op::from_byte(op).ok_or(DecodeError("unknown op"))?;
    let id: [u8; 4] = rest
        .get(..4)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(DecodeError("frame shorter than its header"))?;
    Ok((op, u32::from_be_bytes(id)))
}

/// The payload of a close: code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// Code and reason of a close payload (`None` when it is malformed).
pub fn parse_close(payload: &[u8]) -> Option<(u16, &str)> {
    let code = u16::from_be_bytes(payload.get(..2)?.try_into().ok()?);
    let reason = std::str::from_utf8(payload.get(2..)?).ok()?;
    Some((code, reason))
}

/// The payload of a credit grant.
pub fn credit_payload(bytes: u32) -> [u8; 4] {
    bytes.to_be_bytes()
}

/// The bytes a credit payload grants (`None` when it is malformed).
pub fn parse_credit(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frame = encode(Op::Data, 7, b"abc");
        assert_eq!(frame, [3, 0, 0, 0, 7, b'a', b'b', b'c']);
        assert_eq!(decode(&frame), Ok((Op::Data, 7)));
        assert_eq!(&frame[HEADER_BYTES..], b"abc");
        let close = close_payload(4001, "aborted: x");
        assert_eq!(parse_close(&close), Some((4001, "aborted: x")));
        assert_eq!(parse_credit(&credit_payload(65536)), Some(65536));
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 0, 0, 0, 1]).is_err());
        assert!(decode(&[3, 0, 0]).is_err());
        assert_eq!(parse_close(&[1]), None);
        assert_eq!(parse_close(&[3, 232, 0xff]), None);
        assert_eq!(parse_credit(&[0, 0, 1]), None);
    }
}
