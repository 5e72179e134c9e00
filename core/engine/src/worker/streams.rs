//! Channel ends opened as streams inside a worker's main socket (docs/PROTOCOL.md §4.8): the
//! engine's side of an `open`. The ref is checked exactly as a channel socket's URL is, and an
//! open end is served by the same relay as a socket, so every end status holds unchanged.

use std::sync::Arc;

use bytes::Bytes;
use iii_protocol::StreamChannelRef;
use iii_protocol::streams::{NOT_FOUND, REASON_NOT_FOUND};
use iii_streams::StreamSocket;

use crate::channels::registry::Lookup;
use crate::channels::relay;
use crate::lifecycle::Shutdown;
use crate::state::EngineState;
use crate::ws::{close_and_drain, close_frame, status_frame};

/// Serves the stream `socket` a worker opened with `payload` (a channel ref as JSON): the
/// end it names, the status of a channel that already ended, or a refusal.
pub(crate) async fn serve_open(
    shared: Arc<EngineState>,
    mut socket: StreamSocket,
    payload: Bytes,
    shutdown: Shutdown,
) {
    let parsed = serde_json::from_slice::<StreamChannelRef>(&payload).ok();
    if let Some(channel_ref) = &parsed {
        let key = channel_ref.access_key.clone();
        let (id, direction) = (&channel_ref.channel_id, channel_ref.direction);
        if let Some(end) = crate::cluster::relay::foreign_ref(&shared, id, key, direction) {
            crate::cluster::relay::serve_stream(shared, socket, end, shutdown).await;
            return;
        }
    }
    let found = parsed.and_then(|channel_ref| {
        let id = shared.channels.local_id(&channel_ref.channel_id)?;
        let found = shared
            .channels
            .lookup(&id, channel_ref.direction, &channel_ref.access_key);
        Some((found, channel_ref.direction))
    });
    match found {
        Some((Lookup::Live(channel), direction)) => {
            socket.opened().await;
            relay::serve_end(
                shared.channels.clone(),
                socket,
                channel,
                direction,
                shutdown,
            )
            .await;
        }
        Some((Lookup::Tombstone(status), _)) => {
            socket.opened().await;
            close_and_drain(&mut socket, Some(status_frame(&status))).await;
        }
        Some((Lookup::Unknown, _)) | None => {
            tracing::debug!(stream = socket.id(), "a stream open found no channel");
            close_and_drain(&mut socket, Some(close_frame(NOT_FOUND, REASON_NOT_FOUND))).await;
        }
    }
}
