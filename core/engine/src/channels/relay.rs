//! Driving a channel's sockets. The writer end reads WebSocket frames into the buffer
//! (splitting binary frames into ≤ 64 KiB pieces, zero copy) and simply stops reading when the
//! buffer is full, so TCP backpressure reaches the writer. The reader end writes every ready
//! frame and flushes once per batch, while still reading its own socket for pings and close.
//! Each end finishes with the close code of docs/PROTOCOL.md §4.4.

use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use iii_protocol::close::{ABORTED, COMPLETE};
use iii_protocol::limits::MAX_CHANNEL_FRAME_BYTES;
use iii_protocol::{ChannelDirection, EndStatus};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::buffer::{BufferClosed, BufferRx, BufferTx, Frame, split_binary};
use super::registry::ChannelRegistry;
use super::{Channel, Claim};
use crate::lifecycle::Shutdown;
use crate::ws::{
    EndSocket, close_and_drain, close_too_big, going_away, invalid_utf8, status_frame,
};

/// Most frames written to a reader between two flushes.
const MAX_BATCH: usize = 256;

/// Serves a socket that connected to one end of `channel`.
pub(crate) async fn serve_end<S: EndSocket>(
    channels: Arc<ChannelRegistry>,
    mut ws: S,
    channel: Arc<Channel>,
    direction: ChannelDirection,
    shutdown: Shutdown,
) {
    if shutdown.is_stopping() {
        close_and_drain(&mut ws, Some(going_away())).await;
        return;
    }
    match channel.claim(direction) {
        Claim::Writer { buffer, stop } => {
            serve_writer(&channels, &channel, ws, buffer, stop, shutdown).await;
        }
        Claim::Reader(buffer) => serve_reader(&channels, &channel, ws, buffer, shutdown).await,
        Claim::AlreadyConnected => {
            tracing::debug!(channel_id = %channel.id, %direction, "end already connected");
            let frame = status_frame(&EndStatus::EndAlreadyConnected);
            close_and_drain(&mut ws, Some(frame)).await;
        }
        Claim::Ended(status) => close_and_drain(&mut ws, Some(status_frame(&status))).await,
    }
}

/// How a writer socket's pumping ended.
enum WriterEnd {
    /// The writer closed (with this meaning) or its socket dropped.
    Closed(EndStatus),
    /// The writer sent a frame over the limit.
    TooBig,
    /// The writer sent a text frame that is not UTF-8.
    InvalidText,
    /// The engine stops the writer: the reader left or the channel expired.
    Stopped(EndStatus),
    /// The engine is shutting down.
    Shutdown,
}

async fn serve_writer<S: EndSocket>(
    channels: &ChannelRegistry,
    channel: &Channel,
    mut ws: S,
    mut buffer: BufferTx,
    mut stop: oneshot::Receiver<EndStatus>,
    mut shutdown: Shutdown,
) {
    let end = tokio::select! {
        biased;
        end = pump_writer(&mut ws, &mut buffer, &mut stop) => end,
        _ = shutdown.wait() => WriterEnd::Shutdown,
    };
    let status = match &end {
        WriterEnd::Closed(status) | WriterEnd::Stopped(status) => status.clone(),
        WriterEnd::TooBig | WriterEnd::InvalidText => EndStatus::WriterLost,
        // The reader learns that the engine went away, not its writer.
        WriterEnd::Shutdown => shutdown_status(),
    };
    tracing::debug!(channel_id = %channel.id, ?status, "writer finished");
    // Record the status before the buffer's sender goes, so the reader finds it once drained.
    if let Some(final_status) = channel.writer_finished(status) {
        channels.retire(channel, final_status);
    }
    drop(buffer);
    match end {
        // Completes the close the writer started: the echo goes out only now, after every
        // frame the writer sent before its close is in the buffer.
        WriterEnd::Closed(_) => close_and_drain(&mut ws, None).await,
        WriterEnd::TooBig => close_too_big(&mut ws).await,
        WriterEnd::InvalidText => close_and_drain(&mut ws, Some(invalid_utf8())).await,
        WriterEnd::Stopped(status) => {
            let frame = close_for(&status, &shutdown);
            close_and_drain(&mut ws, Some(frame)).await;
        }
        WriterEnd::Shutdown => close_and_drain(&mut ws, Some(going_away())).await,
    }
}

/// The status an end records when the engine stops under it: going away (1001).
fn shutdown_status() -> EndStatus {
    EndStatus::GoingAway
}

/// The close frame for an end whose channel ended with `status`. While the engine stops, a
/// peer that vanished went with the engine: the end is told going away (1001), not that its
/// writer was lost or its reader closed.
fn close_for(status: &EndStatus, shutdown: &Shutdown) -> CloseFrame {
    match status {
        EndStatus::WriterLost | EndStatus::ReaderClosed if shutdown.is_stopping() => going_away(),
        _ => status_frame(status),
    }
}

async fn pump_writer<S: EndSocket>(
    ws: &mut S,
    buffer: &mut BufferTx,
    stop: &mut oneshot::Receiver<EndStatus>,
) -> WriterEnd {
    loop {
        let message = tokio::select! {
            biased;
            status = &mut *stop => return WriterEnd::Stopped(status.unwrap_or(EndStatus::ReaderClosed)),
            message = ws.next() => message,
        };
        let frame = match message {
            Some(Ok(WsMessage::Binary(bytes))) if bytes.len() <= MAX_CHANNEL_FRAME_BYTES => {
                for piece in split_binary(bytes) {
                    if let Some(end) = push(buffer, Frame::Binary(piece), stop).await {
                        return end;
                    }
                }
                continue;
            }
            Some(Ok(WsMessage::Text(text))) if text.len() <= MAX_CHANNEL_FRAME_BYTES => {
                Frame::Text(text)
            }
            Some(Ok(WsMessage::Binary(_) | WsMessage::Text(_))) => return WriterEnd::TooBig,
            Some(Ok(WsMessage::Close(frame))) => return WriterEnd::Closed(writer_status(frame)),
            Some(Ok(_)) => continue,
            Some(Err(WsError::Capacity(error))) => {
                tracing::debug!(%error, "channel writer frame too big");
                return WriterEnd::TooBig;
            }
            Some(Err(WsError::Utf8(error))) => {
                tracing::debug!(%error, "channel writer text frame is not UTF-8");
                return WriterEnd::InvalidText;
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "channel writer socket failed");
                return WriterEnd::Closed(EndStatus::WriterLost);
            }
            None => return WriterEnd::Closed(EndStatus::WriterLost),
        };
        if let Some(end) = push(buffer, frame, stop).await {
            return end;
        }
    }
}

/// Puts one frame in the buffer, waiting for room unless the engine stops the writer.
async fn push(
    buffer: &mut BufferTx,
    frame: Frame,
    stop: &mut oneshot::Receiver<EndStatus>,
) -> Option<WriterEnd> {
    tokio::select! {
        biased;
        pushed = buffer.push(frame) => match pushed {
            Ok(()) => None,
            Err(BufferClosed) => Some(WriterEnd::Stopped(
                stop.try_recv().unwrap_or(EndStatus::ReaderClosed),
            )),
        },
        status = &mut *stop => Some(WriterEnd::Stopped(status.unwrap_or(EndStatus::ReaderClosed))),
    }
}

/// What a writer's close frame means: 1000 complete, 4001 aborted, anything else lost.
fn writer_status(frame: Option<CloseFrame>) -> EndStatus {
    match frame {
        Some(frame) => match u16::from(frame.code) {
            COMPLETE => EndStatus::Complete,
            ABORTED => EndStatus::from_close(ABORTED, frame.reason.as_str()),
            _ => EndStatus::WriterLost,
        },
        None => EndStatus::WriterLost,
    }
}

/// How a reader socket's pumping ended.
enum ReaderEnd {
    /// Everything was delivered; close with the writer's status.
    Drained(EndStatus),
    /// The reader closed or dropped.
    Gone,
    /// The engine is shutting down.
    Shutdown,
}

async fn serve_reader<S: EndSocket>(
    channels: &ChannelRegistry,
    channel: &Channel,
    ws: S,
    mut buffer: BufferRx,
    mut shutdown: Shutdown,
) {
    // Split, so the reader's own frames (close, pings) are read even while a write to it is
    // blocked because it stopped reading.
    let (mut sink, mut stream) = ws.split();
    let end = tokio::select! {
        biased;
        end = pump_reader(&mut sink, &mut stream, &mut buffer, channel) => end,
        _ = shutdown.wait() => ReaderEnd::Shutdown,
    };
    // Stops a connected writer before the buffer closes under it, so it learns why.
    if let Some(final_status) = channel.reader_finished() {
        channels.retire(channel, final_status);
    }
    drop(buffer);
    let Ok(mut ws) = stream.reunite(sink) else {
        return;
    };
    match end {
        ReaderEnd::Drained(status) => {
            let frame = close_for(&status, &shutdown);
            close_and_drain(&mut ws, Some(frame)).await;
        }
        ReaderEnd::Gone => close_and_drain(&mut ws, None).await,
        ReaderEnd::Shutdown => close_and_drain(&mut ws, Some(going_away())).await,
    }
}

async fn pump_reader<S: EndSocket>(
    sink: &mut ReaderSink<S>,
    stream: &mut ReaderStream<S>,
    buffer: &mut BufferRx,
    channel: &Channel,
) -> ReaderEnd {
    loop {
        let first = tokio::select! {
            biased;
            message = stream.next() => {
                if reader_gone(message) {
                    return ReaderEnd::Gone;
                }
                continue;
            }
            frame = buffer.recv() => match frame {
                Some(frame) => frame,
                None => return ReaderEnd::Drained(channel.reader_close_status()),
            },
        };
        let batch = write_batch(sink, buffer, first);
        tokio::pin!(batch);
        loop {
            tokio::select! {
                biased;
                written = &mut batch => match written {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::debug!(%error, "channel reader socket failed");
                        return ReaderEnd::Gone;
                    }
                },
                message = stream.next() => if reader_gone(message) {
                    return ReaderEnd::Gone;
                },
            }
        }
    }
}

type ReaderSink<S> = SplitSink<S, WsMessage>;
type ReaderStream<S> = SplitStream<S>;

/// True when what the reader sent ends it. Pings are answered by tungstenite while reading;
/// data from a reader is ignored.
fn reader_gone(message: Option<Result<WsMessage, WsError>>) -> bool {
    matches!(message, Some(Ok(WsMessage::Close(_)) | Err(_)) | None)
}

/// Writes `first` and every other ready frame, then flushes once.
async fn write_batch<S: EndSocket>(
    ws: &mut ReaderSink<S>,
    buffer: &mut BufferRx,
    first: Frame,
) -> Result<(), WsError> {
    feed(ws, buffer, first).await?;
    for _ in 1..MAX_BATCH {
        match buffer.try_recv() {
            Some(next) => feed(ws, buffer, next).await?,
            None => break,
        }
    }
    ws.flush().await
}

/// Hands one frame to the socket; its bytes leave the buffer's budget once the socket has
/// them (or the write failed or was cancelled).
async fn feed<S: EndSocket>(
    ws: &mut ReaderSink<S>,
    buffer: &BufferRx,
    frame: Frame,
) -> Result<(), WsError> {
    let mut release = Release {
        buffer,
        len: frame.len(),
        delivered: false,
    };
    let fed = ws.feed(frame.into_message()).await;
    release.delivered = fed.is_ok();
    fed
}

/// Gives a frame's bytes back to the buffer however its write ended; only a frame the socket
/// took counts as read.
struct Release<'a> {
    buffer: &'a BufferRx,
    len: usize,
    delivered: bool,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if self.delivered {
            self.buffer.release(self.len);
        } else {
            self.buffer.release_undelivered(self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::close_frame;

    #[test]
    fn writer_close_codes_map_to_end_statuses() {
        assert_eq!(
            writer_status(Some(close_frame(1000, "any"))),
            EndStatus::Complete
        );
        assert_eq!(
            writer_status(Some(close_frame(4001, "disk full"))),
            EndStatus::Aborted("disk full".into())
        );
        assert_eq!(
            writer_status(Some(close_frame(1001, ""))),
            EndStatus::WriterLost
        );
        assert_eq!(writer_status(None), EndStatus::WriterLost);
    }
}
