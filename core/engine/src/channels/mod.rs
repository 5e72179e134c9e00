//! Channels: a writer socket and a reader socket joined by a bounded buffer, so workers can
//! stream bytes to each other through the engine (docs/PROTOCOL.md §4).
//!
//! This module holds one channel's state machine: which end is connected, which has
//! finished, and the end status each side must learn. The sockets are driven by
//! [`relay`]; channels are found, expired and tombstoned by [`registry`].

pub(crate) mod buffer;
pub(crate) mod keys;
pub(crate) mod registry;
pub(crate) mod relay;
pub(crate) mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use iii_protocol::{ChannelDirection, EndStatus};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use crate::quota::Slot;
use crate::util::lock;
use buffer::{BufferRx, BufferTx};
use keys::AccessKey;
use stats::ChannelStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Not connected yet.
    Waiting,
    /// A socket holds this end.
    Connected,
    /// Finished (or given up without ever connecting).
    Done,
}

struct State {
    writer: End,
    reader: End,
    /// The writer's side of the buffer until the writer connects.
    tx: Option<BufferTx>,
    /// The reader's side of the buffer until the reader connects; frames wait here for a
    /// reader that connects late.
    rx: Option<BufferRx>,
    /// Tells a connected writer why the engine closes it (reader gone, expired).
    stop_writer: Option<oneshot::Sender<EndStatus>>,
    /// What the reader is told once it has drained the buffer.
    writer_status: Option<EndStatus>,
    /// How the channel ended, for tombstones: its first terminal event.
    final_status: Option<EndStatus>,
    retired: bool,
}

/// What a socket gets when it takes one end.
pub(crate) enum Claim {
    /// The writer end, with the signal telling it when the engine closes it.
    Writer {
        /// Where its frames go.
        buffer: BufferTx,
        /// Fires with the status to close the writer socket with.
        stop: oneshot::Receiver<EndStatus>,
    },
    /// The reader end.
    Reader(BufferRx),
    /// Another socket holds this end.
    AlreadyConnected,
    /// This end already finished; close with this status.
    Ended(EndStatus),
}

/// One channel.
pub(crate) struct Channel {
    /// The channel id (a UUID v4).
    pub(crate) id: Uuid,
    writer_key: AccessKey,
    reader_key: AccessKey,
    /// When the channel expires unless both ends have connected.
    deadline: Instant,
    /// Both ends have connected: the TTL no longer applies.
    settled: AtomicBool,
    state: Mutex<State>,
    /// The quota slots the channel holds (its creating connection's, the engine's), given
    /// back when it retires.
    slots: Mutex<Vec<Slot>>,
    /// What it has moved so far.
    pub(crate) stats: Arc<ChannelStats>,
}

/// How one end of a channel stands, for `/status`.
fn end_state_name(writer: bool, state: &State) -> &'static str {
    let end = if writer { state.writer } else { state.reader };
    match end {
        End::Waiting => "waiting",
        End::Connected => "connected",
        End::Done => "done",
    }
}

impl Channel {
    pub(crate) fn new(
        id: Uuid,
        (writer_key, reader_key): (AccessKey, AccessKey),
        (tx, rx): (BufferTx, BufferRx),
        deadline: Instant,
        slots: Vec<Slot>,
    ) -> Self {
        Self {
            id,
            stats: tx.stats(),
            writer_key,
            reader_key,
            deadline,
            slots: Mutex::new(slots),
            settled: AtomicBool::new(false),
            state: Mutex::new(State {
                writer: End::Waiting,
                reader: End::Waiting,
                tx: Some(tx),
                rx: Some(rx),
                stop_writer: None,
                writer_status: None,
                final_status: None,
                retired: false,
            }),
        }
    }

    /// How the (writer, reader) ends stand: `waiting`, `connected` or `done`.
    pub(crate) fn end_states(&self) -> (&'static str, &'static str) {
        let state = lock(&self.state);
        (end_state_name(true, &state), end_state_name(false, &state))
    }

    /// True once either end has connected (or finished).
    pub(crate) fn has_started(&self) -> bool {
        let state = lock(&self.state);
        state.writer != End::Waiting || state.reader != End::Waiting
    }

    /// The channel no longer counts against any quota.
    pub(crate) fn release_slots(&self) {
        lock(&self.slots).clear();
    }

    /// True when `key` opens the `direction` end (and only that end).
    pub(crate) fn key_matches(&self, direction: ChannelDirection, key: &str) -> bool {
        match direction {
            ChannelDirection::Write => self.writer_key.matches(key),
            ChannelDirection::Read => self.reader_key.matches(key),
        }
    }

    /// True when the TTL has passed and the ends have not both connected.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        now >= self.deadline && !self.settled.load(Ordering::Relaxed)
    }

    /// Takes the `direction` end for a socket that just connected.
    pub(crate) fn claim(&self, direction: ChannelDirection) -> Claim {
        let mut state = lock(&self.state);
        let claim = match direction {
            ChannelDirection::Write => match (state.writer, state.tx.take()) {
                (End::Connected, _) => Claim::AlreadyConnected,
                (End::Waiting, Some(buffer)) => {
                    let (tell, stop) = oneshot::channel();
                    state.writer = End::Connected;
                    state.stop_writer = Some(tell);
                    Claim::Writer { buffer, stop }
                }
                _ => Claim::Ended(state.ended_status()),
            },
            ChannelDirection::Read => match (state.reader, state.rx.take()) {
                (End::Connected, _) => Claim::AlreadyConnected,
                (End::Waiting, Some(buffer)) => {
                    state.reader = End::Connected;
                    Claim::Reader(buffer)
                }
                _ => Claim::Ended(state.ended_status()),
            },
        };
        if state.writer != End::Waiting && state.reader != End::Waiting {
            self.settled.store(true, Ordering::Relaxed);
        }
        claim
    }

    /// The writer's socket ended with `status`. Call before dropping its [`BufferTx`], so the
    /// reader finds the status once the buffer is drained. Returns the final status when the
    /// channel is finished and must be retired.
    pub(crate) fn writer_finished(&self, status: EndStatus) -> Option<EndStatus> {
        let mut state = lock(&self.state);
        state.writer = End::Done;
        state.stop_writer = None;
        state.writer_status.get_or_insert(status.clone());
        state.final_status.get_or_insert(status);
        state.retire_if_done()
    }

    /// The reader's socket ended. Call before dropping its [`BufferRx`]. Closes a connected
    /// writer with `reader_closed`; a writer that never connected will find the channel ended.
    pub(crate) fn reader_finished(&self) -> Option<EndStatus> {
        let mut state = lock(&self.state);
        state.reader = End::Done;
        if state.writer != End::Done {
            state.final_status.get_or_insert(EndStatus::ReaderClosed);
        }
        match state.writer {
            End::Connected => {
                if let Some(stop) = state.stop_writer.take() {
                    let _ = stop.send(EndStatus::ReaderClosed);
                }
            }
            End::Waiting => {
                state.writer = End::Done;
                state.tx = None;
            }
            End::Done => {}
        }
        state.retire_if_done()
    }

    /// The TTL passed before both ends connected: whichever end is connected is closed with
    /// `expired`. Returns the final status when the channel can be retired at once.
    pub(crate) fn expire(&self) -> Option<EndStatus> {
        let mut state = lock(&self.state);
        if state.retired || self.settled.load(Ordering::Relaxed) {
            return None;
        }
        state.final_status.get_or_insert(EndStatus::Expired);
        // Stop a connected writer before closing the buffer under it, so it learns why.
        if let Some(stop) = state.stop_writer.take() {
            let _ = stop.send(EndStatus::Expired);
        }
        if state.writer == End::Waiting {
            state.writer = End::Done;
            state.writer_status.get_or_insert(EndStatus::Expired);
            state.tx = None;
        }
        if state.reader == End::Waiting {
            state.reader = End::Done;
            state.rx = None;
            // The reader never got the stream, however the writer ended it: a late reader
            // must learn that it expired, not find a clean end with the bytes gone.
            state.final_status = Some(EndStatus::Expired);
        }
        state.retire_if_done()
    }

    /// Gives up on a reader that never connected (the engine wrote an HTTP request body
    /// nobody read): the buffer and a writer still pushing are stopped, and a late reader
    /// finds the channel `expired`. Returns the final status when the channel can be
    /// retired at once.
    pub(crate) fn abandon_reader(&self) -> Option<EndStatus> {
        let mut state = lock(&self.state);
        if state.reader != End::Waiting {
            return None;
        }
        state.reader = End::Done;
        state.rx = None;
        state.final_status = Some(EndStatus::Expired);
        if let Some(stop) = state.stop_writer.take() {
            let _ = stop.send(EndStatus::Expired);
        }
        state.retire_if_done()
    }

    /// The status a connected reader closes with after draining the buffer.
    pub(crate) fn reader_close_status(&self) -> EndStatus {
        lock(&self.state)
            .writer_status
            .clone()
            .unwrap_or(EndStatus::WriterLost)
    }
}

impl State {
    fn ended_status(&self) -> EndStatus {
        self.final_status
            .clone()
            .or_else(|| self.writer_status.clone())
            .unwrap_or(EndStatus::WriterLost)
    }

    fn retire_if_done(&mut self) -> Option<EndStatus> {
        if self.writer != End::Done || self.reader != End::Done || self.retired {
            return None;
        }
        self.retired = true;
        self.tx = None;
        self.rx = None;
        Some(self.ended_status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ByteCounters;
    use std::sync::Arc;
    use std::time::Duration;

    fn channel() -> Channel {
        let keys = AccessKey::generate_pair();
        let buffer = buffer::buffer(4, Arc::new(ByteCounters::default()));
        Channel::new(Uuid::new_v4(), keys, buffer, Instant::now(), Vec::new())
    }

    #[tokio::test]
    async fn complete_stream_retires_after_both_ends() {
        let channel = channel();
        let Claim::Writer { buffer: tx, .. } = channel.claim(ChannelDirection::Write) else {
            panic!("writer claim")
        };
        assert!(matches!(
            channel.claim(ChannelDirection::Write),
            Claim::AlreadyConnected
        ));
        let Claim::Reader(_rx) = channel.claim(ChannelDirection::Read) else {
            panic!("reader claim")
        };
        assert!(!channel.is_expired(Instant::now() + Duration::from_secs(1)));
        assert_eq!(channel.writer_finished(EndStatus::Complete), None);
        drop(tx);
        assert_eq!(channel.reader_close_status(), EndStatus::Complete);
        assert_eq!(channel.reader_finished(), Some(EndStatus::Complete));
    }

    #[tokio::test]
    async fn reader_leaving_stops_the_writer() {
        let channel = channel();
        let Claim::Writer { stop, .. } = channel.claim(ChannelDirection::Write) else {
            panic!("writer claim")
        };
        let Claim::Reader(_rx) = channel.claim(ChannelDirection::Read) else {
            panic!("reader claim")
        };
        assert_eq!(channel.reader_finished(), None);
        assert_eq!(stop.await, Ok(EndStatus::ReaderClosed));
        assert_eq!(
            channel.writer_finished(EndStatus::ReaderClosed),
            Some(EndStatus::ReaderClosed)
        );
    }

    #[tokio::test]
    async fn an_abandoned_reader_stops_the_writer_and_tombstones_as_expired() {
        let channel = channel();
        let Claim::Writer { stop, .. } = channel.claim(ChannelDirection::Write) else {
            panic!("writer claim")
        };
        assert_eq!(
            channel.abandon_reader(),
            None,
            "the writer is still running"
        );
        assert_eq!(stop.await, Ok(EndStatus::Expired));
        assert_eq!(
            channel.writer_finished(EndStatus::Complete),
            Some(EndStatus::Expired)
        );
        assert!(matches!(
            channel.claim(ChannelDirection::Read),
            Claim::Ended(EndStatus::Expired)
        ));
        let read = self::channel();
        let Claim::Reader(_rx) = read.claim(ChannelDirection::Read) else {
            panic!("reader claim")
        };
        assert_eq!(read.abandon_reader(), None, "a connected reader is kept");
    }

    #[tokio::test]
    async fn expiry_closes_the_connected_end() {
        let channel = channel();
        let Claim::Reader(_rx) = channel.claim(ChannelDirection::Read) else {
            panic!("reader claim")
        };
        assert!(channel.is_expired(Instant::now()));
        assert_eq!(channel.expire(), None);
        assert_eq!(channel.reader_close_status(), EndStatus::Expired);
        assert!(matches!(
            channel.claim(ChannelDirection::Write),
            Claim::Ended(EndStatus::Expired)
        ));
        assert_eq!(channel.reader_finished(), Some(EndStatus::Expired));
        let idle = self::channel();
        assert_eq!(idle.expire(), Some(EndStatus::Expired));
    }
}
