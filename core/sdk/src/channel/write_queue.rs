//! A writer's operations in call order, with a byte window: the queue the language bindings put
//! in front of a [`ChannelWriter`], so that calls which return before their write is done (a
//! Node `write()` callback, an un-awaited Python coroutine) still reach the socket in call order
//! while the caller's memory stays bounded.
//!
//! Every operation takes its place in one queue when it is called, so writes keep their call
//! order however the caller awaits them (or does not). A write or message is acknowledged as
//! soon as it lies within the writer's window — at most [`WINDOW_BYTES`] queued ahead of
//! what the core has sent — so a writer keeps a few frames in flight instead of waiting for
//! each one, and a caller that waits for its acknowledgements can never queue more than the
//! window. A failure is reported by the next operation (and by `close`, which waits for
//! everything before it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::{ChannelWriter, IIIError};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Bytes a writer may have queued beyond what the core has sent.
pub const WINDOW_BYTES: u64 = 1 << 20;

/// One operation on a writer.
pub enum WriteOp {
    /// Payload bytes.
    Write(Bytes),
    /// A text message.
    Message(String),
    /// A clean end.
    Close,
    /// An aborted end, with its reason.
    Abort(String),
}

type Reply = oneshot::Sender<Result<(), IIIError>>;

/// How the caller learns an operation's fate.
pub enum WriteAck {
    /// Already known.
    Now(Result<(), IIIError>),
    /// Known once the receiver fires.
    Later(oneshot::Receiver<Result<(), IIIError>>),
}

impl WriteAck {
    /// Waits for the operation's fate (a queue whose task is gone reports
    /// [`IIIError::Shutdown`]).
    pub async fn wait(self) -> Result<(), IIIError> {
        match self {
            Self::Now(outcome) => outcome,
            Self::Later(receiver) => receiver.await.unwrap_or(Err(IIIError::Shutdown)),
        }
    }
}

#[derive(Default)]
struct Window {
    /// Bytes queued so far (all time).
    queued: u64,
    /// Bytes the core has handled so far.
    handled: u64,
    /// Callers waiting for their write to enter the window: (its end offset, reply).
    waiting: VecDeque<(u64, Reply)>,
    /// The first failure; every later operation reports it.
    failed: Option<IIIError>,
    /// A close or abort is queued: later writes and messages fail at once.
    ending: bool,
}

struct Entry {
    op: WriteOp,
    cost: u64,
    /// For operations acknowledged when done (close, abort).
    reply: Option<Reply>,
}

/// The queue in front of one core writer.
pub struct WriteQueue {
    writer: Arc<ChannelWriter>,
    window: Arc<Mutex<Window>>,
    /// To the task running the operations (started on first use).
    entries: OnceLock<mpsc::UnboundedSender<Entry>>,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue")
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

fn lock(window: &Mutex<Window>) -> MutexGuard<'_, Window> {
    window.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WriteQueue {
    /// A queue for `writer`.
    pub fn new(writer: Arc<ChannelWriter>) -> Self {
        Self {
            writer,
            window: Arc::default(),
            entries: OnceLock::new(),
        }
    }

    /// A queue for `writer`, shared (as bindings hold it).
    pub fn over(writer: ChannelWriter) -> Arc<Self> {
        Arc::new(Self::new(Arc::new(writer)))
    }

    /// The writer behind this queue.
    pub fn writer(&self) -> &Arc<ChannelWriter> {
        &self.writer
    }

    /// True while nothing was pushed and the writer itself was not used either.
    pub fn is_untouched(&self) -> bool {
        let window = lock(&self.window);
        window.queued == 0 && !window.ending && self.writer.is_untouched()
    }

    /// Queues `op` now; the [`WriteAck`] tells when the caller may go on.
    pub fn push(&self, op: WriteOp) -> WriteAck {
        let entries = self.entries.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            crate::runtime().spawn(run(self.writer.clone(), self.window.clone(), rx));
            tx
        });
        let (cost, windowed) = match &op {
            WriteOp::Write(data) => (data.len().max(1) as u64, true),
            WriteOp::Message(text) => (text.len().max(1) as u64, true),
            WriteOp::Close | WriteOp::Abort(_) => (0, false),
        };
        let mut window = lock(&self.window);
        if let Some(error) = &window.failed {
            return WriteAck::Now(Err(error.clone()));
        }
        if windowed && window.ending {
            return WriteAck::Now(Err(IIIError::ChannelClosed {
                code: iii_protocol::close::COMPLETE,
                reason: "the writer is closed".into(),
            }));
        }
        window.ending |= !windowed;
        window.queued += cost;
        let end = window.queued;
        let (ack, reply) = if windowed && end - window.handled <= WINDOW_BYTES {
            (WriteAck::Now(Ok(())), None)
        } else {
            let (reply, receiver) = oneshot::channel();
            if windowed {
                window.waiting.push_back((end, reply));
                (WriteAck::Later(receiver), None)
            } else {
                (WriteAck::Later(receiver), Some(reply))
            }
        };
        if let Err(mpsc::error::SendError(entry)) = entries.send(Entry { op, cost, reply }) {
            if let Some(reply) = entry.reply {
                let _ = reply.send(Err(IIIError::Shutdown));
            }
            return WriteAck::Now(Err(IIIError::Shutdown));
        }
        ack
    }
}

/// Runs a writer's operations one after another, opening the window as they complete.
async fn run(
    writer: Arc<ChannelWriter>,
    window: Arc<Mutex<Window>>,
    mut entries: mpsc::UnboundedReceiver<Entry>,
) {
    while let Some(Entry { op, cost, reply }) = entries.recv().await {
        let outcome = match op {
            WriteOp::Write(data) => writer.write_bytes(data).await,
            WriteOp::Message(text) => writer.send_message(&text).await,
            WriteOp::Close => writer.close().await,
            WriteOp::Abort(reason) => writer.abort(&reason).await,
        };
        {
            let mut window = lock(&window);
            window.handled += cost;
            if let Err(error) = &outcome
                && window.failed.is_none()
            {
                window.failed = Some(error.clone());
            }
            let handled = window.handled;
            while let Some((end, _)) = window.waiting.front() {
                if window.failed.is_none() && end - handled > WINDOW_BYTES {
                    break;
                }
                if let Some((_, waiter)) = window.waiting.pop_front() {
                    let answer = window.failed.clone().map_or(Ok(()), Err);
                    let _ = waiter.send(answer);
                }
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
}
