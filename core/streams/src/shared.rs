//! The state of one stream, shared by its socket and the connection's read loop, and what
//! the read loop does to it as frames arrive.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use iii_protocol::streams::{INITIAL_WINDOW, PROTOCOL_ERROR};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::lock;

/// Close code of a stream dropped without a close: like a socket that vanished.
pub(crate) const ABNORMAL: u16 = 1006;

#[derive(Default)]
pub(crate) struct State {
    pub(crate) inbox: VecDeque<WsMessage>,
    /// Payload bytes received, and granted to the peer beyond the initial window.
    pub(crate) received: u64,
    pub(crate) granted: u64,
    /// Payload bytes the consumer took and that were not granted back yet.
    pub(crate) ungranted: u64,
    /// The peer's close arrived (it is in the inbox, or was taken).
    pub(crate) peer_closed: bool,
    /// Our close was sent (or is owed to the peer as the echo of its close, see `echo`).
    pub(crate) closed: bool,
    /// The engine's side: the echo of the peer's close, sent on the next flush.
    pub(crate) echo: Option<(u16, String)>,
    /// Why the peer broke the stream's rules.
    pub(crate) violation: Option<&'static str>,
    /// The connection ended.
    pub(crate) gone: bool,
    /// The peer's end vanished without a close.
    pub(crate) vanished: bool,
    /// The engine answered our `open`.
    pub(crate) opened: bool,
    /// The engine refused our `open` with this close.
    pub(crate) refused: Option<(u16, String)>,
    /// Payload bytes we may still send (may dip below zero by the last frame).
    pub(crate) credit: i64,
    pub(crate) reader: Option<Waker>,
    pub(crate) writer: Option<Waker>,
}

/// The state of one stream, shared by its socket and the connection's read loop.
pub(crate) struct Shared {
    pub(crate) id: u32,
    pub(crate) state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(id: u32) -> Arc<Self> {
        Arc::new(Self {
            id,
            state: Mutex::new(State {
                credit: i64::from(INITIAL_WINDOW),
                ..State::default()
            }),
        })
    }

    pub(crate) fn wake_all(state: &mut State) {
        if let Some(waker) = state.reader.take() {
            waker.wake();
        }
        if let Some(waker) = state.writer.take() {
            waker.wake();
        }
    }

    pub(crate) fn opened(&self) {
        let mut state = lock(&self.state);
        state.opened = true;
        Self::wake_all(&mut state);
    }

    /// A data or text frame arrived. Returns the close to answer with, if any (never here).
    pub(crate) fn receive(&self, message: WsMessage) -> Option<(u16, String)> {
        let len = message.len() as u64;
        let mut state = lock(&self.state);
        if state.peer_closed || state.violation.is_some() {
            return None;
        }
        // A sender may send while it has any credit left, so its last message may overrun
        // the window; one sent with none left breaks the rules.
        if state.received >= u64::from(INITIAL_WINDOW) + state.granted {
            drop(state);
            return self.violate("payload past the stream's window");
        }
        state.received += len;
        state.inbox.push_back(message);
        if let Some(waker) = state.reader.take() {
            waker.wake();
        }
        None
    }

    /// The peer broke the stream's rules: the consumer sees an error, the peer a close.
    pub(crate) fn violate(&self, why: &'static str) -> Option<(u16, String)> {
        let mut state = lock(&self.state);
        tracing::debug!(stream = self.id, why, "a stream broke the rules");
        state.violation.get_or_insert(why);
        state.inbox.clear();
        Self::wake_all(&mut state);
        if state.closed {
            return None;
        }
        state.closed = true;
        Some((PROTOCOL_ERROR, why.to_string()))
    }

    /// The peer's close arrived: the consumer takes it after everything before it, and this
    /// side answers it then (see [`StreamSocket`]'s `poll_next`).
    pub(crate) fn peer_closed(&self, code: u16, reason: &str) -> Option<(u16, String)> {
        let mut state = lock(&self.state);
        if state.peer_closed {
            return None;
        }
        state.peer_closed = true;
        if !state.opened {
            // An `open` refused outright: no `opened` before the close.
            state.refused = Some((code, reason.to_string()));
        }
        if code == ABNORMAL {
            // The peer's end vanished (dropped without a close): the stream just ends, as a
            // socket that drops without a Close frame does, and nothing answers.
            state.vanished = true;
            state.closed = true;
            Self::wake_all(&mut state);
            return None;
        }
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.to_string().into(),
        };
        state.inbox.push_back(WsMessage::Close(Some(frame)));
        Self::wake_all(&mut state);
        None
    }

    pub(crate) fn credit(&self, bytes: u32) {
        let mut state = lock(&self.state);
        state.credit = state.credit.saturating_add(i64::from(bytes));
        if let Some(waker) = state.writer.take() {
            waker.wake();
        }
    }

    pub(crate) fn connection_gone(&self, close: Option<&(u16, String)>) {
        let mut state = lock(&self.state);
        if let (Some((code, reason)), false) = (close, state.peer_closed) {
            // The connection closed with a status every stream shares (the engine going
            // away): each stream reads it after what it had received, as its own close.
            let frame = CloseFrame {
                code: (*code).into(),
                reason: reason.clone().into(),
            };
            state.inbox.push_back(WsMessage::Close(Some(frame)));
        }
        state.gone = true;
        Self::wake_all(&mut state);
    }
}
