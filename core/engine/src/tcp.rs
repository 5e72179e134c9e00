//! The TCP stream under every accepted WebSocket, counting the bytes read from it. A worker
//! sending one large message slowly delivers no complete WebSocket message (and cannot put its
//! Pong in the middle of a frame) for a long time; liveness asks whether bytes arrive at all,
//! so such a worker is never mistaken for a frozen one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that counts what it reads (one relaxed atomic add per read call).
pub(crate) struct CountingTcp {
    tcp: TcpStream,
    read: Arc<AtomicU64>,
}

impl CountingTcp {
    /// Wraps an accepted stream.
    pub(crate) fn new(tcp: TcpStream) -> Self {
        Self {
            tcp,
            read: Arc::default(),
        }
    }

    /// The count of bytes read so far, shared (it keeps counting).
    pub(crate) fn bytes_read(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    /// The stream itself.
    pub(crate) fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }
}

impl AsyncRead for CountingTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.read.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for CountingTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
