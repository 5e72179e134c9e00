//! The reader's message pump: delivers text messages to `on_message` callbacks while nobody
//! reads the stream yet.
//!
//! Reads happen on the consumer's own future (no task hop per frame), so a channel that is
//! only listened to needs someone else to drive its socket. The pump does that until the first
//! read, keeping up to a few binary frames it meets for the consumer, then hands the
//! socket over for good.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::reader::{ChannelEvent, Shared, Texts};

/// Binary frames the pump keeps for the consumer before it stops reading.
const STASH_FRAMES: usize = 8;

/// Runs until a consumer takes over, the reader closes or is dropped, or the stream ends.
pub(super) async fn run(shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let mut closing = shared.closing.subscribe();
    loop {
        if shared.consumer.load(Ordering::Acquire) || shared.is_closing() {
            return;
        }
        let mut state = tokio::select! {
            biased;
            _ = &mut stopped => return,
            _ = closing.wait_for(|closing| *closing) => return,
            _ = shared.consumer_arrived.notified() => return,
            state = shared.socket.lock() => state,
        };
        if shared.stash().len() >= STASH_FRAMES || shared.open(&mut state).await.is_err() {
            // Full, or the connect failed (recorded): nothing more to do until a consumer comes.
            return;
        }
        let read = tokio::select! {
            biased;
            _ = &mut stopped => return,
            _ = closing.wait_for(|closing| *closing) => return,
            _ = shared.consumer_arrived.notified() => return,
            read = shared.read_event(&mut state, Texts::Deliver) => read,
        };
        match read {
            Ok(Some(ChannelEvent::Data(chunk))) => shared.stash().push_back(chunk),
            Ok(Some(ChannelEvent::Message(_))) => {}
            // The end is recorded for the consumer.
            Ok(None) | Err(_) => return,
        }
    }
}
