//! HTTP response bodies: small whole ones (errors, plain results) and streamed ones that
//! pull frames from a response channel only as fast as hyper writes them to the client.
//!
//! A streamed body that ends with anything but a complete channel yields an error, which
//! makes hyper cut the connection without the terminating chunk: the client sees a
//! truncated response instead of a short one that looks whole.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame as BodyFrame, SizeHint};
use iii_protocol::EndStatus;

use super::response::Exchange;
use crate::channels::buffer::{BufferRx, Frame};

/// The response channel ended without completing; the HTTP response is cut off.
#[derive(Debug, thiserror::Error)]
#[error("response ended abnormally: {0:?}")]
pub(crate) struct ResponseCut(EndStatus);

/// A response body.
pub(crate) enum HttpBody {
    /// A body held whole (possibly empty), sent once.
    Full(Option<Bytes>),
    /// A body streamed from a response channel.
    Stream(Box<StreamBody>),
}

impl HttpBody {
    /// An empty body.
    pub(crate) fn empty() -> Self {
        Self::Full(None)
    }

    /// A body of `bytes`.
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self::Full(Some(bytes).filter(|bytes| !bytes.is_empty()))
    }
}

impl Body for HttpBody {
    type Data = Bytes;
    type Error = ResponseCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, ResponseCut>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(BodyFrame::data(bytes)))),
            Self::Stream(body) => body.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

/// The body of a streamed response: the first frame (which sent the head), then every
/// binary frame of the response channel until it ends. Dropping it (response done, or the
/// client went away) finishes the channel, so a function still writing gets `reader_closed`.
pub(crate) struct StreamBody {
    rx: BufferRx,
    first: Option<Bytes>,
    exchange: Exchange,
    /// The channel ended abnormally; the cut is reported on the next poll.
    cut: Option<EndStatus>,
}

impl StreamBody {
    /// A body starting with `first`, then the rest of `rx`.
    pub(crate) fn new(rx: BufferRx, first: Bytes, exchange: Exchange) -> Self {
        Self {
            rx,
            first: Some(first),
            exchange,
            cut: None,
        }
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, ResponseCut>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(BodyFrame::data(first))));
        }
        if let Some(status) = self.cut.take() {
            return Poll::Ready(Some(Err(ResponseCut(status))));
        }
        loop {
            // The frame leaves the channel's budget as hyper takes it; hyper's own write
            // buffer is bounded, so memory stays bounded too.
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Frame::Binary(bytes))) => {
                    self.rx.release(bytes.len());
                    if !bytes.is_empty() {
                        return Poll::Ready(Some(Ok(BodyFrame::data(bytes))));
                    }
                }
                Poll::Ready(Some(Frame::Text(text))) => {
                    self.rx.release(text.len());
                    tracing::debug!("ignoring a response message after the body started");
                }
                Poll::Ready(None) => {
                    return match self.exchange.response.reader_close_status() {
                        EndStatus::Complete => Poll::Ready(None),
                        status => {
                            // hyper drops what it still buffers when a body fails, so the
                            // failure waits one turn: hyper flushes when the body is
                            // pending, and the bytes the function wrote before its end
                            // reach the client ahead of the cut.
                            tracing::debug!(?status, "response cut off");
                            self.cut = Some(status);
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    };
                }
            }
        }
    }
}
