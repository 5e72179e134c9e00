//! One stream as a WebSocket-like `Stream` + `Sink` of messages.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use iii_protocol::streams::{self, INITIAL_WINDOW, Op};
use tokio::sync::mpsc::OwnedPermit;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::shared::{ABNORMAL, Shared};
use crate::{GRANT_AFTER, StreamTable, lock};

type Reserving = Pin<
    Box<
        dyn Future<Output = Result<OwnedPermit<WsMessage>, tokio::sync::mpsc::error::SendError<()>>>
            + Send,
    >,
>;

/// One stream, driven like a channel end's WebSocket (see the crate docs).
pub struct StreamSocket {
    shared: Arc<Shared>,
    table: Arc<StreamTable>,
    reserving: Option<Reserving>,
    permit: Option<OwnedPermit<WsMessage>>,
    /// The stream has reported its end to the consumer.
    finished: bool,
    /// Where outgoing frames are put together: its allocation is reused once the connection
    /// has written the previous frame, instead of a fresh one per frame.
    scratch: BytesMut,
    /// A data or text frame (and its payload length) waiting for credit.
    pending: Option<(Bytes, i64)>,
}

impl std::fmt::Debug for StreamSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSocket")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl StreamSocket {
    pub(crate) fn new(shared: Arc<Shared>, table: Arc<StreamTable>) -> Self {
        Self {
            shared,
            table,
            reserving: None,
            permit: None,
            finished: false,
            scratch: BytesMut::new(),
            pending: None,
        }
    }

    /// The stream's id on its connection.
    pub fn id(&self) -> u32 {
        self.shared.id
    }

    /// The worker's side: waits for the engine's answer to the `open`. `Err` carries the
    /// close it answered with instead (code, reason), or `None` when the connection ended.
    pub fn wait_opened(
        &self,
    ) -> impl Future<Output = Result<(), Option<(u16, String)>>> + Send + Sync + 'static {
        let shared = self.shared.clone();
        std::future::poll_fn(move |cx| {
            let mut state = lock(&shared.state);
            if state.opened {
                return Poll::Ready(Ok(()));
            }
            if let Some(refusal) = state.refused.clone() {
                return Poll::Ready(Err(Some(refusal)));
            }
            if state.gone {
                return Poll::Ready(Err(None));
            }
            state.reader = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Gives the stream up without answering a close its peer started: dropped after this, it
    /// ends abnormally (the engine's relay uses it when the far end never confirmed a
    /// writer's close, so the writer must not read a clean end).
    pub fn abandon(&mut self) {
        let mut state = lock(&self.shared.state);
        state.echo = None;
        state
            .inbox
            .retain(|message| !matches!(message, WsMessage::Close(_)));
    }

    /// The engine's side: tells the worker the end is open, in order with what the stream
    /// sends next (so a close never overtakes it).
    pub fn opened(&self) -> impl Future<Output = ()> + Send + 'static {
        self.send_ordered(Op::Opened, &[])
    }

    /// Queues a frame behind everything queued before it, waiting for room.
    pub(crate) fn send_ordered(
        &self,
        op: Op,
        payload: &[u8],
    ) -> impl Future<Output = ()> + Send + 'static {
        let out = self.table.out.clone();
        let frame = streams::encode(op, self.shared.id, payload);
        async move {
            if let Ok(permit) = out.reserve_owned().await {
                permit.send(WsMessage::Binary(frame.into()));
            }
        }
    }

    pub(crate) fn send_control(&self, op: Op, payload: &[u8]) {
        self.table
            .send(streams::encode(op, self.shared.id, payload));
    }

    /// Waits for room in the connection's queue.
    fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.permit.is_some() {
            return Poll::Ready(Ok(()));
        }
        let reserving = self
            .reserving
            .get_or_insert_with(|| Box::pin(self.table.out.clone().reserve_owned()));
        match reserving.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(reserved) => {
                self.reserving = None;
                match reserved {
                    Ok(permit) => {
                        self.permit = Some(permit);
                        Poll::Ready(Ok(()))
                    }
                    Err(_) => Poll::Ready(Err(WsError::ConnectionClosed)),
                }
            }
        }
    }

    /// Sends the frame waiting for credit once there is credit (or once the peer has closed:
    /// its side drops it) and room in the connection's queue.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.pending.is_none() {
            return Poll::Ready(Ok(()));
        }
        {
            let mut state = lock(&self.shared.state);
            if state.gone {
                return Poll::Ready(Err(WsError::ConnectionClosed));
            }
            if state.credit <= 0 && !state.peer_closed {
                state.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        std::task::ready!(self.poll_permit(cx))?;
        if let (Some((frame, cost)), Some(permit)) = (self.pending.take(), self.permit.take()) {
            lock(&self.shared.state).credit -= cost;
            permit.send(WsMessage::Binary(frame));
        }
        Poll::Ready(Ok(()))
    }

    /// Sends the echo of the peer's close if it is owed (the engine's side).
    fn poll_echo(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if lock(&self.shared.state).echo.is_none() {
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(self.poll_permit(cx))?;
        let echo = {
            let mut state = lock(&self.shared.state);
            state.closed = true;
            state.echo.take()
        };
        if let (Some((code, reason)), Some(permit)) = (echo, self.permit.take()) {
            let frame = streams::encode(
                Op::Close,
                self.shared.id,
                &streams::close_payload(code, &reason),
            );
            permit.send(WsMessage::Binary(frame.into()));
        }
        Poll::Ready(Ok(()))
    }
}

impl Stream for StreamSocket {
    type Item = Result<WsMessage, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let mut state = lock(&self.shared.state);
        if let Some(why) = state.violation {
            drop(state);
            self.finished = true;
            let error = std::io::Error::new(std::io::ErrorKind::InvalidData, why);
            return Poll::Ready(Some(Err(WsError::Io(error))));
        }
        if let Some(message) = state.inbox.pop_front() {
            if let WsMessage::Close(Some(frame)) = &message
                && !state.closed
            {
                // Answer the peer's close now that the consumer has taken it, like a WebSocket
                // library: at once on the worker's side, on the next flush on the engine's (it
                // first hands on everything that came before).
                let echo = (u16::from(frame.code), frame.reason.to_string());
                if self.table.echo_at_once {
                    state.closed = true;
                    if let Some(waker) = state.writer.take() {
                        waker.wake();
                    }
                    drop(state);
                    let (code, reason) = echo;
                    self.send_control(Op::Close, &streams::close_payload(code, &reason));
                    return Poll::Ready(Some(Ok(message)));
                }
                state.echo = Some(echo);
            }
            let len = message.len() as u64;
            let grant = if message.is_binary() || message.is_text() {
                state.ungranted += len;
                // Grant in batches; early only when everything received is taken and the
                // sender is running low (it may be waiting), so a fast consumer does not
                // answer every frame with a credit.
                let window = u64::from(INITIAL_WINDOW);
                let sender_left = (window + state.granted).saturating_sub(state.received);
                let sender_low = sender_left < window / 2;
                let all_taken = state.inbox.is_empty();
                if state.ungranted >= GRANT_AFTER
                    || (all_taken && sender_low && state.ungranted > 0)
                {
                    let grant = state.ungranted;
                    state.granted += grant;
                    state.ungranted = 0;
                    Some(grant)
                } else {
                    None
                }
            } else {
                None
            };
            drop(state);
            if let Some(grant) = grant {
                let bytes = u32::try_from(grant).unwrap_or(u32::MAX);
                self.send_control(Op::Credit, &streams::credit_payload(bytes));
            }
            return Poll::Ready(Some(Ok(message)));
        }
        if state.gone || state.vanished || (state.peer_closed && state.closed) {
            drop(state);
            self.finished = true;
            return Poll::Ready(None);
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Sink<WsMessage> for StreamSocket {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        {
            let state = lock(&self.shared.state);
            if state.gone {
                return Poll::Ready(Err(WsError::ConnectionClosed));
            }
            if state.closed {
                return Poll::Ready(Err(WsError::AlreadyClosed));
            }
        }
        std::task::ready!(self.poll_pending(cx))?;
        self.poll_permit(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: WsMessage) -> Result<(), WsError> {
        let this = self.get_mut();
        let id = this.shared.id;
        let Some(permit) = this.permit.take() else {
            let error = std::io::Error::other("a stream was sent to without poll_ready");
            return Err(WsError::Io(error));
        };
        let mut state = lock(&this.shared.state);
        if state.gone {
            return Err(WsError::ConnectionClosed);
        }
        if state.closed {
            return Err(WsError::AlreadyClosed);
        }
        let (frame, cost) = match &message {
            WsMessage::Binary(data) => (
                encode_reusing(&mut this.scratch, Op::Data, id, data),
                data.len() as i64,
            ),
            WsMessage::Text(text) => (
                encode_reusing(&mut this.scratch, Op::Text, id, text.as_bytes()),
                text.len() as i64,
            ),
            WsMessage::Close(frame) => {
                // A close takes no credit: it carries no payload, and it follows everything
                // sent before it in the connection's queue.
                state.closed = true;
                state.echo = None;
                let (code, reason) = match frame {
                    Some(frame) => (u16::from(frame.code), frame.reason.as_str()),
                    None => (1005, ""),
                };
                let close = streams::encode(Op::Close, id, &streams::close_payload(code, reason));
                drop(state);
                permit.send(WsMessage::Binary(Bytes::from(close)));
                return Ok(());
            }
            // Pings and raw frames mean nothing on a stream (the permit goes back).
            _ => return Ok(()),
        };
        if state.credit > 0 || state.peer_closed {
            state.credit -= cost;
            drop(state);
            permit.send(WsMessage::Binary(frame));
        } else {
            // No credit: the frame waits here (the next poll_ready or flush sends it).
            this.pending = Some((frame, cost));
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        // The connection's writer flushes what it sends; a stream sends what waits for
        // credit and owes the echo of a close.
        std::task::ready!(self.poll_pending(cx))?;
        self.poll_echo(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        std::task::ready!(self.poll_pending(cx))?;
        std::task::ready!(self.as_mut().poll_echo(cx))?;
        if lock(&self.shared.state).closed {
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(self.poll_permit(cx))?;
        Poll::Ready(self.start_send(WsMessage::Close(None)))
    }
}

impl Drop for StreamSocket {
    fn drop(&mut self) {
        let close = {
            let mut state = lock(&self.shared.state);
            let close = (!state.closed && !state.gone).then(|| {
                // A close the peer started is answered; otherwise the stream vanished.
                match state.inbox.iter().find_map(|message| match message {
                    WsMessage::Close(Some(frame)) => {
                        Some((u16::from(frame.code), frame.reason.to_string()))
                    }
                    _ => None,
                }) {
                    Some(echo) => echo,
                    None => state.echo.take().unwrap_or((ABNORMAL, String::new())),
                }
            });
            state.closed = true;
            close
        };
        if let Some((code, reason)) = close {
            self.send_control(Op::Close, &streams::close_payload(code, &reason));
        }
        self.table.forget(self.shared.id);
    }
}

/// One frame (op, stream id, payload) built in `scratch`, whose allocation comes back for the
/// next frame once nobody holds this one.
fn encode_reusing(scratch: &mut BytesMut, op: Op, stream: u32, payload: &[u8]) -> Bytes {
    scratch.reserve(streams::HEADER_BYTES + payload.len());
    scratch.put_u8(op as u8);
    scratch.put_u32(stream);
    scratch.put_slice(payload);
    scratch.split().freeze()
}
