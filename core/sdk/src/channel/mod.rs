//! Streaming channels: the [`Channel`] a worker creates, and what both ends share — how a
//! channel socket is opened and how its close frames turn into end statuses.
//!
//! Each end is one WebSocket to `/ws/channels/{id}` (docs/PROTOCOL.md §4), opened lazily on the home
//! runtime ([`crate::runtime`]), whose reactor then drives it. The data path has no task hop: a write feeds
//! the socket from the caller's future and a read takes the next frame straight from it, which
//! works from any executor because tokio sockets are woken by the reactor they belong to.

pub(crate) mod end_socket;
pub use end_socket::{STREAMS_ENV, streams_in_use};
mod pump;
mod reader;
mod stats;
pub mod write_queue;
mod writer;

pub use reader::{
    ChannelEvent, ChannelReader, ChunkBatch, MAX_KEPT_MESSAGE_BYTES, MAX_KEPT_MESSAGES,
};
pub use stats::ChannelStats;
pub use write_queue::{WriteAck, WriteOp, WriteQueue};
pub use writer::ChannelWriter;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use iii_protocol::{ChannelDirection, EndStatus, StreamChannelRef};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Error as WsError};

use crate::IIIError;
pub(crate) use end_socket::{ChannelSocket, Target};

/// A channel created by this worker: both local ends and both serializable refs.
#[derive(Debug)]
pub struct Channel {
    /// The writing end, usable here.
    pub writer: ChannelWriter,
    /// The reading end, usable here.
    pub reader: ChannelReader,
    /// The ref of the writing end, to hand to another function.
    pub writer_ref: StreamChannelRef,
    /// The ref of the reading end, to hand to another function.
    pub reader_ref: StreamChannelRef,
}

impl Channel {
    /// Builds both local ends from the refs `engine::channels::create` returned.
    pub fn from_refs(
        address: &str,
        writer_ref: StreamChannelRef,
        reader_ref: StreamChannelRef,
    ) -> Self {
        Self {
            writer: ChannelWriter::new(address, &writer_ref),
            reader: ChannelReader::new(address, &reader_ref),
            writer_ref,
            reader_ref,
        }
    }
}

/// Read buffer of a reader end: one full frame (64 KiB of payload plus the largest header).
const READER_READ_BUFFER: usize = iii_protocol::limits::CHANNEL_FRAME_WIRE_BYTES;
/// Read buffer of a writer end, which receives only close frames and the odd text message.
/// Tungstenite zero-fills the free part of its read buffer on every read attempt and allocates
/// it per socket; its 128 KiB default cost a channel setup 4 % of a Node process's CPU in
/// `memset` alone, plus the page faults of a fresh mapping (BENCHMARKS.md).
const WRITER_READ_BUFFER: usize = 4 * 1024;

/// The WebSocket settings of a channel end reading or writing (`direction`).
fn socket_config(direction: ChannelDirection) -> WebSocketConfig {
    let read_buffer = match direction {
        ChannelDirection::Read => READER_READ_BUFFER,
        ChannelDirection::Write => WRITER_READ_BUFFER,
    };
    WebSocketConfig::default().read_buffer_size(read_buffer)
}

/// Opens a channel socket for the end reading or writing (`direction`) with Nagle disabled;
/// HTTP refusals (404 wrong key, 400 bad request) and unreachable engines become
/// [`IIIError::ChannelConnect`].
pub(crate) async fn connect(
    url: &str,
    direction: ChannelDirection,
) -> Result<ChannelSocket, IIIError> {
    let config = Some(socket_config(direction));
    let tls = crate::tls::connector_for(url)?;
    match tokio_tungstenite::connect_async_tls_with_config(url, config, true, tls).await {
        Ok((socket, _response)) => Ok(ChannelSocket::Socket(Box::new(socket))),
        Err(WsError::Http(response)) => Err(IIIError::ChannelConnect(format!(
            "the engine refused the channel socket with HTTP {}",
            response.status()
        ))),
        Err(error) => Err(IIIError::ChannelConnect(error.to_string())),
    }
}

/// A channel socket being opened. It is polled inside the home runtime's context (the caller's
/// tokio runtime, or the SDK's when there is none), so the socket registers with that runtime's
/// reactor, on the caller's thread (no task hop). It is kept in
/// the end's state so that a caller cancelled while connecting neither drops the half-open end
/// nor makes the next caller open a second one (which the engine would refuse).
pub(crate) struct Connecting(Pin<Box<dyn Future<Output = Result<ChannelSocket, IIIError>> + Send>>);

impl Connecting {
    /// Starts opening `target`: as a stream on a worker connection to its engine that serves
    /// them, else as its own socket. Nothing happens until it is polled.
    pub(crate) fn start(target: &Target) -> Self {
        let target = target.clone();
        Self(Box::pin(async move {
            if end_socket::streams_wanted()
                && let Some(opened) = end_socket::open_stream(&target).await
            {
                return opened;
            }
            connect(&target.url, target.channel_ref.direction).await
        }))
    }
}

impl Future for Connecting {
    type Output = Result<ChannelSocket, IIIError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let _home = crate::runtime::enter_home();
        self.0.as_mut().poll(cx)
    }
}

/// How a channel end ended, from the close frame the engine sent.
pub(crate) fn end_status(frame: Option<&CloseFrame>) -> EndStatus {
    match frame {
        Some(frame) => EndStatus::from_close(u16::from(frame.code), frame.reason.as_str()),
        // A Close without a status code (1005) is not a clean end on our engine.
        None => EndStatus::Other(1005, String::new()),
    }
}

/// The error of a socket that failed or dropped without a Close frame.
pub(crate) fn socket_lost(error: Option<tungstenite::Error>) -> IIIError {
    match error {
        Some(error) => IIIError::Connection(format!("channel socket failed: {error}")),
        None => IIIError::Connection("channel socket dropped without a close frame".into()),
    }
}

/// A close frame with `code` and `reason` (truncated to the 123 bytes a frame can carry).
pub(crate) fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: code.into(),
        reason: reason[..end].to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frames_map_to_statuses() {
        let frame = close_frame(4001, "aborted: why");
        assert_eq!(end_status(Some(&frame)), EndStatus::Aborted("why".into()));
        assert_eq!(
            end_status(Some(&close_frame(1000, ""))),
            EndStatus::Complete
        );
        assert!(!end_status(None).is_complete());
    }

    #[test]
    fn long_reasons_are_truncated_on_a_char_boundary() {
        let reason = "é".repeat(100);
        let frame = close_frame(4001, &reason);
        assert!(frame.reason.len() <= 123);
        assert!(frame.reason.as_str().chars().all(|c| c == 'é'));
    }
}
