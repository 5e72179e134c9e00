//! Close codes of channel sockets and the end status they carry.
//!
//! The published engine ends every reader the same way, so a crashed writer looks like a
//! complete stream; these codes keep the difference (docs/PROTOCOL.md §4.4).

/// A clean, complete end of the stream.
pub const COMPLETE: u16 = 1000;
/// The engine is going away (shutting down).
pub const GOING_AWAY: u16 = 1001;
/// A text frame whose payload is not UTF-8 (RFC 6455 §7.4.1).
pub const INVALID_PAYLOAD: u16 = 1007;
/// A frame larger than the engine accepts.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The writer aborted the stream; the reason follows `aborted: `.
pub const ABORTED: u16 = 4001;
/// The writer's socket dropped without a clean close.
pub const WRITER_LOST: u16 = 4002;
/// The reader went away; the writer's further writes fail.
pub const READER_CLOSED: u16 = 4003;
/// The channel expired before both ends connected.
pub const EXPIRED: u16 = 4008;
/// A second connection tried to take an end that is already connected.
pub const END_ALREADY_CONNECTED: u16 = 4009;
/// A worker's main socket answered nothing, not even a ping, within the engine's ping
/// timeout: the engine dropped it as unresponsive.
pub const UNRESPONSIVE: u16 = 4010;
/// A worker's main socket did not take what the engine had for it: its queue stayed over its
/// bound past the deadline, or reached twice the bound. The engine dropped it.
pub const SLOW_CONSUMER: u16 = 4011;

/// Close reason sent with [`COMPLETE`].
pub const REASON_COMPLETE: &str = "stream_complete";
/// Prefix of the close reason sent with [`ABORTED`].
pub const REASON_ABORTED_PREFIX: &str = "aborted: ";
/// Close reason sent with [`WRITER_LOST`].
pub const REASON_WRITER_LOST: &str = "writer_lost";
/// Close reason sent with [`READER_CLOSED`].
pub const REASON_READER_CLOSED: &str = "reader_closed";
/// Close reason sent with [`EXPIRED`].
pub const REASON_EXPIRED: &str = "expired";
/// Close reason sent with [`GOING_AWAY`] when the engine stops.
pub const REASON_ENGINE_SHUTDOWN: &str = "engine_shutdown";
/// Close reason sent with [`INVALID_PAYLOAD`] for a text frame that is not UTF-8.
pub const REASON_INVALID_UTF8: &str = "invalid_utf8";
/// Close reason sent with [`MESSAGE_TOO_BIG`].
pub const REASON_MESSAGE_TOO_BIG: &str = "message_too_big";
/// Close reason sent with [`SLOW_CONSUMER`].
pub const REASON_SLOW_CONSUMER: &str = "slow_consumer";
/// Close reason sent with [`UNRESPONSIVE`].
pub const REASON_UNRESPONSIVE: &str = "unresponsive";
/// Close reason sent with [`END_ALREADY_CONNECTED`].
pub const REASON_END_ALREADY_CONNECTED: &str = "end_already_connected";

/// How a channel stream ended, as seen by either end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStatus {
    /// The writer closed cleanly: everything written arrived.
    Complete,
    /// The writer aborted, with its reason.
    Aborted(String),
    /// The writer disappeared without closing.
    WriterLost,
    /// The reader went away.
    ReaderClosed,
    /// The channel expired before both ends connected.
    Expired,
    /// Another connection already holds this end.
    EndAlreadyConnected,
    /// A frame was larger than allowed.
    MessageTooBig,
    /// The engine is going away (shutting down): the stream was cut by the engine's stop,
    /// not by its peer.
    GoingAway,
    /// Any other close code, with its reason.
    Other(u16, String),
}

impl EndStatus {
    /// Reads an end status from a close code and reason.
    pub fn from_close(code: u16, reason: &str) -> Self {
        match code {
            COMPLETE => Self::Complete,
            ABORTED => Self::Aborted(
                reason
                    .strip_prefix(REASON_ABORTED_PREFIX)
                    .unwrap_or(reason)
                    .to_string(),
            ),
            WRITER_LOST => Self::WriterLost,
            READER_CLOSED => Self::ReaderClosed,
            EXPIRED => Self::Expired,
            END_ALREADY_CONNECTED => Self::EndAlreadyConnected,
            MESSAGE_TOO_BIG => Self::MessageTooBig,
            GOING_AWAY => Self::GoingAway,
            other => Self::Other(other, reason.to_string()),
        }
    }

    /// The close code and reason that carry this status.
    pub fn to_close(&self) -> (u16, String) {
        match self {
            Self::Complete => (COMPLETE, REASON_COMPLETE.into()),
            Self::Aborted(reason) => (ABORTED, format!("{REASON_ABORTED_PREFIX}{reason}")),
            Self::WriterLost => (WRITER_LOST, REASON_WRITER_LOST.into()),
            Self::ReaderClosed => (READER_CLOSED, REASON_READER_CLOSED.into()),
            Self::Expired => (EXPIRED, REASON_EXPIRED.into()),
            Self::EndAlreadyConnected => {
                (END_ALREADY_CONNECTED, REASON_END_ALREADY_CONNECTED.into())
            }
            Self::MessageTooBig => (MESSAGE_TOO_BIG, "message_too_big".into()),
            Self::GoingAway => (GOING_AWAY, REASON_ENGINE_SHUTDOWN.into()),
            Self::Other(code, reason) => (*code, reason.clone()),
        }
    }

    /// True only for a clean, complete end.
    pub fn is_complete(&self) -> bool {
        matches!(self, Self::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_close_codes() {
        for status in [
            EndStatus::Complete,
            EndStatus::Aborted("disk full".into()),
            EndStatus::WriterLost,
            EndStatus::ReaderClosed,
            EndStatus::Expired,
            EndStatus::EndAlreadyConnected,
            EndStatus::MessageTooBig,
            EndStatus::GoingAway,
            EndStatus::Other(4100, "custom".into()),
        ] {
            let (code, reason) = status.to_close();
            assert_eq!(EndStatus::from_close(code, &reason), status);
        }
    }

    #[test]
    fn only_complete_is_complete() {
        assert!(EndStatus::Complete.is_complete());
        assert!(!EndStatus::WriterLost.is_complete());
        assert!(!EndStatus::from_close(4001, "aborted: x").is_complete());
    }
}
